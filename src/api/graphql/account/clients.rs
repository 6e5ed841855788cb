//! API clients and their keys: registering clients with their scopes, changing the scopes,
//! issuing, rotating and revoking keys (a key's text is shown once, when it is issued), and the
//! `apiClients` list for admins.

use std::sync::Arc;

use async_graphql::{Context, Object, SimpleObject};

use super::scopes::{ApiClientScopesInput, expiry};
use super::sign_in::DonePayload;
use super::values::KeyRevocationReason;
use super::views::ApiClientView;
use super::{administrator, event_request_id, identity_error, record_change};
use crate::access::policy::{Capability, Decision};
use crate::api::graphql::caller::Caller;
use crate::api::graphql::errors::UserError;
use crate::identity::Identity;
use crate::log::time::format_timestamp;

/// The API-client list.
#[derive(Default)]
pub struct ClientsQuery;

/// API-client and key administration.
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

/// A rotation: the new key (its text in this response only) and when the old one stops.
#[derive(SimpleObject)]
pub struct RotateApiKeyPayload {
    pub key: Option<IssuedApiKey>,
    /// The key replaced.
    pub replaced_key_id: Option<String>,
    /// When the replaced key stops working: now plus the grace period, or its earlier expiry.
    pub replaced_key_expires_at: Option<String>,
    pub user_errors: Vec<UserError>,
}

fn client_payload(identity: &Identity, client_id: &str) -> ApiClientPayload {
    ApiClientPayload {
        client: identity
            .directory()
            .api_clients
            .get(client_id.trim())
            .map(ApiClientView::from),
        user_errors: Vec::new(),
    }
}

fn client_failed(error: UserError) -> ApiClientPayload {
    ApiClientPayload {
        client: None,
        user_errors: vec![error],
    }
}

/// The client that owns `key_id`, if any.
fn owner_of(caller: &Caller, key_id: &str) -> Option<String> {
    caller
        .directory
        .api_clients
        .values()
        .find(|client| client.keys.contains_key(key_id))
        .map(|client| client.client_id.clone())
}

#[Object]
impl ClientsQuery {
    /// Every API client with its scopes and the keys in force. For admins (with a recent
    /// step-up, as for every API-client administration).
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
    /// Registers an API client (an integration acting on its own behalf) with `scopes`, or
    /// the defaults: the matters whose team names it; `recordTime`, `addDocument` and
    /// `addDocumentVersion`; no expiry; 600 requests a minute. It needs a key (`issueApiKey`)
    /// to authenticate.
    async fn register_api_client(
        &self,
        ctx: &Context<'_>,
        client_id: String,
        name: String,
        scopes: Option<ApiClientScopesInput>,
    ) -> async_graphql::Result<ApiClientPayload> {
        let capability = Capability::AdministerApiClients;
        let (caller, principal) = administrator(ctx, capability)?;
        let request = match scopes.as_ref().map(ApiClientScopesInput::to_request) {
            None => None,
            Some(Ok(request)) => Some(request),
            Some(Err(error)) => return Ok(client_failed(error)),
        };
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
            .register_api_client_with(
                &principal.actor,
                event_request_id(caller),
                &client_id,
                &name,
                request.as_ref(),
            )
            .await;
        Ok(match result {
            Ok(()) => client_payload(identity, &client_id),
            Err(error) => client_failed(identity_error(error)?),
        })
    }

    /// Replaces an API client's scopes as a whole (what is left out takes its default). They
    /// apply to the client's next request, and to its open subscriptions at once.
    async fn set_api_client_scopes(
        &self,
        ctx: &Context<'_>,
        client_id: String,
        scopes: ApiClientScopesInput,
    ) -> async_graphql::Result<ApiClientPayload> {
        let capability = Capability::AdministerApiClients;
        let (caller, principal) = administrator(ctx, capability)?;
        let request = match scopes.to_request() {
            Ok(request) => request,
            Err(error) => return Ok(client_failed(error)),
        };
        let identity = ctx.data::<Arc<Identity>>()?;
        record_change(
            caller,
            capability,
            "api_client",
            Some(&client_id),
            "api_client.scopes",
            "setApiClientScopes",
        )
        .await?;
        let result = identity
            .set_api_client_scopes(
                &principal.actor,
                event_request_id(caller),
                &client_id,
                &request,
            )
            .await;
        Ok(match result {
            Ok(_) => client_payload(identity, &client_id),
            Err(error) => client_failed(identity_error(error)?),
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

    /// Issues a new key to the client of `keyId` (optionally expiring at `expiresAt`) and makes
    /// `keyId` stop working `graceMinutes` from now (0: at once; at most 43,200, 30 days), so
    /// that the integration can switch keys without a gap. The new key's text is in this
    /// response only.
    async fn rotate_api_key(
        &self,
        ctx: &Context<'_>,
        key_id: String,
        grace_minutes: u32,
        expires_at: Option<String>,
    ) -> async_graphql::Result<RotateApiKeyPayload> {
        let capability = Capability::AdministerApiClients;
        let (caller, principal) = administrator(ctx, capability)?;
        let failed = |error| RotateApiKeyPayload {
            key: None,
            replaced_key_id: None,
            replaced_key_expires_at: None,
            user_errors: vec![error],
        };
        let expires_at = match expires_at.as_deref().map(expiry).transpose() {
            Ok(at) => at,
            Err(error) => return Ok(failed(error)),
        };
        let identity = ctx.data::<Arc<Identity>>()?;
        let key_id = key_id.trim();
        let owner = owner_of(caller, key_id);
        record_change(
            caller,
            capability,
            "api_client",
            owner.as_deref(),
            "api_client.keys",
            "rotateApiKey",
        )
        .await?;
        let result = identity
            .rotate_api_key(
                &principal.actor,
                event_request_id(caller),
                key_id,
                grace_minutes,
                expires_at,
            )
            .await;
        Ok(match result {
            Ok(rotated) => RotateApiKeyPayload {
                key: Some(IssuedApiKey {
                    key_id: rotated.issued.key_id,
                    client_id: rotated.client_id,
                    key: rotated.issued.text.to_string(),
                    expires_at: rotated.issued.expires_at.map(format_timestamp),
                }),
                replaced_key_id: Some(rotated.replaced_key_id),
                replaced_key_expires_at: Some(format_timestamp(rotated.replaced_expires_at)),
                user_errors: Vec::new(),
            },
            Err(error) => failed(identity_error(error)?),
        })
    }

    /// Revokes a key at once: requests using it fail from their next authentication on, and
    /// subscriptions opened with it close.
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        key_id: String,
        #[graphql(default)] reason: KeyRevocationReason,
    ) -> async_graphql::Result<DonePayload> {
        let capability = Capability::AdministerApiClients;
        let (caller, principal) = administrator(ctx, capability)?;
        let identity = ctx.data::<Arc<Identity>>()?;
        let owner = owner_of(caller, key_id.trim());
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
}
