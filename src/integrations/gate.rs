//! The event gate: what a principal may receive of one event, decided at the moment of
//! delivery with the policy that governs every other read.
//!
//! Only events of matter streams are delivered, and the alerts of the `alerts` stream to those
//! allowed to read alerts (admins, auditors, API clients whose scopes include alerts). A principal who sees a matter's history (its
//! team, auditors, anyone the policy admits to the matter) receives the event's metadata:
//! position, type, actor, times, hash and signature. Its payload, with the client data opened,
//! comes only with access to the part of the matter the event belongs to (a time entry needs
//! `matter.time`, a privileged note `matter.notes.privileged`).
//!
//! Decisions use the directory as it is now (walls, roles, API-client scopes) and the matter's
//! facts (team, clients) from the read models. The gate keeps both current in log order: every
//! follower shows it each event before asking about later ones, so an event that changes a
//! matter's team or the directory is folded before any later event is decided, in this
//! process and for appends made by others.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::access::Principal;
use crate::access::facts;
use crate::access::policy::{self, MatterFacts, Part};
use crate::domain::identity::DIRECTORY_STREAM;
use crate::identity::Identity;
use crate::identity::directory::Directory;
use crate::log::Event;
use crate::monitoring::alert_log;
use crate::projection::{Projector, WaitOutcome};
use crate::read::{Bind, Sql};
use crate::vault::Vault;

/// How long a decision may wait for the read models to reach the event being decided.
const PROJECTION_WAIT: Duration = Duration::from_secs(5);

/// What a principal may receive of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Nothing: the event is not delivered (and the principal does not learn it exists).
    Withheld,
    /// The metadata only, no payload.
    Metadata { part: Part, reason: &'static str },
    /// Metadata and payload.
    Content { part: Part, reason: &'static str },
}

impl Admission {
    pub fn is_delivered(self) -> bool {
        !matches!(self, Admission::Withheld)
    }

    pub fn includes_payload(self) -> bool {
        matches!(self, Admission::Content { .. })
    }
}

/// Why the gate could not decide; the follower should stop and resume later.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GateError {
    #[error("the read models did not reach position {position} in time")]
    Behind { position: u64 },
    #[error("the event's access could not be decided: {detail}")]
    Unavailable { detail: String },
}

/// A matter's facts as last loaded, and the position the read models had reached.
struct Cached {
    facts: Option<Arc<MatterFacts>>,
    through: u64,
}

/// The per-event authorisation shared by subscriptions and webhooks.
pub struct EventGate {
    identity: Arc<Identity>,
    projector: Arc<Projector>,
    vault: Arc<Vault>,
    facts: std::sync::Mutex<HashMap<String, Cached>>,
    /// Per matter, the last position seen of an event that can change its facts.
    changes: std::sync::Mutex<HashMap<String, u64>>,
    /// The last position seen of an event that can change any matter's facts: a follower's
    /// [`Memo`] of facts holds while this has not moved.
    facts_changed: AtomicU64,
    /// The directory has folded every directory event up to here.
    directory_through: AtomicU64,
    directory_refresh: tokio::sync::Mutex<()>,
    /// Payloads opened lately, by position: a thousand subscribers to one event decrypt it
    /// once. Emptied when a subject is erased.
    opened: std::sync::Mutex<HashMap<u64, Arc<Opened>>>,
    /// Whether a note event of a position is about a privileged note, decided once per event
    /// rather than once per subscriber: slot `position % OPENED_KEPT` holds
    /// `position << 2 | KNOWN | privileged`, read without a lock.
    privileged_notes: Box<[AtomicU64]>,
    /// Taken to fill each cache: the subscribers that miss together wait for one read.
    filling_facts: tokio::sync::Mutex<()>,
    filling_payloads: tokio::sync::Mutex<()>,
}

/// Most opened payloads (and note privileges) kept; the payloads' cache starts over when
/// full, a note privilege's slot is taken by the position `OPENED_KEPT` after it.
const OPENED_KEPT: usize = 4096;

/// In a slot of `privileged_notes`: the slot holds a decided privilege.
const PRIVILEGE_KNOWN: u64 = 0b10;

/// Most matters a [`Memo`] holds before it starts over.
const MEMO_MATTERS: usize = 4096;

