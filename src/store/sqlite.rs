//! The embedded backend: one SQLite file in the data directory, in WAL mode with
//! `synchronous = FULL`, so an acknowledged append survives a crash or power loss.
//!
//! All writes go through one connection and `BEGIN IMMEDIATE`, which takes SQLite's write lock
//! up front; that lock is the log lock, for this process and for any other on the same file.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, QueryBuilder, Sqlite, SqlitePool};

use super::plan::{BatchOutcome, PlanInput, new_event_id, plan_batch};
use super::rows::{EVENT_COLUMNS, decode_event, decode_head, decode_idempotency, decode_tip};
use super::{Backend, LogHead, LogStore, PreparedAppend, StoreError, to_i64};
use crate::keyring::Keyring;
use crate::log::Event;
use crate::log::time::now_timestamp;

/// Rows per multi-row INSERT: 19 columns x 500 rows stays under SQLite's 32,766 parameters.
const ROWS_PER_INSERT: usize = 500;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The log in a SQLite file.
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
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
        Ok(SqliteStore { writer, readers })
    }
}

#[async_trait]
impl LogStore for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn head(&self) -> Result<LogHead, StoreError> {
        let row = sqlx::query("SELECT position, hash, key_id FROM log_head WHERE id = 1")
            .fetch_one(&self.readers)
            .await?;
        decode_head(&row)
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
        // Take the write lock first: everything read below is then the current state.
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query("SELECT position, hash, key_id FROM log_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let head = decode_head(&row)?;

        // Load the streams and idempotency keys this batch touches.
        let mut streams: Vec<&str> = batch.iter().map(|request| request.stream.as_str()).collect();
        streams.sort_unstable();
        streams.dedup();
        let mut tips = HashMap::new();
        for chunk in streams.chunks(ROWS_PER_INSERT) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "SELECT stream_id, version, last_hash FROM streams WHERE stream_id IN (",
            );
            let mut list = query.separated(", ");
            for stream in chunk {
                list.push_bind(*stream);
            }
            query.push(")");
            for row in query.build().fetch_all(&mut *tx).await? {
                let (stream, tip) = decode_tip(&row)?;
                tips.insert(stream, tip);
            }
        }
        let keys_used: Vec<&str> = batch.iter().filter_map(|r| r.idempotency_key.as_deref()).collect();
        let mut idempotency = HashMap::new();
        for chunk in keys_used.chunks(ROWS_PER_INSERT) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "SELECT key, request_digest, stream_id, first_position, last_position, \
                 first_version, last_version FROM idempotency_keys WHERE key IN (",
            );
            let mut list = query.separated(", ");
            for key in chunk {
                list.push_bind(*key);
            }
            query.push(")");
            for row in query.build().fetch_all(&mut *tx).await? {
                let record = decode_idempotency(&row)?;
                idempotency.insert(record.key.clone(), record);
            }
        }

        // Plan: versions, idempotency, positions, links, signatures.
        let signer = head.key_id.as_deref().map(|id| keys.get(id)).transpose()?;
        let recorded_at = now_timestamp();
        let input = PlanInput { head, tips, idempotency, signer, recorded_at: &recorded_at, new_event_id };
        let plan = plan_batch(input, batch);
        let Some(new_head) = plan.head else {
            tx.rollback().await?;
            return Ok(BatchOutcome { outcomes: plan.outcomes, key_id: None });
        };

        // Write exactly the plan.
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
            query.build().execute(&mut *tx).await?;
        }
        let tips: Vec<_> = plan.stream_tips.iter().collect();
        for chunk in tips.chunks(ROWS_PER_INSERT) {
            let mut query = QueryBuilder::<Sqlite>::new("INSERT INTO streams (stream_id, version, last_hash) ");
            query.push_values(chunk, |mut row, (stream, tip)| {
                row.push_bind(stream.as_str()).push_bind(to_i64(tip.version)).push_bind(tip.hash.to_vec());
            });
            query.push(
                " ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, \
                 last_hash = excluded.last_hash",
            );
            query.build().execute(&mut *tx).await?;
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
            query.build().execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE log_head SET position = ?, hash = ?, key_id = ? WHERE id = 1")
            .bind(to_i64(new_head.position))
            .bind(new_head.hash.map(|h| h.to_vec()))
            .bind(new_head.key_id.as_deref())
            .execute(&mut *tx)
            .await?;
        tx.commit().await.map_err(StoreError::from_commit)?;
        Ok(BatchOutcome { outcomes: plan.outcomes, key_id: new_head.key_id })
    }
}
