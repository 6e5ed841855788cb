//! Alerts as events of the log. Every alert Docket raises, about misuse (the anomaly rules of
//! [`super::anomaly`]) or about integrity (the background verifier), is appended as one
//! `alert.raised` event on the `alerts` stream, so it is signed, hash-chained and kept like any
//! other fact, and reaches people through the paths every event takes: the `alerts` query,
//! the `events` subscription and webhooks, each for principals allowed to read alerts.
//!
//! An alert names its rule, the principal (or account, or client address) it is about, how
//! many observations tripped it within which window, the matter numbers involved (at most
//! [`MAX_MATTERS`]) and where in its source the last observation sits. It never carries a
//! payload, a note, a search term or any other client data.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::alerts::{Alert, AlertSink, LoggingAlertSink};
use crate::log::{Actor, EventDraft, StreamId};
use crate::store::{AppendRequest, EventLog, StoreError};

/// The stream every alert is appended to.
pub const STREAM: &str = "alerts";
/// The one event type of the stream.
pub const ALERT_RAISED: &str = "alert.raised";
/// The stream's event types with their schema versions.
pub const TYPES: &[(&str, u32)] = &[(ALERT_RAISED, 1)];
/// Most matter numbers one alert names.
pub const MAX_MATTERS: usize = 20;
/// Integrity alerts waiting to be appended; more are logged and counted but not appended.
const PENDING_INTEGRITY_ALERTS: usize = 256;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look during working hours.
    Medium,
    /// Someone should look now.
    High,
    /// The record itself may be compromised.
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What the observations behind an alert were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSource {
    /// The access chain: `through` is the position of an access record.
    AccessChain,
    /// The event log: `through` is the position of an event.
    Log,
    /// The background verifier: `through` is the first failing position, when known.
    Verifier,
}

impl AlertSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSource::AccessChain => "access_chain",
            AlertSource::Log => "log",
            AlertSource::Verifier => "verifier",
        }
    }
}

/// The payload of `alert.raised` (schema version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRaised {
    /// `al_` and 32 hex digits, derived from the rule, the subject, the source and `through`
    /// (see [`alert_id`]): the same alert raised twice, by two processes say, is appended once.
    pub alert_id: String,
    /// The rule that raised it: an anomaly rule (`many_matters`, `off_hours`, `failed_logins`,
    /// `walled_attempts`, `break_glass`, `bulk_exports`, `api_client_errors`) or an integrity
    /// check (`log_integrity`, `access_chain_integrity`, `checkpoint_mismatch`).
    pub rule: String,
    pub severity: Severity,
    /// Who or what it is about: `user:<id>`, `api_client:<id>`, `account:<user id>`,
    /// `address:<client address>`. Absent for integrity alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Observations counted (distinct matters for `many_matters`).
    pub count: u64,
    /// The rule's threshold when it tripped.
    pub threshold: u64,
    /// The rule's window, in seconds.
    pub window_secs: u64,
    /// When the first and the last counted observation happened (RFC 3339).
    pub first_at: String,
    pub last_at: String,
    /// Matter numbers involved, at most [`MAX_MATTERS`], in the order first seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matters: Vec<String>,
    pub source: AlertSource,
    /// The position in `source` of the last observation counted, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub through: Option<u64>,
    /// One sentence in Docket's words (never client data).
    pub summary: String,
}

impl AlertRaised {
    /// The alert event for an integrity alert of the verifier.
    pub fn integrity(alert: &Alert, now: &str) -> Self {
        let position = alert.position.map(|p| p.to_string()).unwrap_or_default();
        AlertRaised {
            alert_id: alert_id(&[alert.kind.as_str(), &alert.reason, &position, now]),
            rule: alert.kind.as_str().to_owned(),
            severity: Severity::Critical,
            subject: None,
            count: 1,
            threshold: 1,
            window_secs: 0,
            first_at: now.to_owned(),
            last_at: now.to_owned(),
            matters: Vec::new(),
            source: AlertSource::Verifier,
            through: alert.position,
            summary: format!("verification failed ({})", alert.reason),
        }
    }
}

