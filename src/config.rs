//! Configuration: command-line flags, then `DOCKET_*` environment variables, then a TOML file,
//! then defaults, in that order of precedence.
//!
//! The file is `--config FILE` (or `DOCKET_CONFIG`); without one, `docket.toml` in the data
//! directory is read when it exists. Unknown keys in the file are an error, so a typo never
//! silently falls back to a default.
//!
//! Transport: outside development mode, `serve` on an address that is not loopback must have
//! TLS (`tls_cert` and `tls_key`) or an explicit `allow_plain_http` (a TLS-terminating proxy in
//! front); [`Settings::check_transport`] enforces that before anything is opened.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::integrations::nats::{NatsConfigError, NatsSettings};
use crate::integrations::webhooks::{WebhookConfigError, WebhookSettings};
use crate::log::limits::DEFAULT_MAX_PAYLOAD_BYTES;
use crate::monitoring::logging::{LogFormat, UnknownLogFormat};
use crate::monitoring::{MonitoringConfigError, MonitoringSettings};
use crate::store::event_log::LogOptions;
use crate::transparency::checkpoints::CheckpointPolicy;

pub const DEFAULT_DATA_DIR: &str = "./docket-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_MAX_BATCH_EVENTS: usize = 4096;
/// How long a mutation waits for the read models to apply its events, by default.
pub const DEFAULT_READ_YOUR_WRITES_MS: u64 = 5000;
/// The longest read-your-writes wait accepted: a request should not hang for minutes.
pub const MAX_READ_YOUR_WRITES_MS: u64 = 60_000;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("config file {path} is invalid: {reason}")]
    Invalid { path: String, reason: String },
    #[error("{0} is not a valid listen address (expected host:port)")]
    Listen(String),
    #[error("database URL must start with postgres:// or postgresql://")]
    DatabaseUrl,
    #[error("{0}")]
    CheckpointOrigin(crate::log::checkpoint::CheckpointError),
    #[error("checkpoint_every_events and checkpoint_interval_secs must be at least 1")]
    CheckpointPolicy,
    #[error(
        "read_your_writes_ms is {0}; it must be between 0 and {MAX_READ_YOUR_WRITES_MS} \
         (milliseconds)"
    )]
    ReadYourWrites(u64),
    #[error("{0}")]
    LogFormat(UnknownLogFormat),
    #[error("{0}")]
    Monitoring(MonitoringConfigError),
    #[error("{0}")]
    Nats(NatsConfigError),
    #[error("{0}")]
    Webhooks(WebhookConfigError),
    #[error("{0}")]
    Anomaly(crate::monitoring::anomaly::AnomalyConfigError),
    #[error(
        "tls_cert and tls_key (--tls-cert, --tls-key) go together: {0} is set without the other"
    )]
    TlsPair(&'static str),
    #[error(
        "refusing to serve plain HTTP on {0}, which is not a loopback address: outside \
         development mode, set tls_cert and tls_key (--tls-cert, --tls-key), or \
         allow_plain_http (--allow-plain-http) when a TLS-terminating proxy is in front"
    )]
    PlainHttpRefused(SocketAddr),
}

/// The TOML file's keys; every one optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub max_payload_bytes: Option<usize>,
    pub max_batch_events: Option<usize>,
    pub log: Option<String>,
    pub log_format: Option<String>,
    pub development: Option<bool>,
    pub persisted_queries_only: Option<bool>,
    pub read_your_writes_ms: Option<u64>,
    pub checkpoint_origin: Option<String>,
    pub checkpoint_every_events: Option<u64>,
    pub checkpoint_interval_secs: Option<u64>,
    pub retention_interval_secs: Option<u64>,
    pub metrics_token: Option<String>,
    pub verify_interval_secs: Option<u64>,
    pub backup_to: Option<String>,
    pub backup_interval_secs: Option<u64>,
    pub backup_keep: Option<usize>,
    pub nats_url: Option<String>,
    pub nats_stream: Option<String>,
    pub nats_subject_prefix: Option<String>,
    pub webhook_allow_http: Option<bool>,
    pub webhook_allowed_cidrs: Option<Vec<String>>,
    pub webhook_backoff_ms: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub allow_plain_http: Option<bool>,
    /// The `[anomaly]` table: thresholds and working hours of the anomaly rules.
    pub anomaly: Option<crate::monitoring::anomaly::AnomalyConfig>,
}

