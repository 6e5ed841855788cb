//! Persistence of the log: one interface ([`LogStore`]), two backends, one sequencer.
//!
//! Writers never touch the database directly. [`EventLog::append`] validates a request in the
//! caller's task, then hands it to the [`sequencer`], which coalesces whatever is waiting into one
//! write (group commit). [`plan`] decides each request's fate and assigns positions, versions,
//! both chain links and signatures, from the log's end as the sequencer remembers it; every
//! backend's write refuses a plan whose view of the log's end is stale, and the batch is then
//! planned again under the database's lock. So several processes on one PostgreSQL database
//! extend one chain, and readers never see gaps.

pub mod append;
pub mod archive;
mod archive_postgres;
mod archive_sqlite;
pub mod error;
pub mod event_log;
pub mod keys;
mod keys_postgres;
mod keys_sqlite;
pub mod leadership;
pub mod log_state;
pub mod pages;
pub mod plan;
pub mod postgres;
mod rows;
pub mod sequencer;
pub mod side_db;
pub mod sqlite;
pub mod tree;
mod tree_postgres;
mod tree_sqlite;

use async_trait::async_trait;

use crate::keyring::Keyring;
use crate::log::Event;
use crate::log::envelope::EventHash;

pub use append::{AppendOutcome, AppendRequest, PreparedAppend};
pub use error::{AppendError, StoreError};
pub use event_log::{EventLog, LogOptions, open_existing_store, open_store};
pub use keys::{KeyStore, Rewrap, StoredDataKey};
pub use log_state::LogState;
use plan::{BatchPlan, IdempotencyRecord, StreamTip};
use std::collections::HashMap;
pub use tree::{LeafData, StoredCheckpoint, TreeStore};

/// Which database holds the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// The recorded end of the log: last position (0 when empty), its hash and the key in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHead {
    pub position: u64,
    pub hash: Option<EventHash>,
    pub key_id: Option<String>,
}

/// What every backend provides. Reads are paged so that no caller loads the whole log.
#[async_trait]
pub trait LogStore: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// The Merkle tree and checkpoints kept beside the log.
    fn tree(&self) -> &dyn TreeStore;

    /// The vault's wrapped data keys and sealed document contents.
    fn keys(&self) -> &dyn KeyStore;

    /// Paged copies of the tables a backup holds besides the events, and their restoration.
    fn archive(&self) -> &dyn archive::ArchiveStore;

    /// The recorded head of the log.
    async fn head(&self) -> Result<LogHead, StoreError>;

    /// Up to `limit` events from `from_position` on, in position order.
    async fn read_page(&self, from_position: u64, limit: u32) -> Result<Vec<Event>, StoreError>;

    /// Up to `limit` events of one stream from `from_version` on, in version order.
    async fn read_stream_page(
        &self,
        stream: &str,
        from_version: u64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError>;

    /// Current tips of `streams` and records of idempotency `keys`, read without the log lock.
    async fn load_context(
        &self,
        streams: &[String],
        keys: &[String],
    ) -> Result<BatchContext, StoreError>;

    /// Writes a plan made from `expected` (the head it was planned from) without holding the
    /// log lock. The write checks that the log still ends at `expected`; if it does not, nothing
    /// is written and [`WriteOutcome::Stale`] is returned. Called only by the sequencer.
    async fn write_planned(
        &self,
        expected: &LogHead,
        plan: &BatchPlan,
    ) -> Result<WriteOutcome, StoreError>;

    /// Stores document content under its blake3 hash (lowercase hex); storing the same bytes
    /// again changes nothing.
    async fn put_blob(&self, content_hash: &str, content: &[u8]) -> Result<(), StoreError>;

    /// The content stored under `content_hash`, if any.
    async fn get_blob(&self, content_hash: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Takes the log lock, reads the current state, plans the batch and writes it, atomically.
    /// Returns the plan and the state after it. Called only by the sequencer.
    async fn commit_locked(
        &self,
        batch: &[PreparedAppend],
        keys: &Keyring,
    ) -> Result<(BatchPlan, LogState), StoreError>;
}

/// What a batch's planning needs from the database besides the head.
#[derive(Debug, Default)]
pub struct BatchContext {
    pub tips: HashMap<String, StreamTip>,
    pub idempotency: HashMap<String, IdempotencyRecord>,
}

/// Whether a plan made outside the lock was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Committed,
    /// The log had moved on; nothing was written.
    Stale,
}

/// Converts a stored (signed) integer into a position or version, refusing negatives.
pub(crate) fn to_u64(value: i64) -> Option<u64> {
    u64::try_from(value).ok()
}

/// Converts a position or version into the stored integer (positions never exceed 2^53).
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
