//! The signed-in user's own account: proving a fresh second factor (`stepUp`), changing the
//! password, and ending every session at once (`logoutEverywhere`).

use std::sync::Arc;

use async_graphql::{Context, Object};
use zeroize::Zeroizing;

use super::sign_in::DonePayload;
use super::users::SessionsRevokedPayload;
use super::{event_request_id, identity_error};
use crate::access::policy::{Capability, Decision};
use crate::api::graphql::caller::{Caller, CookieChange};
use crate::identity::Identity;

/// Changes to the signed-in user's own account.
#[derive(Default)]
pub struct OwnAccountMutation;

#[Object]
impl OwnAccountMutation {
    /// Proves a current authenticator code inside this session. Administration needs one
    /// proved within the last five minutes (the error code STEP_UP_REQUIRED says so). Counts as
    /// the request's one sign-in attempt.
    async fn step_up(&self, ctx: &Context<'_>, code: String) -> async_graphql::Result<DonePayload> {
        let caller = Caller::of(ctx)?;
        let principal = caller.require(Capability::OwnAccount)?;
        caller.one_attempt()?;
        let identity = ctx.data::<Arc<Identity>>()?;
        let result = identity.step_up(principal, &code).await;
        let decision = match &result {
            Ok(()) => Decision::Allowed("step_up"),
            Err(_) => Decision::Denied("bad_second_factor"),
        };
        caller.note(
            None,
            "account",
            principal.user_id(),
            Some("account.step_up"),
            decision,
        );
        Ok(match result {
            Ok(()) => DonePayload::done(),
            Err(error) => DonePayload::failed(identity_error(error)?),
        })
    }

    /// Changes the password: the current one and a current authenticator code are required.
    /// Every session of the user ends, this one included (and the session cookie is cleared);
    /// sign in again with the new password. Counts as the request's one sign-in attempt.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
        totp_code: String,
    ) -> async_graphql::Result<DonePayload> {
        let caller = Caller::of(ctx)?;
        let principal = caller.require(Capability::OwnAccount)?;
        caller.one_attempt()?;
        let identity = ctx.data::<Arc<Identity>>()?;
        let current = Zeroizing::new(current_password);
        let new = Zeroizing::new(new_password);
        caller.note(
            None,
            "account",
            principal.user_id(),
            Some("account.password"),
            Decision::Allowed("own_account"),
        );
        caller.flush("mutation changePassword").await?;
        match identity
            .change_password(principal, current, new, &totp_code)
            .await
        {
            Ok(()) => {
                caller.set_cookie(CookieChange::Clear);
                Ok(DonePayload::done())
            }
            Err(error) => Ok(DonePayload::failed(identity_error(error)?)),
        }
    }

    /// Ends every session of the signed-in user at once, this one included, and clears the
    /// session cookie.
    async fn logout_everywhere(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<SessionsRevokedPayload> {
        let caller = Caller::of(ctx)?;
        let principal = caller.require(Capability::OwnAccount)?;
        let identity = ctx.data::<Arc<Identity>>()?;
        caller.note(
            None,
            "account",
            principal.user_id(),
            Some("account.sessions"),
            Decision::Allowed("own_account"),
        );
        caller.flush("mutation logoutEverywhere").await?;
        caller.set_cookie(CookieChange::Clear);
        let result = identity
            .revoke_sessions_of(
                &principal.actor,
                event_request_id(caller),
                principal.actor.as_str(),
                "revoke_all",
            )
            .await;
        Ok(match result {
            Ok(count) => SessionsRevokedPayload::ended(count),
            Err(error) => SessionsRevokedPayload::failed(identity_error(error)?),
        })
    }
}
