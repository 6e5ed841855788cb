//! API clients: registering an integration with its scopes, changing them, and issuing,
//! rotating and revoking its keys. The callers have already asked the policy whether the actor
//! may administer API clients; these functions check the request against the directory and
//! record it as events. A key's text is returned once and stored only hashed.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use super::admin::{identifier, text};
use super::credentials::NewApiKey;
use super::scopes::{ClientScopes, GRANTABLE_COMMANDS, MAX_LISTED_MATTERS, MatterReach, RateLimit};
use super::secret::token;
use super::{Identity, IdentityError};
use crate::domain::DomainEvent;
use crate::domain::identity::*;
use crate::log::Actor;
use crate::log::time::format_timestamp;

/// An API key just issued (its text is shown once).
pub struct IssuedKey {
    pub key_id: String,
    pub text: Zeroizing<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A rotation: the new key (its text shown once) and when the key it replaces stops working.
pub struct RotatedKey {
    pub client_id: String,
    pub issued: IssuedKey,
    pub replaced_key_id: String,
    pub replaced_expires_at: DateTime<Utc>,
}

/// Longest grace period of a rotation, in minutes (30 days).
pub const MAX_GRACE_MINUTES: u32 = 30 * 24 * 60;

/// Scopes as an administrator asks for them; [`ScopesRequest::check`] turns them into
/// [`ClientScopes`] or says what is wrong. They replace the client's scopes as a whole.
#[derive(Debug, Clone)]
pub struct ScopesRequest {
    pub reach: ApiClientReach,
    /// Matter numbers, for a `listed` reach only.
    pub matters: Vec<String>,
    /// Mutation fields, each one of [`GRANTABLE_COMMANDS`].
    pub commands: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub rate_limit: RateLimit,
    /// Whether the client receives alerts.
    pub alerts: bool,
}

impl Default for ScopesRequest {
    fn default() -> Self {
        let scopes = ClientScopes::default();
        ScopesRequest {
            reach: ApiClientReach::Team,
            matters: Vec::new(),
            commands: scopes.commands.into_iter().collect(),
            expires_at: None,
            rate_limit: scopes.rate_limit,
            alerts: false,
        }
    }
}

impl ScopesRequest {
    /// The scopes asked for, checked at `now`.
    pub fn check(&self, now: DateTime<Utc>) -> Result<ClientScopes, IdentityError> {
        let mut matters = BTreeSet::new();
        for number in &self.matters {
            let number = text("matterNumbers", number, 64)?.to_ascii_uppercase();
            if number.chars().any(char::is_control) {
                return Err(IdentityError::invalid(
                    "matterNumbers",
                    "a matter number has no control characters",
                ));
            }
            matters.insert(number);
        }
        let reach = match self.reach {
            ApiClientReach::Listed if matters.is_empty() => {
                return Err(IdentityError::invalid(
                    "matterNumbers",
                    "a listed reach names at least one matter",
                ));
            }
            ApiClientReach::Listed if matters.len() > MAX_LISTED_MATTERS => {
                return Err(IdentityError::invalid(
                    "matterNumbers",
                    format!("at most {MAX_LISTED_MATTERS} matters"),
                ));
            }
            ApiClientReach::Listed => MatterReach::Listed(matters),
            _ if !matters.is_empty() => {
                return Err(IdentityError::invalid(
                    "matterNumbers",
                    "only a listed reach names matters",
                ));
            }
            ApiClientReach::Team => MatterReach::Team,
            ApiClientReach::All => MatterReach::All,
        };
        let mut commands = BTreeSet::new();
        for command in &self.commands {
            let command = command.trim();
            if !GRANTABLE_COMMANDS.contains(&command) {
                return Err(IdentityError::invalid(
                    "commands",
                    format!(
                        "an API client may be granted only {}",
                        GRANTABLE_COMMANDS.join(", ")
                    ),
                ));
            }
            commands.insert(command.to_owned());
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Err(IdentityError::invalid("expiresAt", "must be in the future"));
        }
        let rate_limit = RateLimit::new(self.rate_limit.requests, self.rate_limit.per_seconds)
            .ok_or_else(|| {
                IdentityError::invalid(
                    "rateLimit",
                    format!(
                        "1 to {} requests per 1 to {} seconds",
                        RateLimit::MAX_REQUESTS,
                        RateLimit::MAX_WINDOW_SECS
                    ),
                )
            })?;
        Ok(ClientScopes {
            matters: reach,
            commands,
            expires_at: self.expires_at.map(format_timestamp),
            rate_limit,
            alerts: self.alerts,
        })
    }
}

impl Identity {
    /// Registers an API client with the default scopes (its teams' matters; time and
    /// documents; no expiry; the default rate limit).
    pub async fn register_api_client(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        client_id: &str,
        name: &str,
    ) -> Result<(), IdentityError> {
        self.register_api_client_with(actor, request_id, client_id, name, None)
            .await
    }

