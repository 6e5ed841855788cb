//! API clients and their keys, and the firm's access policy: registering clients, issuing and
//! revoking keys (a key's text is shown once, when it is issued), setting the policy; and the
//! `apiClients` list for admins.

use std::sync::Arc;

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::sign_in::DonePayload;
use super::values::{KeyRevocationReason, PartnerAccessValue};
use super::views::{ApiClientView, FirmPolicyView};
use super::{administrator, event_request_id, identity_error, invalid, record_change};
use crate::access::policy::{Capability, Decision};
use crate::api::graphql::caller::Caller;
use crate::api::graphql::errors::UserError;
use crate::identity::Identity;
use crate::log::time::format_timestamp;

/// The API-client list.
#[derive(Default)]
pub struct ClientsQuery;

/// API-client, key and firm-policy administration.
#[derive(Default)]
pub struct ClientsMutation;

#[derive(SimpleObject)]
pub struct ApiClientPayload {
    pub client: Option<ApiClientView>,
    pub user_errors: Vec<UserError>,
}

/// A key just issued. `key` is its whole text (`dkt_<keyId>_...`), shown only in this
/// response: it is stored hashed and cannot be shown again.
#[derive(SimpleObject)]
pub struct IssuedApiKey {
    pub key_id: String,
    pub client_id: String,
    pub key: String,
    pub expires_at: Option<String>,
}

#[derive(SimpleObject)]
pub struct ApiKeyPayload {
    pub key: Option<IssuedApiKey>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct FirmPolicyPayload {
    /// The policy after the change.
    pub policy: Option<FirmPolicyView>,
    pub user_errors: Vec<UserError>,
}

/// A key's expiry as given: an RFC 3339 time in the future.
fn expiry(text: &str) -> Result<DateTime<Utc>, UserError> {
    let at = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|_| invalid("expiresAt", "must be an RFC 3339 time"))?
        .with_timezone(&Utc);
    if at <= Utc::now() {
        return Err(invalid("expiresAt", "must be in the future"));
    }
    Ok(at)
}

#[Object]
impl ClientsQuery {
    /// Every API client with the ids of its keys in force. For admins (with a recent step-up,
    /// as for every API-client administration).
    async fn api_clients(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiClientView>> {
        let caller = Caller::of(ctx)?;
        caller.note(
            None,
            "api_client",
            None,
            Some("api_client.details"),
            Decision::Allowed(Capability::AdministerApiClients.as_str()),
        );
        Ok(caller
            .directory
            .api_clients
            .values()
            .map(ApiClientView::from)
            .collect())
    }
}

#[Object]
impl ClientsMutation {
    /// Registers an API client (an integration acting on its own behalf). It reaches only
    /// matters whose team names it, and needs a key (`issueApiKey`) to authenticate.
    async fn register_api_client(
        &self,
        ctx: &Context<'_>,
        client_id: String,
        name: String,
    ) -> async_graphql::Result<ApiClientPayload> {
        let capability = Capability::AdministerApiClients;
        let (caller, principal) = administrator(ctx, capability)?;
        let identity = ctx.data::<Arc<Identity>>()?;
        record_change(
            caller,
            capability,
            "api_client",
            Some(&client_id),
            "api_client.details",
            "registerApiClient",
        )
        .await?;
        let result = identity
            .register_api_client(
                &principal.actor,
                event_request_id(caller),
                &client_id,
                &name,
            )
            .await;
        Ok(match result {
            Ok(()) => ApiClientPayload {
                client: identity
                    .directory()
                    .api_clients
                    .get(client_id.trim())
                    .map(ApiClientView::from),
                user_errors: Vec::new(),
            },
            Err(error) => ApiClientPayload {
                client: None,
                user_errors: vec![identity_error(error)?],
            },
        })
    }

    /// Issues a key to an API client, optionally expiring at `expiresAt` (RFC 3339). The key's
    /// text is in this response only.
    async fn issue_api_key(
        &self,
        ctx: &Context<'_>,
        client_id: String,
        expires_at: Option<String>,
    ) -> async_graphql::Result<ApiKeyPayload> {
        let capability = Capability::AdministerApiClients;
        let (caller, principal) = administrator(ctx, capability)?;
        let failed = |error| ApiKeyPayload {
            key: None,
            user_errors: vec![error],
        };
        let expires_at = match expires_at.as_deref().map(expiry).transpose() {
            Ok(at) => at,
            Err(error) => return Ok(failed(error)),
        };
        let identity = ctx.data::<Arc<Identity>>()?;
        record_change(
            caller,
            capability,
            "api_client",
            Some(&client_id),
            "api_client.keys",
            "issueApiKey",
        )
        .await?;
        let result = identity
            .issue_api_key(
                &principal.actor,
                event_request_id(caller),
                &client_id,
                expires_at,
            )
            .await;
        Ok(match result {
            Ok(issued) => ApiKeyPayload {
                key: Some(IssuedApiKey {
                    key_id: issued.key_id,
                    client_id,
                    key: issued.text.to_string(),
                    expires_at: issued.expires_at.map(format_timestamp),
                }),
                user_errors: Vec::new(),
            },
            Err(error) => failed(identity_error(error)?),
        })
    }

    /// Revokes a key at once: requests using it fail from their next authentication on.
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        key_id: String,
        #[graphql(default)] reason: KeyRevocationReason,
    ) -> async_graphql::Result<DonePayload> {
        let capability = Capability::AdministerApiClients;
        let (caller, principal) = administrator(ctx, capability)?;
        let identity = ctx.data::<Arc<Identity>>()?;
        let owner = caller
            .directory
            .api_clients
            .values()
            .find(|client| client.keys.contains(key_id.trim()))
            .map(|client| client.client_id.clone());
        record_change(
            caller,
            capability,
            "api_client",
            owner.as_deref(),
            "api_client.keys",
            "revokeApiKey",
        )
        .await?;
        let result = identity
            .revoke_api_key(
                &principal.actor,
                event_request_id(caller),
                key_id.trim(),
                reason.as_str(),
            )
            .await;
        Ok(match result {
            Ok(()) => DonePayload::done(),
            Err(error) => DonePayload::failed(identity_error(error)?),
        })
    }

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
