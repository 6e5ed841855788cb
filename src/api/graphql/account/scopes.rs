//! API-client scopes and keys as the API shows and takes them: which matters a client reads,
//! which mutations it may call, until when it works, its rate limit, and its keys' lifetimes.

use async_graphql::{Enum, InputObject, SimpleObject};
use chrono::{DateTime, Utc};

use super::invalid;
use crate::api::graphql::errors::UserError;
use crate::domain::identity::ApiClientReach;
use crate::identity::api_clients::ScopesRequest;
use crate::identity::directory::ApiKey;
use crate::identity::scopes::{ClientScopes, DEFAULT_COMMANDS, MatterReach, RateLimit};

/// Which matters an API client reads (ethical walls screen it like anyone, whatever its reach).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[graphql(name = "MatterReach")]
pub enum MatterReachValue {
    /// The matters whose team names the client.
    #[default]
    Team,
    /// Every matter of the firm.
    All,
    /// The matters in `matterNumbers`, team or not.
    Listed,
}

impl From<MatterReachValue> for ApiClientReach {
    fn from(reach: MatterReachValue) -> Self {
        match reach {
            MatterReachValue::Team => ApiClientReach::Team,
            MatterReachValue::All => ApiClientReach::All,
            MatterReachValue::Listed => ApiClientReach::Listed,
        }
    }
}

/// How many requests a client may make per window (counted by each server process).
#[derive(SimpleObject, Debug, Clone, Copy)]
#[graphql(name = "RateLimit")]
pub struct RateLimitView {
    pub requests: u32,
    pub per_seconds: u32,
}

/// A rate limit to set: 1 to 1,000,000 requests per 1 to 86,400 seconds.
#[derive(InputObject, Debug, Clone, Copy)]
pub struct RateLimitInput {
    pub requests: u32,
    pub per_seconds: u32,
}

/// An API client's scopes.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(name = "ApiClientScopes")]
pub struct ApiClientScopesView {
    pub matters: MatterReachValue,
    /// The matters a `LISTED` reach names (empty otherwise).
    pub matter_numbers: Vec<String>,
    /// The mutation fields the client may call; any other is refused with `FORBIDDEN`.
    pub commands: Vec<String>,
    /// After this time the client is inactive (every key stops working).
    pub expires_at: Option<String>,
    pub rate_limit: RateLimitView,
    /// Whether the client receives the alerts Docket raises (through `events` and webhooks).
    pub alerts: bool,
}

impl From<&ClientScopes> for ApiClientScopesView {
    fn from(scopes: &ClientScopes) -> Self {
        let (matters, matter_numbers) = match &scopes.matters {
            MatterReach::Team => (MatterReachValue::Team, Vec::new()),
            MatterReach::All => (MatterReachValue::All, Vec::new()),
            MatterReach::Listed(numbers) => {
                (MatterReachValue::Listed, numbers.iter().cloned().collect())
            }
        };
        ApiClientScopesView {
            matters,
            matter_numbers,
            commands: scopes.commands.iter().cloned().collect(),
            expires_at: scopes.expires_at.clone(),
            rate_limit: RateLimitView {
                requests: scopes.rate_limit.requests,
                per_seconds: scopes.rate_limit.per_seconds,
            },
            alerts: scopes.alerts,
        }
    }
}

/// Scopes to set; they replace the client's scopes as a whole, and what is left out takes
/// its default.
#[derive(InputObject, Debug, Clone, Default)]
pub struct ApiClientScopesInput {
    /// Default `TEAM`.
    #[graphql(default)]
    pub matters: MatterReachValue,
    /// For `LISTED` only: 1 to 1000 matter numbers.
    #[graphql(default)]
    pub matter_numbers: Vec<String>,
    /// Mutation fields the client may call, from `recordTime`, `addDocument`,
    /// `addDocumentVersion`, `addNote`, `editNote`, `createTask`, `setTaskStatus`,
    /// `scheduleCalendarEntry`, `cancelCalendarEntry`. Default: `recordTime`, `addDocument`,
    /// `addDocumentVersion`; an empty list makes a read-only client.
    pub commands: Option<Vec<String>>,
    /// An RFC 3339 time in the future after which the client is inactive; none by default.
    pub expires_at: Option<String>,
    /// Default 600 requests per 60 seconds.
    pub rate_limit: Option<RateLimitInput>,
    /// Whether the client receives the alerts Docket raises (a security monitoring
    /// integration). Default false.
    #[graphql(default)]
    pub alerts: bool,
}

/// An expiry as given: an RFC 3339 time in the future.
pub(super) fn expiry(text: &str) -> Result<DateTime<Utc>, UserError> {
    let at = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|_| invalid("expiresAt", "must be an RFC 3339 time"))?
        .with_timezone(&Utc);
    if at <= Utc::now() {
        return Err(invalid("expiresAt", "must be in the future"));
    }
    Ok(at)
}

impl ApiClientScopesInput {
    /// The request the identity service checks.
    pub fn to_request(&self) -> Result<ScopesRequest, UserError> {
        let defaults = RateLimit::default();
        Ok(ScopesRequest {
            reach: self.matters.into(),
            matters: self.matter_numbers.clone(),
            commands: self.commands.clone().unwrap_or_else(|| {
                DEFAULT_COMMANDS
                    .iter()
                    .map(|command| (*command).to_owned())
                    .collect()
            }),
            expires_at: self.expires_at.as_deref().map(expiry).transpose()?,
            rate_limit: self.rate_limit.map_or(defaults, |limit| RateLimit {
                requests: limit.requests,
                per_seconds: limit.per_seconds,
            }),
            alerts: self.alerts,
        })
    }
}

/// A key of an API client (never its text).
#[derive(SimpleObject, Debug, Clone)]
#[graphql(name = "ApiKey")]
pub struct ApiKeyView {
    pub key_id: String,
    pub issued_at: String,
    /// When it stops working, if ever (a rotation sets the end of its grace period).
    pub expires_at: Option<String>,
    /// The key that replaced it, after `rotateApiKey`.
    pub replaced_by: Option<String>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(key: &ApiKey) -> Self {
        ApiKeyView {
            key_id: key.key_id.clone(),
            issued_at: key.issued_at.clone(),
            expires_at: key.expires_at.clone(),
            replaced_by: key.replaced_by.clone(),
        }
    }
}