    /// Registers an API client with `scopes` (the defaults when `None`). The registration and
    /// the scopes are appended together, so no client exists without recorded scopes.
    pub async fn register_api_client_with(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        client_id: &str,
        name: &str,
        scopes: Option<&ScopesRequest>,
    ) -> Result<(), IdentityError> {
        let client_id = identifier("clientId", client_id)?;
        let name = text("name", name, 200)?;
        let scopes = match scopes {
            Some(scopes) => scopes.check(Utc::now())?,
            None => ClientScopes::default(),
        };
        self.change(actor, request_id, |directory| {
            if directory.api_clients.contains_key(&client_id)
                || directory.user(&client_id).is_some()
            {
                return Err(IdentityError::IdTaken);
            }
            Ok(vec![
                DomainEvent::ApiClientRegistered(ApiClientRegistered {
                    client_id: client_id.clone(),
                    name: name.clone(),
                }),
                DomainEvent::ApiClientScopesSet(scopes.to_event(&client_id)),
            ])
        })
        .await?;
        Ok(())
    }

    /// Replaces an API client's scopes; they apply to its next request (and to its open
    /// subscriptions at their next event). Returns the scopes now in force.
    pub async fn set_api_client_scopes(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        client_id: &str,
        scopes: &ScopesRequest,
    ) -> Result<ClientScopes, IdentityError> {
        let scopes = scopes.check(Utc::now())?;
        let client_id = client_id.trim();
        self.change(actor, request_id, |directory| {
            let client = directory
                .api_clients
                .get(client_id)
                .ok_or(IdentityError::NotFound { what: "API client" })?;
            if client.scopes == scopes {
                return Ok(Vec::new());
            }
            Ok(vec![DomainEvent::ApiClientScopesSet(
                scopes.to_event(client_id),
            )])
        })
        .await?;
        Ok(scopes)
    }

