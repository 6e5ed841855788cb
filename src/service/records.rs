//! Records management: legal holds, retention policies, erasure by destroying a subject's data
//! key, and subject access exports.
//!
//! An erasure is two acts by two users: one requests it (`subject.erasure_requested`), another
//! confirms it. Confirming appends `subject.erased` first and destroys the key after, so no key
//! is ever destroyed without its record; if the destruction fails, confirming again finishes
//! it. Retention erases expired matters on the system's authority, citing the policy.

use chrono::{Months, NaiveDate};
use serde_json::{Value, json};

use super::{CommandContext, Committed, Service, ServiceError, read_stream};
use crate::domain::DomainError;
use crate::domain::events::{DomainEvent, PartyRole};
use crate::domain::governance::{ErasureState, Governance};
use crate::domain::ids::{MatterNumber, contact_stream, new_entity_id};
use crate::domain::records::{
    ErasureBasis, ErasureRequested, GOVERNANCE_STREAM, HoldPlaced, HoldReleased,
    RetentionPolicySet, SubjectErased,
};
use crate::log::{Actor, StreamId};

/// Longest reason kept with a hold, a policy or an erasure.
const REASON_MAX: usize = 500;
/// The actor retention erasures are recorded under.
pub const RETENTION_ACTOR: &str = "system";

/// What confirming an erasure did.
#[derive(Debug, Clone)]
pub struct ErasureOutcome {
    pub subject: String,
    pub committed: Option<Committed>,
    /// Whether the data key was destroyed now (false when it was already gone).
    pub key_destroyed: bool,
}

/// What a retention run did.
#[derive(Debug, Clone, Default)]
pub struct RetentionRun {
    /// Matters erased, by subject.
    pub erased: Vec<String>,
    /// Expired matters kept by a legal hold: (subject, hold id).
    pub held: Vec<(String, String)>,
    /// Expired matters kept because they are frozen for an incident (evidence), by subject.
    pub frozen: Vec<String>,
    /// Matters whose erasure failed: (subject, error code).
    pub failed: Vec<(String, String)>,
}

/// A data subject: `matter:<number>` or `contact:<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Matter(MatterNumber),
    Contact(String),
}

impl Subject {
    pub fn parse(text: &str) -> Result<Subject, DomainError> {
        let invalid =
            || DomainError::invalid("subject", "a subject is matter:<number> or contact:<id>");
        match text.split_once(':') {
            Some(("matter", number)) => Ok(Subject::Matter(MatterNumber::parse(number)?)),
            Some(("contact", id)) => {
                contact_stream(id)?;
                Ok(Subject::Contact(id.to_owned()))
            }
            _ => Err(invalid()),
        }
    }

    pub fn stream(&self) -> Result<StreamId, DomainError> {
        match self {
            Subject::Matter(number) => Ok(number.stream()),
            Subject::Contact(id) => contact_stream(id),
        }
    }
}

fn reason(text: &str) -> Result<String, DomainError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > REASON_MAX {
        return Err(DomainError::invalid(
            "reason",
            format!("a reason is 1-{REASON_MAX} characters (a reference, not personal data)"),
        ));
    }
    Ok(text.to_owned())
}

fn governance_stream() -> Result<StreamId, ServiceError> {
    StreamId::parse(GOVERNANCE_STREAM)
        .map_err(|_| DomainError::invalid("stream", "the governance stream id is invalid").into())
}

impl Service {
    /// Holds in force and retention policies, and the governance stream's version.
    pub async fn governance(&self) -> Result<(u64, Governance), ServiceError> {
        let events = read_stream(&self.log, &self.vault, &governance_stream()?, 1).await?;
        let governance = Governance::from_events(&events);
        Ok((governance.version, governance))
    }

    /// Places a legal hold on a matter or a client; returns its id.
    pub async fn place_hold(
        &self,
        context: &CommandContext,
        target: &str,
        why: &str,
    ) -> Result<(String, Committed), ServiceError> {
        let subject = Subject::parse(target)?;
        let why = reason(why)?;
        self.existing(&subject).await?;
        let (version, _) = self.governance().await?;
        let hold_id = new_entity_id();
        let event = DomainEvent::HoldPlaced(HoldPlaced {
            hold_id: hold_id.clone(),
            target: subject.stream()?.as_str().to_owned(),
            reason: why,
        });
        let committed = self
            .append(context, &governance_stream()?, version, vec![event])
            .await?;
        Ok((hold_id, committed))
    }

