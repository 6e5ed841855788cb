//! Where the log is published: the NATS servers, the JetStream stream and the subject prefix.
//!
//! The URL may carry credentials (`nats://user:password@host:4222`, or `nats://token@host`).
//! They are taken out of the address when the settings are read, kept only to authenticate,
//! and never shown: [`NatsSettings::servers_shown`] and the `Debug` form give scheme, host and
//! port alone.

use std::str::FromStr;
use std::time::Duration;

use async_nats::ServerAddr;
use thiserror::Error;

use super::subjects::percent_decode;

/// The stream name used when none is configured.
pub const DEFAULT_STREAM: &str = "DOCKET";
/// The subject prefix used when none is configured.
pub const DEFAULT_SUBJECT_PREFIX: &str = "docket";

const MAX_NAME_LEN: usize = 64;
const MAX_PREFIX_TOKENS: usize = 8;

/// Why the NATS settings were refused. Messages name the rule, never the value given.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NatsConfigError {
    #[error(
        "nats_url must be one or more comma-separated nats://, tls://, ws:// or wss:// URLs \
         (host and optional port, credentials optional)"
    )]
    Url,
    #[error("nats_stream must be 1-{MAX_NAME_LEN} ASCII letters, digits, `-` or `_`")]
    Stream,
    #[error(
        "nats_subject_prefix must be 1-{MAX_PREFIX_TOKENS} dot-separated tokens of ASCII \
         letters, digits, `-` or `_`, at most {MAX_NAME_LEN} characters in all"
    )]
    SubjectPrefix,
}

/// How Docket reaches NATS and names what it publishes there.
#[derive(Clone)]
pub struct NatsSettings {
    /// The servers, without credentials.
    servers: Vec<ServerAddr>,
    credentials: Option<Credentials>,
    /// The JetStream stream the log is published to.
    pub stream: String,
    /// The first token(s) of every subject; the stream captures `<prefix>.>`.
    pub subject_prefix: String,
}

#[derive(Clone)]
enum Credentials {
    UserPassword { user: String, password: String },
    Token(String),
}

impl std::fmt::Debug for NatsSettings {
    /// Credentials are never shown, only whether there are any.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSettings")
            .field("servers", &self.servers_shown())
            .field("credentials", &self.credentials.is_some())
            .field("stream", &self.stream)
            .field("subject_prefix", &self.subject_prefix)
            .finish()
    }
}

impl NatsSettings {
    /// Validates the URL (one or several, comma-separated), the stream name and the prefix.
    pub fn new(
        url: &str,
        stream: Option<&str>,
        subject_prefix: Option<&str>,
    ) -> Result<Self, NatsConfigError> {
        let mut servers = Vec::new();
        let mut credentials = None;
        for part in url.split(',').map(str::trim) {
            let (server, given) = parse_server(part)?;
            if credentials.is_none() {
                credentials = given;
            }
            servers.push(server);
        }
        let stream = stream.unwrap_or(DEFAULT_STREAM);
        let subject_prefix = subject_prefix.unwrap_or(DEFAULT_SUBJECT_PREFIX);
        check_names(stream, subject_prefix)?;
        Ok(NatsSettings {
            servers,
            credentials,
            stream: stream.to_owned(),
            subject_prefix: subject_prefix.to_owned(),
        })
    }

    /// The settings from configuration values: `None` when no URL is configured (publishing
    /// off). The stream and prefix fall back to `DOCKET` and `docket`.
    pub fn resolve(
        url: Option<String>,
        stream: Option<String>,
        subject_prefix: Option<String>,
    ) -> Result<Option<Self>, NatsConfigError> {
        let Some(url) = url.filter(|url| !url.trim().is_empty()) else {
            return Ok(None);
        };
        NatsSettings::new(&url, stream.as_deref(), subject_prefix.as_deref()).map(Some)
    }

    /// The same servers and credentials with another stream and prefix.
    pub fn with_stream(&self, stream: &str, subject_prefix: &str) -> Result<Self, NatsConfigError> {
        check_names(stream, subject_prefix)?;
        Ok(NatsSettings {
            stream: stream.to_owned(),
            subject_prefix: subject_prefix.to_owned(),
            ..self.clone()
        })
    }