    /// Issues a key to an API client. The key's text is returned once and stored only hashed.
    pub async fn issue_api_key(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        client_id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<IssuedKey, IdentityError> {
        if !self.directory().api_clients.contains_key(client_id) {
            return Err(IdentityError::NotFound { what: "API client" });
        }
        let key = self.store_new_key(client_id, expires_at).await?;
        self.append(
            actor,
            request_id,
            None,
            vec![DomainEvent::ApiKeyIssued(ApiKeyIssued {
                client_id: client_id.to_owned(),
                key_id: key.key_id.clone(),
                expires_at: expires_at.map(format_timestamp),
            })],
        )
        .await?;
        Ok(key)
    }

    /// Creates a key and stores its hash. The hash is stored before the key exists in the log,
    /// so a key the log names can always be checked; a key the log never names proves nobody.
    async fn store_new_key(
        &self,
        client_id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<IssuedKey, IdentityError> {
        let key = token::issue_api_key()?;
        self.credentials
            .create_api_key(&NewApiKey {
                key_id: key.key_id.clone(),
                client_id: client_id.to_owned(),
                secret_hash: key.secret_hash.to_hex(),
                created_at: Utc::now(),
                expires_at,
            })
            .await?;
        Ok(IssuedKey {
            key_id: key.key_id,
            text: key.text,
            expires_at,
        })
    }

    /// Issues a new key to the client of `key_id` (expiring at `expires_at`, if given) and
    /// makes `key_id` stop working `grace_minutes` from now (0: at once), or at its own expiry
    /// if that comes sooner. Both are recorded together (`api_client.key_issued`, then
    /// `api_client.key_rotated`).
    pub async fn rotate_api_key(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        key_id: &str,
        grace_minutes: u32,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<RotatedKey, IdentityError> {
        if grace_minutes > MAX_GRACE_MINUTES {
            return Err(IdentityError::invalid(
                "graceMinutes",
                format!("must be 0 to {MAX_GRACE_MINUTES}"),
            ));
        }
        let now = Utc::now();
        if expires_at.is_some_and(|at| at <= now) {
            return Err(IdentityError::invalid("expiresAt", "must be in the future"));
        }
        let grace_ends = now + chrono::Duration::minutes(i64::from(grace_minutes));
        let now_text = format_timestamp(now);
        let client_id = self
            .directory()
            .api_clients
            .values()
            .find(|client| client.keys.contains_key(key_id))
            .map(|client| client.client_id.clone())
            .ok_or(IdentityError::NotFound { what: "API key" })?;
        let issued = self.store_new_key(&client_id, expires_at).await?;
        let chosen = std::sync::Mutex::new(grace_ends);
        self.change(actor, request_id, |directory| {
            let key = directory
                .api_clients
                .get(&client_id)
                .and_then(|client| client.keys.get(key_id))
                .ok_or(IdentityError::NotFound { what: "API key" })?;
            if key.replaced_by.is_some() {
                return Err(IdentityError::invalid(
                    "keyId",
                    "the key was already replaced",
                ));
            }
            if key
                .expires_at
                .as_deref()
                .is_some_and(|at| at <= now_text.as_str())
            {
                return Err(IdentityError::invalid("keyId", "the key has expired"));
            }
            // A rotation never extends a key's life.
            let ends = key
                .expires_at
                .as_deref()
                .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                .map(|at| at.with_timezone(&Utc))
                .filter(|at| *at < grace_ends)
                .unwrap_or(grace_ends);
            if let Ok(mut chosen) = chosen.lock() {
                *chosen = ends;
            }
            Ok(vec![
                DomainEvent::ApiKeyIssued(ApiKeyIssued {
                    client_id: client_id.clone(),
                    key_id: issued.key_id.clone(),
                    expires_at: expires_at.map(format_timestamp),
                }),
                DomainEvent::ApiKeyRotated(ApiKeyRotated {
                    client_id: client_id.clone(),
                    key_id: key_id.to_owned(),
                    replaced_by: issued.key_id.clone(),
                    expires_at: format_timestamp(ends),
                }),
            ])
        })
        .await?;
        let ends = chosen.lock().map(|at| *at).unwrap_or(now);
        // The directory decides a key's expiry (authentication checks it in memory); the store
        // follows so that it never lets through what the directory refuses.
        if let Err(error) = self.credentials.shorten_api_key_expiry(key_id, ends).await {
            tracing::warn!(%error, "a rotated key's expiry was not copied to the credential store");
        }
        Ok(RotatedKey {
            client_id,
            issued,
            replaced_key_id: key_id.to_owned(),
            replaced_expires_at: ends,
        })
    }

    /// Revokes a key at once (open requests using it fail from their next check on).
    pub async fn revoke_api_key(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        key_id: &str,
        reason: &str,
    ) -> Result<(), IdentityError> {
        let client_id = self
            .directory()
            .api_clients
            .values()
            .find(|client| client.keys.contains_key(key_id))
            .map(|client| client.client_id.clone())
            .ok_or(IdentityError::NotFound { what: "API key" })?;
        self.credentials.revoke_api_key(key_id, Utc::now()).await?;
        self.append(
            actor,
            request_id,
            None,
            vec![DomainEvent::ApiKeyRevoked(ApiKeyRevoked {
                client_id,
                key_id: key_id.to_owned(),
                reason: reason.to_owned(),
            })],
        )
        .await?;
        Ok(())
    }
}
