//! The firm's access policy: how far partners see beyond their teams and how long a
//! break-glass opening lasts.

use std::sync::Arc;

use async_graphql::{Context, Object, SimpleObject};

use super::values::PartnerAccessValue;
use super::views::FirmPolicyView;
use super::{administrator, event_request_id, identity_error, record_change};
use crate::access::policy::Capability;
use crate::api::graphql::errors::UserError;
use crate::identity::Identity;

/// Firm-policy administration.
#[derive(Default)]
pub struct FirmPolicyMutation;

#[derive(SimpleObject)]
pub struct FirmPolicyPayload {
    /// The policy after the change.
    pub policy: Option<FirmPolicyView>,
    pub user_errors: Vec<UserError>,
}

#[Object]
impl FirmPolicyMutation {
    /// Sets the firm's access policy: how far partners see beyond their teams, and how long a
    /// break-glass opening lasts (1 to 1440 minutes).
    async fn set_firm_policy(
        &self,
        ctx: &Context<'_>,
        partner_access: PartnerAccessValue,
        break_glass_minutes: u32,
    ) -> async_graphql::Result<FirmPolicyPayload> {
        let capability = Capability::SetFirmPolicy;
        let (caller, principal) = administrator(ctx, capability)?;
        let identity = ctx.data::<Arc<Identity>>()?;
        record_change(
            caller,
            capability,
            "firm_policy",
            None,
            "firm_policy",
            "setFirmPolicy",
        )
        .await?;
        let result = identity
            .set_firm_policy(
                &principal.actor,
                event_request_id(caller),
                partner_access.into(),
                break_glass_minutes,
            )
            .await;
        Ok(match result {
            Ok(()) => FirmPolicyPayload {
                policy: Some(identity.directory().policy.into()),
                user_errors: Vec::new(),
            },
            Err(error) => FirmPolicyPayload {
                policy: None,
                user_errors: vec![identity_error(error)?],
            },
        })
    }
}
