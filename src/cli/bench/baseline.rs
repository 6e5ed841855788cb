//! Raw baselines: what the same database and cores do without Docket's hashing and signing.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Signer, SigningKey};
use rayon::prelude::*;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, QueryBuilder, Sqlite, SqlitePool};

use super::report::Measurement;
use super::workload::payload;
use crate::store::{Backend, StoreError};

/// A plain table with rows of an event's size: no hashes computed, nothing signed.
pub enum RawTable {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A row as large as a stored event: payload text plus a hash- and signature-sized blob.
fn row(sequence: u64, bytes: usize) -> (String, Vec<u8>) {
    (
        payload(sequence, bytes).to_string(),
        vec![7u8; 32 + 64 + 200],
    )
}

impl RawTable {
    pub async fn open(
        backend: Backend,
        data_dir: &Path,
        url: Option<&str>,
    ) -> Result<Self, StoreError> {
        match (backend, url) {
            (Backend::Postgres, Some(url)) => {
                let pool = PgPoolOptions::new().max_connections(2).connect(url).await?;
                sqlx::query("DROP TABLE IF EXISTS docket_bench_raw")
                    .execute(&pool)
                    .await?;
                sqlx::query("CREATE TABLE docket_bench_raw (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL, extra BYTEA NOT NULL)")
                    .execute(&pool)
                    .await?;
                Ok(RawTable::Postgres(pool))
            }
            _ => {
                let path = data_dir.join("baseline.db");
                let _ = std::fs::remove_file(&path);
                let options = SqliteConnectOptions::from_str("sqlite:")?
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full);
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await?;
                sqlx::query("CREATE TABLE raw (id INTEGER PRIMARY KEY, payload TEXT NOT NULL, extra BLOB NOT NULL)")
                    .execute(&pool)
                    .await?;
                Ok(RawTable::Sqlite(pool))
            }
        }
    }

    /// One durable INSERT per transaction, one writer.
    pub async fn single_row_inserts(
        &self,
        rows: u64,
        bytes: usize,
    ) -> Result<Measurement, StoreError> {
        let mut latencies = Vec::with_capacity(rows as usize);
        let started = Instant::now();
        for sequence in 0..rows {
            let (text, extra) = row(sequence, bytes);
            let sent = Instant::now();
            match self {
                RawTable::Sqlite(pool) => {
                    sqlx::query("INSERT INTO raw (payload, extra) VALUES (?, ?)")
                        .bind(text)
                        .bind(extra)
                        .execute(pool)
                        .await?;
                }
                RawTable::Postgres(pool) => {
                    sqlx::query("INSERT INTO docket_bench_raw (payload, extra) VALUES ($1, $2)")
                        .bind(text)
                        .bind(extra)
                        .execute(pool)
                        .await?;
                }
            }
            latencies.push(sent.elapsed());
        }
        Ok(Measurement::with_latencies(
            1,
            latencies,
            started.elapsed().as_secs_f64(),
        ))
    }

    /// Multi-row INSERTs of `per_transaction` rows, one writer.
    pub async fn batched_inserts(
        &self,
        rows: u64,
        per_transaction: u64,
        bytes: usize,
    ) -> Result<Measurement, StoreError> {
        let batches = rows.div_ceil(per_transaction);
        let mut latencies: Vec<Duration> = Vec::with_capacity(batches as usize);
        let started = Instant::now();
        for batch in 0..batches {
            let rows: Vec<_> = (0..per_transaction)
                .map(|n| row(batch * per_transaction + n, bytes))
                .collect();
            let sent = Instant::now();
            match self {
                RawTable::Sqlite(pool) => {
                    let mut query =
                        QueryBuilder::<Sqlite>::new("INSERT INTO raw (payload, extra) ");
                    query.push_values(rows, |mut row, (text, extra)| {
                        row.push_bind(text).push_bind(extra);
                    });
                    query.build().execute(pool).await?;
                }
                RawTable::Postgres(pool) => {
                    let mut query = QueryBuilder::<Postgres>::new(
                        "INSERT INTO docket_bench_raw (payload, extra) ",
                    );
                    query.push_values(rows, |mut row, (text, extra)| {
                        row.push_bind(text).push_bind(extra);
                    });
                    query.build().execute(pool).await?;
                }
            }
            latencies.push(sent.elapsed());
        }
        let seconds = started.elapsed().as_secs_f64();
        let mut measurement = Measurement::with_latencies(1, latencies, seconds);
        measurement.events = batches * per_transaction;
        measurement.per_second = measurement.events as f64 / seconds.max(1e-9);
        Ok(measurement)
    }

    pub async fn close(self) {
        match self {
            RawTable::Sqlite(pool) => pool.close().await,
            RawTable::Postgres(pool) => {
                let _ = sqlx::query("DROP TABLE IF EXISTS docket_bench_raw")
                    .execute(&pool)
                    .await;
                pool.close().await
            }
        }
    }
}

/// Signatures per second that ed25519 batch verification reaches on all cores, in batches as
/// large as the verifier's (so the baseline is the best the library does, not a weaker one).
pub fn batch_verify_rate(signatures: usize) -> f64 {
    const BATCH: usize = 1000;
    let key = SigningKey::from_bytes(&[42; 32]);
    let public = key.verifying_key();
    let messages: Vec<[u8; 58]> = (0..signatures)
        .map(|n| {
            let mut message = [0u8; 58];
            message[..8].copy_from_slice(&(n as u64).to_le_bytes());
            message
        })
        .collect();
    let signed: Vec<Signature> = messages
        .par_iter()
        .map(|message| key.sign(message))
        .collect();
    let keys = vec![public; BATCH];

    let started = Instant::now();
    let all_good = messages
        .par_chunks(BATCH)
        .zip(signed.par_chunks(BATCH))
        .all(|(messages, signatures)| {
            let refs: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
            ed25519_dalek::verify_batch(&refs, signatures, &keys[..refs.len()]).is_ok()
        });
    let seconds = started.elapsed().as_secs_f64();
    if all_good {
        signatures as f64 / seconds.max(1e-9)
    } else {
        0.0
    }
}