/// What flags and environment variables gave (clap merges those two).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub max_payload_bytes: Option<usize>,
    pub max_batch_events: Option<usize>,
    pub log: Option<String>,
    pub log_format: Option<String>,
    pub development: Option<bool>,
    pub persisted_queries_only: Option<bool>,
    pub read_your_writes_ms: Option<u64>,
    pub checkpoint_origin: Option<String>,
    pub checkpoint_every_events: Option<u64>,
    pub checkpoint_interval_secs: Option<u64>,
    pub retention_interval_secs: Option<u64>,
    pub metrics_token: Option<String>,
    pub verify_interval_secs: Option<u64>,
    pub backup_to: Option<String>,
    pub backup_interval_secs: Option<u64>,
    pub backup_keep: Option<usize>,
    pub nats_url: Option<String>,
    pub nats_stream: Option<String>,
    pub nats_subject_prefix: Option<String>,
    pub webhook_allow_http: Option<bool>,
    pub webhook_allowed_cidrs: Option<Vec<String>>,
    pub webhook_backoff_ms: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub allow_plain_http: Option<bool>,
}

/// How often `serve` runs the retention policies, by default: daily.
pub const DEFAULT_RETENTION_INTERVAL_SECS: u64 = 24 * 60 * 60;

/// The resolved configuration.
#[derive(Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub listen: SocketAddr,
    pub max_payload_bytes: usize,
    pub max_batch_events: usize,
    pub log: String,
    /// Text or JSON log lines.
    pub log_format: LogFormat,
    /// Development mode: `serve` also serves GraphiQL at /graphiql.
    pub development: bool,
    /// Run only registered (persisted) GraphQL documents.
    pub persisted_queries_only: bool,
    /// How long a mutation waits for the read models to apply its events (0 to 60,000 ms).
    pub read_your_writes_ms: u64,
    /// The checkpoints' origin line; `None` for `docket.log/<log id>`.
    pub checkpoint_origin: Option<String>,
    /// When `serve` signs checkpoints.
    pub checkpoints: CheckpointPolicy,
    /// How often `serve` runs the retention policies (0: never).
    pub retention_interval: Duration,
    /// `/metrics` access and the background verifier's schedule.
    pub monitoring: MonitoringSettings,
    /// Scheduled backups inside `serve`; `None` (off) without a target and an interval.
    pub backup: Option<crate::backup::schedule::BackupSchedule>,
    /// Publishing the log to NATS JetStream; `None` (off) without `nats_url`.
    pub nats: Option<NatsSettings>,
    /// Where webhooks may go beyond public HTTPS endpoints, and their retry schedule.
    pub webhooks: WebhookSettings,
    /// The anomaly rules `serve` watches for (file only: the `[anomaly]` table).
    pub anomaly: crate::monitoring::anomaly::AnomalySettings,
    /// The certificate chain and key `serve` serves HTTPS and WSS with; `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Serve plain HTTP on a non-loopback address outside development mode (a TLS-terminating
    /// proxy in front).
    pub allow_plain_http: bool,
}

/// Where the TLS certificate chain and its private key are read from (PEM files, read again on
/// every reload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The leaf's private key: PKCS#8, SEC1 (EC) or PKCS#1 (RSA).
    pub key: PathBuf,
}

