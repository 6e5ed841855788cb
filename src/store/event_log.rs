//! [`EventLog`]: the handle the rest of Docket uses to append to and read the log.

use std::path::PathBuf;
use std::sync::Arc;

use futures::Stream;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use super::append::{AppendOutcome, AppendRequest, PreparedAppend, SystemAppend};
use super::error::{AppendError, StoreError};
use super::pages::{PAGE_SIZE, log_pages, stream_events};
use super::postgres::PostgresStore;
use super::sequencer::{self, SequencerCounters, SequencerStats, Submission};
use super::sqlite::SqliteStore;
use super::{LogHead, LogStore};
use crate::keyring::Keyring;
use crate::log::limits::DEFAULT_MAX_PAYLOAD_BYTES;
use crate::log::system_events::{GENESIS, KEY_ROTATED};
use crate::log::{Event, ExpectedVersion};
use crate::metrics::{self, AppendResult, LogKind};

/// Where the log lives and how appends are bounded.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub data_dir: PathBuf,
    /// PostgreSQL URL; `None` for the SQLite file in the data directory.
    pub database_url: Option<String>,
    pub max_payload_bytes: usize,
    pub max_batch_events: usize,
}

impl LogOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        LogOptions {
            data_dir: data_dir.into(),
            database_url: None,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            max_batch_events: 4096,
        }
    }
}

/// A key handover, as `docket keys rotate` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRotation {
    pub previous_key_id: String,
    pub next_key_id: String,
    pub position: u64,
}

/// An open log: its store, its keys and its sequencer.
pub struct EventLog {
    store: Arc<dyn LogStore>,
    keys: Arc<Keyring>,
    inbox: mpsc::Sender<Submission>,
    counters: Arc<SequencerCounters>,
    max_payload_bytes: usize,
    /// The last position this process committed (0 before its first commit).
    committed: watch::Sender<u64>,
    /// Which log this is in the process's metrics.
    kind: LogKind,
}

impl EventLog {
    /// Opens the log, creating the data directory, database and genesis event on first use.
    pub async fn open(options: &LogOptions) -> Result<Self, StoreError> {
        create_private_dir(&options.data_dir)?;
        let keys = Arc::new(Keyring::open(&options.data_dir)?);
        let store = open_store(options).await?;
        let (inbox, counters) =
            sequencer::start(store.clone(), keys.clone(), options.max_batch_events);
        let max_payload_bytes = options.max_payload_bytes;
        let log = EventLog {
            store,
            keys,
            inbox,
            counters,
            max_payload_bytes,
            committed: watch::Sender::new(0),
            kind: LogKind::Events,
        };
        log.ensure_genesis().await?;
        Ok(log)
    }

    /// This log, counted in the metrics as `kind` (the access chain is a log of its own).
    pub fn counted_as(mut self, kind: LogKind) -> Self {
        self.kind = kind;
        self
    }

    /// Appends one or several events to one stream, atomically.
    pub async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, AppendError> {
        let prepared = PreparedAppend::prepare(request, self.max_payload_bytes)?;
        self.submit(prepared).await
    }

    /// Hands signing over to a fresh key, with an event signed by the outgoing one.
    pub async fn rotate_key(&self) -> Result<KeyRotation, AppendError> {
        let previous = self
            .head()
            .await?
            .key_id
            .ok_or(AppendError::NotInitialised)?;
        let next = self.keys.create().map_err(StoreError::from)?;
        let request = PreparedAppend::system(
            KEY_ROTATED,
            ExpectedVersion::Any,
            SystemAppend::KeyRotation { next: next.clone() },
        );
        match self.submit(request).await {
            Ok(outcome) => Ok(KeyRotation {
                previous_key_id: previous,
                next_key_id: next.id().to_string(),
                position: outcome.last_position,
            }),
            Err(error) => {
                self.keys.discard(next.id().as_str());
                Err(error)
            }
        }
    }

    /// The recorded head of the log.
    pub async fn head(&self) -> Result<LogHead, StoreError> {
        self.store.head().await
    }

    /// Pages of the whole log from a position on.
    pub fn pages_from(
        &self,
        from_position: u64,
    ) -> impl Stream<Item = Result<Vec<Event>, StoreError>> {
        log_pages(self.store.clone(), from_position, PAGE_SIZE)
    }

