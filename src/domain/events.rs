//! Every event the domain writes, with its payload shape. The JSON Schema of each lives in
//! schema/events/<type>.v<version>.json and a test checks that what is written matches it.
//!
//! Payload members are snake_case. Client data sits under `private` only.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::DomainError;
use super::identity::*;
use super::privacy::{NoKeys, OpenPrivate, Privacy, PrivatePart, has_sealed_part};
use super::records::{
    ErasureRequested, HoldPlaced, HoldReleased, RetentionPolicySet, SubjectErased,
};
use super::upcast;
use crate::log::{Event, EventDraft};

/// A matter's lifecycle: intake -> open <-> pending -> closed -> archived, and closed -> open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatterStatus {
    Intake,
    Open,
    Pending,
    Closed,
    Archived,
}

impl MatterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MatterStatus::Intake => "intake",
            MatterStatus::Open => "open",
            MatterStatus::Pending => "pending",
            MatterStatus::Closed => "closed",
            MatterStatus::Archived => "archived",
        }
    }
}

/// What a contact is to a matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyRole {
    Client,
    OpposingParty,
    OpposingCounsel,
    CoCounsel,
    Witness,
    Expert,
    Court,
}

impl PartyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            PartyRole::Client => "client",
            PartyRole::OpposingParty => "opposing_party",
            PartyRole::OpposingCounsel => "opposing_counsel",
            PartyRole::CoCounsel => "co_counsel",
            PartyRole::Witness => "witness",
            PartyRole::Expert => "expert",
            PartyRole::Court => "court",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(Value::String(text.to_owned())).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    Person,
    Organisation,
}

/// The capacity in which a user works on a matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamCapacity {
    ResponsibleAttorney,
    OriginatingAttorney,
    Attorney,
    Paralegal,
    Staff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Completed,
    Cancelled,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Completed => "completed",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarKind {
    Hearing,
    FilingDeadline,
    Meeting,
    Deadline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    Number,
    Date,
    Choice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictOutcome {
    Cleared,
    PotentialConflict,
}

// ---- matter stream -------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MatterPrivate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatterOpened {
    pub matter_number: String,
    pub title: String,
    pub practice_area: String,
    pub status: MatterStatus,
    pub responsible_attorney: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub originating_attorney: Option<String>,
    pub opened_on: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statute_of_limitations_on: Option<String>,
    pub private: MatterPrivate,
}

/// Only the members present changed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MatterDetailsChanged {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practice_area: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsible_attorney: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub originating_attorney: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statute_of_limitations_on: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<MatterPrivate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatterStatusChanged {
    pub from: MatterStatus,
    pub to: MatterStatus,
    /// The day the change takes effect (the close date when closing).
    pub effective_on: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Closed although tasks were open; `reason` says why.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivateValue {
    #[serde(default)]
    pub value: Value,
}

