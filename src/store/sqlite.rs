//! The embedded backend: one SQLite file in the data directory, in WAL mode with
//! `synchronous = FULL`, so an acknowledged append survives a crash or power loss.
//!
//! All writes go through one connection and `BEGIN IMMEDIATE`, which takes SQLite's write lock
//! for this process and any other on the same file. Triggers (migration 2) refuse an insert that
//! does not extend the log exactly where it ends, and advance the head and stream tips. So the
//! sequencer plans from its cached state without reading the database; if another process wrote
//! meanwhile, the insert is refused and the batch is planned again under the lock.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::plan::{BatchOutcome, BatchPlan, IdempotencyRecord, StreamTip, plan_from_state};
use super::rows::{EVENT_COLUMNS, decode_event, decode_head, decode_idempotency, decode_tip};
use super::state_cache::{LogState, StateCache};
use super::{Backend, LogHead, LogStore, PreparedAppend, StoreError, to_i64};
use crate::keyring::Keyring;
use crate::log::Event;

/// Rows per multi-row INSERT: 19 columns x 500 rows stays under SQLite's 32,766 parameters.
const ROWS_PER_INSERT: usize = 500;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The log in a SQLite file.
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
    state: StateCache,
}

impl SqliteStore {
    /// Opens (creating if needed) `path` and applies the migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(StoreError::from)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| StoreError::Migration { detail: e.to_string() })?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteStore { writer, readers, state: StateCache::default() })
    }
}

#[async_trait]
impl LogStore for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn head(&self) -> Result<LogHead, StoreError> {
        let mut connection = self.readers.acquire().await?;
        read_head(&mut connection).await
    }

    async fn read_page(&self, from_position: u64, limit: u32) -> Result<Vec<Event>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE position >= ? ORDER BY position LIMIT ?");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(to_i64(from_position))
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(decode_event).collect()
    }

    async fn read_stream_page(
        &self,
        stream: &str,
        from_version: u64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ? AND stream_version >= ? \
             ORDER BY stream_version LIMIT ?"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(stream)
            .bind(to_i64(from_version))
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(decode_event).collect()
    }

    async fn commit_batch(
        &self,
        batch: &[PreparedAppend],
        keys: &Keyring,
    ) -> Result<BatchOutcome, StoreError> {
        // Fast path: plan from the cached end of the log, reading only what the cache lacks.
        if let Some(mut state) = self.state.take() {
            let mut reader = self.readers.acquire().await?;
            let tips = batch_tips(&mut reader, &mut state, batch).await?;
            let idempotency = load_idempotency(&mut reader, batch).await?;
            drop(reader);
            let plan = plan_from_state(state.head.clone(), tips, idempotency, keys, batch)?;
            if plan.head.is_none() {
                self.state.put(state);
                return Ok(BatchOutcome { outcomes: plan.outcomes });
            }
            let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
            match write_plan(&mut tx, &plan).await {
                Ok(()) => {
                    tx.commit().await.map_err(StoreError::from_commit)?;
                    self.state.put(state.advance(&plan));
                    return Ok(BatchOutcome { outcomes: plan.outcomes });
                }
                Err(error) if is_stale(&error) => {
                    tracing::debug!("log moved under the cache; planning again under the lock");
                    tx.rollback().await?;
                }
                Err(error) => return Err(error.into()),
            }
        }

        // Locked path: take the write lock, then read the state, which is now current.
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut state = LogState { head: read_head(&mut tx).await?, tips: HashMap::new() };
        let tips = batch_tips(&mut tx, &mut state, batch).await?;
        let idempotency = load_idempotency(&mut tx, batch).await?;
        let plan = plan_from_state(state.head.clone(), tips, idempotency, keys, batch)?;
        if plan.head.is_some() {
            write_plan(&mut tx, &plan).await?;
            tx.commit().await.map_err(StoreError::from_commit)?;
        } else {
            tx.rollback().await?;
        }
        self.state.put(state.advance(&plan));
        Ok(BatchOutcome { outcomes: plan.outcomes })
    }
}

/// The database refused the write because the log no longer ends where the plan assumed.
fn is_stale(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.message().contains("docket: stale log head")
                || db.message().contains("UNIQUE constraint failed: events")
        }
        _ => false,
    }
}

