//! Incident response through GraphQL: withdrawing every credential of a principal or of
//! everyone (`revokeCredentials`, `lockdown`), freezing and unfreezing a matter, and rotating
//! the log's signing key and the key-encryption key.
//!
//! Every field is an admin's, after a recent step-up (`guard::FIELDS`: `respond_to_incidents`,
//! `rotate_keys`); anyone else is refused before the resolver runs. Each resolver notes its
//! target and makes the access record durable before it acts, so nothing is contained without
//! its record. A lockdown signs the admin who orders it out too: no session survives it.

use std::sync::Arc;

use async_graphql::{Context, Object, SimpleObject};

use super::account::{event_request_id, identity_error, record_change, recordable};
use super::caller::Caller;
use super::errors::{UserError, internal, split};
use super::mutation::Positions;
use crate::access::policy::{Capability, Decision};
use crate::identity::Identity;
use crate::identity::incident::{Revoked, Whose};
use crate::service::{CommandContext, Committed, Service, ServiceError};
use crate::vault::KekRotationOutcome;

/// The incident-response part of the mutation root.
#[derive(Default)]
pub struct IncidentMutation;

/// What a revocation withdrew.
#[derive(SimpleObject, Default)]
pub struct CredentialsRevokedPayload {
    /// `user:<id>`, `api_client:<id>` or `*`.
    pub principal: Option<String>,
    /// How many live sessions ended.
    pub sessions: Option<u64>,
    /// The ids of the API keys revoked.
    pub api_keys: Option<Vec<String>>,
    /// How many pending enrolment tokens were withdrawn.
    pub enrolments: Option<u64>,
    pub user_errors: Vec<UserError>,
}

impl CredentialsRevokedPayload {
    fn of(principal: String, revoked: Revoked) -> Self {
        CredentialsRevokedPayload {
            principal: Some(principal),
            sessions: Some(revoked.sessions),
            api_keys: Some(revoked.api_keys),
            enrolments: Some(revoked.enrolments),
            user_errors: Vec::new(),
        }
    }

    fn failed(error: UserError) -> Self {
        CredentialsRevokedPayload {
            user_errors: vec![error],
            ..Default::default()
        }
    }
}

/// A matter frozen or unfrozen. The matter itself is not returned: an admin need not be on
/// its team to freeze it.
#[derive(SimpleObject, Default)]
pub struct FreezePayload {
    pub number: Option<String>,
    /// Whether the matter is frozen after the change.
    pub frozen: Option<bool>,
    pub positions: Option<Positions>,
    /// The matter's version after the change.
    pub version: Option<u64>,
    pub user_errors: Vec<UserError>,
}

/// The log's signing handed over to a fresh key.
#[derive(SimpleObject)]
pub struct SigningKeyRotationPayload {
    pub previous_key_id: String,
    /// Signs every event from the rotation on.
    pub key_id: String,
    /// The position of the `keys.rotated` event.
    pub position: u64,
}

/// A new key-encryption key version, with every data key rewrapped under it.
#[derive(SimpleObject)]
pub struct KekRotationPayload {
    pub version: u32,
    pub rewrapped: u64,
    /// Data keys still wrapped under older versions (created by a process that had not yet
    /// seen the new version): 0 when done; otherwise rotate again.
    pub remaining: u64,
}

impl From<KekRotationOutcome> for KekRotationPayload {
    fn from(outcome: KekRotationOutcome) -> Self {
        KekRotationPayload {
            version: outcome.rotation.to_version,
            rewrapped: outcome.rotation.rewrapped,
            remaining: outcome.remaining,
        }
    }
}

/// The access record's target for a principal.
fn target_of(whose: &Whose) -> (&'static str, Option<String>) {
    match whose {
        Whose::User(id) => ("user", Some(id.clone())),
        Whose::ApiClient(id) => ("api_client", Some(id.clone())),
        Whose::Everyone => ("everyone", None),
    }
}

async fn revoke(
    ctx: &Context<'_>,
    whose: Whose,
    reason: &str,
    operation: &str,
) -> async_graphql::Result<CredentialsRevokedPayload> {
    let capability = Capability::RespondToIncidents;
    let caller = Caller::of(ctx)?;
    let admin = caller.require(capability)?;
    let identity = ctx.data::<Arc<Identity>>()?;
    let (target, target_id) = target_of(&whose);
    record_change(
        caller,
        capability,
        target,
        target_id.as_deref(),
        "credentials",
        operation,
    )
    .await?;
    let result = identity
        .revoke_credentials(&admin.actor, event_request_id(caller), &whose, reason)
        .await;
    Ok(match result {
        Ok(revoked) => CredentialsRevokedPayload::of(whose.as_principal(), revoked),
        Err(error) => CredentialsRevokedPayload::failed(identity_error(error)?),
    })
}