/// A custom field's new value (`null` clears it). Sensitive fields carry it under `private`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatterCustomFieldSet {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<PrivateValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamMemberAdded {
    pub user_id: String,
    pub capacity: TeamCapacity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamMemberRemoved {
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartyAdded {
    pub party_id: String,
    pub contact_id: String,
    pub role: PartyRole,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartyRemoved {
    pub party_id: String,
}

/// One party elsewhere in the firm whose name matched a conflict search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictHit {
    pub matter_number: String,
    pub party_id: String,
    pub role: PartyRole,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictCheckPrivate {
    /// The names searched for.
    #[serde(default)]
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictCheckRecorded {
    pub check_id: String,
    pub outcome: ConflictOutcome,
    pub reviewer: String,
    pub hits: Vec<ConflictHit>,
    pub private: ConflictCheckPrivate,
}

/// The stored bytes of one version of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentContent {
    pub version: u32,
    /// blake3 of the bytes, lowercase hex: the content address.
    pub content_hash: String,
    pub size: u64,
    pub media_type: String,
    pub uploaded_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentPrivate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentAdded {
    pub document_id: String,
    pub document_type: String,
    pub content: DocumentContent,
    pub private: DocumentPrivate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentVersionAdded {
    pub document_id: String,
    pub content: DocumentContent,
    pub private: DocumentPrivate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotePrivate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default)]
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteAdded {
    pub note_id: String,
    pub privileged: bool,
    pub private: NotePrivate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteEdited {
    pub note_id: String,
    pub private: NotePrivate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskCreated {
    pub task_id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_on: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRef {
    pub task_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalendarEntryScheduled {
    pub entry_id: String,
    pub kind: CalendarKind,
    pub title: String,
    /// RFC 3339 instant, or a date (`YYYY-MM-DD`) when `all_day`.
    pub starts_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    pub all_day: bool,
    /// The court rule or reason that sets a deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalendarEntryCancelled {
    pub entry_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimePrivate {
    #[serde(default)]
    pub description: String,
}

/// `matter.time_recorded` v2. Version 1 carried `hours` as a decimal string; see [`upcast`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeRecorded {
    pub time_entry_id: String,
    pub user_id: String,
    pub worked_on: String,
    pub minutes: u32,
    pub billable: bool,
    pub private: TimePrivate,
}

/// `matter.frozen`: the matter is read-only evidence until unfrozen (incident response).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatterFrozen {
    /// Why, e.g. the incident reference. Not client data: the admin's statement.
    pub reason: String,
}

/// `matter.unfrozen`: the matter takes changes again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatterUnfrozen {
    pub reason: String,
}

// ---- contact and custom-field streams ------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelledValue {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    pub lines: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifier {
    /// e.g. `company_number`, `passport`, `bar_number`.
    pub scheme: String,
    pub value: String,
}

/// Everything Docket holds about a person or organisation: all of it client data.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContactDetails {
    #[serde(default)]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<LabelledValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<LabelledValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<PostalAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<Identifier>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactCreated {
    pub contact_id: String,
    pub kind: ContactKind,
    pub private: ContactDetails,
}

/// Replaces the contact's details as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactUpdated {
    pub private: ContactDetails,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomFieldDefined {
    pub key: String,
    pub label: String,
    pub kind: FieldKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// Values of a sensitive field are client data and travel under `private`.
    pub sensitive: bool,
}

macro_rules! domain_events {
    ($($variant:ident($payload:ty) = $name:literal v $version:literal),+ $(,)?) => {
        /// An event of the domain, decoded (and upcast) from its payload.
        #[derive(Debug, Clone, PartialEq)]
        pub enum DomainEvent {
            $($variant($payload)),+
        }

        impl DomainEvent {
            /// The event type as stored in the envelope.
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(DomainEvent::$variant(_) => $name),+
                }
            }

            /// The payload schema version this code writes.
            pub fn schema_version(&self) -> u32 {
                match self {
                    $(DomainEvent::$variant(_) => $version),+
                }
            }

            fn payload(&self) -> Result<Value, serde_json::Error> {
                match self {
                    $(DomainEvent::$variant(payload) => serde_json::to_value(payload)),+
                }
            }

            /// Decodes a payload already brought to the current schema version.
            fn from_current(event_type: &str, payload: Value) -> Result<Option<Self>, serde_json::Error> {
                Ok(Some(match event_type {
                    $($name => DomainEvent::$variant(serde_json::from_value(payload)?),)+
                    _ => return Ok(None),
                }))
            }

            /// Decodes a payload text already at the current schema version, without an
            /// intermediate JSON value.
            fn from_current_text(event_type: &str, text: &str) -> Result<Option<Self>, serde_json::Error> {
                Ok(Some(match event_type {
                    $($name => DomainEvent::$variant(serde_json::from_str(text)?),)+
                    _ => return Ok(None),
                }))
            }

            /// The schema version this code writes for `event_type`, if it is a domain event.
            pub fn current_version(event_type: &str) -> Option<u32> {
                match event_type {
                    $($name => Some($version),)+
                    _ => None,
                }
            }

            /// Every domain event type with its current schema version.
            pub const TYPES: &'static [(&'static str, u32)] = &[$(($name, $version)),+];
        }
    };
}

