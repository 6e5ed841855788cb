//! The process's metrics registry, in the Prometheus text format.
//!
//! One [`Metrics`] per process ([`global`]): counters, gauges and histograms that the code
//! moves as it works, each through one method named after what happened. Values that belong to
//! one log rather than to the process (the head, each projection's lag) are not kept here: the
//! `/metrics` handler (src/monitoring/endpoints.rs) reads them from its own server's log when
//! it is scraped ([`ScrapeGauges`]).
//!
//! The registry is process-wide (a `OnceLock`) rather than an `Arc` handed down: the places that
//! count (the log's append path, login, the access chain, the webhook sender) are opened by many
//! commands, tests and benchmarks through constructors that know nothing of serving, and
//! threading a handle through all of them would change every one of those signatures for a
//! counter. Counters only grow, so several logs in one process (tests) share them harmlessly.
//! This module depends on nothing else of Docket's, so every layer may count here without an
//! import circle.
//!
//! Invariant: every label value is one of a fixed set of code constants. No label ever carries
//! client data, a user id, a matter number, a token, a path or any other unbounded value, so
//! the number of series is fixed by the code, not by what clients send.

use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process's metrics.
pub fn global() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

/// The content type of what [`Metrics::encode`] writes (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Which of the process's two signed logs an append went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LogKind {
    /// The event log (case records, identity, system events).
    #[default]
    Events,
    /// The access chain (src/access/chain.rs).
    Access,
}

impl LogKind {
    fn as_str(self) -> &'static str {
        match self {
            LogKind::Events => "events",
            LogKind::Access => "access",
        }
    }
}

/// What an append request came to, for `docket_appends_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendResult {
    /// Committed, with this many events.
    Committed(u64),
    /// An idempotency key seen before: the first result was returned, nothing was written.
    Replayed,
    /// Refused by a rule (a version conflict, a reused key, an invalid request).
    Refused,
    /// The database failed, or the log is shutting down.
    Failed,
}

impl AppendResult {
    fn as_str(self) -> &'static str {
        match self {
            AppendResult::Committed(_) => "committed",
            AppendResult::Replayed => "replayed",
            AppendResult::Refused => "refused",
            AppendResult::Failed => "failed",
        }
    }
}

/// What a verification run found, for `docket_verifications_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationResult {
    /// Everything checked holds.
    Ok,
    /// Something checked does not hold (an alert was raised).
    Failed,
    /// The check could not run (the database did not answer); it runs again next time.
    Error,
}

impl VerificationResult {
    fn as_str(self) -> &'static str {
        match self {
            VerificationResult::Ok => "ok",
            VerificationResult::Failed => "failed",
            VerificationResult::Error => "error",
        }
    }
}

/// What one webhook attempt came to, for `docket_webhook_deliveries_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The endpoint accepted it.
    Delivered,
    /// The attempt failed and the delivery will be tried again.
    Retrying,
    /// The attempt failed and the delivery was given up (endpoint gone or retries exhausted).
    Failed,
}

impl DeliveryOutcome {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retrying => "retrying",
            DeliveryOutcome::Failed => "failed",
        }
    }
}

/// Login failure reasons that get their own series; anything else counts as `other`.
const LOGIN_FAILURE_REASONS: &[&str] = &[
    "bad_credentials",
    "bad_second_factor",
    "locked",
    "disabled",
    "not_enrolled",
    "throttled",
];

