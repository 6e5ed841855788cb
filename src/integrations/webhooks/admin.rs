//! Endpoint administration: registering, changing, rotating keys, disabling, enabling,
//! removing, and replaying a delivery. The callers (GraphQL resolvers) have already decided
//! that the actor may administer API clients and recorded it; these functions check the change
//! against the store, make it, and record it in the log. A change whose event cannot be
//! appended is undone.

use std::time::Duration;

use zeroize::Zeroizing;

use super::db::{EndpointStatus, StoredKey, millis, now_ms};
use super::events::{self, target_of};
use super::filter::EventFilter;
use super::secrets::{new_key_id, seal_secret, subject};
use super::signing::{Scheme, SigningSecret};
use super::{Endpoint, WebhookError, Webhooks};
use crate::log::Actor;
use crate::log::time::format_timestamp;

/// Most endpoints (not removed) one API client may have.
pub const MAX_ENDPOINTS_PER_CLIENT: i64 = 20;
/// The longest rotation overlap accepted.
pub const MAX_OVERLAP: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// A new endpoint as an administrator describes it.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub client_id: String,
    pub url: String,
    pub matters: Vec<String>,
    pub event_types: Vec<String>,
    pub scheme: Scheme,
    /// The first log position to consider; `None` for events after the registration.
    pub from_position: Option<u64>,
}

/// A change to an endpoint's URL or filter (`None`: left as it is).
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub matters: Option<Vec<String>>,
    pub event_types: Option<Vec<String>>,
}

/// An endpoint with a new key. `receiver_key` is what the receiver verifies with: the
/// `whsec_` secret of an HMAC key (shown only in this answer) or the `whpk_` public key.
pub struct Registered {
    pub endpoint: Endpoint,
    pub key_id: String,
    pub scheme: Scheme,
    pub receiver_key: Zeroizing<String>,
}

fn new_endpoint_id() -> Result<String, WebhookError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|_| WebhookError::internal("endpoint id", "no randomness"))?;
    Ok(format!("we_{}", hex::encode(bytes)))
}

fn filter_of(matters: &[String], event_types: &[String]) -> Result<EventFilter, WebhookError> {
    EventFilter::new(matters, event_types)
        .map_err(|error| WebhookError::invalid(error.field, error.message))
}

impl Webhooks {
    /// Registers an endpoint for an API client, active at once.
    pub async fn register(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        new: NewEndpoint,
    ) -> Result<Registered, WebhookError> {
        let client_id = new.client_id.trim().to_owned();
        if !self
            .parts
            .identity
            .directory()
            .api_clients
            .contains_key(&client_id)
        {
            return Err(WebhookError::NotFound { what: "API client" });
        }
        let filter = filter_of(&new.matters, &new.event_types)?;
        let url = self.egress.check_target(&new.url).await?;
        if new.from_position == Some(0) {
            return Err(WebhookError::invalid(
                "fromPosition",
                "positions start at 1",
            ));
        }
        if self.db.endpoint_count(&client_id).await? >= MAX_ENDPOINTS_PER_CLIENT {
            return Err(WebhookError::invalid(
                "clientId",
                format!("a client may have at most {MAX_ENDPOINTS_PER_CLIENT} endpoints"),
            ));
        }
        let head = self
            .parts
            .log
            .head()
            .await
            .map_err(|error| WebhookError::internal("the log", error))?;
        let from_position = new.from_position.unwrap_or(head.position + 1);
        let endpoint_id = new_endpoint_id()?;
        let now = now_ms();
        let endpoint = Endpoint {
            endpoint_id: endpoint_id.clone(),
            client_id: client_id.clone(),
            url: url.to_string(),
            filter: filter.clone(),
            status: EndpointStatus::Registering,
            disabled_reason: None,
            next_position: from_position,
            created_at: now,
            updated_at: now,
        };
        let (key, secret) = self.new_key(&endpoint_id, new.scheme, now).await?;
        self.db.insert_endpoint(&endpoint, &key).await?;
        let event = events::EndpointRegistered {
            endpoint_id: endpoint_id.clone(),
            client_id,
            target: target_of(&url),
            matters: filter.matters,
            event_types: filter.event_types,
            scheme: new.scheme.as_str(),
            key_id: key.key_id.clone(),
            public_key: key.public_key.clone(),
            from_position,
        };
        if let Err(error) = events::append(
            &self.parts.log,
            actor,
            request_id,
            events::ENDPOINT_REGISTERED,
            &event,
        )
        .await
        {
            self.forget_registration(&endpoint_id).await;
            return Err(error);
        }
        let active = [EndpointStatus::Registering];
        self.db
            .set_status(&endpoint_id, &active, EndpointStatus::Active, None, now)
            .await?;
        self.endpoints_changed.notify_one();
        let endpoint = self
            .db
            .endpoint(&endpoint_id)
            .await?
            .ok_or(WebhookError::NotFound {
                what: "webhook endpoint",
            })?;
        Ok(Registered {
            endpoint,
            key_id: key.key_id,
            scheme: new.scheme,
            receiver_key: secret.receiver_key(),
        })
    }

    async fn forget_registration(&self, endpoint_id: &str) {
        if let Err(error) = self.db.delete_registering(endpoint_id).await {
            tracing::error!(%error, endpoint_id, "an unrecorded webhook registration stays stored");
        }
        let erased_at = format_timestamp(chrono::Utc::now());
        if let Err(error) = self
            .parts
            .vault
            .erase(&subject(endpoint_id), &erased_at)
            .await
        {
            tracing::error!(%error, endpoint_id, "the keys of an unrecorded endpoint stay stored");
        }
    }

