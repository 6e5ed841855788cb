//! Signing checkpoints: when, with which key, and never one inconsistent with an earlier one.
//!
//! A checkpoint is made every `every_events` new events or every `interval` (whichever comes
//! first, and only when the log has grown), and on demand. Before signing size `n`, the
//! checkpointer checks the stored tree against the latest checkpoint: the tree's root at that
//! checkpoint's size must be the root it signed, and a consistency proof from it to `n` must
//! verify. If either fails nothing is signed and the failure is reported; the log is then not
//! what it was when the earlier checkpoint was signed.
//!
//! The key is the one in force after the first `n` events, so a verifier needs only those
//! events (and the trusted genesis key) to know which key must have signed. Several processes
//! may sign: a checkpoint of one size is stored once, and Ed25519 signatures are deterministic,
//! so two processes signing the same size produce the same note.

use std::sync::Arc;
use std::time::Duration;

use crate::keyring::Keyring;
use crate::log::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint, validate_origin};
use crate::log::time::now_timestamp;
use crate::store::{StoreError, StoredCheckpoint};

use super::keys::KeyHistory;
use super::tree::{LogTree, TreeError};

/// When checkpoints are made without being asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Sign once this many events were appended since the last checkpoint.
    pub every_events: u64,
    /// Sign at least this often while the log grows.
    pub interval: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            every_events: 10_000,
            interval: Duration::from_secs(60),
        }
    }
}

/// Why no checkpoint was signed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SigningError {
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Format(#[from] CheckpointError),
    #[error("the log is empty: there is nothing to checkpoint")]
    EmptyLog,
    #[error("no key of the log is in force at tree size {size}")]
    NoKeyInForce { size: u64 },
    #[error("signing key {key_id} is not in the keyring")]
    KeyUnavailable { key_id: String },
    #[error(
        "the tree no longer matches checkpoint {size}: refusing to sign a checkpoint \
         inconsistent with it"
    )]
    Inconsistent { size: u64 },
    #[error("checkpoint {size} is stored under origin {stored}, not {configured}")]
    OriginChanged {
        size: u64,
        stored: String,
        configured: String,
    },
}

/// Signs and stores the log's checkpoints.
pub struct Checkpointer {
    tree: Arc<LogTree>,
    keyring: Arc<Keyring>,
    origin: String,
    policy: CheckpointPolicy,
}

impl Checkpointer {
    pub fn new(
        tree: Arc<LogTree>,
        keyring: Arc<Keyring>,
        origin: String,
        policy: CheckpointPolicy,
    ) -> Result<Self, CheckpointError> {
        validate_origin(&origin)?;
        Ok(Checkpointer {
            tree,
            keyring,
            origin,
            policy,
        })
    }

    pub fn tree(&self) -> &Arc<LogTree> {
        &self.tree
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn policy(&self) -> CheckpointPolicy {
        self.policy
    }

    /// The latest checkpoint signed.
    pub async fn latest(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.tree.store().tree().latest_checkpoint().await
    }

    /// Brings the tree up to the log's end and signs a checkpoint of it, unless the latest
    /// checkpoint already covers it; returns the checkpoint of the current size.
    pub async fn checkpoint_now(&self) -> Result<StoredCheckpoint, SigningError> {
        let size = self.tree.catch_up().await?;
        self.sign_at(size).await
    }

    /// Signs a checkpoint of the first `size` events (which the tree must hold), after checking
    /// that it is consistent with the latest checkpoint.
    pub async fn sign_at(&self, size: u64) -> Result<StoredCheckpoint, SigningError> {
        if size == 0 {
            return Err(SigningError::EmptyLog);
        }
        let store = self.tree.store().tree();
        if let Some(existing) = store.checkpoint(size).await? {
            return Ok(existing);
        }
        let root = self.tree.root(size).await?;

        // Never sign what contradicts an earlier checkpoint.
        if let Some(latest) = store.latest_checkpoint().await? {
            let signed = SignedCheckpoint::parse(&latest.note)?;
            if signed.checkpoint.origin != self.origin {
                return Err(SigningError::OriginChanged {
                    size: latest.tree_size,
                    stored: signed.checkpoint.origin,
                    configured: self.origin.clone(),
                });
            }
            let (first, second, first_root, second_root) = if latest.tree_size <= size {
                (latest.tree_size, size, latest.root, root)
            } else {
                (size, latest.tree_size, root, latest.root)
            };
            let consistent = self.tree.root(latest.tree_size).await? == latest.root
                && self
                    .tree
                    .consistency_proof(first, second)
                    .await?
                    .verify(&first_root, &second_root);
            if !consistent {
                return Err(SigningError::Inconsistent {
                    size: latest.tree_size,
                });
            }
        }

        // Sign with the key the first `size` events put in force.
        let keys = KeyHistory::load(self.tree.store().as_ref()).await?;
        let key = keys
            .in_force_after(size)
            .ok_or(SigningError::NoKeyInForce { size })?;
        let signer = self
            .keyring
            .get(&key.key_id)
            .map_err(|_| SigningError::KeyUnavailable {
                key_id: key.key_id.clone(),
            })?;
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            size,
            root,
        };
        let signed = SignedCheckpoint::sign(checkpoint, &signer)?;
        let stored = StoredCheckpoint {
            tree_size: size,
            root,
            key_id: key.key_id.clone(),
            note: signed.encode(),
            signed_at: now_timestamp(),
        };
        if store.insert_checkpoint(&stored).await? {
            tracing::info!(tree_size = size, key_id = %key.key_id, "checkpoint signed");
            return Ok(stored);
        }
        // Another process signed this size meanwhile; its note is the one kept.
        Ok(store.checkpoint(size).await?.unwrap_or(stored))
    }

    /// Keeps the tree current and signs checkpoints by the policy, until the task is dropped.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let checkpointer = self.clone();
        tokio::spawn(async move { checkpointer.run().await })
    }

    async fn run(&self) {
        let poll = Duration::from_millis(250).min(self.policy.interval);
        let mut since_signed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(poll).await;
            let grown = async {
                let size = self.tree.catch_up().await?;
                let signed = self.latest().await?.map_or(0, |c| c.tree_size);
                Ok::<_, SigningError>((size, signed))
            };
            match grown.await {
                Ok((size, signed)) if size > signed => {
                    let due = size - signed >= self.policy.every_events
                        || since_signed.elapsed() >= self.policy.interval;
                    if due {
                        match self.sign_at(size).await {
                            Ok(_) => since_signed = tokio::time::Instant::now(),
                            Err(error) => {
                                tracing::error!(%error, "checkpoint not signed");
                            }
                        }
                    }
                }
                Ok(_) => since_signed = tokio::time::Instant::now(),
                Err(error) => tracing::error!(%error, "the Merkle tree cannot be extended"),
            }
        }
    }
}
