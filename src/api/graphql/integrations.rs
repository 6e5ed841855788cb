//! Webhooks through GraphQL: registering and administering API clients' endpoints, and their
//! delivery log. Every field is for admins with a recent second factor (API-client
//! administration, `guard::FIELDS`); each change is made only after its access record is
//! durable. A `whsec_` secret appears only in the one response that creates it.
//!
//! The delivery log names events by position, id and type, never by matter or content:
//! administrators do not see matters (duties are separated).

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};

use super::account::{DonePayload, administrator, event_request_id, record_change};
use super::caller::Caller;
use super::errors::{UserError, api_error};
use crate::access::policy::{Capability, Decision};
use crate::integrations::webhooks::db::StoredKey;
use crate::integrations::webhooks::{
    Attempt, Delivery, DeliveryStatus, Endpoint, EndpointChange, EndpointStatus, NewEndpoint,
    Registered, Scheme, WebhookError, Webhooks,
};
use crate::log::time::format_timestamp;

const CAPABILITY: Capability = Capability::AdministerApiClients;
const TARGET: &str = "webhook_endpoint";
const FIELD: &str = "webhook_endpoint.settings";

#[derive(Default)]
pub struct WebhooksQuery;

#[derive(Default)]
pub struct WebhooksMutation;

/// How an endpoint's deliveries are signed (Standard Webhooks).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookScheme {
    /// ed25519 (`v1a`): Docket keeps the private key; the receiver verifies with `whpk_...`.
    #[default]
    #[graphql(name = "ED25519")]
    Ed25519,
    /// HMAC-SHA256 (`v1`) under a `whsec_...` secret both sides hold.
    #[graphql(name = "HMAC_SHA256")]
    HmacSha256,
}

impl From<WebhookScheme> for Scheme {
    fn from(value: WebhookScheme) -> Self {
        match value {
            WebhookScheme::Ed25519 => Scheme::Ed25519,
            WebhookScheme::HmacSha256 => Scheme::HmacSha256,
        }
    }
}

