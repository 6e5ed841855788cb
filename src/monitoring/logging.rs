//! Log lines on standard error, as human-readable text or as one JSON object per line.
//!
//! JSON lines carry the event's fields at the top level (`message`, `request_id`, `http.status`
//! and so on) beside its `timestamp`, `level` and `target`, and the spans it happened in (the HTTP middleware
//! opens a `request` span holding the request id, so whatever a request logs carries its id).
//! What is logged is the same in both formats: never query strings, headers, bodies, tokens or
//! client data.

use std::str::FromStr;

use thiserror::Error;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A log format name other than `text` or `json`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("log_format must be `text` or `json`")]
pub struct UnknownLogFormat;

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(UnknownLogFormat),
        }
    }
}

/// Installs the process's subscriber: `filter` (e.g. `info`, `docket=debug`) in `format`. A
/// filter that does not parse falls back to `info`; a second call does nothing.
pub fn init(filter: &str, format: LogFormat) {
    // sqlx reports every statement and migration notice at info; keep those out of the story.
    let filter = format!("sqlx=warn,{filter}");
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_text_and_json_are_formats() {
        assert_eq!("text".parse(), Ok(LogFormat::Text));
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!("JSON".parse::<LogFormat>(), Err(UnknownLogFormat));
        assert_eq!("".parse::<LogFormat>(), Err(UnknownLogFormat));
    }
}
