//! What a client is given about checkpoints and proofs: the same shapes in GraphQL, in the JSON
//! of the HTTP routes and in `docket prove`'s output (field names in camelCase). Hashes are
//! lowercase hex; a checkpoint's root is also given in base64, as its note spells it.

use async_graphql::SimpleObject;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::log::checkpoint::SignedCheckpoint;
use crate::log::merkle::{TreeHash, leaf_hash};
use crate::store::StoredCheckpoint;
use crate::transparency::{ConsistencyProof, InclusionProof};

/// A checkpoint the log signed: the root of the tree of its first `treeSize` events.
#[derive(SimpleObject, Serialize, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "Checkpoint")]
#[serde(rename_all = "camelCase")]
pub struct CheckpointView {
    /// The log's name, the note's first line and the name its signature is made under.
    pub origin: String,
    /// How many events the tree holds: positions 1 to `treeSize`.
    pub tree_size: u64,
    /// The Merkle root (SHA-256, RFC 6962), lowercase hex.
    pub root_hash: String,
    /// The same root in standard base64, as the note's third line has it.
    pub root_hash_base64: String,
    /// The signed note (C2SP `tlog-checkpoint`), exactly as stored, with any cosignatures.
    pub note: String,
    /// The id of the log key that signed it: the key in force after the first `treeSize`
    /// events.
    pub key_id: String,
    /// When it was signed (RFC 3339, UTC).
    pub signed_at: String,
}

impl CheckpointView {
    /// The view of a stored checkpoint; `None` when its note does not parse, which only a
    /// damaged store can cause.
    pub fn from_stored(stored: StoredCheckpoint) -> Option<Self> {
        let signed = SignedCheckpoint::parse(&stored.note).ok()?;
        Some(CheckpointView {
            origin: signed.checkpoint.origin,
            tree_size: stored.tree_size,
            root_hash: hex::encode(stored.root),
            root_hash_base64: STANDARD.encode(stored.root),
            note: stored.note,
            key_id: stored.key_id,
            signed_at: stored.signed_at,
        })
    }
}

/// That the event at `position` is leaf `leafIndex` of the tree of `treeSize` events.
///
/// To check it: hash `eventHash` as a leaf (SHA-256 of `0x00 || bytes`, which is `leafHash`)
/// and fold `path` into it (RFC 9162 section 2.1.3.2); the result must be `rootHash`, and
/// `checkpoint.rootHash` when a checkpoint is given.
#[derive(SimpleObject, Serialize, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "InclusionProof")]
#[serde(rename_all = "camelCase")]
pub struct InclusionProofView {
    pub position: u64,
    pub tree_size: u64,
    /// `position - 1`.
    pub leaf_index: u64,
    /// The event's blake3 hash (the leaf's data), lowercase hex.
    pub event_hash: String,
    /// SHA-256 of `0x00` and the event hash, lowercase hex.
    pub leaf_hash: String,
    /// The sibling hashes, bottom up, lowercase hex.
    pub path: Vec<String>,
    /// The root of the tree of `treeSize` events the path leads to, lowercase hex.
    pub root_hash: String,
    /// The signed checkpoint of `treeSize` events, when one is stored.
    pub checkpoint: Option<CheckpointView>,
}

impl InclusionProofView {
    pub fn new(
        proof: &InclusionProof,
        root: &TreeHash,
        checkpoint: Option<CheckpointView>,
    ) -> Self {
        InclusionProofView {
            position: proof.position,
            tree_size: proof.tree_size,
            leaf_index: proof.leaf_index(),
            event_hash: hex::encode(proof.event_hash),
            leaf_hash: hex::encode(leaf_hash(&proof.event_hash)),
            path: proof.path.iter().map(hex::encode).collect(),
            root_hash: hex::encode(root),
            checkpoint,
        }
    }
}

/// That the tree of `first` events is a prefix of the tree of `second` events: nothing among
/// the first `first` events was changed, removed or reordered between the two.
///
/// To check it: RFC 9162 section 2.1.4.2 with `firstRoot`, `secondRoot` and `path`.
#[derive(SimpleObject, Serialize, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "ConsistencyProof")]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyProofView {
    pub first: u64,
    pub second: u64,
    /// The proof's hashes, in proof order, lowercase hex (empty when the sizes are equal).
    pub path: Vec<String>,
    /// The root of the tree of `first` events, lowercase hex.
    pub first_root: String,
    /// The root of the tree of `second` events, lowercase hex.
    pub second_root: String,
    /// The signed checkpoint of `first` events, when one is stored.
    pub first_checkpoint: Option<CheckpointView>,
    /// The signed checkpoint of `second` events, when one is stored.
    pub second_checkpoint: Option<CheckpointView>,
}

impl ConsistencyProofView {
    pub fn new(
        proof: &ConsistencyProof,
        roots: (&TreeHash, &TreeHash),
        checkpoints: (Option<CheckpointView>, Option<CheckpointView>),
    ) -> Self {
        ConsistencyProofView {
            first: proof.first,
            second: proof.second,
            path: proof.path.iter().map(hex::encode).collect(),
            first_root: hex::encode(roots.0),
            second_root: hex::encode(roots.1),
            first_checkpoint: checkpoints.0,
            second_checkpoint: checkpoints.1,
        }
    }
}

/// A page of checkpoints, largest first.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointPage {
    pub checkpoints: Vec<CheckpointView>,
    /// Pass as `before` for the next (smaller) page; null when this page is the last.
    pub next_before: Option<u64>,
}
