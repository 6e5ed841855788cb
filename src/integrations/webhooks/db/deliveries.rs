//! Deliveries and their attempts as stored: queueing (idempotent), claiming with a lease, and
//! recording what each attempt did.

use sqlx::any::AnyRow;

use super::{WebhookDb, int, optional_int, optional_text, position, position_value, text};
use crate::integrations::webhooks::WebhookError;
use crate::store::Backend;

const DELIVERY: &str = "webhook delivery";
const ATTEMPT: &str = "webhook attempt";

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or being attempted, under a lease).
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: the receiver answered 410, or the last attempt failed.
    Failed,
    /// Not sent: the endpoint's client may no longer receive the event.
    Withheld,
    /// Not sent: the endpoint was removed.
    Cancelled,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Withheld => "withheld",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => DeliveryStatus::Pending,
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            "withheld" => DeliveryStatus::Withheld,
            "cancelled" => DeliveryStatus::Cancelled,
            _ => return None,
        })
    }
}

/// A delivery to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub delivery_id: String,
    pub endpoint_id: String,
    pub position: u64,
    pub event_id: String,
    pub event_type: String,
    pub matter: Option<String>,
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Also its `webhook-id`.
    pub delivery_id: String,
    pub endpoint_id: String,
    pub position: u64,
    pub event_id: String,
    pub event_type: String,
    pub matter: Option<String>,
    pub status: DeliveryStatus,
    /// Attempts made in all.
    pub attempts: i64,
    /// Failed attempts since it was last queued.
    pub failures: i64,
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// A delivery claimed for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub delivery_id: String,
    pub endpoint_id: String,
    pub position: u64,
    pub attempts: i64,
    pub failures: i64,
}

/// One attempt as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub delivery_id: String,
    /// 1 for the first attempt.
    pub attempt: i64,
    pub started_at: i64,
    pub latency_ms: i64,
    pub status_code: Option<i64>,
    /// `timeout`, `connect`, `refused_address`, `redirect`, `status`, ...; `None` on success.
    pub error_class: Option<String>,
    /// The start of a failed response's body, printable characters only.
    pub excerpt: Option<String>,
    pub next_attempt_at: Option<i64>,
}

/// What becomes of a claimed delivery after its attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub delivery_id: String,
    /// The attempt, or `None` when the delivery was not attempted (released or withheld).
    pub attempt: Option<Attempt>,
    pub status: DeliveryStatus,
    pub failures: i64,
    pub next_attempt_at: Option<i64>,
    pub finished_at: Option<i64>,
}

macro_rules! delivery_columns {
    () => {
        "delivery_id, endpoint_id, position, event_id, event_type, matter, status, attempts, \
         failures, next_attempt_at, created_at, finished_at"
    };
}

fn delivery_from(row: &AnyRow) -> Result<Delivery, WebhookError> {
    Ok(Delivery {
        delivery_id: text(row, "delivery_id", DELIVERY)?,
        endpoint_id: text(row, "endpoint_id", DELIVERY)?,
        position: position(row, "position", DELIVERY)?,
        event_id: text(row, "event_id", DELIVERY)?,
        event_type: text(row, "event_type", DELIVERY)?,
        matter: optional_text(row, "matter", DELIVERY)?,
        status: DeliveryStatus::parse(&text(row, "status", DELIVERY)?)
            .ok_or(WebhookError::Corrupt { what: DELIVERY })?,
        attempts: int(row, "attempts", DELIVERY)?,
        failures: int(row, "failures", DELIVERY)?,
        next_attempt_at: optional_int(row, "next_attempt_at", DELIVERY)?,
        created_at: int(row, "created_at", DELIVERY)?,
        finished_at: optional_int(row, "finished_at", DELIVERY)?,
    })
}

fn attempt_from(row: &AnyRow) -> Result<Attempt, WebhookError> {
    Ok(Attempt {
        delivery_id: text(row, "delivery_id", ATTEMPT)?,
        attempt: int(row, "attempt", ATTEMPT)?,
        started_at: int(row, "started_at", ATTEMPT)?,
        latency_ms: int(row, "latency_ms", ATTEMPT)?,
        status_code: optional_int(row, "status_code", ATTEMPT)?,
        error_class: optional_text(row, "error_class", ATTEMPT)?,
        excerpt: optional_text(row, "excerpt", ATTEMPT)?,
        next_attempt_at: optional_int(row, "next_attempt_at", ATTEMPT)?,
    })
}

