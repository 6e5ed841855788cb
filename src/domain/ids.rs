//! Identifiers of the domain and the streams they name.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::error::DomainError;
use crate::log::StreamId;

/// A firm-unique, permanent matter number such as `2026-0042`. It names the matter's stream, so
/// two matters can never share one: the second `matter.opened` finds the stream taken.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MatterNumber(String);

impl MatterNumber {
    /// Upper-cases and checks a number: 1-32 of `A-Z 0-9 . _ -`, starting with a letter or digit.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let upper = text.trim().to_ascii_uppercase();
        let valid = (1..=32).contains(&upper.len())
            && upper.starts_with(|c: char| c.is_ascii_alphanumeric())
            && upper
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || "._-".contains(c));
        if valid {
            Ok(MatterNumber(upper))
        } else {
            Err(DomainError::invalid(
                "matterNumber",
                "a matter number is 1-32 letters, digits, '.', '_' or '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The matter's stream: `matter:<number>`.
    pub fn stream(&self) -> StreamId {
        stream_id("matter", &self.0)
    }
}

impl TryFrom<String> for MatterNumber {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        MatterNumber::parse(&value)
    }
}

impl From<MatterNumber> for String {
    fn from(value: MatterNumber) -> Self {
        value.0
    }
}

impl std::fmt::Display for MatterNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A contact's id (a UUIDv7 chosen when the contact is created); names `contact:<id>`.
pub fn contact_stream(contact_id: &str) -> Result<StreamId, DomainError> {
    check_entity_id("contactId", contact_id)?;
    Ok(stream_id("contact", contact_id))
}

/// The stream holding a custom field's definition: `custom_field:<key>`.
pub fn custom_field_stream(key: &str) -> Result<StreamId, DomainError> {
    check_field_key(key)?;
    Ok(stream_id("custom_field", key))
}

/// A fresh id for a contact, party, document, note, task, calendar entry or time entry.
pub fn new_entity_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Entity ids are lowercase hyphenated UUIDs.
pub fn check_entity_id(field: &'static str, text: &str) -> Result<(), DomainError> {
    match canonical_uuid(text) {
        Some(_) => Ok(()),
        None => Err(DomainError::invalid(field, "not a valid id")),
    }
}

/// Custom field keys: 1-40 of `a-z 0-9 _`, starting with a letter.
pub fn check_field_key(key: &str) -> Result<(), DomainError> {
    let valid = (1..=40).contains(&key.len())
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "key",
            "a custom field key is 1-40 of a-z, 0-9 and '_', starting with a letter",
        ))
    }
}

/// Users are named by the id in their actor (`user:<id>`); here only the id is checked.
pub fn check_user_id(field: &'static str, text: &str) -> Result<(), DomainError> {
    let valid = (1..=128).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._@".contains(c));
    if valid {
        Ok(())
    } else {
        Err(DomainError::invalid(field, "not a valid user id"))
    }
}

fn stream_id(category: &str, key: &str) -> StreamId {
    // Every key reaching here was checked against a subset of the stream-id grammar.
    match StreamId::parse(&format!("{category}:{key}")) {
        Ok(stream) => stream,
        Err(_) => StreamId::system(),
    }
}

/// A set of entity ids kept in 16 bytes each: the ids Docket issues are canonical UUIDs
/// ([`new_entity_id`]), held here as numbers. An id in any other form (none is issued, but the
/// set must answer for whatever an event holds) is kept as text, so membership is exact either
/// way: a canonical id and its number name each other one to one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntityIds {
    canonical: BTreeSet<u128>,
    other: BTreeSet<String>,
}

impl EntityIds {
    pub fn insert(&mut self, id: &str) {
        match canonical_uuid(id) {
            Some(number) => self.canonical.insert(number),
            None => self.other.insert(id.to_owned()),
        };
    }

    pub fn contains(&self, id: &str) -> bool {
        match canonical_uuid(id) {
            Some(number) => self.canonical.contains(&number),
            None => self.other.contains(id),
        }
    }

    pub fn len(&self) -> usize {
        self.canonical.len() + self.other.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The number of an id written as a lowercase hyphenated UUID; `None` for any other text
/// (upper case or unhyphenated forms included, so that no two texts share a number).
fn canonical_uuid(id: &str) -> Option<u128> {
    let parsed = uuid::Uuid::try_parse(id).ok()?;
    let mut buffer = uuid::Uuid::encode_buffer();
    (parsed.hyphenated().encode_lower(&mut buffer) == id).then(|| parsed.as_u128())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matter_numbers_are_upper_cased_and_bounded() {
        assert_eq!(
            MatterNumber::parse(" 2026-0042a ").unwrap().as_str(),
            "2026-0042A"
        );
        assert!(MatterNumber::parse("").is_err());
        assert!(MatterNumber::parse("-12").is_err());
        assert!(MatterNumber::parse("20 26").is_err());
        assert!(MatterNumber::parse(&"1".repeat(33)).is_err());
        assert_eq!(
            MatterNumber::parse("2026-0042").unwrap().stream().as_str(),
            "matter:2026-0042"
        );
    }

    #[test]
    fn entity_ids_must_be_canonical_uuids() {
        let id = new_entity_id();
        assert!(check_entity_id("id", &id).is_ok());
        assert!(check_entity_id("id", &id.to_uppercase()).is_err());
        assert!(check_entity_id("id", "x").is_err());
    }

    #[test]
    fn entity_id_sets_hold_canonical_ids_as_numbers_and_other_text_as_text() {
        let mut ids = EntityIds::default();
        let id = new_entity_id();
        ids.insert(&id);
        ids.insert("legacy-note-1");
        assert!(ids.contains(&id));
        assert!(ids.contains("legacy-note-1"));
        assert_eq!(ids.len(), 2);

        // Another spelling of the same UUID is another id, as it is in the log.
        assert!(!ids.contains(&id.to_uppercase()));
        assert!(!ids.contains(&id.replace('-', "")));
        assert!(!ids.contains(&new_entity_id()));
        assert!(!ids.contains("legacy-note-2"));

        ids.insert(&id);
        assert_eq!(ids.len(), 2, "inserting twice keeps one");
        assert_eq!(ids.canonical.len(), 1);
        assert_eq!(ids.other.len(), 1);
    }
}
