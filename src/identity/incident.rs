//! Containing an incident: withdrawing every credential of one principal, or of everyone (a
//! lockdown), as one operation recorded as one `auth.credentials_revoked` event.
//!
//! The credential store is changed first and the event appended after: if the append fails
//! the credentials stay withdrawn (the safe side) and the caller gets the error. Sessions are
//! checked against the store on every request and API keys against both the store and the
//! directory, so both stop working at once, here and in every process sharing PostgreSQL; an
//! open subscription ends at its next validity check (`Identity::still_valid`).

use chrono::Utc;

use super::admin::text;
use super::{Identity, IdentityError};
use crate::domain::DomainEvent;
use crate::domain::identity::CredentialsRevoked;
use crate::log::Actor;

/// Longest reason recorded with a revocation.
pub const REASON_MAX: usize = 1_000;

/// Whose credentials a revocation withdraws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whose {
    User(String),
    ApiClient(String),
    /// Everyone: every session, every API key and every pending enrolment (a lockdown).
    Everyone,
}

impl Whose {
    /// Parses `user:<id>`, `api_client:<id>` or `*`.
    pub fn parse(text: &str) -> Result<Whose, IdentityError> {
        let text = text.trim();
        if text == "*" {
            return Ok(Whose::Everyone);
        }
        let invalid = || {
            IdentityError::invalid(
                "principal",
                "give `user:<id>`, `api_client:<id>` or `*` for everyone",
            )
        };
        let actor = Actor::parse(text).map_err(|_| invalid())?;
        match actor.as_str().split_once(':') {
            Some(("user", id)) => Ok(Whose::User(id.to_owned())),
            Some(("api_client", id)) => Ok(Whose::ApiClient(id.to_owned())),
            _ => Err(invalid()),
        }
    }

    /// As recorded: `user:<id>`, `api_client:<id>` or `*`.
    pub fn as_principal(&self) -> String {
        match self {
            Whose::User(id) => format!("user:{id}"),
            Whose::ApiClient(id) => format!("api_client:{id}"),
            Whose::Everyone => "*".to_owned(),
        }
    }
}

/// What a revocation withdrew.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Revoked {
    pub sessions: u64,
    pub api_keys: Vec<String>,
    pub enrolments: u64,
}

impl Identity {
    /// Withdraws every credential of `whose`: sessions, API keys (of a client, or everyone's)
    /// and pending enrolment tokens (of a user, or everyone's), then records it.
    pub async fn revoke_credentials(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        whose: &Whose,
        reason: &str,
    ) -> Result<Revoked, IdentityError> {
        let reason = text("reason", reason, REASON_MAX)?;
        let directory = self.directory_handle().refresh().await?;
        let now = Utc::now();
        let principal = whose.as_principal();
        let revoked = match whose {
            Whose::User(user_id) => {
                if directory.user(user_id).is_none() {
                    return Err(IdentityError::NotFound { what: "user" });
                }
                Revoked {
                    sessions: self.credentials.revoke_sessions_of(&principal, now).await?,
                    api_keys: Vec::new(),
                    enrolments: self
                        .credentials
                        .withdraw_pending_enrolments(Some(user_id), now)
                        .await?,
                }
            }
            Whose::ApiClient(client_id) => {
                let client = directory
                    .api_clients
                    .get(client_id)
                    .ok_or(IdentityError::NotFound { what: "API client" })?;
                self.credentials.revoke_api_keys_of(client_id, now).await?;
                Revoked {
                    sessions: self.credentials.revoke_sessions_of(&principal, now).await?,
                    api_keys: client.keys.keys().cloned().collect(),
                    enrolments: 0,
                }
            }
            Whose::Everyone => {
                self.credentials.revoke_all_api_keys(now).await?;
                Revoked {
                    sessions: self.credentials.revoke_all_sessions(now).await?,
                    api_keys: directory
                        .api_clients
                        .values()
                        .flat_map(|client| client.keys.keys().cloned())
                        .collect(),
                    enrolments: self
                        .credentials
                        .withdraw_pending_enrolments(None, now)
                        .await?,
                }
            }
        };
        self.append(
            actor,
            request_id,
            None,
            vec![DomainEvent::CredentialsRevoked(CredentialsRevoked {
                principal,
                reason,
                sessions: revoked.sessions,
                api_keys: revoked.api_keys.clone(),
                enrolments: revoked.enrolments,
            })],
        )
        .await?;
        Ok(revoked)
    }

    /// A lockdown: every session, API key and pending enrolment of everyone withdrawn at once.
    pub async fn lockdown(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        reason: &str,
    ) -> Result<Revoked, IdentityError> {
        self.revoke_credentials(actor, request_id, &Whose::Everyone, reason)
            .await
    }
}
