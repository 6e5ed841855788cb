//! The embedded backend: one SQLite file in the data directory, in WAL mode with
//! `synchronous = FULL`, so an acknowledged append survives a crash or power loss.
//!
//! All writes go through one connection and `BEGIN IMMEDIATE`, which takes SQLite's write lock
//! for this process and any other on the same file. Triggers (migration 2) refuse an insert that
//! does not extend the log exactly where it ends, and advance the head and stream tips. So a plan
//! made from the sequencer's cached state is safe to write without reading the head back: if
//! another process wrote meanwhile, the insert is refused and nothing is written.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::log_state::LogState;
use super::plan::{BatchPlan, batch_keys, plan_from_state};
use super::rows::{EVENT_COLUMNS, decode_event, decode_head, decode_idempotency, decode_tip};
use super::side_db;
use super::{
    Backend, BatchContext, LogHead, LogStore, PreparedAppend, StoreError, WriteOutcome, to_i64,
};
use crate::keyring::Keyring;
use crate::log::Event;

/// Rows per multi-row INSERT: 19 columns x 500 rows stays under SQLite's 32,766 parameters.
const ROWS_PER_INSERT: usize = 500;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The log in a SQLite file.
pub struct SqliteStore {
    pub(super) writer: SqlitePool,
    pub(super) readers: SqlitePool,
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
            .foreign_keys(true)
            // Deleted and overwritten content is zeroed in the file: an erased data key leaves
            // no copy in free pages.
            .pragma("secure_delete", "on");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            // SQLite rolls a transaction back by itself on some errors (a full disk, an I/O
            // error); the explicit ROLLBACK that follows then fails, and the connection still
            // counts itself inside a transaction, so every later BEGIN would be refused. Such
            // a connection is closed and replaced rather than handed out again.
            .before_acquire(|connection, _| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(connection)) })
            })
            .connect_with(
                options
                    .clone()
                    .pragma("cache_size", format!("-{}", side_db::WRITER_PAGE_CACHE_KIB)),
            )
            .await?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| StoreError::Migration {
                detail: e.to_string(),
            })?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(
                options
                    .read_only(true)
                    .pragma("cache_size", format!("-{}", side_db::PAGE_CACHE_KIB)),
            )
            .await?;
        Ok(SqliteStore { writer, readers })
    }
}

#[async_trait]
impl LogStore for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn tree(&self) -> &dyn super::TreeStore {
        self
    }

    fn keys(&self) -> &dyn super::KeyStore {
        self
    }

    fn archive(&self) -> &dyn super::archive::ArchiveStore {
        self
    }

    async fn put_blob(&self, content_hash: &str, content: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO document_blobs (content_hash, size, content, stored_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (content_hash) DO NOTHING",
        )
        .bind(content_hash)
        .bind(i64::try_from(content.len()).unwrap_or(i64::MAX))
        .bind(content)
        .bind(crate::log::time::now_timestamp())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn get_blob(&self, content_hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT content FROM document_blobs WHERE content_hash = ?")
                .bind(content_hash)
                .fetch_optional(&self.readers)
                .await?;
        Ok(row.map(|(content,)| content))
    }

    async fn head(&self) -> Result<LogHead, StoreError> {
        let mut connection = self.readers.acquire().await?;
        read_head(&mut connection).await
    }

    async fn read_page(&self, from_position: u64, limit: u32) -> Result<Vec<Event>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE position >= ? ORDER BY position LIMIT ?"
        );
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

    async fn load_context(
        &self,
        streams: &[String],
        keys: &[String],
    ) -> Result<BatchContext, StoreError> {
        if streams.is_empty() && keys.is_empty() {
            return Ok(BatchContext::default());
        }
        let mut connection = self.readers.acquire().await?;
        load_context(&mut connection, streams, keys).await
    }

    async fn write_planned(
        &self,
        _expected: &LogHead,
        plan: &BatchPlan,
    ) -> Result<WriteOutcome, StoreError> {
        // The triggers compare each row with the head, so `_expected` need not be sent.
        match self.write_fast(plan).await {
            Ok(()) => Ok(WriteOutcome::Committed),
            Err(error) if is_stale(&error) => Ok(WriteOutcome::Stale),
            Err(error) => Err(StoreError::from_commit(error)),
        }
    }

    async fn commit_locked(
        &self,
        batch: &[PreparedAppend],
        keys: &Keyring,
    ) -> Result<(BatchPlan, LogState), StoreError> {
        // Take the write lock first: everything read below is then the current state.
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let head = read_head(&mut tx).await?;
        let (streams, idempotency_keys) = batch_keys(batch);
        let context = load_context(&mut tx, &streams, &idempotency_keys).await?;
        let state = LogState {
            head: head.clone(),
            tips: context.tips.clone(),
        };
        let plan = plan_from_state(head, context.tips, context.idempotency, keys, batch)?;
        if plan.head.is_some() {
            write_plan(&mut tx, &plan).await?;
            tx.commit().await.map_err(StoreError::from_commit)?;
        } else {
            tx.rollback().await?;
        }
        let after = state.advance(&plan);
        Ok((plan, after))
    }
}

