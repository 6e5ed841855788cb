//! A matter's history straight from the log: every event with its hash and signature, and
//! whether each verifies on its own (hash recomputed, signature under the key the log
//! introduced, link to the stream's previous event). Whole-log verification is `docket verify`.

use std::collections::HashMap;

use futures::TryStreamExt;
use serde_json::Value;

use crate::domain::RecordedEvent;
use crate::log::canonical::compute_hash;
use crate::log::keys::{parse_public_key, verify_event_signature};
use crate::log::system_events::{GENESIS, KEY_ROTATED};
use crate::log::{Event, StreamId};
use crate::store::EventLog;

use super::ServiceError;

/// One event of a matter's history.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub event: Event,
    pub changed_fields: Vec<String>,
    pub verified: bool,
}

/// The public keys the log introduced (genesis and rotations), by key id.
pub async fn log_keys(log: &EventLog) -> Result<HashMap<String, String>, ServiceError> {
    let events: Vec<Event> = log
        .stream_from(StreamId::system().as_str(), 1)
        .try_collect()
        .await?;
    let mut keys = HashMap::new();
    for event in events {
        let Ok(payload) = serde_json::from_str::<Value>(&event.payload) else {
            continue;
        };
        let (id, key) = match event.event_type.as_str() {
            GENESIS => (payload.get("key_id"), payload.get("public_key")),
            KEY_ROTATED => (payload.get("next_key_id"), payload.get("next_public_key")),
            _ => continue,
        };
        if let (Some(Value::String(id)), Some(Value::String(key))) = (id, key) {
            keys.insert(id.clone(), key.clone());
        }
    }
    Ok(keys)
}

/// The stream's events with their checks, oldest first, up to `limit` from `from_version`.
pub async fn stream_history(
    log: &EventLog,
    stream: &StreamId,
    from_version: u64,
    limit: usize,
) -> Result<Vec<HistoryEntry>, ServiceError> {
    let keys = log_keys(log).await?;
    let mut previous_hash = None;
    let start = from_version.max(1);
    if start > 1 {
        let before = log
            .store()
            .read_stream_page(stream.as_str(), start - 1, 1)
            .await?;
        previous_hash = before.first().map(|event| event.hash);
    }
    let events: Vec<Event> = log
        .stream_from(stream.as_str(), start)
        .try_collect()
        .await?;
    let mut entries = Vec::with_capacity(events.len().min(limit));
    for event in events.into_iter().take(limit) {
        let changed_fields = match RecordedEvent::decode(&event) {
            Ok(Some(recorded)) => recorded.changed_fields(),
            _ => Vec::new(),
        };
        let hash_ok = compute_hash(&event) == event.hash;
        let signature_ok = keys
            .get(&event.key_id)
            .and_then(|key| parse_public_key(key))
            .is_some_and(|key| verify_event_signature(&key, &event.hash, &event.signature));
        let link_ok = event.stream_prev_hash == previous_hash;
        previous_hash = Some(event.hash);
        entries.push(HistoryEntry {
            verified: hash_ok && signature_ok && link_ok,
            changed_fields,
            event,
        });
    }
    Ok(entries)
}
