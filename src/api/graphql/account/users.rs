//! Administering users: adding them (with a one-time enrolment token), changing roles,
//! disabling, enabling and unlocking accounts, re-issuing enrolment, and revoking sessions;
//! and the `users` list for admins and auditors.

// Resolver arguments are the schema's arguments.
#![allow(clippy::too_many_arguments)]

use std::sync::Arc;

use async_graphql::{Context, Object, SimpleObject};

use super::values::{RoleValue, SessionRevocationReason};
use super::views::UserView;
use super::{administrator, event_request_id, identity_error, invalid, record_change};
use crate::access::policy::{Capability, Decision};
use crate::api::graphql::caller::Caller;
use crate::api::graphql::errors::UserError;
use crate::identity::admin::AddedUser;
use crate::identity::{Identity, IdentityError};
use crate::log::Actor;
use crate::log::time::format_timestamp;

/// The user list.
#[derive(Default)]
pub struct UsersQuery;

/// User administration.
#[derive(Default)]
pub struct UsersMutation;

/// A one-time enrolment token for a user: hand it to them over a trusted channel. It is shown
/// only in this response and works once, until `expiresAt`.
#[derive(SimpleObject)]
pub struct IssuedEnrolment {
    pub user_id: String,
    pub enrolment_token: String,
    pub expires_at: String,
}

#[derive(SimpleObject)]
pub struct EnrolmentPayload {
    pub enrolment: Option<IssuedEnrolment>,
    pub user_errors: Vec<UserError>,
}

impl EnrolmentPayload {
    fn issued(added: AddedUser) -> Self {
        EnrolmentPayload {
            enrolment: Some(IssuedEnrolment {
                user_id: added.user_id,
                enrolment_token: added.enrolment_token.to_string(),
                expires_at: format_timestamp(added.expires_at),
            }),
            user_errors: Vec::new(),
        }
    }

    fn failed(error: UserError) -> Self {
        EnrolmentPayload {
            enrolment: None,
            user_errors: vec![error],
        }
    }
}

#[derive(SimpleObject)]
pub struct UserPayload {
    /// The user after the change.
    pub user: Option<UserView>,
    pub user_errors: Vec<UserError>,
}

impl UserPayload {
    fn of(identity: &Identity, user_id: &str) -> Self {
        UserPayload {
            user: identity.directory().user(user_id).map(UserView::from),
            user_errors: Vec::new(),
        }
    }

    fn failed(error: UserError) -> Self {
        UserPayload {
            user: None,
            user_errors: vec![error],
        }
    }
}

#[derive(SimpleObject)]
pub struct SessionsRevokedPayload {
    /// How many sessions ended.
    pub revoked: Option<u64>,
    pub user_errors: Vec<UserError>,
}

impl SessionsRevokedPayload {
    pub(super) fn ended(count: u64) -> Self {
        SessionsRevokedPayload {
            revoked: Some(count),
            user_errors: Vec::new(),
        }
    }

    pub(super) fn failed(error: UserError) -> Self {
        SessionsRevokedPayload {
            revoked: None,
            user_errors: vec![error],
        }
    }
}

/// Refuses a change an admin would make to their own account that could lock them (and
/// possibly the firm) out of administration; another admin must make it.
fn not_oneself(actor: &Actor, user_id: &str) -> Result<(), UserError> {
    if actor.as_str().strip_prefix("user:") == Some(user_id.trim()) {
        Err(invalid(
            "userId",
            "another admin must make this change to your own account",
        ))
    } else {
        Ok(())
    }
}

/// Which sessions `revokeSessions` ends: `*`, `user:<id>` or `api_client:<id>`.
fn session_principal(text: &str) -> Result<String, UserError> {
    let text = text.trim();
    if text == "*" {
        return Ok(text.to_owned());
    }
    match Actor::parse(text) {
        Ok(actor) if actor.as_str() != "system" => Ok(actor.as_str().to_owned()),
        _ => Err(invalid(
            "principal",
            "give `user:<id>`, `api_client:<id>` or `*` for everyone",
        )),
    }
}

