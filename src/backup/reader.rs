//! Reading an archive back: the manifest and its signature first, then every part's stored
//! bytes against the manifest's hashes, before a single chunk is decrypted; then the parts'
//! records, chunk by chunk, each chunk authenticated in its place.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use zeroize::Zeroizing;

use super::BackupError;
use super::format::{
    ChunkReader, FORMAT, MANIFEST_FILE, Manifest, ManifestSignature, PARTS, PartCipher,
    SIGNATURE_FILE, part_file, wrap_key_id,
};
use super::records::Record;
use super::target::Target;
use crate::log::keys::{KeyId, parse_public_key, verify_manifest_signature};
use crate::vault::MasterKeys;

/// A manifest whose signature verified with the key it names.
#[derive(Debug, Clone)]
pub struct SignedManifest {
    pub manifest: Manifest,
}

/// Reads `archive`'s manifest and checks its signature against the public key it names (that
/// this key is the log's comes later, once the archived log has verified).
pub async fn read_manifest(target: &Target, archive: &str) -> Result<SignedManifest, BackupError> {
    let bytes = target.get(archive, MANIFEST_FILE).await?;
    let signature = target.get(archive, SIGNATURE_FILE).await?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|_| BackupError::Malformed {
            what: "manifest is not the format's JSON",
        })?;
    let signature: ManifestSignature =
        serde_json::from_slice(&signature).map_err(|_| BackupError::Malformed {
            what: "signature file is not the format's JSON",
        })?;
    if manifest.format != FORMAT {
        return Err(BackupError::Malformed {
            what: "unknown archive format",
        });
    }
    let key = parse_public_key(&manifest.signer.public_key).ok_or(BackupError::BadSignature)?;
    if KeyId::of(&key).as_str() != manifest.signer.key_id
        || signature.key_id != manifest.signer.key_id
    {
        return Err(BackupError::BadSignature);
    }
    let signature = hex::decode(&signature.signature).map_err(|_| BackupError::BadSignature)?;
    if !verify_manifest_signature(&key, &bytes, &signature) {
        return Err(BackupError::BadSignature);
    }
    if manifest.name != archive {
        return Err(BackupError::Inconsistent {
            what: "archive name",
        });
    }
    for part in PARTS {
        if manifest.part(part)?.file != part_file(part) {
            return Err(BackupError::Malformed {
                what: "a part's file name",
            });
        }
    }
    Ok(SignedManifest { manifest })
}

/// The blake3 (hex) and size of an object as stored.
pub async fn hash_part(
    target: &Target,
    archive: &str,
    file: &str,
) -> Result<(String, u64), BackupError> {
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    let mut bytes = std::pin::pin!(target.stream(archive, file).await?);
    while let Some(run) = bytes.next().await {
        let run = run?;
        size += run.len() as u64;
        hasher.update(&run);
    }
    Ok((hasher.finalize().to_hex().to_string(), size))
}

/// Checks every part's stored bytes against the manifest, then unwraps the archive's data key.
pub async fn open_archive(
    target: &Target,
    signed: &SignedManifest,
    master: &dyn MasterKeys,
) -> Result<Zeroizing<[u8; 32]>, BackupError> {
    let manifest = &signed.manifest;
    for part in &manifest.parts {
        let (hash, size) = hash_part(target, &manifest.name, &part.file).await?;
        if hash != part.blake3 || size != part.bytes {
            return Err(BackupError::PartHashMismatch {
                part: part.name.clone(),
            });
        }
    }
    let wrapped = hex::decode(&manifest.encryption.wrapped_key).map_err(|_| BackupError::Crypto)?;
    let key = master
        .unwrap(
            manifest.encryption.kek_version,
            &wrap_key_id(&manifest.archive_id),
            &wrapped,
        )
        .await
        .map_err(|error| match error {
            crate::vault::VaultError::OpenFailed => BackupError::Crypto,
            other => BackupError::MasterKey {
                detail: other.to_string(),
            },
        })?;
    Ok(Zeroizing::new(*key.as_bytes()))
}

type ByteRuns = Pin<Box<dyn Stream<Item = Result<Vec<u8>, BackupError>> + Send>>;

/// The records of one part, in order. The part's bytes are hashed again as they are read, and
/// a part that ends anywhere but after its final chunk, or goes on after it, is refused.
pub struct PartReader {
    part: String,
    cipher: PartCipher,
    runs: ByteRuns,
    chunks: ChunkReader,
    plain: Zeroizing<Vec<u8>>,
    index: u64,
    finished: bool,
    hasher: blake3::Hasher,
    expected_hash: String,
    records: u64,
}

impl PartReader {
    pub async fn open(
        target: &Target,
        manifest: &Manifest,
        data_key: &[u8; 32],
        part: &str,
    ) -> Result<Self, BackupError> {
        let record = manifest.part(part)?;
        let runs = target.stream(&manifest.name, &record.file).await?;
        Ok(PartReader {
            part: part.to_owned(),
            cipher: PartCipher::new(data_key, &manifest.archive_id, part)?,
            runs: Box::pin(runs),
            chunks: ChunkReader::default(),
            plain: Zeroizing::new(Vec::new()),
            index: 0,
            finished: false,
            hasher: blake3::Hasher::new(),
            expected_hash: record.blake3.clone(),
            records: 0,
        })
    }

    /// How many records were read so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The next record, or `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Record>, BackupError> {
        loop {
            if let Some(end) = self.plain.iter().position(|byte| *byte == b'\n') {
                let line = Zeroizing::new(self.plain.drain(..=end).collect::<Vec<u8>>());
                let record = serde_json::from_slice(&line[..end]).map_err(|_| {
                    BackupError::PartMalformed {
                        part: self.part.clone(),
                    }
                })?;
                self.records += 1;
                return Ok(Some(record));
            }
            if self.finished {
                if !self.plain.is_empty() {
                    return Err(BackupError::PartMalformed {
                        part: self.part.clone(),
                    });
                }
                return Ok(None);
            }
            let sealed = self.next_chunk().await?;
            let (plain, last) = self.cipher.open(self.index, &sealed)?;
            self.index += 1;
            self.plain.extend_from_slice(&plain);
            drop(Zeroizing::new(plain));
            if last {
                self.finish().await?;
            }
        }
    }

    async fn pull(&mut self) -> Result<bool, BackupError> {
        match self.runs.next().await {
            Some(run) => {
                let run = run?;
                self.hasher.update(&run);
                self.chunks.push(&run);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn next_chunk(&mut self) -> Result<Vec<u8>, BackupError> {
        loop {
            if let Some(chunk) = self.chunks.next_chunk(&self.part)? {
                return Ok(chunk);
            }
            if !self.pull().await? {
                return Err(BackupError::Truncated {
                    part: self.part.clone(),
                });
            }
        }
    }

    /// After the final chunk: nothing may follow, and the whole part must hash as the manifest
    /// says (it may have changed since it was checked).
    async fn finish(&mut self) -> Result<(), BackupError> {
        while self.pull().await? {}
        if self.chunks.has_leftover() {
            return Err(BackupError::Truncated {
                part: self.part.clone(),
            });
        }
        if self.hasher.finalize().to_hex().as_str() != self.expected_hash {
            return Err(BackupError::PartHashMismatch {
                part: self.part.clone(),
            });
        }
        self.finished = true;
        Ok(())
    }
}
