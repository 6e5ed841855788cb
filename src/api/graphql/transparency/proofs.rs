//! The answers about checkpoints and proofs, shared by GraphQL, the HTTP routes and
//! `docket prove`: which checkpoint an inclusion proof is made against, the tree brought up to
//! the log's end before a size beyond it is refused, and failures as [`ProofError`]s with
//! stable codes.
//!
//! Invariants: a proof is only ever computed for sizes from 1 to the log's size; an error's
//! public message says what was asked and what exists, never an internal cause (those are
//! logged here, once).

use crate::log::merkle::TreeHash;
use crate::store::{StoreError, StoredCheckpoint};
use crate::transparency::{Checkpointer, LogTree, SigningError, TreeError};

use super::views::{CheckpointPage, CheckpointView, ConsistencyProofView, InclusionProofView};

/// Most checkpoints one page lists.
pub const MAX_CHECKPOINTS_PAGE: u32 = 1_000;

/// Why a checkpoint or proof was not given. Each variant has a stable code ([`Self::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("position {position} is outside a tree of size {size} (positions start at 1)")]
    PositionOutOfRange { position: u64, size: u64 },
    #[error("tree size {size} is not between 1 and the log's size, {log_size}")]
    SizeOutOfRange { size: u64, log_size: u64 },
    #[error("the first tree size ({first}) is larger than the second ({second})")]
    SizesOutOfOrder { first: u64, second: u64 },
    #[error("{0}")]
    InvalidArgument(&'static str),
    #[error("no checkpoint of tree size {size} is stored")]
    NoCheckpoint { size: u64 },
    #[error("no checkpoint covers position {position} yet; give a tree size, or sign one")]
    NoCheckpointCovering { position: u64 },
    #[error("no checkpoint has been signed yet")]
    NoCheckpoints,
    #[error("the log's hash chain is broken at position {position}; run docket verify")]
    ChainBroken { position: u64 },
    #[error("the log no longer matches checkpoint {size}; nothing was signed")]
    Inconsistent { size: u64 },
    #[error("the database is unavailable; try again")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl ProofError {
    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ProofError::PositionOutOfRange { .. } | ProofError::SizeOutOfRange { .. } => {
                "OUT_OF_RANGE"
            }
            ProofError::SizesOutOfOrder { .. } | ProofError::InvalidArgument(_) => {
                "INVALID_ARGUMENT"
            }
            ProofError::NoCheckpoint { .. }
            | ProofError::NoCheckpointCovering { .. }
            | ProofError::NoCheckpoints => "NOT_FOUND",
            ProofError::ChainBroken { .. } => "LOG_CHAIN_BROKEN",
            ProofError::Inconsistent { .. } => "CHECKPOINT_INCONSISTENT",
            ProofError::Unavailable => "UNAVAILABLE",
            ProofError::Internal => "INTERNAL",
        }
    }

    /// The HTTP status the routes answer it with.
    pub fn http_status(&self) -> u16 {
        match self {
            ProofError::PositionOutOfRange { .. }
            | ProofError::SizeOutOfRange { .. }
            | ProofError::SizesOutOfOrder { .. }
            | ProofError::InvalidArgument(_) => 400,
            ProofError::NoCheckpoint { .. }
            | ProofError::NoCheckpointCovering { .. }
            | ProofError::NoCheckpoints => 404,
            ProofError::Inconsistent { .. } => 409,
            ProofError::Unavailable => 503,
            ProofError::ChainBroken { .. } | ProofError::Internal => 500,
        }
    }
}

impl From<StoreError> for ProofError {
    fn from(error: StoreError) -> Self {
        if matches!(error, StoreError::Unavailable { .. }) {
            tracing::warn!(%error, "database unavailable");
            ProofError::Unavailable
        } else {
            tracing::error!(%error, "the tree or its checkpoints could not be read");
            ProofError::Internal
        }
    }
}

impl From<TreeError> for ProofError {
    fn from(error: TreeError) -> Self {
        match error {
            TreeError::Store(error) => error.into(),
            TreeError::BeyondTree { size, requested } => ProofError::SizeOutOfRange {
                size: requested,
                log_size: size,
            },
            TreeError::PositionOutOfRange { position, size } => {
                ProofError::PositionOutOfRange { position, size }
            }
            TreeError::SizesOutOfOrder { first, second } => {
                ProofError::SizesOutOfOrder { first, second }
            }
            TreeError::BrokenChain { position } => {
                tracing::error!(position, "the Merkle tree cannot grow over a broken chain");
                ProofError::ChainBroken { position }
            }
            TreeError::MissingNode { .. } => {
                tracing::error!(%error, "the stored Merkle tree is incomplete");
                ProofError::Internal
            }
        }
    }
}

impl From<SigningError> for ProofError {
    fn from(error: SigningError) -> Self {
        match error {
            SigningError::Tree(error) => error.into(),
            SigningError::Store(error) => error.into(),
            SigningError::Inconsistent { size } => {
                tracing::error!(size, "refused to sign a checkpoint inconsistent with one");
                ProofError::Inconsistent { size }
            }
            error => {
                tracing::error!(%error, "checkpoint not signed");
                ProofError::Internal
            }
        }
    }
}

/// The client's view of a stored checkpoint.
fn view(stored: StoredCheckpoint) -> Result<CheckpointView, ProofError> {
    let size = stored.tree_size;
    CheckpointView::from_stored(stored).ok_or_else(|| {
        tracing::error!(
            tree_size = size,
            "a stored checkpoint's note does not parse"
        );
        ProofError::Internal
    })
}