    /// Releases a legal hold.
    pub async fn release_hold(
        &self,
        context: &CommandContext,
        hold_id: &str,
        why: &str,
    ) -> Result<Committed, ServiceError> {
        let why = reason(why)?;
        let (version, governance) = self.governance().await?;
        if !governance.holds.contains_key(hold_id) {
            return Err(DomainError::EntityNotFound { kind: "legal hold" }.into());
        }
        let event = DomainEvent::HoldReleased(HoldReleased {
            hold_id: hold_id.to_owned(),
            reason: why,
        });
        self.append(context, &governance_stream()?, version, vec![event])
            .await
    }

    /// Sets (or, with `None`, removes) the retention policy of a practice area.
    pub async fn set_retention_policy(
        &self,
        context: &CommandContext,
        practice_area: &str,
        keep_years: Option<u32>,
    ) -> Result<Committed, ServiceError> {
        let practice_area = practice_area.trim();
        if practice_area.is_empty() || practice_area.len() > 100 {
            return Err(DomainError::invalid(
                "practiceArea",
                "a practice area is 1-100 characters",
            )
            .into());
        }
        if keep_years.is_some_and(|years| !(1..=100).contains(&years)) {
            return Err(DomainError::invalid("keepYears", "keep 1-100 years after closing").into());
        }
        let (version, _) = self.governance().await?;
        let event = DomainEvent::RetentionPolicySet(RetentionPolicySet {
            practice_area: practice_area.to_owned(),
            keep_years,
        });
        self.append(context, &governance_stream()?, version, vec![event])
            .await
    }

    /// The stream version of an existing, not yet erased subject.
    async fn existing(&self, subject: &Subject) -> Result<u64, ServiceError> {
        let stream = subject.stream()?;
        match subject {
            Subject::Matter(_) => match self.matters.load(&self.log, &self.vault, &stream).await? {
                (version, Some(matter)) if !matter.erased => Ok(version),
                (_, Some(_)) => Err(DomainError::Erased.into()),
                (_, None) => Err(DomainError::MatterNotFound.into()),
            },
            Subject::Contact(_) => {
                match self.contacts.load(&self.log, &self.vault, &stream).await? {
                    (version, Some(contact)) if !contact.erased => Ok(version),
                    (_, Some(_)) => Err(DomainError::Erased.into()),
                    (_, None) => Err(DomainError::ContactNotFound.into()),
                }
            }
        }
    }

