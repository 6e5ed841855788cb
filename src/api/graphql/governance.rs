//! Records management through GraphQL: legal holds, retention policies, erasure (requested by
//! one user, confirmed by another) and subject access exports.
//!
//! Every field needs a capability (`guard::FIELDS`), and a second factor proved within the
//! step-up window; each resolver notes what it did, and a change or an export is made only
//! after its access record is durable.

use std::sync::Arc;

use async_graphql::{Context, Json, Object, SimpleObject};

use super::caller::Caller;
use super::errors::{UserError, internal};
use crate::access::policy::{Capability, Decision};
use crate::service::{CommandContext, Service, ServiceError};

/// The field group access records name for records management.
pub const GOVERNANCE_FIELD: &str = "governance";

#[derive(Default)]
pub struct GovernanceQuery;

#[derive(Default)]
pub struct GovernanceMutation;

/// A legal hold in force.
#[derive(SimpleObject)]
pub struct LegalHold {
    pub hold_id: String,
    /// `matter:<number>` or `contact:<id>`.
    pub target: String,
    pub reason: String,
    pub placed_by: String,
    pub placed_at: String,
}

/// How long matters of a practice area are kept after closing.
#[derive(SimpleObject)]
pub struct RetentionPolicy {
    pub practice_area: String,
    pub keep_years: u32,
}

/// What a records change did.
#[derive(SimpleObject, Default)]
pub struct GovernancePayload {
    /// The hold placed, or the erasure request made.
    pub id: Option<String>,
    /// The log position of the event recorded.
    pub position: Option<u64>,
    /// For a confirmed erasure: whether the data key was destroyed now.
    pub key_destroyed: Option<bool>,
    pub user_errors: Vec<UserError>,
}

impl GovernancePayload {
    /// A refusal the caller can act on as a user error; anything else as an internal error.
    fn refused(error: ServiceError) -> async_graphql::Result<Self> {
        if !error.is_user_error() {
            return Err(internal(error));
        }
        Ok(GovernancePayload {
            user_errors: vec![UserError::from_service(&error)],
            ..GovernancePayload::default()
        })
    }
}

/// The caller (holding `capability`, decided and noted), the service, and a command context
/// once the access record is durable.
async fn admitted(
    ctx: &Context<'_>,
    capability: Capability,
    target: &'static str,
    target_id: Option<&str>,
    operation: &str,
) -> async_graphql::Result<(Arc<Service>, CommandContext)> {
    let caller = Caller::of(ctx)?;
    let principal = caller.require(capability)?;
    caller.note(
        None,
        target,
        target_id,
        Some(GOVERNANCE_FIELD),
        Decision::Allowed(capability.as_str()),
    );
    caller.flush(operation).await?;
    let mut context = CommandContext::new(principal.actor.clone());
    context.request_id = Some(caller.request_id.clone());
    Ok((ctx.data::<Arc<Service>>()?.clone(), context))
}