impl SqliteStore {
    /// Writes a plan planned outside the lock. A plan that fits one INSERT statement is written
    /// in autocommit mode, atomic as every statement is (one round trip); anything larger in an
    /// explicit transaction. A stale plan is refused by the triggers and leaves nothing.
    async fn write_fast(&self, plan: &BatchPlan) -> Result<(), sqlx::Error> {
        if plan.idempotency.is_empty()
            && plan.data_keys.is_empty()
            && plan.events.len() <= ROWS_PER_INSERT
        {
            let mut connection = self.writer.acquire().await?;
            return write_plan(&mut connection, plan).await;
        }
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        match write_plan(&mut tx, plan).await {
            Ok(()) => tx.commit().await,
            Err(error) => {
                // The write's own error is the one to report: when SQLite has already rolled
                // back (a full disk), the ROLLBACK fails too, and says nothing useful.
                let _ = tx.rollback().await;
                Err(error)
            }
        }
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

async fn load_context(
    connection: &mut SqliteConnection,
    streams: &[String],
    keys: &[String],
) -> Result<BatchContext, StoreError> {
    let mut context = BatchContext::default();
    for chunk in streams.chunks(ROWS_PER_INSERT) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT stream_id, version, last_hash FROM streams WHERE stream_id IN (",
        );
        let mut list = query.separated(", ");
        for stream in chunk {
            list.push_bind(stream.as_str());
        }
        query.push(")");
        for row in query.build().fetch_all(&mut *connection).await? {
            let (stream, tip) = decode_tip(&row)?;
            context.tips.insert(stream, tip);
        }
    }
    for chunk in keys.chunks(ROWS_PER_INSERT) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT key, request_digest, stream_id, first_position, last_position, first_version, \
             last_version FROM idempotency_keys WHERE key IN (",
        );
        let mut list = query.separated(", ");
        for key in chunk {
            list.push_bind(key.as_str());
        }
        query.push(")");
        for row in query.build().fetch_all(&mut *connection).await? {
            let record = decode_idempotency(&row)?;
            context.idempotency.insert(record.key.clone(), record);
        }
    }
    Ok(context)
}

/// Inserts the plan's events (the triggers advance the head and the stream tips) and its
/// idempotency records.
async fn write_plan(
    connection: &mut SqliteConnection,
    plan: &BatchPlan,
) -> Result<(), sqlx::Error> {
    for chunk in plan.events.chunks(ROWS_PER_INSERT) {
        let mut query =
            QueryBuilder::<Sqlite>::new(format!("INSERT INTO events ({EVENT_COLUMNS}) "));
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
    // New subjects' data keys, in the same transaction as the events sealed under them. A
    // subject that gained a key meanwhile makes the whole write fail (never silently keep
    // events sealed under a key that was not stored).
    for chunk in plan.data_keys.chunks(ROWS_PER_INSERT) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO data_keys (key_id, subject, kek_version, wrapped, created_at) ",
        );
        query.push_values(chunk, |mut row, key| {
            row.push_bind(key.key_id.as_str())
                .push_bind(key.subject.as_str())
                .push_bind(key.kek_version.map(i64::from))
                .push_bind(key.wrapped.clone())
                .push_bind(key.created_at.as_str());
        });
        query.build().execute(&mut *connection).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_log_s_connections_have_bounded_page_caches() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("log.db")).await.unwrap();
        let cache = |pool: SqlitePool| async move {
            let (size,): (i64,) = sqlx::query_as("PRAGMA cache_size")
                .fetch_one(&pool)
                .await
                .unwrap();
            size
        };
        assert_eq!(
            cache(store.writer.clone()).await,
            -i64::from(side_db::WRITER_PAGE_CACHE_KIB)
        );
        for _ in 0..4 {
            assert_eq!(
                cache(store.readers.clone()).await,
                -i64::from(side_db::PAGE_CACHE_KIB)
            );
        }
    }
}