fn view_of(stored: Option<StoredCheckpoint>) -> Result<Option<CheckpointView>, ProofError> {
    stored.map(view).transpose()
}

/// The tree's size once it holds at least `size` events, if the log has that many: the tree is
/// extended from the log only when it is behind what is asked. Size 0, which is always
/// refused, brings the tree to the log's end, so that the refusal states the log's size.
async fn tree_holding(tree: &LogTree, size: u64) -> Result<u64, ProofError> {
    let stored = tree.size().await?;
    if (1..=stored).contains(&size) {
        return Ok(stored);
    }
    Ok(tree.catch_up().await?)
}

/// `size` when it is a tree size the log has (1 to its size).
async fn existing_size(tree: &LogTree, size: u64) -> Result<u64, ProofError> {
    let log_size = tree_holding(tree, size).await?;
    if size == 0 || size > log_size {
        return Err(ProofError::SizeOutOfRange { size, log_size });
    }
    Ok(size)
}

/// The latest checkpoint, if one was signed.
pub async fn latest(checkpointer: &Checkpointer) -> Result<Option<CheckpointView>, ProofError> {
    view_of(checkpointer.latest().await?)
}

/// The checkpoint of exactly `size` events, if one is stored.
pub async fn at_size(
    checkpointer: &Checkpointer,
    size: u64,
) -> Result<Option<CheckpointView>, ProofError> {
    view_of(checkpointer.tree().store().tree().checkpoint(size).await?)
}

/// Up to `limit` checkpoints smaller than `before` (all when `None`), largest first.
pub async fn page(
    checkpointer: &Checkpointer,
    before: Option<u64>,
    limit: u32,
) -> Result<CheckpointPage, ProofError> {
    if !(1..=MAX_CHECKPOINTS_PAGE).contains(&limit) {
        return Err(ProofError::InvalidArgument(
            "a page lists 1 to 1000 checkpoints",
        ));
    }
    let store = checkpointer.tree().store().tree();
    let mut stored = store.checkpoints(before, limit + 1).await?;
    let more = stored.len() > limit as usize;
    stored.truncate(limit as usize);
    let checkpoints = stored
        .into_iter()
        .map(view)
        .collect::<Result<Vec<_>, _>>()?;
    let next_before = match more {
        true => checkpoints.last().map(|checkpoint| checkpoint.tree_size),
        false => None,
    };
    Ok(CheckpointPage {
        checkpoints,
        next_before,
    })
}

/// The inclusion proof of the event at `position` in the tree of `tree_size` events, or, when
/// no size is given, in the smallest stored checkpoint that covers the position.
pub async fn inclusion(
    checkpointer: &Checkpointer,
    position: u64,
    tree_size: Option<u64>,
) -> Result<InclusionProofView, ProofError> {
    let tree = checkpointer.tree();
    let store = tree.store().tree();

    // The tree to prove against, and its signed checkpoint if there is one.
    let (size, checkpoint) = match tree_size {
        Some(size) => {
            let size = existing_size(tree, size).await?;
            if position == 0 || position > size {
                return Err(ProofError::PositionOutOfRange { position, size });
            }
            (size, store.checkpoint(size).await?)
        }
        None => {
            let covering = match position {
                0 => None,
                _ => store.checkpoint_covering(position).await?,
            };
            match covering {
                Some(checkpoint) => (checkpoint.tree_size, Some(checkpoint)),
                None => {
                    let log_size = tree_holding(tree, position).await?;
                    if position == 0 || position > log_size {
                        return Err(ProofError::PositionOutOfRange {
                            position,
                            size: log_size,
                        });
                    }
                    return Err(ProofError::NoCheckpointCovering { position });
                }
            }
        }
    };

    let proof = tree.inclusion_proof(position, size).await?;
    let root = tree.root(size).await?;
    Ok(InclusionProofView::new(&proof, &root, view_of(checkpoint)?))
}

/// The consistency proof from the tree of `first` events to the tree of `second`, with both
/// roots and the checkpoints stored at either size.
pub async fn consistency(
    checkpointer: &Checkpointer,
    first: u64,
    second: u64,
) -> Result<ConsistencyProofView, ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    let tree = checkpointer.tree();
    let store = tree.store().tree();
    let second = existing_size(tree, second).await?;
    let first = existing_size(tree, first).await?;

    let proof = tree.consistency_proof(first, second).await?;
    let roots: (TreeHash, TreeHash) = (tree.root(first).await?, tree.root(second).await?);
    let checkpoints = (
        view_of(store.checkpoint(first).await?)?,
        view_of(store.checkpoint(second).await?)?,
    );
    Ok(ConsistencyProofView::new(
        &proof,
        (&roots.0, &roots.1),
        checkpoints,
    ))
}

/// Signs a checkpoint of the log as it is now (the latest one, when it already covers every
/// event).
pub async fn sign_now(checkpointer: &Checkpointer) -> Result<CheckpointView, ProofError> {
    view(checkpointer.checkpoint_now().await?)
}

/// The signed note of the latest checkpoint, or of the one of `size` events.
pub async fn note(checkpointer: &Checkpointer, size: Option<u64>) -> Result<String, ProofError> {
    let found = match size {
        Some(size) => at_size(checkpointer, size)
            .await?
            .ok_or(ProofError::NoCheckpoint { size })?,
        None => latest(checkpointer)
            .await?
            .ok_or(ProofError::NoCheckpoints)?,
    };
    Ok(found.note)
}
