//! Why a command was refused. Every variant has a stable code that clients can rely on, and a
//! message that names the rule, never the client data involved.

use thiserror::Error;

/// A refused command. Nothing is appended when a command fails.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// A field is missing, malformed or out of range.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The matter number is already in use.
    #[error("a matter with this number already exists")]
    DuplicateMatterNumber,
    #[error("no such matter")]
    MatterNotFound,
    #[error("no such contact")]
    ContactNotFound,
    #[error("no such {kind} on this matter")]
    EntityNotFound { kind: &'static str },
    /// An archived matter takes no further events.
    #[error("the matter is archived and can no longer change")]
    MatterArchived,
    #[error("this record's client data has been erased; it accepts no further change")]
    Erased,
    /// A legal hold keeps it from erasure and expiry.
    #[error("legal hold {hold_id} is in force: nothing under it can be erased")]
    UnderLegalHold { hold_id: String },
    /// An erasure needs a second authorised user to confirm it.
    #[error("an erasure must be confirmed by someone other than the user who requested it")]
    SecondPersonRequired,
    /// A frozen matter is evidence: it takes nothing but unfreezing until then.
    #[error("the matter is frozen for an incident; it can be read but not changed")]
    MatterFrozen,
    #[error("the matter is not frozen")]
    MatterNotFrozen,
    /// Closed matters only accept reopening (and reading).
    #[error("the matter is closed; reopen it first")]
    MatterClosed,
    #[error("a matter cannot go from {from} to {to}")]
    InvalidTransition {
        from: &'static str,
        to: &'static str,
    },
    #[error("the matter has {open} open task(s); complete them or force the close with a reason")]
    OpenTasks { open: usize },
    #[error("the task is already {status}")]
    TaskAlreadyInState { status: &'static str },
    #[error("the contact is already a {role} on this matter")]
    DuplicateParty { role: &'static str },
    #[error("the user is already on the matter's team")]
    AlreadyOnTeam,
    #[error("no such custom field")]
    CustomFieldNotDefined,
    #[error("a custom field with this key already exists")]
    DuplicateCustomField,
    #[error("nothing to change")]
    NothingToChange,
    /// The client's expected version is not the stream's current version.
    #[error("the record is at version {actual}; the request expected {expected}")]
    VersionConflict { expected: u64, actual: u64 },
}

impl DomainError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field,
            message: message.into(),
        }
    }

    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::Invalid { .. } => "INVALID_INPUT",
            DomainError::DuplicateMatterNumber => "DUPLICATE_MATTER_NUMBER",
            DomainError::MatterNotFound => "MATTER_NOT_FOUND",
            DomainError::ContactNotFound => "CONTACT_NOT_FOUND",
            DomainError::EntityNotFound { .. } => "NOT_FOUND",
            DomainError::MatterArchived => "MATTER_ARCHIVED",
            DomainError::MatterClosed => "MATTER_CLOSED",
            DomainError::MatterFrozen => "MATTER_FROZEN",
            DomainError::MatterNotFrozen => "MATTER_NOT_FROZEN",
            DomainError::Erased => "ERASED",
            DomainError::UnderLegalHold { .. } => "LEGAL_HOLD",
            DomainError::SecondPersonRequired => "SECOND_PERSON_REQUIRED",
            DomainError::InvalidTransition { .. } => "INVALID_STATUS_TRANSITION",
            DomainError::OpenTasks { .. } => "MATTER_HAS_OPEN_TASKS",
            DomainError::TaskAlreadyInState { .. } => "TASK_ALREADY_IN_STATE",
            DomainError::DuplicateParty { .. } => "DUPLICATE_PARTY",
            DomainError::AlreadyOnTeam => "ALREADY_ON_TEAM",
            DomainError::CustomFieldNotDefined => "CUSTOM_FIELD_NOT_DEFINED",
            DomainError::DuplicateCustomField => "DUPLICATE_CUSTOM_FIELD",
            DomainError::NothingToChange => "NOTHING_TO_CHANGE",
            DomainError::VersionConflict { .. } => "VERSION_CONFLICT",
        }
    }

    /// The input field the error is about, for forms; `None` when it concerns the whole record.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            DomainError::Invalid { field, .. } => Some(field),
            DomainError::DuplicateMatterNumber => Some("matterNumber"),
            DomainError::ContactNotFound | DomainError::DuplicateParty { .. } => Some("contactId"),
            DomainError::AlreadyOnTeam => Some("userId"),
            DomainError::CustomFieldNotDefined => Some("key"),
            DomainError::OpenTasks { .. } => Some("force"),
            DomainError::VersionConflict { .. } => Some("expectedVersion"),
            _ => None,
        }
    }
}