    /// One stream's events from a version on.
    pub fn stream_from(
        &self,
        stream: &str,
        from_version: u64,
    ) -> impl Stream<Item = Result<Event, StoreError>> {
        stream_events(self.store.clone(), stream.to_owned(), from_version)
    }

    /// How many batches and requests the sequencer has committed since the log was opened.
    pub fn stats(&self) -> SequencerStats {
        self.counters.snapshot()
    }

    /// The private signing keys, for signing what the log states about itself (checkpoints).
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keys
    }

    pub fn store(&self) -> &Arc<dyn LogStore> {
        &self.store
    }

    /// Watches the last position this process committed: it changes after every append that
    /// wrote something (other processes' appends are found by reading the store).
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.committed.subscribe()
    }

    async fn submit(&self, append: PreparedAppend) -> Result<AppendOutcome, AppendError> {
        let started = std::time::Instant::now();
        let (reply, answer) = oneshot::channel();
        self.inbox
            .send(Submission { append, reply })
            .await
            .map_err(|_| AppendError::ShuttingDown)?;
        let outcome = answer.await.map_err(|_| AppendError::ShuttingDown)?;
        metrics::global().appended(self.kind, started.elapsed(), counted(&outcome));
        let outcome = outcome?;
        if !outcome.replayed {
            self.committed.send_if_modified(|last| {
                let moved = outcome.last_position > *last;
                if moved {
                    *last = outcome.last_position;
                }
                moved
            });
        }
        Ok(outcome)
    }

    /// Writes the genesis event if the log is empty. Another process may win the race; then
    /// its genesis stands and the key made here is discarded.
    async fn ensure_genesis(&self) -> Result<(), StoreError> {
        if self.store.head().await?.position > 0 {
            return Ok(());
        }
        let signer = self.keys.create()?;
        let log_id = uuid::Uuid::now_v7().to_string();
        let genesis = PreparedAppend::system(
            GENESIS,
            ExpectedVersion::NoStream,
            SystemAppend::Genesis {
                log_id,
                signer: signer.clone(),
            },
        );
        match self.submit(genesis).await {
            Ok(_) => Ok(()),
            Err(AppendError::AlreadyInitialised | AppendError::VersionConflict { .. }) => {
                self.keys.discard(signer.id().as_str());
                Ok(())
            }
            Err(AppendError::Store(error)) => Err(error),
            Err(other) => Err(StoreError::Database {
                detail: other.to_string(),
            }),
        }
    }
}

/// What an append came to, as the metrics count it.
fn counted(outcome: &Result<AppendOutcome, AppendError>) -> AppendResult {
    match outcome {
        Ok(outcome) if outcome.replayed => AppendResult::Replayed,
        Ok(outcome) => AppendResult::Committed(
            outcome.last_position.saturating_sub(outcome.first_position) + 1,
        ),
        Err(AppendError::Store(_) | AppendError::ShuttingDown) => AppendResult::Failed,
        Err(_) => AppendResult::Refused,
    }
}

/// Connects to the configured backend and applies its migrations.
pub async fn open_store(options: &LogOptions) -> Result<Arc<dyn LogStore>, StoreError> {
    Ok(match &options.database_url {
        Some(url) => Arc::new(PostgresStore::open(url).await?),
        None => Arc::new(SqliteStore::open(&sqlite_path(options)).await?),
    })
}

/// Opens a log that must already exist (for verification): never creates one.
pub async fn open_existing_store(options: &LogOptions) -> Result<Arc<dyn LogStore>, StoreError> {
    if options.database_url.is_none() && !sqlite_path(options).exists() {
        return Err(StoreError::DataDir {
            detail: format!("no log in {}", options.data_dir.display()),
        });
    }
    open_store(options).await
}

fn sqlite_path(options: &LogOptions) -> PathBuf {
    options.data_dir.join("docket.db")
}

/// Creates the data directory readable by its owner only.
fn create_private_dir(path: &std::path::Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let error = |e: std::io::Error| StoreError::DataDir {
        detail: format!("{}: {e}", path.display()),
    };
    std::fs::create_dir_all(path).map_err(error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(error)
}
