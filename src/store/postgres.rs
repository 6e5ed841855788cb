//! The production backend: PostgreSQL, shared by any number of Docket processes.
//!
//! Every batch locks the single `log_head` row (`SELECT ... FOR UPDATE`) before it reads stream
//! versions or assigns positions. Writers in all processes therefore commit one after another,
//! each extending the head the previous one left, so the chain cannot fork and a reader never
//! sees a later position before an earlier one. Batches are written with one `UNNEST` insert
//! per table.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool};

use super::plan::{BatchOutcome, PlanInput, new_event_id, plan_batch};
use super::rows::{EVENT_COLUMNS, decode_event, decode_head, decode_idempotency, decode_tip};
use super::{Backend, LogHead, LogStore, PreparedAppend, StoreError, to_i64};
use crate::keyring::Keyring;
use crate::log::Event;
use crate::log::time::now_timestamp;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The log in a PostgreSQL database.
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` and applies the migrations (concurrent starters are serialised by
    /// the migrator's advisory lock).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|_| StoreError::Unavailable { detail: "invalid database URL".into() })?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migration { detail: e.to_string() })?;
        Ok(PostgresStore { pool })
    }
}

#[async_trait]
impl LogStore for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn head(&self) -> Result<LogHead, StoreError> {
        let row = sqlx::query("SELECT position, hash, key_id FROM log_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        decode_head(&row)
    }

    async fn read_page(&self, from_position: u64, limit: u32) -> Result<Vec<Event>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE position >= $1 ORDER BY position LIMIT $2");
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

    async fn commit_batch(
        &self,
        batch: &[PreparedAppend],
        keys: &Keyring,
    ) -> Result<BatchOutcome, StoreError> {
        // The log lock: held until commit, it orders this batch after every earlier one.
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT position, hash, key_id FROM log_head WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *tx)
            .await?;
        let head = decode_head(&row)?;

        // Load the streams and idempotency keys this batch touches.
        let mut streams: Vec<String> = batch.iter().map(|r| r.stream.as_str().to_owned()).collect();
        streams.sort_unstable();
        streams.dedup();
        let mut tips = HashMap::new();
        let rows = sqlx::query("SELECT stream_id, version, last_hash FROM streams WHERE stream_id = ANY($1)")
            .bind(&streams)
            .fetch_all(&mut *tx)
            .await?;
        for row in &rows {
            let (stream, tip) = decode_tip(row)?;
            tips.insert(stream, tip);
        }
        let keys_used: Vec<String> =
            batch.iter().filter_map(|r| r.idempotency_key.clone()).collect();
        let mut idempotency = HashMap::new();
        if !keys_used.is_empty() {
            let rows = sqlx::query(
                "SELECT key, request_digest, stream_id, first_position, last_position, \
                 first_version, last_version FROM idempotency_keys WHERE key = ANY($1)",
            )
            .bind(&keys_used)
            .fetch_all(&mut *tx)
            .await?;
            for row in &rows {
                let record = decode_idempotency(row)?;
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

        // Write exactly the plan: one statement per table.
        let events = &plan.events;
        let column = |f: &dyn Fn(&Event) -> Option<String>| events.iter().map(f).collect::<Vec<_>>();
        let bytes = |f: &dyn Fn(&Event) -> Option<Vec<u8>>| events.iter().map(f).collect::<Vec<_>>();
        let sql = format!(
            "INSERT INTO events ({EVENT_COLUMNS}) SELECT * FROM UNNEST($1::bigint[], $2::text[], \
             $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[], \
             $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::bytea[], \
             $16::bytea[], $17::text[], $18::bytea[], $19::bytea[])"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(events.iter().map(|e| to_i64(e.position)).collect::<Vec<_>>())
            .bind(column(&|e| Some(e.id.clone())))
            .bind(column(&|e| Some(e.stream.clone())))
            .bind(events.iter().map(|e| to_i64(e.stream_version)).collect::<Vec<_>>())
            .bind(column(&|e| Some(e.event_type.clone())))
            .bind(events.iter().map(|e| i64::from(e.schema_version)).collect::<Vec<_>>())
            .bind(column(&|e| Some(e.payload.clone())))
            .bind(column(&|e| Some(e.actor.clone())))
            .bind(column(&|e| e.request_id.clone()))
            .bind(column(&|e| Some(e.occurred_at.clone())))
            .bind(column(&|e| Some(e.recorded_at.clone())))
            .bind(column(&|e| e.correlation_id.clone()))
            .bind(column(&|e| e.causation_id.clone()))
            .bind(column(&|e| e.idempotency_key.clone()))
            .bind(bytes(&|e| e.prev_hash.map(|h| h.to_vec())))
            .bind(bytes(&|e| e.stream_prev_hash.map(|h| h.to_vec())))
            .bind(column(&|e| Some(e.key_id.clone())))
            .bind(bytes(&|e| Some(e.hash.to_vec())))
            .bind(bytes(&|e| Some(e.signature.to_vec())))
            .execute(&mut *tx)
            .await?;

        let (tip_streams, tip_versions, tip_hashes): (Vec<_>, Vec<_>, Vec<_>) = plan
            .stream_tips
            .iter()
            .map(|(stream, tip)| (stream.clone(), to_i64(tip.version), tip.hash.to_vec()))
            .collect();
        sqlx::query(
            "INSERT INTO streams (stream_id, version, last_hash) \
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bytea[]) \
             ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, \
             last_hash = EXCLUDED.last_hash",
        )
        .bind(tip_streams)
        .bind(tip_versions)
        .bind(tip_hashes)
        .execute(&mut *tx)
        .await?;

        if !plan.idempotency.is_empty() {
            let records = &plan.idempotency;
            let numbers = |f: &dyn Fn(&super::plan::IdempotencyRecord) -> u64| {
                records.iter().map(|r| to_i64(f(r))).collect::<Vec<_>>()
            };
            sqlx::query(
                "INSERT INTO idempotency_keys (key, request_digest, stream_id, first_position, \
                 last_position, first_version, last_version) SELECT * FROM UNNEST($1::text[], \
                 $2::bytea[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])",
            )
            .bind(records.iter().map(|r| r.key.clone()).collect::<Vec<_>>())
            .bind(records.iter().map(|r| r.digest.to_vec()).collect::<Vec<_>>())
            .bind(records.iter().map(|r| r.stream.clone()).collect::<Vec<_>>())
            .bind(numbers(&|r| r.first_position))
            .bind(numbers(&|r| r.last_position))
            .bind(numbers(&|r| r.first_version))
            .bind(numbers(&|r| r.last_version))
            .execute(&mut *tx)
            .await?;
        }

        sqlx::query("UPDATE log_head SET position = $1, hash = $2, key_id = $3 WHERE id = 1")
            .bind(to_i64(new_head.position))
            .bind(new_head.hash.map(|h| h.to_vec()))
            .bind(new_head.key_id.as_deref())
            .execute(&mut *tx)
            .await?;
        tx.commit().await.map_err(StoreError::from_commit)?;
        Ok(BatchOutcome { outcomes: plan.outcomes, key_id: new_head.key_id })
    }
}
