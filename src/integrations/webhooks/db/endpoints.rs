//! Endpoints and their signing keys as stored.

use sqlx::any::AnyRow;

use super::{WebhookDb, int, optional_int, optional_text, position, position_value, text};
use crate::integrations::webhooks::WebhookError;
use crate::integrations::webhooks::filter::EventFilter;
use crate::integrations::webhooks::signing::Scheme;

const ENDPOINT: &str = "webhook endpoint";
const KEY: &str = "webhook key";

/// Where an endpoint stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointStatus {
    /// Stored, its registration not yet recorded in the log: nothing is sent to it.
    Registering,
    /// Receiving deliveries.
    Active,
    /// Nothing is sent; events still accumulate and are delivered once it is enabled again.
    Disabled,
    /// Gone for good: its keys are destroyed and nothing more is queued.
    Removed,
}

impl EndpointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointStatus::Registering => "registering",
            EndpointStatus::Active => "active",
            EndpointStatus::Disabled => "disabled",
            EndpointStatus::Removed => "removed",
        }
    }

    fn parse(text: &str) -> Result<Self, WebhookError> {
        Ok(match text {
            "registering" => EndpointStatus::Registering,
            "active" => EndpointStatus::Active,
            "disabled" => EndpointStatus::Disabled,
            "removed" => EndpointStatus::Removed,
            _ => return Err(WebhookError::Corrupt { what: ENDPOINT }),
        })
    }
}

/// An endpoint as stored. The URL may hold a receiver's token in its query: it is kept here
/// and shown to administrators, never written to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub endpoint_id: String,
    pub client_id: String,
    pub url: String,
    pub filter: EventFilter,
    pub status: EndpointStatus,
    pub disabled_reason: Option<String>,
    /// The next log position the dispatcher has to look at for this endpoint.
    pub next_position: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One signing key: its secret sealed by the vault, the public key of an ed25519 key, and
/// until when it signs (`None`: the current key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub key_id: String,
    pub endpoint_id: String,
    pub scheme: Scheme,
    pub sealed: String,
    pub public_key: Option<String>,
    pub created_at: i64,
    pub retires_at: Option<i64>,
}

macro_rules! endpoint_columns {
    () => {
        "endpoint_id, client_id, url, matters, event_types, status, disabled_reason, \
         next_position, created_at, updated_at"
    };
}

macro_rules! key_columns {
    () => {
        "key_id, endpoint_id, scheme, sealed, public_key, created_at, retires_at"
    };
}

fn endpoint_from(row: &AnyRow) -> Result<Endpoint, WebhookError> {
    let list = |column: &str| -> Result<Vec<String>, WebhookError> {
        serde_json::from_str(&text(row, column, ENDPOINT)?)
            .map_err(|_| WebhookError::Corrupt { what: ENDPOINT })
    };
    Ok(Endpoint {
        endpoint_id: text(row, "endpoint_id", ENDPOINT)?,
        client_id: text(row, "client_id", ENDPOINT)?,
        url: text(row, "url", ENDPOINT)?,
        filter: EventFilter {
            matters: list("matters")?,
            event_types: list("event_types")?,
        },
        status: EndpointStatus::parse(&text(row, "status", ENDPOINT)?)?,
        disabled_reason: optional_text(row, "disabled_reason", ENDPOINT)?,
        next_position: position(row, "next_position", ENDPOINT)?,
        created_at: int(row, "created_at", ENDPOINT)?,
        updated_at: int(row, "updated_at", ENDPOINT)?,
    })
}

fn key_from(row: &AnyRow) -> Result<StoredKey, WebhookError> {
    Ok(StoredKey {
        key_id: text(row, "key_id", KEY)?,
        endpoint_id: text(row, "endpoint_id", KEY)?,
        scheme: Scheme::parse(&text(row, "scheme", KEY)?)
            .ok_or(WebhookError::Corrupt { what: KEY })?,
        sealed: text(row, "sealed", KEY)?,
        public_key: optional_text(row, "public_key", KEY)?,
        created_at: int(row, "created_at", KEY)?,
        retires_at: optional_int(row, "retires_at", KEY)?,
    })
}

