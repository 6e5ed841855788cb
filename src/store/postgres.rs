//! The production backend: PostgreSQL, shared by any number of Docket processes.
//!
//! A batch is written by one statement that first moves the single `log_head` row from the
//! position the plan started at to the plan's last position, and inserts the events only if that
//! update matched. The row lock that update takes orders writers in every process: a writer
//! whose view of the head is stale matches nothing, writes nothing, and plans again while holding
//! the lock (`SELECT ... FOR UPDATE`). So each batch extends exactly the head the previous one
//! left: the chain cannot fork, and a reader never sees a later position before an earlier one.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgConnection, PgPool};

use super::log_state::LogState;
use super::plan::{BatchPlan, IdempotencyRecord, batch_keys, plan_from_state};
use super::rows::{EVENT_COLUMNS, decode_event, decode_head, decode_idempotency, decode_tip};
use super::{
    Backend, BatchContext, LogHead, LogStore, PreparedAppend, StoreError, WriteOutcome, to_i64,
};
use crate::keyring::Keyring;
use crate::log::Event;

/// How long a pooled connection may sit idle before it is checked again.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The log in a PostgreSQL database.
pub struct PostgresStore {
    pub(super) pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` and applies the migrations (concurrent starters are serialised by
    /// the migrator's advisory lock).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(|_| StoreError::Unavailable {
            detail: "invalid database URL".into(),
        })?;
        // A connection that sat idle is pinged before use, so one the server closed meanwhile
        // is replaced instead of failing a write; a busy connection is not, which saves a round
        // trip per batch. A write on a connection that breaks under it is reported as
        // `CommitOutcomeUnknown`, and the caller retries with its idempotency key.
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_BEFORE_PING {
                        sqlx::Connection::ping(connection).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migration {
                detail: e.to_string(),
            })?;
        Ok(PostgresStore { pool })
    }
}

#[async_trait]
impl LogStore for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
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
             VALUES ($1, $2, $3, $4) ON CONFLICT (content_hash) DO NOTHING",
        )
        .bind(content_hash)
        .bind(i64::try_from(content.len()).unwrap_or(i64::MAX))
        .bind(content)
        .bind(crate::log::time::now_timestamp())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_blob(&self, content_hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT content FROM document_blobs WHERE content_hash = $1")
                .bind(content_hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(content,)| content))
    }

    async fn head(&self) -> Result<LogHead, StoreError> {
        let row = sqlx::query("SELECT position, hash, key_id FROM log_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        decode_head(&row)
    }

    async fn read_page(&self, from_position: u64, limit: u32) -> Result<Vec<Event>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE position >= $1 ORDER BY position LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(to_i64(from_position))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
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
            "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND stream_version >= $2 \
             ORDER BY stream_version LIMIT $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(stream)
            .bind(to_i64(from_version))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
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
        let mut connection = self.pool.acquire().await?;
        load_context(&mut connection, streams, keys).await
    }

    async fn write_planned(
        &self,
        expected: &LogHead,
        plan: &BatchPlan,
    ) -> Result<WriteOutcome, StoreError> {
        let mut connection = self.pool.acquire().await?;
        match write_plan(&mut connection, expected.position, plan).await {
            Ok(true) => Ok(WriteOutcome::Committed),
            Ok(false) => Ok(WriteOutcome::Stale),
            Err(error) if is_unique_violation(&error) => Ok(WriteOutcome::Stale),
            Err(error) => Err(StoreError::from_commit(error)),
        }
    }

    async fn commit_locked(
        &self,
        batch: &[PreparedAppend],
        keys: &Keyring,
    ) -> Result<(BatchPlan, LogState), StoreError> {
        // The head row's lock orders this batch after every other writer's.
        let mut tx = self.pool.begin().await?;
        let row =
            sqlx::query("SELECT position, hash, key_id FROM log_head WHERE id = 1 FOR UPDATE")
                .fetch_one(&mut *tx)
                .await?;
        let head = decode_head(&row)?;
        let (streams, idempotency_keys) = batch_keys(batch);
        let context = load_context(&mut tx, &streams, &idempotency_keys).await?;
        let state = LogState {
            head: head.clone(),
            tips: context.tips.clone(),
        };
        let plan = plan_from_state(head.clone(), context.tips, context.idempotency, keys, batch)?;
        if plan.head.is_some() {
            if !write_plan(&mut tx, head.position, &plan).await? {
                return Err(StoreError::Database {
                    detail: "log head moved while locked".into(),
                });
            }
            tx.commit().await.map_err(StoreError::from_commit)?;
        } else {
            tx.rollback().await?;
        }
        let after = state.advance(&plan);
        Ok((plan, after))
    }
}

/// A unique violation on the log's own tables: another writer got there first. One on
/// `data_keys` is not: a subject that gained a key meanwhile is an error, not a retry.
fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("23505")
            && !db.constraint().is_some_and(|name| name.starts_with("data_keys")))
}

async fn load_context(
    connection: &mut PgConnection,
    streams: &[String],
    keys: &[String],
) -> Result<BatchContext, StoreError> {
    let mut context = BatchContext::default();
    if !streams.is_empty() {
        let rows = sqlx::query(
            "SELECT stream_id, version, last_hash FROM streams WHERE stream_id = ANY($1)",
        )
        .bind(streams)
        .fetch_all(&mut *connection)
        .await?;
        for row in &rows {
            let (stream, tip) = decode_tip(row)?;
            context.tips.insert(stream, tip);
        }
    }
    if !keys.is_empty() {
        let rows = sqlx::query(
            "SELECT key, request_digest, stream_id, first_position, last_position, first_version, \
             last_version FROM idempotency_keys WHERE key = ANY($1)",
        )
        .bind(keys)
        .fetch_all(&mut *connection)
        .await?;
        for row in &rows {
            let record = decode_idempotency(row)?;
            context.idempotency.insert(record.key.clone(), record);
        }
    }
    Ok(context)
}

/// Writes the whole plan in one statement (one round trip, atomic on its own): the head moves
/// from `expected_head` to the plan's head, provided every stream the batch extends is still at
/// the version the plan assumed, and only if it did are the events, stream tips and idempotency
/// records inserted. Returns false, having written nothing, if the log had moved.
async fn write_plan(
    connection: &mut PgConnection,
    expected_head: u64,
    plan: &BatchPlan,
) -> Result<bool, sqlx::Error> {
    let Some(head) = &plan.head else {
        return Ok(true);
    };
    let events = &plan.events;
    let text = |f: &dyn Fn(&Event) -> Option<String>| events.iter().map(f).collect::<Vec<_>>();
    let bytes = |f: &dyn Fn(&Event) -> Option<Vec<u8>>| events.iter().map(f).collect::<Vec<_>>();
    let numbers =
        |f: &dyn Fn(&Event) -> u64| events.iter().map(|e| to_i64(f(e))).collect::<Vec<_>>();
    let (tip_streams, tip_versions, tip_hashes): (Vec<_>, Vec<_>, Vec<_>) = plan
        .stream_tips
        .iter()
        .map(|(stream, tip)| (stream.clone(), to_i64(tip.version), tip.hash.to_vec()))
        .collect();
    // Each stream's version before the batch: its first new event's version minus one.
    let mut prior: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for event in events {
        prior
            .entry(event.stream.as_str())
            .or_insert(to_i64(event.stream_version) - 1);
    }
    let (prior_streams, prior_versions): (Vec<String>, Vec<i64>) = prior
        .into_iter()
        .map(|(stream, version)| (stream.to_owned(), version))
        .unzip();
    let records = &plan.idempotency;
    let data_keys = &plan.data_keys;
    let record_numbers = |f: &dyn Fn(&IdempotencyRecord) -> u64| {
        records.iter().map(|r| to_i64(f(r))).collect::<Vec<_>>()
    };

    let sql = format!(
        "WITH head AS (\
            UPDATE log_head SET position = $1, hash = $2, key_id = $3 \
            WHERE id = 1 AND position = $4 AND NOT EXISTS (\
                SELECT 1 FROM UNNEST($34::text[], $35::bigint[]) AS expected(stream_id, version) \
                LEFT JOIN streams USING (stream_id) \
                WHERE COALESCE(streams.version, 0) <> expected.version) \
            RETURNING 1), \
         new_events AS (\
            INSERT INTO events ({EVENT_COLUMNS}) \
            SELECT * FROM UNNEST($5::bigint[], $6::text[], $7::text[], $8::bigint[], $9::text[], \
                $10::bigint[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], \
                $16::text[], $17::text[], $18::text[], $19::bytea[], $20::bytea[], $21::text[], \
                $22::bytea[], $23::bytea[]) \
            WHERE EXISTS (SELECT 1 FROM head) RETURNING 1), \
         new_tips AS (\
            INSERT INTO streams (stream_id, version, last_hash) \
            SELECT * FROM UNNEST($24::text[], $25::bigint[], $26::bytea[]) \
            WHERE EXISTS (SELECT 1 FROM head) \
            ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, \
                last_hash = EXCLUDED.last_hash), \
         new_keys AS (\
            INSERT INTO idempotency_keys (key, request_digest, stream_id, first_position, \
                last_position, first_version, last_version) \
            SELECT * FROM UNNEST($27::text[], $28::bytea[], $29::text[], $30::bigint[], \
                $31::bigint[], $32::bigint[], $33::bigint[]) \
            WHERE EXISTS (SELECT 1 FROM head)), \
         new_data_keys AS (\
            INSERT INTO data_keys (key_id, subject, kek_version, wrapped, created_at) \
            SELECT * FROM UNNEST($36::text[], $37::text[], $38::bigint[], $39::bytea[], \
                $40::text[]) \
            WHERE EXISTS (SELECT 1 FROM head)) \
         SELECT count(*) FROM new_events"
    );
    let inserted: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(to_i64(head.position))
        .bind(head.hash.map(|h| h.to_vec()))
        .bind(head.key_id.as_deref())
        .bind(to_i64(expected_head))
        .bind(numbers(&|e| e.position))
        .bind(text(&|e| Some(e.id.clone())))
        .bind(text(&|e| Some(e.stream.clone())))
        .bind(numbers(&|e| e.stream_version))
        .bind(text(&|e| Some(e.event_type.clone())))
        .bind(numbers(&|e| u64::from(e.schema_version)))
        .bind(text(&|e| Some(e.payload.clone())))
        .bind(text(&|e| Some(e.actor.clone())))
        .bind(text(&|e| e.request_id.clone()))
        .bind(text(&|e| Some(e.occurred_at.clone())))
        .bind(text(&|e| Some(e.recorded_at.clone())))
        .bind(text(&|e| e.correlation_id.clone()))
        .bind(text(&|e| e.causation_id.clone()))
        .bind(text(&|e| e.idempotency_key.clone()))
        .bind(bytes(&|e| e.prev_hash.map(|h| h.to_vec())))
        .bind(bytes(&|e| e.stream_prev_hash.map(|h| h.to_vec())))
        .bind(text(&|e| Some(e.key_id.clone())))
        .bind(bytes(&|e| Some(e.hash.to_vec())))
        .bind(bytes(&|e| Some(e.signature.to_vec())))
        .bind(tip_streams)
        .bind(tip_versions)
        .bind(tip_hashes)
        .bind(records.iter().map(|r| r.key.clone()).collect::<Vec<_>>())
        .bind(
            records
                .iter()
                .map(|r| r.digest.to_vec())
                .collect::<Vec<_>>(),
        )
        .bind(records.iter().map(|r| r.stream.clone()).collect::<Vec<_>>())
        .bind(record_numbers(&|r| r.first_position))
        .bind(record_numbers(&|r| r.last_position))
        .bind(record_numbers(&|r| r.first_version))
        .bind(record_numbers(&|r| r.last_version))
        .bind(prior_streams)
        .bind(prior_versions)
        .bind(
            data_keys
                .iter()
                .map(|k| k.key_id.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            data_keys
                .iter()
                .map(|k| k.subject.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            data_keys
                .iter()
                .map(|k| k.kek_version.map(i64::from))
                .collect::<Vec<_>>(),
        )
        .bind(
            data_keys
                .iter()
                .map(|k| k.wrapped.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            data_keys
                .iter()
                .map(|k| k.created_at.clone())
                .collect::<Vec<_>>(),
        )
        .fetch_one(&mut *connection)
        .await?;
    Ok(inserted as usize == events.len())
}
