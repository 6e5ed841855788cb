//! Checking a log against checkpoints saved earlier (by an investigator, a client or a witness),
//! trusting nothing the operator could have rebuilt.
//!
//! The stored tree and the stored checkpoints belong to whoever runs the database, so neither is
//! read here. The Merkle root at each saved checkpoint's size is recomputed from the events'
//! hashes alone, read in position order with each event's link to the one before checked; each
//! saved checkpoint's signature is checked with the key the log's own genesis and rotation
//! events put in force after that many events (and, when a genesis key is pinned, only if the
//! log began with it). The ordinary verifier runs too, so a log that does not even verify on its
//! own is reported as such.
//!
//! What the result proves, and what it cannot (SHA-256 collisions aside):
//!
//! - A validly signed checkpoint of size N that the log matches proves the log's first N events
//!   are the ones it held when that checkpoint was signed. It says nothing of later events.
//! - One the log does not match proves that at least one of the first N events was changed,
//!   removed, inserted or reordered since. A root is one hash over all N leaves: on its own it
//!   cannot say which. The first altered position is somewhere in 1..=N.
//! - With several, the first altered position lies in (largest matching size, smallest
//!   non-matching size]. Checkpoints saved at sizes close together narrow it; checkpoints of
//!   consecutive sizes around it name it exactly. A log of M events that is shorter than a
//!   checkpoint of N lacks events M+1..=N, so its first alteration is at M+1 at the latest.
//! - Two validly signed checkpoints of one origin and size with different roots prove the log's
//!   key signed two histories (a fork), whatever the log now holds. So do a checkpoint the log
//!   matches and a smaller one whose root its prefix does not have: no log contains both.
//! - A saved checkpoint whose signature does not verify counts as no evidence (anyone can write
//!   a checkpoint's text); it is reported, and the check fails.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::log::checkpoint::SignedCheckpoint;
use crate::log::verify::{VerifyFailure, VerifySummary};
use crate::store::{LogStore, StoreError};
use crate::verification::{VerifyOptions, verify_log};

use super::keys::KeyHistory;
use super::leaves::{LeafScan, Scan};

/// Why a log could not be checked at all (what the check found is in [`AgainstReport`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum AgainstError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A signed checkpoint kept outside the operator's reach, and where it came from.
#[derive(Debug, Clone)]
pub struct SavedCheckpoint {
    /// Where it was read from (a file name), to name it in the report.
    pub source: String,
    pub checkpoint: SignedCheckpoint,
}

/// Whether the log's key signed a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SignatureCheck {
    /// Signed by the key the log had in force after the checkpoint's size.
    Valid { key_id: String },
    /// Not signed by that key; `None` when the log (or the pinned genesis key) names no key.
    Invalid { key_id: Option<String> },
}

/// How a checkpoint's root compares with the root recomputed from the log's events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TreeCheck {
    Matches,
    /// The log's first `size` events have another root.
    RootDiffers {
        log_root: String,
    },
    /// The log has only `log_size` events: those after it, up to the checkpoint's size, are gone.
    LogTooShort {
        log_size: u64,
    },
}

/// What one checkpoint says and whether the log bears it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointFinding {
    pub source: String,
    pub origin: String,
    pub size: u64,
    /// The checkpoint's root, in hex.
    pub root: String,
    pub signature: SignatureCheck,
    pub tree: TreeCheck,
    /// Validly signed and matched by the log.
    pub holds: bool,
}

/// Where the log first parts from the saved checkpoints, as far as they can tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Divergence {
    /// The largest size of a validly signed checkpoint the log matches below the divergence
    /// (0 when none does): events up to here are as they were.
    pub matches_up_to: u64,
    pub matching_source: Option<String>,
    /// The first altered position is at most this.
    pub differs_by: u64,
    pub differing_source: String,
    /// The first altered position, when the bracket holds only one.
    pub first_altered: Option<u64>,
}

/// Signed checkpoints that contradict each other: the log's key signed two histories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fork {
    /// Two roots for one size.
    SameSize {
        origin: String,
        size: u64,
        roots: [String; 2],
        sources: [String; 2],
    },
    /// The log matches the larger checkpoint, and its first `smaller` events do not have the
    /// smaller checkpoint's root: no log extends both.
    Inconsistent {
        origin: String,
        smaller: u64,
        larger: u64,
        sources: [String; 2],
    },
}

