//! Canonical encoding and hashing of events.
//!
//! The hash input is the ASCII domain tag [`EVENT_HASH_DOMAIN`] followed by the RFC 8785 (JCS)
//! encoding of a JSON object holding every envelope field except `hash` and `signature`. Absent
//! optional fields are present as `null`, so every event has the same seventeen members. Hashes
//! inside the object are lowercase hex; the payload is embedded as JSON (not as a string), so a
//! verifier in any language needs only a JCS encoder and blake3. Payload parts that are encrypted
//! are ciphertext in the payload, so they are hashed as ciphertext.

use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use super::envelope::{Event, EventHash};

/// Prefix of every event hash input: separates event hashes from every other blake3 use.
pub const EVENT_HASH_DOMAIN: &[u8] = b"docket/event/v1\n";

/// Why an event could not be encoded canonically.
#[derive(Debug, Error)]
pub enum EncodingError {
    #[error("stored payload is not valid JSON")]
    PayloadNotJson,
    #[error("value cannot be encoded canonically")]
    NotCanonicalisable,
}

/// The hashed view of an event: field names exactly as in docs/log-format.md.
#[derive(Serialize)]
struct HashedEnvelope<'a> {
    actor: &'a str,
    causation_id: Option<&'a str>,
    correlation_id: Option<&'a str>,
    id: &'a str,
    idempotency_key: Option<&'a str>,
    key_id: &'a str,
    occurred_at: &'a str,
    payload: &'a Value,
    position: u64,
    prev_hash: Option<String>,
    recorded_at: &'a str,
    request_id: Option<&'a str>,
    schema_version: u32,
    stream: &'a str,
    stream_prev_hash: Option<String>,
    stream_version: u64,
    #[serde(rename = "type")]
    event_type: &'a str,
}

/// The RFC 8785 encoding of a JSON value.
pub fn canonical_json(value: &Value) -> Result<String, EncodingError> {
    serde_json_canonicalizer::to_string(value).map_err(|_| EncodingError::NotCanonicalisable)
}

/// The exact bytes that are hashed for `event`, given its payload already parsed.
pub fn hash_input(event: &Event, payload: &Value) -> Result<Vec<u8>, EncodingError> {
    let envelope = HashedEnvelope {
        actor: &event.actor,
        causation_id: event.causation_id.as_deref(),
        correlation_id: event.correlation_id.as_deref(),
        id: &event.id,
        idempotency_key: event.idempotency_key.as_deref(),
        key_id: &event.key_id,
        occurred_at: &event.occurred_at,
        payload,
        position: event.position,
        prev_hash: event.prev_hash.map(hex::encode),
        recorded_at: &event.recorded_at,
        request_id: event.request_id.as_deref(),
        schema_version: event.schema_version,
        stream: &event.stream,
        stream_prev_hash: event.stream_prev_hash.map(hex::encode),
        stream_version: event.stream_version,
        event_type: &event.event_type,
    };
    let mut input = EVENT_HASH_DOMAIN.to_vec();
    serde_json_canonicalizer::to_writer(&envelope, &mut input)
        .map_err(|_| EncodingError::NotCanonicalisable)?;
    Ok(input)
}

/// The event's hash, computed from its fields (the stored `hash` is ignored).
pub fn compute_hash(event: &Event, payload: &Value) -> Result<EventHash, EncodingError> {
    Ok(*blake3::hash(&hash_input(event, payload)?).as_bytes())
}

