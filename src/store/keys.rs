//! Persistence of the vault's data keys (wrapped, never plain) and of sealed document
//! contents, beside the log in the same database, behind one interface ([`KeyStore`]).
//!
//! A data key row is never deleted: erasing a subject clears its wrapped key and marks the row
//! erased, so the subject can never be given a new key and its sealed data stays unreadable.

use async_trait::async_trait;

use super::StoreError;

/// One subject's data key as stored: wrapped under `kek_version`, or erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDataKey {
    pub key_id: String,
    pub subject: String,
    /// `None` once erased.
    pub kek_version: Option<u32>,
    /// `None` once erased.
    pub wrapped: Option<Vec<u8>>,
    pub created_at: String,
    pub erased_at: Option<String>,
}

/// A rewrap: `key_id`, found under `from_version`, is now `wrapped` under `to_version`.
#[derive(Debug, Clone)]
pub struct Rewrap {
    pub key_id: String,
    pub from_version: u32,
    pub to_version: u32,
    pub wrapped: Vec<u8>,
}

/// The vault's tables of one backend.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores `key` unless its subject has a key already; returns the subject's key either way.
    async fn insert_data_key(&self, key: &StoredDataKey) -> Result<StoredDataKey, StoreError>;

    /// The keys with these ids (in no particular order; unknown ids are left out).
    async fn data_keys(&self, key_ids: &[String]) -> Result<Vec<StoredDataKey>, StoreError>;

    /// The key of `subject`, if it has one.
    async fn subject_key(&self, subject: &str) -> Result<Option<StoredDataKey>, StoreError>;

    /// Up to `limit` keys wrapped under a version below `version`, after `after_key_id` in key
    /// id order: what rotating to `version` has still to rewrap.
    async fn keys_wrapped_below(
        &self,
        version: u32,
        after_key_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredDataKey>, StoreError>;

    /// Applies rewraps in one transaction; each applies only if the key is still wrapped under
    /// its `from_version` (a concurrent rotation or erasure wins). Returns how many applied.
    async fn rewrap(&self, rewraps: &[Rewrap]) -> Result<u64, StoreError>;

    /// Destroys the wrapped key of `subject` and the contents sealed under it; `false` when it
    /// had no key or was erased already.
    async fn erase_subject_key(&self, subject: &str, erased_at: &str) -> Result<bool, StoreError>;

    /// How many keys each KEK version wraps.
    async fn kek_usage(&self) -> Result<Vec<(u32, u64)>, StoreError>;

    /// Stores sealed document content under (data key, plaintext content hash).
    async fn put_sealed_content(
        &self,
        key_id: &str,
        content_hash: &str,
        size: u64,
        sealed: &[u8],
    ) -> Result<(), StoreError>;

    /// The sealed content stored under (data key, content hash).
    async fn sealed_content(
        &self,
        key_id: &str,
        content_hash: &str,
    ) -> Result<Option<Vec<u8>>, StoreError>;
}

pub(super) fn version_of(value: Option<i64>) -> Result<Option<u32>, StoreError> {
    value
        .map(|v| {
            u32::try_from(v).map_err(|_| StoreError::Database {
                detail: "a stored key-encryption key version is out of range".into(),
            })
        })
        .transpose()
}