/// The target an access record names for a session principal.
fn principal_target(principal: &str) -> (&'static str, &str) {
    match principal.split_once(':') {
        Some(("api_client", id)) => ("api_client", id),
        Some((_, id)) => ("user", id),
        None => ("user", principal),
    }
}

/// The payload of a user change: the user after it, or the user error.
async fn user_change(
    identity: &Identity,
    user_id: &str,
    result: Result<(), IdentityError>,
) -> async_graphql::Result<UserPayload> {
    Ok(match result {
        Ok(()) => UserPayload::of(identity, user_id),
        Err(error) => UserPayload::failed(identity_error(error)?),
    })
}

#[Object]
impl UsersQuery {
    /// Every user of the directory, by id. For admins and auditors (the guard's rule is the
    /// ReadDirectory capability, held by exactly those two roles, without step-up).
    async fn users(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<UserView>> {
        let caller = Caller::of(ctx)?;
        caller.note(
            None,
            "user",
            None,
            Some("user.details"),
            Decision::Allowed(Capability::ReadDirectory.as_str()),
        );
        Ok(caller
            .directory
            .users
            .values()
            .map(UserView::from)
            .collect())
    }
}

#[Object]
impl UsersMutation {
    /// Adds a user and returns their one-time enrolment token (shown only here). `userId`
    /// defaults to the email's local part, made unique.
    async fn add_user(
        &self,
        ctx: &Context<'_>,
        email: String,
        name: String,
        role: RoleValue,
        #[graphql(default)] practice_areas: Vec<String>,
        user_id: Option<String>,
    ) -> async_graphql::Result<EnrolmentPayload> {
        let capability = Capability::AdministerUsers;
        let (caller, principal) = administrator(ctx, capability)?;
        let identity = ctx.data::<Arc<Identity>>()?;
        record_change(
            caller,
            capability,
            "user",
            user_id.as_deref(),
            "user.details",
            "addUser",
        )
        .await?;
        let result = identity
            .add_user(
                &principal.actor,
                event_request_id(caller),
                &email,
                &name,
                role.into(),
                &practice_areas,
                user_id.as_deref(),
            )
            .await;
        Ok(match result {
            Ok(added) => {
                if user_id.is_none() {
                    // The id was chosen by the directory: the record names it too.
                    caller.note(
                        None,
                        "user",
                        super::recordable(&added.user_id),
                        Some("user.details"),
                        Decision::Allowed(capability.as_str()),
                    );
                }
                EnrolmentPayload::issued(added)
            }
            Err(error) => EnrolmentPayload::failed(identity_error(error)?),
        })
    }

    /// Changes a user's role and practice areas; open sessions get the new role at their next
    /// request.
    async fn change_role(
        &self,
        ctx: &Context<'_>,
        user_id: String,
        role: RoleValue,
        #[graphql(default)] practice_areas: Vec<String>,
    ) -> async_graphql::Result<UserPayload> {
        let capability = Capability::AdministerUsers;
        let (caller, principal) = administrator(ctx, capability)?;
        if let Err(error) = not_oneself(&principal.actor, &user_id) {
            return Ok(UserPayload::failed(error));
        }
        let identity = ctx.data::<Arc<Identity>>()?;
        record_change(
            caller,
            capability,
            "user",
            Some(&user_id),
            "user.role",
            "changeRole",
        )
        .await?;
        let result = identity
            .change_role(
                &principal.actor,
                event_request_id(caller),
                &user_id,
                role.into(),
                &practice_areas,
            )
            .await;
        user_change(identity, &user_id, result).await
    }

    /// Disables a user: they can no longer sign in, and their sessions end at once.
    async fn disable_user(
        &self,
        ctx: &Context<'_>,
        user_id: String,
        reason: String,
    ) -> async_graphql::Result<UserPayload> {
        let capability = Capability::AdministerUsers;
        let (caller, principal) = administrator(ctx, capability)?;
        if let Err(error) = not_oneself(&principal.actor, &user_id) {
            return Ok(UserPayload::failed(error));
        }
        let identity = ctx.data::<Arc<Identity>>()?;
        record_change(
            caller,
            capability,
            "user",
            Some(&user_id),
            "user.status",
            "disableUser",
        )
        .await?;
        let result = identity
            .disable_user(
                &principal.actor,
                event_request_id(caller),
                &user_id,
                &reason,
            )
            .await;
        user_change(identity, &user_id, result).await
    }

