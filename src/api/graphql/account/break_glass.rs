//! `breakGlass`: a fee earner opens a matter they are not on, read-only, for the firm's
//! break-glass period, stating why. A wall still wins: a screened matter is answered exactly as
//! a missing one.

use std::sync::Arc;

use async_graphql::{Context, Object, SimpleObject};

use super::{event_request_id, identity_error, invalid, recordable};
use crate::access::policy::{self, Capability, Decision};
use crate::api::graphql::caller::{Caller, fresh_matter_facts};
use crate::api::graphql::errors::{UserError, internal};
use crate::domain::DomainError;
use crate::identity::Identity;
use crate::log::time::format_timestamp;
use crate::projection::ReadDb;
use crate::service::ServiceError;

/// The shortest and longest reason accepted, in characters (as `Identity::break_glass` has it).
const MIN_REASON_CHARS: usize = 10;
const MAX_REASON_CHARS: usize = 2000;

/// The break-glass mutation.
#[derive(Default)]
pub struct BreakGlassMutation;

#[derive(SimpleObject)]
pub struct BreakGlassPayload {
    pub matter_number: Option<String>,
    /// Until when the matter is open to the caller (read-only, without privileged notes).
    pub expires_at: Option<String>,
    pub user_errors: Vec<UserError>,
}

impl BreakGlassPayload {
    fn failed(error: UserError) -> Self {
        BreakGlassPayload {
            matter_number: None,
            expires_at: None,
            user_errors: vec![error],
        }
    }
}

#[Object]
impl BreakGlassMutation {
    /// Opens a matter you are not on, read-only and without privileged notes, for the firm's
    /// break-glass period (`expiresAt` says until when), stating the reason in 10 to 2000
    /// characters. Every opening raises an alert to the firm's security reviewers: it is
    /// recorded in the access record as an entry with target `alert`, beside the decision
    /// (reason `break_glass`). A matter that does not exist and one an ethical wall screens you
    /// from get the same answer (MATTER_NOT_FOUND).
    async fn break_glass(
        &self,
        ctx: &Context<'_>,
        matter_number: String,
        reason: String,
    ) -> async_graphql::Result<BreakGlassPayload> {
        let caller = Caller::of(ctx)?;
        let principal = caller.require(Capability::BreakGlass)?;
        // The identity service's rule, checked first so that no alert is raised for an opening
        // that could not happen.
        let stated = reason.trim().chars().count();
        if !(MIN_REASON_CHARS..=MAX_REASON_CHARS).contains(&stated) {
            return Ok(BreakGlassPayload::failed(invalid(
                "reason",
                "state the reason in 10 to 2000 characters",
            )));
        }
        let db = ctx.data::<ReadDb>()?;
        let identity = ctx.data::<Arc<Identity>>()?;
        let number = matter_number.trim().to_ascii_uppercase();
        let recorded = recordable(&number);
        let not_found = || {
            BreakGlassPayload::failed(UserError::from_service(&ServiceError::from(
                DomainError::MatterNotFound,
            )))
        };
        let row = crate::read::matters::matters_by_number(db.pool(), std::slice::from_ref(&number))
            .await
            .map_err(internal)?
            .into_iter()
            .next();
        let Some(row) = row else {
            caller.note(
                recorded,
                "matter",
                None,
                None,
                Decision::Denied("not_found"),
            );
            caller.flush("mutation breakGlass").await?;
            return Ok(not_found());
        };
        let facts = fresh_matter_facts(db, &row).await?;
        if policy::is_walled(&caller.directory, principal, &facts) {
            caller.note(recorded, "matter", None, None, Decision::Denied("walled"));
            caller.flush("mutation breakGlass").await?;
            return Ok(not_found());
        }
        let user_id = principal.user_id().unwrap_or_default();
        let decision = Decision::Allowed("break_glass");
        caller.note(
            recorded,
            "matter",
            None,
            Some("matter.break_glass"),
            decision,
        );
        caller.note(
            recorded,
            "alert",
            recordable(user_id),
            Some("alert.break_glass"),
            decision,
        );
        caller.flush("mutation breakGlass").await?;
        let result = identity
            .break_glass(
                &principal.actor,
                event_request_id(caller),
                user_id,
                &number,
                &reason,
            )
            .await;
        Ok(match result {
            Ok(expires_at) => BreakGlassPayload {
                matter_number: Some(number),
                expires_at: Some(format_timestamp(expires_at)),
                user_errors: Vec::new(),
            },
            Err(error) => BreakGlassPayload::failed(identity_error(error)?),
        })
    }
}
