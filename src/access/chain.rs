//! The access chain: every decision about client data, in a tamper-evident log of its own.
//!
//! The chain is a second instance of Docket's event log ([`EventLog`]), in the same format
//! (hashed, chained, signed; docs/log-format.md), verified by `docket verify` like the event log,
//! but signed by keys of its own:
//!
//! - SQLite: the data directory's `access/` folder holds the chain (`access/docket.db`), its
//!   keys (`access/keys/`) and its query index (`access/index.db`).
//! - PostgreSQL: the event log's database, schema `docket_access` (chain and index); the keys
//!   are in the data directory's `access/keys/`.
//!
//! Each record is one `access.recorded` event on the `access` stream. [`AccessChain::record`]
//! returns only once the record is committed, and many callers recording at once share commits
//! (the log's group commit), so a request that must not return data unrecorded waits for one
//! commit and no more. The index for auditors ([`super::index`]) is kept up to date behind the
//! chain and never holds a request up.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::Connection;
use thiserror::Error;

use super::index::{AccessIndex, AccessQuery, AccessRow, Indexer, InvalidQuery, QueryError};
use super::record::{AccessRecord, EVENT_TYPE, InvalidRecord, SCHEMA_VERSION, STREAM};
use crate::log::envelope::is_identifier;
use crate::log::limits::MAX_EVENTS_PER_APPEND;
use crate::log::{EventDraft, StreamId};
use crate::metrics::LogKind;
use crate::store::{
    AppendError, AppendOutcome, AppendRequest, EventLog, LogOptions, LogStore, StoreError,
    open_existing_store,
};

/// The PostgreSQL schema that holds the access chain and its index.
pub const ACCESS_SCHEMA: &str = "docket_access";
/// The folder of the data directory that holds the access chain's keys (and, with SQLite, the
/// chain and its index).
pub const ACCESS_DIR: &str = "access";

/// How long a query waits for the index to take in records already committed.
const INDEX_PATIENCE: Duration = Duration::from_secs(5);

/// Why a record was not recorded or a query not answered.
#[derive(Debug, Clone, Error)]
pub enum AccessError {
    /// The record breaks a rule of its shape; nothing was recorded.
    #[error(transparent)]
    Invalid(#[from] InvalidRecord),
    /// The chain did not commit the record. With
    /// [`StoreError::CommitOutcomeUnknown`] it may be in the chain nonetheless; either way the
    /// caller must act as if it were not.
    #[error("access record not recorded: {0}")]
    NotRecorded(AppendError),
    /// The query was refused (its limit or a timestamp).
    #[error(transparent)]
    InvalidQuery(#[from] InvalidQuery),
    /// The index has not caught up with records already committed (it is being rebuilt, or
    /// its database is failing); ask again later.
    #[error("the access index is catching up; try again shortly")]
    IndexBehind,
    /// The chain or its index could not be read or opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AccessError {
    /// A stable machine-readable code, for the API edge.
    pub fn code(&self) -> &'static str {
        match self {
            AccessError::Invalid(_) => "INVALID_ACCESS_RECORD",
            AccessError::NotRecorded(_) => "ACCESS_NOT_RECORDED",
            AccessError::InvalidQuery(_) => "INVALID_ACCESS_QUERY",
            AccessError::IndexBehind => "ACCESS_INDEX_BEHIND",
            AccessError::Store(StoreError::Unavailable { .. }) => "UNAVAILABLE",
            AccessError::Store(_) => "INTERNAL",
        }
    }
}

impl From<QueryError> for AccessError {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::Invalid(invalid) => AccessError::InvalidQuery(invalid),
            QueryError::Store(store) => AccessError::Store(store),
        }
    }
}

/// An open access chain: its log, its index and the indexer. Share it as an `Arc`.
pub struct AccessChain {
    log: EventLog,
    index: AccessIndex,
    indexer: Indexer,
    /// The highest position this process has recorded (or found at open): what a query waits
    /// for the index to reach.
    recorded: AtomicU64,
    stream: StreamId,
}

