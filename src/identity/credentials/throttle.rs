//! Failed-attempt counters and locks, keyed by a subject such as `account:<user id>` or
//! `address:<ip>`. The policy that reads them (delays, when to lock) is elsewhere; this keeps
//! the counts exact under concurrency.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;

use super::rows::{int, optional_timestamp, secs};
use super::{CredentialError, CredentialStore};

const WHAT: &str = "throttle counter";

/// The failures counted against a subject since its last success, and whether it is locked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleRecord {
    /// Failures counted since the last success or unlock.
    pub failures: u32,
    /// `None` when no failure is counted, e.g. for a subject locked by an administrator.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// Whether the subject is locked until an administrator unlocks it.
    pub locked: bool,
}

fn throttle_from(row: &AnyRow) -> Result<ThrottleRecord, CredentialError> {
    Ok(ThrottleRecord {
        failures: u32::try_from(int(row, "failures", WHAT)?).unwrap_or(u32::MAX),
        last_failure_at: optional_timestamp(row, "last_failure_at", WHAT)?,
        locked: int(row, "locked", WHAT)? != 0,
    })
}

impl CredentialStore {
    /// Counts one failure against `subject` at `now` and returns the new state. One upsert,
    /// so concurrent failures are each counted.
    pub async fn record_failure(
        &self,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<ThrottleRecord, CredentialError> {
        let row = sqlx::query(
            "INSERT INTO auth_throttle (subject, failures, last_failure_at, locked) \
             VALUES ($1, 1, $2, 0) ON CONFLICT (subject) DO UPDATE \
             SET failures = auth_throttle.failures + 1, last_failure_at = excluded.last_failure_at \
             RETURNING failures, last_failure_at, locked",
        )
        .bind(subject)
        .bind(secs(now))
        .fetch_one(&self.pool)
        .await?;
        throttle_from(&row)
    }

    /// The state of `subject`, `None` if nothing was ever counted against it.
    pub async fn throttle(&self, subject: &str) -> Result<Option<ThrottleRecord>, CredentialError> {
        let row = sqlx::query(
            "SELECT failures, last_failure_at, locked FROM auth_throttle WHERE subject = $1",
        )
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(throttle_from).transpose()
    }

    /// Forgets the failures of `subject` after a success; a lock stays. Writes nothing when
    /// no failure is counted, which is the common case.
    pub async fn clear_failures(&self, subject: &str) -> Result<(), CredentialError> {
        sqlx::query(
            "UPDATE auth_throttle SET failures = 0, last_failure_at = NULL \
             WHERE subject = $1 AND failures > 0",
        )
        .bind(subject)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Locks or unlocks `subject`. Unlocking (an administrator's decision) also forgets its
    /// failures, so the next failure does not lock it again at once.
    pub async fn set_locked(&self, subject: &str, locked: bool) -> Result<(), CredentialError> {
        let statement = if locked {
            "INSERT INTO auth_throttle (subject, failures, last_failure_at, locked) \
             VALUES ($1, 0, NULL, 1) ON CONFLICT (subject) DO UPDATE SET locked = 1"
        } else {
            "UPDATE auth_throttle SET locked = 0, failures = 0, last_failure_at = NULL \
             WHERE subject = $1"
        };
        sqlx::query(statement)
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
