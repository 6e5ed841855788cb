//! The records of an archive's parts, one JSON object per line of a part's plaintext, tagged
//! by `kind`. Byte strings are lowercase hex.

use serde::{Deserialize, Serialize};

use crate::identity::credentials::CredentialRow;
use crate::log::Event;
use crate::store::archive::{SealedContent, StoredBlob, hex_bytes};
use crate::store::plan::IdempotencyRecord;
use crate::store::{StoredCheckpoint, StoredDataKey};

use super::BackupError;

/// One line of a part.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// An event of the log (part `log`) or of the access chain (part `access`), as stored.
    Event(Box<Event>),
    /// What an idempotency key was first used for (after the events of its part).
    Idempotency(IdempotencyLine),
    /// A data key, wrapped or erased (part `keys`).
    DataKey(DataKeyLine),
    /// Sealed document content (part `documents`).
    Content(SealedContent),
    /// A document blob stored before sealing (part `documents`).
    Blob(StoredBlob),
    /// A signed checkpoint (part `checkpoints`).
    Checkpoint(CheckpointLine),
    /// A credential row (part `credentials`).
    Credential(CredentialRow),
}

/// [`IdempotencyRecord`] in an archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotencyLine {
    pub key: String,
    #[serde(with = "hex_bytes")]
    pub digest: Vec<u8>,
    pub stream: String,
    pub first_position: u64,
    pub last_position: u64,
    pub first_version: u64,
    pub last_version: u64,
}

impl From<IdempotencyRecord> for IdempotencyLine {
    fn from(record: IdempotencyRecord) -> Self {
        IdempotencyLine {
            key: record.key,
            digest: record.digest.to_vec(),
            stream: record.stream,
            first_position: record.first_position,
            last_position: record.last_position,
            first_version: record.first_version,
            last_version: record.last_version,
        }
    }
}

impl IdempotencyLine {
    pub fn into_record(self, part: &str) -> Result<IdempotencyRecord, BackupError> {
        Ok(IdempotencyRecord {
            key: self.key,
            digest: self
                .digest
                .try_into()
                .map_err(|_| BackupError::PartMalformed {
                    part: part.to_owned(),
                })?,
            stream: self.stream,
            first_position: self.first_position,
            last_position: self.last_position,
            first_version: self.first_version,
            last_version: self.last_version,
        })
    }
}

/// [`StoredDataKey`] in an archive: still wrapped by the KEK, or erased.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataKeyLine {
    pub key_id: String,
    pub subject: String,
    pub kek_version: Option<u32>,
    pub wrapped: Option<String>,
    pub created_at: String,
    pub erased_at: Option<String>,
}

impl From<StoredDataKey> for DataKeyLine {
    fn from(key: StoredDataKey) -> Self {
        DataKeyLine {
            key_id: key.key_id,
            subject: key.subject,
            kek_version: key.kek_version,
            wrapped: key.wrapped.map(hex::encode),
            created_at: key.created_at,
            erased_at: key.erased_at,
        }
    }
}

impl DataKeyLine {
    pub fn into_key(self) -> Result<StoredDataKey, BackupError> {
        let wrapped =
            self.wrapped
                .map(hex::decode)
                .transpose()
                .map_err(|_| BackupError::PartMalformed {
                    part: "keys".into(),
                })?;
        Ok(StoredDataKey {
            key_id: self.key_id,
            subject: self.subject,
            kek_version: self.kek_version,
            wrapped,
            created_at: self.created_at,
            erased_at: self.erased_at,
        })
    }
}

/// [`StoredCheckpoint`] in an archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointLine {
    pub tree_size: u64,
    pub root: String,
    pub key_id: String,
    pub note: String,
    pub signed_at: String,
}

impl From<StoredCheckpoint> for CheckpointLine {
    fn from(checkpoint: StoredCheckpoint) -> Self {
        CheckpointLine {
            tree_size: checkpoint.tree_size,
            root: hex::encode(checkpoint.root),
            key_id: checkpoint.key_id,
            note: checkpoint.note,
            signed_at: checkpoint.signed_at,
        }
    }
}

impl CheckpointLine {
    pub fn into_checkpoint(self) -> Result<StoredCheckpoint, BackupError> {
        let malformed = || BackupError::PartMalformed {
            part: "checkpoints".into(),
        };
        let root = hex::decode(&self.root).map_err(|_| malformed())?;
        Ok(StoredCheckpoint {
            tree_size: self.tree_size,
            root: root.try_into().map_err(|_| malformed())?,
            key_id: self.key_id,
            note: self.note,
            signed_at: self.signed_at,
        })
    }
}
