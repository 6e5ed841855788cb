//! Errors of the store and of appends. Their messages carry no payload content and no secrets;
//! the API edge maps them to stable codes.

use thiserror::Error;

use crate::keyring::KeyringError;
use crate::log::envelope::ValidationError;
use crate::log::{ExpectedVersion, StreamId};

/// A failure of the database or of the data directory.
#[derive(Debug, Clone, Error)]
pub enum StoreError {
    /// The database could not be reached (connection refused, pool timeout, I/O).
    #[error("database unavailable: {detail}")]
    Unavailable { detail: String },
    /// The database refused a statement.
    #[error("database error: {detail}")]
    Database { detail: String },
    /// The connection failed while committing: the batch may or may not be durable.
    #[error("commit outcome unknown: {detail}")]
    CommitOutcomeUnknown { detail: String },
    /// The disk (or the database's quota) is full: nothing of the failed statement was written,
    /// and writes can succeed again once space is freed.
    #[error("storage full: {detail}")]
    StorageFull { detail: String },
    /// A stored row cannot be decoded into an event.
    #[error("stored row at position {position} is corrupt: {reason}")]
    CorruptRow { position: i64, reason: &'static str },
    /// The log names a signing key this process does not hold.
    #[error("signing key {key_id} is not in the keyring")]
    SigningKeyUnavailable { key_id: String },
    /// Migrations could not be applied.
    #[error("migration failed: {detail}")]
    Migration { detail: String },
    /// The data directory could not be read or written.
    #[error("data directory: {detail}")]
    DataDir { detail: String },
}

impl StoreError {
    /// Whether retrying the same operation cannot duplicate or lose anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

impl StoreError {
    /// A failed COMMIT whose connection broke may have reached the disk: it is reported as
    /// such and never retried. Other failures mean the transaction was rolled back.
    pub fn from_commit(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed | sqlx::Error::Protocol(_) => {
                StoreError::CommitOutcomeUnknown {
                    detail: error.to_string(),
                }
            }
            sqlx::Error::Database(ref db) if is_connection_lost(db.code().as_deref()) => {
                StoreError::CommitOutcomeUnknown {
                    detail: error.to_string(),
                }
            }
            other => StoreError::from(other),
        }
    }
}

impl From<KeyringError> for StoreError {
    fn from(error: KeyringError) -> Self {
        match error {
            KeyringError::Unavailable { key_id } => StoreError::SigningKeyUnavailable { key_id },
            KeyringError::DataDir { detail } => StoreError::DataDir { detail },
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Io(ref io) if io.kind() == std::io::ErrorKind::StorageFull => {
                StoreError::StorageFull {
                    detail: error.to_string(),
                }
            }
            sqlx::Error::Database(ref db)
                if is_storage_full(db.code().as_deref(), db.message()) =>
            {
                StoreError::StorageFull {
                    detail: error.to_string(),
                }
            }
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_) => StoreError::Unavailable {
                detail: error.to_string(),
            },
            sqlx::Error::Database(ref db)
                if is_busy(db.message()) || is_connection_lost(db.code().as_deref()) =>
            {
                StoreError::Unavailable {
                    detail: error.to_string(),
                }
            }
            other => StoreError::Database {
                detail: other.to_string(),
            },
        }
    }
}

/// PostgreSQL's classes for a session the server ended (57P: operator intervention, such as a
/// shutdown or a terminated backend) or a broken connection (08).
impl StoreError {
    /// Whether a database's refusal is about the connection or a lock rather than the statement.
    pub fn from_database_is_transient(error: &dyn sqlx::error::DatabaseError) -> bool {
        is_busy(error.message()) || is_connection_lost(error.code().as_deref())
    }
}

fn is_connection_lost(code: Option<&str>) -> bool {
    code.is_some_and(|code| code.starts_with("57P") || code.starts_with("08"))
}

/// PostgreSQL's `disk_full` (53100; its codes are always five characters), SQLite's
/// `SQLITE_FULL` (13, also as the primary code of an extended one, which SQLite's codes of at
/// most four digits carry in their low byte).
fn is_storage_full(code: Option<&str>, message: &str) -> bool {
    match code {
        Some(code) if code.len() == 5 => code == "53100",
        Some(code) => code.parse::<u32>().is_ok_and(|number| number & 0xff == 13),
        None => message.contains("database or disk is full"),
    }
}

