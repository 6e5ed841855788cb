//! The caller of one GraphQL request: who it is (if anyone), the directory as it stood when the
//! request arrived, and the ledger of every decision taken for it. Resolvers ask the policy
//! through these methods only, so every decision is both enforced and recorded.

use std::sync::Arc;

use async_graphql::Context;
use chrono::{DateTime, Utc};

use super::errors::api_error;
use super::loaders::{PartiesLoader, TeamLoader};
use super::types::load_one;
use crate::access::chain::AccessChain;
use crate::access::ledger::Ledger;
use crate::access::policy::{
    self, Capability, Decision, MatterAccess, MatterChange, MatterFacts, Part,
};
use crate::access::record::{self, AccessEntry, AccessRecord};
use crate::access::scope::{MatterScope, matter_scope};
use crate::identity::directory::Directory;
use crate::identity::principal::Principal;
use crate::read::MatterRow;

/// The per-request view of who is asking.
pub struct Caller {
    pub principal: Option<Principal>,
    pub directory: Arc<Directory>,
    pub now: DateTime<Utc>,
    pub now_text: String,
    pub ledger: Ledger,
    pub request_id: String,
    pub client_address: Option<String>,
    pub access: Arc<AccessChain>,
    /// Sign-in attempts made in this request (at most one is allowed).
    attempts: std::sync::atomic::AtomicU32,
    /// A session cookie to set or clear on the response.
    cookie: std::sync::Mutex<Option<CookieChange>>,
}

/// What the response should do with the session cookie.
pub enum CookieChange {
    Set {
        token: zeroize::Zeroizing<String>,
        max_age: i64,
    },
    Clear,
}

/// The error a caller that is not signed in gets, whatever it asked for.
pub fn unauthenticated() -> async_graphql::Error {
    api_error("UNAUTHENTICATED", "sign in to use this API")
}

/// What a caller gets for something it may not do.
pub fn forbidden(decision: Decision) -> async_graphql::Error {
    match decision.reason() {
        "step_up_required" => api_error(
            "STEP_UP_REQUIRED",
            "confirm a current authenticator code (stepUp) and try again",
        ),
        "inactive" => unauthenticated(),
        _ => api_error("FORBIDDEN", "you do not have access to this"),
    }
}

/// What a failure to make the access record durable becomes: nothing is returned or changed.
pub fn record_unavailable() -> async_graphql::Error {
    api_error(
        "ACCESS_RECORD_UNAVAILABLE",
        "the access could not be recorded, so it was not carried out; try again",
    )
}

impl Caller {
    pub fn new(
        principal: Option<Principal>,
        directory: Arc<Directory>,
        request_id: String,
        client_address: Option<String>,
        access: Arc<AccessChain>,
    ) -> Caller {
        let now = Utc::now();
        Caller {
            principal,
            directory,
            now,
            now_text: crate::log::time::format_timestamp(now),
            ledger: Ledger::default(),
            request_id,
            client_address,
            access,
            attempts: std::sync::atomic::AtomicU32::new(0),
            cookie: std::sync::Mutex::new(None),
        }
    }

    /// Counts a sign-in attempt (login, enrolment, step-up); a second one in the same request
    /// is refused, so aliases cannot multiply guesses.
    pub fn one_attempt(&self) -> async_graphql::Result<()> {
        let before = self
            .attempts
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if before == 0 {
            Ok(())
        } else {
            Err(api_error(
                "ONE_ATTEMPT_PER_REQUEST",
                "only one sign-in attempt is allowed per request",
            ))
        }
    }

    /// Asks the response to set or clear the session cookie.
    pub fn set_cookie(&self, change: CookieChange) {
        if let Ok(mut cookie) = self.cookie.lock() {
            *cookie = Some(change);
        }
    }

    pub fn take_cookie(&self) -> Option<CookieChange> {
        self.cookie.lock().ok().and_then(|mut cookie| cookie.take())
    }

    /// The caller of the request being resolved.
    pub fn of<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a Caller> {
        ctx.data::<Arc<Caller>>()
            .map(|caller| caller.as_ref())
            .map_err(|_| unauthenticated())
    }

    /// The signed-in, active principal.
    pub fn signed(&self) -> async_graphql::Result<&Principal> {
        let Some(principal) = &self.principal else {
            return Err(unauthenticated());
        };
        match policy::active_role(&self.directory, principal) {
            Ok(_) => Ok(principal),
            Err(_) => Err(unauthenticated()),
        }
    }

    /// Requires a firm-wide capability; the decision is recorded either way.
    pub fn require(&self, capability: Capability) -> async_graphql::Result<&Principal> {
        let principal = self.signed()?;
        let decision = policy::capability(&self.directory, principal, capability, self.now);
        self.ledger.note(
            None,
            "capability",
            Some(capability.as_str()),
            None,
            decision,
        );
        if decision.is_allowed() {
            Ok(principal)
        } else {
            Err(forbidden(decision))
        }
    }

    /// Which matters the caller sees anything of, for list queries.
    pub fn scope(&self) -> async_graphql::Result<MatterScope> {
        let principal = self.signed()?;
        Ok(matter_scope(&self.directory, principal, &self.now_text))
    }

    /// How far the caller reaches into a matter; the decision is recorded.
    pub fn matter_access(&self, facts: &MatterFacts) -> async_graphql::Result<MatterAccess> {
        let principal = self.signed()?;
        let access = policy::matter_access(&self.directory, principal, facts, &self.now_text);
        let decision = if access.is_visible() {
            Decision::Allowed(access.reason())
        } else {
            Decision::Denied(access.reason())
        };
        self.ledger
            .note(Some(&facts.number), "matter", None, None, decision);
        Ok(access)
    }

