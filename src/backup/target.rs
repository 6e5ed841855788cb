//! Where archives go: a directory, or an object store through the `object_store` crate
//! (`file://` and plain paths on the local filesystem, `s3://bucket/prefix` on any
//! S3-compatible service configured by the usual `AWS_*` variables).
//!
//! An archive is a folder of objects under the target's prefix, named
//! `docket-<UTC time>-<archive id prefix>`; it counts as complete only once its manifest and
//! signature exist, which the writer stores last.

use std::sync::Arc;

use futures::{Stream, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::BackupError;
use super::format::{MANIFEST_FILE, SIGNATURE_FILE};

/// An archive found in a target, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveInfo {
    pub name: String,
    /// Whether its manifest and signature are stored (the writer stores them last).
    pub complete: bool,
}

/// A place archives are written to and read from.
#[derive(Clone)]
pub struct Target {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    shown: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// The prefix every archive's name starts with.
pub const ARCHIVE_PREFIX: &str = "docket-";

impl Target {
    /// The target `spec` names: `s3://bucket[/prefix]`, `file:///path`, or a path.
    pub fn parse(spec: &str) -> Result<Self, BackupError> {
        if let Some(rest) = spec.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(BackupError::BadTarget {
                    target: spec.to_owned(),
                    reason: "no bucket named",
                });
            }
            ensure_tls_provider();
            let store = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()?;
            return Ok(Target {
                store: Arc::new(store),
                prefix: Path::from(prefix.trim_matches('/')),
                shown: format!("s3://{bucket}/{}", prefix.trim_matches('/')),
            });
        }
        let path = match spec.strip_prefix("file://") {
            Some(path) => path,
            None if spec.contains("://") => {
                return Err(BackupError::BadTarget {
                    target: spec.to_owned(),
                    reason: "only s3://, file:// and paths are supported",
                });
            }
            None => spec,
        };
        if path.is_empty() {
            return Err(BackupError::BadTarget {
                target: spec.to_owned(),
                reason: "empty path",
            });
        }
        Target::directory(std::path::Path::new(path))
    }

    /// A directory on the local filesystem (created, mode 0700, when missing).
    pub fn directory(dir: &std::path::Path) -> Result<Self, BackupError> {
        use std::os::unix::fs::PermissionsExt;
        let unusable = |error: std::io::Error| BackupError::Target {
            detail: format!("{}: {error}", dir.display()),
        };
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(unusable)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(unusable)?;
        }
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
        Ok(Target {
            store: Arc::new(store),
            prefix: Path::default(),
            shown: dir.display().to_string(),
        })
    }

    /// Any object store, under `prefix` (the in-memory store, for tests).
    pub fn from_store(store: Arc<dyn ObjectStore>, prefix: &str, shown: &str) -> Self {
        Target {
            store,
            prefix: Path::from(prefix),
            shown: shown.to_owned(),
        }
    }

    fn object(&self, archive: &str, file: &str) -> Path {
        self.prefix.clone().join(archive).join(file)
    }

    /// Every archive in the target, complete or not, oldest first (names sort by time).
    pub async fn archives(&self) -> Result<Vec<ArchiveInfo>, BackupError> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let listed = self.store.list_with_delimiter(prefix).await?;
        let mut archives = Vec::new();
        for folder in listed.common_prefixes {
            let Some(name) = folder.filename() else {
                continue;
            };
            if !name.starts_with(ARCHIVE_PREFIX) {
                continue;
            }
            let inside = self.store.list_with_delimiter(Some(&folder)).await?;
            let has = |file: &str| {
                inside
                    .objects
                    .iter()
                    .any(|object| object.location.filename() == Some(file))
            };
            archives.push(ArchiveInfo {
                name: name.to_owned(),
                complete: has(MANIFEST_FILE) && has(SIGNATURE_FILE),
            });
        }
        archives.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(archives)
    }

    /// Stores a small object at once.
    pub async fn put(&self, archive: &str, file: &str, bytes: Vec<u8>) -> Result<(), BackupError> {
        self.store
            .put(&self.object(archive, file), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Starts a large object, written as it grows and stored whole on [`PartUpload::finish`].
    pub async fn upload(&self, archive: &str, file: &str) -> Result<PartUpload, BackupError> {
        let upload = self
            .store
            .put_multipart(&self.object(archive, file))
            .await?;
        Ok(PartUpload {
            writer: WriteMultipart::new(upload),
        })
    }

    /// A small object, whole.
    pub async fn get(&self, archive: &str, file: &str) -> Result<Vec<u8>, BackupError> {
        let location = self.object(archive, file);
        match self.store.get(&location).await {
            Ok(result) => Ok(result.bytes().await?.to_vec()),
            Err(object_store::Error::NotFound { .. }) => Err(BackupError::Malformed {
                what: "an object the archive needs is missing",
            }),
            Err(error) => Err(error.into()),
        }
    }

    /// A large object as a stream of byte runs.
    pub async fn stream(
        &self,
        archive: &str,
        file: &str,
    ) -> Result<impl Stream<Item = Result<Vec<u8>, BackupError>> + use<>, BackupError> {
        let location = self.object(archive, file);
        match self.store.get(&location).await {
            Ok(result) => Ok(result
                .into_stream()
                .map_ok(|bytes| bytes.to_vec())
                .map_err(BackupError::from)),
            Err(object_store::Error::NotFound { .. }) => Err(BackupError::Malformed {
                what: "an object the archive needs is missing",
            }),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes an archive: its manifest first, so a half-deleted archive is never taken for a
    /// complete one.
    pub async fn delete_archive(&self, archive: &str) -> Result<(), BackupError> {
        for file in [SIGNATURE_FILE, MANIFEST_FILE] {
            match self.store.delete(&self.object(archive, file)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        let folder = self.prefix.clone().join(archive);
        let objects: Vec<_> = self
            .store
            .list(Some(&folder))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        for object in objects {
            match self.store.delete(&object).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }
}

/// A part being uploaded.
pub struct PartUpload {
    writer: WriteMultipart,
}

impl PartUpload {
    /// Adds bytes, waiting while too many pieces are in flight.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        self.writer.wait_for_capacity(4).await?;
        self.writer.write(bytes);
        Ok(())
    }

    /// Stores the object.
    pub async fn finish(self) -> Result<(), BackupError> {
        self.writer.finish().await?;
        Ok(())
    }

    /// Gives up: nothing is stored.
    pub async fn abort(self) {
        let _ = self.writer.abort().await;
    }
}

/// S3 over HTTPS needs rustls's process-wide provider; Docket uses ring everywhere.
fn ensure_tls_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
