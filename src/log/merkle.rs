//! The log's Merkle tree, in the structure of RFC 6962 / RFC 9162 section 2.1, with SHA-256.
//!
//! Leaf `i` of the tree is the blake3 hash of the event at position `i + 1`; its leaf hash is
//! `SHA-256(0x00 || event hash)` and an interior node is `SHA-256(0x01 || left || right)`. These
//! are the hashes every standard transparency-log verifier computes, so a checkpoint Docket signs
//! can be checked and cosigned by tools that know nothing of Docket.
//!
//! The tree is stored as its *perfect* subtrees: node `(level, index)` is the root of the
//! subtree over leaves `index * 2^level .. (index + 1) * 2^level`, fixed for ever once that many
//! leaves exist. Every range a proof needs decomposes into at most 64 such nodes, so a proof
//! never needs more than the stored nodes it names ([`NodeId`]); this module says which, and
//! folds them. It does no I/O.

use sha2::{Digest, Sha256};

/// A SHA-256 tree hash.
pub type TreeHash = [u8; 32];

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> TreeHash {
    Sha256::digest([]).into()
}

/// `SHA-256(0x00 || leaf data)`.
pub fn leaf_hash(data: &[u8]) -> TreeHash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(data);
    hasher.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &TreeHash, right: &TreeHash) -> TreeHash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// A perfect subtree: `2^level` leaves starting at leaf `index * 2^level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

/// Leaves `start..end` of the tree, as a proof names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafRange {
    pub start: u64,
    pub end: u64,
}

impl LeafRange {
    /// The perfect subtrees that make up this range, largest (leftmost) first. A range of the
    /// shape proofs use starts at a multiple of its leading power of two, so each piece is
    /// aligned; for any other range the pieces are still exact, only more numerous.
    pub fn pieces(self) -> Vec<NodeId> {
        let mut pieces = Vec::new();
        let mut start = self.start;
        while start < self.end {
            let remaining = self.end - start;
            let mut level = 63 - remaining.leading_zeros();
            // The piece must also be aligned on its own size.
            if start != 0 {
                level = level.min(start.trailing_zeros());
            }
            pieces.push(NodeId {
                level: level as u8,
                index: start >> level,
            });
            start += 1u64 << level;
        }
        pieces
    }

    /// The range's hash from the hashes of its [`pieces`](Self::pieces), in the same order:
    /// the right fold `H(p1, H(p2, ... pn))`, which is what RFC 6962's recursion computes.
    pub fn fold(pieces: &[TreeHash]) -> Option<TreeHash> {
        let (last, rest) = pieces.split_last()?;
        Some(
            rest.iter()
                .rev()
                .fold(*last, |right, left| node_hash(left, &right)),
        )
    }
}

/// Largest power of two strictly below `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Why a proof cannot be made or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf {index} is not in a tree of size {size}")]
    LeafOutOfRange { index: u64, size: u64 },
    #[error("tree size {first} is larger than tree size {second}")]
    SizesOutOfOrder { first: u64, second: u64 },
    #[error("the proof does not lead to the expected root")]
    Mismatch,
}

/// The ranges whose hashes form the inclusion proof of leaf `index` in a tree of `size`
/// leaves, bottom up (RFC 9162 section 2.1.3.1).
pub fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<LeafRange>, ProofError> {
    if index >= size {
        return Err(ProofError::LeafOutOfRange { index, size });
    }
    let mut ranges = Vec::new();
    let (mut start, mut end) = (0u64, size);
    while end - start > 1 {
        let k = split_point(end - start);
        if index - start < k {
            ranges.push(LeafRange {
                start: start + k,
                end,
            });
            end = start + k;
        } else {
            ranges.push(LeafRange {
                start,
                end: start + k,
            });
            start += k;
        }
    }
    ranges.reverse();
    Ok(ranges)
}

/// The ranges whose hashes form the consistency proof from tree size `first` to `second`,
/// in proof order (RFC 9162 section 2.1.4.1). Empty when the sizes are equal or `first` is 0.
pub fn consistency_ranges(first: u64, second: u64) -> Result<Vec<LeafRange>, ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    if first == 0 || first == second {
        return Ok(Vec::new());
    }
    let mut ranges = Vec::new();
    let (mut start, mut end, mut m, mut complete) = (0u64, second, first, true);
    loop {
        let n = end - start;
        if m == n {
            if !complete {
                ranges.push(LeafRange { start, end });
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            ranges.push(LeafRange {
                start: start + k,
                end,
            });
            end = start + k;
        } else {
            ranges.push(LeafRange {
                start,
                end: start + k,
            });
            start += k;
            m -= k;
            complete = false;
        }
    }
    ranges.reverse();
    Ok(ranges)
}