/// The background verifier's checks (`docket_verifications_total{check}`).
pub const CHECKS: [&str; 3] = ["log", "access_chain", "checkpoint"];
/// The kinds of alert (`docket_alerts_total{kind}`): the integrity checks, as
/// `monitoring::alerts::AlertKind` names them, and the anomaly rules, as
/// `monitoring::anomaly::Rule` names them.
pub const ALERT_KINDS: [&str; 10] = [
    "log_integrity",
    "access_chain_integrity",
    "checkpoint_mismatch",
    "many_matters",
    "off_hours",
    "failed_logins",
    "walled_attempts",
    "break_glass",
    "bulk_exports",
    "api_client_errors",
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AppendLabels {
    log: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LogLabels {
    log: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CheckLabels {
    check: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latencies from 0.5 ms to about 16 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Subscription lags from 5 ms to about 80 s.
fn lag_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Every metric the process keeps, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    appends: Family<AppendLabels, Counter>,
    appended_events: Family<LogLabels, Counter>,
    append_duration: HistogramFamily<LogLabels>,
    subscriptions_active: Gauge,
    subscription_lag: Histogram,
    feed_held: Gauge,
    webhook_deliveries: Family<OutcomeLabels, Counter>,
    verifications: Family<CheckLabels, Counter>,
    alerts: Family<KindLabels, Counter>,
    login_failures: Family<ReasonLabels, Counter>,
    access_denials: Counter,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<MethodLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let appends = Family::<AppendLabels, Counter>::default();
        registry.register(
            "docket_appends",
            "Append requests answered, by log and result (committed, replayed, refused, failed)",
            appends.clone(),
        );
        let appended_events = Family::<LogLabels, Counter>::default();
        registry.register(
            "docket_appended_events",
            "Events committed, by log",
            appended_events.clone(),
        );
        let append_duration = HistogramFamily::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "docket_append_duration_seconds",
            "Time from an append request's submission to its durable answer (group commit \
             included), by log",
            append_duration.clone(),
        );
        let subscriptions_active = Gauge::default();
        registry.register(
            "docket_subscriptions_active",
            "GraphQL subscriptions to the log open now",
            subscriptions_active.clone(),
        );
        let subscription_lag = lag_histogram();
        registry.register(
            "docket_subscription_lag_seconds",
            "Time from an event's recording to its delivery to a subscriber",
            subscription_lag.clone(),
        );
        let feed_held = Gauge::default();
        registry.register(
            "docket_feed_held_events",
            "Live events the feed holds for followers that have not read them yet (bounded by \
             the feed's buffer)",
            feed_held.clone(),
        );
        let webhook_deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "docket_webhook_deliveries",
            "Webhook delivery attempts, by outcome (delivered, retrying, failed)",
            webhook_deliveries.clone(),
        );
        let verifications = Family::<CheckLabels, Counter>::default();
        registry.register(
            "docket_verifications",
            "Background verification runs, by check (log, access_chain, checkpoint) and result \
             (ok, failed, error)",
            verifications.clone(),
        );
        let alerts = Family::<KindLabels, Counter>::default();
        registry.register("docket_alerts", "Alerts raised, by kind", alerts.clone());
        let login_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "docket_login_failures",
            "Failed logins, by reason",
            login_failures.clone(),
        );
        let access_denials = Counter::default();
        registry.register(
            "docket_access_denials",
            "Access decisions that denied, as recorded in the access chain",
            access_denials.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "docket_http_requests",
            "HTTP requests answered, by method and status class",
            http_requests.clone(),
        );
        let http_duration = HistogramFamily::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "docket_http_request_duration_seconds",
            "Time to answer an HTTP request, by method",
            http_duration.clone(),
        );
        let metrics = Metrics {
            registry,
            appends,
            appended_events,
            append_duration,
            subscriptions_active,
            subscription_lag,
            feed_held,
            webhook_deliveries,
            verifications,
            alerts,
            login_failures,
            access_denials,
            http_requests,
            http_duration,
        };
        metrics.start_at_zero();
        metrics
    }

    /// Creates the series every deployment has at zero, so that they are listed (and a rate can
    /// be taken) before the first time they move.
    fn start_at_zero(&self) {
        for log in [LogKind::Events, LogKind::Access].map(LogKind::as_str) {
            for result in [
                AppendResult::Committed(0),
                AppendResult::Replayed,
                AppendResult::Refused,
                AppendResult::Failed,
            ] {
                let result = result.as_str();
                drop(self.appends.get_or_create(&AppendLabels { log, result }));
            }
            drop(self.appended_events.get_or_create(&LogLabels { log }));
            drop(self.append_duration.get_or_create(&LogLabels { log }));
        }
        for outcome in [
            DeliveryOutcome::Delivered,
            DeliveryOutcome::Retrying,
            DeliveryOutcome::Failed,
        ] {
            let labels = OutcomeLabels {
                outcome: outcome.as_str(),
            };
            drop(self.webhook_deliveries.get_or_create(&labels));
        }
        for check in CHECKS {
            for result in [
                VerificationResult::Ok,
                VerificationResult::Failed,
                VerificationResult::Error,
            ] {
                let result = result.as_str();
                drop(
                    self.verifications
                        .get_or_create(&CheckLabels { check, result }),
                );
            }
        }
        for kind in ALERT_KINDS {
            drop(self.alerts.get_or_create(&KindLabels { kind }));
        }
        for reason in LOGIN_FAILURE_REASONS.iter().chain(&["other"]).copied() {
            drop(self.login_failures.get_or_create(&ReasonLabels { reason }));
        }
        for method in ["GET", "POST"] {
            for status in ["2xx", "4xx", "5xx"] {
                drop(
                    self.http_requests
                        .get_or_create(&HttpLabels { method, status }),
                );
            }
            drop(self.http_duration.get_or_create(&MethodLabels { method }));
        }
    }

    /// An append request to `log` came to `result` after `elapsed`.
    pub fn appended(&self, log: LogKind, elapsed: Duration, result: AppendResult) {
        if let AppendResult::Committed(count) = result {
            let labels = LogLabels { log: log.as_str() };
            self.appended_events.get_or_create(&labels).inc_by(count);
        }
        let labels = AppendLabels {
            log: log.as_str(),
            result: result.as_str(),
        };
        self.appends.get_or_create(&labels).inc();
        let labels = LogLabels { log: log.as_str() };
        self.append_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// A GraphQL subscription to the log has started.
    pub fn subscription_started(&self) {
        self.subscriptions_active.inc();
    }

    /// A GraphQL subscription to the log has ended (however it ended).
    pub fn subscription_ended(&self) {
        self.subscriptions_active.dec();
    }

    /// The feed holds `events` live events that some follower has not read yet.
    pub fn feed_held(&self, events: usize) {
        self.feed_held
            .set(i64::try_from(events).unwrap_or(i64::MAX));
    }

    /// An event was delivered to a subscriber `lag` after it was recorded.
    pub fn delivered(&self, lag: Duration) {
        self.subscription_lag.observe(lag.as_secs_f64());
    }

    /// An event recorded at `recorded_at` (the envelope's RFC 3339 time) was delivered to a
    /// subscriber now. A time that does not parse is not counted; one in the future counts 0.
    pub fn delivered_recorded_at(&self, recorded_at: &str) {
        if let Ok(recorded) = chrono::DateTime::parse_from_rfc3339(recorded_at) {
            let lag = chrono::Utc::now().signed_duration_since(recorded);
            self.delivered(lag.to_std().unwrap_or(Duration::ZERO));
        }
    }

    /// Counts a subscription as active until the guard is dropped (however the subscription's
    /// stream ends): [`Metrics::subscription_started`] now, [`Metrics::subscription_ended`] on
    /// drop.
    pub fn subscription_guard(&'static self) -> SubscriptionGuard {
        self.subscription_started();
        SubscriptionGuard { metrics: self }
    }

    /// A webhook attempt came to `outcome`.
    pub fn webhook_attempt(&self, outcome: DeliveryOutcome) {
        let labels = OutcomeLabels {
            outcome: outcome.as_str(),
        };
        self.webhook_deliveries.get_or_create(&labels).inc();
    }

    /// A background check (`log`, `access_chain`, `checkpoint`) ran and came to `result`.
    pub fn verification(&self, check: &'static str, result: VerificationResult) {
        let labels = CheckLabels {
            check,
            result: result.as_str(),
        };
        self.verifications.get_or_create(&labels).inc();
    }

    /// An alert of `kind` was raised.
    pub fn alert(&self, kind: &'static str) {
        self.alerts.get_or_create(&KindLabels { kind }).inc();
    }

    /// A login failed for `reason` (one of the login's reason codes).
    pub fn login_failed(&self, reason: &str) {
        let reason = LOGIN_FAILURE_REASONS
            .iter()
            .find(|known| **known == reason)
            .copied()
            .unwrap_or("other");
        self.login_failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// `count` denying decisions are being recorded.
    pub fn access_denied(&self, count: u64) {
        if count > 0 {
            self.access_denials.inc_by(count);
        }
    }

    /// An HTTP request with `method` was answered with `status` after `elapsed`.
    pub fn http_request(&self, method: &str, status: u16, elapsed: Duration) {
        let method = method_label(method);
        let labels = HttpLabels {
            method,
            status: status_class(status),
        };
        self.http_requests.get_or_create(&labels).inc();
        self.http_duration
            .get_or_create(&MethodLabels { method })
            .observe(elapsed.as_secs_f64());
    }

    /// Writes every metric in the Prometheus text format.
    pub fn encode(&self, out: &mut String) -> std::fmt::Result {
        prometheus_client::encoding::prometheus_text::encode(out, &self.registry)
    }
}

/// One active subscription, counted in `docket_subscriptions_active` while it lives.
#[derive(Debug)]
pub struct SubscriptionGuard {
    metrics: &'static Metrics,
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        self.metrics.subscription_ended();
    }
}

