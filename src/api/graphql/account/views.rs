//! The directory as the API shows it: users, walls, API clients and the firm's policy. None of
//! these carries a secret; they are read from the fold of the `directory` stream.

use async_graphql::SimpleObject;
use serde::Serialize;

use super::scopes::{ApiClientScopesView, ApiKeyView};
use super::values::{PartnerAccessValue, RoleValue, UserStatusValue};
use crate::identity::directory::{ApiClient, FirmPolicy, User, Wall};

/// A user of the directory.
#[derive(SimpleObject, Serialize, Clone)]
#[graphql(name = "User")]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub role: RoleValue,
    pub practice_areas: Vec<String>,
    pub status: UserStatusValue,
    /// Whether the user has set a password and a second factor.
    pub enrolled: bool,
    pub added_at: String,
    /// The last successful login, if any.
    pub last_login_at: Option<String>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        UserView {
            user_id: user.user_id.clone(),
            name: user.name.clone(),
            email: user.email.clone(),
            role: user.role.into(),
            practice_areas: user.practice_areas.clone(),
            status: user.status.into(),
            enrolled: user.enrolled,
            added_at: user.added_at.clone(),
            last_login_at: user.last_login_at.clone(),
        }
    }
}

/// An ethical wall in force: whom it screens, from what, and why.
#[derive(SimpleObject, Serialize, Clone)]
#[graphql(name = "Wall")]
#[serde(rename_all = "camelCase")]
pub struct WallView {
    pub wall_id: String,
    pub name: String,
    pub reason: String,
    /// User (or API client) ids screened directly.
    pub screened_users: Vec<String>,
    /// Groups whose members are screened.
    pub screened_groups: Vec<String>,
    /// Matter numbers screened.
    pub matters: Vec<String>,
    /// Contact ids: every matter where one of them is a client is screened.
    pub clients: Vec<String>,
    pub erected_at: String,
    /// The actor who erected it (`user:<id>` or `system`).
    pub erected_by: String,
}

impl From<&Wall> for WallView {
    fn from(wall: &Wall) -> Self {
        WallView {
            wall_id: wall.wall_id.clone(),
            name: wall.name.clone(),
            reason: wall.reason.clone(),
            screened_users: wall.screened_users.iter().cloned().collect(),
            screened_groups: wall.screened_groups.iter().cloned().collect(),
            matters: wall.matters.iter().cloned().collect(),
            clients: wall.clients.iter().cloned().collect(),
            erected_at: wall.erected_at.clone(),
            erected_by: wall.erected_by.clone(),
        }
    }
}

/// An API client, its scopes, and its keys that are issued and not revoked (a key may still
/// have expired). Key texts are never shown again after `issueApiKey` or `rotateApiKey`.
#[derive(SimpleObject, Clone)]
#[graphql(name = "ApiClient")]
pub struct ApiClientView {
    pub client_id: String,
    pub name: String,
    pub registered_at: String,
    /// Whether the client works now (it is not past its scopes' expiry).
    pub active: bool,
    pub key_ids: Vec<String>,
    pub keys: Vec<ApiKeyView>,
    pub scopes: ApiClientScopesView,
}

impl From<&ApiClient> for ApiClientView {
    fn from(client: &ApiClient) -> Self {
        ApiClientView {
            client_id: client.client_id.clone(),
            name: client.name.clone(),
            registered_at: client.registered_at.clone(),
            active: client.is_active_at(&crate::log::time::now_timestamp()),
            key_ids: client.keys.keys().cloned().collect(),
            keys: client.keys.values().map(ApiKeyView::from).collect(),
            scopes: ApiClientScopesView::from(&client.scopes),
        }
    }
}

/// The firm-wide access settings.
#[derive(SimpleObject, Serialize, Clone, Copy)]
#[graphql(name = "FirmPolicy")]
#[serde(rename_all = "camelCase")]
pub struct FirmPolicyView {
    pub partner_access: PartnerAccessValue,
    /// How long a break-glass opening lasts.
    pub break_glass_minutes: u32,
}

impl From<FirmPolicy> for FirmPolicyView {
    fn from(policy: FirmPolicy) -> Self {
        FirmPolicyView {
            partner_access: policy.partner_access.into(),
            break_glass_minutes: policy.break_glass_minutes,
        }
    }
}
