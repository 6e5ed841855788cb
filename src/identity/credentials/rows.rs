//! Reading and writing column values: times as unix seconds, counters as BIGINT, and the
//! redacted form in which hashes appear in Debug output.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::CredentialError;

/// Durations longer than a century are refused, so that adding one to a time never overflows.
const MAX_DURATION_SECS: u64 = 100 * 366 * 24 * 60 * 60;

/// A time as stored: whole unix seconds.
pub(super) fn secs(at: DateTime<Utc>) -> i64 {
    at.timestamp()
}

/// A stored time read back.
pub(super) fn time(secs: i64, what: &'static str) -> Result<DateTime<Utc>, CredentialError> {
    DateTime::from_timestamp(secs, 0).ok_or(CredentialError::Corrupt { what })
}

/// A duration in seconds as stored, refused beyond a century.
pub(super) fn duration(secs: u64, what: &'static str) -> Result<i64, CredentialError> {
    if secs > MAX_DURATION_SECS {
        return Err(CredentialError::OutOfRange { what });
    }
    i64::try_from(secs).map_err(|_| CredentialError::OutOfRange { what })
}

pub(super) fn text(
    row: &AnyRow,
    column: &str,
    what: &'static str,
) -> Result<String, CredentialError> {
    row.try_get::<String, _>(column)
        .map_err(|_| CredentialError::Corrupt { what })
}

pub(super) fn optional_text(
    row: &AnyRow,
    column: &str,
    what: &'static str,
) -> Result<Option<String>, CredentialError> {
    row.try_get::<Option<String>, _>(column)
        .map_err(|_| CredentialError::Corrupt { what })
}

pub(super) fn int(row: &AnyRow, column: &str, what: &'static str) -> Result<i64, CredentialError> {
    row.try_get::<i64, _>(column)
        .map_err(|_| CredentialError::Corrupt { what })
}

pub(super) fn optional_int(
    row: &AnyRow,
    column: &str,
    what: &'static str,
) -> Result<Option<i64>, CredentialError> {
    row.try_get::<Option<i64>, _>(column)
        .map_err(|_| CredentialError::Corrupt { what })
}

pub(super) fn timestamp(
    row: &AnyRow,
    column: &str,
    what: &'static str,
) -> Result<DateTime<Utc>, CredentialError> {
    time(int(row, column, what)?, what)
}

pub(super) fn optional_timestamp(
    row: &AnyRow,
    column: &str,
    what: &'static str,
) -> Result<Option<DateTime<Utc>>, CredentialError> {
    optional_int(row, column, what)?
        .map(|secs| time(secs, what))
        .transpose()
}

/// Shows the first eight characters of a hash, enough to tell two apart in a log line and too
/// few to look anything up by.
pub(super) struct Abbreviated<'a>(pub &'a str);

impl std::fmt::Debug for Abbreviated<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.get(..8) {
            Some(prefix) if self.0.len() > 8 => write!(f, "\"{prefix}…\""),
            _ => f.write_str("\"<redacted>\""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_abbreviated_and_short_values_hidden() {
        let hash = "0123456789abcdef0123456789abcdef";
        assert_eq!(format!("{:?}", Abbreviated(hash)), "\"01234567…\"");
        assert_eq!(format!("{:?}", Abbreviated("short")), "\"<redacted>\"");
        assert_eq!(format!("{:?}", Abbreviated("01234567")), "\"<redacted>\"");
    }

    #[test]
    fn durations_beyond_a_century_are_refused() {
        assert_eq!(duration(3600, "timeout"), Ok(3600));
        assert!(duration(u64::MAX, "timeout").is_err());
    }
}
