//! Why a credential-store operation failed. Messages name the kind of failure only: sqlx can
//! quote bound values or row contents in its own messages, and here those are hashes and
//! secrets, so no sqlx message is ever carried.

use thiserror::Error;

/// A failure of the credential database, or a stored row that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CredentialError {
    /// The database could not be reached, or was busy or locked; retrying may succeed.
    #[error("credential store unavailable: {kind}")]
    Unavailable {
        /// What failed, without any value from the statement.
        kind: String,
    },
    /// The database refused a statement.
    #[error("credential store database error: {kind}")]
    Database {
        /// What failed, without any value from the statement.
        kind: String,
    },
    /// A record with the same identifier or hash is already stored.
    #[error("that {what} already exists")]
    Duplicate {
        /// The kind of record.
        what: &'static str,
    },
    /// A stored row cannot be decoded.
    #[error("stored {what} is corrupt")]
    Corrupt {
        /// The kind of record.
        what: &'static str,
    },
    /// A value given to the store does not fit in its columns.
    #[error("{what} is out of range")]
    OutOfRange {
        /// The value refused.
        what: &'static str,
    },
    /// The data directory could not hold the credential database.
    #[error("credential store data directory: {detail}")]
    DataDir {
        /// The file and the kind of I/O failure.
        detail: String,
    },
}

impl CredentialError {
    /// Whether the same operation may succeed if tried again (connection lost, pool exhausted,
    /// database locked, serialization failure or deadlock). After a lost connection a write
    /// may have happened: a retried single-use redemption then reports the token as used.
    pub fn is_transient(&self) -> bool {
        matches!(self, CredentialError::Unavailable { .. })
    }

    /// Maps the failure of an INSERT, telling a duplicate key apart from other refusals.
    pub(super) fn from_insert(error: sqlx::Error, what: &'static str) -> Self {
        if let sqlx::Error::Database(database) = &error
            && database.is_unique_violation()
        {
            return CredentialError::Duplicate { what };
        }
        CredentialError::from(error)
    }
}

impl From<sqlx::Error> for CredentialError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Io(_) => unavailable("I/O error"),
            sqlx::Error::Tls(_) => unavailable("TLS error"),
            sqlx::Error::PoolTimedOut => unavailable("connection pool timed out"),
            sqlx::Error::PoolClosed => unavailable("connection pool closed"),
            sqlx::Error::WorkerCrashed => unavailable("database worker crashed"),
            sqlx::Error::Database(database) => {
                let kind = describe_database_error(database.as_ref());
                if is_transient_database_error(database.as_ref()) {
                    CredentialError::Unavailable { kind }
                } else {
                    CredentialError::Database { kind }
                }
            }
            sqlx::Error::Configuration(_) => database("configuration error"),
            sqlx::Error::Protocol(_) => database("protocol error"),
            sqlx::Error::RowNotFound => database("row not found"),
            sqlx::Error::TypeNotFound { .. } => database("type not found"),
            sqlx::Error::ColumnIndexOutOfBounds { .. } => database("column index out of bounds"),
            sqlx::Error::ColumnNotFound(_) => database("column not found"),
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => database("decode error"),
            sqlx::Error::Encode(_) => database("encode error"),
            sqlx::Error::AnyDriverError(_) => database("driver error"),
            _ => database("unexpected error"),
        }
    }
}

fn unavailable(kind: &str) -> CredentialError {
    CredentialError::Unavailable { kind: kind.into() }
}

fn database(kind: &str) -> CredentialError {
    CredentialError::Database { kind: kind.into() }
}

/// The error's class, its SQLSTATE or SQLite code and the constraint it names: all fixed by the
/// schema or the database, never by the values bound.
fn describe_database_error(error: &dyn sqlx::error::DatabaseError) -> String {
    let mut kind = format!("{:?}", error.kind());
    if let Some(code) = error.code() {
        kind.push_str(&format!(", code {code}"));
    }
    if let Some(constraint) = error.constraint() {
        kind.push_str(&format!(", constraint {constraint}"));
    }
    kind
}

/// SQLite's busy and locked errors, and PostgreSQL's serialization failures, deadlocks and lost
/// connections.
fn is_transient_database_error(error: &dyn sqlx::error::DatabaseError) -> bool {
    let message = error.message();
    message.contains("database is locked")
        || message.contains("database is busy")
        || error.code().is_some_and(|code| is_transient_code(&code))
}

/// PostgreSQL SQLSTATEs (five characters): serialization failure (40001), deadlock (40P01),
/// operator intervention such as a shutdown (57P..) and connection exceptions (08...). SQLite
/// extended result codes (numbers whose low byte is the primary code): BUSY (5) and LOCKED (6).
fn is_transient_code(code: &str) -> bool {
    if code.len() == 5 {
        code == "40001" || code == "40P01" || code.starts_with("57P") || code.starts_with("08")
    } else {
        code.parse::<u32>()
            .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_locks_and_conflicts_are_transient() {
        for code in ["40001", "40P01", "57P01", "08006", "5", "6", "517", "262"] {
            assert!(is_transient_code(code), "{code}");
        }
        // 42501 (insufficient privilege) has 5 as its low byte, but is a SQLSTATE.
        for code in ["23505", "42501", "42P01", "19", "2067", "1", "x"] {
            assert!(!is_transient_code(code), "{code}");
        }
    }

    #[test]
    fn messages_carry_no_statement_values() {
        let error = CredentialError::from(sqlx::Error::Protocol("secret value".into()));
        assert!(!error.is_transient());
        assert!(CredentialError::from(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!error.to_string().contains("secret"));
        assert!(!format!("{error:?}").contains("secret"));
        let error = CredentialError::from(sqlx::Error::Configuration("password=hunter2".into()));
        assert!(!format!("{error} {error:?}").contains("hunter2"));
    }
}
