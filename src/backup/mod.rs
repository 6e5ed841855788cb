//! Backups and restores: encrypted, signed archives of everything Docket cannot rebuild (the
//! log, the access chain, the wrapped data keys, document contents, checkpoints and the
//! credential store), written while Docket serves, and restored only after the archive's
//! signature, every part's hash, the whole chain and every checkpoint have been verified.
//!
//! Invariants:
//! - An archive holds the log up to a head taken when the backup starts (events are immutable,
//!   so that is a consistent cut), and never the key-encryption key or a private signing key.
//! - A restore writes nothing to its target until the whole archive has verified, into a
//!   staging copy outside the target, and writes only into an empty target.
//! - A restore destroys, before anything can read the restored data, the data keys of every
//!   subject erased after the archive was taken that any later archive or surviving log knows.
//!
//! docs/backup-format.md specifies the archive; docs/operations.md tells operators how to use it.

pub mod erasures;
pub mod format;
mod kek;
pub mod reader;
pub mod records;
pub mod restore;
pub mod schedule;
pub mod staging;
pub mod target;
pub mod writer;

use thiserror::Error;

use crate::store::StoreError;

pub use restore::{RestoreOptions, RestoreReport, restore};
pub use target::{ArchiveInfo, Target};
pub use writer::{BackupReport, write_backup};

/// Why a backup or a restore failed. Messages never carry key material, client data or a
/// credential; a restore that fails has written nothing to its target.
#[derive(Debug, Error)]
pub enum BackupError {
    /// The target (a directory or an object store) could not be read or written.
    #[error("backup target: {detail}")]
    Target { detail: String },
    /// The target URL or path is not one Docket can use.
    #[error("unusable backup target {target}: {reason}")]
    BadTarget {
        target: String,
        reason: &'static str,
    },
    /// No archive with that name, or none at all, in the target.
    #[error("no archive {name} in the target")]
    NoArchive { name: String },
    /// The manifest or its signature file is missing or not what the format says.
    #[error("the archive is malformed: {what}")]
    Malformed { what: &'static str },
    /// The manifest's signature does not verify.
    #[error("the archive's manifest signature does not verify")]
    BadSignature,
    /// The manifest was signed by a key that is not the log's key in force at its head.
    #[error("the archive's manifest was not signed by the log's key in force at its head")]
    UntrustedSigner,
    /// A part's stored bytes are not the ones the manifest names.
    #[error("part {part} of the archive does not match its hash in the manifest")]
    PartHashMismatch { part: String },
    /// A chunk failed to decrypt: altered, moved or from elsewhere.
    #[error("chunk {index} of part {part} was altered, moved or taken from elsewhere")]
    ChunkRejected { part: String, index: u64 },
    /// A part ends before its final chunk, or goes on after it.
    #[error("part {part} of the archive is truncated or extended")]
    Truncated { part: String },
    /// A part's framing or records cannot be read.
    #[error("part {part} of the archive is malformed")]
    PartMalformed { part: String },
    /// The archive's contents disagree with its manifest (counts, head).
    #[error("the archive's {what} does not match its manifest")]
    Inconsistent { what: &'static str },
    /// The archived log or access chain does not verify.
    #[error("the archived {chain} does not verify: {detail}")]
    ChainBroken { chain: &'static str, detail: String },
    /// A checkpoint in the archive does not hold against the archived log.
    #[error("the archived checkpoint of size {size} does not hold against the archived log")]
    CheckpointBroken { size: u64 },
    /// Encryption or decryption could not run (the data key could not be wrapped or unwrapped).
    #[error("the archive's data key could not be sealed or opened")]
    Crypto,
    /// The key-encryption key needed is not available (restores need the KEK file or variable).
    #[error("key-encryption key unavailable: {detail}")]
    MasterKey { detail: String },
    /// The restore target is not empty.
    #[error("the restore target is not empty: {what}")]
    TargetNotEmpty { what: String },
    /// A restore was asked for without saying where erasures made after the archive are.
    #[error(
        "say where later erasures are: --erasures-from a surviving data directory or database, \
         or --no-surviving-log when none survives"
    )]
    ErasureSourceRequired,
    /// A later archive of the log lists erased subjects, but no key of the log vouches for its
    /// manifest.
    #[error(
        "later archive {name} lists erasures, but {reason}: move it out of the target, or pass \
         --accept-unverified-erasures to apply its list anyway"
    )]
    UnverifiedLaterArchive { name: String, reason: &'static str },
    /// A projection could not be rebuilt from the restored log (`docket projections status`
    /// says why).
    #[error("the projection {name} could not be rebuilt from the restored log")]
    Projection { name: String },
    /// The log, the access chain or another store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The credential store failed.
    #[error("credential store: {0}")]
    Credentials(#[from] crate::identity::credentials::CredentialError),
}

impl BackupError {
    /// A stable machine code for scripts and logs.
    pub fn code(&self) -> &'static str {
        match self {
            BackupError::Target { .. } => "TARGET_UNAVAILABLE",
            BackupError::BadTarget { .. } => "BAD_TARGET",
            BackupError::NoArchive { .. } => "NO_ARCHIVE",
            BackupError::Malformed { .. } => "ARCHIVE_MALFORMED",
            BackupError::BadSignature => "BAD_SIGNATURE",
            BackupError::UntrustedSigner => "UNTRUSTED_SIGNER",
            BackupError::PartHashMismatch { .. } => "PART_HASH_MISMATCH",
            BackupError::ChunkRejected { .. } => "CHUNK_REJECTED",
            BackupError::Truncated { .. } => "TRUNCATED",
            BackupError::PartMalformed { .. } => "PART_MALFORMED",
            BackupError::Inconsistent { .. } => "INCONSISTENT",
            BackupError::ChainBroken { .. } => "CHAIN_BROKEN",
            BackupError::CheckpointBroken { .. } => "CHECKPOINT_BROKEN",
            BackupError::Crypto => "CRYPTO",
            BackupError::MasterKey { .. } => "MASTER_KEY_UNAVAILABLE",
            BackupError::TargetNotEmpty { .. } => "TARGET_NOT_EMPTY",
            BackupError::ErasureSourceRequired => "ERASURE_SOURCE_REQUIRED",
            BackupError::UnverifiedLaterArchive { .. } => "UNVERIFIED_LATER_ARCHIVE",
            BackupError::Projection { .. } => "PROJECTION_REBUILD_FAILED",
            BackupError::Store(_) => "STORE",
            BackupError::Credentials(_) => "CREDENTIALS",
        }
    }
}

impl From<object_store::Error> for BackupError {
    fn from(error: object_store::Error) -> Self {
        // object_store's messages name paths and the store, never secrets of Docket's.
        BackupError::Target {
            detail: error.to_string(),
        }
    }
}
