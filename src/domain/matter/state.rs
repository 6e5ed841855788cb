//! A matter as its events describe it, at the latest position or any earlier one.
//!
//! The state serializes (snake_case members, as the Rust fields) so that a replay can show it
//! and compare it before and after each event.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::domain::events::{
    CalendarKind, ConflictHit, ConflictOutcome, DocumentContent, DomainEvent, MatterStatus,
    PartyRole, RecordedEvent, TaskStatus, TeamCapacity,
};
use crate::domain::ids::EntityIds;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Party {
    pub party_id: String,
    pub contact_id: String,
    pub role: PartyRole,
    pub added_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConflictCheck {
    pub check_id: String,
    pub outcome: ConflictOutcome,
    pub reviewer: String,
    pub hits: Vec<ConflictHit>,
    pub query: String,
    pub notes: Option<String>,
    pub recorded_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocumentVersion {
    pub content: DocumentContent,
    pub filename: Option<String>,
    pub added_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    pub document_id: String,
    pub document_type: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub versions: Vec<DocumentVersion>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    pub note_id: String,
    pub privileged: bool,
    pub subject: Option<String>,
    pub body: String,
    pub author: String,
    pub created_at: String,
    pub edited_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub task_id: String,
    pub title: String,
    pub assignee: Option<String>,
    pub due_on: Option<String>,
    pub status: TaskStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalendarEntry {
    pub entry_id: String,
    pub kind: CalendarKind,
    pub title: String,
    pub starts_at: String,
    pub ends_at: Option<String>,
    pub all_day: bool,
    pub rule: Option<String>,
    pub location: Option<String>,
    pub cancelled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeEntry {
    pub time_entry_id: String,
    pub user_id: String,
    pub worked_on: String,
    pub minutes: u32,
    pub billable: bool,
    pub description: String,
}

/// A matter folded from its stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matter {
    pub number: String,
    /// The stream version of the last event folded in.
    pub version: u64,
    /// The log position of the last event folded in.
    pub position: u64,
    pub title: String,
    pub description: Option<String>,
    pub practice_area: String,
    pub status: MatterStatus,
    pub responsible_attorney: String,
    pub originating_attorney: Option<String>,
    pub opened_on: String,
    pub closed_on: Option<String>,
    pub statute_of_limitations_on: Option<String>,
    pub custom_fields: BTreeMap<String, Value>,
    pub team: BTreeMap<String, TeamCapacity>,
    /// Visible to every fee earner of the firm, not only the team (walls still apply).
    pub firm_visible: bool,
    pub parties: BTreeMap<String, Party>,
    pub conflict_checks: Vec<ConflictCheck>,
    pub documents: BTreeMap<String, Document>,
    pub notes: BTreeMap<String, Note>,
    /// The notes of a state folded for decisions ([`Matter::apply_for_decisions`]), by id only;
    /// empty in a full fold, whose notes are in `notes`.
    #[serde(skip)]
    pub note_ids: EntityIds,
    pub tasks: BTreeMap<String, Task>,
    pub calendar: BTreeMap<String, CalendarEntry>,
    pub time_entries: BTreeMap<String, TimeEntry>,
    pub created_at: String,
    pub updated_at: String,
    /// Its client data was erased (its data key destroyed): it accepts no further change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub erased: bool,
    /// Frozen for an incident: read-only evidence until unfrozen.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub frozen: bool,
}

impl Matter {
    /// Folds a matter's events in stream order. Events that do not concern a matter are skipped.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a RecordedEvent>) -> Option<Matter> {
        let mut matter = None;
        for event in events {
            Matter::apply(&mut matter, event);
        }
        matter
    }

    /// [`Matter::apply`] for the state commands are decided on, which the service keeps in
    /// memory for the matters it writes to: the same fold, except that a note is kept as its
    /// id alone (in `note_ids`, 16 bytes), since the only thing a command asks of a note is
    /// whether it exists. Neither its text nor its author is decided on (the read models and a
    /// replay hold them), and without them a matter's cached state grows by little more than
    /// its id per note, however much its notes say.
    pub fn apply_for_decisions(matter: &mut Option<Matter>, recorded: &RecordedEvent) {
        Matter::apply(matter, recorded);
        if let DomainEvent::NoteAdded(added) = &recorded.event
            && let Some(state) = matter.as_mut()
            && state.notes.remove(&added.note_id).is_some()
        {
            state.note_ids.insert(&added.note_id);
        }
    }

    /// Whether the matter has the note, in a full fold or one for decisions.
    pub fn has_note(&self, note_id: &str) -> bool {
        self.notes.contains_key(note_id) || self.note_ids.contains(note_id)
    }

    /// Applies one event. Only `matter.opened` creates the matter; anything before it, and any
    /// event that is not a matter's, is ignored.
    pub fn apply(matter: &mut Option<Matter>, recorded: &RecordedEvent) {
        if let DomainEvent::MatterOpened(opened) = &recorded.event {
            *matter = Some(Matter {
                number: opened.matter_number.clone(),
                version: recorded.stream_version,
                position: recorded.position,
                title: opened.title.clone(),
                description: opened.private.description.clone(),
                practice_area: opened.practice_area.clone(),
                status: opened.status,
                responsible_attorney: opened.responsible_attorney.clone(),
                originating_attorney: opened.originating_attorney.clone(),
                opened_on: opened.opened_on.clone(),
                closed_on: None,
                statute_of_limitations_on: opened.statute_of_limitations_on.clone(),
                custom_fields: BTreeMap::new(),
                team: BTreeMap::new(),
                firm_visible: false,
                parties: BTreeMap::new(),
                conflict_checks: Vec::new(),
                documents: BTreeMap::new(),
                notes: BTreeMap::new(),
                note_ids: EntityIds::default(),
                tasks: BTreeMap::new(),
                calendar: BTreeMap::new(),
                time_entries: BTreeMap::new(),
                created_at: recorded.recorded_at.clone(),
                updated_at: recorded.recorded_at.clone(),
                erased: false,
                frozen: false,
            });
            return;
        }
        let Some(matter) = matter.as_mut() else {
            return;
        };
        if let DomainEvent::SubjectErased(_) = &recorded.event {
            matter.version = recorded.stream_version;
            matter.position = recorded.position;
            matter.erased = true;
            return;
        }
        if !recorded.event.event_type().starts_with("matter.") {
            return;
        }
        matter.version = recorded.stream_version;
        matter.position = recorded.position;
        matter.updated_at = recorded.recorded_at.clone();
        matter.apply_change(recorded);
    }

    fn apply_change(&mut self, recorded: &RecordedEvent) {
        let at = &recorded.recorded_at;
        match &recorded.event {
            DomainEvent::MatterDetailsChanged(change) => {
                replace(&mut self.title, &change.title);
                replace(&mut self.practice_area, &change.practice_area);
                replace(&mut self.responsible_attorney, &change.responsible_attorney);
                if change.originating_attorney.is_some() {
                    self.originating_attorney = change.originating_attorney.clone();
                }
                if change.statute_of_limitations_on.is_some() {
                    self.statute_of_limitations_on = change.statute_of_limitations_on.clone();
                }
                if let Some(private) = &change.private
                    && private.description.is_some()
                {
                    self.description = private.description.clone();
                }
            }
            DomainEvent::MatterStatusChanged(change) => {
                self.status = change.to;
                match change.to {
                    MatterStatus::Closed => self.closed_on = Some(change.effective_on.clone()),
                    MatterStatus::Archived => {}
                    _ => self.closed_on = None,
                }
            }
            DomainEvent::MatterCustomFieldSet(set) => {
                let value = set
                    .value
                    .clone()
                    .or_else(|| set.private.as_ref().map(|p| p.value.clone()));
                match value {
                    Some(Value::Null) | None => {
                        self.custom_fields.remove(&set.key);
                    }
                    Some(value) => {
                        self.custom_fields.insert(set.key.clone(), value);
                    }
                }
            }
            DomainEvent::TeamMemberAdded(added) => {
                self.team.insert(added.user_id.clone(), added.capacity);
            }
            DomainEvent::TeamMemberRemoved(removed) => {
                self.team.remove(&removed.user_id);
            }
            DomainEvent::PartyAdded(added) => {
                let party = Party {
                    party_id: added.party_id.clone(),
                    contact_id: added.contact_id.clone(),
                    role: added.role,
                    added_at: at.clone(),
                };
                self.parties.insert(added.party_id.clone(), party);
            }
            DomainEvent::PartyRemoved(removed) => {
                self.parties.remove(&removed.party_id);
            }
            DomainEvent::ConflictCheckRecorded(check) => {
                self.conflict_checks.push(ConflictCheck {
                    check_id: check.check_id.clone(),
                    outcome: check.outcome,
                    reviewer: check.reviewer.clone(),
                    hits: check.hits.clone(),
                    query: check.private.query.clone(),
                    notes: check.private.notes.clone(),
                    recorded_at: at.clone(),
                });
            }
            DomainEvent::DocumentAdded(added) => {
                let document = Document {
                    document_id: added.document_id.clone(),
                    document_type: added.document_type.clone(),
                    title: added.private.title.clone(),
                    description: added.private.description.clone(),
                    versions: vec![DocumentVersion {
                        content: added.content.clone(),
                        filename: added.private.filename.clone(),
                        added_at: at.clone(),
                    }],
                };
                self.documents.insert(added.document_id.clone(), document);
            }
            DomainEvent::DocumentVersionAdded(added) => {
                if let Some(document) = self.documents.get_mut(&added.document_id) {
                    document.versions.push(DocumentVersion {
                        content: added.content.clone(),
                        filename: added.private.filename.clone(),
                        added_at: at.clone(),
                    });
                }
            }
            DomainEvent::NoteAdded(added) => {
                let note = Note {
                    note_id: added.note_id.clone(),
                    privileged: added.privileged,
                    subject: added.private.subject.clone(),
                    body: added.private.body.clone(),
                    author: recorded.actor.clone(),
                    created_at: at.clone(),
                    edited_at: None,
                };
                self.notes.insert(added.note_id.clone(), note);
            }
            DomainEvent::NoteEdited(edited) => {
                if let Some(note) = self.notes.get_mut(&edited.note_id) {
                    note.subject = edited.private.subject.clone();
                    note.body = edited.private.body.clone();
                    note.edited_at = Some(at.clone());
                }
            }
            DomainEvent::TaskCreated(created) => {
                let task = Task {
                    task_id: created.task_id.clone(),
                    title: created.title.clone(),
                    assignee: created.assignee.clone(),
                    due_on: created.due_on.clone(),
                    status: TaskStatus::Open,
                };
                self.tasks.insert(created.task_id.clone(), task);
            }
            DomainEvent::TaskCompleted(task) => self.set_task(&task.task_id, TaskStatus::Completed),
            DomainEvent::TaskReopened(task) => self.set_task(&task.task_id, TaskStatus::Open),
            DomainEvent::TaskCancelled(task) => self.set_task(&task.task_id, TaskStatus::Cancelled),
            DomainEvent::CalendarEntryScheduled(entry) => {
                let scheduled = CalendarEntry {
                    entry_id: entry.entry_id.clone(),
                    kind: entry.kind,
                    title: entry.title.clone(),
                    starts_at: entry.starts_at.clone(),
                    ends_at: entry.ends_at.clone(),
                    all_day: entry.all_day,
                    rule: entry.rule.clone(),
                    location: entry.location.clone(),
                    cancelled: false,
                };
                self.calendar.insert(entry.entry_id.clone(), scheduled);
            }
            DomainEvent::CalendarEntryCancelled(cancelled) => {
                if let Some(entry) = self.calendar.get_mut(&cancelled.entry_id) {
                    entry.cancelled = true;
                }
            }
            DomainEvent::TimeRecorded(time) => {
                let entry = TimeEntry {
                    time_entry_id: time.time_entry_id.clone(),
                    user_id: time.user_id.clone(),
                    worked_on: time.worked_on.clone(),
                    minutes: time.minutes,
                    billable: time.billable,
                    description: time.private.description.clone(),
                };
                self.time_entries.insert(time.time_entry_id.clone(), entry);
            }
            DomainEvent::MatterVisibilityChanged(change) => {
                self.firm_visible = change.firm_visible;
            }
            DomainEvent::MatterFrozen(_) => self.frozen = true,
            DomainEvent::MatterUnfrozen(_) => self.frozen = false,
            // Not a matter's events (identity events live on the directory stream).
            _ => {}
        }
    }

    fn set_task(&mut self, task_id: &str, status: TaskStatus) {
        if let Some(task) = self.tasks.get_mut(task_id) {
            task.status = status;
        }
    }

    /// Tasks still open: a matter with any cannot be closed unless the close is forced.
    pub fn open_tasks(&self) -> usize {
        self.tasks
            .values()
            .filter(|task| task.status == TaskStatus::Open)
            .count()
    }
}

fn replace(target: &mut String, value: &Option<String>) {
    if let Some(value) = value {
        target.clone_from(value);
    }
}
