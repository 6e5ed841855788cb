//! Enrolment tokens: single-use, expiring links with which a new user sets a password and
//! TOTP. Only the token's hash is stored.

use chrono::{DateTime, Utc};

use super::rows::{secs, text};
use super::{CredentialError, CredentialStore};

impl CredentialStore {
    /// Stores an enrolment token for `user_id`, valid until `expires_at`.
    pub async fn create_enrolment(
        &self,
        token_hash: &str,
        user_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), CredentialError> {
        sqlx::query(
            "INSERT INTO auth_enrolments (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(secs(expires_at))
        .execute(&self.pool)
        .await
        .map_err(|error| CredentialError::from_insert(error, "enrolment token"))?;
        Ok(())
    }

    /// Marks the token used and returns its user iff it is unused and unexpired at `now`. One
    /// conditional UPDATE, so a token is redeemed once however many requests present it.
    pub async fn redeem_enrolment(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, CredentialError> {
        let row = sqlx::query(
            "UPDATE auth_enrolments SET used_at = $2 \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id",
        )
        .bind(token_hash)
        .bind(secs(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| text(&row, "user_id", "enrolment token"))
            .transpose()
    }

    /// The user of a token that is unused and unexpired at `now`, without using it: the first
    /// step of enrolment shows the form, the second redeems the token.
    pub async fn peek_enrolment(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, CredentialError> {
        let row = sqlx::query(
            "SELECT user_id FROM auth_enrolments \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(secs(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| text(&row, "user_id", "enrolment token"))
            .transpose()
    }

    /// Deletes every enrolment token of the user, so none can be redeemed. Returns how many.
    pub async fn revoke_enrolments(&self, user_id: &str) -> Result<u64, CredentialError> {
        let result = sqlx::query("DELETE FROM auth_enrolments WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    /// Deletes the enrolment tokens still redeemable at `now`, of `user_id` or of everyone
    /// (`None`), and returns how many (incident response; used and expired ones prove nothing
    /// and stay as they are).
    pub async fn withdraw_pending_enrolments(
        &self,
        user_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64, CredentialError> {
        let result = match user_id {
            Some(user_id) => {
                sqlx::query(
                    "DELETE FROM auth_enrolments \
                     WHERE user_id = $1 AND used_at IS NULL AND expires_at > $2",
                )
                .bind(user_id)
                .bind(secs(now))
                .execute(&self.pool)
                .await?
            }
            None => {
                sqlx::query("DELETE FROM auth_enrolments WHERE used_at IS NULL AND expires_at > $1")
                    .bind(secs(now))
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(result.rows_affected())
    }
}
