//! Key-encryption keys (KEKs) and the providers that hold them.
//!
//! A data key is stored only wrapped by a KEK version: AES-256-GCM under the KEK with a random
//! nonce and associated data `"docket/wrap/v1\n" || version || "\n" || key id`, stored as
//! `nonce (12 bytes) || ciphertext || tag (16 bytes)`. The stored row records which version
//! wrapped it, so rotation knows what is left to rewrap and a version is retired only when
//! nothing uses it.
//!
//! [`MasterKeys`] is the seam for an external KMS: it wraps and unwraps and never has to hand
//! out a KEK. [`LocalMasterKeys`] keeps the versions in a key file (mode 0600) in the data
//! directory, or reads them from an environment variable.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use zeroize::Zeroizing;

use super::VaultError;
use super::seal::DataKey;

/// The environment variable [`LocalMasterKeys::from_env`] reads: comma-separated
/// `<version>:<64 hex digits>` entries.
pub const MASTER_KEY_ENV: &str = "DOCKET_MASTER_KEY";
/// The key file's name under `<data-dir>/keys/`.
pub const KEK_FILE: &str = "master.kek";
const KEK_FILE_HEADER: &str = "docket-kek/1";
const WRAP_DOMAIN: &[u8] = b"docket/wrap/v1";
const NONCE_LEN: usize = 12;

/// Wraps and unwraps data keys under versioned KEKs.
#[async_trait]
pub trait MasterKeys: Send + Sync {
    /// A short name for messages (`key file`, `environment`, a KMS's name).
    fn provider(&self) -> &'static str;

    /// The versions that can unwrap, oldest first.
    async fn versions(&self) -> Result<Vec<u32>, VaultError>;

    /// Wraps `key` (id `key_id`) under `version`.
    async fn wrap(&self, version: u32, key_id: &str, key: &DataKey) -> Result<Vec<u8>, VaultError>;

    /// Unwraps what [`MasterKeys::wrap`] made.
    async fn unwrap(
        &self,
        version: u32,
        key_id: &str,
        wrapped: &[u8],
    ) -> Result<DataKey, VaultError>;

    /// Adds a version above every existing one and returns it.
    async fn add_version(&self) -> Result<u32, VaultError>;

    /// Destroys `version`: nothing wrapped under it can be unwrapped afterwards.
    async fn retire(&self, version: u32) -> Result<(), VaultError>;

    /// The version new wraps use: the highest.
    async fn current(&self) -> Result<u32, VaultError> {
        self.versions()
            .await?
            .last()
            .copied()
            .ok_or_else(|| VaultError::MasterKey {
                detail: "no key-encryption key version is configured".into(),
            })
    }
}

fn wrap_aad(version: u32, key_id: &str) -> Vec<u8> {
    let mut aad = WRAP_DOMAIN.to_vec();
    aad.extend_from_slice(format!("\n{version}\n{key_id}").as_bytes());
    aad
}

/// AES-256-GCM wrap of a data key under one KEK.
pub fn wrap_with(
    kek: &[u8; 32],
    version: u32,
    key_id: &str,
    key: &DataKey,
) -> Result<Vec<u8>, VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| VaultError::NoRandomness)?;
    let cipher = Aes256Gcm::new_from_slice(kek).map_err(|_| VaultError::SealFailed)?;
    let aad = wrap_aad(version, key_id);
    let sealed = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: key.as_bytes(),
                aad: &aad,
            },
        )
        .map_err(|_| VaultError::SealFailed)?;
    let mut wrapped = nonce.to_vec();
    wrapped.extend_from_slice(&sealed);
    Ok(wrapped)
}

/// The inverse of [`wrap_with`].
pub fn unwrap_with(
    kek: &[u8; 32],
    version: u32,
    key_id: &str,
    wrapped: &[u8],
) -> Result<DataKey, VaultError> {
    if wrapped.len() <= NONCE_LEN {
        return Err(VaultError::Malformed {
            what: "wrapped data key",
        });
    }
    let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::Malformed {
        what: "wrapped data key",
    })?;
    let cipher = Aes256Gcm::new_from_slice(kek).map_err(|_| VaultError::OpenFailed)?;
    let aad = wrap_aad(version, key_id);
    let bytes = Zeroizing::new(
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::OpenFailed)?,
    );
    DataKey::from_bytes(&bytes)
}