fn json_list(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_owned())
}

impl WebhookDb {
    /// Stores a new endpoint (as registering) with its first key, atomically.
    pub async fn insert_endpoint(
        &self,
        endpoint: &Endpoint,
        key: &StoredKey,
    ) -> Result<(), WebhookError> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query(concat!(
            "INSERT INTO wh_endpoints (",
            endpoint_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(endpoint.endpoint_id.as_str())
        .bind(endpoint.client_id.as_str())
        .bind(endpoint.url.as_str())
        .bind(json_list(&endpoint.filter.matters))
        .bind(json_list(&endpoint.filter.event_types))
        .bind(endpoint.status.as_str())
        .bind(endpoint.disabled_reason.as_deref())
        .bind(position_value(endpoint.next_position)?)
        .bind(endpoint.created_at)
        .bind(endpoint.updated_at)
        .execute(&mut *transaction)
        .await?;
        insert_key(&mut transaction, key).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Forgets an endpoint whose registration never reached the log.
    pub async fn delete_registering(&self, endpoint_id: &str) -> Result<(), WebhookError> {
        let mut transaction = self.pool.begin().await?;
        let deleted = sqlx::query(
            "DELETE FROM wh_endpoints WHERE endpoint_id = $1 AND status = 'registering'",
        )
        .bind(endpoint_id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if deleted > 0 {
            sqlx::query("DELETE FROM wh_keys WHERE endpoint_id = $1")
                .bind(endpoint_id)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// The endpoint `endpoint_id`, if stored.
    pub async fn endpoint(&self, endpoint_id: &str) -> Result<Option<Endpoint>, WebhookError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM wh_endpoints WHERE endpoint_id = $1"
        ))
        .bind(endpoint_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(endpoint_from).transpose()
    }

    /// Endpoints that are active, disabled or (with `removed`) removed, of one client or all,
    /// oldest first.
    pub async fn endpoints(
        &self,
        client_id: Option<&str>,
        removed: bool,
    ) -> Result<Vec<Endpoint>, WebhookError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM wh_endpoints WHERE status <> 'registering' \
             AND ($1 = 1 OR status <> 'removed') AND ($2 = '' OR client_id = $2) \
             ORDER BY created_at, endpoint_id"
        ))
        .bind(i64::from(removed))
        .bind(client_id.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(endpoint_from).collect()
    }

    /// Every active endpoint.
    pub async fn active_endpoints(&self) -> Result<Vec<Endpoint>, WebhookError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM wh_endpoints WHERE status = 'active' ORDER BY endpoint_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(endpoint_from).collect()
    }