impl WebhookDb {
    /// Queues `deliveries` to endpoints that are active (each once: one already queued is left
    /// as it is) and moves the cursors of active `endpoints` forward to `next_position`,
    /// atomically.
    pub async fn enqueue(
        &self,
        deliveries: &[NewDelivery],
        endpoints: &[String],
        next_position: u64,
        now: i64,
    ) -> Result<(), WebhookError> {
        let mut transaction = self.pool.begin().await?;
        for delivery in deliveries {
            sqlx::query(concat!(
                "INSERT INTO wh_deliveries (",
                delivery_columns!(),
                ", lease_owner, lease_until) \
                 SELECT $1, $2, $3, $4, $5, $6, 'pending', 0, 0, $7, $7, NULL, NULL, NULL \
                 WHERE EXISTS (SELECT 1 FROM wh_endpoints \
                   WHERE endpoint_id = $2 AND status = 'active') \
                 ON CONFLICT DO NOTHING"
            ))
            .bind(delivery.delivery_id.as_str())
            .bind(delivery.endpoint_id.as_str())
            .bind(position_value(delivery.position)?)
            .bind(delivery.event_id.as_str())
            .bind(delivery.event_type.as_str())
            .bind(delivery.matter.as_deref())
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        }
        let next = position_value(next_position)?;
        for endpoint_id in endpoints {
            sqlx::query(
                "UPDATE wh_endpoints SET next_position = $1 \
                 WHERE endpoint_id = $2 AND next_position < $1 AND status = 'active'",
            )
            .bind(next)
            .bind(endpoint_id.as_str())
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Records `finished` outcomes, then claims up to `limit` deliveries that are due at `now`
    /// on active endpoints, leasing them to `owner` until `lease_until`, in one transaction. A
    /// delivery leased to another sender whose lease has not run out is never claimed, so it is
    /// attempted by one sender at a time.
    pub async fn finish_and_claim(
        &self,
        owner: &str,
        finished: &[Outcome],
        lease: (i64, i64),
        limit: i64,
    ) -> Result<Vec<Claimed>, WebhookError> {
        let (now, lease_until) = lease;
        let mut transaction = self.pool.begin().await?;
        record_outcomes(&mut transaction, owner, finished).await?;
        let skip_locked = match self.backend {
            Backend::Postgres => " FOR UPDATE OF d SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let statement = format!(
            "UPDATE wh_deliveries SET lease_owner = $1, lease_until = $2 \
             WHERE status = 'pending' AND next_attempt_at <= $3 \
             AND (lease_until IS NULL OR lease_until <= $3) \
             AND delivery_id IN (SELECT d.delivery_id FROM wh_deliveries d \
               JOIN wh_endpoints e ON e.endpoint_id = d.endpoint_id \
               WHERE d.status = 'pending' AND d.next_attempt_at <= $3 \
               AND (d.lease_until IS NULL OR d.lease_until <= $3) AND e.status = 'active' \
               ORDER BY d.next_attempt_at, d.position LIMIT $4{skip_locked}) \
             RETURNING delivery_id, endpoint_id, position, attempts, failures"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *transaction)
            .await?;
        transaction.commit().await?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                Ok(Claimed {
                    delivery_id: text(row, "delivery_id", DELIVERY)?,
                    endpoint_id: text(row, "endpoint_id", DELIVERY)?,
                    position: position(row, "position", DELIVERY)?,
                    attempts: int(row, "attempts", DELIVERY)?,
                    failures: int(row, "failures", DELIVERY)?,
                })
            })
            .collect::<Result<Vec<_>, WebhookError>>()?;
        claimed.sort_by_key(|claim| claim.position);
        Ok(claimed)
    }