impl AccessChain {
    /// Opens (creating on first use) the access chain of the event log that `options`
    /// describe: the same backend, in the places [`access_log_options`] derives.
    pub async fn open(options: &LogOptions) -> Result<Self, StoreError> {
        if let Some(url) = &options.database_url {
            create_schema(url).await?;
        }
        let access = access_log_options(options);
        let log = EventLog::open(&access).await?.counted_as(LogKind::Access);
        let index = AccessIndex::open(&access.data_dir, access.database_url.as_deref()).await?;
        let head = log.head().await?.position;
        let indexer = Indexer::start(log.store().clone(), index.clone()).await?;
        let stream = StreamId::parse(STREAM).map_err(|_| StoreError::Database {
            detail: "the access stream id is invalid".into(),
        })?;
        Ok(AccessChain {
            log,
            index,
            indexer,
            recorded: AtomicU64::new(head),
            stream,
        })
    }

    /// Appends one record durably: returns its position once it is committed. An error means
    /// the record is not recorded, and the caller must not return the data it covers.
    pub async fn record(&self, record: &AccessRecord) -> Result<u64, AccessError> {
        let request = self.request(std::slice::from_ref(record))?;
        let outcome = self.append(request).await?;
        Ok(outcome.first_position)
    }

    /// Records several records together, returning their positions in order. Records that
    /// share a principal and request id are appended atomically, as one append; others are
    /// appended alongside (usually in the same commit). An error means the records must be
    /// taken as not recorded, though some of them may be.
    pub async fn record_all(&self, records: &[AccessRecord]) -> Result<Vec<u64>, AccessError> {
        let mut requests = Vec::new();
        let mut rest = records;
        while let Some(first) = rest.first() {
            let same = rest
                .iter()
                .take(MAX_EVENTS_PER_APPEND)
                .take_while(|r| r.principal == first.principal && r.request_id == first.request_id)
                .count();
            let (group, after) = rest.split_at(same);
            requests.push(self.request(group)?);
            rest = after;
        }
        let outcomes =
            futures::future::join_all(requests.into_iter().map(|r| self.append(r))).await;
        let mut positions = Vec::with_capacity(records.len());
        for outcome in outcomes {
            let outcome = outcome?;
            positions.extend(outcome.first_position..=outcome.last_position);
        }
        Ok(positions)
    }

    /// The chain's log, for verification and exports.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// The index's database (SQLite `access/index.db`, or the access schema).
    pub fn index(&self) -> &AccessIndex {
        &self.index
    }

    /// The entries an auditor asks for, newest first. Waits (briefly) until the index holds
    /// everything this process has recorded, so a query sees the records before it.
    pub async fn query(&self, query: &AccessQuery) -> Result<Vec<AccessRow>, AccessError> {
        let target = self.recorded.load(Ordering::Acquire);
        if !self.indexer.wait_for(target, INDEX_PATIENCE).await {
            tracing::warn!(
                indexed = self.indexer.indexed(),
                recorded = target,
                "the access index is behind the chain"
            );
            return Err(AccessError::IndexBehind);
        }
        Ok(self.index.query(query).await?)
    }

    /// One append of `records` (all of one principal and request id).
    fn request(&self, records: &[AccessRecord]) -> Result<AppendRequest, AccessError> {
        let mut events = Vec::with_capacity(records.len());
        for record in records {
            record.validate()?;
            let mut draft = EventDraft::new(EVENT_TYPE, record.to_payload()?);
            draft.schema_version = SCHEMA_VERSION;
            events.push(draft);
        }
        let first = records.first().ok_or(InvalidRecord::EntryCount(0))?;
        crate::metrics::global().access_denied(denials(records));
        let mut request = AppendRequest::new(self.stream.clone(), first.actor(), events);
        // The envelope's request id must be a short printable identifier; one that is not
        // stays in the payload only.
        request.request_id = first.request_id.clone().filter(|id| is_identifier(id));
        Ok(request)
    }

    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, AccessError> {
        let outcome = self
            .log
            .append(request)
            .await
            .map_err(AccessError::NotRecorded)?;
        self.recorded
            .fetch_max(outcome.last_position, Ordering::AcqRel);
        self.indexer.wake();
        Ok(outcome)
    }
}

/// The access chain's log options, derived from the event log's: its data directory is
/// `<data-dir>/access`, and on PostgreSQL its database URL selects the `docket_access` schema.
pub fn access_log_options(options: &LogOptions) -> LogOptions {
    LogOptions {
        data_dir: access_dir(options),
        database_url: options.database_url.as_deref().map(access_database_url),
        max_payload_bytes: options.max_payload_bytes,
        max_batch_events: options.max_batch_events,
    }
}

