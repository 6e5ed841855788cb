//! The auditors' index of the access chain: one row per entry of every record, queried by
//! principal, matter, decision and time, newest first.
//!
//! The chain is the truth and this index is derived from it. With SQLite it is its own file
//! (`<data-dir>/access/index.db`), so index writes never queue behind appends; with PostgreSQL
//! it is a table in the access chain's schema. A task of its own (the indexer) keeps it level
//! with the chain: woken after each append, it lets appends gather for a moment, then reads the
//! chain's pages from where it stopped and inserts their rows in one transaction, so indexing
//! never fails a request and costs little per record. A failed pass is retried with
//! a growing pause, and at open the indexer first catches up from the highest indexed position.
//! Inserting a row twice changes nothing, so several processes may index the same chain.

use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use sqlx::{AnyPool, AssertSqlSafe, Executor, FromRow};
use thiserror::Error;
use tokio::sync::{mpsc, watch};

use super::record::{AccessRecord, Decision, EVENT_TYPE};
use crate::log::Event;
use crate::log::time::normalise_timestamp;
use crate::read::{Bind, Sql};
use crate::store::pages::{PAGE_SIZE, log_pages};
use crate::store::side_db::{self, Connections, Durability};
use crate::store::{Backend, LogStore, StoreError};

/// Most records one query returns.
pub const MAX_QUERY_LIMIT: u32 = 500;

/// Rows per multi-row INSERT: 14 columns x 100 rows, well inside both databases' limits.
const ROWS_PER_INSERT: usize = 100;
/// How long the indexer lets appends gather after a wake-up before it reads them, so that
/// under load one pass (one read, one transaction) covers many commits.
const GATHER: Duration = Duration::from_millis(20);
/// The first pause after a failed indexing pass; it doubles up to [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(200);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(30);

const COLUMNS: &str = "position, entry, recorded_at, principal, session, operation, request_id, \
     client_address, matter, target, target_id, fields, decision, reason";

const DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS access_index (
        position       BIGINT NOT NULL,
        entry          BIGINT NOT NULL,
        recorded_at    TEXT   NOT NULL,
        principal      TEXT   NOT NULL,
        session        TEXT,
        operation      TEXT   NOT NULL,
        request_id     TEXT,
        client_address TEXT,
        matter         TEXT,
        target         TEXT   NOT NULL,
        target_id      TEXT,
        fields         TEXT   NOT NULL,
        decision       TEXT   NOT NULL,
        reason         TEXT   NOT NULL,
        PRIMARY KEY (position, entry)
    )",
    "CREATE INDEX IF NOT EXISTS access_index_principal ON access_index (principal, position)",
    "CREATE INDEX IF NOT EXISTS access_index_matter ON access_index (matter, position)",
    "CREATE INDEX IF NOT EXISTS access_index_decision ON access_index (decision, position)",
    "CREATE INDEX IF NOT EXISTS access_index_recorded_at ON access_index (recorded_at)",
];

/// What an auditor asks for. Every filter given must hold for an entry to be returned; a
/// page holds up to `limit` records (all their matching entries), newest first, and the next
/// page is asked for with `before_position` set to the smallest position seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessQuery {
    /// Only entries of this principal (`user:<id>`, `api_client:<id>`, `anonymous`).
    pub principal: Option<String>,
    /// Only entries about this matter number.
    pub matter: Option<String>,
    /// Only allowed, or only denied, entries.
    pub decision: Option<Decision>,
    /// Recorded at or after this instant (RFC 3339).
    pub from: Option<String>,
    /// Recorded before this instant (RFC 3339).
    pub to: Option<String>,
    /// Only records at positions below this one: the previous page's smallest position.
    pub before_position: Option<u64>,
    /// Most records on the page, 1 to [`MAX_QUERY_LIMIT`].
    pub limit: u32,
}