impl TlsFiles {
    /// Both files or neither: one without the other is an error naming the one given. An empty
    /// path counts as unset, so `DOCKET_TLS_CERT=` switches a file's setting off.
    fn resolve(cert: Option<PathBuf>, key: Option<PathBuf>) -> Result<Option<Self>, ConfigError> {
        let given = |path: Option<PathBuf>| path.filter(|path| !path.as_os_str().is_empty());
        match (given(cert), given(key)) {
            (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::TlsPair("tls_cert")),
            (None, Some(_)) => Err(ConfigError::TlsPair("tls_key")),
        }
    }
}

impl std::fmt::Debug for Settings {
    /// The database URL may hold a password, so it is never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field("database", &self.database_url.as_ref().map(|_| "postgres"))
            .field("listen", &self.listen)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("max_batch_events", &self.max_batch_events)
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .field("development", &self.development)
            .field("persisted_queries_only", &self.persisted_queries_only)
            .field("read_your_writes_ms", &self.read_your_writes_ms)
            .field("checkpoint_origin", &self.checkpoint_origin)
            .field("checkpoints", &self.checkpoints)
            .field("monitoring", &self.monitoring)
            .field("nats", &self.nats)
            .field("webhooks", &self.webhooks)
            .field("tls", &self.tls)
            .field("allow_plain_http", &self.allow_plain_http)
            .field("anomaly", &self.anomaly)
            .finish()
    }
}

