//! `login`, `logout` and `me`.

use std::sync::Arc;

use async_graphql::{Context, InputObject, Object, SimpleObject};
use zeroize::Zeroizing;

use super::values::RoleValue;
use super::{identity_error, identity_failure};
use crate::access::policy::Capability;
use crate::api::graphql::caller::{Caller, CookieChange};
use crate::api::graphql::errors::UserError;
use crate::identity::Identity;
use crate::identity::login::SecondFactor;

/// The signed-in user (`me`).
#[derive(Default)]
pub struct SignInQuery;

/// Signing in and out.
#[derive(Default)]
pub struct SignInMutation;

/// The signed-in user.
#[derive(SimpleObject)]
pub struct Me {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub role: RoleValue,
    pub practice_areas: Vec<String>,
    /// The current session's public id.
    pub session_id: Option<String>,
    pub recovery_codes_left: u32,
}

#[derive(InputObject)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
    /// The current code of the authenticator app; or give `recoveryCode`.
    pub totp_code: Option<String>,
    /// One of the single-use recovery codes, instead of `totpCode`.
    pub recovery_code: Option<String>,
    /// Browsers: set the session as an HttpOnly cookie instead of returning the token.
    #[graphql(default = false)]
    pub cookie: bool,
}

#[derive(SimpleObject)]
pub struct SessionInfo {
    pub session_id: String,
    pub user_id: String,
    /// The bearer token (`dks_...`), shown once; null when it was set as a cookie.
    pub token: Option<String>,
    pub expires_at: String,
}

#[derive(SimpleObject)]
pub struct LoginPayload {
    pub session: Option<SessionInfo>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct DonePayload {
    pub ok: bool,
    pub user_errors: Vec<UserError>,
}

impl DonePayload {
    pub fn done() -> Self {
        DonePayload {
            ok: true,
            user_errors: Vec::new(),
        }
    }

    pub fn failed(error: UserError) -> Self {
        DonePayload {
            ok: false,
            user_errors: vec![error],
        }
    }
}

#[Object]
impl SignInQuery {
    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        let caller = Caller::of(ctx)?;
        let principal = caller.require(Capability::OwnAccount)?;
        let identity = ctx.data::<Arc<Identity>>()?;
        let user_id = principal.user_id().unwrap_or_default();
        let user = caller
            .directory
            .user(user_id)
            .ok_or_else(crate::api::graphql::caller::unauthenticated)?;
        let left = identity
            .remaining_recovery_codes(user_id)
            .await
            .map_err(identity_failure)?;
        Ok(Me {
            user_id: user.user_id.clone(),
            name: user.name.clone(),
            email: user.email.clone(),
            role: user.role.into(),
            practice_areas: user.practice_areas.clone(),
            session_id: principal.session_id.clone(),
            recovery_codes_left: left,
        })
    }
}

#[Object]
impl SignInMutation {
    /// Signs in with email, password and a second factor. The same error answers a wrong
    /// email, password or code, and an unknown, locked or disabled account.
    async fn login(
        &self,
        ctx: &Context<'_>,
        input: LoginInput,
    ) -> async_graphql::Result<LoginPayload> {
        let caller = Caller::of(ctx)?;
        caller.one_attempt()?;
        let identity = ctx.data::<Arc<Identity>>()?;
        let factor = match (&input.totp_code, &input.recovery_code) {
            (Some(code), None) => SecondFactor::Totp(code),
            (None, Some(code)) => SecondFactor::RecoveryCode(code),
            _ => {
                return Ok(LoginPayload {
                    session: None,
                    user_errors: vec![UserError {
                        field: Some("totpCode".into()),
                        code: "INVALID_INPUT".into(),
                        message: "give exactly one of totpCode or recoveryCode".into(),
                    }],
                });
            }
        };
        let result = identity
            .login(
                &input.email,
                Zeroizing::new(input.password),
                factor,
                caller.client_address.as_deref(),
            )
            .await;
        match result {
            Ok(session) => {
                let expires_at = crate::log::time::format_timestamp(session.expires_at);
                let token = if input.cookie {
                    let max_age = (session.expires_at - caller.now).num_seconds().max(0);
                    caller.set_cookie(CookieChange::Set {
                        token: session.token,
                        max_age,
                    });
                    None
                } else {
                    Some(session.token.to_string())
                };
                Ok(LoginPayload {
                    session: Some(SessionInfo {
                        session_id: session.session_id,
                        user_id: session.user_id,
                        token,
                        expires_at,
                    }),
                    user_errors: Vec::new(),
                })
            }
            Err(error) => Ok(LoginPayload {
                session: None,
                user_errors: vec![identity_error(error)?],
            }),
        }
    }

    /// Ends the current session (and clears the session cookie).
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<DonePayload> {
        let caller = Caller::of(ctx)?;
        let principal = caller.signed()?;
        let identity = ctx.data::<Arc<Identity>>()?;
        caller.set_cookie(CookieChange::Clear);
        Ok(match identity.logout(principal).await {
            Ok(()) => DonePayload::done(),
            Err(error) => DonePayload::failed(identity_error(error)?),
        })
    }
}
