//! What a backup copies out of a log's database besides the events, and writes back on
//! restore, behind one interface ([`ArchiveStore`]) that both backends implement.
//!
//! Everything here is read in pages ordered by primary key, so a backup never loads a whole
//! table, and written back row for row exactly as it was read (an erased data key stays erased,
//! a sealed document stays sealed under the same key). [`recorded_plan`] turns events read from
//! an archive into a plan the backends' ordinary write path accepts: the events keep their
//! positions, hashes and signatures, and the write refuses them unless they extend the log
//! exactly where it ends.

use std::collections::HashMap;

use async_trait::async_trait;

use super::keys::StoredDataKey;
use super::plan::{BatchPlan, IdempotencyRecord, StreamTip};
use super::{LogHead, StoreError};
use crate::log::Event;
use crate::log::system_events::KEY_ROTATED;

/// A document's sealed content as stored (`document_contents`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SealedContent {
    pub key_id: String,
    pub content_hash: String,
    pub size: u64,
    #[serde(with = "hex_bytes")]
    pub sealed: Vec<u8>,
    pub stored_at: String,
}

/// A document blob stored before contents were sealed (`document_blobs`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredBlob {
    pub content_hash: String,
    pub size: u64,
    #[serde(with = "hex_bytes")]
    pub content: Vec<u8>,
    pub stored_at: String,
}

/// Paged reads of the non-derived tables beside the log, and their restoration.
#[async_trait]
pub trait ArchiveStore: Send + Sync {
    /// Up to `limit` data keys (wrapped or erased) after `after_key_id`, in key id order.
    async fn data_keys_page(
        &self,
        after_key_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredDataKey>, StoreError>;

    /// Writes a data key row exactly as given (an erased one stays erased); refused when the
    /// key id or the subject is taken.
    async fn restore_data_key(&self, key: &StoredDataKey) -> Result<(), StoreError>;

    /// Up to `limit` sealed contents after (`key_id`, `content_hash`), in that order.
    async fn sealed_contents_page(
        &self,
        after: (&str, &str),
        limit: u32,
    ) -> Result<Vec<SealedContent>, StoreError>;

    /// Writes a sealed content row exactly as given.
    async fn restore_sealed_content(&self, content: &SealedContent) -> Result<(), StoreError>;

    /// Up to `limit` blobs after `after_hash`, in content hash order.
    async fn blobs_page(&self, after_hash: &str, limit: u32)
    -> Result<Vec<StoredBlob>, StoreError>;

    /// Writes a blob row exactly as given.
    async fn restore_blob(&self, blob: &StoredBlob) -> Result<(), StoreError>;

    /// Up to `limit` idempotency records after `after_key`, in key order.
    async fn idempotency_page(
        &self,
        after_key: &str,
        limit: u32,
    ) -> Result<Vec<IdempotencyRecord>, StoreError>;
}

/// The plan that writes already recorded `events` (consecutive, in position order) after
/// `head`, with the idempotency records `idempotency`. The stream tips and the new head follow
/// from the events; the backend's write still checks every link against the stored log.
pub fn recorded_plan(
    _head: &LogHead,
    events: Vec<Event>,
    idempotency: Vec<IdempotencyRecord>,
) -> BatchPlan {
    let mut stream_tips: HashMap<String, StreamTip> = HashMap::new();
    let mut new_head = None;
    for event in &events {
        stream_tips.insert(
            event.stream.as_str().to_owned(),
            StreamTip {
                version: event.stream_version,
                hash: event.hash,
            },
        );
        new_head = Some(LogHead {
            position: event.position,
            hash: Some(event.hash),
            key_id: Some(key_in_force_after(event)),
        });
    }
    BatchPlan {
        events,
        stream_tips,
        idempotency,
        head: new_head,
        outcomes: Vec::new(),
        data_keys: Vec::new(),
    }
}

/// The key that signs the event after `event`: the next key named by a handover, else the
/// event's own.
fn key_in_force_after(event: &Event) -> String {
    if event.event_type == KEY_ROTATED
        && let Ok(payload) = serde_json::from_str::<serde_json::Value>(&event.payload)
        && let Some(next) = payload.get("next_key_id").and_then(|v| v.as_str())
    {
        return next.to_owned();
    }
    event.key_id.as_str().to_owned()
}

/// Bytes as lowercase hex in archives' JSON lines.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}
