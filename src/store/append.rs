//! Append requests: what a writer asks for, how it is validated before it reaches the sequencer,
//! and what it gets back.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::keys::StoredDataKey;

use crate::log::canonical::canonical_json;
use crate::log::envelope::{
    ValidationError, is_identifier, is_reserved_event_type, validate_event_type,
    validate_payload_numbers,
};
use crate::log::limits::MAX_EVENTS_PER_APPEND;
use crate::log::time::normalise_timestamp;
use crate::log::{Actor, EventDraft, ExpectedVersion, LogSigner, StreamId};

const IDEMPOTENCY_DIGEST_DOMAIN: &[u8] = b"docket/idempotency/v1\n";

/// One or several events for one stream, appended atomically.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppendRequest {
    pub stream: StreamId,
    pub expected_version: ExpectedVersion,
    pub events: Vec<EventDraft>,
    pub actor: Actor,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub correlation_id: Option<String>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Data keys of new subjects whose client data these events are sealed under: stored in
    /// the same transaction as the events, so neither is ever durable without the other.
    /// Set only by the service, never taken from a client.
    #[serde(skip)]
    pub data_keys: Vec<StoredDataKey>,
}

impl AppendRequest {
    /// A request with no version check and no idempotency key.
    pub fn new(stream: StreamId, actor: Actor, events: Vec<EventDraft>) -> Self {
        AppendRequest {
            stream,
            expected_version: ExpectedVersion::Any,
            events,
            actor,
            request_id: None,
            correlation_id: None,
            idempotency_key: None,
            data_keys: Vec::new(),
        }
    }
}

/// What a committed append produced. `replayed` is true when an idempotency key matched an
/// earlier append, whose result this is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOutcome {
    pub stream: String,
    pub first_position: u64,
    pub last_position: u64,
    pub first_version: u64,
    pub last_version: u64,
    pub replayed: bool,
}

/// An event draft whose payload is canonical and whose times are normalised.
#[derive(Debug, Clone)]
pub struct PreparedEvent {
    pub event_type: String,
    pub schema_version: u32,
    /// The payload's canonical (RFC 8785) text: what is stored and hashed.
    pub payload_text: String,
    pub occurred_at: Option<String>,
    pub causation_id: Option<String>,
    /// The id fixed by the writer, if any (see [`EventDraft::id`]).
    pub id: Option<String>,
}

/// Events the log writes about itself; their payloads are completed at commit.
#[derive(Debug, Clone)]
pub enum SystemAppend {
    Genesis {
        log_id: String,
        signer: Arc<LogSigner>,
    },
    KeyRotation {
        next: Arc<LogSigner>,
    },
}

/// A validated append, ready for the sequencer.
#[derive(Debug, Clone)]
pub struct PreparedAppend {
    pub stream: StreamId,
    pub expected_version: ExpectedVersion,
    pub events: Vec<PreparedEvent>,
    pub actor: Actor,
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    pub idempotency_key: Option<String>,
    /// blake3 of the request's content, compared when an idempotency key repeats.
    pub digest: [u8; 32],
    pub system: Option<SystemAppend>,
    /// See [`AppendRequest::data_keys`].
    pub data_keys: Vec<StoredDataKey>,
}

impl PreparedAppend {
    /// Validates a writer's request: identifiers, event types, payload shape and size.
    pub fn prepare(
        request: AppendRequest,
        max_payload_bytes: usize,
    ) -> Result<Self, ValidationError> {
        let count = request.events.len();
        if count == 0 || count > MAX_EVENTS_PER_APPEND {
            return Err(ValidationError::BatchSize {
                actual: count,
                max: MAX_EVENTS_PER_APPEND,
            });
        }
        for (field, value) in [
            ("request_id", &request.request_id),
            ("correlation_id", &request.correlation_id),
            ("idempotency_key", &request.idempotency_key),
        ] {
            if value.as_deref().is_some_and(|text| !is_identifier(text)) {
                return Err(ValidationError::InvalidIdentifier { field });
            }
        }

        let mut events = Vec::with_capacity(count);
        for draft in request.events {
            validate_event_type(&draft.event_type)?;
            if is_reserved_event_type(&draft.event_type) {
                return Err(ValidationError::ReservedEventType);
            }
            events.push(prepare_event(draft, max_payload_bytes)?);
        }
        let digest = request_digest(
            &request.stream,
            request.expected_version,
            &request.actor,
            request.correlation_id.as_deref(),
            &events,
        );
        Ok(PreparedAppend {
            stream: request.stream,
            expected_version: request.expected_version,
            events,
            actor: request.actor,
            request_id: request.request_id,
            correlation_id: request.correlation_id,
            idempotency_key: request.idempotency_key,
            digest,
            system: None,
            data_keys: request.data_keys,
        })
    }

