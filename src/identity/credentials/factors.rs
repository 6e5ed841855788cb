//! Authentication factors: the password hash, the TOTP secret with the last step it accepted,
//! and recovery-code hashes.

use chrono::{DateTime, Utc};
use sqlx::Row;
use zeroize::Zeroizing;

use super::rows::{optional_int, optional_text, secs};
use super::{CredentialError, CredentialStore};

/// A user's TOTP factor as stored.
#[derive(Clone)]
pub struct TotpRecord {
    /// The shared secret, hex-encoded.
    pub secret_hex: Zeroizing<String>,
    /// Whether this is the active secret; `false` for an enrolment awaiting its first code.
    pub confirmed: bool,
    /// The last time step accepted (RFC 6238), which no later code may reuse or precede.
    pub last_step: Option<u64>,
}

impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("secret_hex", &"<redacted>")
            .field("confirmed", &self.confirmed)
            .field("last_step", &self.last_step)
            .finish()
    }
}

/// A step as stored; steps beyond BIGINT are not times this century and match nothing.
fn stored_step(step: u64) -> Option<i64> {
    i64::try_from(step).ok()
}

impl CredentialStore {
    /// Stores `phc` (an Argon2id PHC string) as the user's password, replacing any other.
    pub async fn set_password(
        &self,
        user_id: &str,
        phc: &str,
        now: DateTime<Utc>,
    ) -> Result<(), CredentialError> {
        sqlx::query(
            "INSERT INTO auth_passwords (user_id, phc, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET phc = excluded.phc, \
             updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(phc)
        .bind(secs(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user's password hash, if they have a password.
    pub async fn password(
        &self,
        user_id: &str,
    ) -> Result<Option<Zeroizing<String>>, CredentialError> {
        let row = sqlx::query("SELECT phc FROM auth_passwords WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            row.try_get::<String, _>("phc")
                .map(Zeroizing::new)
                .map_err(|_| CredentialError::Corrupt { what: "password" })
        })
        .transpose()
    }

    /// Removes the user's password, so that password login is refused.
    pub async fn remove_password(&self, user_id: &str) -> Result<bool, CredentialError> {
        let result = sqlx::query("DELETE FROM auth_passwords WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Starts a TOTP enrolment with `secret_hex`, replacing any enrolment still pending. An
    /// active secret stays in force until the new one is confirmed.
    pub async fn set_pending_totp(
        &self,
        user_id: &str,
        secret_hex: &str,
    ) -> Result<(), CredentialError> {
        sqlx::query(
            "INSERT INTO auth_totp (user_id, pending_secret_hex) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO UPDATE SET pending_secret_hex = excluded.pending_secret_hex",
        )
        .bind(user_id)
        .bind(secret_hex)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The secret of the user's pending TOTP enrolment, against which the confirming code is
    /// checked.
    pub async fn pending_totp(
        &self,
        user_id: &str,
    ) -> Result<Option<Zeroizing<String>>, CredentialError> {
        let row = sqlx::query("SELECT pending_secret_hex FROM auth_totp WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(optional_text(&row, "pending_secret_hex", "TOTP secret")?.map(Zeroizing::new))
    }

    /// Makes the pending secret the active one, with `step` (the step of the code that
    /// confirmed it) as its last accepted step. False if no enrolment was pending.
    pub async fn confirm_totp(&self, user_id: &str, step: u64) -> Result<bool, CredentialError> {
        let Some(step) = stored_step(step) else {
            return Ok(false);
        };
        let result = sqlx::query(
            "UPDATE auth_totp SET secret_hex = pending_secret_hex, last_step = $2, \
             pending_secret_hex = NULL WHERE user_id = $1 AND pending_secret_hex IS NOT NULL",
        )
        .bind(user_id)
        .bind(step)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// The user's TOTP factor: the active secret if there is one, otherwise the pending
    /// enrolment (with `confirmed` false), otherwise `None`.
    pub async fn totp(&self, user_id: &str) -> Result<Option<TotpRecord>, CredentialError> {
        let row = sqlx::query(
            "SELECT secret_hex, last_step, pending_secret_hex FROM auth_totp WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        const WHAT: &str = "TOTP secret";
        if let Some(secret) = optional_text(&row, "secret_hex", WHAT)? {
            let last_step = optional_int(&row, "last_step", WHAT)?
                .map(u64::try_from)
                .transpose()
                .map_err(|_| CredentialError::Corrupt { what: WHAT })?;
            return Ok(Some(TotpRecord {
                secret_hex: Zeroizing::new(secret),
                confirmed: true,
                last_step,
            }));
        }
        Ok(
            optional_text(&row, "pending_secret_hex", WHAT)?.map(|secret| TotpRecord {
                secret_hex: Zeroizing::new(secret),
                confirmed: false,
                last_step: None,
            }),
        )
    }

    /// Records `step` as used iff the user has an active secret and `step` is later than the
    /// last step accepted. The comparison is in the UPDATE's WHERE clause, so of two requests
    /// presenting the same code at once exactly one is accepted.
    pub async fn accept_totp_step(
        &self,
        user_id: &str,
        step: u64,
    ) -> Result<bool, CredentialError> {
        let Some(step) = stored_step(step) else {
            return Ok(false);
        };
        let result = sqlx::query(
            "UPDATE auth_totp SET last_step = $2 WHERE user_id = $1 AND secret_hex IS NOT NULL \
             AND (last_step IS NULL OR last_step < $2)",
        )
        .bind(user_id)
        .bind(step)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Removes the user's TOTP factor, active and pending alike (an MFA reset).
    pub async fn remove_totp(&self, user_id: &str) -> Result<bool, CredentialError> {
        let result = sqlx::query("DELETE FROM auth_totp WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Replaces all of the user's recovery codes with `hashes`, in one transaction: the old
    /// codes stop working exactly when the new ones start.
    pub async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), CredentialError> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query("DELETE FROM auth_recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *transaction)
            .await?;
        for hash in hashes {
            sqlx::query(
                "INSERT INTO auth_recovery_codes (user_id, code_hash, created_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (user_id, code_hash) DO NOTHING",
            )
            .bind(user_id)
            .bind(hash.as_str())
            .bind(secs(now))
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Uses the recovery code with hash `hash` iff it is the user's and unused; a code works
    /// once, even when presented twice at the same moment.
    pub async fn use_recovery_code(
        &self,
        user_id: &str,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, CredentialError> {
        let result = sqlx::query(
            "UPDATE auth_recovery_codes SET used_at = $3 \
             WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(hash)
        .bind(secs(now))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// How many of the user's recovery codes are still unused.
    pub async fn remaining_recovery_codes(&self, user_id: &str) -> Result<u32, CredentialError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS remaining FROM auth_recovery_codes \
             WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        let remaining = super::rows::int(&row, "remaining", "recovery code count")?;
        u32::try_from(remaining).map_err(|_| CredentialError::Corrupt {
            what: "recovery code count",
        })
    }
}
