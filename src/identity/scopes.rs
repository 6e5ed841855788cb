//! What an API client is allowed: the matters it reads, the commands it runs, until when it
//! works and how fast it may call. Scopes are kept in the directory (`api_client.scopes_set`),
//! replaced as a whole, and read by the policy at every decision.

use std::collections::BTreeSet;

use crate::domain::identity::{ApiClientReach, ApiClientScopesSet, ApiRateLimit};

/// The mutation fields an API client may be granted: matter changes an integration makes
/// (time, documents, notes that are not privileged, tasks and calendar entries). Anything else
/// (team, details, parties, contacts, administration) is never an API client's to call.
pub const GRANTABLE_COMMANDS: &[&str] = &[
    "recordTime",
    "addDocument",
    "addDocumentVersion",
    "addNote",
    "editNote",
    "createTask",
    "setTaskStatus",
    "scheduleCalendarEntry",
    "cancelCalendarEntry",
];

/// The commands a newly registered client may call unless told otherwise.
pub const DEFAULT_COMMANDS: &[&str] = &["recordTime", "addDocument", "addDocumentVersion"];

/// Most matters a `listed` scope may name.
pub const MAX_LISTED_MATTERS: usize = 1000;

/// Which matters an API client reaches (walls always win over every reach).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MatterReach {
    /// The matters whose team names the client.
    #[default]
    Team,
    /// Every matter.
    All,
    /// These matters, by number (upper case).
    Listed(BTreeSet<String>),
}

impl MatterReach {
    /// Whether the reach covers the matter `number` whose team is `on_team`.
    pub fn covers(&self, number: &str, on_team: bool) -> bool {
        match self {
            MatterReach::Team => on_team,
            MatterReach::All => true,
            MatterReach::Listed(numbers) => numbers.contains(number),
        }
    }
}

/// How many requests a client may make per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in one window (and at most in one burst).
    pub requests: u32,
    /// The window, in seconds.
    pub per_seconds: u32,
}

impl RateLimit {
    /// Most requests a window may allow.
    pub const MAX_REQUESTS: u32 = 1_000_000;
    /// Longest window, in seconds (a day).
    pub const MAX_WINDOW_SECS: u32 = 86_400;

    /// The limit if both numbers are within bounds.
    pub fn new(requests: u32, per_seconds: u32) -> Option<RateLimit> {
        ((1..=Self::MAX_REQUESTS).contains(&requests)
            && (1..=Self::MAX_WINDOW_SECS).contains(&per_seconds))
        .then_some(RateLimit {
            requests,
            per_seconds,
        })
    }

    /// The `RateLimit-Policy` header value: `<requests>;w=<seconds>`.
    pub fn policy_header(self) -> String {
        format!("{};w={}", self.requests, self.per_seconds)
    }
}

impl Default for RateLimit {
    /// 600 requests a minute.
    fn default() -> Self {
        RateLimit {
            requests: 600,
            per_seconds: 60,
        }
    }
}

/// An API client's scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientScopes {
    pub matters: MatterReach,
    /// The GraphQL mutation fields the client may call.
    pub commands: BTreeSet<String>,
    /// After this time (RFC 3339, as Docket writes it) the client is inactive.
    pub expires_at: Option<String>,
    pub rate_limit: RateLimit,
    /// Whether the client receives the alerts Docket raises (off unless granted).
    pub alerts: bool,
}

impl Default for ClientScopes {
    /// What a client registered without scopes gets: its teams' matters, time and documents,
    /// no expiry, the default rate limit.
    fn default() -> Self {
        ClientScopes {
            matters: MatterReach::Team,
            commands: DEFAULT_COMMANDS.iter().map(|c| (*c).to_owned()).collect(),
            expires_at: None,
            rate_limit: RateLimit::default(),
            alerts: false,
        }
    }
}

impl ClientScopes {
    /// Whether the client may call the mutation field `command`.
    pub fn allows_command(&self, command: &str) -> bool {
        self.commands.contains(command)
    }

    /// Whether the client is past its expiry at `now` (RFC 3339, as Docket writes it).
    pub fn expired_at(&self, now: &str) -> bool {
        self.expires_at
            .as_deref()
            .is_some_and(|expires| expires <= now)
    }

