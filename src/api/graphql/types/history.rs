//! Events of a matter: from the timeline read model, and straight from the signed log.

use async_graphql::Object;

use crate::read;
use crate::service::history::HistoryEntry;

#[derive(Clone)]
pub struct TimelineEntry(pub read::TimelineRow);

#[Object]
impl TimelineEntry {
    async fn position(&self) -> u64 {
        u64::try_from(self.0.position).unwrap_or(0)
    }
    async fn version(&self) -> u64 {
        u64::try_from(self.0.stream_version).unwrap_or(0)
    }
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    async fn occurred_at(&self) -> &str {
        &self.0.occurred_at
    }
    async fn recorded_at(&self) -> &str {
        &self.0.recorded_at
    }
    /// Names of the fields the event set (client data is named, never shown).
    async fn changed_fields(&self) -> Vec<String> {
        serde_json::from_str(&self.0.changed_fields).unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct HistoryEvent(pub HistoryEntry);

#[Object]
impl HistoryEvent {
    async fn position(&self) -> u64 {
        self.0.event.position
    }
    async fn version(&self) -> u64 {
        self.0.event.stream_version
    }
    async fn event_id(&self) -> &str {
        &self.0.event.id
    }
    async fn event_type(&self) -> &str {
        &self.0.event.event_type
    }
    async fn schema_version(&self) -> u32 {
        self.0.event.schema_version
    }
    async fn actor(&self) -> &str {
        &self.0.event.actor
    }
    async fn occurred_at(&self) -> &str {
        &self.0.event.occurred_at
    }
    async fn recorded_at(&self) -> &str {
        &self.0.event.recorded_at
    }
    async fn changed_fields(&self) -> &[String] {
        &self.0.changed_fields
    }
    /// blake3 hash, lowercase hex.
    async fn hash(&self) -> String {
        hex::encode(self.0.event.hash)
    }
    /// ed25519 signature, lowercase hex.
    async fn signature(&self) -> String {
        hex::encode(self.0.event.signature)
    }
    async fn key_id(&self) -> &str {
        &self.0.event.key_id
    }
    /// Whether the hash recomputes, the signature verifies under a key the log introduced, and
    /// the event links to the stream's previous one.
    async fn verified(&self) -> bool {
        self.0.verified
    }
}
