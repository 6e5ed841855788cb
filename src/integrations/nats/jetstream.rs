//! The JetStream stream that holds the published log: created when missing, and read back to
//! find where publishing stopped.

use std::time::Duration;

use async_nats::jetstream::stream::{
    Config, DiscardPolicy, LastRawMessageErrorKind, RetentionPolicy, StorageType, Stream,
};
use async_nats::jetstream::{self, context::GetStreamErrorKind};

use super::NatsError;
use super::settings::NatsSettings;
use super::subjects::{EVENT_ID_HEADER, POSITION_HEADER};
use crate::store::EventLog;

/// How long JetStream remembers message ids to drop a republished event.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The configuration Docket creates the stream with: file storage, the `<prefix>.>`
/// subjects, no limits on count, size or age (the stream is a copy of the log, which is kept
/// whole), the oldest messages discarded first if an operator adds limits, and a two-minute
/// duplicate window.
pub fn stream_config(settings: &NatsSettings) -> Config {
    Config {
        name: settings.stream.clone(),
        description: Some("The Docket event log, one message per event, in log order".into()),
        subjects: vec![settings.stream_subjects()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        max_messages: -1,
        max_bytes: -1,
        max_messages_per_subject: -1,
        max_age: Duration::ZERO,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: 1,
        ..Config::default()
    }
}

/// Returns the stream, creating it when it does not exist. An existing stream must capture
/// `<prefix>.>`; its other settings are the operator's and are left as they are.
pub async fn ensure_stream(
    js: &jetstream::Context,
    settings: &NatsSettings,
) -> Result<Stream, NatsError> {
    let failed = |detail: String| NatsError::Stream {
        stream: settings.stream.clone(),
        detail,
    };
    match js.get_stream(&settings.stream).await {
        Ok(stream) => {
            let subjects = &stream.cached_info().config.subjects;
            if subjects.contains(&settings.stream_subjects()) {
                Ok(stream)
            } else {
                Err(failed(format!(
                    "it exists but does not capture {}; change its subjects or configure \
                     another stream name",
                    settings.stream_subjects()
                )))
            }
        }
        Err(error) if is_not_found(error.kind()) => js
            .create_stream(stream_config(settings))
            .await
            .map_err(|error| failed(format!("cannot create it: {error}"))),
        Err(error) => Err(failed(error.to_string())),
    }
}

fn is_not_found(kind: GetStreamErrorKind) -> bool {
    matches!(kind, GetStreamErrorKind::JetStream(error)
        if error.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// The last message of the stream, as far as publishing is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastPublished {
    pub position: u64,
    pub event_id: String,
    pub sequence: u64,
}

/// Where publishing resumes: the stream's last sequence (what the next message must follow)
/// and its last message, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    pub last_sequence: u64,
    pub last: Option<LastPublished>,
}

/// Reads the end of the stream back from JetStream.
pub async fn resume_point(
    stream: &Stream,
    settings: &NatsSettings,
) -> Result<ResumePoint, NatsError> {
    let failed = |detail: String| NatsError::Stream {
        stream: settings.stream.clone(),
        detail,
    };
    let info = stream
        .get_info()
        .await
        .map_err(|error| failed(format!("cannot read its state: {error}")))?;
    let last_sequence = info.state.last_sequence;
    if info.state.messages == 0 {
        return Ok(ResumePoint {
            last_sequence,
            last: None,
        });
    }
    let message = match stream
        .get_last_raw_message_by_subject(&settings.stream_subjects())
        .await
    {
        Ok(message) => message,
        Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => {
            return Ok(ResumePoint {
                last_sequence,
                last: None,
            });
        }
        Err(error) => return Err(failed(format!("cannot read its last message: {error}"))),
    };
    let header = |name: &str| {
        message
            .headers
            .get(name)
            .map(|value| value.as_str().to_owned())
    };
    let position = header(POSITION_HEADER).and_then(|text| text.parse::<u64>().ok());
    let (Some(position), Some(event_id)) = (position, header(EVENT_ID_HEADER)) else {
        return Err(NatsError::ForeignStream {
            stream: settings.stream.clone(),
            detail: format!(
                "its last message (sequence {}) has no {POSITION_HEADER} and {EVENT_ID_HEADER} \
                 headers: something other than Docket publishes to {}",
                message.sequence,
                settings.stream_subjects()
            ),
        });
    };
    Ok(ResumePoint {
        last_sequence: last_sequence.max(message.sequence),
        last: Some(LastPublished {
            position,
            event_id,
            sequence: message.sequence,
        }),
    })
}

/// Checks that the stream's last message is this log's event at that position, so that a
/// stream filled from another log (or from this database before it was restored from an
/// older backup) is never continued.
pub async fn check_same_log(
    log: &EventLog,
    settings: &NatsSettings,
    last: &LastPublished,
) -> Result<(), NatsError> {
    let foreign = |detail: String| NatsError::ForeignStream {
        stream: settings.stream.clone(),
        detail,
    };
    let page = log.store().read_page(last.position, 1).await?;
    match page.first() {
        Some(event) if event.position == last.position && event.id == last.event_id => Ok(()),
        Some(event) if event.position == last.position => Err(foreign(format!(
            "its message for position {} is event {}, but the log holds event {} there",
            last.position, last.event_id, event.id
        ))),
        _ => Err(foreign(format!(
            "it ends at position {}, beyond the end of the log",
            last.position
        ))),
    }
}