/// Checks an inclusion proof (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &TreeHash,
    proof: &[TreeHash],
    root: &TreeHash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::LeafOutOfRange { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut hash = *leaf;
    for sibling in proof {
        if s == 0 {
            return Err(ProofError::Mismatch);
        }
        if f & 1 == 1 || f == s {
            hash = node_hash(sibling, &hash);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        f >>= 1;
        s >>= 1;
    }
    if s == 0 && hash == *root {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// Checks a consistency proof between two tree heads (RFC 9162 section 2.1.4.2). Size 0 is
/// consistent with every tree, with an empty proof.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &TreeHash,
    second_root: &TreeHash,
    proof: &[TreeHash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    if first == second {
        return if proof.is_empty() && first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    if first == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    let mut path: Vec<TreeHash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let Some((seed, rest)) = path.split_first() else {
        return Err(ProofError::Mismatch);
    };

    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut first_hash, mut second_hash) = (*seed, *seed);
    for node in rest {
        if s == 0 {
            return Err(ProofError::Mismatch);
        }
        if f & 1 == 1 || f == s {
            first_hash = node_hash(node, &first_hash);
            second_hash = node_hash(node, &second_hash);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            second_hash = node_hash(&second_hash, node);
        }
        f >>= 1;
        s >>= 1;
    }
    if s == 0 && first_hash == *first_root && second_hash == *second_root {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// The right edge of a tree as leaves are added: one perfect subtree per set bit of the size,
/// largest first. It computes the root at the current size in O(log n) memory, and reports
/// the perfect subtrees each new leaf completes, which is what the stored tree keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    peaks: Vec<(u8, TreeHash)>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Frontier::default()
    }

    /// A frontier from the stored peaks of a tree of `size` leaves, in the order
    /// [`Frontier::peak_ids`] names them; `None` when their number does not fit the size.
    pub fn from_peaks(size: u64, hashes: &[TreeHash]) -> Option<Self> {
        let ids = Frontier::peak_ids(size);
        if ids.len() != hashes.len() {
            return None;
        }
        let peaks = ids
            .iter()
            .map(|id| id.level)
            .zip(hashes.iter().copied())
            .collect();
        Some(Frontier { size, peaks })
    }

    /// The perfect subtrees that make up a tree of `size` leaves, largest first.
    pub fn peak_ids(size: u64) -> Vec<NodeId> {
        LeafRange {
            start: 0,
            end: size,
        }
        .pieces()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds the next leaf (its data, the event hash) and returns every perfect subtree it
    /// completes, the leaf itself first.
    pub fn push(&mut self, leaf_data: &[u8]) -> Vec<(NodeId, TreeHash)> {
        let mut completed = Vec::with_capacity(2);
        let mut hash = leaf_hash(leaf_data);
        let mut level = 0u8;
        let mut index = self.size;
        completed.push((NodeId { level, index }, hash));
        while let Some(&(peak_level, peak_hash)) = self.peaks.last() {
            if peak_level != level {
                break;
            }
            self.peaks.pop();
            hash = node_hash(&peak_hash, &hash);
            level += 1;
            index >>= 1;
            completed.push((NodeId { level, index }, hash));
        }
        self.peaks.push((level, hash));
        self.size += 1;
        completed
    }

    /// The root hash of the tree so far.
    pub fn root(&self) -> TreeHash {
        let hashes: Vec<TreeHash> = self.peaks.iter().map(|(_, hash)| *hash).collect();
        LeafRange::fold(&hashes).unwrap_or_else(empty_root)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The leaves of the RFC 6962 reference test tree (certificate-transparency's
    /// merkle_tree_test), used by independent implementations.
    fn reference_leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|text| hex::decode(text).unwrap())
        .collect()
    }

    /// MTH straight from the definition, to check everything else against.
    fn reference_root(leaves: &[Vec<u8>]) -> TreeHash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaf_hash(&leaves[0]),
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn range_hash(leaves: &[Vec<u8>], range: LeafRange) -> TreeHash {
        reference_root(&leaves[range.start as usize..range.end as usize])
    }

    #[test]
    fn roots_match_the_reference_tree() {
        let leaves = reference_leaves();
        let expected = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let mut frontier = Frontier::new();
        for (n, leaf) in leaves.iter().enumerate() {
            frontier.push(leaf);
            assert_eq!(hex::encode(frontier.root()), expected[n], "size {}", n + 1);
            assert_eq!(frontier.root(), reference_root(&leaves[..=n]));
        }
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn inclusion_proofs_verify_for_every_leaf_of_every_size() {
        let leaves: Vec<Vec<u8>> = (0u32..70).map(|i| i.to_be_bytes().to_vec()).collect();
        for size in 1..=leaves.len() as u64 {
            let root = reference_root(&leaves[..size as usize]);
            for index in 0..size {
                let proof: Vec<TreeHash> = inclusion_ranges(index, size)
                    .unwrap()
                    .into_iter()
                    .map(|range| range_hash(&leaves, range))
                    .collect();
                let leaf = leaf_hash(&leaves[index as usize]);
                verify_inclusion(index, size, &leaf, &proof, &root).unwrap();

                // Any other leaf, root or index fails.
                let other = leaf_hash(b"not this leaf");
                assert!(verify_inclusion(index, size, &other, &proof, &root).is_err());
                if size > 1 {
                    let wrong = (index + 1) % size;
                    assert!(verify_inclusion(wrong, size, &leaf, &proof, &root).is_err());
                    let mut short = proof.clone();
                    short.pop();
                    assert!(verify_inclusion(index, size, &leaf, &short, &root).is_err());
                }
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_for_every_pair_of_sizes() {
        let leaves: Vec<Vec<u8>> = (0u32..40).map(|i| i.to_be_bytes().to_vec()).collect();
        for second in 1..=leaves.len() as u64 {
            let second_root = reference_root(&leaves[..second as usize]);
            for first in 1..=second {
                let first_root = reference_root(&leaves[..first as usize]);
                let proof: Vec<TreeHash> = consistency_ranges(first, second)
                    .unwrap()
                    .into_iter()
                    .map(|range| range_hash(&leaves, range))
                    .collect();
                verify_consistency(first, second, &first_root, &second_root, &proof).unwrap();
                if first < second {
                    let forged = leaf_hash(b"forged");
                    assert!(
                        verify_consistency(first, second, &forged, &second_root, &proof).is_err()
                    );
                    assert!(
                        verify_consistency(first, second, &first_root, &forged, &proof).is_err()
                    );
                }
            }
        }
    }

    #[test]
    fn the_reference_consistency_proof_from_1_to_8_is_three_hashes() {
        // RFC 6962's own example shapes: proofs between sizes of the reference tree.
        assert_eq!(consistency_ranges(1, 8).unwrap().len(), 3);
        assert_eq!(consistency_ranges(6, 8).unwrap().len(), 3);
        assert_eq!(consistency_ranges(2, 5).unwrap().len(), 2);
        assert_eq!(inclusion_ranges(0, 8).unwrap().len(), 3);
        assert_eq!(inclusion_ranges(5, 8).unwrap().len(), 3);
        assert_eq!(inclusion_ranges(6, 7).unwrap().len(), 2);
    }

    #[test]
    fn pieces_are_aligned_perfect_subtrees_that_cover_the_range() {
        for start in 0..40u64 {
            for end in start + 1..80 {
                let pieces = LeafRange { start, end }.pieces();
                let mut next = start;
                for piece in &pieces {
                    assert_eq!(piece.index << piece.level, next);
                    next += 1 << piece.level;
                }
                assert_eq!(next, end);
            }
        }
    }

    #[test]
    fn the_frontier_reports_each_completed_subtree_once() {
        let mut frontier = Frontier::new();
        let mut all = std::collections::HashSet::new();
        for i in 0u32..64 {
            for (id, _) in frontier.push(&i.to_be_bytes()) {
                assert!(all.insert(id));
            }
        }
        // 64 leaves make 127 perfect subtrees.
        assert_eq!(all.len(), 127);
        let restored = Frontier::from_peaks(64, &[frontier.root()]).unwrap();
        assert_eq!(restored, frontier);
        assert!(Frontier::from_peaks(5, &[frontier.root()]).is_none());
    }
}
