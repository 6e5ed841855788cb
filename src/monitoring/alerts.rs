//! Integrity alerts: what the background verifier raises when the log, the access chain or a
//! checkpoint no longer holds.
//!
//! An [`AlertSink`] receives each alert. The one `serve` uses today, [`LoggingAlertSink`], logs
//! it at error level and counts it in `docket_alerts_total{kind}`; the anomaly-alert work will
//! add a sink that also appends an `alert.raised` event. An alert names what failed by kind,
//! position, event id and a stable reason code; it never carries payloads or client data.

use std::sync::Mutex;

/// What kind of integrity failure an alert reports. The names are stable (metrics label, logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// An event of the log fails verification (hash, chain link, signature, key, head).
    LogIntegrity,
    /// A record of the access chain fails verification.
    AccessChainIntegrity,
    /// The latest signed checkpoint does not match the log (root, signature or stored note),
    /// or the stored Merkle tree disagrees with it.
    CheckpointMismatch,
}

impl AlertKind {
    /// The stable name: `log_integrity`, `access_chain_integrity`, `checkpoint_mismatch`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::LogIntegrity => "log_integrity",
            AlertKind::AccessChainIntegrity => "access_chain_integrity",
            AlertKind::CheckpointMismatch => "checkpoint_mismatch",
        }
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub kind: AlertKind,
    /// The first failing position (for a checkpoint, its tree size), when known.
    pub position: Option<u64>,
    /// The failing event's id, when known.
    pub event_id: Option<String>,
    /// A stable reason code, e.g. `hash_mismatch`, `root_differs`.
    pub reason: String,
    /// What the check said, in Docket's own words (never an event's content).
    pub detail: String,
}

/// Where alerts go.
pub trait AlertSink: Send + Sync {
    /// Raises `alert`. It must not fail or block for long: the verifier calls it inline.
    fn raise(&self, alert: &Alert);
}

/// Logs each alert at error level and counts it.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoggingAlertSink;

impl AlertSink for LoggingAlertSink {
    fn raise(&self, alert: &Alert) {
        crate::metrics::global().alert(alert.kind.as_str());
        tracing::error!(
            alert.kind = alert.kind.as_str(),
            alert.position = alert.position,
            alert.event_id = alert.event_id.as_deref(),
            alert.reason = %alert.reason,
            alert.detail = %alert.detail,
            "integrity alert: verification failed"
        );
    }
}

/// Keeps every alert raised, for tests and for sinks that forward them later.
#[derive(Debug, Default)]
pub struct CollectingAlertSink {
    raised: Mutex<Vec<Alert>>,
}

impl CollectingAlertSink {
    /// Every alert raised so far, oldest first.
    pub fn raised(&self) -> Vec<Alert> {
        match self.raised.lock() {
            Ok(raised) => raised.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl AlertSink for CollectingAlertSink {
    fn raise(&self, alert: &Alert) {
        LoggingAlertSink.raise(alert);
        match self.raised.lock() {
            Ok(mut raised) => raised.push(alert.clone()),
            Err(poisoned) => poisoned.into_inner().push(alert.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_series() {
        for kind in [
            AlertKind::LogIntegrity,
            AlertKind::AccessChainIntegrity,
            AlertKind::CheckpointMismatch,
        ] {
            assert!(crate::metrics::ALERT_KINDS.contains(&kind.as_str()));
        }
    }
}
