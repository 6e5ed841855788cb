//! Checkpoints and proofs for auditors: the log's signed checkpoints, an inclusion proof of any
//! event against any of them, and a consistency proof between any two tree sizes, through
//! GraphQL (here), plain HTTP ([`routes`]) and `docket prove`, all from [`proofs`].
//!
//! Every field needs a capability (`read_proofs`, and `sign_checkpoint` for the mutation; admins
//! and auditors hold both), which the guard decides from `guard::FIELDS`; each resolver asks
//! again, which yields the decision without a second entry, and notes what was read, so that
//! every read is in the request's access record. Signing is recorded durably before it is
//! done.

pub mod proofs;
pub mod routes;
pub mod views;

use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::{Context, Object};

use super::caller::Caller;
use super::errors::api_error;
use super::ids::encode_cursor;
use super::paging::{connection, connection_cost, page_request};
use crate::access::policy::{Capability, Decision};
use crate::read::Page;
use crate::transparency::Checkpointer;
use proofs::ProofError;
use views::{CheckpointView, ConsistencyProofView, InclusionProofView};

/// The field group access records name for reads of checkpoints.
pub const CHECKPOINTS_FIELD: &str = "transparency.checkpoints";
/// The field group access records name for reads of proofs.
pub const PROOFS_FIELD: &str = "transparency.proofs";

/// The checkpoint and proof queries.
#[derive(Default)]
pub struct TransparencyQuery;

/// The on-demand checkpoint.
#[derive(Default)]
pub struct TransparencyMutation;

/// A failure as a GraphQL error with its stable code.
pub fn graphql_error(error: ProofError) -> async_graphql::Error {
    api_error(error.code(), error.to_string())
}

/// The caller, holding `capability` (decided and noted), and the checkpointer.
fn admitted<'a>(
    ctx: &'a Context<'_>,
    capability: Capability,
) -> async_graphql::Result<(&'a Caller, &'a Checkpointer)> {
    let caller = Caller::of(ctx)?;
    caller.require(capability)?;
    let checkpointer = ctx
        .data::<Arc<Checkpointer>>()
        .map_err(|_| graphql_error(ProofError::Internal))?;
    Ok((caller, checkpointer.as_ref()))
}

/// Notes the read of `target` (`target_id` names which) in the request's access record.
fn note_read(
    caller: &Caller,
    target: &'static str,
    target_id: Option<String>,
    field: &'static str,
) {
    caller.note(
        None,
        target,
        target_id.as_deref(),
        Some(field),
        Decision::Allowed(Capability::ReadProofs.as_str()),
    );
}

#[Object]
impl TransparencyQuery {
    /// The latest checkpoint the log signed; null before the first is signed. Admins and
    /// auditors.
    async fn latest_checkpoint(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<CheckpointView>> {
        let (caller, checkpointer) = admitted(ctx, Capability::ReadProofs)?;
        note_read(caller, "checkpoint", None, CHECKPOINTS_FIELD);
        proofs::latest(checkpointer).await.map_err(graphql_error)
    }

    /// The checkpoint of exactly `size` events; null when none of that size was signed.
    async fn checkpoint(
        &self,
        ctx: &Context<'_>,
        size: u64,
    ) -> async_graphql::Result<Option<CheckpointView>> {
        let (caller, checkpointer) = admitted(ctx, Capability::ReadProofs)?;
        note_read(
            caller,
            "checkpoint",
            Some(size.to_string()),
            CHECKPOINTS_FIELD,
        );
        proofs::at_size(checkpointer, size)
            .await
            .map_err(graphql_error)
    }

    /// Every stored checkpoint, largest first; `first` is 1 to 100.
    #[graphql(complexity = "connection_cost(first, None, child_complexity)")]
    async fn checkpoints(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, CheckpointView>> {
        let (caller, checkpointer) = admitted(ctx, Capability::ReadProofs)?;
        note_read(caller, "checkpoints", None, CHECKPOINTS_FIELD);
        let request = page_request(first, None, after, None)?;
        let before = match &request.cursor {
            Some((size, _)) => Some(
                size.parse::<u64>()
                    .map_err(|_| api_error("INVALID_ARGUMENT", "the cursor is not valid"))?,
            ),
            None => None,
        };
        let limit = u32::try_from(request.size).unwrap_or(1);
        let page = proofs::page(checkpointer, before, limit)
            .await
            .map_err(graphql_error)?;
        let page = Page {
            has_more: page.next_before.is_some(),
            rows: page.checkpoints,
        };
        Ok(connection(&request, page, |checkpoint| {
            (
                encode_cursor(&checkpoint.tree_size.to_string(), ""),
                checkpoint,
            )
        }))
    }

    /// The inclusion proof of the event at `position` in the tree of `treeSize` events. Without
    /// `treeSize`, against the smallest stored checkpoint that covers the position
    /// (`NOT_FOUND` when none does yet). `OUT_OF_RANGE` for a position or size the log does
    /// not have.
    async fn inclusion_proof(
        &self,
        ctx: &Context<'_>,
        position: u64,
        tree_size: Option<u64>,
    ) -> async_graphql::Result<Option<InclusionProofView>> {
        let (caller, checkpointer) = admitted(ctx, Capability::ReadProofs)?;
        note_read(
            caller,
            "inclusion_proof",
            Some(position.to_string()),
            PROOFS_FIELD,
        );
        proofs::inclusion(checkpointer, position, tree_size)
            .await
            .map(Some)
            .map_err(graphql_error)
    }

    /// The consistency proof from the tree of `first` events to the tree of `second` events,
    /// with both roots. `INVALID_ARGUMENT` when `first` is larger than `second`,
    /// `OUT_OF_RANGE` for a size of 0 or beyond the log.
    async fn consistency_proof(
        &self,
        ctx: &Context<'_>,
        first: u64,
        second: u64,
    ) -> async_graphql::Result<Option<ConsistencyProofView>> {
        let (caller, checkpointer) = admitted(ctx, Capability::ReadProofs)?;
        note_read(
            caller,
            "consistency_proof",
            Some(format!("{first}-{second}")),
            PROOFS_FIELD,
        );
        proofs::consistency(checkpointer, first, second)
            .await
            .map(Some)
            .map_err(graphql_error)
    }
}

#[Object]
impl TransparencyMutation {
    /// Signs a checkpoint of the log as it is now, without waiting for the schedule, and
    /// returns it (the latest checkpoint, when that already covers every event). Admins and
    /// auditors. `CHECKPOINT_INCONSISTENT` when the log no longer matches an earlier
    /// checkpoint: nothing is signed then.
    async fn sign_checkpoint(&self, ctx: &Context<'_>) -> async_graphql::Result<CheckpointView> {
        let (caller, checkpointer) = admitted(ctx, Capability::SignCheckpoint)?;
        caller.note(
            None,
            "checkpoint",
            None,
            Some(CHECKPOINTS_FIELD),
            Decision::Allowed(Capability::SignCheckpoint.as_str()),
        );
        // Recorded before the checkpoint is signed: no signing without its record.
        caller.flush("mutation signCheckpoint").await?;
        proofs::sign_now(checkpointer).await.map_err(graphql_error)
    }
}