impl AccessQuery {
    /// The newest `limit` records, unfiltered.
    pub fn latest(limit: u32) -> Self {
        AccessQuery {
            principal: None,
            matter: None,
            decision: None,
            from: None,
            to: None,
            before_position: None,
            limit,
        }
    }
}

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidQuery {
    /// `limit` is outside 1 to [`MAX_QUERY_LIMIT`].
    #[error("limit must be between 1 and {MAX_QUERY_LIMIT}")]
    Limit,
    /// `from` or `to` is not an RFC 3339 timestamp.
    #[error("{0} must be an RFC 3339 timestamp")]
    Timestamp(&'static str),
}

/// One entry of one record, as the index holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccessRow {
    /// The record's position in the access chain.
    pub position: u64,
    /// The entry's place in its record, from 0.
    pub entry: u32,
    /// When the chain recorded it (canonical RFC 3339, UTC, microseconds).
    pub recorded_at: String,
    /// The record's principal, session, operation, request id and client address (see
    /// [`AccessRecord`]).
    pub principal: String,
    pub session: Option<String>,
    pub operation: String,
    pub request_id: Option<String>,
    pub client_address: Option<String>,
    /// The entry's matter, target, target id, field groups, decision and reason (see
    /// [`super::record::AccessEntry`]).
    pub matter: Option<String>,
    pub target: String,
    pub target_id: Option<String>,
    pub fields: Vec<String>,
    pub decision: Decision,
    pub reason: String,
}

/// The index's database.
#[derive(Clone)]
pub struct AccessIndex {
    pool: AnyPool,
    backend: Backend,
}

impl AccessIndex {
    /// Opens (creating when needed) the index: `index.db` in `dir` for SQLite, or the database
    /// `database_url` names (whose search path selects the access schema).
    pub async fn open(dir: &Path, database_url: Option<&str>) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = match database_url {
            Some(url) => (url.to_owned(), Backend::Postgres),
            None => {
                let path = dir.join("index.db");
                let path = path.to_str().ok_or_else(|| StoreError::DataDir {
                    detail: "the data directory path is not UTF-8".into(),
                })?;
                (format!("sqlite://{path}?mode=rwc"), Backend::Sqlite)
            }
        };
        let connections = Connections {
            sqlite: 2,
            postgres: 4,
        };
        // Derived data: a transaction lost to power loss is indexed again.
        let pool = side_db::pool_options(backend, connections, Durability::Derived)
            .connect(&url)
            .await
            .map_err(StoreError::from)?;
        let index = AccessIndex { pool, backend };
        index.create_tables().await?;
        Ok(index)
    }

    /// Creates the table and its indexes. Two processes starting at once may collide on
    /// PostgreSQL's catalog; the loser tries again and then finds everything there.
    async fn create_tables(&self) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            let mut result = Ok(());
            for statement in DDL {
                result = self.pool.execute(*statement).await.map(|_| ());
                if result.is_err() {
                    break;
                }
            }
            match result {
                Err(_) if attempt < 3 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                other => return other.map_err(StoreError::from),
            }
        }
    }

    /// The highest position indexed, 0 when the index is empty.
    pub async fn highest_position(&self) -> Result<u64, StoreError> {
        let highest: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM access_index")
            .fetch_one(&self.pool)
            .await?;
        Ok(highest.and_then(|p| u64::try_from(p).ok()).unwrap_or(0))
    }

    /// Indexes the access records among `events` (other events are skipped) in one
    /// transaction; rows already present are left as they are. Returns the rows written.
    pub async fn insert(&self, events: &[Event]) -> Result<usize, StoreError> {
        let rows: Vec<AccessRow> = events.iter().flat_map(rows_of).collect();
        if rows.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let sql = insert_statement(self.backend, chunk.len());
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for row in chunk {
                let fields = serde_json::to_string(&row.fields).unwrap_or_else(|_| "[]".into());
                query = query
                    .bind(to_i64(row.position))
                    .bind(i64::from(row.entry))
                    .bind(row.recorded_at.clone())
                    .bind(row.principal.clone())
                    .bind(row.session.clone())
                    .bind(row.operation.clone())
                    .bind(row.request_id.clone())
                    .bind(row.client_address.clone())
                    .bind(row.matter.clone())
                    .bind(row.target.clone())
                    .bind(row.target_id.clone())
                    .bind(fields)
                    .bind(row.decision.as_str())
                    .bind(row.reason.clone());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }

    /// The entries `query` asks for, newest record first, a record's entries in order.
    pub async fn query(&self, query: &AccessQuery) -> Result<Vec<AccessRow>, QueryError> {
        if !(1..=MAX_QUERY_LIMIT).contains(&query.limit) {
            return Err(InvalidQuery::Limit.into());
        }
        let from = bound(query.from.as_deref(), "from")?;
        let to = bound(query.to.as_deref(), "to")?;
        let mut sql = Sql::new("");
        let filters = |sql: &mut Sql| {
            let mut conditions = Vec::new();
            if let Some(principal) = &query.principal {
                let p = sql.bind(Bind::Text(principal.clone()));
                conditions.push(format!("principal = {p}"));
            }
            if let Some(matter) = &query.matter {
                let p = sql.bind(Bind::Text(matter.clone()));
                conditions.push(format!("matter = {p}"));
            }
            if let Some(decision) = query.decision {
                let p = sql.bind(Bind::Text(decision.as_str().to_owned()));
                conditions.push(format!("decision = {p}"));
            }
            if let Some(from) = &from {
                let p = sql.bind(Bind::Text(from.clone()));
                conditions.push(format!("recorded_at >= {p}"));
            }
            if let Some(to) = &to {
                let p = sql.bind(Bind::Text(to.clone()));
                conditions.push(format!("recorded_at < {p}"));
            }
            conditions
        };
        let mut outer = filters(&mut sql);
        let mut inner = filters(&mut sql);
        if let Some(before) = query.before_position {
            let p = sql.bind(Bind::Int(to_i64(before)));
            inner.push(format!("position < {p}"));
        }
        let limit = sql.bind(Bind::Int(i64::from(query.limit)));
        let inner_where = if inner.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", inner.join(" AND "))
        };
        outer.push(format!(
            "position IN (SELECT DISTINCT position FROM access_index {inner_where} \
             ORDER BY position DESC LIMIT {limit})"
        ));
        sql.text = format!(
            "SELECT {COLUMNS} FROM access_index WHERE {} ORDER BY position DESC, entry ASC",
            outer.join(" AND ")
        );
        let rows: Vec<StoredRow> = sql.fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(StoredRow::into_row)
            .collect::<Option<Vec<_>>>()
            .ok_or(QueryError::Store(StoreError::Database {
                detail: "an access index row cannot be decoded".into(),
            }))
    }

    /// The index's connection pool, for maintenance and tests.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Why a query produced no answer.
