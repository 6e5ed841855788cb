//! The access record: one per request (or per CLI operation), listing every decision the policy
//! layer took about client data while serving it.
//!
//! A record is stored as the payload of one `access.recorded` event (schema version 1) on the
//! `access` stream of the access chain, as canonical JSON. Its shape is part of that chain's
//! format: members are only ever added, optional members are left out when they have no value
//! (never written as `null`), and `schema/events/access.recorded.v1.json` describes it. A
//! record names what was touched (matters, kinds of things, field groups), never the values.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::log::Actor;

/// The event type every access record is stored under.
pub const EVENT_TYPE: &str = "access.recorded";
/// The schema version of [`AccessRecord`] as stored.
pub const SCHEMA_VERSION: u32 = 1;
/// The one stream of the access chain that holds records.
pub const STREAM: &str = "access";

/// Longest principal, session, operation, request id, client address, matter, target, target
/// id, reason or field-group name, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// Most entries in one record.
pub const MAX_ENTRIES: usize = 1000;
/// Most field groups in one entry.
pub const MAX_FIELDS: usize = 100;

/// Every decision taken while serving one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// Who asked: `user:<id>`, `api_client:<id>`, or `anonymous` for a caller not signed in.
    pub principal: String,
    /// The public id of the session the request came in on (never its token), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// What was asked, e.g. `query matter`, `mutation addNote`, `login`, `cli verify`.
    pub operation: String,
    /// The request's id as the API assigned or received it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The address the request came from, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
    /// The decisions, at least one.
    pub entries: Vec<AccessEntry>,
}

/// One decision: a kind of thing, which of its field groups, allowed or denied, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    /// The matter number the decision concerns, when it concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matter: Option<String>,
    /// What kind of thing: `matter`, `contact`, `note`, `user`, `wall`, `access_records`, ...
    pub target: String,
    /// The thing's id, when the decision concerns one thing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// The field groups read or written (names, never values), e.g. `matter.core`,
    /// `notes.privileged`. Empty when the decision concerns the thing as a whole.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Whether access was granted.
    pub decision: Decision,
    /// Why, as a short code: `team_member`, `firm_visible`, `walled`, `break_glass`, `role`, ...
    pub reason: String,
}

/// The outcome of one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Access was granted.
    Allowed,
    /// Access was refused.
    Denied,
}

impl Decision {
    /// The stored name: `allowed` or `denied`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Denied => "denied",
        }
    }

    /// The decision a stored name stands for.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "allowed" => Some(Decision::Allowed),
            "denied" => Some(Decision::Denied),
            _ => None,
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a record cannot be stored. Messages name the rule broken, never the content.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidRecord {
    /// A record must carry 1 to [`MAX_ENTRIES`] entries.
    #[error("an access record carries 1 to {MAX_ENTRIES} entries; this one has {0}")]
    EntryCount(usize),
    /// An entry names more than [`MAX_FIELDS`] field groups.
    #[error("an access entry names at most {MAX_FIELDS} field groups")]
    TooManyFields,
    /// A text member is empty, too long or holds control characters.
    #[error("{0} must be 1-{MAX_TEXT_CHARS} characters without control characters")]
    Text(&'static str),
}

impl AccessRecord {
    /// Checks the bounds that `schema/events/access.recorded.v1.json` states.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        if self.entries.is_empty() || self.entries.len() > MAX_ENTRIES {
            return Err(InvalidRecord::EntryCount(self.entries.len()));
        }
        text("principal", &self.principal)?;
        text("operation", &self.operation)?;
        optional_text("session", self.session.as_deref())?;
        optional_text("request_id", self.request_id.as_deref())?;
        optional_text("client_address", self.client_address.as_deref())?;
        for entry in &self.entries {
            entry.validate()?;
        }
        Ok(())
    }

    /// The event's actor: the principal when it is one the log knows (`user:<id>`,
    /// `api_client:<id>`), otherwise `system` (anonymous callers and anything else); the
    /// payload always carries the principal as given.
    pub fn actor(&self) -> Actor {
        Actor::parse(&self.principal).unwrap_or_else(|_| Actor::system())
    }

    /// The event payload: the record as a JSON object.
    pub fn to_payload(&self) -> Result<Value, InvalidRecord> {
        serde_json::to_value(self).map_err(|_| InvalidRecord::Text("record"))
    }
}

impl AccessEntry {
    fn validate(&self) -> Result<(), InvalidRecord> {
        optional_text("matter", self.matter.as_deref())?;
        text("target", &self.target)?;
        optional_text("target_id", self.target_id.as_deref())?;
        text("reason", &self.reason)?;
        if self.fields.len() > MAX_FIELDS {
            return Err(InvalidRecord::TooManyFields);
        }
        for field in &self.fields {
            text("fields", field)?;
        }
        Ok(())
    }
}

fn text(name: &'static str, value: &str) -> Result<(), InvalidRecord> {
    let count = value.chars().count();
    if (1..=MAX_TEXT_CHARS).contains(&count) && !value.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(InvalidRecord::Text(name))
    }
}

fn optional_text(name: &'static str, value: Option<&str>) -> Result<(), InvalidRecord> {
    value.map_or(Ok(()), |value| text(name, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> AccessRecord {
        AccessRecord {
            principal: "user:a.okafor".into(),
            session: None,
            operation: "query matter".into(),
            request_id: Some("req-1".into()),
            client_address: None,
            entries: vec![AccessEntry {
                matter: Some("2026-0001".into()),
                target: "matter".into(),
                target_id: None,
                fields: vec!["matter.core".into()],
                decision: Decision::Allowed,
                reason: "team_member".into(),
            }],
        }
    }

    #[test]
    fn absent_members_are_left_out_and_decisions_are_lowercase() {
        let payload = record().to_payload().unwrap();
        assert_eq!(
            payload,
            json!({
                "principal": "user:a.okafor",
                "operation": "query matter",
                "request_id": "req-1",
                "entries": [{
                    "matter": "2026-0001",
                    "target": "matter",
                    "fields": ["matter.core"],
                    "decision": "allowed",
                    "reason": "team_member"
                }]
            })
        );
        let back: AccessRecord = serde_json::from_value(payload).unwrap();
        assert_eq!(back, record());
    }

    #[test]
    fn anonymous_principals_are_recorded_as_the_system_actor() {
        assert_eq!(record().actor().as_str(), "user:a.okafor");
        let mut anonymous = record();
        anonymous.principal = "anonymous".into();
        assert_eq!(anonymous.actor().as_str(), "system");
    }

    #[test]
    fn records_without_entries_or_with_bad_text_are_refused() {
        let mut empty = record();
        empty.entries.clear();
        assert_eq!(empty.validate(), Err(InvalidRecord::EntryCount(0)));
        let mut control = record();
        control.operation = "query\nmatter".into();
        assert_eq!(control.validate(), Err(InvalidRecord::Text("operation")));
        let mut long = record();
        long.entries[0].reason = "x".repeat(MAX_TEXT_CHARS + 1);
        assert_eq!(long.validate(), Err(InvalidRecord::Text("reason")));
        assert_eq!(record().validate(), Ok(()));
    }
}