/// Opens the access chain's store for verification, without creating anything: `None` when
/// there is no access chain yet.
pub async fn open_existing_access_store(
    options: &LogOptions,
) -> Result<Option<Arc<dyn LogStore>>, StoreError> {
    let access = access_log_options(options);
    let present = match &options.database_url {
        Some(url) => schema_has_log(url).await?,
        None => access.data_dir.join("docket.db").exists(),
    };
    if !present {
        return Ok(None);
    }
    open_existing_store(&access).await.map(Some)
}

fn access_dir(options: &LogOptions) -> PathBuf {
    options.data_dir.join(ACCESS_DIR)
}

/// `url` with `options=-c search_path=docket_access` added (percent-encoded), so that every
/// connection of the access log resolves its unqualified tables, its migrations table
/// included, in the access schema. Appended last, it overrides a search path set before.
pub fn access_database_url(url: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (url, None),
    };
    let joiner = if base.contains('?') { '&' } else { '?' };
    let mut access = format!("{base}{joiner}options=-c%20search_path%3D{ACCESS_SCHEMA}");
    if let Some(fragment) = fragment {
        access.push('#');
        access.push_str(fragment);
    }
    access
}

/// Creates the access schema if it is missing. Two processes may race to create it; the
/// loser finds it there.
pub(crate) async fn create_schema(url: &str) -> Result<(), StoreError> {
    let mut connection = connect(url).await?;
    let created = sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {ACCESS_SCHEMA}"
    )))
    .execute(&mut connection)
    .await;
    let result = match created {
        Ok(_) => Ok(()),
        Err(error) => {
            let exists: Result<bool, _> =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                    .bind(ACCESS_SCHEMA)
                    .fetch_one(&mut connection)
                    .await;
            match exists {
                Ok(true) => Ok(()),
                _ => Err(StoreError::from(error)),
            }
        }
    };
    let _ = connection.close().await;
    result
}

/// Whether the access schema holds a log (its events table), read without creating anything.
async fn schema_has_log(url: &str) -> Result<bool, StoreError> {
    let mut connection = connect(url).await?;
    let present: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("{ACCESS_SCHEMA}.events"))
        .fetch_one(&mut connection)
        .await?;
    let _ = connection.close().await;
    Ok(present)
}

async fn connect(url: &str) -> Result<sqlx::PgConnection, StoreError> {
    let options: sqlx::postgres::PgConnectOptions =
        url.parse().map_err(|_| StoreError::Unavailable {
            detail: "invalid database URL".into(),
        })?;
    Ok(sqlx::PgConnection::connect_with(&options).await?)
}

/// How many of the records' decisions denied access.
fn denials(records: &[AccessRecord]) -> u64 {
    let denied = records
        .iter()
        .flat_map(|record| &record.entries)
        .filter(|entry| entry.decision == super::record::Decision::Denied)
        .count();
    u64::try_from(denied).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_url_selects_the_access_schema() {
        assert_eq!(
            access_database_url("postgres://u@h/db"),
            "postgres://u@h/db?options=-c%20search_path%3Ddocket_access"
        );
        assert_eq!(
            access_database_url("postgres://u@h/db?sslmode=disable"),
            "postgres://u@h/db?sslmode=disable&options=-c%20search_path%3Ddocket_access"
        );
        let options: sqlx::postgres::PgConnectOptions =
            access_database_url("postgres://u@h/db?options=-c%20statement_timeout%3D5s")
                .parse()
                .unwrap();
        assert_eq!(
            options.get_options(),
            Some("-c statement_timeout=5s -c search_path=docket_access")
        );
    }

    #[test]
    fn the_access_chain_lives_under_the_data_directory() {
        let mut options = LogOptions::new("/srv/docket");
        assert_eq!(
            access_log_options(&options).data_dir,
            PathBuf::from("/srv/docket/access")
        );
        assert_eq!(access_log_options(&options).database_url, None);
        options.database_url = Some("postgres://h/db".into());
        assert!(
            access_log_options(&options)
                .database_url
                .unwrap()
                .ends_with("search_path%3Ddocket_access")
        );
    }
}