type Versions = BTreeMap<u32, Zeroizing<[u8; 32]>>;

/// Where [`LocalMasterKeys`] keeps its versions.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Environment,
}

/// KEK versions held by this process: from the data directory's key file, or from
/// [`MASTER_KEY_ENV`].
pub struct LocalMasterKeys {
    source: Source,
    versions: RwLock<Versions>,
    /// The key file as last read (modification time and inode), to re-read it only when it
    /// was replaced.
    seen: std::sync::Mutex<Option<(std::time::SystemTime, u64)>>,
}

impl std::fmt::Debug for LocalMasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalMasterKeys")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

fn master_error(detail: impl Into<String>) -> VaultError {
    VaultError::MasterKey {
        detail: detail.into(),
    }
}

fn parse_hex_key(text: &str) -> Option<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), key.as_mut()).ok()?;
    Some(key)
}

fn new_kek() -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(key.as_mut()).map_err(|_| VaultError::NoRandomness)?;
    Ok(key)
}

/// Reads a key file: a header line, then `<version> <64 hex digits>` per line.
fn read_key_file(path: &Path) -> Result<Versions, VaultError> {
    let metadata = fs::metadata(path)
        .map_err(|e| master_error(format!("cannot read {}: {e}", path.display())))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        return Err(master_error(format!(
            "{} is readable by others; it must be mode 0600",
            path.display()
        )));
    }
    let text = Zeroizing::new(
        fs::read_to_string(path)
            .map_err(|e| master_error(format!("cannot read {}: {e}", path.display())))?,
    );
    let mut lines = text.lines();
    if lines.next() != Some(KEK_FILE_HEADER) {
        return Err(master_error(format!(
            "{} is not a Docket key file",
            path.display()
        )));
    }
    let mut versions = Versions::new();
    for line in lines.filter(|line| !line.trim().is_empty()) {
        let (version, key) = line
            .split_once(' ')
            .and_then(|(version, key)| Some((version.parse::<u32>().ok()?, parse_hex_key(key)?)))
            .ok_or_else(|| master_error(format!("{} has a malformed line", path.display())))?;
        versions.insert(version, key);
    }
    Ok(versions)
}

/// Replaces the key file atomically (write a new file, fsync, rename, fsync the directory).
fn write_key_file(path: &Path, versions: &Versions) -> Result<(), VaultError> {
    let mut text = Zeroizing::new(format!("{KEK_FILE_HEADER}\n"));
    for (version, key) in versions {
        text.push_str(&format!("{version} {}\n", hex::encode(key.as_ref())));
    }
    let temporary = path.with_extension("kek.new");
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        if let Some(dir) = path.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| master_error(format!("cannot write {}: {e}", path.display())))
}

