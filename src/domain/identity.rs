//! Events about who may do what: users and their roles, logins and sessions, groups, ethical
//! walls, break-glass openings, API clients and the firm's access policy.
//!
//! They live on one stream, [`DIRECTORY_STREAM`], so that every decision about identity is taken
//! against the whole directory at one version (an email is unique, a wall names existing users).
//! Secrets never appear here: password hashes, TOTP secrets, recovery codes, session tokens and
//! API keys are kept by the credential store; these events record only that something happened.

use serde::{Deserialize, Serialize};

/// The stream that holds every identity event.
pub const DIRECTORY_STREAM: &str = "directory";

/// What a user is, as far as access is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Users, roles, walls and settings; no matter content unless on a matter's team.
    Admin,
    Partner,
    Attorney,
    Paralegal,
    Staff,
    /// History, access records and verification; client data only where granted.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Partner,
        Role::Attorney,
        Role::Paralegal,
        Role::Staff,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Partner => "partner",
            Role::Attorney => "attorney",
            Role::Paralegal => "paralegal",
            Role::Staff => "staff",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }

    /// Lawyers: the only roles that may read privileged notes (on the team).
    pub fn is_lawyer(self) -> bool {
        matches!(self, Role::Partner | Role::Attorney)
    }
}

/// A user's personal details (personal data, kept under `private`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDetails {
    /// Lower-cased; unique in the directory.
    pub email: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserAdded {
    pub user_id: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub practice_areas: Vec<String>,
    pub private: UserDetails,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrolmentIssued {
    pub user_id: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRef {
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleChanged {
    pub user_id: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub practice_areas: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserLocked {
    pub user_id: String,
    /// `failed_logins` or `admin`.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDisabled {
    pub user_id: String,
    pub reason: String,
}

/// How a login proved the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginMethod {
    PasswordAndTotp,
    PasswordAndRecoveryCode,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginSucceeded {
    pub user_id: String,
    pub session_id: String,
    pub method: LoginMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginFailed {
    /// The account, when the email named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// `bad_credentials`, `bad_second_factor`, `throttled`, `locked`, `not_enrolled`.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionsRevoked {
    /// `user:<id>`, `api_client:<id>` or `*` for everyone.
    pub principal: String,
    /// One session, or all of the principal's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// `logout`, `revoke_all`, `password_changed`, `disabled`, `incident`.
    pub reason: String,
    pub count: u64,
}

/// Every credential of one principal, or of everyone, withdrawn at once (incident response):
/// sessions, API keys and pending enrolment tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialsRevoked {
    /// `user:<id>`, `api_client:<id>` or `*` for everyone (a lockdown).
    pub principal: String,
    /// Why, in the admin's or operator's words (the incident reference).
    pub reason: String,
    /// How many sessions ended.
    pub sessions: u64,
    /// The API keys revoked (ids, never secrets).
    pub api_keys: Vec<String>,
    /// How many pending enrolment tokens were withdrawn.
    pub enrolments: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMembersSet {
    pub group_id: String,
    pub name: String,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WallErected {
    pub wall_id: String,
    pub name: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub screened_users: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub screened_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matters: Vec<String>,
    /// Contact ids: every matter where one of them is a client is screened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WallLifted {
    pub wall_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakGlassOpened {
    pub user_id: String,
    pub matter_number: String,
    pub reason: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiClientRegistered {
    pub client_id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyIssued {
    pub client_id: String,
    /// The public part of the key (`dkt_<key_id>_...`); the secret is never recorded.
    pub key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRevoked {
    pub client_id: String,
    pub key_id: String,
    pub reason: String,
}

/// Which matters an API client reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiClientReach {
    /// The matters whose team names the client.
    #[default]
    Team,
    /// Every matter no wall screens the client from.
    All,
    /// The matters listed in the scopes, by number.
    Listed,
}

/// How many requests an API client may make in a window of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRateLimit {
    pub requests: u32,
    pub per_seconds: u32,
}

/// An API client's scopes, replaced as a whole: what it reads, which commands it runs, until
/// when it works and how fast it may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiClientScopesSet {
    pub client_id: String,
    pub reach: ApiClientReach,
    /// Matter numbers, when `reach` is `listed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matters: Vec<String>,
    /// The GraphQL mutation fields the client may call.
    #[serde(default)]
    pub commands: Vec<String>,
    /// After this time the client is inactive; absent when it does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub rate_limit: ApiRateLimit,
    /// Whether the client receives alerts; absent (false) unless granted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alerts: bool,
}

/// A key replaced by a newer one of the same client; the old key works until `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRotated {
    pub client_id: String,
    pub key_id: String,
    pub replaced_by: String,
    pub expires_at: String,
}

/// How far partners see beyond their own teams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerAccess {
    /// Only matters whose team they are on (and firm-visible ones).
    #[default]
    Team,
    /// Also every matter in the practice areas they are assigned to.
    PracticeAreas,
    /// Every matter of the firm.
    Firm,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirmPolicySet {
    pub partner_access: PartnerAccess,
    /// How long a break-glass opening lasts (1-1440).
    pub break_glass_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatterVisibilityChanged {
    pub firm_visible: bool,
}
