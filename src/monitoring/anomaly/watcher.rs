//! The watcher: the task inside `serve` that reads the access chain and the log as they grow,
//! shows each observation to the [`Detector`], and appends the alerts it raises.
//!
//! One process watches at a time (a [`LeaderLock`] named `anomaly-watcher`); when it stops,
//! another takes over. A watcher that starts reads the `alerts` stream first: it carries on
//! after the last observation an alert was raised for, and keeps every rule quiet where an
//! alert raised before it started still holds it quiet. It also goes back one window (the
//! longest of the rules that are on) so the windows are full again; it never goes back before
//! an alert already raised from the same source, so nothing is raised twice. What happened
//! while no process was watching, further back than that window, is not examined.

use std::sync::Arc;
use std::time::Duration;

use super::AnomalySettings;
use super::rules::{Detector, Rule};
use super::signals;
use crate::access::chain::AccessChain;
use crate::access::record::{self, AccessRecord};
use crate::log::time::format_timestamp;
use crate::monitoring::alert_log::{self, AlertRaised, AlertSource};
use crate::store::leadership::LeaderLock;
use crate::store::{EventLog, LogOptions, LogStore, StoreError};

/// Events read from a source at a time.
const PAGE: u32 = 500;
/// How often the sources are read when nothing in this process woke the watcher (appends by
/// other processes).
const POLL: Duration = Duration::from_secs(1);
/// How long the watcher waits after a failure before it starts over.
const RETRY: Duration = Duration::from_secs(5);

/// The watcher over one log and its access chain.
pub struct Watcher {
    log: Arc<EventLog>,
    access: Arc<AccessChain>,
    lock: LeaderLock,
    settings: AnomalySettings,
}

/// Where the watcher is in each source: the next position to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub access: u64,
    pub log: u64,
}

impl Watcher {
    pub fn new(
        log: Arc<EventLog>,
        access: Arc<AccessChain>,
        options: &LogOptions,
        settings: AnomalySettings,
    ) -> Self {
        Watcher {
            log,
            access,
            lock: LeaderLock::for_log(options, "anomaly-watcher"),
            settings,
        }
    }

    /// Starts watching in the background, unless the settings turn detection off.
    pub fn spawn(self) -> Option<tokio::task::JoinHandle<()>> {
        if !self.settings.enabled {
            tracing::info!("anomaly detection is off");
            return None;
        }
        Some(tokio::spawn(self.run()))
    }