/// Everything [`verify_against`] found.
#[derive(Debug, Clone, Serialize)]
pub struct AgainstReport {
    /// The ordinary verification of the whole log.
    #[serde(skip)]
    pub chain: Result<VerifySummary, VerifyFailure>,
    /// Events read to recompute roots (up to the largest saved size).
    pub events_read: u64,
    /// The first position whose event does not follow the one before it (a gap or a broken
    /// link), if any; roots past a gap are not computed.
    pub leaf_chain_break: Option<u64>,
    /// One finding per saved checkpoint, in the order given.
    pub checkpoints: Vec<CheckpointFinding>,
    pub divergence: Option<Divergence>,
    pub forks: Vec<Fork>,
}

impl AgainstReport {
    /// Whether the log verifies and bears out every saved checkpoint.
    pub fn holds(&self) -> bool {
        self.chain.is_ok()
            && self.leaf_chain_break.is_none()
            && self.checkpoints.iter().all(|finding| finding.holds)
            && self.divergence.is_none()
            && self.forks.is_empty()
    }
}

/// The log's latest stored checkpoint, checked against the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LatestCheckpoint {
    /// None was signed yet.
    Absent,
    /// The stored note cannot be read, or disagrees with the stored size or root.
    Malformed {
        size: u64,
        detail: String,
    },
    Checked(CheckpointFinding),
}

impl LatestCheckpoint {
    pub fn holds(&self) -> bool {
        match self {
            LatestCheckpoint::Absent => true,
            LatestCheckpoint::Malformed { .. } => false,
            LatestCheckpoint::Checked(finding) => finding.holds,
        }
    }
}

/// Checks the log in `store` against `saved` checkpoints: the full verification of
/// [`verify_log`] (with `progress`), then each checkpoint's signature and root, where the log
/// first parts from them, and any fork they prove.
pub async fn verify_against(
    store: Arc<dyn LogStore>,
    saved: &[SavedCheckpoint],
    options: VerifyOptions,
    progress: impl Fn(u64) + Send,
) -> Result<AgainstReport, AgainstError> {
    let keys = trusted_keys(store.as_ref(), options.genesis_key.as_deref()).await?;
    let chain = verify_log(store.clone(), options, progress).await?;
    let sizes = saved.iter().map(|s| s.checkpoint.checkpoint.size).collect();
    let scan = scan(store.as_ref(), &sizes).await?;
    let checkpoints: Vec<CheckpointFinding> =
        saved.iter().map(|s| check(s, &scan, &keys)).collect();
    let divergence = divergence(&checkpoints);
    let forks = forks(saved, &checkpoints, &keys);
    Ok(AgainstReport {
        chain,
        events_read: scan.events,
        leaf_chain_break: scan.chain_break,
        checkpoints,
        divergence,
        forks,
    })
}

/// Checks the latest checkpoint the store holds as a saved one would be: its root against the
/// root recomputed from the events, its signature against the key in force at its size.
pub async fn check_latest_checkpoint(
    store: &dyn LogStore,
    genesis_key: Option<&str>,
) -> Result<LatestCheckpoint, AgainstError> {
    check_latest_checkpoint_from(store, genesis_key, &mut LeafScan::default()).await
}

/// [`check_latest_checkpoint`], continuing `leaves` (a scan kept from an earlier check) rather
/// than reading every event's hash again: the root at the checkpoint's size is recomputed from
/// what `leaves` has read so far and the hashes after it, and `leaves` is left at that size,
/// ready for the next, larger checkpoint.
///
/// Hashes read by earlier checks are not all read again each time: `leaves` first reads a few
/// blocks of them again ([`LeafScan::audit`]), in turn, and when one differs from what it read
/// before it is dropped and the check scans from position 1, so the root it recomputes is that
/// of the events as they are now. A rewrite of an event already read is thus found within the
/// calls it takes the audit to come round to it, not at once. A checkpoint smaller than what
/// `leaves` has read (the store's latest checkpoint went backwards) is checked with a scan from
/// position 1, and `leaves` is left as it was.
pub async fn check_latest_checkpoint_from(
    store: &dyn LogStore,
    genesis_key: Option<&str>,
    leaves: &mut LeafScan,
) -> Result<LatestCheckpoint, AgainstError> {
    let Some(stored) = store.tree().latest_checkpoint().await? else {
        return Ok(LatestCheckpoint::Absent);
    };
    let malformed = |detail: String| LatestCheckpoint::Malformed {
        size: stored.tree_size,
        detail,
    };
    let signed = match SignedCheckpoint::parse(&stored.note) {
        Ok(signed) => signed,
        Err(error) => return Ok(malformed(error.to_string())),
    };
    if signed.checkpoint.size != stored.tree_size || signed.checkpoint.root != stored.root {
        return Ok(malformed(
            "the stored size or root is not the one the note states".into(),
        ));
    }
    let keys = trusted_keys(store, genesis_key).await?;
    if leaves.audit(store).await?.is_some() {
        *leaves = LeafScan::default();
    }
    let sizes = BTreeSet::from([stored.tree_size]);
    let scan = if stored.tree_size < leaves.size() {
        scan(store, &sizes).await?
    } else {
        leaves.scan_to(store, &sizes).await?
    };
    let saved = SavedCheckpoint {
        source: "checkpoint".into(),
        checkpoint: signed,
    };
    Ok(LatestCheckpoint::Checked(check(&saved, &scan, &keys)))
}

