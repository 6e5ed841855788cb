//! The credential store: the secrets and mutable counters of the identity layer.
//!
//! Identity facts (a user added, a role changed, a login that succeeded) are events in the
//! signed log. What cannot be an event lives here instead: password hashes, TOTP secrets and
//! the last step each accepted, recovery-code and token hashes, sessions, API key hashes and
//! failed-attempt counters. None of it can be rebuilt from the log, so it is stored durably:
//! with SQLite in its own file `identity.db` in the data directory (WAL, `synchronous = FULL`),
//! with PostgreSQL in the log's database, in tables prefixed `auth_`.
//!
//! One code path serves both backends through sqlx's `Any` driver. Columns are TEXT or BIGINT
//! only; booleans are 0/1 and every time is unix seconds (UTC), so times compare as integers on
//! both. Every check-then-change (redeeming a token, accepting a TOTP step, using a recovery
//! code, counting a failure) is a single conditional statement, correct under concurrency on
//! SQLite and on PostgreSQL at READ COMMITTED.
//!
//! Tokens, codes and keys are looked up by their hash. They carry enough entropy that the
//! lookup's timing reveals nothing useful about a secret; comparing a presented API key with
//! the stored hash is done in constant time ([`ApiKeyRecord::secret_matches`]).

mod api_keys;
mod archive;
mod enrolments;
mod error;
mod factors;
mod rows;
mod schema;
mod sessions;
mod throttle;

use std::path::Path;

use sqlx::AnyPool;

pub use api_keys::{ApiKeyRecord, NewApiKey};
pub use archive::CredentialRow;
pub use error::CredentialError;
pub use factors::TotpRecord;
pub use sessions::{NewSession, SessionRecord};
pub use throttle::ThrottleRecord;

use crate::store::Backend;

/// How stale `last_seen_at` of a session or `last_used_at` of an API key may grow before a use
/// writes it again, so that a busy client does not cost a write per request.
pub const TOUCH_INTERVAL_SECS: i64 = 30;

/// The credential database and the dialect it speaks. Cloning shares the connection pool.
#[derive(Clone)]
pub struct CredentialStore {
    pool: AnyPool,
    backend: Backend,
}

impl std::fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl CredentialStore {
    /// Opens (creating when needed) the credential store: `<data_dir>/identity.db` when
    /// `database_url` is `None`, otherwise the PostgreSQL database it names. The tables are
    /// created if they do not exist yet.
    pub async fn open(
        data_dir: &Path,
        database_url: Option<&str>,
    ) -> Result<Self, CredentialError> {
        let (pool, backend) = schema::connect(data_dir, database_url).await?;
        let store = CredentialStore { pool, backend };
        schema::create_tables(&store.pool, store.backend).await?;
        Ok(store)
    }

    /// Which database holds the credentials.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Deletes what can never be used again: revoked or expired sessions, and enrolment tokens
    /// that were used or have expired. Returns how many rows went.
    pub async fn prune(&self, now: chrono::DateTime<chrono::Utc>) -> Result<u64, CredentialError> {
        let now = rows::secs(now);
        let sessions = sqlx::query(
            "DELETE FROM auth_sessions WHERE revoked_at IS NOT NULL \
             OR absolute_expires_at <= $1 OR last_seen_at + idle_timeout_secs <= $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let enrolments = sqlx::query(
            "DELETE FROM auth_enrolments WHERE used_at IS NOT NULL OR expires_at <= $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(sessions + enrolments)
    }
}