fn is_busy(message: &str) -> bool {
    message.contains("database is locked") || message.contains("database is busy")
}

/// Why an append was refused. Nothing of a refused append is stored.
#[derive(Debug, Clone, Error)]
pub enum AppendError {
    #[error("invalid append: {0}")]
    Invalid(#[from] ValidationError),
    /// The stream is not at the expected version; `actual` is its current version (0 = absent).
    #[error("stream {stream} is at version {actual}; the append expected {expected}")]
    VersionConflict {
        stream: StreamId,
        expected: ExpectedVersion,
        actual: u64,
    },
    /// The idempotency key was used before for a different request.
    #[error("idempotency key was already used for a different request")]
    IdempotencyKeyReused,
    /// The log already has a genesis event (another process initialised it first).
    #[error("the log is already initialised")]
    AlreadyInitialised,
    /// A key rotation or other system event was asked for before genesis.
    #[error("the log is not initialised")]
    NotInitialised,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sequencer has stopped (the process is shutting down).
    #[error("the log is shutting down")]
    ShuttingDown,
}

impl AppendError {
    /// A stable machine-readable code, for the API edge and `docket append`.
    pub fn code(&self) -> &'static str {
        match self {
            AppendError::Invalid(_) => "INVALID_APPEND",
            AppendError::VersionConflict { .. } => "VERSION_CONFLICT",
            AppendError::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            AppendError::AlreadyInitialised => "ALREADY_INITIALISED",
            AppendError::NotInitialised => "NOT_INITIALISED",
            AppendError::Store(StoreError::CommitOutcomeUnknown { .. }) => "COMMIT_OUTCOME_UNKNOWN",
            AppendError::Store(StoreError::Unavailable { .. }) => "UNAVAILABLE",
            AppendError::Store(StoreError::StorageFull { .. }) => "STORAGE_FULL",
            AppendError::Store(_) => "INTERNAL",
            AppendError::ShuttingDown => "SHUTTING_DOWN",
        }
    }

    /// A message safe to show a client: internal causes are withheld.
    pub fn public_message(&self) -> String {
        match self {
            AppendError::Store(StoreError::CommitOutcomeUnknown { .. }) => {
                "the commit may or may not have happened; retry with the same idempotency key"
                    .into()
            }
            AppendError::Store(StoreError::Unavailable { .. }) => {
                "the database is unavailable".into()
            }
            AppendError::Store(StoreError::StorageFull { .. }) => {
                "the database's storage is full; nothing was written".into()
            }
            AppendError::Store(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_told_apart_from_other_refusals() {
        // SQLite: SQLITE_FULL, plain or as the primary code of an extended one.
        assert!(is_storage_full(Some("13"), "database or disk is full"));
        assert!(is_storage_full(Some("269"), ""));
        // PostgreSQL: disk_full, but not the other "insufficient resources" conditions.
        assert!(is_storage_full(Some("53100"), "could not extend file"));
        assert!(!is_storage_full(Some("53300"), "too many connections"));
        assert!(!is_storage_full(Some("53200"), "out of memory"));
        // Other refusals.
        assert!(!is_storage_full(Some("5"), "database is locked"));
        assert!(!is_storage_full(Some("2067"), "UNIQUE constraint failed"));
        assert!(!is_storage_full(Some("23505"), "duplicate key"));
        assert!(is_storage_full(None, "database or disk is full"));
    }

    #[test]
    fn a_full_disk_has_its_own_code_and_a_safe_message() {
        let error = AppendError::Store(StoreError::StorageFull {
            detail: "/srv/docket/docket.db-wal".into(),
        });
        assert_eq!(error.code(), "STORAGE_FULL");
        assert!(!error.public_message().contains("/srv"));
        let io = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert!(matches!(
            StoreError::from(sqlx::Error::Io(io)),
            StoreError::StorageFull { .. }
        ));
    }
}
