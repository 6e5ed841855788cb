//! What a webhook carries: its id, and the JSON body describing one event of the log.
//!
//! The body follows the shape Standard Webhooks recommends, `{"type", "timestamp", "data"}`:
//!
//! ```json
//! {"type": "matter.note_added", "timestamp": "2026-12-03T10:27:10.123456Z",
//!  "data": {"position": 42, "id": "...", "stream": "matter:2026-0001", "matter": "2026-0001",
//!           "schema_version": 1, "actor": "user:ada", "occurred_at": "...",
//!           "recorded_at": "...", "hash": "<hex>", "signature": "<hex>", "key_id": "...",
//!           "payload": {...}}}
//! ```
//!
//! `payload`, the event's payload with its client data opened, is present only when the
//! endpoint's client may read that part of the matter; otherwise the webhook is thin and the
//! client reads the event through the API, where the read is authorised and recorded. The
//! `hash` and `signature` are the log's, so a receiver can check the event against the log's
//! keys and checkpoints.

use serde_json::{Map, Value, json};

use crate::integrations::gate::Opened;
use crate::log::Event;

/// The `webhook-id` of an event's delivery to an endpoint: the same for every attempt and
/// every replay, so the receiver can use it to drop duplicates. `msg_` and 32 hex digits.
pub fn webhook_id(endpoint_id: &str, event_id: &str) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("docket 2026 webhook id");
    hasher.update(endpoint_id.as_bytes());
    hasher.update(b"\n");
    hasher.update(event_id.as_bytes());
    let digest = hasher.finalize();
    format!("msg_{}", hex::encode(&digest.as_bytes()[..16]))
}

/// The body of a delivery of `event`, compact JSON.
pub fn body(event: &Event, opened: Option<&Opened>) -> Vec<u8> {
    let mut data = Map::new();
    data.insert("position".into(), json!(event.position));
    data.insert("id".into(), json!(event.id));
    data.insert("stream".into(), json!(event.stream));
    if let Some(number) = event.stream.strip_prefix("matter:") {
        data.insert("matter".into(), json!(number));
    }
    data.insert("schema_version".into(), json!(event.schema_version));
    data.insert("actor".into(), json!(event.actor));
    data.insert("occurred_at".into(), json!(event.occurred_at));
    data.insert("recorded_at".into(), json!(event.recorded_at));
    data.insert("hash".into(), json!(hex::encode(event.hash)));
    data.insert("signature".into(), json!(hex::encode(event.signature)));
    data.insert("key_id".into(), json!(event.key_id));
    if let Some(opened) = opened {
        data.insert("payload".into(), opened.payload.clone());
        if opened.erased {
            data.insert("erased".into(), json!(true));
        }
    }
    let body = json!({
        "type": event.event_type,
        "timestamp": event.recorded_at,
        "data": Value::Object(data),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            position: 42,
            id: "0190a3b4-7c1d-7000-8000-000000000001".into(),
            stream: "matter:2026-0001".into(),
            stream_version: 3,
            event_type: "matter.note_added".into(),
            schema_version: 1,
            payload: r#"{"note_id":"n"}"#.into(),
            actor: "user:ada".into(),
            request_id: None,
            occurred_at: "2026-12-03T10:27:10.000000Z".into(),
            recorded_at: "2026-12-03T10:27:10.123456Z".into(),
            correlation_id: None,
            causation_id: None,
            idempotency_key: None,
            prev_hash: None,
            stream_prev_hash: None,
            key_id: "k1".into(),
            hash: [1; 32],
            signature: [2; 64],
        }
    }

    #[test]
    fn webhook_ids_are_stable_per_endpoint_and_event() {
        let id = webhook_id("we_1", "e1");
        assert_eq!(id, webhook_id("we_1", "e1"));
        assert_ne!(id, webhook_id("we_2", "e1"));
        assert_ne!(id, webhook_id("we_1", "e2"));
        assert!(id.starts_with("msg_") && id.len() == 36 && !id.contains('.'));
    }

    #[test]
    fn thin_bodies_carry_metadata_only() {
        let thin: Value = serde_json::from_slice(&body(&event(), None)).unwrap();
        assert_eq!(thin["type"], "matter.note_added");
        assert_eq!(thin["timestamp"], "2026-12-03T10:27:10.123456Z");
        assert_eq!(thin["data"]["position"], 42);
        assert_eq!(thin["data"]["matter"], "2026-0001");
        assert_eq!(thin["data"]["hash"], hex::encode([1u8; 32]));
        assert!(thin["data"].get("payload").is_none());
        let opened = Opened {
            payload: json!({"note_id": "n", "private": {}}),
            erased: true,
        };
        let full: Value = serde_json::from_slice(&body(&event(), Some(&opened))).unwrap();
        assert_eq!(full["data"]["payload"]["note_id"], "n");
        assert_eq!(full["data"]["erased"], true);
    }
}
