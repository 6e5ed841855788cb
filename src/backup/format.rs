//! The archive format (docs/backup-format.md): the signed manifest, the parts' names, and the
//! chunked AES-256-GCM encryption of each part.
//!
//! Each part is a sequence of chunks, each framed as a 4-byte big-endian length and the
//! ciphertext with its tag. A part has its own key, derived from the archive's data key with
//! HKDF-SHA256 (salt: the archive id; info: the part's name), so the chunk index alone is a
//! unique nonce. The associated data of every chunk binds the archive id, the part, the chunk's
//! index and whether it is the part's last: a chunk moved to another place, another part or
//! another archive fails to open, and a part cut after any chunk lacks its final chunk.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::BackupError;

/// The format named in every manifest.
pub const FORMAT: &str = "docket-backup/1";
/// The manifest's object name inside an archive.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The manifest's signature's object name.
pub const SIGNATURE_FILE: &str = "manifest.sig";
/// Plaintext bytes per chunk (the last chunk of a part may hold fewer).
pub const CHUNK_BYTES: usize = 1 << 20;
/// AES-GCM's tag.
const TAG_BYTES: usize = 16;
/// The key id under which the archive's data key is wrapped by the key-encryption key.
pub fn wrap_key_id(archive_id: &str) -> String {
    format!("backup:{archive_id}")
}

/// The parts of an archive, in the order they are written and restored.
pub const PARTS: [&str; 6] = [
    "log",
    "access",
    "keys",
    "documents",
    "checkpoints",
    "credentials",
];

/// The object name of a part.
pub fn part_file(part: &str) -> String {
    format!("{part}.part")
}

/// A position and hash of a log's end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadRecord {
    pub position: u64,
    /// Lowercase hex; `None` only for an empty log.
    pub hash: Option<String>,
}

/// How the parts are encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionRecord {
    pub cipher: String,
    pub chunk_bytes: u64,
    /// The KEK version that wraps the data key.
    pub kek_version: u32,
    /// The archive's data key wrapped by that version, hex (nonce, ciphertext and tag).
    pub wrapped_key: String,
}

/// One encrypted part: what it holds and the blake3 of its bytes as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub name: String,
    pub file: String,
    pub records: u64,
    pub chunks: u64,
    pub bytes: u64,
    pub blake3: String,
}

/// The signer of a manifest: a key of the log, named and given in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerRecord {
    pub key_id: String,
    pub public_key: String,
}

/// What an archive holds; signed by the log's key in force at `head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub archive_id: String,
    pub name: String,
    pub created_at: String,
    pub log_id: String,
    pub backend: String,
    pub head: HeadRecord,
    pub access_head: HeadRecord,
    pub encryption: EncryptionRecord,
    pub parts: Vec<PartRecord>,
    /// Every subject whose data key was erased when the archive was taken.
    pub erased_subjects: Vec<String>,
    pub signer: SignerRecord,
}

impl Manifest {
    pub fn part(&self, name: &str) -> Result<&PartRecord, BackupError> {
        self.parts
            .iter()
            .find(|part| part.name == name)
            .ok_or(BackupError::Malformed {
                what: "manifest without every part",
            })
    }
}

/// The detached signature of `manifest.json`, as stored in `manifest.sig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSignature {
    pub key_id: String,
    /// Hex of the ed25519 signature of `docket/backup-manifest/v1\n || blake3(manifest bytes)`.
    pub signature: String,
}

/// The per-part key and the chunk cipher.
pub struct PartCipher {
    cipher: Aes256Gcm,
    archive_id: String,
    part: String,
}

