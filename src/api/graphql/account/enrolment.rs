//! `beginEnrolment` and `completeEnrolment`: a new user (or one whose enrolment an admin
//! re-issued) turns the one-time enrolment token into a password, an authenticator and ten
//! recovery codes. Both are public (the user has no session yet) and each counts as the
//! request's one sign-in attempt. Every invalid token gets the same answer, so the answers
//! never tell whether an account exists.

use std::sync::Arc;

use async_graphql::{Context, Object, SimpleObject};
use zeroize::Zeroizing;

use super::{identity_error, recordable};
use crate::access::policy::Decision;
use crate::api::graphql::caller::Caller;
use crate::api::graphql::errors::UserError;
use crate::identity::Identity;

/// The two halves of enrolment.
#[derive(Default)]
pub struct EnrolmentMutation;

/// The authenticator to set up: scan `otpauthUri` as a QR code, or type `secretBase32`.
#[derive(SimpleObject)]
#[graphql(name = "EnrolmentStart")]
pub struct EnrolmentStartView {
    pub user_id: String,
    pub email: String,
    /// `otpauth://totp/Docket:<email>?secret=...&issuer=Docket&algorithm=SHA1&digits=6&period=30`
    pub otpauth_uri: String,
    /// The TOTP secret in base32, shown only here.
    pub secret_base32: String,
}

#[derive(SimpleObject)]
pub struct BeginEnrolmentPayload {
    pub enrolment: Option<EnrolmentStartView>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct CompleteEnrolmentPayload {
    /// The single-use recovery codes, shown only in this response: keep them somewhere safe.
    pub recovery_codes: Option<Vec<String>>,
    pub user_errors: Vec<UserError>,
}

#[Object]
impl EnrolmentMutation {
    /// Starts enrolment with the token an admin handed over: returns the authenticator secret
    /// to set up. The token stays valid until `completeEnrolment` succeeds; asking again gives
    /// a new secret and withdraws the previous one.
    async fn begin_enrolment(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> async_graphql::Result<BeginEnrolmentPayload> {
        let caller = Caller::of(ctx)?;
        caller.one_attempt()?;
        let identity = ctx.data::<Arc<Identity>>()?;
        let token = Zeroizing::new(token);
        match identity.begin_enrolment(&token).await {
            Ok(start) => {
                caller.note(
                    None,
                    "account",
                    recordable(&start.user_id),
                    Some("account.enrolment"),
                    Decision::Allowed("enrolment_token"),
                );
                Ok(BeginEnrolmentPayload {
                    enrolment: Some(EnrolmentStartView {
                        user_id: start.user_id.clone(),
                        email: start.email.clone(),
                        otpauth_uri: start.otpauth_uri.to_string(),
                        secret_base32: start.secret_base32.to_string(),
                    }),
                    user_errors: Vec::new(),
                })
            }
            Err(error) => {
                caller.note(
                    None,
                    "account",
                    None,
                    Some("account.enrolment"),
                    Decision::Denied("invalid_enrolment"),
                );
                Ok(BeginEnrolmentPayload {
                    enrolment: None,
                    user_errors: vec![identity_error(error)?],
                })
            }
        }
    }

    /// Completes enrolment: sets the password (checked against the password policy and a list
    /// of common passwords) and confirms the authenticator with its first code. Uses the token
    /// up and returns the ten recovery codes, once.
    async fn complete_enrolment(
        &self,
        ctx: &Context<'_>,
        token: String,
        password: String,
        totp_code: String,
    ) -> async_graphql::Result<CompleteEnrolmentPayload> {
        let caller = Caller::of(ctx)?;
        caller.one_attempt()?;
        let identity = ctx.data::<Arc<Identity>>()?;
        let token = Zeroizing::new(token);
        let password = Zeroizing::new(password);
        match identity
            .complete_enrolment(&token, password, &totp_code)
            .await
        {
            Ok(codes) => {
                caller.note(
                    None,
                    "account",
                    None,
                    Some("account.enrolment"),
                    Decision::Allowed("enrolled"),
                );
                Ok(CompleteEnrolmentPayload {
                    recovery_codes: Some(codes.iter().map(|code| code.to_string()).collect()),
                    user_errors: Vec::new(),
                })
            }
            Err(error) => {
                let reason = match error.code() {
                    "PASSWORD_REJECTED" => "password_rejected",
                    "INVALID_CODE" => "bad_second_factor",
                    _ => "invalid_enrolment",
                };
                caller.note(
                    None,
                    "account",
                    None,
                    Some("account.enrolment"),
                    Decision::Denied(reason),
                );
                Ok(CompleteEnrolmentPayload {
                    recovery_codes: None,
                    user_errors: vec![identity_error(error)?],
                })
            }
        }
    }
}
