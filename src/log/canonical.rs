//! Canonical encoding and hashing of events.
//!
//! The hash input is the ASCII domain tag [`EVENT_HASH_DOMAIN`] followed by the RFC 8785 (JCS)
//! encoding of a JSON object holding every envelope field except `hash` and `signature`. Absent
//! optional fields are present as `null`, so every event has the same seventeen members, always
//! in the same (code point) order. Hashes inside the object are lowercase hex.
//!
//! The `payload` member is the stored payload text, byte for byte. Docket writes payloads in
//! JCS form, so the hash input is exactly the JCS encoding of the whole envelope; a verifier
//! therefore needs no JSON canonicaliser of its own, and any change to the stored payload bytes,
//! even one that keeps the JSON value, breaks the hash. Payload parts that are encrypted are
//! ciphertext in the payload, so they are hashed as ciphertext.

use serde_json::Value;
use thiserror::Error;

use super::envelope::{Event, EventHash};

/// Prefix of every event hash input: separates event hashes from every other blake3 use.
pub const EVENT_HASH_DOMAIN: &[u8] = b"docket/event/v1\n";

/// Why a value could not be encoded canonically.
#[derive(Debug, Error)]
pub enum EncodingError {
    #[error("value cannot be encoded canonically")]
    NotCanonicalisable,
}

/// The RFC 8785 encoding of a JSON value.
pub fn canonical_json(value: &Value) -> Result<String, EncodingError> {
    serde_json_canonicalizer::to_string(value).map_err(|_| EncodingError::NotCanonicalisable)
}