    /// Moves an endpoint from one of `from` to `to` (with the reason of a disabling); `false`
    /// when it was in none of them (another process or request changed it first).
    pub async fn set_status(
        &self,
        endpoint_id: &str,
        from: &[EndpointStatus],
        to: EndpointStatus,
        reason: Option<&str>,
        now: i64,
    ) -> Result<bool, WebhookError> {
        let from: Vec<&str> = from.iter().map(|status| status.as_str()).collect();
        let changed = sqlx::query(
            "UPDATE wh_endpoints SET status = $1, disabled_reason = $2, updated_at = $3 \
             WHERE endpoint_id = $4 AND (status = $5 OR status = $6 OR status = $7)",
        )
        .bind(to.as_str())
        .bind(reason)
        .bind(now)
        .bind(endpoint_id)
        .bind(from.first().copied().unwrap_or(""))
        .bind(from.get(1).copied().unwrap_or(""))
        .bind(from.get(2).copied().unwrap_or(""))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed > 0)
    }

    /// Replaces an endpoint's URL and filter.
    pub async fn update_endpoint(
        &self,
        endpoint_id: &str,
        url: &str,
        filter: &EventFilter,
        now: i64,
    ) -> Result<bool, WebhookError> {
        let changed = sqlx::query(
            "UPDATE wh_endpoints SET url = $1, matters = $2, event_types = $3, updated_at = $4 \
             WHERE endpoint_id = $5 AND (status = 'active' OR status = 'disabled')",
        )
        .bind(url)
        .bind(json_list(&filter.matters))
        .bind(json_list(&filter.event_types))
        .bind(now)
        .bind(endpoint_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed > 0)
    }

    /// The keys of an endpoint that still sign at `now`, newest first.
    pub async fn signing_keys(
        &self,
        endpoint_id: &str,
        now: i64,
    ) -> Result<Vec<StoredKey>, WebhookError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM wh_keys WHERE endpoint_id = $1 AND (retires_at IS NULL OR retires_at > $2) \
             ORDER BY created_at DESC, key_id DESC"
        ))
        .bind(endpoint_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from).collect()
    }

    /// Makes `key` the endpoint's current key: the keys signing now keep signing until
    /// `retire_at`, and keys already retired are deleted.
    pub async fn rotate_key(
        &self,
        key: &StoredKey,
        retire_at: i64,
        now: i64,
    ) -> Result<(), WebhookError> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query("DELETE FROM wh_keys WHERE endpoint_id = $1 AND retires_at <= $2")
            .bind(key.endpoint_id.as_str())
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "UPDATE wh_keys SET retires_at = $1 WHERE endpoint_id = $2 \
             AND (retires_at IS NULL OR retires_at > $1)",
        )
        .bind(retire_at)
        .bind(key.endpoint_id.as_str())
        .execute(&mut *transaction)
        .await?;
        insert_key(&mut transaction, key).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Undoes a rotation whose event was not recorded: the new key goes and the previous
    /// keys sign as before.
    pub async fn undo_rotation(
        &self,
        new_key_id: &str,
        previous: &[StoredKey],
    ) -> Result<(), WebhookError> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query("DELETE FROM wh_keys WHERE key_id = $1")
            .bind(new_key_id)
            .execute(&mut *transaction)
            .await?;
        for key in previous {
            sqlx::query("UPDATE wh_keys SET retires_at = $1 WHERE key_id = $2")
                .bind(key.retires_at)
                .bind(key.key_id.as_str())
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Removes an endpoint for good: its keys are deleted and its pending deliveries
    /// cancelled. `false` when it was removed already.
    pub async fn remove_endpoint(&self, endpoint_id: &str, now: i64) -> Result<bool, WebhookError> {
        let mut transaction = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE wh_endpoints SET status = 'removed', updated_at = $1 \
             WHERE endpoint_id = $2 AND (status = 'active' OR status = 'disabled')",
        )
        .bind(now)
        .bind(endpoint_id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if changed > 0 {
            sqlx::query("DELETE FROM wh_keys WHERE endpoint_id = $1")
                .bind(endpoint_id)
                .execute(&mut *transaction)
                .await?;
            sqlx::query(
                "UPDATE wh_deliveries SET status = 'cancelled', finished_at = $1, \
                 next_attempt_at = NULL WHERE endpoint_id = $2 AND status = 'pending'",
            )
            .bind(now)
            .bind(endpoint_id)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(changed > 0)
    }

    /// How many endpoints (not removed) a client has.
    pub async fn endpoint_count(&self, client_id: &str) -> Result<i64, WebhookError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM wh_endpoints WHERE client_id = $1 AND status <> 'removed'",
        )
        .bind(client_id)
        .fetch_one(&self.pool)
        .await?;
        int(&row, "n", ENDPOINT)
    }
}

async fn insert_key(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    key: &StoredKey,
) -> Result<(), WebhookError> {
    sqlx::query(concat!(
        "INSERT INTO wh_keys (",
        key_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(key.key_id.as_str())
    .bind(key.endpoint_id.as_str())
    .bind(key.scheme.as_str())
    .bind(key.sealed.as_str())
    .bind(key.public_key.as_deref())
    .bind(key.created_at)
    .bind(key.retires_at)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}