/// What one follower last learned from the gate (the directory, each matter's facts), so that
/// its next decisions take no lock: each is checked against a version the gate or the directory
/// keeps in an atomic, and taken again when that has moved. A wall erected, a key revoked or a
/// team changed moves it before any later event is decided (see [`EventGate::observe`]), so a
/// memo never decides with less than the gate itself would.
///
/// Beside each matter's facts the memo keeps what its holder noted of the matter (a
/// subscription: the parts already in its access records), and the policy's last answer for
/// its holder, so that one lookup per delivery serves all three. A memo serves one principal.
/// At [`MEMO_MATTERS`] matters it starts over, notes included.
#[derive(Default)]
pub struct Memo {
    directory: Option<Arc<Directory>>,
    matters: HashMap<String, Remembered, foldhash::fast::RandomState>,
}

/// What a [`Memo`] holds of one matter.
struct Remembered {
    facts: Option<Arc<MatterFacts>>,
    /// `EventGate::facts_changed` when `facts` were taken.
    as_of: u64,
    /// The policy's last answer on these facts, for the memo's one principal.
    decided: Option<Decided>,
    /// Parts the holder noted, one bit per part.
    noted: u32,
}

/// An answer of the policy, and how long it holds: until the directory it was taken with is
/// replaced, the facts are taken again, or the time reaches `until`
/// ([`policy::matter_access_changes_at`]).
struct Decided {
    directory: u64,
    access: policy::MatterAccess,
    until: Option<String>,
}

impl Decided {
    fn holds(&self, directory: u64) -> bool {
        self.directory == directory
            && self
                .until
                .as_deref()
                .is_none_or(|until| crate::log::time::with_now(|now| now < until))
    }
}

/// A part's bit in a [`Memo`]'s notes.
fn part_bit(part: Part) -> u32 {
    1 << (part as u32)
}

// Every part has a bit of its own in a `u32` (`Alerts` is the last of them).
const _: () = assert!((Part::Alerts as u32) < u32::BITS);

impl Memo {
    /// Notes `part` of matter `number` (of a matter the memo holds; otherwise nothing).
    pub fn note(&mut self, number: &str, part: Part) {
        if let Some(remembered) = self.matters.get_mut(number) {
            remembered.noted |= part_bit(part);
        }
    }
}

/// What [`EventGate::admit_with`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    pub admission: Admission,
    /// Whether the delivered part of the event's matter was noted in the memo before
    /// ([`Memo::note`]); false outside matters.
    pub noted: bool,
}

/// An event's payload with its client data opened.
#[derive(Debug)]
pub struct Opened {
    pub payload: Value,
    /// The subject's data was erased: `private` is empty.
    pub erased: bool,
}

/// The matter number of a matter stream.
pub fn matter_of(stream: &str) -> Option<&str> {
    stream.strip_prefix("matter:")
}

/// Event types that never change who may see a matter.
fn leaves_facts_alone(event_type: &str) -> bool {
    matches!(
        event_type,
        "matter.note_added"
            | "matter.note_edited"
            | "matter.time_recorded"
            | "matter.document_added"
            | "matter.document_version_added"
            | "matter.task_created"
            | "matter.task_completed"
            | "matter.task_cancelled"
            | "matter.task_reopened"
            | "matter.calendar_entry_scheduled"
            | "matter.calendar_entry_cancelled"
            | "matter.conflict_check_recorded"
            | "matter.custom_field_set"
            | "matter.status_changed"
    )
}

/// The part of a matter an event's payload belongs to (`privileged` for notes known to be).
fn part_of(event_type: &str, privileged: bool) -> Part {
    match event_type {
        "matter.note_added" | "matter.note_edited" if privileged => Part::PrivilegedNotes,
        "matter.note_added" | "matter.note_edited" => Part::Notes,
        "matter.time_recorded" => Part::Time,
        "matter.document_added" | "matter.document_version_added" => Part::Documents,
        "matter.team_member_added" | "matter.team_member_removed" => Part::Team,
        "matter.party_added" | "matter.party_removed" => Part::Parties,
        "matter.conflict_check_recorded" => Part::ConflictChecks,
        kind if kind.starts_with("matter.task_") || kind.starts_with("matter.calendar_") => {
            Part::Work
        }
        _ => Part::Core,
    }
}