impl From<Scheme> for WebhookScheme {
    fn from(value: Scheme) -> Self {
        match value {
            Scheme::Ed25519 => WebhookScheme::Ed25519,
            Scheme::HmacSha256 => WebhookScheme::HmacSha256,
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookEndpointStatus {
    Active,
    Disabled,
    Removed,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookDeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: 410 Gone, or every retry failed.
    Failed,
    /// Not sent: the client may no longer receive the event.
    Withheld,
    /// Not sent: the endpoint was removed.
    Cancelled,
}

impl From<DeliveryStatus> for WebhookDeliveryStatus {
    fn from(value: DeliveryStatus) -> Self {
        match value {
            DeliveryStatus::Pending => WebhookDeliveryStatus::Pending,
            DeliveryStatus::Delivered => WebhookDeliveryStatus::Delivered,
            DeliveryStatus::Failed => WebhookDeliveryStatus::Failed,
            DeliveryStatus::Withheld => WebhookDeliveryStatus::Withheld,
            DeliveryStatus::Cancelled => WebhookDeliveryStatus::Cancelled,
        }
    }
}

impl From<WebhookDeliveryStatus> for DeliveryStatus {
    fn from(value: WebhookDeliveryStatus) -> Self {
        match value {
            WebhookDeliveryStatus::Pending => DeliveryStatus::Pending,
            WebhookDeliveryStatus::Delivered => DeliveryStatus::Delivered,
            WebhookDeliveryStatus::Failed => DeliveryStatus::Failed,
            WebhookDeliveryStatus::Withheld => DeliveryStatus::Withheld,
            WebhookDeliveryStatus::Cancelled => DeliveryStatus::Cancelled,
        }
    }
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(format_timestamp)
        .unwrap_or_default()
}

/// A signing key in force: the current one, or one still signing until `retiresAt`.
#[derive(SimpleObject)]
pub struct WebhookKey {
    pub key_id: String,
    pub scheme: WebhookScheme,
    /// The `whpk_` public key of an ed25519 key.
    pub public_key: Option<String>,
    pub created_at: String,
    pub retires_at: Option<String>,
}

/// An API client's webhook endpoint.
#[derive(SimpleObject)]
pub struct WebhookEndpoint {
    pub endpoint_id: String,
    pub client_id: String,
    pub url: String,
    /// Matter numbers asked for; empty for every matter the client may read.
    pub matters: Vec<String>,
    /// Event types asked for (`matter.task_*` for a prefix); empty for every type.
    pub event_types: Vec<String>,
    pub status: WebhookEndpointStatus,
    /// `administrator`, `gone` (the receiver answered 410) or `retries_exhausted`.
    pub disabled_reason: Option<String>,
    /// The next log position the endpoint will be considered for.
    pub next_position: u64,
    pub keys: Vec<WebhookKey>,
    pub created_at: String,
    pub updated_at: String,
}

fn endpoint_view(endpoint: Endpoint, keys: &[StoredKey]) -> WebhookEndpoint {
    WebhookEndpoint {
        status: match endpoint.status {
            EndpointStatus::Active => WebhookEndpointStatus::Active,
            EndpointStatus::Removed => WebhookEndpointStatus::Removed,
            EndpointStatus::Disabled | EndpointStatus::Registering => {
                WebhookEndpointStatus::Disabled
            }
        },
        endpoint_id: endpoint.endpoint_id,
        client_id: endpoint.client_id,
        url: endpoint.url,
        matters: endpoint.filter.matters,
        event_types: endpoint.filter.event_types,
        disabled_reason: endpoint.disabled_reason,
        next_position: endpoint.next_position,
        keys: keys
            .iter()
            .map(|key| WebhookKey {
                key_id: key.key_id.clone(),
                scheme: key.scheme.into(),
                public_key: key.public_key.clone(),
                created_at: time(key.created_at),
                retires_at: key.retires_at.map(time),
            })
            .collect(),
        created_at: time(endpoint.created_at),
        updated_at: time(endpoint.updated_at),
    }
}

/// One attempt of a delivery.
#[derive(SimpleObject)]
pub struct WebhookAttempt {
    pub number: i64,
    pub at: String,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    /// `status`, `redirect`, `timeout`, `connect`, `tls`, `refused_address`, ...; null on
    /// success.
    pub error_class: Option<String>,
    /// The start of a failed response's body (at most 200 characters).
    pub response_excerpt: Option<String>,
    pub next_attempt_at: Option<String>,
}

/// One event's delivery to an endpoint. Its id is the `webhook-id` header of every attempt
/// and replay.
#[derive(SimpleObject)]
pub struct WebhookDelivery {
    pub delivery_id: String,
    pub endpoint_id: String,
    pub position: u64,
    pub event_id: String,
    pub event_type: String,
    pub status: WebhookDeliveryStatus,
    pub attempt_count: i64,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub attempts: Vec<WebhookAttempt>,
}

fn delivery_view(delivery: Delivery, attempts: Vec<Attempt>) -> WebhookDelivery {
    WebhookDelivery {
        delivery_id: delivery.delivery_id,
        endpoint_id: delivery.endpoint_id,
        position: delivery.position,
        event_id: delivery.event_id,
        event_type: delivery.event_type,
        status: delivery.status.into(),
        attempt_count: delivery.attempts,
        next_attempt_at: delivery.next_attempt_at.map(time),
        created_at: time(delivery.created_at),
        finished_at: delivery.finished_at.map(time),
        attempts: attempts
            .into_iter()
            .map(|attempt| WebhookAttempt {
                number: attempt.attempt,
                at: time(attempt.started_at),
                status_code: attempt.status_code,
                latency_ms: attempt.latency_ms,
                error_class: attempt.error_class,
                response_excerpt: attempt.excerpt,
                next_attempt_at: attempt.next_attempt_at.map(time),
            })
            .collect(),
    }
}

#[derive(InputObject)]
pub struct RegisterWebhookEndpointInput {
    pub client_id: String,
    /// An `https` URL whose host resolves to public addresses only.
    pub url: String,
    #[graphql(default)]
    pub matters: Vec<String>,
    #[graphql(default)]
    pub event_types: Vec<String>,
    #[graphql(default)]
    pub scheme: WebhookScheme,
    /// Consider events from this log position on (default: those after the registration).
    pub from_position: Option<u64>,
}

#[derive(SimpleObject)]
pub struct WebhookEndpointPayload {
    pub endpoint: Option<WebhookEndpoint>,
    pub user_errors: Vec<UserError>,
}

/// An endpoint with a new key. `secret` (`whsec_...`, HMAC only) is in this response only.
#[derive(SimpleObject)]
pub struct WebhookKeyPayload {
    pub endpoint: Option<WebhookEndpoint>,
    pub key_id: Option<String>,
    pub scheme: Option<WebhookScheme>,
    pub secret: Option<String>,
    pub public_key: Option<String>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct WebhookDeliveryPayload {
    pub delivery: Option<WebhookDelivery>,
    pub user_errors: Vec<UserError>,
}

fn webhooks<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a Arc<Webhooks>> {
    ctx.data::<Arc<Webhooks>>()
        .ok()
        .or_else(|| {
            ctx.data::<Arc<crate::integrations::Integrations>>()
                .ok()
                .and_then(|integrations| integrations.webhooks())
        })
        .ok_or_else(|| api_error("UNAVAILABLE", "webhooks are not available"))
}

/// A webhook failure as a payload's user error, or (not the caller's fault) a GraphQL error.
fn user_error(error: WebhookError) -> async_graphql::Result<UserError> {
    if error.is_user_error() {
        return Ok(UserError {
            field: error.field().map(str::to_owned),
            code: error.code().to_owned(),
            message: error.public_message(),
        });
    }
    if error.is_transient() {
        tracing::warn!(%error, "webhook operation failed");
    } else {
        tracing::error!(%error, "webhook operation failed");
    }
    Err(api_error(error.code(), error.public_message()))
}

/// A webhook failure where no payload can carry it, as a GraphQL error.
fn failure(error: WebhookError) -> async_graphql::Error {
    match user_error(error) {
        Ok(user) => api_error(&user.code, user.message),
        Err(error) => error,
    }
}

async fn endpoint_payload(
    webhooks: &Webhooks,
    result: Result<Endpoint, WebhookError>,
) -> async_graphql::Result<WebhookEndpointPayload> {
    let endpoint = match result {
        Ok(endpoint) => endpoint,
        Err(error) => {
            return Ok(WebhookEndpointPayload {
                endpoint: None,
                user_errors: vec![user_error(error)?],
            });
        }
    };
    let keys = webhooks
        .db()
        .signing_keys(
            &endpoint.endpoint_id,
            crate::integrations::webhooks::db::now_ms(),
        )
        .await
        .map_err(failure)?;
    Ok(WebhookEndpointPayload {
        endpoint: Some(endpoint_view(endpoint, &keys)),
        user_errors: Vec::new(),
    })
}

async fn key_payload(
    webhooks: &Webhooks,
    result: Result<Registered, WebhookError>,
) -> async_graphql::Result<WebhookKeyPayload> {
    let registered = match result {
        Ok(registered) => registered,
        Err(error) => {
            return Ok(WebhookKeyPayload {
                endpoint: None,
                key_id: None,
                scheme: None,
                secret: None,
                public_key: None,
                user_errors: vec![user_error(error)?],
            });
        }
    };
    let (secret, public_key) = match registered.scheme {
        Scheme::HmacSha256 => (Some(registered.receiver_key.to_string()), None),
        Scheme::Ed25519 => (None, Some(registered.receiver_key.to_string())),
    };
    let endpoint = endpoint_payload(webhooks, Ok(registered.endpoint)).await?;
    Ok(WebhookKeyPayload {
        endpoint: endpoint.endpoint,
        key_id: Some(registered.key_id),
        scheme: Some(registered.scheme.into()),
        secret,
        public_key,
        user_errors: Vec::new(),
    })
}

/// Notes and records a change to an endpoint (or a delivery) before it is made.
async fn record(
    caller: &Caller,
    target: &'static str,
    id: Option<&str>,
    operation: &str,
) -> async_graphql::Result<()> {
    record_change(caller, CAPABILITY, target, id, FIELD, operation).await
}

#[Object]
impl WebhooksQuery {
    /// Webhook endpoints, of one API client or all, oldest first.
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
        client_id: Option<String>,
        #[graphql(default)] include_removed: bool,
    ) -> async_graphql::Result<Vec<WebhookEndpoint>> {
        let (caller, _) = administrator(ctx, CAPABILITY)?;
        let webhooks = webhooks(ctx)?;
        caller.note(
            None,
            TARGET,
            None,
            Some("webhook_endpoint.details"),
            Decision::Allowed(CAPABILITY.as_str()),
        );
        let listed = webhooks
            .endpoints(client_id.as_deref().map(str::trim), include_removed)
            .await
            .map_err(failure)?;
        Ok(listed
            .into_iter()
            .map(|(endpoint, keys)| endpoint_view(endpoint, &keys))
            .collect())
    }

    /// An endpoint's delivery log, newest first, each delivery with its attempts.
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        endpoint_id: String,
        status: Option<WebhookDeliveryStatus>,
        #[graphql(desc = "Only deliveries of events before this log position.")]
        before_position: Option<u64>,
        #[graphql(desc = "How many deliveries (1 to 100).", default = 50)] first: i32,
    ) -> async_graphql::Result<Vec<WebhookDelivery>> {
        let (caller, _) = administrator(ctx, CAPABILITY)?;
        let webhooks = webhooks(ctx)?;
        if !(1..=100).contains(&first) {
            return Err(api_error("INVALID_INPUT", "first must be 1 to 100"));
        }
        caller.note(
            None,
            TARGET,
            None,
            Some("webhook_endpoint.deliveries"),
            Decision::Allowed(CAPABILITY.as_str()),
        );
        let deliveries = webhooks
            .db()
            .deliveries(
                endpoint_id.trim(),
                status.map(Into::into),
                before_position,
                i64::from(first),
            )
            .await
            .map_err(failure)?;
        let mut views = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let attempts = webhooks
                .db()
                .attempts(&delivery.delivery_id)
                .await
                .map_err(failure)?;
            views.push(delivery_view(delivery, attempts));
        }
        Ok(views)
    }
}

#[Object]
impl WebhooksMutation {
    /// Registers an endpoint for an API client. With `ED25519` (the default) the answer
    /// carries the `whpk_` public key; with `HMAC_SHA256` the `whsec_` secret, shown only here.
    async fn register_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: RegisterWebhookEndpointInput,
    ) -> async_graphql::Result<WebhookKeyPayload> {
        let (caller, principal) = administrator(ctx, CAPABILITY)?;
        let webhooks = webhooks(ctx)?;
        record(caller, TARGET, None, "registerWebhookEndpoint").await?;
        let new = NewEndpoint {
            client_id: input.client_id,
            url: input.url,
            matters: input.matters,
            event_types: input.event_types,
            scheme: input.scheme.into(),
            from_position: input.from_position,
        };
        let result = webhooks
            .register(&principal.actor, event_request_id(caller), new)
            .await;
        key_payload(webhooks, result).await
    }