impl Settings {
    /// Resolves flags and environment over the file over defaults.
    pub fn resolve(overrides: Overrides) -> Result<Self, ConfigError> {
        let mut file = match &overrides.config {
            Some(path) => read_file(path)?,
            None => {
                let data_dir = overrides
                    .data_dir
                    .clone()
                    .unwrap_or_else(|| DEFAULT_DATA_DIR.into());
                let default_path = data_dir.join("docket.toml");
                if default_path.exists() {
                    read_file(&default_path)?
                } else {
                    FileConfig::default()
                }
            }
        };
        let listen_text = overrides
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen_text
            .parse()
            .map_err(|_| ConfigError::Listen(listen_text.clone()))?;
        let database_url = overrides
            .database_url
            .or(file.database_url)
            .filter(|url| !url.is_empty());
        if let Some(url) = &database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::DatabaseUrl);
        }
        let read_your_writes_ms = overrides
            .read_your_writes_ms
            .or(file.read_your_writes_ms)
            .unwrap_or(DEFAULT_READ_YOUR_WRITES_MS);
        if read_your_writes_ms > MAX_READ_YOUR_WRITES_MS {
            return Err(ConfigError::ReadYourWrites(read_your_writes_ms));
        }
        let checkpoint_origin = overrides.checkpoint_origin.or(file.checkpoint_origin);
        if let Some(origin) = &checkpoint_origin {
            crate::log::checkpoint::validate_origin(origin)
                .map_err(ConfigError::CheckpointOrigin)?;
        }
        let defaults = CheckpointPolicy::default();
        let every_events = overrides
            .checkpoint_every_events
            .or(file.checkpoint_every_events)
            .unwrap_or(defaults.every_events);
        let interval_secs = overrides
            .checkpoint_interval_secs
            .or(file.checkpoint_interval_secs)
            .unwrap_or(defaults.interval.as_secs());
        if every_events == 0 || interval_secs == 0 {
            return Err(ConfigError::CheckpointPolicy);
        }
        let checkpoints = CheckpointPolicy {
            every_events,
            interval: Duration::from_secs(interval_secs),
        };
        let retention_interval = Duration::from_secs(
            overrides
                .retention_interval_secs
                .or(file.retention_interval_secs)
                .unwrap_or(DEFAULT_RETENTION_INTERVAL_SECS),
        );
        let log_format = match overrides.log_format.or(file.log_format) {
            Some(text) => text.parse().map_err(ConfigError::LogFormat)?,
            None => LogFormat::default(),
        };
        let monitoring = MonitoringSettings::resolve(
            overrides.metrics_token.or(file.metrics_token),
            overrides.verify_interval_secs.or(file.verify_interval_secs),
        )
        .map_err(ConfigError::Monitoring)?;
        let backup = backup_schedule(
            overrides.backup_to.clone().or(file.backup_to.take()),
            overrides.backup_interval_secs.or(file.backup_interval_secs),
            overrides.backup_keep.or(file.backup_keep),
        );
        let nats = NatsSettings::resolve(
            overrides.nats_url.or(file.nats_url),
            overrides.nats_stream.or(file.nats_stream),
            overrides.nats_subject_prefix.or(file.nats_subject_prefix),
        )
        .map_err(ConfigError::Nats)?;
        let webhooks = WebhookSettings::configured(
            overrides
                .webhook_allow_http
                .or(file.webhook_allow_http)
                .unwrap_or(false),
            &overrides
                .webhook_allowed_cidrs
                .or(file.webhook_allowed_cidrs)
                .unwrap_or_default(),
            overrides
                .webhook_backoff_ms
                .or(file.webhook_backoff_ms)
                .as_deref(),
        )
        .map_err(ConfigError::Webhooks)?;
        let tls = TlsFiles::resolve(
            overrides.tls_cert.or(file.tls_cert),
            overrides.tls_key.or(file.tls_key),
        )?;
        let anomaly = file
            .anomaly
            .take()
            .unwrap_or_default()
            .settings()
            .map_err(ConfigError::Anomaly)?;
        Ok(Settings {
            anomaly,
            nats,
            webhooks,
            tls,
            allow_plain_http: overrides
                .allow_plain_http
                .or(file.allow_plain_http)
                .unwrap_or(false),
            checkpoint_origin,
            checkpoints,
            retention_interval,
            monitoring,
            log_format,
            backup,
            data_dir: overrides
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            database_url,
            listen,
            max_payload_bytes: overrides
                .max_payload_bytes
                .or(file.max_payload_bytes)
                .unwrap_or(DEFAULT_MAX_PAYLOAD_BYTES),
            max_batch_events: overrides
                .max_batch_events
                .or(file.max_batch_events)
                .unwrap_or(DEFAULT_MAX_BATCH_EVENTS),
            log: overrides.log.or(file.log).unwrap_or_else(|| "info".into()),
            development: overrides.development.or(file.development).unwrap_or(false),
            persisted_queries_only: overrides
                .persisted_queries_only
                .or(file.persisted_queries_only)
                .unwrap_or(false),
            read_your_writes_ms,
        })
    }

    /// The read-your-writes wait as a duration.
    pub fn read_your_writes(&self) -> Duration {
        Duration::from_millis(self.read_your_writes_ms)
    }

    /// The production rule for `serve`: plain HTTP only on a loopback address, in development
    /// mode, or when `allow_plain_http` says a TLS-terminating proxy is in front. With TLS
    /// configured every address is fine.
    pub fn check_transport(&self) -> Result<(), ConfigError> {
        let plain_allowed =
            self.development || self.allow_plain_http || self.listen.ip().is_loopback();
        if self.tls.is_none() && !plain_allowed {
            return Err(ConfigError::PlainHttpRefused(self.listen));
        }
        Ok(())
    }

    pub fn log_options(&self) -> LogOptions {
        LogOptions {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            max_payload_bytes: self.max_payload_bytes,
            max_batch_events: self.max_batch_events,
        }
    }
}

/// How many archives scheduled backups keep, by default.
pub const DEFAULT_BACKUP_KEEP: usize = 7;

