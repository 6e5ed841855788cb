//! API client keys: a public key id and a secret, of which only the hash is stored.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use subtle::ConstantTimeEq;

use super::rows::{Abbreviated, optional_timestamp, secs, text, timestamp};
use super::{CredentialError, CredentialStore, TOUCH_INTERVAL_SECS};

const WHAT: &str = "API key";

/// The columns [`api_key_from`] reads.
macro_rules! api_key_columns {
    () => {
        "key_id, client_id, secret_hash, created_at, expires_at, last_used_at"
    };
}

/// An API key to store.
#[derive(Clone)]
pub struct NewApiKey {
    /// The key's public identifier, presented with its secret.
    pub key_id: String,
    /// The API client the key belongs to.
    pub client_id: String,
    /// The lowercase hex hash of the key's secret.
    pub secret_hash: String,
    /// When the key was issued.
    pub created_at: DateTime<Utc>,
    /// `None` for a key that does not expire.
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("key_id", &self.key_id)
            .field("client_id", &self.client_id)
            .field("secret_hash", &Abbreviated(&self.secret_hash))
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A usable API key: neither revoked nor expired when read.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The key's public identifier.
    pub key_id: String,
    /// The API client the key belongs to.
    pub client_id: String,
    /// The lowercase hex hash of the key's secret; compare with [`ApiKeyRecord::secret_matches`].
    pub secret_hash: String,
    /// When the key was issued.
    pub created_at: DateTime<Utc>,
    /// When the key stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// The last use, written at most every [`TOUCH_INTERVAL_SECS`] seconds.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKeyRecord {
    /// Whether `candidate_hash`, the hash of a presented secret, is this key's, compared in
    /// constant time.
    pub fn secret_matches(&self, candidate_hash: &str) -> bool {
        self.secret_hash
            .as_bytes()
            .ct_eq(candidate_hash.as_bytes())
            .into()
    }
}

impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("key_id", &self.key_id)
            .field("client_id", &self.client_id)
            .field("secret_hash", &Abbreviated(&self.secret_hash))
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("last_used_at", &self.last_used_at)
            .finish()
    }
}

fn api_key_from(row: &AnyRow) -> Result<ApiKeyRecord, CredentialError> {
    Ok(ApiKeyRecord {
        key_id: text(row, "key_id", WHAT)?,
        client_id: text(row, "client_id", WHAT)?,
        secret_hash: text(row, "secret_hash", WHAT)?,
        created_at: timestamp(row, "created_at", WHAT)?,
        expires_at: optional_timestamp(row, "expires_at", WHAT)?,
        last_used_at: optional_timestamp(row, "last_used_at", WHAT)?,
    })
}

impl CredentialStore {
    /// Stores a new API key.
    pub async fn create_api_key(&self, key: &NewApiKey) -> Result<(), CredentialError> {
        sqlx::query(
            "INSERT INTO auth_api_keys (key_id, client_id, secret_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(key.key_id.as_str())
        .bind(key.client_id.as_str())
        .bind(key.secret_hash.as_str())
        .bind(secs(key.created_at))
        .bind(key.expires_at.map(secs))
        .execute(&self.pool)
        .await
        .map_err(|error| CredentialError::from_insert(error, WHAT))?;
        Ok(())
    }

    /// The key `key_id` if it is neither revoked nor expired at `now`.
    pub async fn api_key(
        &self,
        key_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ApiKeyRecord>, CredentialError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM auth_api_keys WHERE key_id = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)"
        ))
        .bind(key_id)
        .bind(secs(now))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(api_key_from).transpose()
    }

    /// The usable keys of `client_id` at `now`, oldest first, for review.
    pub async fn api_keys_of(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<ApiKeyRecord>, CredentialError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM auth_api_keys WHERE client_id = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at, key_id"
        ))
        .bind(client_id)
        .bind(secs(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(api_key_from).collect()
    }

    /// Revokes one key. True if it was not revoked before.
    pub async fn revoke_api_key(
        &self,
        key_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, CredentialError> {
        let result = sqlx::query(
            "UPDATE auth_api_keys SET revoked_at = $2 WHERE key_id = $1 AND revoked_at IS NULL",
        )
        .bind(key_id)
        .bind(secs(now))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Makes the key stop working at `at`, unless it is revoked or already expires sooner.
    /// True if it changed.
    pub async fn shorten_api_key_expiry(
        &self,
        key_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, CredentialError> {
        let result = sqlx::query(
            "UPDATE auth_api_keys SET expires_at = $2 WHERE key_id = $1 \
             AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(key_id)
        .bind(secs(at))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Revokes every key of `client_id` not revoked before (expired ones included) and returns
    /// how many.
    pub async fn revoke_api_keys_of(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, CredentialError> {
        let result = sqlx::query(
            "UPDATE auth_api_keys SET revoked_at = $2 \
             WHERE client_id = $1 AND revoked_at IS NULL",
        )
        .bind(client_id)
        .bind(secs(now))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    /// Revokes every key of every client not revoked before (a lockdown) and returns how many.
    pub async fn revoke_all_api_keys(&self, now: DateTime<Utc>) -> Result<u64, CredentialError> {
        let result =
            sqlx::query("UPDATE auth_api_keys SET revoked_at = $1 WHERE revoked_at IS NULL")
                .bind(secs(now))
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected())
    }

    /// Records a use of the key at `now`, writing only when the last recorded use is older
    /// than [`TOUCH_INTERVAL_SECS`]. True if it wrote.
    pub async fn touch_api_key(
        &self,
        key_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, CredentialError> {
        let now = secs(now);
        let result = sqlx::query(
            "UPDATE auth_api_keys SET last_used_at = $2 WHERE key_id = $1 \
             AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(key_id)
        .bind(now)
        .bind(now - TOUCH_INTERVAL_SECS)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
