//! The log's Merkle tree, kept up to date from the events and asked for roots and proofs.
//!
//! [`LogTree::catch_up`] reads the events' hashes after the stored tree's end, checks that each
//! links to the one before (a tree is never grown over a broken chain), and stores the perfect
//! subtrees each leaf completes, a page at a time. Any number of processes may do this on one
//! PostgreSQL database: the store moves the tree's size forward only from where the writer
//! found it, so a writer that lost the race reloads and carries on from the new end.
//!
//! A root or proof for any size up to the stored tree's is computed from the stored nodes it
//! names (at most a few dozen, fetched in one query): nothing is rebuilt from the leaves.
//! Position `p` of the log is leaf `p - 1` of the tree.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::Mutex;

use crate::log::envelope::EventHash;
use crate::log::merkle::{
    Frontier, LeafRange, NodeId, TreeHash, consistency_ranges, empty_root, inclusion_ranges,
    leaf_hash,
};
use crate::store::{LogStore, StoreError};

/// Leaves read and stored per step of [`LogTree::catch_up`].
const LEAVES_PER_STEP: u32 = 4_096;

/// Why a root or proof could not be given.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TreeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the tree holds {size} events; {requested} were asked for")]
    BeyondTree { size: u64, requested: u64 },
    #[error("position {position} is not in a tree of {size} events")]
    PositionOutOfRange { position: u64, size: u64 },
    #[error("tree size {first} is larger than tree size {second}")]
    SizesOutOfOrder { first: u64, second: u64 },
    #[error("the event at position {position} does not link to the one before it")]
    BrokenChain { position: u64 },
    #[error("the stored tree lacks node {level}/{index}")]
    MissingNode { level: u8, index: u64 },
}

/// An inclusion proof: the event at `position` is leaf `position - 1` of the tree of `tree_size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub position: u64,
    pub tree_size: u64,
    /// The event hash: the leaf's data.
    pub event_hash: EventHash,
    /// The sibling hashes, bottom up.
    pub path: Vec<TreeHash>,
}

impl InclusionProof {
    pub fn leaf_index(&self) -> u64 {
        self.position - 1
    }

    /// Checks the proof against a root.
    pub fn verify(&self, root: &TreeHash) -> bool {
        self.position >= 1
            && crate::log::merkle::verify_inclusion(
                self.leaf_index(),
                self.tree_size,
                &leaf_hash(&self.event_hash),
                &self.path,
                root,
            )
            .is_ok()
    }
}

/// A consistency proof: the tree of `first` leaves is a prefix of the tree of `second`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    pub path: Vec<TreeHash>,
}

impl ConsistencyProof {
    /// Checks the proof between two roots.
    pub fn verify(&self, first_root: &TreeHash, second_root: &TreeHash) -> bool {
        crate::log::merkle::verify_consistency(
            self.first,
            self.second,
            first_root,
            second_root,
            &self.path,
        )
        .is_ok()
    }
}

/// The tree's right edge as this process last saw it, with the hash of its last leaf.
#[derive(Debug, Clone)]
struct Edge {
    frontier: Frontier,
    last_hash: Option<EventHash>,
}

/// The log's Merkle tree over a store.
pub struct LogTree {
    store: Arc<dyn LogStore>,
    edge: Mutex<Option<Edge>>,
    /// The largest size this handle has seen stored: sizes only grow, so a request up to it
    /// needs no query.
    known_size: AtomicU64,
    /// Nodes of the upper levels, which every proof crosses. Stored nodes never change, so a
    /// cached one is as good as a fetched one.
    upper: RwLock<HashMap<NodeId, TreeHash>>,
}

/// Nodes at this level and above are kept in memory once read: 2 per 2^level events.
const CACHED_FROM_LEVEL: u8 = 8;
/// The most nodes cached (about 50 MB); beyond it nodes are read from the store each time.
const MAX_CACHED_NODES: usize = 1 << 20;