/// The log's keys, or none when the log did not begin with the pinned genesis key: a key the
/// log introduced after an untrusted genesis vouches for nothing.
async fn trusted_keys(
    store: &dyn LogStore,
    genesis_key: Option<&str>,
) -> Result<KeyHistory, StoreError> {
    let keys = KeyHistory::load(store).await?;
    let genesis = keys.keys().first().map(|key| key.key_id.as_str());
    match genesis_key {
        Some(pinned) if genesis != Some(pinned) => Ok(KeyHistory::default()),
        _ => Ok(keys),
    }
}

/// Reads the events' hashes from position 1 up to the largest of `sizes`, noting the root at
/// each.
async fn scan(store: &dyn LogStore, sizes: &BTreeSet<u64>) -> Result<Scan, StoreError> {
    LeafScan::default().scan_to(store, sizes).await
}

fn check(saved: &SavedCheckpoint, scan: &Scan, keys: &KeyHistory) -> CheckpointFinding {
    let checkpoint = &saved.checkpoint.checkpoint;
    let in_force = keys.in_force_after(checkpoint.size);
    let signature = match in_force {
        Some(key) if saved.checkpoint.signed_by_log_key(&key.public_key) => SignatureCheck::Valid {
            key_id: key.key_id.clone(),
        },
        key => SignatureCheck::Invalid {
            key_id: key.map(|key| key.key_id.clone()),
        },
    };
    let tree = match scan.roots.get(&checkpoint.size) {
        Some(root) if *root == checkpoint.root => TreeCheck::Matches,
        Some(root) => TreeCheck::RootDiffers {
            log_root: hex::encode(root),
        },
        None => TreeCheck::LogTooShort {
            log_size: scan.events,
        },
    };
    CheckpointFinding {
        source: saved.source.clone(),
        origin: checkpoint.origin.clone(),
        size: checkpoint.size,
        root: hex::encode(checkpoint.root),
        holds: matches!(signature, SignatureCheck::Valid { .. }) && tree == TreeCheck::Matches,
        signature,
        tree,
    }
}

/// The bracket (largest matching size, smallest provably differing size] from the validly
/// signed findings; `None` when the log bears out every one of them.
fn divergence(findings: &[CheckpointFinding]) -> Option<Divergence> {
    let signed = || {
        findings
            .iter()
            .filter(|f| matches!(f.signature, SignatureCheck::Valid { .. }))
    };
    let (differs_by, differing) = signed()
        .filter_map(|f| match f.tree {
            TreeCheck::Matches => None,
            TreeCheck::RootDiffers { .. } => Some((f.size, f)),
            // The log lacks event `log_size + 1`, which the checkpoint holds.
            TreeCheck::LogTooShort { log_size } => Some((log_size + 1, f)),
        })
        .min_by_key(|(bound, _)| *bound)?;
    let matching = signed()
        .filter(|f| f.tree == TreeCheck::Matches && f.size < differs_by)
        .max_by_key(|f| f.size);
    let matches_up_to = matching.map_or(0, |f| f.size);
    Some(Divergence {
        matches_up_to,
        matching_source: matching.map(|f| f.source.clone()),
        differs_by,
        differing_source: differing.source.clone(),
        first_altered: (differs_by == matches_up_to + 1).then_some(differs_by),
    })
}

