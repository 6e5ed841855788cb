//! Monitoring `docket serve`: Prometheus metrics, liveness and readiness, structured logs with
//! request ids, and the background verifier that re-checks the log while Docket serves.
//!
//! - [`endpoints`] serves `GET /metrics` (loopback only unless a bearer token is configured),
//!   `GET /livez` and `GET /readyz`.
//! - [`request_id`] decides a request's id: the caller's `X-Request-Id` when it is a short,
//!   plain token, a fresh UUIDv7 otherwise.
//! - [`logging`] sets up text or JSON log lines on standard error.
//! - [`alerts`] is where integrity alerts go ([`alerts::AlertSink`]).
//! - [`verifier`] re-checks new events of both chains and the latest checkpoint on a schedule.
//! - [`anomaly`] watches the access chain and the log for misuse.
//! - [`alert_log`] appends every alert, of either kind, to the log's `alerts` stream.
//!
//! The metrics registry itself is [`crate::metrics`], a leaf module every layer counts in.

pub mod alert_log;
pub mod alerts;
pub mod anomaly;
pub mod endpoints;
pub mod logging;
pub mod request_id;
pub mod verifier;

use std::time::Duration;

use thiserror::Error;
use zeroize::Zeroizing;

/// How often the background verifier runs by default, in seconds.
pub const DEFAULT_VERIFY_INTERVAL_SECS: u64 = 60;
/// The most events a projection may be behind the head while Docket still reports ready.
pub const DEFAULT_READY_MAX_LAG_EVENTS: u64 = 10_000;
/// The longest verification interval accepted, in seconds (a week): a longer one is a typo, and
/// checking less often than that is no monitoring.
pub const MAX_VERIFY_INTERVAL_SECS: u64 = 7 * 24 * 60 * 60;
/// The shortest metrics token accepted: anything shorter could be guessed.
pub const MIN_METRICS_TOKEN_CHARS: usize = 16;
/// The longest metrics token accepted.
pub const MAX_METRICS_TOKEN_CHARS: usize = 256;

/// Why a monitoring setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MonitoringConfigError {
    /// The metrics token is too short, too long, or not printable ASCII without spaces. The
    /// token itself is never part of the message.
    #[error(
        "metrics_token must be {MIN_METRICS_TOKEN_CHARS} to {MAX_METRICS_TOKEN_CHARS} printable \
         ASCII characters without spaces"
    )]
    MetricsToken,
    /// The verification interval is longer than [`MAX_VERIFY_INTERVAL_SECS`].
    #[error(
        "verify_interval_secs is {0}; it must be between 0 (off) and {MAX_VERIFY_INTERVAL_SECS}"
    )]
    VerifyInterval(u64),
}

/// The bearer token `/metrics` requires when set. Never printed, and compared in constant time.
#[derive(Clone)]
pub struct MetricsToken(Zeroizing<String>);

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}

impl MetricsToken {
    /// Accepts `text` as a token if it is long enough and plain.
    pub fn new(text: &str) -> Result<Self, MonitoringConfigError> {
        let plain = text.bytes().all(|byte| byte.is_ascii_graphic());
        let length = text.len();
        if !plain || !(MIN_METRICS_TOKEN_CHARS..=MAX_METRICS_TOKEN_CHARS).contains(&length) {
            return Err(MonitoringConfigError::MetricsToken);
        }
        Ok(MetricsToken(Zeroizing::new(text.to_owned())))
    }

    /// Whether `presented` is this token. Both sides are hashed first, so the comparison takes
    /// the same time whatever their lengths and wherever they first differ.
    pub fn matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        let expected = blake3::hash(self.0.as_bytes());
        let presented = blake3::hash(presented.as_bytes());
        expected.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

/// What `serve` needs to monitor itself.
#[derive(Debug, Clone)]
pub struct MonitoringSettings {
    /// `/metrics` requires this bearer token from every client when set; without it only
    /// loopback clients that came through no proxy may read it.
    pub metrics_token: Option<MetricsToken>,
    /// How often the background verifier runs (zero: never).
    pub verify_interval: Duration,
    /// The most events a healthy projection may be behind the head for `/readyz` to say ready.
    pub ready_max_lag_events: u64,
}

impl Default for MonitoringSettings {
    fn default() -> Self {
        MonitoringSettings {
            metrics_token: None,
            verify_interval: Duration::from_secs(DEFAULT_VERIFY_INTERVAL_SECS),
            ready_max_lag_events: DEFAULT_READY_MAX_LAG_EVENTS,
        }
    }
}

impl MonitoringSettings {
    /// Resolves the settings from what flags, environment and file gave.
    pub fn resolve(
        metrics_token: Option<String>,
        verify_interval_secs: Option<u64>,
    ) -> Result<Self, MonitoringConfigError> {
        let metrics_token = metrics_token
            .filter(|token| !token.is_empty())
            .map(|token| MetricsToken::new(&token))
            .transpose()?;
        let verify_interval_secs = verify_interval_secs.unwrap_or(DEFAULT_VERIFY_INTERVAL_SECS);
        if verify_interval_secs > MAX_VERIFY_INTERVAL_SECS {
            return Err(MonitoringConfigError::VerifyInterval(verify_interval_secs));
        }
        Ok(MonitoringSettings {
            metrics_token,
            verify_interval: Duration::from_secs(verify_interval_secs),
            ..MonitoringSettings::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_be_long_and_plain_and_never_show() {
        assert!(MetricsToken::new("short").is_err());
        assert!(MetricsToken::new("sixteen chars   ").is_err());
        assert!(MetricsToken::new(&"x".repeat(MAX_METRICS_TOKEN_CHARS + 1)).is_err());
        let token = MetricsToken::new("a-long-enough-token-1234").unwrap();
        assert!(token.matches("a-long-enough-token-1234"));
        assert!(!token.matches("a-long-enough-token-1235"));
        assert!(!token.matches(""));
        assert!(!format!("{token:?}").contains("enough"));
    }

    #[test]
    fn an_empty_token_means_none_and_zero_turns_the_verifier_off() {
        let settings = MonitoringSettings::resolve(Some(String::new()), Some(0)).unwrap();
        assert!(settings.metrics_token.is_none());
        assert!(settings.verify_interval.is_zero());
        let error = MonitoringSettings::resolve(Some("tiny".into()), None).unwrap_err();
        assert!(!error.to_string().contains("tiny"));
        let week = MonitoringSettings::resolve(None, Some(MAX_VERIFY_INTERVAL_SECS)).unwrap();
        assert_eq!(week.verify_interval.as_secs(), MAX_VERIFY_INTERVAL_SECS);
        let error = MonitoringSettings::resolve(None, Some(u64::MAX)).unwrap_err();
        assert_eq!(error, MonitoringConfigError::VerifyInterval(u64::MAX));
    }
}