    /// Enables a disabled user again (active if enrolled, pending otherwise).
    async fn enable_user(
        &self,
        ctx: &Context<'_>,
        user_id: String,
    ) -> async_graphql::Result<UserPayload> {
        let capability = Capability::AdministerUsers;
        let (caller, principal) = administrator(ctx, capability)?;
        let identity = ctx.data::<Arc<Identity>>()?;
        record_change(
            caller,
            capability,
            "user",
            Some(&user_id),
            "user.status",
            "enableUser",
        )
        .await?;
        let result = identity
            .enable_user(&principal.actor, event_request_id(caller), &user_id)
            .await;
        user_change(identity, &user_id, result).await
    }

    /// Unlocks an account locked by failed logins (or by an admin) and clears its counter.
    async fn unlock_user(
        &self,
        ctx: &Context<'_>,
        user_id: String,
    ) -> async_graphql::Result<UserPayload> {
        let capability = Capability::AdministerUsers;
        let (caller, principal) = administrator(ctx, capability)?;
        let identity = ctx.data::<Arc<Identity>>()?;
        record_change(
            caller,
            capability,
            "user",
            Some(&user_id),
            "user.status",
            "unlockUser",
        )
        .await?;
        let result = identity
            .unlock_user(&principal.actor, event_request_id(caller), &user_id)
            .await;
        user_change(identity, &user_id, result).await
    }

    /// Issues a fresh enrolment token (a lost authenticator): the user's password, second
    /// factor, recovery codes and sessions are withdrawn at once. The token is shown only here.
    async fn reissue_enrolment(
        &self,
        ctx: &Context<'_>,
        user_id: String,
    ) -> async_graphql::Result<EnrolmentPayload> {
        let capability = Capability::AdministerUsers;
        let (caller, principal) = administrator(ctx, capability)?;
        if let Err(error) = not_oneself(&principal.actor, &user_id) {
            return Ok(EnrolmentPayload::failed(error));
        }
        let identity = ctx.data::<Arc<Identity>>()?;
        record_change(
            caller,
            capability,
            "user",
            Some(&user_id),
            "user.credentials",
            "reissueEnrolment",
        )
        .await?;
        let result = identity
            .reissue_enrolment(&principal.actor, event_request_id(caller), &user_id)
            .await;
        Ok(match result {
            Ok(added) => EnrolmentPayload::issued(added),
            Err(error) => EnrolmentPayload::failed(identity_error(error)?),
        })
    }

    /// Ends every session of a principal at once: `user:<id>`, `api_client:<id>`, or `*` for
    /// everyone (this session included). API keys are not sessions: revoke them with
    /// `revokeApiKey`.
    async fn revoke_sessions(
        &self,
        ctx: &Context<'_>,
        principal: String,
        #[graphql(default)] reason: SessionRevocationReason,
    ) -> async_graphql::Result<SessionsRevokedPayload> {
        let capability = Capability::AdministerUsers;
        let (caller, admin) = administrator(ctx, capability)?;
        let whose = match session_principal(&principal) {
            Ok(whose) => whose,
            Err(error) => return Ok(SessionsRevokedPayload::failed(error)),
        };
        let identity = ctx.data::<Arc<Identity>>()?;
        let (target, target_id) = principal_target(&whose);
        record_change(
            caller,
            capability,
            target,
            Some(target_id),
            "sessions",
            "revokeSessions",
        )
        .await?;
        let result = identity
            .revoke_sessions_of(
                &admin.actor,
                event_request_id(caller),
                &whose,
                reason.as_str(),
            )
            .await;
        Ok(match result {
            Ok(count) => SessionsRevokedPayload::ended(count),
            Err(error) => SessionsRevokedPayload::failed(identity_error(error)?),
        })
    }
}