impl LogTree {
    pub fn new(store: Arc<dyn LogStore>) -> Self {
        LogTree {
            store,
            edge: Mutex::new(None),
            known_size: AtomicU64::new(0),
            upper: RwLock::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Arc<dyn LogStore> {
        &self.store
    }

    /// How many events the stored tree holds.
    pub async fn size(&self) -> Result<u64, TreeError> {
        let size = self.store.tree().tree_size().await?;
        self.known_size.fetch_max(size, Ordering::Relaxed);
        Ok(size)
    }

    /// Extends the stored tree to the end of the log as it is now; returns the new size.
    pub async fn catch_up(&self) -> Result<u64, TreeError> {
        let mut guard = self.edge.lock().await;
        loop {
            let mut edge = match guard.take() {
                Some(edge) => edge,
                None => self.load_edge().await?,
            };
            let from = edge.frontier.size();
            let leaves = self
                .store
                .tree()
                .leaf_data(from + 1, LEAVES_PER_STEP)
                .await?;
            if leaves.is_empty() {
                self.known_size.fetch_max(from, Ordering::Relaxed);
                *guard = Some(edge);
                return Ok(from);
            }

            // Grow the edge over the page, refusing any event that does not extend the chain.
            let mut nodes = Vec::with_capacity(leaves.len() * 2);
            for leaf in &leaves {
                let expected = edge.frontier.size() + 1;
                if leaf.position != expected || leaf.prev_hash != edge.last_hash {
                    return Err(TreeError::BrokenChain { position: expected });
                }
                // Level 0 stores the leaf's data, the event hash, so that a proof can name
                // the event without reading the events table; its leaf hash is derived.
                for (id, hash) in edge.frontier.push(&leaf.hash) {
                    nodes.push((id, if id.level == 0 { leaf.hash } else { hash }));
                }
                edge.last_hash = Some(leaf.hash);
            }
            let to = edge.frontier.size();
            if self.store.tree().extend_tree(from, to, &nodes).await? {
                self.known_size.fetch_max(to, Ordering::Relaxed);
                *guard = Some(edge);
            }
            // Otherwise another process moved the tree first: reload its end and go on.
        }
    }

    async fn load_edge(&self) -> Result<Edge, TreeError> {
        let size = self.store.tree().tree_size().await?;
        let ids = Frontier::peak_ids(size);
        let hashes = self.nodes(&ids).await?;
        let frontier = Frontier::from_peaks(size, &hashes).ok_or(TreeError::MissingNode {
            level: 0,
            index: size,
        })?;
        let last_hash = match size {
            0 => None,
            _ => {
                let last = self.store.tree().leaf_data(size, 1).await?;
                match last.first() {
                    Some(leaf) if leaf.position == size => Some(leaf.hash),
                    _ => return Err(TreeError::BrokenChain { position: size }),
                }
            }
        };
        Ok(Edge {
            frontier,
            last_hash,
        })
    }

    /// The stored hashes of `ids`, every one of which must exist.
    async fn nodes(&self, ids: &[NodeId]) -> Result<Vec<TreeHash>, TreeError> {
        let mut hashes = self.stored(ids).await?;
        for (id, hash) in ids.iter().zip(hashes.iter_mut()) {
            if id.level == 0 {
                *hash = leaf_hash(hash);
            }
        }
        Ok(hashes)
    }

    /// What the store holds for `ids`: subtree roots, and event hashes at level 0.
    async fn stored(&self, ids: &[NodeId]) -> Result<Vec<TreeHash>, TreeError> {
        let mut hashes: Vec<Option<TreeHash>> = {
            let upper = self
                .upper
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            ids.iter().map(|id| upper.get(id).copied()).collect()
        };
        let missing: Vec<NodeId> = ids
            .iter()
            .zip(&hashes)
            .filter(|(_, hash)| hash.is_none())
            .map(|(id, _)| *id)
            .collect();
        if !missing.is_empty() {
            let found = self.store.tree().tree_nodes(&missing).await?;
            let mut upper = self
                .upper
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut found = missing.iter().zip(found);
            for slot in hashes.iter_mut().filter(|hash| hash.is_none()) {
                if let Some((id, Some(hash))) = found.next() {
                    *slot = Some(hash);
                    if id.level >= CACHED_FROM_LEVEL && upper.len() < MAX_CACHED_NODES {
                        upper.insert(*id, hash);
                    }
                }
            }
        }
        ids.iter()
            .zip(hashes)
            .map(|(id, hash)| {
                hash.ok_or(TreeError::MissingNode {
                    level: id.level,
                    index: id.index,
                })
            })
            .collect()
    }

    /// The hashes of `ranges`, and the event hash at position `with_event` if asked for, from
    /// one fetch of the nodes they are made of.
    async fn range_hashes(
        &self,
        ranges: &[LeafRange],
        with_event: Option<u64>,
    ) -> Result<(Vec<TreeHash>, Option<EventHash>), TreeError> {
        let pieces: Vec<Vec<NodeId>> = ranges.iter().map(|range| range.pieces()).collect();
        let event = with_event.map(|position| NodeId {
            level: 0,
            index: position - 1,
        });
        let mut ids: Vec<NodeId> = pieces.iter().flatten().copied().chain(event).collect();
        ids.sort_unstable();
        ids.dedup();
        let stored: HashMap<NodeId, TreeHash> =
            ids.iter().copied().zip(self.stored(&ids).await?).collect();
        let hash_of = |id: &NodeId| {
            let stored = stored.get(id).copied().ok_or(TreeError::MissingNode {
                level: id.level,
                index: id.index,
            })?;
            Ok::<_, TreeError>(if id.level == 0 {
                leaf_hash(&stored)
            } else {
                stored
            })
        };
        let hashes = pieces
            .iter()
            .map(|pieces| {
                let hashes = pieces.iter().map(hash_of).collect::<Result<Vec<_>, _>>()?;
                LeafRange::fold(&hashes).ok_or(TreeError::MissingNode { level: 0, index: 0 })
            })
            .collect::<Result<Vec<TreeHash>, TreeError>>()?;
        let event_hash = event.and_then(|id| stored.get(&id).copied());
        Ok((hashes, event_hash))
    }

    async fn require_size(&self, requested: u64) -> Result<(), TreeError> {
        if requested <= self.known_size.load(Ordering::Relaxed) {
            return Ok(());
        }
        let size = self.size().await?;
        if requested > size {
            return Err(TreeError::BeyondTree { size, requested });
        }
        Ok(())
    }

    /// The root of the tree of the first `size` events.
    pub async fn root(&self, size: u64) -> Result<TreeHash, TreeError> {
        if size == 0 {
            return Ok(empty_root());
        }
        self.require_size(size).await?;
        let (hashes, _) = self
            .range_hashes(
                &[LeafRange {
                    start: 0,
                    end: size,
                }],
                None,
            )
            .await?;
        hashes
            .first()
            .copied()
            .ok_or(TreeError::MissingNode { level: 0, index: 0 })
    }

    /// The inclusion proof of the event at `position` in the tree of `tree_size` events.
    pub async fn inclusion_proof(
        &self,
        position: u64,
        tree_size: u64,
    ) -> Result<InclusionProof, TreeError> {
        if position == 0 || position > tree_size {
            return Err(TreeError::PositionOutOfRange {
                position,
                size: tree_size,
            });
        }
        self.require_size(tree_size).await?;
        let ranges = inclusion_ranges(position - 1, tree_size).map_err(|_| {
            TreeError::PositionOutOfRange {
                position,
                size: tree_size,
            }
        })?;
        let (path, event_hash) = self.range_hashes(&ranges, Some(position)).await?;
        let event_hash = event_hash.ok_or(TreeError::MissingNode {
            level: 0,
            index: position - 1,
        })?;
        Ok(InclusionProof {
            position,
            tree_size,
            event_hash,
            path,
        })
    }

    /// The consistency proof from the tree of `first` events to the tree of `second`.
    pub async fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, TreeError> {
        let ranges = consistency_ranges(first, second)
            .map_err(|_| TreeError::SizesOutOfOrder { first, second })?;
        self.require_size(second).await?;
        let (path, _) = self.range_hashes(&ranges, None).await?;
        Ok(ConsistencyProof {
            first,
            second,
            path,
        })
    }
}