impl LocalMasterKeys {
    /// The key file `<data-dir>/keys/master.kek`, created with a first version when absent.
    pub fn open_file(data_dir: &Path) -> Result<Self, VaultError> {
        let dir = data_dir.join("keys");
        fs::create_dir_all(&dir)
            .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)))
            .map_err(|e| master_error(format!("cannot prepare {}: {e}", dir.display())))?;
        let path = dir.join(KEK_FILE);
        if !path.exists() {
            let mut first = Versions::new();
            first.insert(1, new_kek()?);
            write_key_file(&path, &first)?;
        }
        let versions = read_key_file(&path)?;
        if versions.is_empty() {
            return Err(master_error(format!("{} holds no version", path.display())));
        }
        let keys = LocalMasterKeys {
            source: Source::File(path.clone()),
            versions: RwLock::new(versions),
            seen: std::sync::Mutex::new(None),
        };
        keys.note_seen(&path);
        Ok(keys)
    }

    /// Versions from [`MASTER_KEY_ENV`] (`1:<hex>,2:<hex>`); `None` when it is not set.
    pub fn from_env() -> Result<Option<Self>, VaultError> {
        let Ok(text) = std::env::var(MASTER_KEY_ENV) else {
            return Ok(None);
        };
        LocalMasterKeys::from_env_text(&Zeroizing::new(text)).map(Some)
    }

    /// Versions from text in [`MASTER_KEY_ENV`]'s form.
    pub fn from_env_text(text: &str) -> Result<Self, VaultError> {
        let mut versions = Versions::new();
        for entry in text.split(',').filter(|entry| !entry.trim().is_empty()) {
            let (version, key) = entry
                .trim()
                .split_once(':')
                .and_then(|(version, key)| {
                    Some((version.parse::<u32>().ok()?, parse_hex_key(key)?))
                })
                .ok_or_else(|| {
                    master_error(format!(
                        "{MASTER_KEY_ENV} must hold <version>:<64 hex digits> entries"
                    ))
                })?;
            versions.insert(version, key);
        }
        if versions.is_empty() {
            return Err(master_error(format!("{MASTER_KEY_ENV} holds no version")));
        }
        Ok(LocalMasterKeys {
            source: Source::Environment,
            versions: RwLock::new(versions),
            seen: std::sync::Mutex::new(None),
        })
    }

    /// The environment's versions if [`MASTER_KEY_ENV`] is set, else the data directory's file.
    pub fn configured(data_dir: &Path) -> Result<Self, VaultError> {
        match LocalMasterKeys::from_env()? {
            Some(keys) => Ok(keys),
            None => LocalMasterKeys::open_file(data_dir),
        }
    }

    /// Runs `f` with `version`'s key, re-reading the key file once when this process does not
    /// know the version (another process may have rotated).
    fn with_version<T>(
        &self,
        version: u32,
        f: impl Fn(&[u8; 32]) -> Result<T, VaultError>,
    ) -> Result<T, VaultError> {
        {
            let versions = self
                .versions
                .read()
                .map_err(|_| master_error("lock poisoned"))?;
            if let Some(key) = versions.get(&version) {
                return f(key);
            }
        }
        if let Source::File(path) = &self.source {
            let fresh = read_key_file(path)?;
            let mut versions = self
                .versions
                .write()
                .map_err(|_| master_error("lock poisoned"))?;
            *versions = fresh;
            if let Some(key) = versions.get(&version) {
                return f(key);
            }
        }
        Err(VaultError::KekUnavailable { version })
    }

    fn stamp(path: &Path) -> Option<(std::time::SystemTime, u64)> {
        use std::os::unix::fs::MetadataExt;
        let metadata = fs::metadata(path).ok()?;
        Some((metadata.modified().ok()?, metadata.ino()))
    }

    fn note_seen(&self, path: &Path) {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = LocalMasterKeys::stamp(path);
        }
    }

    /// Re-reads the key file if it was replaced since it was last read (every change replaces
    /// it: a new file renamed over the old), so a version added or retired by another process
    /// is seen at the next use, at the cost of one `stat`.
    fn refresh(&self) -> Result<(), VaultError> {
        let Source::File(path) = &self.source else {
            return Ok(());
        };
        let now = LocalMasterKeys::stamp(path);
        let unchanged = self
            .seen
            .lock()
            .map(|seen| now.is_some() && *seen == now)
            .unwrap_or(false);
        if unchanged {
            return Ok(());
        }
        let fresh = read_key_file(path)?;
        *self
            .versions
            .write()
            .map_err(|_| master_error("lock poisoned"))? = fresh;
        self.note_seen(path);
        Ok(())
    }

    fn file(&self, operation: &'static str) -> Result<&Path, VaultError> {
        match &self.source {
            Source::File(path) => Ok(path),
            Source::Environment => Err(VaultError::Unsupported {
                provider: "environment",
                operation,
            }),
        }
    }
}