    /// The servers as `scheme://host:port`, comma-separated: safe to log.
    pub fn servers_shown(&self) -> String {
        self.servers
            .iter()
            .map(|server| format!("{}://{}:{}", server.scheme(), server.host(), server.port()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The subjects the stream captures: `<prefix>.>`.
    pub fn stream_subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }

    /// Connects to the servers, authenticating with the URL's credentials if it had any.
    /// The client reconnects by itself once connected.
    pub async fn connect(&self) -> Result<async_nats::Client, async_nats::ConnectError> {
        let mut options = async_nats::ConnectOptions::new()
            .name("docket")
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(Duration::from_secs(10)));
        options = match &self.credentials {
            Some(Credentials::UserPassword { user, password }) => {
                options.user_and_password(user.clone(), password.clone())
            }
            Some(Credentials::Token(token)) => options.token(token.clone()),
            None => options,
        };
        options.connect(self.servers.clone()).await
    }
}

/// Parses one server URL and takes its credentials out of it.
fn parse_server(text: &str) -> Result<(ServerAddr, Option<Credentials>), NatsConfigError> {
    let has_scheme = ["nats://", "tls://", "ws://", "wss://"]
        .iter()
        .any(|scheme| text.starts_with(scheme));
    if !has_scheme {
        return Err(NatsConfigError::Url);
    }
    let server = ServerAddr::from_str(text).map_err(|_| NatsConfigError::Url)?;
    if server.host().is_empty() {
        return Err(NatsConfigError::Url);
    }
    let decode = |text: &str| percent_decode(text).ok_or(NatsConfigError::Url);
    let credentials = match (server.username(), server.password()) {
        (Some(user), Some(password)) => Some(Credentials::UserPassword {
            user: decode(user)?,
            password: decode(password)?,
        }),
        (Some(token), None) => Some(Credentials::Token(decode(token)?)),
        (None, Some(_)) => return Err(NatsConfigError::Url),
        (None, None) => None,
    };
    let mut url = server.into_inner();
    if url.set_username("").is_err() || url.set_password(None).is_err() {
        return Err(NatsConfigError::Url);
    }
    let server = ServerAddr::from_url(url).map_err(|_| NatsConfigError::Url)?;
    Ok((server, credentials))
}

fn check_names(stream: &str, subject_prefix: &str) -> Result<(), NatsConfigError> {
    if !is_name(stream) {
        return Err(NatsConfigError::Stream);
    }
    let tokens: Vec<&str> = subject_prefix.split('.').collect();
    if subject_prefix.len() > MAX_NAME_LEN
        || tokens.len() > MAX_PREFIX_TOKENS
        || !tokens.iter().all(|token| is_name(token))
    {
        return Err(NatsConfigError::SubjectPrefix);
    }
    Ok(())
}

/// Stream names and prefix tokens: ASCII letters, digits, `-` and `_`.
fn is_name(text: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_publishing_is_off_without_a_url() {
        let settings = NatsSettings::new("nats://127.0.0.1:4222", None, None).unwrap();
        assert_eq!(settings.stream, "DOCKET");
        assert_eq!(settings.subject_prefix, "docket");
        assert_eq!(settings.stream_subjects(), "docket.>");
        assert!(NatsSettings::resolve(None, None, None).unwrap().is_none());
        assert!(
            NatsSettings::resolve(Some(" ".into()), None, None)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn credentials_are_taken_out_of_the_url_and_never_shown() {
        let settings = NatsSettings::new(
            "nats://publisher:s%40cret-pw@nats.example:4333,tls://other.example",
            None,
            None,
        )
        .unwrap();
        let shown = settings.servers_shown();
        assert_eq!(shown, "nats://nats.example:4333,tls://other.example:4222");
        let debug = format!("{settings:?}");
        assert!(
            !debug.contains("cret") && !debug.contains("publisher"),
            "{debug}"
        );
        assert!(debug.contains("credentials: true"), "{debug}");
        match settings.credentials {
            Some(Credentials::UserPassword { user, password }) => {
                assert_eq!(user, "publisher");
                assert_eq!(password, "s@cret-pw");
            }
            _ => panic!("user and password expected"),
        }
        assert!(settings.servers.iter().all(|s| !s.has_user_pass()));

        let token = NatsSettings::new("nats://t0ken@127.0.0.1", None, None).unwrap();
        assert!(matches!(token.credentials, Some(Credentials::Token(t)) if t == "t0ken"));
    }

    #[test]
    fn bad_urls_names_and_prefixes_are_refused_without_echoing_them() {
        for url in [
            "",
            "127.0.0.1:4222",
            "http://host",
            "nats://",
            "nats://a:b:c@",
        ] {
            let error = NatsSettings::new(url, None, None).unwrap_err();
            assert_eq!(error, NatsConfigError::Url, "{url}");
        }
        let error = NatsSettings::new("mysql://admin:hunter2@db", None, None).unwrap_err();
        assert!(!error.to_string().contains("hunter2"));
        let url = "nats://127.0.0.1";
        for stream in ["", "a.b", "a b", "a*", "a>", "a/b", &"S".repeat(65)] {
            assert_eq!(
                NatsSettings::new(url, Some(stream), None).unwrap_err(),
                NatsConfigError::Stream,
                "{stream}"
            );
        }
        for prefix in [
            "",
            "a.",
            ".a",
            "a..b",
            "a.*",
            "a.>",
            "a b",
            "a.b.c.d.e.f.g.h.i",
        ] {
            assert_eq!(
                NatsSettings::new(url, None, Some(prefix)).unwrap_err(),
                NatsConfigError::SubjectPrefix,
                "{prefix}"
            );
        }
        let nested = NatsSettings::new(url, Some("CASES-1"), Some("firm.docket_1")).unwrap();
        assert_eq!(nested.stream_subjects(), "firm.docket_1.>");
    }

    #[test]
    fn the_configuration_file_and_flags_set_publishing() {
        use crate::config::{ConfigError, Overrides, Settings};
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("docket.toml"),
            "nats_url = \"nats://docket:hunter2@127.0.0.1:4222\"\nnats_stream = \"CASES\"\n",
        )
        .unwrap();
        let resolve = |overrides: Overrides| {
            Settings::resolve(Overrides {
                data_dir: Some(dir.path().to_owned()),
                ..overrides
            })
        };
        let settings = resolve(Overrides::default()).unwrap();
        let nats = settings.nats.as_ref().expect("publishing is on");
        assert_eq!(
            (nats.stream.as_str(), nats.subject_prefix.as_str()),
            ("CASES", "docket")
        );
        assert!(!format!("{settings:?}").contains("hunter2"));

        let flagged = resolve(Overrides {
            nats_subject_prefix: Some("firm".into()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(flagged.nats.unwrap().subject_prefix, "firm");

        let error = resolve(Overrides {
            nats_url: Some("redis://admin:hunter2@cache".into()),
            ..Overrides::default()
        })
        .unwrap_err();
        assert!(matches!(error, ConfigError::Nats(NatsConfigError::Url)));
        assert!(!error.to_string().contains("hunter2"));
    }
}
