//! Signing in and out, enrolment, one's own account, the administration of users, groups, walls,
//! API clients and the firm's policy, break-glass openings, and the auditors' queries over
//! access records and the access review. Every field's rule is in `guard::FIELDS`; sensitive
//! administration also needs a recent second factor (step-up), which the guard enforces with
//! the capability.
//!
//! Administrative changes follow one order: the decision about the target is noted in the
//! request's ledger and made durable (`Caller::flush`) before the identity service makes the
//! change, so no change exists without its access record. Secrets (enrolment tokens, API keys,
//! recovery codes, TOTP secrets) appear only in the one response that creates them.

mod audit;
mod break_glass;
pub mod calls;
mod clients;
mod enrolment;
mod firm_policy;
mod own;
mod review;
mod scopes;
mod sign_in;
mod users;
mod values;
mod views;
mod walls;

use async_graphql::{Context, MergedObject};

pub use audit::{AccessRecordEntry, AccessRecordPage};
pub use break_glass::BreakGlassPayload;
pub use clients::{ApiClientPayload, ApiKeyPayload, IssuedApiKey, RotateApiKeyPayload};
pub use enrolment::{BeginEnrolmentPayload, CompleteEnrolmentPayload, EnrolmentStartView};
pub use firm_policy::FirmPolicyPayload;
pub use review::{AccessReviewUser, ReachableMatter};
pub use scopes::{
    ApiClientScopesInput, ApiClientScopesView, ApiKeyView, MatterReachValue, RateLimitInput,
    RateLimitView,
};
pub use sign_in::{DonePayload, LoginInput, LoginPayload, Me, SessionInfo};
pub use users::{EnrolmentPayload, IssuedEnrolment, SessionsRevokedPayload, UserPayload};
pub use values::*;
pub use views::{ApiClientView, FirmPolicyView, UserView, WallView};
pub use walls::{ErectWallInput, WallPayload};

use crate::access::policy::{Capability, Decision};
use crate::access::record::MAX_TEXT_CHARS;
use crate::api::graphql::caller::Caller;
use crate::api::graphql::errors::UserError;
use crate::identity::IdentityError;
use crate::identity::principal::Principal;
use crate::log::envelope::is_identifier;

/// The account and audit part of the query root.
#[derive(MergedObject, Default)]
pub struct AccountQuery(
    sign_in::SignInQuery,
    users::UsersQuery,
    walls::WallsQuery,
    clients::ClientsQuery,
    audit::AuditQuery,
    review::ReviewQuery,
);

/// The account and administration part of the mutation root.
#[derive(MergedObject, Default)]
pub struct AccountMutation(
    sign_in::SignInMutation,
    enrolment::EnrolmentMutation,
    own::OwnAccountMutation,
    users::UsersMutation,
    walls::WallsMutation,
    clients::ClientsMutation,
    firm_policy::FirmPolicyMutation,
    break_glass::BreakGlassMutation,
);

/// An identity failure as a payload's user error (the caller's fault) or a GraphQL error.
pub(crate) fn identity_error(error: IdentityError) -> async_graphql::Result<UserError> {
    if error.is_user_error() {
        Ok(UserError {
            field: error.field().map(str::to_owned),
            code: error.code().to_owned(),
            message: error.public_message(),
        })
    } else {
        tracing::error!(error = %error, "identity operation failed");
        Err(crate::api::graphql::errors::api_error(
            error.code(),
            error.public_message(),
        ))
    }
}

/// An identity failure that has no payload to travel in, as a GraphQL error.
pub(crate) fn identity_failure(error: IdentityError) -> async_graphql::Error {
    match identity_error(error) {
        Ok(user_error) => {
            crate::api::graphql::errors::api_error(&user_error.code, user_error.message)
        }
        Err(error) => error,
    }
}

/// The caller of an administrative field and its principal. The guard has already decided the
/// capability (role and step-up) from `guard::FIELDS`; asking again yields the principal, and
/// the ledger merges the two identical decisions into one entry.
pub(crate) fn administrator<'a>(
    ctx: &'a Context<'_>,
    capability: Capability,
) -> async_graphql::Result<(&'a Caller, &'a Principal)> {
    let caller = Caller::of(ctx)?;
    let principal = caller.require(capability)?;
    Ok((caller, principal))
}

/// Notes that `capability` allowed a change to `target` and makes the record durable before
/// the change is made; an error means the change must not be made.
pub(crate) async fn record_change(
    caller: &Caller,
    capability: Capability,
    target: &'static str,
    target_id: Option<&str>,
    field: &'static str,
    operation: &str,
) -> async_graphql::Result<()> {
    caller.note(
        None,
        target,
        target_id.and_then(recordable),
        Some(field),
        Decision::Allowed(capability.as_str()),
    );
    caller.flush(&format!("mutation {operation}")).await
}

/// `text` when an access record can name it (1-200 characters, no control characters), so
/// that odd input never makes the record itself invalid; otherwise the record names nothing.
pub(crate) fn recordable(text: &str) -> Option<&str> {
    let count = text.chars().count();
    ((1..=MAX_TEXT_CHARS).contains(&count) && !text.chars().any(char::is_control)).then_some(text)
}

/// A payload's user error for input the resolver checks itself.
pub(crate) fn invalid(field: &'static str, message: &str) -> UserError {
    UserError {
        field: Some(field.to_owned()),
        code: "INVALID_INPUT".to_owned(),
        message: message.to_owned(),
    }
}

/// The request id to put on identity events: the caller's, when it is a valid identifier (one
/// a client sent may not be; the events then carry none).
pub(crate) fn event_request_id(caller: &Caller) -> Option<&str> {
    Some(caller.request_id.as_str()).filter(|id| is_identifier(id))
}