    /// A system event whose payload the sequencer fills in at commit.
    pub fn system(
        event_type: &str,
        expected_version: ExpectedVersion,
        system: SystemAppend,
    ) -> Self {
        let event = PreparedEvent {
            event_type: event_type.to_owned(),
            schema_version: 1,
            payload_text: String::new(),
            occurred_at: None,
            causation_id: None,
            id: None,
        };
        PreparedAppend {
            stream: StreamId::system(),
            expected_version,
            events: vec![event],
            actor: Actor::system(),
            request_id: None,
            correlation_id: None,
            idempotency_key: None,
            digest: [0; 32],
            system: Some(system),
            data_keys: Vec::new(),
        }
    }
}

fn prepare_event(
    draft: EventDraft,
    max_payload_bytes: usize,
) -> Result<PreparedEvent, ValidationError> {
    if !(1..=u32::from(u16::MAX)).contains(&draft.schema_version) {
        return Err(ValidationError::InvalidSchemaVersion);
    }
    if !draft.payload.is_object() {
        return Err(ValidationError::PayloadNotObject);
    }
    validate_payload_numbers(&draft.payload)?;
    let payload_text =
        canonical_json(&draft.payload).map_err(|_| ValidationError::PayloadNotObject)?;
    if payload_text.len() > max_payload_bytes {
        return Err(ValidationError::PayloadTooLarge {
            actual: payload_text.len(),
            limit: max_payload_bytes,
        });
    }
    let occurred_at = match draft.occurred_at {
        Some(text) => Some(normalise_timestamp(&text).ok_or(
            ValidationError::InvalidTimestamp {
                field: "occurred_at",
            },
        )?),
        None => None,
    };
    if draft
        .causation_id
        .as_deref()
        .is_some_and(|text| !is_identifier(text))
    {
        return Err(ValidationError::InvalidIdentifier {
            field: "causation_id",
        });
    }
    Ok(PreparedEvent {
        event_type: draft.event_type,
        schema_version: draft.schema_version,
        payload_text,
        occurred_at,
        causation_id: draft.causation_id,
        id: draft.id,
    })
}

/// The content an idempotency key stands for: everything but the request id and the times
/// Docket fills in. Each part is length-prefixed, so no two requests share an encoding.
fn request_digest(
    stream: &StreamId,
    expected: ExpectedVersion,
    actor: &Actor,
    correlation_id: Option<&str>,
    events: &[PreparedEvent],
) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(IDEMPOTENCY_DIGEST_DOMAIN);
    let mut part = |bytes: &[u8]| {
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    part(stream.as_str().as_bytes());
    part(expected.to_string().as_bytes());
    part(actor.as_str().as_bytes());
    part(correlation_id.unwrap_or("\0").as_bytes());
    for event in events {
        part(event.event_type.as_bytes());
        part(&event.schema_version.to_le_bytes());
        part(event.occurred_at.as_deref().unwrap_or("\0").as_bytes());
        part(event.causation_id.as_deref().unwrap_or("\0").as_bytes());
        part(event.payload_text.as_bytes());
    }
    *hasher.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::limits::DEFAULT_MAX_PAYLOAD_BYTES;
    use serde_json::{Value, json};

    fn request(payload: Value) -> AppendRequest {
        AppendRequest::new(
            StreamId::parse("matter:1").unwrap(),
            Actor::parse("user:ada").unwrap(),
            vec![EventDraft::new("matter.opened", payload)],
        )
    }

    #[test]
    fn oversized_payloads_are_refused_with_their_size() {
        let big = json!({"text": "x".repeat(300)});
        let refused = PreparedAppend::prepare(request(big), 100);
        assert!(matches!(
            refused,
            Err(ValidationError::PayloadTooLarge { limit: 100, .. })
        ));
    }

    #[test]
    fn payloads_must_be_objects() {
        let refused = PreparedAppend::prepare(request(json!([1, 2])), DEFAULT_MAX_PAYLOAD_BYTES);
        assert!(matches!(refused, Err(ValidationError::PayloadNotObject)));
    }

    #[test]
    fn reserved_types_cannot_be_written_by_clients() {
        let mut forged = request(json!({}));
        forged.events[0].event_type = "keys.rotated".into();
        let refused = PreparedAppend::prepare(forged, DEFAULT_MAX_PAYLOAD_BYTES);
        assert!(matches!(refused, Err(ValidationError::ReservedEventType)));
    }

    #[test]
    fn the_digest_ignores_request_ids_but_not_content() {
        let first =
            PreparedAppend::prepare(request(json!({"a": 1})), DEFAULT_MAX_PAYLOAD_BYTES).unwrap();
        let mut retried = request(json!({"a": 1}));
        retried.request_id = Some("retry-2".into());
        let retried = PreparedAppend::prepare(retried, DEFAULT_MAX_PAYLOAD_BYTES).unwrap();
        let other =
            PreparedAppend::prepare(request(json!({"a": 2})), DEFAULT_MAX_PAYLOAD_BYTES).unwrap();
        assert_eq!(first.digest, retried.digest);
        assert_ne!(first.digest, other.digest);
    }

    #[test]
    fn empty_and_huge_appends_are_refused() {
        let mut empty = request(json!({}));
        empty.events.clear();
        assert!(matches!(
            PreparedAppend::prepare(empty, DEFAULT_MAX_PAYLOAD_BYTES),
            Err(ValidationError::BatchSize { actual: 0, .. })
        ));
    }
}
