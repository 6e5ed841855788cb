//! The log's signing keys by position: which key was in force after any number of events, as
//! the genesis and key-rotation events on the `system` stream say.

use ed25519_dalek::VerifyingKey;
use serde_json::Value;

use crate::log::keys::parse_public_key;
use crate::log::system_events::{GENESIS, KEY_ROTATED};
use crate::log::{Event, StreamId};
use crate::store::{LogStore, StoreError};

/// A key the log introduced, and the position of the event that introduced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntroducedKey {
    pub position: u64,
    pub key_id: String,
    pub public_key: VerifyingKey,
}

/// Every key the log introduced, in log order.
#[derive(Debug, Clone, Default)]
pub struct KeyHistory {
    keys: Vec<IntroducedKey>,
}

impl KeyHistory {
    /// Reads the genesis and rotation events from the store.
    pub async fn load(store: &dyn LogStore) -> Result<Self, StoreError> {
        let mut events = Vec::new();
        let mut from = 1;
        loop {
            let page = store
                .read_stream_page(StreamId::system().as_str(), from, 1_000)
                .await?;
            let Some(last) = page.last() else { break };
            from = last.stream_version + 1;
            events.extend(page);
        }
        Ok(KeyHistory::from_events(&events))
    }

    /// The keys introduced by `events` (other events are ignored). Only well-formed payloads
    /// count; `docket verify` reports malformed ones.
    pub fn from_events(events: &[Event]) -> Self {
        let mut keys = Vec::new();
        for event in events {
            let Ok(payload) = serde_json::from_str::<Value>(&event.payload) else {
                continue;
            };
            let (id, key) = match event.event_type.as_str() {
                GENESIS => (payload.get("key_id"), payload.get("public_key")),
                KEY_ROTATED => (payload.get("next_key_id"), payload.get("next_public_key")),
                _ => continue,
            };
            if let (Some(Value::String(id)), Some(Value::String(key))) = (id, key)
                && let Some(public_key) = parse_public_key(key)
            {
                keys.push(IntroducedKey {
                    position: event.position,
                    key_id: id.clone(),
                    public_key,
                });
            }
        }
        keys.sort_by_key(|key| key.position);
        KeyHistory { keys }
    }

    /// The key in force once the first `size` events exist: the last introduced at a position
    /// up to `size`. `None` for size 0.
    pub fn in_force_after(&self, size: u64) -> Option<&IntroducedKey> {
        self.keys.iter().rev().find(|key| key.position <= size)
    }

    pub fn keys(&self) -> &[IntroducedKey] {
        &self.keys
    }
}