#[Object]
impl GovernanceQuery {
    /// Legal holds in force. Partners and admins.
    async fn legal_holds(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<LegalHold>> {
        let (service, _) = admitted(
            ctx,
            Capability::ManageLegalHolds,
            "legal_holds",
            None,
            "query legalHolds",
        )
        .await?;
        let (_, governance) = service.governance().await.map_err(internal)?;
        Ok(governance
            .holds
            .into_values()
            .map(|hold| LegalHold {
                hold_id: hold.hold_id,
                target: hold.target,
                reason: hold.reason,
                placed_by: hold.placed_by,
                placed_at: hold.placed_at,
            })
            .collect())
    }

    /// Retention policies by practice area. Admins.
    async fn retention_policies(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<RetentionPolicy>> {
        let (service, _) = admitted(
            ctx,
            Capability::SetRetention,
            "retention_policies",
            None,
            "query retentionPolicies",
        )
        .await?;
        let (_, governance) = service.governance().await.map_err(internal)?;
        Ok(governance
            .retention
            .into_iter()
            .map(|(practice_area, keep_years)| RetentionPolicy {
                practice_area,
                keep_years,
            })
            .collect())
    }

    /// Everything held about a contact, decrypted, as one JSON document (GDPR Art. 15). Admins;
    /// the export is recorded as an access before it is made.
    async fn subject_access_export(
        &self,
        ctx: &Context<'_>,
        contact_id: String,
    ) -> async_graphql::Result<Option<Json<serde_json::Value>>> {
        let (service, _) = admitted(
            ctx,
            Capability::ExportSubjectData,
            "subject_access_export",
            Some(&contact_id),
            "query subjectAccessExport",
        )
        .await?;
        match service.subject_access(&contact_id).await {
            Ok(document) => Ok(Some(Json(document))),
            Err(ServiceError::Domain(_)) => Ok(None),
            Err(error) => Err(internal(error)),
        }
    }
}

#[Object]
impl GovernanceMutation {
    /// Places a legal hold on `target` (`matter:<number>`, or `contact:<id>` for a client and
    /// their matters): nothing under it can be erased or expire until it is released.
    async fn place_legal_hold(
        &self,
        ctx: &Context<'_>,
        target: String,
        reason: String,
    ) -> async_graphql::Result<GovernancePayload> {
        let (service, context) = admitted(
            ctx,
            Capability::ManageLegalHolds,
            "legal_hold",
            Some(&target),
            "mutation placeLegalHold",
        )
        .await?;
        match service.place_hold(&context, &target, &reason).await {
            Ok((hold_id, committed)) => Ok(GovernancePayload {
                id: Some(hold_id),
                position: Some(committed.last_position),
                ..GovernancePayload::default()
            }),
            Err(error) => GovernancePayload::refused(error),
        }
    }

    async fn release_legal_hold(
        &self,
        ctx: &Context<'_>,
        hold_id: String,
        reason: String,
    ) -> async_graphql::Result<GovernancePayload> {
        let (service, context) = admitted(
            ctx,
            Capability::ManageLegalHolds,
            "legal_hold",
            Some(&hold_id),
            "mutation releaseLegalHold",
        )
        .await?;
        match service.release_hold(&context, &hold_id, &reason).await {
            Ok(committed) => Ok(GovernancePayload {
                id: Some(hold_id),
                position: Some(committed.last_position),
                ..GovernancePayload::default()
            }),
            Err(error) => GovernancePayload::refused(error),
        }
    }

    /// Keeps matters of `practice_area` for `keep_years` after they close (no value: for ever).
    async fn set_retention_policy(
        &self,
        ctx: &Context<'_>,
        practice_area: String,
        keep_years: Option<u32>,
    ) -> async_graphql::Result<GovernancePayload> {
        let (service, context) = admitted(
            ctx,
            Capability::SetRetention,
            "retention_policy",
            Some(&practice_area),
            "mutation setRetentionPolicy",
        )
        .await?;
        match service
            .set_retention_policy(&context, &practice_area, keep_years)
            .await
        {
            Ok(committed) => Ok(GovernancePayload {
                position: Some(committed.last_position),
                ..GovernancePayload::default()
            }),
            Err(error) => GovernancePayload::refused(error),
        }
    }

    /// Requests the erasure of `subject`'s client data; another user must confirm it.
    /// `LEGAL_HOLD` while a hold covers it.
    async fn request_erasure(
        &self,
        ctx: &Context<'_>,
        subject: String,
        reason: String,
    ) -> async_graphql::Result<GovernancePayload> {
        let (service, context) = admitted(
            ctx,
            Capability::EraseSubject,
            "erasure",
            Some(&subject),
            "mutation requestErasure",
        )
        .await?;
        match service.request_erasure(&context, &subject, &reason).await {
            Ok((request_id, committed)) => Ok(GovernancePayload {
                id: Some(request_id),
                position: Some(committed.last_position),
                ..GovernancePayload::default()
            }),
            Err(error) => GovernancePayload::refused(error),
        }
    }

    /// Confirms an erasure request and erases: the subject's data key is destroyed, and its
    /// client data reads as erased everywhere. `SECOND_PERSON_REQUIRED` for the requester.
    async fn confirm_erasure(
        &self,
        ctx: &Context<'_>,
        subject: String,
        request_id: String,
    ) -> async_graphql::Result<GovernancePayload> {
        let (service, context) = admitted(
            ctx,
            Capability::EraseSubject,
            "erasure",
            Some(&subject),
            "mutation confirmErasure",
        )
        .await?;
        match service
            .confirm_erasure(&context, &subject, &request_id)
            .await
        {
            Ok(outcome) => Ok(GovernancePayload {
                id: Some(request_id),
                position: outcome.committed.map(|committed| committed.last_position),
                key_destroyed: Some(outcome.key_destroyed),
                ..GovernancePayload::default()
            }),
            Err(error) => GovernancePayload::refused(error),
        }
    }
}
