//! Transparency-log guarantees over the signed log: a Merkle tree (RFC 6962 structure, SHA-256)
//! over the events' hashes, signed checkpoints of it (C2SP), and proofs against them.
//!
//! - [`tree`] keeps the stored tree current and answers roots, inclusion and consistency proofs.
//! - [`checkpoints`] signs checkpoints by policy and on demand, never one inconsistent with an
//!   earlier one.
//! - [`keys`] says which of the log's keys was in force at a tree size.
//! - [`against`] checks a log against checkpoints saved earlier, without trusting the stored
//!   tree, and locates where they part.
//! - [`leaves`] reads the events' hashes as a scan that can be continued and audited, which
//!   the background verifier keeps from run to run.
//! - [`bundle`] writes and checks evidence bundles.
//!
//! docs/log-format.md section 16 is the normative description.

pub mod against;
pub mod bundle;
pub mod checkpoints;
pub mod keys;
pub mod leaves;
pub mod tree;

use std::sync::Arc;

use crate::log::checkpoint::CheckpointError;
use crate::store::{EventLog, StoreError};

pub use checkpoints::{CheckpointPolicy, Checkpointer, SigningError};
pub use tree::{ConsistencyProof, InclusionProof, LogTree, TreeError};

/// The origin a log's checkpoints carry when none is configured.
pub fn default_origin(log_id: &str) -> String {
    format!("docket.log/{log_id}")
}

/// The log's id, from its genesis event.
pub async fn log_id(log: &EventLog) -> Result<Option<String>, StoreError> {
    let page = log.store().read_page(1, 1).await?;
    Ok(page.first().and_then(|genesis| {
        serde_json::from_str::<serde_json::Value>(&genesis.payload)
            .ok()?
            .get("log_id")?
            .as_str()
            .map(str::to_owned)
    }))
}

/// Opens the tree and checkpointer over an open log, with `origin` or the default one.
pub async fn open(
    log: &EventLog,
    origin: Option<&str>,
    policy: CheckpointPolicy,
) -> Result<Arc<Checkpointer>, StoreError> {
    let origin = match origin {
        Some(origin) => origin.to_owned(),
        None => default_origin(&log_id(log).await?.unwrap_or_else(|| "unnamed".into())),
    };
    let tree = Arc::new(LogTree::new(log.store().clone()));
    Checkpointer::new(tree, log.keyring().clone(), origin, policy)
        .map(Arc::new)
        .map_err(|error: CheckpointError| StoreError::DataDir {
            detail: error.to_string(),
        })
}