    /// Records the outcomes of claimed deliveries, in one transaction. An outcome whose lease
    /// `owner` no longer holds changes nothing (its attempt is still recorded), so recording
    /// the same outcomes twice is harmless.
    pub async fn finish(&self, owner: &str, outcomes: &[Outcome]) -> Result<(), WebhookError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut transaction = self.pool.begin().await?;
        record_outcomes(&mut transaction, owner, outcomes).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Queues a delivery again, due at once, with a fresh run of retries; `false` when there
    /// is no such delivery or its endpoint was removed.
    pub async fn requeue(&self, delivery_id: &str, now: i64) -> Result<bool, WebhookError> {
        let changed = sqlx::query(
            "UPDATE wh_deliveries SET status = 'pending', failures = 0, next_attempt_at = $1, \
             finished_at = NULL WHERE delivery_id = $2 AND status <> 'cancelled'",
        )
        .bind(now)
        .bind(delivery_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed > 0)
    }

    /// Queues every failed delivery of an endpoint again (when it is enabled).
    pub async fn requeue_failed(&self, endpoint_id: &str, now: i64) -> Result<u64, WebhookError> {
        Ok(sqlx::query(
            "UPDATE wh_deliveries SET status = 'pending', failures = 0, next_attempt_at = $1, \
             finished_at = NULL WHERE endpoint_id = $2 AND status = 'failed'",
        )
        .bind(now)
        .bind(endpoint_id)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// The delivery `delivery_id`, if stored.
    pub async fn delivery(&self, delivery_id: &str) -> Result<Option<Delivery>, WebhookError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM wh_deliveries WHERE delivery_id = $1"
        ))
        .bind(delivery_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(delivery_from).transpose()
    }

    /// An endpoint's deliveries, newest first: below `before` (a position) when given, of
    /// one status when given.
    pub async fn deliveries(
        &self,
        endpoint_id: &str,
        status: Option<DeliveryStatus>,
        before: Option<u64>,
        limit: i64,
    ) -> Result<Vec<Delivery>, WebhookError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM wh_deliveries WHERE endpoint_id = $1 AND ($2 = '' OR status = $2) \
             AND position < $3 ORDER BY position DESC LIMIT $4"
        ))
        .bind(endpoint_id)
        .bind(status.map_or("", DeliveryStatus::as_str))
        .bind(before.map_or(Ok(i64::MAX), position_value)?)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from).collect()
    }

    /// The attempts of one delivery, in order.
    pub async fn attempts(&self, delivery_id: &str) -> Result<Vec<Attempt>, WebhookError> {
        let rows = sqlx::query(
            "SELECT delivery_id, attempt, started_at, latency_ms, status_code, error_class, \
             excerpt, next_attempt_at FROM wh_attempts WHERE delivery_id = $1 ORDER BY attempt",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from).collect()
    }

    /// How many deliveries are in each state (all endpoints), for operations and benchmarks.
    pub async fn count(&self, status: DeliveryStatus) -> Result<i64, WebhookError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM wh_deliveries WHERE status = $1")
            .bind(status.as_str())
            .fetch_one(&self.pool)
            .await?;
        int(&row, "n", DELIVERY)
    }
}

/// Writes outcomes (and their attempts) inside `transaction`.
async fn record_outcomes(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    owner: &str,
    outcomes: &[Outcome],
) -> Result<(), WebhookError> {
    for outcome in outcomes {
        let attempted = i64::from(outcome.attempt.is_some());
        if let Some(attempt) = &outcome.attempt {
            sqlx::query(
                "INSERT INTO wh_attempts (delivery_id, attempt, started_at, latency_ms, \
                 status_code, error_class, excerpt, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(attempt.delivery_id.as_str())
            .bind(attempt.attempt)
            .bind(attempt.started_at)
            .bind(attempt.latency_ms)
            .bind(attempt.status_code)
            .bind(attempt.error_class.as_deref())
            .bind(attempt.excerpt.as_deref())
            .bind(attempt.next_attempt_at)
            .execute(&mut **transaction)
            .await?;
        }
        sqlx::query(
            "UPDATE wh_deliveries SET status = $1, attempts = attempts + $2, failures = $3, \
             next_attempt_at = $4, finished_at = $5, lease_owner = NULL, lease_until = NULL \
             WHERE delivery_id = $6 AND lease_owner = $7",
        )
        .bind(outcome.status.as_str())
        .bind(attempted)
        .bind(outcome.failures)
        .bind(outcome.next_attempt_at)
        .bind(outcome.finished_at)
        .bind(outcome.delivery_id.as_str())
        .bind(owner)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(())
}
