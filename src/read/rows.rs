//! Rows of the read models as the API reads them. Each row type names the columns it is read
//! with ([`Columns`]), so that every reader selects what the read model has. Client data is in
//! `private` only, sealed; [`Opening`] opens it once per row.

use sqlx::FromRow;

use super::private::Opening;

/// The columns a row type is read with, for `SELECT {COLUMNS} FROM <view>`.
pub trait Columns {
    const COLUMNS: &'static str;
}

macro_rules! columns {
    ($($row:ty => $columns:literal;)+) => {$(
        impl Columns for $row {
            const COLUMNS: &'static str = $columns;
        }
    )+};
}

columns! {
    MatterRow => "number, title, private, practice_area, status, responsible_attorney, \
        originating_attorney, opened_on, closed_on, statute_of_limitations_on, custom_fields, \
        firm_visible, erased, frozen, version, position, created_at, updated_at";
    TeamRow => "matter_number, user_id, capacity";
    ConflictCheckRow => "check_id, matter_number, outcome, reviewer, private, hits, position, \
        recorded_at";
    ContactRow => "contact_id, kind, private, erased, version, position, created_at, updated_at";
    PartyRow => "party_id, matter_number, contact_id, role, position, added_at";
    DocumentRow => "document_id, matter_number, document_type, private, latest_version, \
        position, created_at, updated_at";
    DocumentVersionRow => "document_id, version, content_hash, size, media_type, private, \
        uploaded_by, added_at";
    TaskRow => "task_id, matter_number, title, assignee, due_on, status, position, created_at, \
        updated_at";
    CalendarRow => "entry_id, matter_number, kind, title, starts_at, ends_at, all_day, rule, \
        location, cancelled, position";
    NoteRow => "note_id, matter_number, privileged, private, author, position, created_at, \
        edited_at";
    TimeEntryRow => "time_entry_id, matter_number, user_id, worked_on, minutes, billable, \
        private, position, recorded_at";
    TimelineRow => "position, matter_number, stream_version, event_type, actor, occurred_at, \
        recorded_at, changed_fields";
}

#[derive(Debug, Clone, FromRow)]
pub struct MatterRow {
    pub number: String,
    pub title: String,
    /// The sealed description (NULL when the matter never had one).
    pub private: Option<String>,
    pub practice_area: String,
    pub status: String,
    pub responsible_attorney: String,
    pub originating_attorney: Option<String>,
    pub opened_on: String,
    pub closed_on: Option<String>,
    pub statute_of_limitations_on: Option<String>,
    /// Values by key; a sensitive field's value is `{"sealed_ref": <sealed column>}`.
    pub custom_fields: String,
    pub firm_visible: i64,
    /// 1 once the matter's key was destroyed.
    pub erased: i64,
    /// 1 while the matter is frozen for an incident.
    pub frozen: i64,
    pub version: i64,
    pub position: i64,
    pub created_at: String,
    pub updated_at: String,
    #[sqlx(skip)]
    pub opened: Opening,
}

#[derive(Debug, Clone, FromRow)]
pub struct TeamRow {
    pub matter_number: String,
    pub user_id: String,
    pub capacity: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct ConflictCheckRow {
    pub check_id: String,
    pub matter_number: String,
    pub outcome: String,
    pub reviewer: String,
    /// The sealed query and notes.
    pub private: String,
    pub hits: String,
    pub position: i64,
    pub recorded_at: String,
    #[sqlx(skip)]
    pub opened: Opening,
}

#[derive(Debug, Clone, FromRow)]
pub struct ContactRow {
    pub contact_id: String,
    pub kind: String,
    /// The sealed details.
    pub private: String,
    /// 1 once the contact's key was destroyed.
    pub erased: i64,
    pub version: i64,
    pub position: i64,
    pub created_at: String,
    pub updated_at: String,
    #[sqlx(skip)]
    pub opened: Opening,
}

#[derive(Debug, Clone, FromRow)]
pub struct PartyRow {
    pub party_id: String,
    pub matter_number: String,
    pub contact_id: String,
    pub role: String,
    pub position: i64,
    pub added_at: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct DocumentRow {
    pub document_id: String,
    pub matter_number: String,
    pub document_type: String,
    /// The sealed title, description and first filename.
    pub private: String,
    pub latest_version: i64,
    pub position: i64,
    pub created_at: String,
    pub updated_at: String,
    #[sqlx(skip)]
    pub opened: Opening,
}

#[derive(Debug, Clone, FromRow)]
pub struct DocumentVersionRow {
    pub document_id: String,
    pub version: i64,
    pub content_hash: String,
    pub size: i64,
    pub media_type: String,
    /// The sealed filename (the version event's `private` member).
    pub private: String,
    pub uploaded_by: String,
    pub added_at: String,
    #[sqlx(skip)]
    pub opened: Opening,
}

#[derive(Debug, Clone, FromRow)]
pub struct TaskRow {
    pub task_id: String,
    pub matter_number: String,
    pub title: String,
    pub assignee: Option<String>,
    pub due_on: Option<String>,
    pub status: String,
    pub position: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct CalendarRow {
    pub entry_id: String,
    pub matter_number: String,
    pub kind: String,
    pub title: String,
    pub starts_at: String,
    pub ends_at: Option<String>,
    pub all_day: i64,
    pub rule: Option<String>,
    pub location: Option<String>,
    pub cancelled: i64,
    pub position: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct NoteRow {
    pub note_id: String,
    pub matter_number: String,
    pub privileged: i64,
    /// The sealed subject and body.
    pub private: String,
    pub author: String,
    pub position: i64,
    pub created_at: String,
    pub edited_at: Option<String>,
    #[sqlx(skip)]
    pub opened: Opening,
}

#[derive(Debug, Clone, FromRow)]
pub struct TimeEntryRow {
    pub time_entry_id: String,
    pub matter_number: String,
    pub user_id: String,
    pub worked_on: String,
    pub minutes: i64,
    pub billable: i64,
    /// The sealed description.
    pub private: String,
    pub position: i64,
    pub recorded_at: String,
    #[sqlx(skip)]
    pub opened: Opening,
}

#[derive(Debug, Clone, FromRow)]
pub struct TimelineRow {
    pub position: i64,
    pub matter_number: String,
    pub stream_version: i64,
    pub event_type: String,
    pub actor: String,
    pub occurred_at: String,
    pub recorded_at: String,
    pub changed_fields: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct ConflictMatchRow {
    pub matter_number: String,
    pub party_id: String,
    pub role: String,
    pub contact_id: String,
    pub responsible_attorney: String,
    pub matched: i64,
}
