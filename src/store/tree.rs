//! Persistence of the log's Merkle tree and its signed checkpoints, beside the events in the
//! same database, behind one interface ([`TreeStore`]) that both backends implement.
//!
//! The tree is derived data: every node can be recomputed from the events' hashes, and
//! [`crate::transparency`] checks it against them. Checkpoints are not: each is a statement the
//! log signed, kept for ever; a stored checkpoint only ever gains cosignatures.

use async_trait::async_trait;

use super::StoreError;
use crate::log::envelope::EventHash;
use crate::log::merkle::{NodeId, TreeHash};

/// What the tree needs of one event: its position, hash and link to the event before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafData {
    pub position: u64,
    pub hash: EventHash,
    pub prev_hash: Option<EventHash>,
}

/// A checkpoint as stored: its size, root, the key that signed it and the signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub tree_size: u64,
    pub root: TreeHash,
    pub key_id: String,
    pub note: String,
    pub signed_at: String,
}

/// The tree and checkpoint tables of one backend.
#[async_trait]
pub trait TreeStore: Send + Sync {
    /// How many leaves the stored tree holds.
    async fn tree_size(&self) -> Result<u64, StoreError>;

    /// Position, hash and previous hash of up to `limit` events from `from_position` on.
    async fn leaf_data(&self, from_position: u64, limit: u32) -> Result<Vec<LeafData>, StoreError>;

    /// Stores `nodes` and moves the tree from `from_size` leaves to `to_size`, atomically, if
    /// the stored tree still has `from_size` leaves. `false` (nothing written) when another
    /// writer moved it first.
    async fn extend_tree(
        &self,
        from_size: u64,
        to_size: u64,
        nodes: &[(NodeId, TreeHash)],
    ) -> Result<bool, StoreError>;

    /// The stored hashes of `ids`, in the same order; `None` for a node not stored. At level 0
    /// the store holds each leaf's data (the event hash), not its leaf hash.
    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<TreeHash>>, StoreError>;

    /// Stores a checkpoint unless one of that size exists; `false` when it did.
    async fn insert_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<bool, StoreError>;

    /// Replaces the note of the checkpoint of `tree_size` (to add cosignatures).
    async fn update_checkpoint_note(&self, tree_size: u64, note: &str) -> Result<(), StoreError>;

    /// The checkpoint of exactly `tree_size` leaves.
    async fn checkpoint(&self, tree_size: u64) -> Result<Option<StoredCheckpoint>, StoreError>;

    /// The checkpoint with the most leaves.
    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError>;

    /// The smallest checkpoint holding at least `tree_size` leaves.
    async fn checkpoint_covering(
        &self,
        tree_size: u64,
    ) -> Result<Option<StoredCheckpoint>, StoreError>;

    /// Up to `limit` checkpoints smaller than `before` (all when `None`), largest first.
    async fn checkpoints(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>, StoreError>;
}

/// Reads a stored 32-byte hash.
pub(super) fn hash_of(bytes: Vec<u8>, what: &str) -> Result<[u8; 32], StoreError> {
    bytes.try_into().map_err(|_| StoreError::Database {
        detail: format!("a stored {what} is not 32 bytes"),
    })
}