impl PartCipher {
    /// The cipher of `part` in the archive `archive_id`, from its data key.
    pub fn new(data_key: &[u8; 32], archive_id: &str, part: &str) -> Result<Self, BackupError> {
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(archive_id.as_bytes()), data_key)
            .expand(format!("{FORMAT} part {part}").as_bytes(), key.as_mut())
            .map_err(|_| BackupError::Crypto)?;
        let cipher = Aes256Gcm::new_from_slice(key.as_ref()).map_err(|_| BackupError::Crypto)?;
        Ok(PartCipher {
            cipher,
            archive_id: archive_id.to_owned(),
            part: part.to_owned(),
        })
    }

    fn aad(&self, index: u64, last: bool) -> Vec<u8> {
        let mut aad = format!("{FORMAT}\n{}\n{}\n", self.archive_id, self.part).into_bytes();
        aad.extend_from_slice(&index.to_be_bytes());
        aad.push(u8::from(last));
        aad
    }

    fn nonce(index: u64) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&index.to_be_bytes());
        nonce
    }

    /// Chunk `index` sealed and framed.
    pub fn seal(&self, index: u64, last: bool, plain: &[u8]) -> Result<Vec<u8>, BackupError> {
        let aad = self.aad(index, last);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(Self::nonce(index)),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| BackupError::Crypto)?;
        let length = u32::try_from(sealed.len()).map_err(|_| BackupError::Crypto)?;
        let mut framed = length.to_be_bytes().to_vec();
        framed.extend_from_slice(&sealed);
        Ok(framed)
    }

    /// Opens chunk `index` (without its frame), trying it as the part's last chunk and as
    /// another: the answer says which it was.
    pub fn open(&self, index: u64, sealed: &[u8]) -> Result<(Vec<u8>, bool), BackupError> {
        for last in [false, true] {
            let aad = self.aad(index, last);
            if let Ok(plain) = self.cipher.decrypt(
                &Nonce::from(Self::nonce(index)),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            ) {
                return Ok((plain, last));
            }
        }
        Err(BackupError::ChunkRejected {
            part: self.part.clone(),
            index,
        })
    }
}

/// Splits framed chunks off the front of a byte buffer as they arrive.
#[derive(Default)]
pub struct ChunkReader {
    buffer: Vec<u8>,
}

impl ChunkReader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole chunk's ciphertext, if buffered; an oversized frame is refused.
    pub fn next_chunk(&mut self, part: &str) -> Result<Option<Vec<u8>>, BackupError> {
        if self.buffer.len() < 4 {
            return Ok(None);
        }
        let mut length = [0u8; 4];
        length.copy_from_slice(&self.buffer[..4]);
        let length = usize::try_from(u32::from_be_bytes(length)).unwrap_or(usize::MAX);
        if !(TAG_BYTES..=CHUNK_BYTES + TAG_BYTES).contains(&length) {
            return Err(BackupError::PartMalformed {
                part: part.to_owned(),
            });
        }
        if self.buffer.len() < 4 + length {
            return Ok(None);
        }
        let chunk = self.buffer[4..4 + length].to_vec();
        self.buffer.drain(..4 + length);
        Ok(Some(chunk))
    }

    /// Whether bytes are left that make no whole chunk.
    pub fn has_leftover(&self) -> bool {
        !self.buffer.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_opens_only_in_its_place_part_and_archive() {
        let key = [7u8; 32];
        let cipher = PartCipher::new(&key, "a1", "log").unwrap();
        let framed = cipher.seal(3, true, b"hello").unwrap();
        let sealed = &framed[4..];
        assert_eq!(cipher.open(3, sealed).unwrap(), (b"hello".to_vec(), true));
        assert!(cipher.open(2, sealed).is_err());
        assert!(
            PartCipher::new(&key, "a1", "keys")
                .unwrap()
                .open(3, sealed)
                .is_err()
        );
        assert!(
            PartCipher::new(&key, "a2", "log")
                .unwrap()
                .open(3, sealed)
                .is_err()
        );
    }

    #[test]
    fn frames_split_whatever_the_arrival() {
        let cipher = PartCipher::new(&[1u8; 32], "a", "log").unwrap();
        let mut bytes = cipher.seal(0, false, b"one").unwrap();
        bytes.extend(cipher.seal(1, true, b"two").unwrap());
        let mut reader = ChunkReader::default();
        let mut chunks = Vec::new();
        for byte in bytes {
            reader.push(&[byte]);
            while let Some(chunk) = reader.next_chunk("log").unwrap() {
                chunks.push(chunk);
            }
        }
        assert_eq!(chunks.len(), 2);
        assert!(!reader.has_leftover());
        assert_eq!(cipher.open(1, &chunks[1]).unwrap().0, b"two");
    }
}