/// The service and a command context once the decision about matter `number` is durable.
async fn admitted_on_matter(
    ctx: &Context<'_>,
    number: &str,
    operation: &str,
) -> async_graphql::Result<(Arc<Service>, CommandContext)> {
    let capability = Capability::RespondToIncidents;
    let caller = Caller::of(ctx)?;
    let admin = caller.require(capability)?;
    let number = number.trim().to_ascii_uppercase();
    caller.note(
        recordable(&number),
        "matter",
        recordable(&number),
        Some("frozen"),
        Decision::Allowed(capability.as_str()),
    );
    caller.flush(operation).await?;
    let mut context = CommandContext::new(admin.actor.clone());
    context.request_id = Some(caller.request_id.clone());
    Ok((ctx.data::<Arc<Service>>()?.clone(), context))
}

fn freeze_payload(
    number: &str,
    frozen: bool,
    result: Result<Committed, ServiceError>,
) -> async_graphql::Result<FreezePayload> {
    Ok(match split(result)? {
        Ok(committed) => FreezePayload {
            number: Some(number.trim().to_ascii_uppercase()),
            frozen: Some(frozen),
            positions: Some(Positions {
                first: committed.first_position,
                last: committed.last_position,
            }),
            version: Some(committed.version),
            user_errors: Vec::new(),
        },
        Err(error) => FreezePayload {
            user_errors: vec![error],
            ..Default::default()
        },
    })
}

#[Object]
impl IncidentMutation {
    /// Withdraws every credential of one principal at once: `user:<id>` (sessions and pending
    /// enrolment tokens) or `api_client:<id>` (sessions and every API key). Recorded as one
    /// `auth.credentials_revoked` event. Disable the user too if they must not sign in again.
    async fn revoke_credentials(
        &self,
        ctx: &Context<'_>,
        principal: String,
        reason: String,
    ) -> async_graphql::Result<CredentialsRevokedPayload> {
        let whose = match Whose::parse(&principal) {
            Ok(Whose::Everyone) | Err(_) => {
                return Ok(CredentialsRevokedPayload::failed(UserError {
                    field: Some("principal".into()),
                    code: "INVALID_INPUT".into(),
                    message: "give `user:<id>` or `api_client:<id>`; use `lockdown` for everyone"
                        .into(),
                }));
            }
            Ok(whose) => whose,
        };
        revoke(ctx, whose, &reason, "mutation revokeCredentials").await
    }

    /// A lockdown: every session (this one included: the admin is signed out too), every API
    /// key and every pending enrolment token of everyone, withdrawn at once. Users sign in
    /// again; API clients need new keys.
    async fn lockdown(
        &self,
        ctx: &Context<'_>,
        reason: String,
    ) -> async_graphql::Result<CredentialsRevokedPayload> {
        revoke(ctx, Whose::Everyone, &reason, "mutation lockdown").await
    }

    /// Freezes a matter for an incident: it stays readable, but every change to it is refused
    /// with `MATTER_FROZEN` (users, API clients, uploads) and it is not erased, until
    /// `unfreezeMatter`.
    async fn freeze_matter(
        &self,
        ctx: &Context<'_>,
        number: String,
        reason: String,
    ) -> async_graphql::Result<FreezePayload> {
        let (service, context) = admitted_on_matter(ctx, &number, "mutation freezeMatter").await?;
        let result = service.freeze_matter(&context, &number, &reason).await;
        freeze_payload(&number, true, result)
    }

    /// Lifts a freeze: the matter takes changes again under its own rules.
    async fn unfreeze_matter(
        &self,
        ctx: &Context<'_>,
        number: String,
        reason: String,
    ) -> async_graphql::Result<FreezePayload> {
        let (service, context) =
            admitted_on_matter(ctx, &number, "mutation unfreezeMatter").await?;
        let result = service.unfreeze_matter(&context, &number, &reason).await;
        freeze_payload(&number, false, result)
    }

    /// Hands the log's signing over to a fresh key (`keys.rotated`, signed by the outgoing
    /// key). Other processes sharing the database need the new key file before they append
    /// again (docs/operations.md).
    async fn rotate_signing_key(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<SigningKeyRotationPayload> {
        let service = admitted_for_keys(ctx, "signing_key", "mutation rotateSigningKey").await?;
        let rotation = service.log().rotate_key().await.map_err(internal)?;
        Ok(SigningKeyRotationPayload {
            previous_key_id: rotation.previous_key_id,
            key_id: rotation.next_key_id,
            position: rotation.position,
        })
    }

    /// Adds a key-encryption key version and rewraps every data key under it, online (as
    /// `docket keys rotate-kek`). Retiring the old version stays the operator's act.
    async fn rotate_kek(&self, ctx: &Context<'_>) -> async_graphql::Result<KekRotationPayload> {
        let service = admitted_for_keys(ctx, "kek", "mutation rotateKek").await?;
        let outcome = service
            .vault()
            .rotate_kek_completely(&|_| {})
            .await
            .map_err(internal)?;
        Ok(outcome.into())
    }
}

/// The service, once the admin's decision to rotate `target` is durable.
async fn admitted_for_keys(
    ctx: &Context<'_>,
    target: &'static str,
    operation: &str,
) -> async_graphql::Result<Arc<Service>> {
    let capability = Capability::RotateKeys;
    let caller = Caller::of(ctx)?;
    caller.require(capability)?;
    record_change(caller, capability, "keys", Some(target), "keys", operation).await?;
    Ok(ctx.data::<Arc<Service>>()?.clone())
}