    /// Watches for as long as it runs: takes the lock, watches while it holds it, and starts
    /// over after a failure or when the lock is lost.
    async fn run(self) {
        loop {
            let mut leadership = match self.lock.acquire().await {
                Ok(leadership) => leadership,
                Err(error) => {
                    tracing::warn!(%error, "the anomaly watcher cannot take its lock");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            tokio::select! {
                result = self.watch() => {
                    if let Err(error) = result {
                        tracing::warn!(%error, "the anomaly watcher stopped; starting over");
                    }
                }
                () = leadership.lost() => {
                    tracing::warn!("the anomaly watcher lost its lock; waiting to take it again");
                }
            }
            drop(leadership);
            tokio::time::sleep(RETRY).await;
        }
    }

    /// Watches until a source cannot be read or an alert cannot be appended.
    async fn watch(&self) -> Result<(), StoreError> {
        let mut detector = Detector::new(self.settings.thresholds.clone());
        let mut cursor = self.resume(&mut detector).await?;
        tracing::info!(
            access_from = cursor.access,
            log_from = cursor.log,
            "watching the access chain and the log for anomalies"
        );
        let mut access_committed = self.access.log().committed();
        let mut log_committed = self.log.committed();
        loop {
            let caught_up = self.step(&mut detector, &mut cursor).await?;
            if caught_up {
                tokio::select! {
                    _ = access_committed.changed() => {}
                    _ = log_committed.changed() => {}
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        }
    }

    /// Reads one page of each source, raising what it trips. `true` when both are read to
    /// their end.
    pub async fn step(
        &self,
        detector: &mut Detector,
        cursor: &mut Cursor,
    ) -> Result<bool, StoreError> {
        let hours = detector.thresholds().working_hours;
        let page = self
            .access
            .log()
            .store()
            .read_page(cursor.access, PAGE)
            .await?;
        let access_done = page.len() < PAGE as usize;
        for event in page {
            cursor.access = event.position + 1;
            if event.event_type != record::EVENT_TYPE {
                continue;
            }
            let (Some(at_ms), Ok(record)) = (
                signals::recorded_ms(&event),
                serde_json::from_str::<AccessRecord>(&event.payload),
            ) else {
                tracing::warn!(
                    position = event.position,
                    "an access record could not be read for anomaly detection"
                );
                continue;
            };
            for seen in signals::of_access_record(&record, at_ms, event.position, hours.as_ref()) {
                self.raise(detector.observe(seen, time_of)).await?;
            }
        }
        let page = self.log.store().read_page(cursor.log, PAGE).await?;
        let log_done = page.len() < PAGE as usize;
        for event in page {
            cursor.log = event.position + 1;
            let Some(at_ms) = signals::recorded_ms(&event) else {
                continue;
            };
            for seen in signals::of_log_event(&event, at_ms) {
                self.raise(detector.observe(seen, time_of)).await?;
            }
        }
        Ok(access_done && log_done)
    }

    async fn raise(&self, alert: Option<AlertRaised>) -> Result<(), StoreError> {
        let Some(alert) = alert else {
            return Ok(());
        };
        alert_log::append(&self.log, &alert).await?;
        if let Some(rule) = Rule::parse(&alert.rule) {
            crate::metrics::global().alert(rule.as_str());
        }
        tracing::warn!(
            alert.rule = %alert.rule,
            alert.severity = alert.severity.as_str(),
            alert.subject = alert.subject.as_deref(),
            alert.count = alert.count,
            alert.id = %alert.alert_id,
            "anomaly alert raised"
        );
        Ok(())
    }

    /// Where to start, and the quiet periods of the alerts raised before: see the module.
    pub async fn resume(&self, detector: &mut Detector) -> Result<Cursor, StoreError> {
        let thresholds = detector.thresholds().clone();
        let longest = Rule::ALL
            .into_iter()
            .filter(|rule| thresholds.is_on(*rule))
            .map(|rule| thresholds.of(rule).window_secs)
            .max()
            .unwrap_or(0);
        let now_ms = chrono::Utc::now().timestamp_millis();
        let since_ms = now_ms.saturating_sub(i64::try_from(longest * 1000).unwrap_or(i64::MAX));
        let mut cursor = Cursor {
            access: first_since(self.access.log().store().as_ref(), since_ms).await?,
            log: first_since(self.log.store().as_ref(), since_ms).await?,
        };
        for (_, alert) in alert_log::read(&self.log, 1).await? {
            let (Some(rule), Some(subject)) = (Rule::parse(&alert.rule), &alert.subject) else {
                continue;
            };
            if let Some(through) = alert.through {
                match alert.source {
                    AlertSource::AccessChain => cursor.access = cursor.access.max(through + 1),
                    AlertSource::Log => cursor.log = cursor.log.max(through + 1),
                    AlertSource::Verifier => {}
                }
            }
            if let Ok(last) = chrono::DateTime::parse_from_rfc3339(&alert.last_at) {
                let window = i64::try_from(alert.window_secs.saturating_mul(1000)).unwrap_or(0);
                detector.quiet(
                    rule,
                    subject,
                    last.timestamp_millis().saturating_add(window),
                );
            }
        }
        Ok(cursor)
    }
}

/// Unix milliseconds as the log writes times.
fn time_of(at_ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(at_ms)
        .map(format_timestamp)
        .unwrap_or_default()
}

/// The first position of `store` recorded at or after `since_ms` (one past the head when none
/// is), found by bisection: recording times follow positions.
async fn first_since(store: &dyn LogStore, since_ms: i64) -> Result<u64, StoreError> {
    let head = store.head().await?.position;
    let (mut low, mut high) = (1, head + 1);
    while low < high {
        let middle = low + (high - low) / 2;
        let recorded = store
            .read_page(middle, 1)
            .await?
            .first()
            .and_then(signals::recorded_ms);
        match recorded {
            Some(at) if at >= since_ms => high = middle,
            _ => low = middle + 1,
        }
    }
    Ok(low)
}