domain_events! {
    MatterOpened(MatterOpened) = "matter.opened" v 1,
    MatterDetailsChanged(MatterDetailsChanged) = "matter.details_changed" v 1,
    MatterStatusChanged(MatterStatusChanged) = "matter.status_changed" v 1,
    MatterCustomFieldSet(MatterCustomFieldSet) = "matter.custom_field_set" v 1,
    TeamMemberAdded(TeamMemberAdded) = "matter.team_member_added" v 1,
    TeamMemberRemoved(TeamMemberRemoved) = "matter.team_member_removed" v 1,
    PartyAdded(PartyAdded) = "matter.party_added" v 1,
    PartyRemoved(PartyRemoved) = "matter.party_removed" v 1,
    ConflictCheckRecorded(ConflictCheckRecorded) = "matter.conflict_check_recorded" v 1,
    DocumentAdded(DocumentAdded) = "matter.document_added" v 1,
    DocumentVersionAdded(DocumentVersionAdded) = "matter.document_version_added" v 1,
    NoteAdded(NoteAdded) = "matter.note_added" v 1,
    NoteEdited(NoteEdited) = "matter.note_edited" v 1,
    TaskCreated(TaskCreated) = "matter.task_created" v 1,
    TaskCompleted(TaskRef) = "matter.task_completed" v 1,
    TaskReopened(TaskRef) = "matter.task_reopened" v 1,
    TaskCancelled(TaskRef) = "matter.task_cancelled" v 1,
    CalendarEntryScheduled(CalendarEntryScheduled) = "matter.calendar_entry_scheduled" v 1,
    CalendarEntryCancelled(CalendarEntryCancelled) = "matter.calendar_entry_cancelled" v 1,
    TimeRecorded(TimeRecorded) = "matter.time_recorded" v 2,
    ContactCreated(ContactCreated) = "contact.created" v 1,
    ContactUpdated(ContactUpdated) = "contact.updated" v 1,
    CustomFieldDefined(CustomFieldDefined) = "custom_field.defined" v 1,
    MatterVisibilityChanged(MatterVisibilityChanged) = "matter.visibility_changed" v 1,
    MatterFrozen(MatterFrozen) = "matter.frozen" v 1,
    MatterUnfrozen(MatterUnfrozen) = "matter.unfrozen" v 1,
    UserAdded(UserAdded) = "user.added" v 1,
    EnrolmentIssued(EnrolmentIssued) = "user.enrolment_issued" v 1,
    UserEnrolled(UserRef) = "user.enrolled" v 1,
    RoleChanged(RoleChanged) = "user.role_changed" v 1,
    UserLocked(UserLocked) = "user.locked" v 1,
    UserUnlocked(UserRef) = "user.unlocked" v 1,
    UserDisabled(UserDisabled) = "user.disabled" v 1,
    UserEnabled(UserRef) = "user.enabled" v 1,
    PasswordChanged(UserRef) = "user.password_changed" v 1,
    LoginSucceeded(LoginSucceeded) = "auth.login_succeeded" v 1,
    LoginFailed(LoginFailed) = "auth.login_failed" v 1,
    SessionsRevoked(SessionsRevoked) = "auth.sessions_revoked" v 1,
    CredentialsRevoked(CredentialsRevoked) = "auth.credentials_revoked" v 1,
    GroupMembersSet(GroupMembersSet) = "group.members_set" v 1,
    WallErected(WallErected) = "wall.erected" v 1,
    WallLifted(WallLifted) = "wall.lifted" v 1,
    BreakGlassOpened(BreakGlassOpened) = "access.break_glass_opened" v 1,
    ApiClientRegistered(ApiClientRegistered) = "api_client.registered" v 1,
    ApiKeyIssued(ApiKeyIssued) = "api_client.key_issued" v 1,
    ApiKeyRevoked(ApiKeyRevoked) = "api_client.key_revoked" v 1,
    ApiClientScopesSet(ApiClientScopesSet) = "api_client.scopes_set" v 1,
    ApiKeyRotated(ApiKeyRotated) = "api_client.key_rotated" v 1,
    FirmPolicySet(FirmPolicySet) = "firm.policy_set" v 1,
    ErasureRequested(ErasureRequested) = "subject.erasure_requested" v 1,
    SubjectErased(SubjectErased) = "subject.erased" v 1,
    HoldPlaced(HoldPlaced) = "hold.placed" v 1,
    HoldReleased(HoldReleased) = "hold.released" v 1,
    RetentionPolicySet(RetentionPolicySet) = "retention.policy_set" v 1,
}

impl DomainEvent {
    /// The draft to append.
    pub fn to_draft(&self) -> Result<EventDraft, DomainError> {
        let payload = self
            .payload()
            .map_err(|_| DomainError::invalid("payload", "the event could not be encoded"))?;
        let mut draft = EventDraft::new(self.event_type(), payload);
        draft.schema_version = self.schema_version();
        Ok(draft)
    }

    /// Decodes a stored event: `Ok(None)` for events that are not the domain's (genesis, key
    /// rotations), an error for a domain event whose payload does not fit its schema. A sealed
    /// `private` member is read as unavailable; see [`DomainEvent::decode_with`].
    pub fn decode(event: &Event) -> Result<Option<Self>, DecodeError> {
        Ok(DomainEvent::decode_with(event, &NoKeys)?.map(|(domain, _)| domain))
    }

