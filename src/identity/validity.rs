//! Whether the credential that authenticated a principal still works, asked again while a
//! long-lived connection (a subscription) stays open, so that a revocation, an expiry or a
//! disabled user closes it at once.

use chrono::Utc;

use super::directory::UserStatus;
use super::principal::{Principal, PrincipalKind};
use super::{Identity, IdentityError};
use crate::log::time::format_timestamp;

impl Identity {
    /// Whether the credential behind `who` still works now.
    ///
    /// - An API key is decided in memory from the directory: the client registered and not
    ///   past its expiry, the key issued, not revoked and not expired (a rotation's grace
    ///   included). Cheap enough to ask at every event.
    /// - A session is read from the credential store: not revoked, not idle for its idle
    ///   timeout, not past its absolute expiry; and the user still active in the directory.
    ///   Reading it does not count as a use of the session.
    /// - A principal that no credential authenticated (a trusted local tool) stays valid while
    ///   the user or client is active.
    pub async fn still_valid(&self, who: &Principal) -> Result<bool, IdentityError> {
        let now = Utc::now();
        let directory = self.directory();
        match &who.kind {
            PrincipalKind::ApiClient { client_id } => {
                let now = format_timestamp(now);
                let Some(client) = directory.api_clients.get(client_id) else {
                    return Ok(false);
                };
                Ok(match &who.key_id {
                    Some(key_id) => client.key_works_at(key_id, &now),
                    None => client.is_active_at(&now),
                })
            }
            PrincipalKind::User { user_id } => {
                let active = directory
                    .user(user_id)
                    .is_some_and(|user| user.status == UserStatus::Active);
                if !active {
                    return Ok(false);
                }
                let Some(session_id) = &who.session_id else {
                    return Ok(true);
                };
                let session = self.credentials.live_session_by_id(session_id, now).await?;
                Ok(session.is_some_and(|session| session.principal == who.actor.as_str()))
            }
        }
    }
}