/// Forks the saved checkpoints prove. Same-size forks need only the signatures: each of the two
/// must verify under one of the log's keys.
fn forks(
    saved: &[SavedCheckpoint],
    findings: &[CheckpointFinding],
    keys: &KeyHistory,
) -> Vec<Fork> {
    let mut forks = Vec::new();

    // Distinct roots per origin and size, among checkpoints one of the log's keys signed.
    let mut roots: BTreeMap<(&str, u64), Vec<&SavedCheckpoint>> = BTreeMap::new();
    for entry in saved {
        let signed = keys
            .keys()
            .iter()
            .any(|key| entry.checkpoint.signed_by_log_key(&key.public_key));
        let checkpoint = &entry.checkpoint.checkpoint;
        let seen = roots
            .entry((checkpoint.origin.as_str(), checkpoint.size))
            .or_default();
        if signed
            && !seen
                .iter()
                .any(|s| s.checkpoint.checkpoint.root == checkpoint.root)
        {
            seen.push(entry);
        }
    }
    for ((origin, size), entries) in roots {
        if let [first, second, ..] = entries.as_slice() {
            forks.push(Fork::SameSize {
                origin: origin.to_owned(),
                size,
                roots: [first, second].map(|s| hex::encode(s.checkpoint.checkpoint.root)),
                sources: [first, second].map(|s| s.source.clone()),
            });
        }
    }

    // A differing checkpoint below one the log matches.
    let valid = |f: &&CheckpointFinding| matches!(f.signature, SignatureCheck::Valid { .. });
    for differing in findings.iter().filter(valid) {
        if !matches!(differing.tree, TreeCheck::RootDiffers { .. }) {
            continue;
        }
        let larger = findings
            .iter()
            .filter(valid)
            .filter(|f| f.tree == TreeCheck::Matches && f.origin == differing.origin)
            .filter(|f| f.size > differing.size)
            .min_by_key(|f| f.size);
        if let Some(larger) = larger {
            forks.push(Fork::Inconsistent {
                origin: differing.origin.clone(),
                smaller: differing.size,
                larger: larger.size,
                sources: [differing.source.clone(), larger.source.clone()],
            });
        }
    }
    forks
}

impl fmt::Display for CheckpointFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: size {} ", self.source, self.size)?;
        match &self.tree {
            TreeCheck::Matches => write!(f, "matches the log (root {})", self.root)?,
            TreeCheck::RootDiffers { log_root } => write!(
                f,
                "DOES NOT MATCH: the log's root at {} is {log_root}, the checkpoint's {}",
                self.size, self.root
            )?,
            TreeCheck::LogTooShort { log_size } => write!(
                f,
                "LOG TOO SHORT: the log has {log_size} events; events {}..={} are gone",
                log_size + 1,
                self.size
            )?,
        }
        match &self.signature {
            SignatureCheck::Valid { key_id } => write!(f, ", signed by key {key_id}"),
            SignatureCheck::Invalid {
                key_id: Some(key_id),
            } => write!(
                f,
                "; SIGNATURE INVALID: not signed by key {key_id}, the log's key after {} events",
                self.size
            ),
            SignatureCheck::Invalid { key_id: None } => {
                write!(
                    f,
                    "; SIGNATURE INVALID: the log names no trusted key at that size"
                )
            }
        }
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.first_altered {
            Some(position) => write!(f, "first altered event: position {position}")?,
            None => write!(
                f,
                "the log first differs at a position in {}..={}; a root cannot say which, \
                 checkpoints of sizes in between would narrow it",
                self.matches_up_to + 1,
                self.differs_by
            )?,
        }
        match &self.matching_source {
            Some(source) => write!(f, " (it matches {source}")?,
            None => write!(f, " (it matches no saved checkpoint")?,
        }
        write!(f, ", not {})", self.differing_source)
    }
}

impl fmt::Display for Fork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fork::SameSize {
                origin,
                size,
                roots,
                sources,
            } => write!(
                f,
                "two checkpoints of {origin} at size {size}, both signed by the log, have \
                 different roots: {} in {} and {} in {}",
                roots[0], sources[0], roots[1], sources[1]
            ),
            Fork::Inconsistent {
                origin,
                smaller,
                larger,
                sources,
            } => write!(
                f,
                "checkpoints {smaller} ({}) and {larger} ({}) of {origin}, both signed by the \
                 log, cannot both hold: the log matches {larger} but its first {smaller} events \
                 have another root",
                sources[0], sources[1]
            ),
        }
    }
}