    /// Changes an endpoint's URL or filter (arguments left out stay as they are).
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        endpoint_id: String,
        url: Option<String>,
        matters: Option<Vec<String>>,
        event_types: Option<Vec<String>>,
    ) -> async_graphql::Result<WebhookEndpointPayload> {
        let (caller, principal) = administrator(ctx, CAPABILITY)?;
        let webhooks = webhooks(ctx)?;
        record(caller, TARGET, Some(&endpoint_id), "updateWebhookEndpoint").await?;
        let change = EndpointChange {
            url,
            matters,
            event_types,
        };
        let result = webhooks
            .update(
                &principal.actor,
                event_request_id(caller),
                &endpoint_id,
                change,
            )
            .await;
        endpoint_payload(webhooks, result).await
    }

    /// Adds a new signing key; the keys in force keep signing beside it for `overlapSeconds`
    /// (default a day, at most 30 days; 0 retires them at once). During the overlap every
    /// delivery carries one signature per key.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        endpoint_id: String,
        scheme: Option<WebhookScheme>,
        overlap_seconds: Option<u32>,
    ) -> async_graphql::Result<WebhookKeyPayload> {
        let (caller, principal) = administrator(ctx, CAPABILITY)?;
        let webhooks = webhooks(ctx)?;
        record(caller, TARGET, Some(&endpoint_id), "rotateWebhookSecret").await?;
        let overlap = overlap_seconds.map(|seconds| Duration::from_secs(u64::from(seconds)));
        let result = webhooks
            .rotate_secret(
                &principal.actor,
                event_request_id(caller),
                &endpoint_id,
                scheme.map(Into::into),
                overlap,
            )
            .await;
        key_payload(webhooks, result).await
    }

    /// Stops deliveries to an endpoint; events keep accumulating for it.
    async fn disable_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        endpoint_id: String,
    ) -> async_graphql::Result<WebhookEndpointPayload> {
        let (caller, principal) = administrator(ctx, CAPABILITY)?;
        let webhooks = webhooks(ctx)?;
        record(caller, TARGET, Some(&endpoint_id), "disableWebhookEndpoint").await?;
        let result = webhooks
            .disable(&principal.actor, event_request_id(caller), &endpoint_id)
            .await;
        endpoint_payload(webhooks, result).await
    }

    /// Resumes deliveries to a disabled endpoint: what accumulated meanwhile follows, and with
    /// `retryFailed` (the default) failed deliveries are sent again.
    async fn enable_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        endpoint_id: String,
        #[graphql(default = true)] retry_failed: bool,
    ) -> async_graphql::Result<WebhookEndpointPayload> {
        let (caller, principal) = administrator(ctx, CAPABILITY)?;
        let webhooks = webhooks(ctx)?;
        record(caller, TARGET, Some(&endpoint_id), "enableWebhookEndpoint").await?;
        let result = webhooks
            .enable(
                &principal.actor,
                event_request_id(caller),
                &endpoint_id,
                retry_failed,
            )
            .await;
        endpoint_payload(webhooks, result).await
    }

    /// Removes an endpoint: pending deliveries are cancelled and its keys destroyed.
    async fn remove_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        endpoint_id: String,
    ) -> async_graphql::Result<DonePayload> {
        let (caller, principal) = administrator(ctx, CAPABILITY)?;
        let webhooks = webhooks(ctx)?;
        record(caller, TARGET, Some(&endpoint_id), "removeWebhookEndpoint").await?;
        Ok(
            match webhooks
                .remove(&principal.actor, event_request_id(caller), &endpoint_id)
                .await
            {
                Ok(()) => DonePayload::done(),
                Err(error) => DonePayload::failed(user_error(error)?),
            },
        )
    }

    /// Sends a delivery again with the same `webhook-id` (receivers drop duplicates by it).
    async fn replay_webhook_delivery(
        &self,
        ctx: &Context<'_>,
        delivery_id: String,
    ) -> async_graphql::Result<WebhookDeliveryPayload> {
        let (caller, _) = administrator(ctx, CAPABILITY)?;
        let webhooks = webhooks(ctx)?;
        record(
            caller,
            "webhook_delivery",
            Some(&delivery_id),
            "replayWebhookDelivery",
        )
        .await?;
        Ok(match webhooks.replay(&delivery_id).await {
            Ok(delivery) => {
                let attempts = webhooks
                    .db()
                    .attempts(&delivery.delivery_id)
                    .await
                    .map_err(failure)?;
                WebhookDeliveryPayload {
                    delivery: Some(delivery_view(delivery, attempts)),
                    user_errors: Vec::new(),
                }
            }
            Err(error) => WebhookDeliveryPayload {
                delivery: None,
                user_errors: vec![user_error(error)?],
            },
        })
    }
}