/// The method as a label: the common ones by name, anything else as `other`.
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"];
    KNOWN
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("other")
}

/// `2xx`, `4xx`, ...: the class, never the code, keeps the series few.
fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "other",
    }
}

/// What one server's log looks like at the moment it is scraped.
#[derive(Debug, Default)]
pub struct ScrapeGauges {
    /// The log's recorded head position.
    pub head_position: Option<u64>,
    /// Each projection's name, lag (head minus its position) and whether it is healthy.
    pub projections: Vec<(&'static str, u64, bool)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ProjectionLabels {
    projection: &'static str,
}

impl ScrapeGauges {
    /// Writes these gauges in the Prometheus text format (after [`Metrics::encode`]).
    pub fn encode(&self, out: &mut String) -> std::fmt::Result {
        let mut registry = Registry::default();
        if let Some(head) = self.head_position {
            let gauge = Gauge::<u64, AtomicU64>::default();
            gauge.set(head);
            registry.register(
                "docket_log_head_position",
                "The event log's recorded head position",
                gauge,
            );
        }
        let lag = Family::<ProjectionLabels, Gauge<u64, AtomicU64>>::default();
        let healthy = Family::<ProjectionLabels, Gauge>::default();
        for (projection, events, ok) in &self.projections {
            let labels = ProjectionLabels { projection };
            lag.get_or_create(&labels).set(*events);
            healthy.get_or_create(&labels).set(i64::from(*ok));
        }
        registry.register(
            "docket_projection_lag_events",
            "Events between the log's head and each projection's position",
            lag,
        );
        registry.register(
            "docket_projection_healthy",
            "1 while a projection applies events, 0 once it has stopped on one",
            healthy,
        );
        prometheus_client::encoding::prometheus_text::encode(out, &registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(metrics: &Metrics) -> String {
        let mut out = String::new();
        metrics.encode(&mut out).unwrap();
        out
    }

    #[test]
    fn counters_carry_only_fixed_labels() {
        let metrics = Metrics::new();
        metrics.login_failed("bad_credentials");
        metrics.login_failed("something a client made up");
        metrics.http_request("GET", 404, Duration::from_millis(3));
        metrics.http_request("BREW", 200, Duration::from_millis(3));
        let out = encoded(&metrics);
        assert!(out.contains("docket_login_failures_total{reason=\"bad_credentials\"} 1"));
        assert!(out.contains("docket_login_failures_total{reason=\"other\"} 1"));
        assert!(!out.contains("made up"));
        assert!(out.contains("docket_http_requests_total{method=\"GET\",status=\"4xx\"} 1"));
        assert!(out.contains("docket_http_requests_total{method=\"other\",status=\"2xx\"} 1"));
        assert!(out.contains("# TYPE docket_http_request_duration_seconds histogram"));
    }

    #[test]
    fn appends_count_requests_and_events() {
        let metrics = Metrics::new();
        let elapsed = Duration::from_millis(2);
        metrics.appended(LogKind::Events, elapsed, AppendResult::Committed(3));
        metrics.appended(LogKind::Access, elapsed, AppendResult::Replayed);
        metrics.appended(LogKind::Events, elapsed, AppendResult::Refused);
        let out = encoded(&metrics);
        assert!(out.contains("docket_appends_total{log=\"events\",result=\"committed\"} 1"));
        assert!(out.contains("docket_appends_total{log=\"access\",result=\"replayed\"} 1"));
        assert!(out.contains("docket_appends_total{log=\"events\",result=\"refused\"} 1"));
        assert!(out.contains("docket_appends_total{log=\"events\",result=\"failed\"} 0"));
        assert!(out.contains("docket_appended_events_total{log=\"events\"} 3"));
        assert!(out.contains("docket_append_duration_seconds_count{log=\"events\"} 2"));
    }

    #[test]
    fn the_feed_reports_what_it_holds() {
        let metrics = Metrics::new();
        assert!(encoded(&metrics).contains("docket_feed_held_events 0"));
        metrics.feed_held(8192);
        assert!(encoded(&metrics).contains("docket_feed_held_events 8192"));
        metrics.feed_held(3);
        assert!(encoded(&metrics).contains("docket_feed_held_events 3"));
    }

    #[test]
    fn subscriptions_count_while_their_guard_lives_and_lag_is_observed() {
        let metrics: &'static Metrics = Box::leak(Box::new(Metrics::new()));
        let guard = metrics.subscription_guard();
        let second = metrics.subscription_guard();
        assert!(encoded(metrics).contains("docket_subscriptions_active 2"));
        drop(guard);
        assert!(encoded(metrics).contains("docket_subscriptions_active 1"));
        drop(second);
        assert!(encoded(metrics).contains("docket_subscriptions_active 0"));
        let recorded = (chrono::Utc::now() - chrono::Duration::milliseconds(300)).to_rfc3339();
        metrics.delivered_recorded_at(&recorded);
        metrics.delivered_recorded_at("not a time");
        let out = encoded(metrics);
        assert!(
            out.contains("docket_subscription_lag_seconds_count 1"),
            "{out}"
        );
        let sum: f64 = out
            .lines()
            .find_map(|line| line.strip_prefix("docket_subscription_lag_seconds_sum "))
            .and_then(|value| value.parse().ok())
            .unwrap();
        assert!((0.3..5.0).contains(&sum), "{sum}");
    }

    #[test]
    fn scrape_gauges_name_each_projection() {
        let gauges = ScrapeGauges {
            head_position: Some(42),
            projections: vec![("matters", 2, true), ("notes", 40, false)],
        };
        let mut out = String::new();
        gauges.encode(&mut out).unwrap();
        assert!(out.contains("docket_log_head_position 42"));
        assert!(out.contains("docket_projection_lag_events{projection=\"notes\"} 40"));
        assert!(out.contains("docket_projection_healthy{projection=\"notes\"} 0"));
    }
}
