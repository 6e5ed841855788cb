//! Why the vault could not seal, open, wrap or find a key. Messages name key ids, subjects and
//! versions, never key material or client data.

use thiserror::Error;

use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum VaultError {
    #[error("the operating system's random source failed")]
    NoRandomness,
    #[error("malformed {what}")]
    Malformed { what: &'static str },
    #[error("a value could not be sealed")]
    SealFailed,
    /// Wrong key, wrong place, or altered bytes: AES-GCM's tag did not verify.
    #[error("a sealed value did not open: it was altered, moved, or sealed under another key")]
    OpenFailed,
    #[error("data key {key_id} is not known")]
    UnknownDataKey { key_id: String },
    /// The subject's data key was destroyed: nothing more can be sealed for it.
    #[error("the data of {subject} has been erased")]
    SubjectErased { subject: String },
    #[error("key-encryption key version {version} is not available")]
    KekUnavailable { version: u32 },
    #[error("master key: {detail}")]
    MasterKey { detail: String },
    #[error("{operation} is not supported by the {provider} master-key provider")]
    Unsupported {
        provider: &'static str,
        operation: &'static str,
    },
    #[error("key-encryption key version {version} still wraps {count} keys; rewrap them first")]
    VersionInUse { version: u32, count: u64 },
    #[error("key-encryption key version {version} is the current one; rotate first")]
    CurrentVersion { version: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}
