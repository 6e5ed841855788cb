//! `LogEvent`: one event of the log as a subscriber receives it, with what verifies it.

use std::sync::Arc;

use async_graphql::{Json, Object};
use serde_json::Value;

use crate::integrations::gate::{Opened, matter_of};
use crate::log::Event;

/// One event of the log, with what verifies it.
pub struct LogEvent {
    pub(super) event: Arc<Event>,
    /// The payload, when the subscriber may read the part it belongs to.
    pub(super) opened: Option<Arc<Opened>>,
}

#[Object]
impl LogEvent {
    /// The event's position in the log: resume from the last one received plus one.
    async fn position(&self) -> u64 {
        self.event.position
    }
    async fn event_id(&self) -> &str {
        &self.event.id
    }
    async fn stream(&self) -> &str {
        &self.event.stream
    }
    async fn matter_number(&self) -> Option<&str> {
        matter_of(&self.event.stream)
    }
    async fn version(&self) -> u64 {
        self.event.stream_version
    }
    async fn event_type(&self) -> &str {
        &self.event.event_type
    }
    async fn schema_version(&self) -> u32 {
        self.event.schema_version
    }
    async fn actor(&self) -> &str {
        &self.event.actor
    }
    async fn occurred_at(&self) -> &str {
        &self.event.occurred_at
    }
    async fn recorded_at(&self) -> &str {
        &self.event.recorded_at
    }
    async fn request_id(&self) -> Option<&str> {
        self.event.request_id.as_deref()
    }
    async fn correlation_id(&self) -> Option<&str> {
        self.event.correlation_id.as_deref()
    }
    async fn causation_id(&self) -> Option<&str> {
        self.event.causation_id.as_deref()
    }
    async fn idempotency_key(&self) -> Option<&str> {
        self.event.idempotency_key.as_deref()
    }
    /// The previous event's hash (lowercase hex); null for the first event of the log.
    async fn prev_hash(&self) -> Option<String> {
        self.event.prev_hash.map(hex::encode)
    }
    /// The hash of the previous event of the same stream; null for a stream's first event.
    async fn stream_prev_hash(&self) -> Option<String> {
        self.event.stream_prev_hash.map(hex::encode)
    }
    async fn key_id(&self) -> &str {
        &self.event.key_id
    }
    /// blake3 hash, lowercase hex.
    async fn hash(&self) -> String {
        hex::encode(self.event.hash)
    }
    /// ed25519 signature over the hash, lowercase hex.
    async fn signature(&self) -> String {
        hex::encode(self.event.signature)
    }
    /// The payload exactly as hashed (canonical JSON, client data sealed), so that the hash
    /// can be recomputed; null when the subscriber may see only the event's metadata.
    async fn payload(&self) -> Option<&str> {
        self.opened.as_ref().map(|_| self.event.payload.as_str())
    }
    /// The payload with its client data opened; null with `payload`.
    async fn data(&self) -> Option<Json<Value>> {
        self.opened
            .as_ref()
            .map(|opened| Json(opened.payload.clone()))
    }
    /// Whether the event's client data was erased (its `private` member is then empty).
    async fn erased(&self) -> bool {
        self.opened.as_ref().is_some_and(|opened| opened.erased)
    }
}
