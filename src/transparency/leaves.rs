//! Reading the events' hashes (the tree's leaves) in position order, as a scan that can be
//! continued and audited.
//!
//! A [`LeafScan`] folds the hashes it has read into a Merkle frontier, so the root at any size it
//! reaches is known without reading the first leaves again. What it does not keep is the hashes
//! themselves: to notice a hash changed after it was read, it keeps a digest of every block of
//! [`BLOCK`] leaves it has read (and of the block it is part way through), and
//! [`LeafScan::audit`] reads a few blocks again at each call, in turn, and compares. Over enough
//! calls every block read is read again, so a rewrite anywhere in what was scanned is found; each
//! call costs a bounded number of reads, whatever the log's size.
//!
//! Memory: the frontier (O(log n) hashes) and 32 bytes per block of 4,096 events.

use std::collections::{BTreeMap, BTreeSet};

use crate::log::envelope::EventHash;
use crate::log::merkle::{Frontier, TreeHash, empty_root};
use crate::store::{LogStore, StoreError};

/// Leaves per block: one read, and one digest kept.
pub const BLOCK: u32 = 4_096;

/// Blocks [`LeafScan::audit`] reads again per call: with the background verifier's default
/// interval of a minute, a log of ten million events is read again in full every two and a
/// half hours.
pub const AUDITED_PER_CALL: usize = 16;

/// The roots a scan found at the sizes asked for.
#[derive(Debug, Clone)]
pub(crate) struct Scan {
    /// How many events were read in unbroken position order.
    pub events: u64,
    pub roots: BTreeMap<u64, TreeHash>,
    /// The first position whose event does not follow the one before it (a gap or a broken
    /// link), if any.
    pub chain_break: Option<u64>,
}

/// A block read again whose hashes are not those read before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// The block's first and last positions: a hash between them changed.
    pub first: u64,
    pub last: u64,
}

/// The events' hashes read so far, in position order from 1: a reading of the leaves that can
/// be continued where it stopped, and audited.
#[derive(Debug, Clone)]
pub struct LeafScan {
    /// Leaves per block ([`BLOCK`]).
    block: u32,
    /// Blocks read again per audit ([`AUDITED_PER_CALL`]).
    audited_per_call: usize,
    frontier: Frontier,
    last: Option<EventHash>,
    chain_break: Option<u64>,
    /// A digest of each complete block read, in order.
    blocks: Vec<[u8; 32]>,
    /// The digest of the leaves read since the last complete block.
    partial: blake3::Hasher,
    /// The next block [`LeafScan::audit`] reads again (`blocks.len()` is the partial one).
    audit_next: usize,
}

impl Default for LeafScan {
    fn default() -> Self {
        LeafScan::with_blocks(BLOCK, AUDITED_PER_CALL)
    }
}

impl LeafScan {
    /// A scan with blocks of `block` leaves (at least 1), of which [`LeafScan::audit`] reads
    /// `audited_per_call` again per call (at least 1): smaller blocks find a rewrite more
    /// precisely and keep more digests.
    pub fn with_blocks(block: u32, audited_per_call: usize) -> Self {
        LeafScan {
            block: block.max(1),
            audited_per_call: audited_per_call.max(1),
            frontier: Frontier::default(),
            last: None,
            chain_break: None,
            blocks: Vec::new(),
            partial: blake3::Hasher::new(),
            audit_next: 0,
        }
    }

    /// How many events' hashes were read.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Reads on up to the largest of `sizes`, noting the root at each size not yet passed (and
    /// at the present size, when asked for). A broken link is noted and the reading goes on
    /// (the roots are still those of the stored hashes); a missing position ends it, since no
    /// tree of the log's positions has one, and a later call tries that position again.
    pub(crate) async fn scan_to(
        &mut self,
        store: &dyn LogStore,
        sizes: &BTreeSet<u64>,
    ) -> Result<Scan, StoreError> {
        let mut roots = BTreeMap::new();
        if sizes.contains(&self.size()) {
            let root = match self.size() {
                0 => empty_root(),
                _ => self.frontier.root(),
            };
            roots.insert(self.size(), root);
        }
        let end = sizes.last().copied().unwrap_or(0);
        let mut gap = None;
        'pages: while self.size() < end {
            let page = store.tree().leaf_data(self.size() + 1, self.block).await?;
            if page.is_empty() {
                break;
            }
            for leaf in page {
                let expected = self.size() + 1;
                if leaf.position != expected {
                    gap = Some(expected);
                    break 'pages;
                }
                if leaf.prev_hash != self.last {
                    self.chain_break.get_or_insert(expected);
                }
                self.frontier.push(&leaf.hash);
                self.last = Some(leaf.hash);
                self.partial.update(&leaf.hash);
                if expected.is_multiple_of(u64::from(self.block)) {
                    self.blocks.push(*self.partial.finalize().as_bytes());
                    self.partial.reset();
                }
                if sizes.contains(&expected) {
                    roots.insert(expected, self.frontier.root());
                }
                if expected == end {
                    break 'pages;
                }
            }
        }
        Ok(Scan {
            events: self.size(),
            roots,
            chain_break: self.chain_break.into_iter().chain(gap).min(),
        })
    }

    /// Reads a few blocks of what was scanned again ([`AUDITED_PER_CALL`] by default), taking
    /// up where the last call stopped and starting over after the partial block, and compares
    /// each with the digest kept of it. The first block that differs is returned; the scan can
    /// then no longer vouch for the roots it computed, and should be started over.
    pub async fn audit(&mut self, store: &dyn LogStore) -> Result<Option<Rewritten>, StoreError> {
        let block = u64::from(self.block);
        // At most one round of every block (the partial one included) per call.
        for _ in 0..self.audited_per_call.min(self.blocks.len() + 1) {
            if self.size() == 0 {
                return Ok(None);
            }
            let index = self.audit_next.min(self.blocks.len());
            let first = index as u64 * block + 1;
            let last = self.size().min(first + block - 1);
            if first > last {
                // The partial block is empty: the scan stopped at a block's end.
                self.audit_next = 0;
                continue;
            }
            let limit = u32::try_from(last - first + 1).unwrap_or(self.block);
            let page = store.tree().leaf_data(first, limit).await?;
            let mut digest = blake3::Hasher::new();
            let mut expected = first;
            for leaf in &page {
                if leaf.position != expected || expected > last {
                    break;
                }
                digest.update(&leaf.hash);
                expected += 1;
            }
            let kept = match self.blocks.get(index) {
                Some(kept) => *kept,
                None => *self.partial.finalize().as_bytes(),
            };
            if expected != last + 1 || *digest.finalize().as_bytes() != kept {
                return Ok(Some(Rewritten { first, last }));
            }
            self.audit_next = if index >= self.blocks.len() {
                0
            } else {
                index + 1
            };
        }
        Ok(None)
    }
}
