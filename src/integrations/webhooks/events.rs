//! The webhook events of the log, on the `integrations` stream: every change to an endpoint,
//! by an administrator or by Docket itself (an endpoint disabled after its receiver answered
//! 410 or its last retry failed). Their schemas are in schema/events/. They name endpoints,
//! clients, key ids and public keys; never a secret, a private key or a URL's query string.

use serde::Serialize;

use super::WebhookError;
use crate::log::{Actor, EventDraft, StreamId};
use crate::store::{AppendRequest, EventLog};

/// The stream every webhook event is appended to.
pub const STREAM: &str = "integrations";

pub const ENDPOINT_REGISTERED: &str = "webhook.endpoint_registered";
pub const ENDPOINT_UPDATED: &str = "webhook.endpoint_updated";
pub const SECRET_ROTATED: &str = "webhook.secret_rotated";
pub const ENDPOINT_DISABLED: &str = "webhook.endpoint_disabled";
pub const ENDPOINT_ENABLED: &str = "webhook.endpoint_enabled";
pub const ENDPOINT_REMOVED: &str = "webhook.endpoint_removed";

/// Every webhook event type with its schema version.
pub const TYPES: &[(&str, u32)] = &[
    (ENDPOINT_REGISTERED, 1),
    (ENDPOINT_UPDATED, 1),
    (SECRET_ROTATED, 1),
    (ENDPOINT_DISABLED, 1),
    (ENDPOINT_ENABLED, 1),
    (ENDPOINT_REMOVED, 1),
];

/// An endpoint was registered for an API client.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointRegistered {
    pub endpoint_id: String,
    pub client_id: String,
    /// The URL without its query string (which may hold a receiver's token).
    pub target: String,
    pub matters: Vec<String>,
    pub event_types: Vec<String>,
    pub scheme: &'static str,
    pub key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The first log position the endpoint is considered for.
    pub from_position: u64,
}

/// An endpoint's URL or filter changed.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointUpdated {
    pub endpoint_id: String,
    pub target: String,
    pub matters: Vec<String>,
    pub event_types: Vec<String>,
}

/// A new signing key; the previous keys sign beside it until `previous_retire_at`.
#[derive(Debug, Clone, Serialize)]
pub struct SecretRotated {
    pub endpoint_id: String,
    pub key_id: String,
    pub scheme: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    pub previous_retire_at: String,
}

/// Nothing more is sent to an endpoint until it is enabled.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointDisabled {
    pub endpoint_id: String,
    /// `administrator`, `gone` (the receiver answered 410) or `retries_exhausted`.
    pub reason: String,
    /// The delivery whose failure disabled it, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
}

/// An endpoint receives deliveries again.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointEnabled {
    pub endpoint_id: String,
    /// How many failed deliveries were queued again.
    pub requeued: u64,
}

/// An endpoint was removed and its keys destroyed.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointRemoved {
    pub endpoint_id: String,
}

/// The URL as events record it: scheme, host, port and path, without query or fragment.
pub fn target_of(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Appends one webhook event to the `integrations` stream.
pub async fn append(
    log: &EventLog,
    actor: &Actor,
    request_id: Option<&str>,
    event_type: &'static str,
    payload: &impl Serialize,
) -> Result<u64, WebhookError> {
    let payload = serde_json::to_value(payload)
        .map_err(|error| WebhookError::internal("a webhook event could not be encoded", error))?;
    let stream = StreamId::parse(STREAM)
        .map_err(|error| WebhookError::internal("the integrations stream", error))?;
    let mut request = AppendRequest::new(
        stream,
        actor.clone(),
        vec![EventDraft::new(event_type, payload)],
    );
    request.request_id = request_id.map(str::to_owned);
    let outcome = log
        .append(request)
        .await
        .map_err(|error| WebhookError::internal("the webhook event was not appended", error))?;
    Ok(outcome.last_position)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_drop_query_and_fragment() {
        let url = reqwest::Url::parse("https://hooks.example.com:8443/in?token=s3cret").unwrap();
        assert_eq!(target_of(&url), "https://hooks.example.com:8443/in");
    }
}
