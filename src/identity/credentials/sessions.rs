//! Sessions: found by the hash of their opaque bearer token, named by a separate id for review
//! and revocation. A session ends when revoked, when idle for longer than its idle timeout, or
//! at its absolute expiry, whichever comes first.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;

use super::rows::{
    Abbreviated, duration, int, optional_text, optional_timestamp, secs, text, timestamp,
};
use super::{CredentialError, CredentialStore, TOUCH_INTERVAL_SECS};

const WHAT: &str = "session";

/// The columns [`session_from`] reads.
macro_rules! session_columns {
    () => {
        "session_id, principal, client_address, created_at, last_seen_at, idle_timeout_secs, \
         absolute_expires_at, step_up_at"
    };
}

/// A session to store.
#[derive(Clone)]
pub struct NewSession {
    /// The lowercase hex hash of the bearer token, by which the session is found.
    pub token_hash: String,
    /// The session's public name, for review and revocation.
    pub session_id: String,
    /// Who the session acts for, e.g. `user:<id>`.
    pub principal: String,
    /// The client's address at sign-in, where known.
    pub client_address: Option<String>,
    /// When the session began; also its first `last_seen_at`.
    pub created_at: DateTime<Utc>,
    /// How long the session may go unused before it ends; at most a century.
    pub idle_timeout_secs: u64,
    /// When the session ends however busy it is.
    pub absolute_expires_at: DateTime<Utc>,
    /// When the user last proved a second factor, if at sign-in.
    pub step_up_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("token_hash", &Abbreviated(&self.token_hash))
            .field("session_id", &self.session_id)
            .field("principal", &self.principal)
            .field("client_address", &self.client_address)
            .field("created_at", &self.created_at)
            .field("idle_timeout_secs", &self.idle_timeout_secs)
            .field("absolute_expires_at", &self.absolute_expires_at)
            .field("step_up_at", &self.step_up_at)
            .finish()
    }
}

/// A live session. It holds no token material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session's public name.
    pub session_id: String,
    /// Who the session acts for.
    pub principal: String,
    /// The client's address at sign-in, where known.
    pub client_address: Option<String>,
    /// When the session began.
    pub created_at: DateTime<Utc>,
    /// The last use, written at most every [`TOUCH_INTERVAL_SECS`] seconds, so idle expiry
    /// may come up to that much early.
    pub last_seen_at: DateTime<Utc>,
    /// How long the session may go unused before it ends.
    pub idle_timeout_secs: u64,
    /// When the session ends however busy it is.
    pub absolute_expires_at: DateTime<Utc>,
    /// When the user last proved a second factor in this session.
    pub step_up_at: Option<DateTime<Utc>>,
}

fn session_from(row: &AnyRow) -> Result<SessionRecord, CredentialError> {
    Ok(SessionRecord {
        session_id: text(row, "session_id", WHAT)?,
        principal: text(row, "principal", WHAT)?,
        client_address: optional_text(row, "client_address", WHAT)?,
        created_at: timestamp(row, "created_at", WHAT)?,
        last_seen_at: timestamp(row, "last_seen_at", WHAT)?,
        idle_timeout_secs: u64::try_from(int(row, "idle_timeout_secs", WHAT)?)
            .map_err(|_| CredentialError::Corrupt { what: WHAT })?,
        absolute_expires_at: timestamp(row, "absolute_expires_at", WHAT)?,
        step_up_at: optional_timestamp(row, "step_up_at", WHAT)?,
    })
}

/// Whether a session revoked at `now` was still live then (for counting revocations).
fn was_live(row: &AnyRow, now: i64) -> Result<bool, CredentialError> {
    let last_seen = int(row, "last_seen_at", WHAT)?;
    let idle = int(row, "idle_timeout_secs", WHAT)?;
    let absolute = int(row, "absolute_expires_at", WHAT)?;
    Ok(absolute > now && last_seen.saturating_add(idle) > now)
}

impl CredentialStore {
    /// Stores a new session, last seen at its creation.
    pub async fn create_session(&self, session: &NewSession) -> Result<(), CredentialError> {
        let idle = duration(session.idle_timeout_secs, "session idle timeout")?;
        sqlx::query(
            "INSERT INTO auth_sessions (session_id, token_hash, principal, client_address, \
             created_at, last_seen_at, idle_timeout_secs, absolute_expires_at, step_up_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8)",
        )
        .bind(session.session_id.as_str())
        .bind(session.token_hash.as_str())
        .bind(session.principal.as_str())
        .bind(session.client_address.as_deref())
        .bind(secs(session.created_at))
        .bind(idle)
        .bind(secs(session.absolute_expires_at))
        .bind(session.step_up_at.map(secs))
        .execute(&self.pool)
        .await
        .map_err(|error| CredentialError::from_insert(error, WHAT))?;
        Ok(())
    }

