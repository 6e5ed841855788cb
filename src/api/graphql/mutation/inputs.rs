//! The input objects and enums of the mutations.

use async_graphql::{Enum, InputObject};

use crate::domain::events::{ContactDetails, Identifier, LabelledValue, PartyRole, PostalAddress};

/// Write options every mutation takes.
#[derive(InputObject, Default)]
pub struct WriteOptions {
    /// The version the client last read; the change is refused if the record moved on.
    pub expected_version: Option<u64>,
    /// Repeating a key returns the first result instead of writing again.
    pub idempotency_key: Option<String>,
}

#[derive(InputObject)]
pub struct OpenMatterInput {
    pub matter_number: String,
    pub title: String,
    pub description: Option<String>,
    pub practice_area: String,
    pub responsible_attorney: String,
    pub originating_attorney: Option<String>,
    pub opened_on: Option<String>,
    pub statute_of_limitations_on: Option<String>,
    /// Start in INTAKE (awaiting the conflict check) instead of OPEN.
    #[graphql(default = false)]
    pub intake: bool,
}

#[derive(InputObject, Default)]
pub struct UpdateMatterInput {
    pub title: Option<String>,
    pub description: Option<String>,
    pub practice_area: Option<String>,
    pub responsible_attorney: Option<String>,
    pub originating_attorney: Option<String>,
    pub statute_of_limitations_on: Option<String>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum PartyRoleValue {
    Client,
    OpposingParty,
    OpposingCounsel,
    CoCounsel,
    Witness,
    Expert,
    Court,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum TeamCapacityValue {
    Attorney,
    Paralegal,
    Staff,
    OriginatingAttorney,
    ResponsibleAttorney,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatusValue {
    Open,
    Completed,
    Cancelled,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum CalendarKindValue {
    Hearing,
    FilingDeadline,
    Meeting,
    Deadline,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ContactKindValue {
    Person,
    Organisation,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum FieldKindValue {
    Text,
    Number,
    Date,
    Choice,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ConflictOutcomeValue {
    Cleared,
    PotentialConflict,
}

#[derive(InputObject)]
pub struct PostalAddressInput {
    pub lines: Vec<String>,
    pub locality: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub label: Option<String>,
}

#[derive(InputObject)]
pub struct IdentifierInput {
    pub scheme: String,
    pub value: String,
}

#[derive(InputObject)]
pub struct ContactInput {
    pub display_name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    #[graphql(default)]
    pub emails: Vec<String>,
    #[graphql(default)]
    pub phones: Vec<String>,
    #[graphql(default)]
    pub addresses: Vec<PostalAddressInput>,
    #[graphql(default)]
    pub identifiers: Vec<IdentifierInput>,
}

impl ContactInput {
    pub(super) fn details(self) -> ContactDetails {
        ContactDetails {
            display_name: self.display_name,
            given_name: self.given_name,
            family_name: self.family_name,
            emails: self
                .emails
                .into_iter()
                .map(|value| LabelledValue { value, label: None })
                .collect(),
            phones: self
                .phones
                .into_iter()
                .map(|value| LabelledValue { value, label: None })
                .collect(),
            addresses: self
                .addresses
                .into_iter()
                .map(|address| PostalAddress {
                    lines: address.lines,
                    locality: address.locality,
                    region: address.region,
                    postal_code: address.postal_code,
                    country: address.country,
                    label: address.label,
                })
                .collect(),
            identifiers: self
                .identifiers
                .into_iter()
                .map(|identifier| Identifier {
                    scheme: identifier.scheme,
                    value: identifier.value,
                })
                .collect(),
        }
    }
}

#[derive(InputObject)]
pub struct DocumentInput {
    pub document_type: String,
    pub title: String,
    pub description: Option<String>,
    pub filename: Option<String>,
    pub media_type: String,
    /// The bytes, base64 (standard alphabet), at most 5 MiB decoded.
    pub content_base64: String,
}

#[derive(InputObject)]
pub struct CalendarEntryInput {
    pub kind: CalendarKindValue,
    pub title: String,
    pub starts_at: String,
    pub ends_at: Option<String>,
    #[graphql(default = false)]
    pub all_day: bool,
    /// Required for deadlines: the court rule or reason.
    pub rule: Option<String>,
    pub location: Option<String>,
}

#[derive(InputObject)]
pub struct TimeEntryInput {
    /// Defaults to the caller.
    pub user_id: Option<String>,
    pub worked_on: String,
    pub minutes: u32,
    #[graphql(default = true)]
    pub billable: bool,
    pub description: String,
}

pub(super) fn party_role(role: PartyRoleValue) -> PartyRole {
    match role {
        PartyRoleValue::Client => PartyRole::Client,
        PartyRoleValue::OpposingParty => PartyRole::OpposingParty,
        PartyRoleValue::OpposingCounsel => PartyRole::OpposingCounsel,
        PartyRoleValue::CoCounsel => PartyRole::CoCounsel,
        PartyRoleValue::Witness => PartyRole::Witness,
        PartyRoleValue::Expert => PartyRole::Expert,
        PartyRoleValue::Court => PartyRole::Court,
    }
}