/// The event's hash, parsing the stored payload text first (what a verifier does).
pub fn compute_stored_hash(event: &Event) -> Result<EventHash, EncodingError> {
    let payload: Value =
        serde_json::from_str(&event.payload).map_err(|_| EncodingError::PayloadNotJson)?;
    compute_hash(event, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn sample_event() -> Event {
        Event {
            position: 2,
            id: "0190a3b4-7c1d-7000-8000-000000000002".into(),
            stream: "matter:2026-0042".into(),
            stream_version: 1,
            event_type: "matter.opened".into(),
            schema_version: 1,
            payload: r#"{"title":"Smith v. Jones"}"#.into(),
            actor: "user:ada".into(),
            request_id: Some("req-1".into()),
            occurred_at: "2026-12-03T10:00:00.000000Z".into(),
            recorded_at: "2026-12-03T10:00:00.000001Z".into(),
            correlation_id: None,
            causation_id: None,
            idempotency_key: None,
            prev_hash: Some([7; 32]),
            stream_prev_hash: None,
            key_id: "00".repeat(16),
            hash: [0; 32],
            signature: [0; 64],
        }
    }

    #[test]
    fn jcs_sorts_keys_and_normalises_numbers() {
        let value = json!({"b": 1.0, "a": [1e21, -0.0, "\u{20ac}"]});
        assert_eq!(canonical_json(&value).ok().as_deref(), Some(r#"{"a":[1e+21,0,"€"],"b":1}"#));
    }

    #[test]
    fn hash_input_lists_every_field_in_code_point_order() {
        let event = sample_event();
        let payload = json!({"title": "Smith v. Jones"});
        let input = hash_input(&event, &payload).map(String::from_utf8);
        let expected = format!(
            "docket/event/v1\n{{\"actor\":\"user:ada\",\"causation_id\":null,\
             \"correlation_id\":null,\"id\":\"0190a3b4-7c1d-7000-8000-000000000002\",\
             \"idempotency_key\":null,\"key_id\":\"{}\",\"occurred_at\":\"2026-12-03T10:00:00.000000Z\",\
             \"payload\":{{\"title\":\"Smith v. Jones\"}},\"position\":2,\"prev_hash\":\"{}\",\
             \"recorded_at\":\"2026-12-03T10:00:00.000001Z\",\"request_id\":\"req-1\",\
             \"schema_version\":1,\"stream\":\"matter:2026-0042\",\"stream_prev_hash\":null,\
             \"stream_version\":1,\"type\":\"matter.opened\"}}",
            "00".repeat(16),
            "07".repeat(32)
        );
        assert!(matches!(input, Ok(Ok(ref text)) if *text == expected), "{input:?}");
    }

    #[test]
    fn every_hashed_field_changes_the_hash() {
        let base = sample_event();
        let original = compute_stored_hash(&base).ok();
        let mutations: Vec<Box<dyn Fn(&mut Event)>> = vec![
            Box::new(|e| e.position += 1),
            Box::new(|e| e.id.push('0')),
            Box::new(|e| e.stream.push('1')),
            Box::new(|e| e.stream_version += 1),
            Box::new(|e| e.event_type.push('x')),
            Box::new(|e| e.schema_version += 1),
            Box::new(|e| e.payload = r#"{"title":"Smith v. Jonas"}"#.into()),
            Box::new(|e| e.actor.push('x')),
            Box::new(|e| e.request_id = None),
            Box::new(|e| e.occurred_at = "2026-12-03T10:00:00.000002Z".into()),
            Box::new(|e| e.recorded_at = "2026-12-03T10:00:00.000002Z".into()),
            Box::new(|e| e.correlation_id = Some("c".into())),
            Box::new(|e| e.causation_id = Some("c".into())),
            Box::new(|e| e.idempotency_key = Some("k".into())),
            Box::new(|e| e.prev_hash = None),
            Box::new(|e| e.stream_prev_hash = Some([1; 32])),
            Box::new(|e| e.key_id = "11".repeat(16)),
        ];
        for (index, mutate) in mutations.iter().enumerate() {
            let mut event = base.clone();
            mutate(&mut event);
            assert_ne!(compute_stored_hash(&event).ok(), original, "mutation {index}");
        }
        let mut unhashed = base.clone();
        unhashed.hash = [9; 32];
        unhashed.signature = [9; 64];
        assert_eq!(compute_stored_hash(&unhashed).ok(), original);
    }

    #[test]
    fn whitespace_in_the_stored_payload_does_not_change_the_hash() {
        let mut spaced = sample_event();
        spaced.payload = "{ \"title\" : \"Smith v. Jones\" }".into();
        assert_eq!(compute_stored_hash(&spaced).ok(), compute_stored_hash(&sample_event()).ok());
    }
}