/// Scheduled backups are on with a target and an interval above 0 (the default is 0: off).
fn backup_schedule(
    to: Option<String>,
    interval_secs: Option<u64>,
    keep: Option<usize>,
) -> Option<crate::backup::schedule::BackupSchedule> {
    let interval = interval_secs.unwrap_or(0);
    (interval > 0).then_some(crate::backup::schedule::BackupSchedule {
        to: to?,
        interval: Duration::from_secs(interval),
        keep: keep.unwrap_or(DEFAULT_BACKUP_KEEP),
    })
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
        path: shown.clone(),
        reason: e.kind().to_string(),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Invalid {
        path: shown,
        reason: e.message().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docket.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nmax_payload_bytes = 1000\n",
        )
        .unwrap();
        let settings = Settings::resolve(Overrides {
            config: Some(path),
            max_payload_bytes: Some(2000),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(settings.listen.port(), 9000);
        assert_eq!(settings.max_payload_bytes, 2000);
        assert_eq!(settings.max_batch_events, DEFAULT_MAX_BATCH_EVENTS);
    }

    #[test]
    fn the_data_dir_file_is_read_when_no_config_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("docket.toml"), "max_batch_events = 7\n").unwrap();
        let settings = Settings::resolve(Overrides {
            data_dir: Some(dir.path().to_owned()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(settings.max_batch_events, 7);
    }

    #[test]
    fn unknown_keys_and_bad_urls_are_errors_that_hide_the_url() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docket.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let overrides = Overrides {
            config: Some(path),
            ..Overrides::default()
        };
        assert!(matches!(
            Settings::resolve(overrides),
            Err(ConfigError::Invalid { .. })
        ));

        let secret = "mysql://admin:hunter2@db/docket".to_owned();
        let error = Settings::resolve(Overrides {
            database_url: Some(secret),
            ..Overrides::default()
        });
        assert!(matches!(error, Err(ConfigError::DatabaseUrl)));
        assert!(
            !error
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("hunter2")
        );
    }

    #[test]
    fn serving_settings_default_to_off_and_five_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::resolve(Overrides {
            data_dir: Some(dir.path().to_owned()),
            ..Overrides::default()
        })
        .unwrap();
        assert!(!settings.development);
        assert!(!settings.persisted_queries_only);
        assert_eq!(settings.read_your_writes_ms, DEFAULT_READ_YOUR_WRITES_MS);
        assert_eq!(settings.read_your_writes(), Duration::from_secs(5));
    }

    #[test]
    fn serving_settings_come_from_the_file_unless_flags_or_environment_say_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("docket.toml"),
            "development = true\npersisted_queries_only = true\nread_your_writes_ms = 250\n",
        )
        .unwrap();
        let from_file = Settings::resolve(Overrides {
            data_dir: Some(dir.path().to_owned()),
            ..Overrides::default()
        })
        .unwrap();
        assert!(from_file.development);
        assert!(from_file.persisted_queries_only);
        assert_eq!(from_file.read_your_writes(), Duration::from_millis(250));

        // A flag or variable that says `false` (or 0) beats the file's `true` (or 250).
        let overridden = Settings::resolve(Overrides {
            data_dir: Some(dir.path().to_owned()),
            development: Some(false),
            persisted_queries_only: Some(false),
            read_your_writes_ms: Some(0),
            ..Overrides::default()
        })
        .unwrap();
        assert!(!overridden.development);
        assert!(!overridden.persisted_queries_only);
        assert_eq!(overridden.read_your_writes(), Duration::ZERO);
    }

    #[test]
    fn the_read_your_writes_wait_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let with = |ms| {
            Settings::resolve(Overrides {
                data_dir: Some(dir.path().to_owned()),
                read_your_writes_ms: Some(ms),
                ..Overrides::default()
            })
        };
        assert_eq!(with(0).unwrap().read_your_writes_ms, 0);
        assert_eq!(
            with(MAX_READ_YOUR_WRITES_MS).unwrap().read_your_writes_ms,
            MAX_READ_YOUR_WRITES_MS
        );
        let error = with(MAX_READ_YOUR_WRITES_MS + 1).unwrap_err();
        assert!(matches!(error, ConfigError::ReadYourWrites(60_001)));
        let message = error.to_string();
        assert!(
            message.contains("read_your_writes_ms") && message.contains("between 0 and 60000"),
            "{message}"
        );

        // Out of range in the file is the same error; a negative or non-integer is invalid.
        let path = dir.path().join("docket.toml");
        std::fs::write(&path, "read_your_writes_ms = 90000\n").unwrap();
        let file_only = Overrides {
            config: Some(path.clone()),
            ..Overrides::default()
        };
        assert!(matches!(
            Settings::resolve(file_only.clone()),
            Err(ConfigError::ReadYourWrites(90_000))
        ));
        std::fs::write(&path, "read_your_writes_ms = -1\n").unwrap();
        assert!(matches!(
            Settings::resolve(file_only.clone()),
            Err(ConfigError::Invalid { .. })
        ));
        std::fs::write(&path, "development = \"yes\"\n").unwrap();
        assert!(matches!(
            Settings::resolve(file_only),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn the_anomaly_table_comes_from_the_file_and_bad_ones_are_refused() {
        use crate::monitoring::anomaly::{Rule, Threshold};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docket.toml");
        std::fs::write(
            &path,
            "[anomaly]\nworking_hours = \"Mon-Fri 08:00-19:00 +01:00\"\n\
             failed_logins = { count = 3, window_secs = 120 }\n",
        )
        .unwrap();
        let file_only = Overrides {
            config: Some(path.clone()),
            ..Overrides::default()
        };
        let settings = Settings::resolve(file_only.clone()).unwrap();
        assert!(settings.anomaly.enabled);
        let thresholds = &settings.anomaly.thresholds;
        assert_eq!(thresholds.of(Rule::FailedLogins), Threshold::new(3, 120));
        assert!(thresholds.is_on(Rule::OffHours));

        std::fs::write(&path, "[anomaly]\nenabled = false\n").unwrap();
        assert!(
            !Settings::resolve(file_only.clone())
                .unwrap()
                .anomaly
                .enabled
        );
        std::fs::write(&path, "[anomaly]\nworking_hours = \"nine to five\"\n").unwrap();
        let error = Settings::resolve(file_only.clone()).unwrap_err();
        assert!(matches!(error, ConfigError::Anomaly(_)), "{error}");
        std::fs::write(
            &path,
            "[anomaly]\nfailed_login = { count = 3, window_secs = 1 }\n",
        )
        .unwrap();
        let error = Settings::resolve(file_only).unwrap_err();
        assert!(matches!(error, ConfigError::Invalid { .. }), "{error}");
    }

    #[test]
    fn monitoring_settings_come_from_the_file_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docket.toml");
        std::fs::write(
            &path,
            "log_format = \"json\"\nmetrics_token = \"scrape-token-0123456789\"\n\
             verify_interval_secs = 5\n",
        )
        .unwrap();
        let file_only = Overrides {
            config: Some(path.clone()),
            ..Overrides::default()
        };
        let settings = Settings::resolve(file_only.clone()).unwrap();
        assert_eq!(settings.log_format, LogFormat::Json);
        assert_eq!(settings.monitoring.verify_interval, Duration::from_secs(5));
        let token = settings.monitoring.metrics_token.as_ref().unwrap();
        assert!(token.matches("scrape-token-0123456789"));
        assert!(!format!("{settings:?}").contains("scrape-token"));

        let defaults = Settings::resolve(Overrides {
            data_dir: Some(dir.path().join("elsewhere")),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(defaults.log_format, LogFormat::Text);
        assert_eq!(defaults.monitoring.verify_interval, Duration::from_secs(60));
        assert!(defaults.monitoring.metrics_token.is_none());

        std::fs::write(&path, "log_format = \"xml\"\n").unwrap();
        let error = Settings::resolve(file_only.clone()).unwrap_err();
        assert!(matches!(error, ConfigError::LogFormat(_)), "{error}");
        std::fs::write(&path, "metrics_token = \"guessable\"\n").unwrap();
        let error = Settings::resolve(file_only).unwrap_err();
        assert!(matches!(error, ConfigError::Monitoring(_)));
        assert!(!error.to_string().contains("guessable"));
    }
}