async fn read_head(connection: &mut SqliteConnection) -> Result<LogHead, StoreError> {
    let row = sqlx::query("SELECT position, hash, key_id FROM log_head WHERE id = 1")
        .fetch_one(&mut *connection)
        .await?;
    decode_head(&row)
}

/// Tips of the batch's streams: from the cache, the rest from the database (and then cached).
async fn batch_tips(
    connection: &mut SqliteConnection,
    state: &mut LogState,
    batch: &[PreparedAppend],
) -> Result<HashMap<String, StreamTip>, StoreError> {
    let mut tips = HashMap::new();
    let mut missing: Vec<&str> = Vec::new();
    for request in batch {
        let stream = request.stream.as_str();
        match state.tips.get(stream) {
            Some(tip) => {
                tips.insert(stream.to_owned(), *tip);
            }
            None => missing.push(stream),
        }
    }
    missing.sort_unstable();
    missing.dedup();
    for chunk in missing.chunks(ROWS_PER_INSERT) {
        let mut query =
            QueryBuilder::<Sqlite>::new("SELECT stream_id, version, last_hash FROM streams WHERE stream_id IN (");
        let mut list = query.separated(", ");
        for stream in chunk {
            list.push_bind(*stream);
        }
        query.push(")");
        for row in query.build().fetch_all(&mut *connection).await? {
            let (stream, tip) = decode_tip(&row)?;
            state.tips.insert(stream.clone(), tip);
            tips.insert(stream, tip);
        }
    }
    Ok(tips)
}

async fn load_idempotency(
    connection: &mut SqliteConnection,
    batch: &[PreparedAppend],
) -> Result<HashMap<String, IdempotencyRecord>, StoreError> {
    let keys: Vec<&str> = batch.iter().filter_map(|r| r.idempotency_key.as_deref()).collect();
    let mut records = HashMap::new();
    for chunk in keys.chunks(ROWS_PER_INSERT) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT key, request_digest, stream_id, first_position, last_position, first_version, \
             last_version FROM idempotency_keys WHERE key IN (",
        );
        let mut list = query.separated(", ");
        for key in chunk {
            list.push_bind(*key);
        }
        query.push(")");
        for row in query.build().fetch_all(&mut *connection).await? {
            let record = decode_idempotency(&row)?;
            records.insert(record.key.clone(), record);
        }
    }
    Ok(records)
}

/// Inserts the plan's events (the triggers advance the head and the stream tips) and its
/// idempotency records.
async fn write_plan(connection: &mut SqliteConnection, plan: &BatchPlan) -> Result<(), sqlx::Error> {
    for chunk in plan.events.chunks(ROWS_PER_INSERT) {
        let mut query = QueryBuilder::<Sqlite>::new(format!("INSERT INTO events ({EVENT_COLUMNS}) "));
        query.push_values(chunk, |mut row, event| {
            row.push_bind(to_i64(event.position))
                .push_bind(event.id.as_str())
                .push_bind(event.stream.as_str())
                .push_bind(to_i64(event.stream_version))
                .push_bind(event.event_type.as_str())
                .push_bind(i64::from(event.schema_version))
                .push_bind(event.payload.as_str())
                .push_bind(event.actor.as_str())
                .push_bind(event.request_id.as_deref())
                .push_bind(event.occurred_at.as_str())
                .push_bind(event.recorded_at.as_str())
                .push_bind(event.correlation_id.as_deref())
                .push_bind(event.causation_id.as_deref())
                .push_bind(event.idempotency_key.as_deref())
                .push_bind(event.prev_hash.map(|h| h.to_vec()))
                .push_bind(event.stream_prev_hash.map(|h| h.to_vec()))
                .push_bind(event.key_id.as_str())
                .push_bind(event.hash.to_vec())
                .push_bind(event.signature.to_vec());
        });
        query.build().execute(&mut *connection).await?;
    }
    for chunk in plan.idempotency.chunks(ROWS_PER_INSERT) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO idempotency_keys (key, request_digest, stream_id, first_position, \
             last_position, first_version, last_version) ",
        );
        query.push_values(chunk, |mut row, record| {
            row.push_bind(record.key.as_str())
                .push_bind(record.digest.to_vec())
                .push_bind(record.stream.as_str())
                .push_bind(to_i64(record.first_position))
                .push_bind(to_i64(record.last_position))
                .push_bind(to_i64(record.first_version))
                .push_bind(to_i64(record.last_version));
        });
        query.build().execute(&mut *connection).await?;
    }
    Ok(())
}