#[async_trait]
impl MasterKeys for LocalMasterKeys {
    fn provider(&self) -> &'static str {
        match self.source {
            Source::File(_) => "key file",
            Source::Environment => "environment",
        }
    }

    async fn versions(&self) -> Result<Vec<u32>, VaultError> {
        self.refresh()?;
        let versions = self
            .versions
            .read()
            .map_err(|_| master_error("lock poisoned"))?;
        Ok(versions.keys().copied().collect())
    }

    async fn wrap(&self, version: u32, key_id: &str, key: &DataKey) -> Result<Vec<u8>, VaultError> {
        // Never wrap under a version another process retired meanwhile.
        self.refresh()?;
        self.with_version(version, |kek| wrap_with(kek, version, key_id, key))
    }

    async fn unwrap(
        &self,
        version: u32,
        key_id: &str,
        wrapped: &[u8],
    ) -> Result<DataKey, VaultError> {
        self.with_version(version, |kek| unwrap_with(kek, version, key_id, wrapped))
    }

    async fn add_version(&self) -> Result<u32, VaultError> {
        let path = self.file("adding a version")?;
        let mut versions = read_key_file(path)?;
        let next = versions.keys().last().copied().unwrap_or(0) + 1;
        versions.insert(next, new_kek()?);
        write_key_file(path, &versions)?;
        *self
            .versions
            .write()
            .map_err(|_| master_error("lock poisoned"))? = versions;
        self.note_seen(path);
        Ok(next)
    }

    async fn retire(&self, version: u32) -> Result<(), VaultError> {
        let path = self.file("retiring a version")?;
        let mut versions = read_key_file(path)?;
        if versions.len() == 1 && versions.contains_key(&version) {
            return Err(master_error(
                "the only key-encryption key version cannot be retired",
            ));
        }
        versions.remove(&version);
        write_key_file(path, &versions)?;
        *self
            .versions
            .write()
            .map_err(|_| master_error("lock poisoned"))? = versions;
        self.note_seen(path);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_key_unwraps_only_under_its_version_and_id() {
        let kek = [3u8; 32];
        let key = DataKey::from_bytes(&[9u8; 32]).unwrap();
        let wrapped = wrap_with(&kek, 1, "dk_a", &key).unwrap();
        assert_eq!(wrapped.len(), 12 + 32 + 16);
        let back = unwrap_with(&kek, 1, "dk_a", &wrapped).unwrap();
        assert_eq!(back.as_bytes(), key.as_bytes());
        assert!(unwrap_with(&kek, 2, "dk_a", &wrapped).is_err());
        assert!(unwrap_with(&kek, 1, "dk_b", &wrapped).is_err());
        assert!(unwrap_with(&[4u8; 32], 1, "dk_a", &wrapped).is_err());
        assert!(unwrap_with(&kek, 1, "dk_a", &wrapped[..10]).is_err());
    }

    #[tokio::test]
    async fn the_key_file_is_created_private_and_gains_and_loses_versions() {
        let dir = tempfile::tempdir().unwrap();
        let keys = LocalMasterKeys::open_file(dir.path()).unwrap();
        let path = dir.path().join("keys").join(KEK_FILE);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(keys.versions().await.unwrap(), vec![1]);

        let key = DataKey::from_bytes(&[1u8; 32]).unwrap();
        let wrapped = keys.wrap(1, "dk_x", &key).await.unwrap();
        assert_eq!(keys.add_version().await.unwrap(), 2);
        assert_eq!(keys.current().await.unwrap(), 2);

        // A second process sees the new version without being told.
        let other = LocalMasterKeys::open_file(dir.path()).unwrap();
        assert_eq!(other.versions().await.unwrap(), vec![1, 2]);

        keys.retire(1).await.unwrap();
        assert!(matches!(
            keys.unwrap(1, "dk_x", &wrapped).await,
            Err(VaultError::KekUnavailable { version: 1 })
        ));
        assert!(keys.retire(2).await.is_err());
        assert!(
            !fs::read_to_string(&path)
                .unwrap()
                .contains(&hex::encode([1u8; 32]))
        );
    }

    #[tokio::test]
    async fn environment_versions_parse_and_cannot_be_rotated_in_place() {
        let text = format!("1:{},2:{}", "ab".repeat(32), "cd".repeat(32));
        let keys = LocalMasterKeys::from_env_text(&text).unwrap();
        assert_eq!(keys.versions().await.unwrap(), vec![1, 2]);
        assert!(matches!(
            keys.add_version().await,
            Err(VaultError::Unsupported { .. })
        ));
        assert!(LocalMasterKeys::from_env_text("1:short").is_err());
        assert!(LocalMasterKeys::from_env_text("").is_err());
        let error = LocalMasterKeys::from_env_text("x:00")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("00"), "{error}");
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        LocalMasterKeys::open_file(dir.path()).unwrap();
        let path = dir.path().join("keys").join(KEK_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let error = LocalMasterKeys::open_file(dir.path()).unwrap_err();
        assert!(error.to_string().contains("0600"));
    }
}
