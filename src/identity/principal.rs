//! Who is asking: an authenticated user or API client, as the session or key proved it.

use chrono::{DateTime, Utc};

use crate::log::Actor;

/// What kind of principal made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    User { user_id: String },
    ApiClient { client_id: String },
}

/// An authenticated caller. Its role is not kept here: the policy reads it from the directory at
/// every decision, so a role change or a wall applies to open sessions at once.
#[derive(Debug, Clone)]
pub struct Principal {
    pub actor: Actor,
    pub kind: PrincipalKind,
    /// The session's public id (never its token); `None` for API keys and trusted local tools.
    pub session_id: Option<String>,
    /// When the session last proved a second factor.
    pub step_up_at: Option<DateTime<Utc>>,
    /// The public id of the API key that authenticated the request (never its secret);
    /// `None` for sessions and trusted local tools.
    pub key_id: Option<String>,
}

impl Principal {
    /// A user, as a session proved them.
    pub fn user(user_id: &str) -> Result<Principal, crate::log::envelope::ValidationError> {
        Ok(Principal {
            actor: Actor::parse(&format!("user:{user_id}"))?,
            kind: PrincipalKind::User {
                user_id: user_id.to_owned(),
            },
            session_id: None,
            step_up_at: None,
            key_id: None,
        })
    }

    /// An API client, as its key proved it.
    pub fn api_client(client_id: &str) -> Result<Principal, crate::log::envelope::ValidationError> {
        Ok(Principal {
            actor: Actor::parse(&format!("api_client:{client_id}"))?,
            kind: PrincipalKind::ApiClient {
                client_id: client_id.to_owned(),
            },
            session_id: None,
            step_up_at: None,
            key_id: None,
        })
    }

    /// The id a matter team names this principal by.
    pub fn member_id(&self) -> &str {
        match &self.kind {
            PrincipalKind::User { user_id } => user_id,
            PrincipalKind::ApiClient { client_id } => client_id,
        }
    }

    /// The API client's id, when the principal is one.
    pub fn client_id(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::ApiClient { client_id } => Some(client_id),
            PrincipalKind::User { .. } => None,
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::User { user_id } => Some(user_id),
            PrincipalKind::ApiClient { .. } => None,
        }
    }
}