#[derive(Debug, Clone, Error)]
pub enum QueryError {
    /// The query itself was refused.
    #[error(transparent)]
    Invalid(#[from] InvalidQuery),
    /// The index could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn bound(text: Option<&str>, name: &'static str) -> Result<Option<String>, InvalidQuery> {
    text.map(|text| normalise_timestamp(text).ok_or(InvalidQuery::Timestamp(name)))
        .transpose()
}

fn insert_statement(backend: Backend, rows: usize) -> String {
    const WIDTH: usize = 14;
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let placeholders: Vec<String> = (row * WIDTH + 1..=(row + 1) * WIDTH)
                .map(|n| match backend {
                    // SQLite looks `$N` up by name for each parameter; `?` binds in order.
                    Backend::Sqlite => "?".to_owned(),
                    Backend::Postgres => format!("${n}"),
                })
                .collect();
            format!("({})", placeholders.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO access_index ({COLUMNS}) VALUES {} ON CONFLICT (position, entry) DO NOTHING",
        values.join(", ")
    )
}

/// The index rows of one event: one per entry of an access record, none for anything else. A
/// record that cannot be decoded is skipped with a warning (verification reports it).
fn rows_of(event: &Event) -> Vec<AccessRow> {
    if event.event_type != EVENT_TYPE {
        return Vec::new();
    }
    let record: AccessRecord = match serde_json::from_str(&event.payload) {
        Ok(record) => record,
        Err(_) => {
            tracing::warn!(
                position = event.position,
                "an access record cannot be decoded; it is left out of the index"
            );
            return Vec::new();
        }
    };
    let AccessRecord {
        principal,
        session,
        operation,
        request_id,
        client_address,
        entries,
    } = record;
    entries
        .into_iter()
        .enumerate()
        .map(|(number, entry)| AccessRow {
            position: event.position,
            entry: u32::try_from(number).unwrap_or(u32::MAX),
            recorded_at: event.recorded_at.clone(),
            principal: principal.clone(),
            session: session.clone(),
            operation: operation.clone(),
            request_id: request_id.clone(),
            client_address: client_address.clone(),
            matter: entry.matter,
            target: entry.target,
            target_id: entry.target_id,
            fields: entry.fields,
            decision: entry.decision,
            reason: entry.reason,
        })
        .collect()
}

#[derive(FromRow)]
struct StoredRow {
    position: i64,
    entry: i64,
    recorded_at: String,
    principal: String,
    session: Option<String>,
    operation: String,
    request_id: Option<String>,
    client_address: Option<String>,
    matter: Option<String>,
    target: String,
    target_id: Option<String>,
    fields: String,
    decision: String,
    reason: String,
}

impl StoredRow {
    fn into_row(self) -> Option<AccessRow> {
        Some(AccessRow {
            position: u64::try_from(self.position).ok()?,
            entry: u32::try_from(self.entry).ok()?,
            recorded_at: self.recorded_at,
            principal: self.principal,
            session: self.session,
            operation: self.operation,
            request_id: self.request_id,
            client_address: self.client_address,
            matter: self.matter,
            target: self.target,
            target_id: self.target_id,
            fields: serde_json::from_str(&self.fields).ok()?,
            decision: Decision::parse(&self.decision)?,
            reason: self.reason,
        })
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The running indexer, seen from the chain: how to wake it, and how far it has indexed.
pub(crate) struct Indexer {
    wake: mpsc::Sender<()>,
    indexed: watch::Receiver<u64>,
}

impl Indexer {
    /// Starts the indexer on the current runtime. It first catches up from the highest
    /// position already indexed, then indexes whatever each wake-up finds appended. An index
    /// that reaches beyond the chain's end belongs to a chain no longer there: it is emptied
    /// and rebuilt.
    pub async fn start(store: Arc<dyn LogStore>, index: AccessIndex) -> Result<Self, StoreError> {
        // The highest indexed position first, the head second: every indexed row was committed
        // before, so a consistent index never reaches beyond the head read after it.
        let mut start = index.highest_position().await?;
        if start > store.head().await?.position {
            tracing::warn!(
                indexed = start,
                "the access index reaches beyond the access chain; rebuilding it"
            );
            sqlx::query("DELETE FROM access_index")
                .execute(&index.pool)
                .await?;
            start = 0;
        }
        let (wake, woken) = mpsc::channel(1);
        let (indexed, watched) = watch::channel(start);
        tokio::spawn(run(store, index, start + 1, indexed, woken));
        Ok(Indexer {
            wake,
            indexed: watched,
        })
    }

    /// Asks for a pass; a pass already asked for covers this request too.
    pub fn wake(&self) {
        let _ = self.wake.try_send(());
    }

    /// Waits until everything up to `position` is indexed, for at most `patience`. Returns
    /// whether it was.
    pub async fn wait_for(&self, position: u64, patience: Duration) -> bool {
        let mut indexed = self.indexed.clone();
        matches!(
            tokio::time::timeout(patience, indexed.wait_for(|done| *done >= position)).await,
            Ok(Ok(_))
        )
    }

    /// The last position the indexer has read and indexed.
    pub fn indexed(&self) -> u64 {
        *self.indexed.borrow()
    }
}

/// The indexer's loop: a pass at start and after every wake-up; after a failed pass, another
/// after a pause. Ends when the chain is dropped.
async fn run(
    store: Arc<dyn LogStore>,
    index: AccessIndex,
    mut next: u64,
    indexed: watch::Sender<u64>,
    mut woken: mpsc::Receiver<()>,
) {
    let mut pause = FIRST_RETRY_PAUSE;
    loop {
        match pass(&store, &index, &mut next, &indexed).await {
            Ok(()) => {
                pause = FIRST_RETRY_PAUSE;
                if woken.recv().await.is_none() {
                    return;
                }
                tokio::time::sleep(GATHER).await;
            }
            Err(error) => {
                tracing::warn!(
                    error = %error,
                    from_position = next,
                    "indexing access records failed; retrying"
                );
                tokio::select! {
                    wake = woken.recv() => if wake.is_none() { return },
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(MAX_RETRY_PAUSE);
            }
        }
    }
}

/// Reads the chain from `next` to its end, indexing page by page.
async fn pass(
    store: &Arc<dyn LogStore>,
    index: &AccessIndex,
    next: &mut u64,
    indexed: &watch::Sender<u64>,
) -> Result<(), StoreError> {
    let mut pages = pin!(log_pages(store.clone(), *next, PAGE_SIZE));
    while let Some(page) = pages.next().await {
        let page = page?;
        let Some(last) = page.last().map(|event| event.position) else {
            break;
        };
        index.insert(&page).await?;
        *next = last + 1;
        indexed.send_replace(last);
    }
    Ok(())
}