/// Appends a JSON string. serde_json's escaping is JCS's: `\"`, `\\`, `\b \t \n \f \r`,
/// other controls as `\u00xx` in lowercase hex, everything else (non-ASCII included) verbatim.
fn push_string(out: &mut Vec<u8>, text: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

fn push_optional(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => push_string(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

fn push_hash(out: &mut Vec<u8>, hash: Option<&EventHash>) {
    match hash {
        Some(hash) => {
            out.push(b'"');
            out.extend_from_slice(hex::encode(hash).as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

fn push_number(out: &mut Vec<u8>, number: u64) {
    out.extend_from_slice(number.to_string().as_bytes());
}

/// The exact bytes that are hashed for `event`: members in JCS order (code point order of the
/// ASCII member names).
pub fn hash_input(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(EVENT_HASH_DOMAIN.len() + 640 + event.payload.len());
    out.extend_from_slice(EVENT_HASH_DOMAIN);
    out.extend_from_slice(b"{\"actor\":");
    push_string(&mut out, &event.actor);
    out.extend_from_slice(b",\"causation_id\":");
    push_optional(&mut out, event.causation_id.as_deref());
    out.extend_from_slice(b",\"correlation_id\":");
    push_optional(&mut out, event.correlation_id.as_deref());
    out.extend_from_slice(b",\"id\":");
    push_string(&mut out, &event.id);
    out.extend_from_slice(b",\"idempotency_key\":");
    push_optional(&mut out, event.idempotency_key.as_deref());
    out.extend_from_slice(b",\"key_id\":");
    push_string(&mut out, &event.key_id);
    out.extend_from_slice(b",\"occurred_at\":");
    push_string(&mut out, &event.occurred_at);
    out.extend_from_slice(b",\"payload\":");
    out.extend_from_slice(event.payload.as_bytes());
    out.extend_from_slice(b",\"position\":");
    push_number(&mut out, event.position);
    out.extend_from_slice(b",\"prev_hash\":");
    push_hash(&mut out, event.prev_hash.as_ref());
    out.extend_from_slice(b",\"recorded_at\":");
    push_string(&mut out, &event.recorded_at);
    out.extend_from_slice(b",\"request_id\":");
    push_optional(&mut out, event.request_id.as_deref());
    out.extend_from_slice(b",\"schema_version\":");
    push_number(&mut out, u64::from(event.schema_version));
    out.extend_from_slice(b",\"stream\":");
    push_string(&mut out, &event.stream);
    out.extend_from_slice(b",\"stream_prev_hash\":");
    push_hash(&mut out, event.stream_prev_hash.as_ref());
    out.extend_from_slice(b",\"stream_version\":");
    push_number(&mut out, event.stream_version);
    out.extend_from_slice(b",\"type\":");
    push_string(&mut out, &event.event_type);
    out.push(b'}');
    out
}

/// The event's hash, computed from its fields (the stored `hash` is ignored).
pub fn compute_hash(event: &Event) -> EventHash {
    *blake3::hash(&hash_input(event)).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(super) fn sample_event() -> Event {
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
        assert_eq!(
            canonical_json(&value).ok().as_deref(),
            Some(r#"{"a":[1e+21,0,"€"],"b":1}"#)
        );
    }

    #[test]
    fn hash_input_lists_every_field_in_code_point_order() {
        let event = sample_event();
        let input = String::from_utf8(hash_input(&event));
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
        assert_eq!(input.ok(), Some(expected));
    }

    #[test]
    fn every_hashed_field_changes_the_hash() {
        let base = sample_event();
        let original = compute_hash(&base);
        type Mutation = Box<dyn Fn(&mut Event)>;
        let mutations: Vec<Mutation> = vec![
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
            assert_ne!(compute_hash(&event), original, "mutation {index}");
        }
        let mut unhashed = base.clone();
        unhashed.hash = [9; 32];
        unhashed.signature = [9; 64];
        assert_eq!(compute_hash(&unhashed), original);
    }

    #[test]
    fn the_hash_input_is_the_jcs_encoding_of_the_whole_envelope() {
        // Compare the hand-written encoder with a general JCS encoder on awkward strings.
        let mut event = sample_event();
        event.actor = "user:\u{7f}\u{1}\u{1f}\"\\/\u{e9}\u{1F600}\u{2028}".into();
        event.request_id = Some("tab\there\u{8}\u{c}\r\n".into());
        event.payload = r#"{"a":[1,"\u0001"],"b":{"c":null}}"#.into();
        let envelope = json!({
            "actor": event.actor, "causation_id": null, "correlation_id": null, "id": event.id,
            "idempotency_key": null, "key_id": event.key_id, "occurred_at": event.occurred_at,
            "payload": serde_json::from_str::<Value>(&event.payload).unwrap(),
            "position": event.position, "prev_hash": hex::encode([7u8; 32]),
            "recorded_at": event.recorded_at, "request_id": event.request_id,
            "schema_version": event.schema_version, "stream": event.stream,
            "stream_prev_hash": null, "stream_version": event.stream_version,
            "type": event.event_type,
        });
        let mut expected = EVENT_HASH_DOMAIN.to_vec();
        expected.extend_from_slice(canonical_json(&envelope).unwrap().as_bytes());
        assert_eq!(
            String::from_utf8(hash_input(&event)).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }

    #[test]
    fn any_change_to_the_stored_payload_bytes_changes_the_hash() {
        let mut spaced = sample_event();
        spaced.payload = "{ \"title\" : \"Smith v. Jones\" }".into();
        assert_ne!(compute_hash(&spaced), compute_hash(&sample_event()));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn optional() -> impl Strategy<Value = Option<String>> {
        prop::option::of("\\PC{0,12}|[\\x00-\\x1f\"\\\\/]{0,4}")
    }

    proptest! {
        /// The hand-written encoder agrees with a general RFC 8785 encoder on any strings,
        /// control characters, quotes and non-ASCII included.
        #[test]
        fn the_hash_input_is_always_the_jcs_of_the_envelope(
            actor in "\\PC{0,16}",
            stream in "\\PC{0,16}|[\\x00-\\x1f]{1,3}",
            request_id in optional(),
            causation_id in optional(),
            position in 1u64..(1 << 53),
            version in 1u64..(1 << 53),
            text in "\\PC{0,24}",
        ) {
            let mut event = tests::sample_event();
            event.actor = actor;
            event.stream = stream;
            event.request_id = request_id;
            event.causation_id = causation_id;
            event.position = position;
            event.stream_version = version;
            event.payload = canonical_json(&json!({"text": text, "n": position})).unwrap();
            let envelope = json!({
                "actor": event.actor, "causation_id": event.causation_id,
                "correlation_id": event.correlation_id, "id": event.id,
                "idempotency_key": event.idempotency_key, "key_id": event.key_id,
                "occurred_at": event.occurred_at,
                "payload": serde_json::from_str::<Value>(&event.payload).unwrap(),
                "position": event.position, "prev_hash": event.prev_hash.map(hex::encode),
                "recorded_at": event.recorded_at, "request_id": event.request_id,
                "schema_version": event.schema_version, "stream": event.stream,
                "stream_prev_hash": event.stream_prev_hash.map(hex::encode),
                "stream_version": event.stream_version, "type": event.event_type,
            });
            let mut expected = EVENT_HASH_DOMAIN.to_vec();
            expected.extend_from_slice(canonical_json(&envelope).unwrap().as_bytes());
            prop_assert_eq!(hash_input(&event), expected);
        }
    }
}