    /// A new key for an endpoint, sealed for storage, and its secret.
    async fn new_key(
        &self,
        endpoint_id: &str,
        scheme: Scheme,
        now: i64,
    ) -> Result<(StoredKey, SigningSecret), WebhookError> {
        let secret = SigningSecret::generate(scheme)
            .map_err(|error| WebhookError::internal("a webhook key", error))?;
        let key_id = new_key_id()?;
        let sealed = seal_secret(&self.parts.vault, endpoint_id, &key_id, &secret).await?;
        let key = StoredKey {
            key_id,
            endpoint_id: endpoint_id.to_owned(),
            scheme,
            sealed,
            public_key: secret.public_key(),
            created_at: now,
            retires_at: None,
        };
        Ok((key, secret))
    }

    /// The endpoint `endpoint_id` unless it was removed.
    pub(super) async fn live_endpoint(&self, endpoint_id: &str) -> Result<Endpoint, WebhookError> {
        match self.db.endpoint(endpoint_id.trim()).await? {
            Some(endpoint)
                if matches!(
                    endpoint.status,
                    EndpointStatus::Active | EndpointStatus::Disabled
                ) =>
            {
                Ok(endpoint)
            }
            _ => Err(WebhookError::NotFound {
                what: "webhook endpoint",
            }),
        }
    }

    /// Changes an endpoint's URL or filter; the new URL is checked as at registration.
    pub async fn update(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        endpoint_id: &str,
        change: EndpointChange,
    ) -> Result<Endpoint, WebhookError> {
        let before = self.live_endpoint(endpoint_id).await?;
        let filter = filter_of(
            change.matters.as_deref().unwrap_or(&before.filter.matters),
            change
                .event_types
                .as_deref()
                .unwrap_or(&before.filter.event_types),
        )?;
        let url = match &change.url {
            Some(url) => self.egress.check_target(url).await?,
            None => reqwest::Url::parse(&before.url).map_err(|_| WebhookError::Corrupt {
                what: "webhook endpoint",
            })?,
        };
        let id = before.endpoint_id.as_str();
        if !self
            .db
            .update_endpoint(id, url.as_str(), &filter, now_ms())
            .await?
        {
            return Err(WebhookError::NotFound {
                what: "webhook endpoint",
            });
        }
        let event = events::EndpointUpdated {
            endpoint_id: id.to_owned(),
            target: target_of(&url),
            matters: filter.matters,
            event_types: filter.event_types,
        };
        if let Err(error) = events::append(
            &self.parts.log,
            actor,
            request_id,
            events::ENDPOINT_UPDATED,
            &event,
        )
        .await
        {
            let _ = self
                .db
                .update_endpoint(id, &before.url, &before.filter, before.updated_at)
                .await;
            return Err(error);
        }
        self.endpoints_changed.notify_one();
        self.live_endpoint(id).await
    }

    /// Adds a new key (of `scheme`, or the current key's); the keys signing now keep signing
    /// beside it for `overlap` (the configured default when `None`; zero retires them at once).
    pub async fn rotate_secret(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        endpoint_id: &str,
        scheme: Option<Scheme>,
        overlap: Option<Duration>,
    ) -> Result<Registered, WebhookError> {
        let endpoint = self.live_endpoint(endpoint_id).await?;
        let overlap = overlap.unwrap_or(self.settings.rotation_overlap);
        if overlap > MAX_OVERLAP {
            return Err(WebhookError::invalid("overlapSeconds", "at most 30 days"));
        }
        let id = endpoint.endpoint_id.as_str();
        let now = now_ms();
        let previous = self.db.signing_keys(id, now).await?;
        let scheme = scheme
            .or_else(|| previous.first().map(|key| key.scheme))
            .unwrap_or(Scheme::Ed25519);
        let (key, secret) = self.new_key(id, scheme, now).await?;
        let retire_at = now.saturating_add(millis(overlap));
        self.db.rotate_key(&key, retire_at, now).await?;
        let event = events::SecretRotated {
            endpoint_id: id.to_owned(),
            key_id: key.key_id.clone(),
            scheme: scheme.as_str(),
            public_key: key.public_key.clone(),
            previous_retire_at: chrono::DateTime::from_timestamp_millis(retire_at)
                .map(format_timestamp)
                .unwrap_or_default(),
        };
        if let Err(error) = events::append(
            &self.parts.log,
            actor,
            request_id,
            events::SECRET_ROTATED,
            &event,
        )
        .await
        {
            let _ = self.db.undo_rotation(&key.key_id, &previous).await;
            return Err(error);
        }
        Ok(Registered {
            endpoint,
            key_id: key.key_id,
            scheme,
            receiver_key: secret.receiver_key(),
        })
    }

    /// Endpoints, of one client or all, with the keys that sign for each now.
    pub async fn endpoints(
        &self,
        client_id: Option<&str>,
        include_removed: bool,
    ) -> Result<Vec<(Endpoint, Vec<StoredKey>)>, WebhookError> {
        let now = now_ms();
        let mut listed = Vec::new();
        for endpoint in self.db.endpoints(client_id, include_removed).await? {
            let keys = self.db.signing_keys(&endpoint.endpoint_id, now).await?;
            listed.push((endpoint, keys));
        }
        Ok(listed)
    }
}