    /// The live session for a token at `now`: not revoked, not idle for its idle timeout, not
    /// past its absolute expiry. Its `last_seen_at` is moved to `now` only when older than
    /// [`TOUCH_INTERVAL_SECS`], so most requests write nothing.
    pub async fn live_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, CredentialError> {
        let now_secs = secs(now);
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM auth_sessions WHERE token_hash = $1 \
             AND revoked_at IS NULL AND absolute_expires_at > $2 \
             AND last_seen_at + idle_timeout_secs > $2"
        ))
        .bind(token_hash)
        .bind(now_secs)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut session = session_from(&row)?;
        if now_secs - secs(session.last_seen_at) >= TOUCH_INTERVAL_SECS {
            // Conditional, so concurrent requests write once between them; none revives a
            // session revoked in the meantime.
            let touched = sqlx::query(
                "UPDATE auth_sessions SET last_seen_at = $2 WHERE session_id = $1 \
                 AND revoked_at IS NULL AND last_seen_at <= $3",
            )
            .bind(session.session_id.as_str())
            .bind(now_secs)
            .bind(now_secs - TOUCH_INTERVAL_SECS)
            .execute(&self.pool)
            .await?;
            if touched.rows_affected() == 1 {
                session.last_seen_at = timestamp_of(now_secs)?;
            }
        }
        Ok(Some(session))
    }

    /// The session `session_id` if it is live at `now` (not revoked, not idle for its idle
    /// timeout, not past its absolute expiry). Reading it does not count as a use.
    pub async fn live_session_by_id(
        &self,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, CredentialError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM auth_sessions WHERE session_id = $1 \
             AND revoked_at IS NULL AND absolute_expires_at > $2 \
             AND last_seen_at + idle_timeout_secs > $2"
        ))
        .bind(session_id)
        .bind(secs(now))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_from).transpose()
    }

    /// Records that the session's user proved a second factor again at `now`. False if the
    /// session does not exist or is revoked.
    pub async fn record_step_up(
        &self,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, CredentialError> {
        let result = sqlx::query(
            "UPDATE auth_sessions SET step_up_at = $2 \
             WHERE session_id = $1 AND revoked_at IS NULL",
        )
        .bind(session_id)
        .bind(secs(now))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Revokes one session. True if it was not revoked before.
    pub async fn revoke_session(
        &self,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, CredentialError> {
        let result = sqlx::query(
            "UPDATE auth_sessions SET revoked_at = $2 \
             WHERE session_id = $1 AND revoked_at IS NULL",
        )
        .bind(session_id)
        .bind(secs(now))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Revokes every session of `principal` and returns how many were live. Expired sessions
    /// are revoked too, so a server whose clock lags still refuses them.
    pub async fn revoke_sessions_of(
        &self,
        principal: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, CredentialError> {
        let now = secs(now);
        let rows = sqlx::query(
            "UPDATE auth_sessions SET revoked_at = $2 \
             WHERE principal = $1 AND revoked_at IS NULL \
             RETURNING last_seen_at, idle_timeout_secs, absolute_expires_at",
        )
        .bind(principal)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        count_live(&rows, now)
    }

    /// Revokes every session of everyone and returns how many were live.
    pub async fn revoke_all_sessions(&self, now: DateTime<Utc>) -> Result<u64, CredentialError> {
        let now = secs(now);
        let rows = sqlx::query(
            "UPDATE auth_sessions SET revoked_at = $1 WHERE revoked_at IS NULL \
             RETURNING last_seen_at, idle_timeout_secs, absolute_expires_at",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        count_live(&rows, now)
    }

    /// The live sessions of `principal` at `now`, oldest first, for review.
    pub async fn sessions_of(
        &self,
        principal: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>, CredentialError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM auth_sessions WHERE principal = $1 \
             AND revoked_at IS NULL AND absolute_expires_at > $2 \
             AND last_seen_at + idle_timeout_secs > $2 ORDER BY created_at, session_id"
        ))
        .bind(principal)
        .bind(secs(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_from).collect()
    }
}

fn timestamp_of(secs: i64) -> Result<DateTime<Utc>, CredentialError> {
    super::rows::time(secs, WHAT)
}

fn count_live(rows: &[AnyRow], now: i64) -> Result<u64, CredentialError> {
    let mut live = 0;
    for row in rows {
        if was_live(row, now)? {
            live += 1;
        }
    }
    Ok(live)
}
