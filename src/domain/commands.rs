//! What a user can ask of a matter or a contact. Inputs are untrusted: the deciding functions in
//! [`super::matter::decide`], [`super::contact`] and [`super::custom_fields`] check them all.

use serde_json::Value;

use super::events::{
    CalendarKind, ConflictHit, ConflictOutcome, ContactDetails, ContactKind, FieldKind,
    MatterStatus, PartyRole, TaskStatus, TeamCapacity,
};

#[derive(Debug, Clone, Default)]
pub struct OpenMatter {
    pub matter_number: String,
    pub title: String,
    pub description: Option<String>,
    pub practice_area: String,
    pub responsible_attorney: String,
    pub originating_attorney: Option<String>,
    pub opened_on: Option<String>,
    pub statute_of_limitations_on: Option<String>,
    /// Start in `intake` (awaiting the conflict check) rather than `open`.
    pub intake: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ChangeMatterDetails {
    pub title: Option<String>,
    pub description: Option<String>,
    pub practice_area: Option<String>,
    pub responsible_attorney: Option<String>,
    pub originating_attorney: Option<String>,
    pub statute_of_limitations_on: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ChangeMatterStatus {
    pub to: MatterStatus,
    pub effective_on: Option<String>,
    pub reason: Option<String>,
    /// Close although tasks are open; needs a reason.
    pub force: bool,
}

#[derive(Debug, Clone)]
pub struct SetCustomField {
    pub key: String,
    /// `None` clears the field.
    pub value: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct DefineCustomField {
    pub key: String,
    pub label: String,
    pub kind: FieldKind,
    pub choices: Vec<String>,
    pub sensitive: bool,
}

#[derive(Debug, Clone)]
pub struct AddTeamMember {
    pub user_id: String,
    pub capacity: TeamCapacity,
}

#[derive(Debug, Clone)]
pub struct AddParty {
    pub contact_id: String,
    pub role: PartyRole,
}

#[derive(Debug, Clone)]
pub struct RecordConflictCheck {
    pub query: String,
    pub outcome: ConflictOutcome,
    pub reviewer: String,
    /// What the search found, as the service ran it.
    pub hits: Vec<ConflictHit>,
    pub notes: Option<String>,
}

/// Metadata of a stored blob that becomes a document version.
#[derive(Debug, Clone)]
pub struct UploadedContent {
    pub content_hash: String,
    pub size: u64,
    pub media_type: String,
    pub filename: Option<String>,
    pub uploaded_by: String,
}

#[derive(Debug, Clone)]
pub struct AddDocument {
    pub document_type: String,
    pub title: String,
    pub description: Option<String>,
    pub content: UploadedContent,
}

#[derive(Debug, Clone)]
pub struct AddNote {
    pub privileged: bool,
    pub subject: Option<String>,
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct CreateTask {
    pub title: String,
    pub assignee: Option<String>,
    pub due_on: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ScheduleCalendarEntry {
    pub kind: CalendarKind,
    pub title: String,
    pub starts_at: String,
    pub ends_at: Option<String>,
    pub all_day: bool,
    pub rule: Option<String>,
    pub location: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RecordTime {
    pub user_id: String,
    pub worked_on: String,
    pub minutes: u32,
    pub billable: bool,
    pub description: String,
}

/// A command on an existing matter.
#[derive(Debug, Clone)]
pub enum MatterCommand {
    ChangeDetails(ChangeMatterDetails),
    ChangeStatus(ChangeMatterStatus),
    SetCustomField(SetCustomField),
    AddTeamMember(AddTeamMember),
    RemoveTeamMember {
        user_id: String,
    },
    AddParty(AddParty),
    RemoveParty {
        party_id: String,
    },
    RecordConflictCheck(RecordConflictCheck),
    AddDocument(AddDocument),
    AddDocumentVersion {
        document_id: String,
        content: UploadedContent,
    },
    AddNote(AddNote),
    EditNote {
        note_id: String,
        subject: Option<String>,
        body: String,
    },
    CreateTask(CreateTask),
    SetTaskStatus {
        task_id: String,
        to: TaskStatus,
    },
    ScheduleCalendarEntry(ScheduleCalendarEntry),
    CancelCalendarEntry {
        entry_id: String,
        reason: Option<String>,
    },
    RecordTime(RecordTime),
    /// Makes the matter visible to every fee earner (walls still apply), or its team only.
    SetVisibility {
        firm_visible: bool,
    },
}

#[derive(Debug, Clone)]
pub struct CreateContact {
    pub kind: ContactKind,
    pub details: ContactDetails,
}