    /// Decodes a stored event, opening a sealed `private` member with `opener`.
    pub fn decode_with(
        event: &Event,
        opener: &dyn OpenPrivate,
    ) -> Result<Option<(Self, Privacy)>, DecodeError> {
        let Some(current) = DomainEvent::current_version(&event.event_type) else {
            return Ok(None);
        };
        let malformed = |detail: String| DecodeError::Payload {
            position: event.position,
            detail,
        };
        let sealed = has_sealed_part(&event.payload);
        if event.schema_version == current && !sealed {
            return DomainEvent::from_current_text(&event.event_type, &event.payload)
                .map(|decoded| decoded.map(|domain| (domain, Privacy::Clear)))
                .map_err(|error| malformed(error.to_string()));
        }
        let mut payload: Value =
            serde_json::from_str(&event.payload).map_err(|error| malformed(error.to_string()))?;
        let privacy = if sealed {
            open_private(event, &mut payload, opener).map_err(malformed)?
        } else {
            Privacy::Clear
        };
        let payload = upcast::to_current(&event.event_type, event.schema_version, current, payload)
            .map_err(malformed)?;
        DomainEvent::from_current(&event.event_type, payload)
            .map(|decoded| decoded.map(|domain| (domain, privacy)))
            .map_err(|error| malformed(error.to_string()))
    }

    /// The names of the fields an event sets, for timelines and history. Client data is named
    /// by its field, never shown.
    pub fn changed_fields(&self) -> Vec<String> {
        let Ok(Value::Object(members)) = self.payload() else {
            return Vec::new();
        };
        let mut fields = Vec::new();
        for (name, value) in members {
            match (name.as_str(), value) {
                ("private", Value::Object(private)) => {
                    fields.extend(private.keys().map(|key| format!("private.{key}")));
                }
                (_, Value::Null) => {}
                (name, _) => fields.push(name.to_owned()),
            }
        }
        fields
    }
}

/// A stored event that claims a domain type but cannot be read as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("event at position {position} has a malformed payload: {detail}")]
    Payload { position: u64, detail: String },
}

/// A domain event with the envelope facts that readers show beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub position: u64,
    pub stream: String,
    pub stream_version: u64,
    pub actor: String,
    pub occurred_at: String,
    pub recorded_at: String,
    pub event: DomainEvent,
    /// The event's id (what a sealed part is bound to).
    pub event_id: String,
    /// Whether its client data was opened, erased or withheld.
    pub privacy: Privacy,
}

impl RecordedEvent {
    /// Decodes without keys: client data that is sealed reads as unavailable.
    pub fn decode(event: &Event) -> Result<Option<Self>, DecodeError> {
        RecordedEvent::open(event, &NoKeys)
    }

    /// The names of the fields the event sets (see [`DomainEvent::changed_fields`]); when its
    /// client data was not opened, only that `private` changed, not which of its fields.
    pub fn changed_fields(&self) -> Vec<String> {
        let fields = self.event.changed_fields();
        if self.privacy.is_readable() {
            return fields;
        }
        let mut named: Vec<String> = fields
            .into_iter()
            .filter(|field| !field.starts_with("private."))
            .collect();
        if self.privacy.sealed().is_some() {
            named.push("private".to_owned());
        }
        named
    }

    /// Decodes, opening sealed client data with `opener`.
    pub fn open(event: &Event, opener: &dyn OpenPrivate) -> Result<Option<Self>, DecodeError> {
        Ok(
            DomainEvent::decode_with(event, opener)?.map(|(domain, privacy)| RecordedEvent {
                position: event.position,
                stream: event.stream.clone(),
                stream_version: event.stream_version,
                actor: event.actor.clone(),
                occurred_at: event.occurred_at.clone(),
                recorded_at: event.recorded_at.clone(),
                event: domain,
                event_id: event.id.clone(),
                privacy,
            }),
        )
    }
}

/// Replaces the sealed `private` member of `payload` by what `opener` makes of it: the
/// plaintext, or an empty object when erased or withheld.
pub fn open_private(
    event: &Event,
    payload: &mut Value,
    opener: &dyn OpenPrivate,
) -> Result<Privacy, String> {
    let Some(private) = payload.get_mut("private") else {
        return Ok(Privacy::Clear);
    };
    if private.get("sealed").is_none() {
        return Ok(Privacy::Clear);
    }
    let mut reference = private.clone();
    if let Value::Object(members) = &mut reference {
        members.insert("event".into(), Value::String(event.id.clone()));
    }
    let sealed = reference.to_string();
    let part = opener.open(&event.id, private)?;
    let (replacement, privacy) = match part {
        PrivatePart::Plain(plain) => (plain, Privacy::Opened { sealed }),
        PrivatePart::Erased => (
            Value::Object(Default::default()),
            Privacy::Erased { sealed },
        ),
        PrivatePart::Unavailable => (
            Value::Object(Default::default()),
            Privacy::Unavailable { sealed },
        ),
    };
    *private = replacement;
    Ok(privacy)
}