/// The id of the alert that `parts` (rule, subject, source, position...) identify.
pub fn alert_id(parts: &[&str]) -> String {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        hasher.update(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let hex = hasher.finalize().to_hex();
    format!("al_{}", &hex.as_str()[..32])
}

/// Appends `alert` to the `alerts` stream, as Docket itself, once: its id is the append's
/// idempotency key, so appending the same alert again changes nothing.
pub async fn append(log: &EventLog, alert: &AlertRaised) -> Result<u64, StoreError> {
    let encoding = |_| StoreError::Database {
        detail: "an alert could not be encoded".into(),
    };
    let payload = serde_json::to_value(alert).map_err(encoding)?;
    let stream = StreamId::parse(STREAM).map_err(|_| StoreError::Database {
        detail: "the alerts stream id is invalid".into(),
    })?;
    let mut request = AppendRequest::new(
        stream,
        Actor::system(),
        vec![EventDraft::new(ALERT_RAISED, payload)],
    );
    request.idempotency_key = Some(alert.alert_id.clone());
    let outcome = log
        .append(request)
        .await
        .map_err(|error| StoreError::Database {
            detail: format!("the alert was not appended: {error}"),
        })?;
    Ok(outcome.last_position)
}

/// The alerts of the log read back, oldest first, from stream version `from` on.
pub async fn read(log: &EventLog, from: u64) -> Result<Vec<(u64, AlertRaised)>, StoreError> {
    use futures::TryStreamExt;
    let events: Vec<_> = log.stream_from(STREAM, from).try_collect().await?;
    Ok(events
        .into_iter()
        .filter(|event| event.event_type == ALERT_RAISED)
        .filter_map(|event| {
            serde_json::from_str(&event.payload)
                .ok()
                .map(|alert| (event.position, alert))
        })
        .collect())
}

/// The verifier's sink in `serve`: logs and counts each integrity alert, and appends it to the
/// log as `alert.raised` from a task of its own (the verifier must not wait on an append).
pub struct LoggedAlertSink {
    pending: mpsc::Sender<Alert>,
}

impl LoggedAlertSink {
    /// A sink appending to `log`, with the task that does it.
    pub fn spawn(log: Arc<EventLog>) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let (pending, mut received) = mpsc::channel::<Alert>(PENDING_INTEGRITY_ALERTS);
        let task = tokio::spawn(async move {
            while let Some(alert) = received.recv().await {
                let now = crate::log::time::format_timestamp(chrono::Utc::now());
                let event = AlertRaised::integrity(&alert, &now);
                if let Err(error) = append(&log, &event).await {
                    tracing::error!(%error, rule = %event.rule, "an integrity alert could not be appended to the log");
                }
            }
        });
        (Arc::new(LoggedAlertSink { pending }), task)
    }
}

impl AlertSink for LoggedAlertSink {
    fn raise(&self, alert: &Alert) {
        LoggingAlertSink.raise(alert);
        if self.pending.try_send(alert.clone()).is_err() {
            tracing::error!(
                alert.kind = alert.kind.as_str(),
                "too many integrity alerts at once: this one is logged but not appended"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitoring::alerts::AlertKind;

    #[test]
    fn an_integrity_alert_names_its_check_and_position_only() {
        let alert = Alert {
            kind: AlertKind::LogIntegrity,
            position: Some(42),
            event_id: Some("e".into()),
            reason: "hash_mismatch".into(),
            detail: "whatever the check said".into(),
        };
        let raised = AlertRaised::integrity(&alert, "2026-12-04T03:00:00.000000Z");
        assert_eq!(raised.rule, "log_integrity");
        assert_eq!(raised.severity, Severity::Critical);
        assert_eq!(raised.through, Some(42));
        assert_eq!(raised.source, AlertSource::Verifier);
        assert!(!raised.summary.contains("whatever"));
        let text = serde_json::to_string(&raised).unwrap();
        let back: AlertRaised = serde_json::from_str(&text).unwrap();
        assert_eq!(back, raised);
        assert!(!text.contains("subject"), "absent members are left out");
    }
}