impl EventGate {
    pub fn new(identity: Arc<Identity>, projector: Arc<Projector>, vault: Arc<Vault>) -> Self {
        EventGate {
            identity,
            projector,
            vault,
            facts: Default::default(),
            changes: Default::default(),
            facts_changed: AtomicU64::new(0),
            directory_through: AtomicU64::new(0),
            directory_refresh: tokio::sync::Mutex::new(()),
            opened: Default::default(),
            privileged_notes: (0..OPENED_KEPT).map(|_| AtomicU64::new(0)).collect(),
            filling_facts: tokio::sync::Mutex::new(()),
            filling_payloads: tokio::sync::Mutex::new(()),
        }
    }

    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    /// Shows the gate an event before anything after it is decided: a directory event is
    /// folded into the directory, and a change to a matter's facts makes the cached facts
    /// stale. Every follower calls it for every event it reads, filtered out or not.
    pub async fn observe(&self, event: &Event) -> Result<(), GateError> {
        if event.stream == DIRECTORY_STREAM {
            // Boxed: the refresh is rare, and every delivery would carry its future's size.
            return Box::pin(self.observe_directory(event)).await;
        }
        if event.event_type == "subject.erased"
            && let Ok(mut opened) = self.opened.lock()
        {
            opened.clear();
        }
        if let Some(number) = matter_of(&event.stream)
            && !leaves_facts_alone(&event.event_type)
        {
            if let Ok(mut changes) = self.changes.lock() {
                let last = changes.entry(number.to_owned()).or_default();
                *last = (*last).max(event.position);
            }
            // After the per-matter mark: a memo that sees the move finds the mark.
            if self.facts_changed.load(Ordering::Acquire) < event.position {
                self.facts_changed
                    .fetch_max(event.position, Ordering::AcqRel);
            }
        }
        Ok(())
    }

    /// Folds a directory event into the directory, once for all followers.
    async fn observe_directory(&self, event: &Event) -> Result<(), GateError> {
        if self.directory_through.load(Ordering::Acquire) >= event.position {
            return Ok(());
        }
        let _refreshing = self.directory_refresh.lock().await;
        if self.directory_through.load(Ordering::Acquire) >= event.position {
            return Ok(());
        }
        self.identity
            .directory_handle()
            .refresh()
            .await
            .map_err(|error| GateError::Unavailable {
                detail: error.to_string(),
            })?;
        self.directory_through
            .fetch_max(event.position, Ordering::AcqRel);
        Ok(())
    }

    /// How far `who` reaches into matter `number` now, with facts current as of at least
    /// `position`; `None` when the read models do not know the matter.
    pub async fn matter_access(
        &self,
        who: &Principal,
        number: &str,
        position: u64,
    ) -> Result<Option<policy::MatterAccess>, GateError> {
        let (access, _) = self
            .remembered_access(&mut Memo::default(), who, number, position)
            .await?;
        Ok(access)
    }

    /// What `who` may receive of `event` now. Call [`EventGate::observe`] on it first.
    pub async fn admit(&self, who: &Principal, event: &Event) -> Result<Admission, GateError> {
        let admitted = self.admit_with(&mut Memo::default(), who, event).await?;
        Ok(admitted.admission)
    }

    /// [`EventGate::admit`] for a follower that keeps a [`Memo`] from one event to the next.
    pub async fn admit_with(
        &self,
        memo: &mut Memo,
        who: &Principal,
        event: &Event,
    ) -> Result<Admitted, GateError> {
        let withheld = Admitted {
            admission: Admission::Withheld,
            noted: false,
        };
        let Some(number) = matter_of(&event.stream) else {
            return Ok(Admitted {
                admission: self.admit_alert(who, event),
                noted: false,
            });
        };
        let (access, noted) = self
            .remembered_access(memo, who, number, event.position)
            .await?;
        let Some(access) = access else {
            return Ok(withheld);
        };
        let metadata = access.decide(Part::History);
        if !metadata.is_allowed() {
            return Ok(withheld);
        }
        let known = self.known_privilege(event);
        let privileged = match known {
            Some(privileged) => privileged,
            None => Box::pin(self.privileged(event)).await?,
        };
        let part = part_of(&event.event_type, privileged);
        let decision = access.decide(part);
        let admission = if decision.is_allowed() {
            Admission::Content {
                part,
                reason: decision.reason(),
            }
        } else {
            Admission::Metadata {
                part: Part::History,
                reason: metadata.reason(),
            }
        };
        let delivered = match admission {
            Admission::Content { part, .. } | Admission::Metadata { part, .. } => part,
            Admission::Withheld => return Ok(withheld),
        };
        Ok(Admitted {
            admission,
            noted: noted & part_bit(delivered) != 0,
        })
    }

