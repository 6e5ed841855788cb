//! Rows of the read models as the API reads them.

use sqlx::FromRow;

#[derive(Debug, Clone, FromRow)]
pub struct MatterRow {
    pub number: String,
    pub title: String,
    pub description: Option<String>,
    pub practice_area: String,
    pub status: String,
    pub responsible_attorney: String,
    pub originating_attorney: Option<String>,
    pub opened_on: String,
    pub closed_on: Option<String>,
    pub statute_of_limitations_on: Option<String>,
    pub custom_fields: String,
    pub firm_visible: i64,
    pub version: i64,
    pub position: i64,
    pub created_at: String,
    pub updated_at: String,
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
    pub query: String,
    pub notes: Option<String>,
    pub hits: String,
    pub position: i64,
    pub recorded_at: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct ContactRow {
    pub contact_id: String,
    pub kind: String,
    pub display_name: String,
    pub details: String,
    pub version: i64,
    pub position: i64,
    pub created_at: String,
    pub updated_at: String,
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
    pub title: Option<String>,
    pub description: Option<String>,
    pub latest_version: i64,
    pub position: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct DocumentVersionRow {
    pub document_id: String,
    pub version: i64,
    pub content_hash: String,
    pub size: i64,
    pub media_type: String,
    pub filename: Option<String>,
    pub uploaded_by: String,
    pub added_at: String,
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
    pub subject: Option<String>,
    pub body: String,
    pub author: String,
    pub position: i64,
    pub created_at: String,
    pub edited_at: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct TimeEntryRow {
    pub time_entry_id: String,
    pub matter_number: String,
    pub user_id: String,
    pub worked_on: String,
    pub minutes: i64,
    pub billable: i64,
    pub description: String,
    pub position: i64,
    pub recorded_at: String,
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