    /// Whether a part of an admitted matter may be read; the part is recorded as touched.
    pub fn read_part(
        &self,
        number: &str,
        access: MatterAccess,
        part: Part,
    ) -> async_graphql::Result<()> {
        let decision = access.decide(part);
        self.ledger
            .note(Some(number), "matter", None, Some(part.as_str()), decision);
        if decision.is_allowed() {
            Ok(())
        } else {
            Err(forbidden(decision))
        }
    }

    /// Decides a change to a matter and makes the decision durable before the change is made.
    /// A matter the caller cannot see at all is reported exactly as a missing one.
    pub async fn authorize_change(
        &self,
        facts: &MatterFacts,
        change: MatterChange,
    ) -> async_graphql::Result<Result<(), Decision>> {
        let principal = self.signed()?;
        let decision =
            policy::matter_change(&self.directory, principal, facts, change, &self.now_text);
        self.ledger.note(
            Some(&facts.number),
            "matter",
            None,
            Some(change.part().as_str()),
            decision,
        );
        self.flush("mutation").await?;
        Ok(if decision.is_allowed() {
            Ok(())
        } else {
            Err(decision)
        })
    }

    /// Notes a decision about something other than a matter's parts.
    pub fn note(
        &self,
        matter: Option<&str>,
        target: &'static str,
        target_id: Option<&str>,
        field: Option<&'static str>,
        decision: Decision,
    ) {
        self.ledger.note(matter, target, target_id, field, decision);
    }

    /// Writes what the ledger holds as one access record, durably. Nothing to write is fine.
    pub async fn flush(&self, operation: &str) -> async_graphql::Result<()> {
        let entries = self.ledger.take();
        if entries.is_empty() {
            return Ok(());
        }
        let record = AccessRecord {
            principal: self
                .principal
                .as_ref()
                .map_or_else(|| "anonymous".to_owned(), |p| p.actor.as_str().to_owned()),
            session: self.principal.as_ref().and_then(|p| p.session_id.clone()),
            operation: operation.chars().take(record::MAX_TEXT_CHARS).collect(),
            request_id: Some(self.request_id.clone()),
            client_address: self.client_address.clone(),
            entries: entries
                .into_iter()
                .map(|entry| AccessEntry {
                    matter: entry.matter,
                    target: entry.target.to_owned(),
                    target_id: entry.target_id,
                    fields: entry.fields.into_iter().map(str::to_owned).collect(),
                    decision: if entry.allowed {
                        record::Decision::Allowed
                    } else {
                        record::Decision::Denied
                    },
                    reason: entry.reason.to_owned(),
                })
                .collect(),
        };
        match self.access.record(&record).await {
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::error!(%error, "an access record could not be written");
                Err(record_unavailable())
            }
        }
    }
}

/// The policy facts of a matter, from the read models (team and clients through the request's
/// batch loaders, so a list of matters costs two queries, not two per matter).
pub async fn matter_facts(
    ctx: &Context<'_>,
    row: &MatterRow,
) -> async_graphql::Result<MatterFacts> {
    let team = load_one::<TeamLoader>(ctx, &row.number)
        .await?
        .unwrap_or_default();
    let parties = load_one::<PartiesLoader>(ctx, &row.number)
        .await?
        .unwrap_or_default();
    Ok(MatterFacts {
        number: row.number.clone(),
        practice_area: row.practice_area.clone(),
        firm_visible: row.firm_visible != 0,
        team: team
            .into_iter()
            .map(|member| (member.user_id, member.capacity))
            .collect(),
        clients: parties
            .into_iter()
            .filter(|party| party.role == "client")
            .map(|party| party.contact_id)
            .collect(),
    })
}

/// Admits a matter row for the caller: the matter with the caller's access, or `None` when the
/// caller may see nothing of it (indistinguishable from a matter that does not exist).
pub async fn admit_matter(
    ctx: &Context<'_>,
    row: MatterRow,
) -> async_graphql::Result<Option<super::types::Matter>> {
    let caller = Caller::of(ctx)?;
    let facts = matter_facts(ctx, &row).await?;
    let access = caller.matter_access(&facts)?;
    Ok(access
        .is_visible()
        .then_some(super::types::Matter { row, access }))
}

/// Admits a thing that belongs to a matter (a note, task, document...): whether the caller may
/// read `part` of matter `number`. Hidden and missing look the same (`false`).
pub async fn admit_part(
    ctx: &Context<'_>,
    number: &str,
    part: Part,
) -> async_graphql::Result<bool> {
    let caller = Caller::of(ctx)?;
    let Some(row) = load_one::<super::loaders::MatterLoader>(ctx, number).await? else {
        return Ok(false);
    };
    let facts = matter_facts(ctx, &row).await?;
    let access = caller.matter_access(&facts)?;
    if !access.is_visible() {
        return Ok(false);
    }
    Ok(caller.read_part(number, access, part).is_ok())
}

/// The policy facts of a matter read afresh (not through the request's loaders, which may hold
/// an answer from before a change in this request).
pub async fn fresh_matter_facts(
    db: &crate::projection::ReadDb,
    row: &MatterRow,
) -> async_graphql::Result<MatterFacts> {
    crate::access::facts::of_row(db.pool(), row)
        .await
        .map_err(super::errors::internal)
}