    /// How far `who` reaches into matter `number` now, from what `memo` holds, brought up to
    /// date first, with the parts the memo noted of the matter.
    async fn remembered_access(
        &self,
        memo: &mut Memo,
        who: &Principal,
        number: &str,
        position: u64,
    ) -> Result<(Option<policy::MatterAccess>, u32), GateError> {
        let version = self.identity.directory_handle().version();
        if memo
            .directory
            .as_ref()
            .is_none_or(|directory| directory.version != version)
        {
            memo.directory = Some(self.identity.directory());
        }
        // Read before the facts are: a change seen after it leaves them stale, never wrong.
        let changed = self.facts_changed.load(Ordering::Acquire);
        let current = memo
            .matters
            .get(number)
            .is_some_and(|remembered| remembered.as_of == changed);
        if !current {
            // The common case answers from the cache without building the filling future
            // (large: it holds the read-model query), which every delivery would otherwise carry.
            let facts = match self.cached_facts(number) {
                Some(facts) => facts,
                None => Box::pin(self.facts(number, position)).await?,
            };
            match memo.matters.get_mut(number) {
                Some(remembered) => {
                    remembered.facts = facts;
                    remembered.as_of = changed;
                    remembered.decided = None;
                }
                None => {
                    if memo.matters.len() >= MEMO_MATTERS {
                        memo.matters.clear();
                    }
                    let remembered = Remembered {
                        facts,
                        as_of: changed,
                        decided: None,
                        noted: 0,
                    };
                    memo.matters.insert(number.to_owned(), remembered);
                }
            }
        }
        let (Some(directory), Some(remembered)) = (&memo.directory, memo.matters.get_mut(number))
        else {
            return Ok((None, 0));
        };
        let Some(facts) = &remembered.facts else {
            return Ok((None, remembered.noted));
        };
        // The policy's answer is kept until something it depends on moves: most deliveries
        // take no clock reading and no lookup in the directory.
        if let Some(decided) = &remembered.decided
            && decided.holds(directory.version)
        {
            return Ok((Some(decided.access), remembered.noted));
        }
        let decided = crate::log::time::with_now(|now| Decided {
            directory: directory.version,
            access: policy::matter_access(directory, who, facts, now),
            until: policy::matter_access_changes_at(directory, who, facts, now),
        });
        let access = decided.access;
        remembered.decided = Some(decided);
        Ok((Some(access), remembered.noted))
    }

    /// An event of the `alerts` stream goes, whole, to those allowed to read alerts; every
    /// other event outside matter streams to no one.
    fn admit_alert(&self, who: &Principal, event: &Event) -> Admission {
        if event.stream != alert_log::STREAM {
            return Admission::Withheld;
        }
        let directory = self.identity.directory();
        match policy::alerts_access(&directory, who, chrono::Utc::now()) {
            policy::Decision::Allowed(reason) => Admission::Content {
                part: Part::Alerts,
                reason,
            },
            policy::Decision::Denied(_) => Admission::Withheld,
        }
    }

    /// The event's payload with its client data opened (`private` is `{}` and `erased` true
    /// when the subject was erased).
    pub async fn payload(&self, event: &Event) -> Result<Arc<Opened>, GateError> {
        let cached = || {
            self.opened
                .lock()
                .ok()
                .and_then(|opened| opened.get(&event.position).cloned())
        };
        if let Some(found) = cached() {
            return Ok(found);
        }
        let _filling = self.filling_payloads.lock().await;
        if let Some(found) = cached() {
            return Ok(found);
        }
        let opened = Arc::new(self.open_payload(event).await?);
        if let Ok(mut cache) = self.opened.lock() {
            if cache.len() >= OPENED_KEPT {
                cache.clear();
            }
            cache.insert(event.position, opened.clone());
        }
        Ok(opened)
    }

    async fn open_payload(&self, event: &Event) -> Result<Opened, GateError> {
        let mut payload: Value =
            serde_json::from_str(&event.payload).map_err(|_| GateError::Unavailable {
                detail: "a stored payload is not JSON".into(),
            })?;
        if !crate::domain::privacy::has_sealed_part(&event.payload) {
            return Ok(Opened {
                payload,
                erased: false,
            });
        }
        let keys = self
            .vault
            .keys_for_events(std::slice::from_ref(event))
            .await
            .map_err(|error| GateError::Unavailable {
                detail: error.to_string(),
            })?;
        let privacy = crate::domain::events::open_private(event, &mut payload, &keys)
            .map_err(|detail| GateError::Unavailable { detail })?;
        Ok(Opened {
            payload,
            erased: privacy.is_erased(),
        })
    }

    /// The privilege of a note event if already decided (false for events that are not notes).
    fn known_privilege(&self, event: &Event) -> Option<bool> {
        if !event.event_type.starts_with("matter.note_") {
            return Some(false);
        }
        let slot = self.privilege_slot(event.position)?.load(Ordering::Acquire);
        (slot & PRIVILEGE_KNOWN != 0 && slot >> 2 == event.position).then_some(slot & 1 == 1)
    }