    /// The scopes an event sets. A timestamp that does not parse makes the client expired
    /// (the strictest reading); an unknown command is kept and never matches a field.
    pub fn from_event(event: &ApiClientScopesSet) -> ClientScopes {
        let matters = match event.reach {
            ApiClientReach::Team => MatterReach::Team,
            ApiClientReach::All => MatterReach::All,
            ApiClientReach::Listed => MatterReach::Listed(
                event
                    .matters
                    .iter()
                    .map(|m| m.trim().to_ascii_uppercase())
                    .collect(),
            ),
        };
        ClientScopes {
            matters,
            commands: event.commands.iter().cloned().collect(),
            expires_at: event.expires_at.as_deref().map(normalised_time),
            rate_limit: RateLimit::new(event.rate_limit.requests, event.rate_limit.per_seconds)
                .unwrap_or(RateLimit {
                    requests: 1,
                    per_seconds: RateLimit::MAX_WINDOW_SECS,
                }),
            alerts: event.alerts,
        }
    }

    /// The event that sets these scopes for `client_id`.
    pub fn to_event(&self, client_id: &str) -> ApiClientScopesSet {
        let (reach, matters) = match &self.matters {
            MatterReach::Team => (ApiClientReach::Team, Vec::new()),
            MatterReach::All => (ApiClientReach::All, Vec::new()),
            MatterReach::Listed(numbers) => {
                (ApiClientReach::Listed, numbers.iter().cloned().collect())
            }
        };
        ApiClientScopesSet {
            client_id: client_id.to_owned(),
            reach,
            matters,
            commands: self.commands.iter().cloned().collect(),
            expires_at: self.expires_at.clone(),
            rate_limit: ApiRateLimit {
                requests: self.rate_limit.requests,
                per_seconds: self.rate_limit.per_seconds,
            },
            alerts: self.alerts,
        }
    }
}

/// An instant as Docket writes it, so that instants compare as text; one that does not parse
/// becomes the earliest instant (everything it bounds has expired).
pub fn normalised_time(text: &str) -> String {
    use crate::log::time::{format_timestamp, normalise_timestamp};
    normalise_timestamp(text.trim())
        .unwrap_or_else(|| format_timestamp(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_todays_behaviour() {
        let scopes = ClientScopes::default();
        assert_eq!(scopes.matters, MatterReach::Team);
        assert!(scopes.allows_command("recordTime"));
        assert!(scopes.allows_command("addDocumentVersion"));
        assert!(!scopes.allows_command("addNote"));
        assert_eq!(scopes.rate_limit.policy_header(), "600;w=60");
        assert!(!scopes.expired_at("2999-01-01T00:00:00.000000Z"));
        for command in DEFAULT_COMMANDS {
            assert!(GRANTABLE_COMMANDS.contains(command));
        }
    }

    #[test]
    fn scopes_survive_their_event_and_bad_times_expire() {
        let mut scopes = ClientScopes {
            matters: MatterReach::Listed(["2026-0001".to_owned()].into()),
            commands: ["addNote".to_owned()].into(),
            expires_at: Some(normalised_time("2030-05-01T10:00:00Z")),
            rate_limit: RateLimit::new(5, 10).unwrap(),
            alerts: true,
        };
        assert_eq!(
            ClientScopes::from_event(&scopes.to_event("billing")),
            scopes
        );
        assert!(scopes.expired_at("2030-05-01T10:00:00.000000Z"));
        assert!(!scopes.expired_at("2030-05-01T09:59:59.999999Z"));
        scopes.expires_at = Some("yesterday".into());
        let read = ClientScopes::from_event(&scopes.to_event("billing"));
        assert!(read.expired_at("1971-01-01T00:00:00.000000Z"));
    }

    #[test]
    fn limits_out_of_bounds_are_refused() {
        assert!(RateLimit::new(0, 60).is_none());
        assert!(RateLimit::new(10, 0).is_none());
        assert!(RateLimit::new(10, RateLimit::MAX_WINDOW_SECS + 1).is_none());
        assert!(RateLimit::new(RateLimit::MAX_REQUESTS, 1).is_some());
    }

    #[test]
    fn each_reach_covers_its_matters() {
        assert!(MatterReach::Team.covers("M-1", true));
        assert!(!MatterReach::Team.covers("M-1", false));
        assert!(MatterReach::All.covers("M-1", false));
        let listed = MatterReach::Listed(["M-1".to_owned()].into());
        assert!(listed.covers("M-1", false));
        assert!(!listed.covers("M-2", true), "a listed reach ignores teams");
    }
}