    /// The first hold keeping `subject` from erasure: a hold on it; for a matter, a hold on one
    /// of its clients; for a contact, a hold on a matter they are a party to.
    pub async fn hold_on(
        &self,
        subject: &Subject,
        governance: &Governance,
    ) -> Result<Option<String>, ServiceError> {
        let target = subject.stream()?;
        let clients = match subject {
            Subject::Matter(_) => self
                .matters
                .load(&self.log, &self.vault, &target)
                .await?
                .1
                .map(|matter| {
                    matter
                        .parties
                        .values()
                        .filter(|party| party.role == PartyRole::Client)
                        .map(|party| party.contact_id.clone())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
            Subject::Contact(_) => Vec::new(),
        };
        if let Some(hold) = governance.holds_on(target.as_str(), &clients).first() {
            return Ok(Some(hold.hold_id.clone()));
        }
        if let Subject::Contact(contact_id) = subject {
            for hold in governance.holds.values() {
                let Some(number) = hold.target.strip_prefix("matter:") else {
                    continue;
                };
                let stream = MatterNumber::parse(number)?.stream();
                let held = self.matters.load(&self.log, &self.vault, &stream).await?.1;
                if held.is_some_and(|matter| {
                    matter
                        .parties
                        .values()
                        .any(|party| &party.contact_id == contact_id)
                }) {
                    return Ok(Some(hold.hold_id.clone()));
                }
            }
        }
        Ok(None)
    }

    /// A frozen matter is evidence of an incident: it is not erased, by request or retention.
    async fn refuse_frozen(&self, subject: &Subject) -> Result<(), ServiceError> {
        match subject {
            Subject::Matter(number) if self.matter_frozen(number).await? => {
                Err(DomainError::MatterFrozen.into())
            }
            _ => Ok(()),
        }
    }

    async fn erasure_state(&self, stream: &StreamId) -> Result<ErasureState, ServiceError> {
        let events = read_stream(&self.log, &self.vault, stream, 1).await?;
        Ok(ErasureState::from_events(&events))
    }

    /// Requests the erasure of a subject's client data; returns the request's id. Refused while
    /// a legal hold covers it.
    pub async fn request_erasure(
        &self,
        context: &CommandContext,
        subject: &str,
        why: &str,
    ) -> Result<(String, Committed), ServiceError> {
        let subject = Subject::parse(subject)?;
        let why = reason(why)?;
        let version = self.existing(&subject).await?;
        self.refuse_frozen(&subject).await?;
        let (_, governance) = self.governance().await?;
        if let Some(hold_id) = self.hold_on(&subject, &governance).await? {
            return Err(DomainError::UnderLegalHold { hold_id }.into());
        }
        let stream = subject.stream()?;
        let request_id = new_entity_id();
        let event = DomainEvent::ErasureRequested(ErasureRequested {
            request_id: request_id.clone(),
            subject: stream.as_str().to_owned(),
            reason: why,
            basis: ErasureBasis::Request,
        });
        let committed = self.append(context, &stream, version, vec![event]).await?;
        Ok((request_id, committed))
    }

    /// Confirms a pending erasure request (by another user than the requester) and erases:
    /// records `subject.erased`, then destroys the data key. Confirming an erasure already
    /// recorded finishes destroying the key if that had failed.
    pub async fn confirm_erasure(
        &self,
        context: &CommandContext,
        subject: &str,
        request_id: &str,
    ) -> Result<ErasureOutcome, ServiceError> {
        let subject = Subject::parse(subject)?;
        let stream = subject.stream()?;
        let state = self.erasure_state(&stream).await?;
        if let Some(erased) = &state.erased {
            if erased.request_id != request_id {
                return Err(DomainError::Erased.into());
            }
            return self.destroy_key(&stream, None).await;
        }
        let Some((requested_by, request)) = state.pending.get(request_id) else {
            return Err(DomainError::EntityNotFound {
                kind: "erasure request",
            }
            .into());
        };
        if requested_by == context.actor.as_str() {
            return Err(DomainError::SecondPersonRequired.into());
        }
        let version = self.existing(&subject).await?;
        self.refuse_frozen(&subject).await?;
        let (_, governance) = self.governance().await?;
        if let Some(hold_id) = self.hold_on(&subject, &governance).await? {
            return Err(DomainError::UnderLegalHold { hold_id }.into());
        }
        let erased = SubjectErased {
            request_id: request_id.to_owned(),
            subject: stream.as_str().to_owned(),
            key_id: self.key_id_of(&stream).await?,
            reason: request.reason.clone(),
            basis: ErasureBasis::Request,
            requested_by: requested_by.clone(),
            confirmed_by: context.actor.as_str().to_owned(),
            erased: erased_items(&subject),
        };
        self.record_erasure(context, &stream, version, erased).await
    }

    async fn key_id_of(&self, stream: &StreamId) -> Result<Option<String>, ServiceError> {
        Ok(self
            .vault
            .store()
            .keys()
            .subject_key(stream.as_str())
            .await?
            .map(|stored| stored.key_id))
    }

    /// Appends `subject.erased` (unsealed: it holds no client data) and destroys the key.
    async fn record_erasure(
        &self,
        context: &CommandContext,
        stream: &StreamId,
        version: u64,
        erased: SubjectErased,
    ) -> Result<ErasureOutcome, ServiceError> {
        let committed = self
            .append(
                context,
                stream,
                version,
                vec![DomainEvent::SubjectErased(erased)],
            )
            .await?;
        self.destroy_key(stream, Some(committed)).await
    }

    async fn destroy_key(
        &self,
        stream: &StreamId,
        committed: Option<Committed>,
    ) -> Result<ErasureOutcome, ServiceError> {
        let now = crate::log::time::now_timestamp();
        let key_destroyed = self.vault.erase(stream.as_str(), &now).await?;
        self.matters.forget(stream.as_str());
        self.contacts.forget(stream.as_str());
        Ok(ErasureOutcome {
            subject: stream.as_str().to_owned(),
            committed,
            key_destroyed,
        })
    }

    /// Erases every closed matter whose practice area's retention has run out on `today`,
    /// unless a legal hold covers it.
    pub async fn run_retention(&self, today: NaiveDate) -> Result<RetentionRun, ServiceError> {
        let (_, governance) = self.governance().await?;
        let mut run = RetentionRun::default();
        if governance.retention.is_empty() {
            return Ok(run);
        }
        let closed: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT number, practice_area, closed_on FROM rm_matters \
             WHERE status IN ('closed', 'archived') ORDER BY number",
        )
        .fetch_all(self.projector.db().pool())
        .await
        .map_err(crate::store::StoreError::from)?;
        let system = CommandContext::new(Actor::system());
        for (number, practice_area, closed_on) in closed {
            let Some(years) = governance.retention.get(&practice_area) else {
                continue;
            };
            let expired = closed_on
                .as_deref()
                .and_then(|day| NaiveDate::parse_from_str(day, "%Y-%m-%d").ok())
                .and_then(|day| day.checked_add_months(Months::new(years.saturating_mul(12))))
                .is_some_and(|until| until <= today);
            if !expired {
                continue;
            }
            let subject = Subject::Matter(MatterNumber::parse(&number)?);
            let stream = subject.stream()?;
            match self
                .erase_expired(&system, &governance, &subject, &practice_area, *years)
                .await
            {
                Ok(Some(hold_id)) => run.held.push((stream.as_str().to_owned(), hold_id)),
                Ok(None) => run.erased.push(stream.as_str().to_owned()),
                Err(ServiceError::Domain(DomainError::Erased)) => {}
                Err(ServiceError::Domain(DomainError::MatterFrozen)) => {
                    run.frozen.push(stream.as_str().to_owned());
                }
                Err(error) => run
                    .failed
                    .push((stream.as_str().to_owned(), error.code().to_owned())),
            }
        }
        Ok(run)
    }

    /// Erases one expired matter; `Some(hold id)` when a hold keeps it.
    async fn erase_expired(
        &self,
        system: &CommandContext,
        governance: &Governance,
        subject: &Subject,
        practice_area: &str,
        years: u32,
    ) -> Result<Option<String>, ServiceError> {
        let version = self.existing(subject).await?;
        self.refuse_frozen(subject).await?;
        if let Some(hold_id) = self.hold_on(subject, governance).await? {
            return Ok(Some(hold_id));
        }
        let stream = subject.stream()?;
        let erased = SubjectErased {
            request_id: new_entity_id(),
            subject: stream.as_str().to_owned(),
            key_id: self.key_id_of(&stream).await?,
            reason: format!("retention: {practice_area}, {years} years after closing"),
            basis: ErasureBasis::Retention,
            requested_by: RETENTION_ACTOR.to_owned(),
            confirmed_by: RETENTION_ACTOR.to_owned(),
            erased: erased_items(subject),
        };
        self.record_erasure(system, &stream, version, erased)
            .await?;
        Ok(None)
    }

    /// Everything Docket holds about a contact, opened, as one JSON document (GDPR Art. 15):
    /// their details now and in every recorded version, and the matters they are a party to.
    pub async fn subject_access(&self, contact_id: &str) -> Result<Value, ServiceError> {
        let stream = contact_stream(contact_id)?;
        let events = read_stream(&self.log, &self.vault, &stream, 1).await?;
        if events.is_empty() {
            return Err(DomainError::ContactNotFound.into());
        }
        let contact = self.contacts.load(&self.log, &self.vault, &stream).await?.1;
        let history: Vec<Value> = events
            .iter()
            .map(|recorded| {
                let details = match &recorded.event {
                    DomainEvent::ContactCreated(created) => json!(created.private),
                    DomainEvent::ContactUpdated(updated) => json!(updated.private),
                    _ => Value::Null,
                };
                json!({
                    "position": recorded.position,
                    "type": recorded.event.event_type(),
                    "recorded_at": recorded.recorded_at,
                    "actor": recorded.actor,
                    "erased": recorded.privacy.is_erased(),
                    "details": details,
                })
            })
            .collect();
        let parties: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT p.party_id, p.matter_number, p.role, p.added_at FROM rm_parties p \
             WHERE p.contact_id = $1 ORDER BY p.matter_number, p.party_id",
        )
        .bind(contact_id)
        .fetch_all(self.projector.db().pool())
        .await
        .map_err(crate::store::StoreError::from)?;
        let matters: Vec<Value> = parties
            .into_iter()
            .map(|(party_id, matter_number, role, added_at)| {
                json!({
                    "matter_number": matter_number,
                    "party_id": party_id,
                    "role": role,
                    "added_at": added_at,
                })
            })
            .collect();
        Ok(json!({
            "format": "docket-subject-access/1",
            "subject": stream.as_str(),
            "generated_at": crate::log::time::now_timestamp(),
            "contact": contact.map(|contact| json!({
                "contact_id": contact.contact_id,
                "kind": contact.kind,
                "details": contact.details,
                "created_at": contact.created_at,
                "updated_at": contact.updated_at,
                "erased": contact.erased,
            })),
            "history": history,
            "matters": matters,
        }))
    }
}

fn erased_items(subject: &Subject) -> Vec<String> {
    let mut items = vec!["client_data".to_owned()];
    match subject {
        Subject::Matter(_) => items.push("document_contents".to_owned()),
        Subject::Contact(_) => items.push("blind_indexes".to_owned()),
    }
    items
}