    fn privilege_slot(&self, position: u64) -> Option<&AtomicU64> {
        let index = usize::try_from(position % OPENED_KEPT as u64).ok()?;
        self.privileged_notes.get(index)
    }

    /// Whether a note event is about a privileged note (unknown counts as privileged), decided
    /// once per event: a thousand subscribers to one note parse its payload once.
    async fn privileged(&self, event: &Event) -> Result<bool, GateError> {
        // Decided already, or not a note.
        if let Some(privileged) = self.known_privilege(event) {
            return Ok(privileged);
        }
        let privileged = self.read_privileged(event).await?;
        // Positions beyond 2^62 are not remembered (the slot could not tell them apart).
        if event.position >> 62 == 0
            && let Some(slot) = self.privilege_slot(event.position)
        {
            slot.store(
                event.position << 2 | PRIVILEGE_KNOWN | u64::from(privileged),
                Ordering::Release,
            );
        }
        Ok(privileged)
    }

    async fn read_privileged(&self, event: &Event) -> Result<bool, GateError> {
        let payload: Value = serde_json::from_str(&event.payload).unwrap_or(Value::Null);
        if let Some(flag) = payload.get("privileged").and_then(Value::as_bool) {
            return Ok(flag);
        }
        let Some(note_id) = payload.get("note_id").and_then(Value::as_str) else {
            return Ok(true);
        };
        let mut sql = Sql::new(String::new());
        let id = sql.bind(Bind::Text(note_id.to_owned()));
        sql.text = format!("SELECT privileged FROM rm_notes WHERE note_id = {id}");
        let found: Vec<(i64,)> =
            sql.fetch_all(self.projector.db().pool())
                .await
                .map_err(|error| GateError::Unavailable {
                    detail: error.to_string(),
                })?;
        Ok(found.first().is_none_or(|(flag,)| *flag != 0))
    }

    /// The matter's facts if the cache holds them current; `None` when they must be loaded.
    fn cached_facts(&self, number: &str) -> Option<Option<Arc<MatterFacts>>> {
        let changed = self
            .changes
            .lock()
            .map(|changes| changes.get(number).copied().unwrap_or(0))
            .unwrap_or(u64::MAX);
        let cache = self.facts.lock().ok()?;
        let cached = cache.get(number)?;
        (cached.through >= changed).then(|| cached.facts.clone())
    }

    /// The matter's facts, current as of at least `position` (waiting for the read models
    /// when they have not reached a change the gate has seen).
    async fn facts(
        &self,
        number: &str,
        position: u64,
    ) -> Result<Option<Arc<MatterFacts>>, GateError> {
        let changed = self
            .changes
            .lock()
            .map(|changes| changes.get(number).copied().unwrap_or(0))
            .unwrap_or(u64::MAX);
        let cached = || {
            let cache = self.facts.lock().ok()?;
            let cached = cache.get(number)?;
            (cached.through >= changed).then(|| cached.facts.clone())
        };
        if let Some(facts) = cached() {
            return Ok(facts);
        }
        let _filling = self.filling_facts.lock().await;
        if let Some(facts) = cached() {
            return Ok(facts);
        }
        // A miss waits for the event itself to be projected: its matter may be new.
        let through = changed.max(position);
        match self.projector.wait_for(through, PROJECTION_WAIT).await {
            WaitOutcome::Reached { .. } => {}
            WaitOutcome::TimedOut => return Err(GateError::Behind { position: through }),
        }
        let facts = facts::load(self.projector.db().pool(), number)
            .await
            .map_err(|error| GateError::Unavailable {
                detail: error.to_string(),
            })?
            .map(Arc::new);
        if let Ok(mut cache) = self.facts.lock() {
            let entry = cache.entry(number.to_owned()).or_insert(Cached {
                facts: None,
                through: 0,
            });
            if through >= entry.through {
                *entry = Cached {
                    facts: facts.clone(),
                    through,
                };
            }
        }
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_answer_holds_until_the_directory_moves_or_its_time_comes() {
        let access = policy::MatterAccess::None {
            reason: "not_on_team",
        };
        let at = |seconds: i64| {
            crate::log::time::format_timestamp(
                chrono::Utc::now() + chrono::Duration::seconds(seconds),
            )
        };
        let kept = |until: Option<String>| Decided {
            directory: 7,
            access,
            until,
        };
        assert!(kept(None).holds(7), "nothing in it depends on the time");
        assert!(kept(Some(at(60))).holds(7), "its expiry is still to come");
        assert!(!kept(Some(at(-1))).holds(7), "its expiry has come");
        assert!(!kept(None).holds(8), "the directory was replaced");
        assert!(!kept(Some(at(60))).holds(6));
    }
}
