//! The enums of the account API, each mirroring one of the identity or access layers' own, so
//! that clients get a closed set of values instead of strings.

use async_graphql::Enum;
use serde::Serialize;

use crate::access::record;
use crate::domain::identity::{PartnerAccess, Role};
use crate::identity::directory::UserStatus;

/// What a user is, as far as access is concerned.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RoleValue {
    /// Users, roles, walls and settings; no matter content unless on a matter's team.
    Admin,
    Partner,
    Attorney,
    Paralegal,
    Staff,
    /// History, access records and verification; client data only where granted.
    Auditor,
}

impl From<Role> for RoleValue {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => RoleValue::Admin,
            Role::Partner => RoleValue::Partner,
            Role::Attorney => RoleValue::Attorney,
            Role::Paralegal => RoleValue::Paralegal,
            Role::Staff => RoleValue::Staff,
            Role::Auditor => RoleValue::Auditor,
        }
    }
}

impl From<RoleValue> for Role {
    fn from(role: RoleValue) -> Self {
        match role {
            RoleValue::Admin => Role::Admin,
            RoleValue::Partner => Role::Partner,
            RoleValue::Attorney => Role::Attorney,
            RoleValue::Paralegal => Role::Paralegal,
            RoleValue::Staff => Role::Staff,
            RoleValue::Auditor => Role::Auditor,
        }
    }
}

/// Whether a user may log in.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatusValue {
    /// Added, not yet enrolled.
    Pending,
    Active,
    /// Too many failed logins, or locked by an admin; an admin unlocks it.
    Locked,
    Disabled,
}

impl From<UserStatus> for UserStatusValue {
    fn from(status: UserStatus) -> Self {
        match status {
            UserStatus::Pending => UserStatusValue::Pending,
            UserStatus::Active => UserStatusValue::Active,
            UserStatus::Locked => UserStatusValue::Locked,
            UserStatus::Disabled => UserStatusValue::Disabled,
        }
    }
}

/// How far partners see beyond their own teams.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PartnerAccessValue {
    /// Only matters whose team they are on (and firm-visible ones).
    Team,
    /// Also every matter in the practice areas they are assigned to.
    PracticeAreas,
    /// Every matter of the firm.
    Firm,
}

impl From<PartnerAccess> for PartnerAccessValue {
    fn from(access: PartnerAccess) -> Self {
        match access {
            PartnerAccess::Team => PartnerAccessValue::Team,
            PartnerAccess::PracticeAreas => PartnerAccessValue::PracticeAreas,
            PartnerAccess::Firm => PartnerAccessValue::Firm,
        }
    }
}

impl From<PartnerAccessValue> for PartnerAccess {
    fn from(access: PartnerAccessValue) -> Self {
        match access {
            PartnerAccessValue::Team => PartnerAccess::Team,
            PartnerAccessValue::PracticeAreas => PartnerAccess::PracticeAreas,
            PartnerAccessValue::Firm => PartnerAccess::Firm,
        }
    }
}

/// The outcome of one recorded decision.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccessDecisionValue {
    Allowed,
    Denied,
}

impl From<record::Decision> for AccessDecisionValue {
    fn from(decision: record::Decision) -> Self {
        match decision {
            record::Decision::Allowed => AccessDecisionValue::Allowed,
            record::Decision::Denied => AccessDecisionValue::Denied,
        }
    }
}

impl From<AccessDecisionValue> for record::Decision {
    fn from(decision: AccessDecisionValue) -> Self {
        match decision {
            AccessDecisionValue::Allowed => record::Decision::Allowed,
            AccessDecisionValue::Denied => record::Decision::Denied,
        }
    }
}

/// How far a user reaches into a matter, as the access review shows it.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReachValue {
    /// The matter's content (privileged notes only where the review says so).
    Content,
    /// Summary, timeline and history only.
    Metadata,
}

/// Why an admin ends sessions (the `auth.sessions_revoked` reason).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionRevocationReason {
    /// An ordinary administrative revocation.
    #[default]
    Admin,
    /// A security incident.
    Incident,
}

impl SessionRevocationReason {
    /// The reason as recorded in the event.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionRevocationReason::Admin => "admin",
            SessionRevocationReason::Incident => "incident",
        }
    }
}

/// Why an API key is revoked (the `api_client.key_revoked` reason).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyRevocationReason {
    #[default]
    Revoked,
    /// Replaced by a newer key.
    Rotated,
    /// A security incident (the key may have leaked).
    Incident,
}

impl KeyRevocationReason {
    /// The reason as recorded in the event.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRevocationReason::Revoked => "revoked",
            KeyRevocationReason::Rotated => "rotated",
            KeyRevocationReason::Incident => "incident",
        }
    }
}
