//! The event envelope: what a writer submits ([`EventDraft`]) and what the log stores ([`Event`]).
//!
//! Every field of [`Event`] except `hash` and `signature` is covered by the hash; see
//! [`crate::log::canonical`]. Identifiers are validated here so that nothing malformed reaches
//! the sequencer.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use super::limits::{MAX_IDENTIFIER_LEN, MAX_PAYLOAD_DEPTH, MAX_SAFE_INTEGER};

/// Length of a blake3 event hash.
pub const HASH_LEN: usize = 32;
/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// A blake3 hash as stored in the log.
pub type EventHash = [u8; HASH_LEN];

/// Why a draft or an identifier was refused. Messages name the rule, never the rejected content.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ValidationError {
    #[error(
        "stream id must be `category` or `category:key` (lowercase category, key of 1-128 URL-safe characters)"
    )]
    InvalidStreamId,
    #[error(
        "event type must be dotted lowercase words, e.g. `matter.opened`, at most 100 characters"
    )]
    InvalidEventType,
    #[error("event types under `log.` and `keys.` are reserved for the log itself")]
    ReservedEventType,
    #[error("actor must be `system`, `user:<id>` or `api_client:<id>`")]
    InvalidActor,
    #[error("{field} must be 1-{MAX_IDENTIFIER_LEN} printable ASCII characters")]
    InvalidIdentifier { field: &'static str },
    #[error("{field} must be an RFC 3339 timestamp")]
    InvalidTimestamp { field: &'static str },
    #[error("schema version must be between 1 and 65535")]
    InvalidSchemaVersion,
    #[error("payload must be a JSON object")]
    PayloadNotObject,
    #[error("payload is {actual} bytes once canonical; the limit is {limit}")]
    PayloadTooLarge { actual: usize, limit: usize },
    #[error("payload nests deeper than {MAX_PAYLOAD_DEPTH} levels")]
    PayloadTooDeep,
    #[error("payload integers must lie within +-(2^53 - 1); send larger numbers as strings")]
    UnsafeInteger,
    #[error("an append carries 1 to {max} events; this one has {actual}")]
    BatchSize { actual: usize, max: usize },
}

/// A stream: one matter, client, contact, user, or the log's own `system` stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(String);

impl StreamId {
    /// The log's own stream, holding genesis and key rotations.
    pub fn system() -> Self {
        StreamId("system".to_owned())
    }

    /// Validates a stream id: `category` or `category:key`.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let (category, key) = match text.split_once(':') {
            Some((category, key)) => (category, Some(key)),
            None => (text, None),
        };
        let category_ok = !category.is_empty()
            && category.len() <= 40
            && category.starts_with(|c: char| c.is_ascii_lowercase())
            && category
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        let key_ok = key.is_none_or(|key| {
            (1..=128).contains(&key.len())
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
        });
        if category_ok && key_ok {
            Ok(StreamId(text.to_owned()))
        } else {
            Err(ValidationError::InvalidStreamId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for StreamId {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        StreamId::parse(&value)
    }
}

impl From<StreamId> for String {
    fn from(value: StreamId) -> Self {
        value.0
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who caused an event: `system`, `user:<id>` or `api_client:<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Actor(String);

impl Actor {
    pub fn system() -> Self {
        Actor("system".to_owned())
    }

    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        if text == "system" {
            return Ok(Actor::system());
        }
        let valid = match text.split_once(':') {
            Some(("user" | "api_client", id)) => is_identifier(id),
            _ => false,
        };
        if valid {
            Ok(Actor(text.to_owned()))
        } else {
            Err(ValidationError::InvalidActor)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Actor {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Actor::parse(&value)
    }
}

impl From<Actor> for String {
    fn from(value: Actor) -> Self {
        value.0
    }
}

/// The stream version an append expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's current version must be exactly this.
    Exactly(u64),
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` (0 = absent) satisfies the expectation.
    pub fn admits(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exactly(version) => actual == version,
        }
    }
}

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no stream (version 0)"),
            ExpectedVersion::Exactly(version) => write!(f, "{version}"),
        }
    }
}

/// One event as a writer submits it; the sequencer adds position, versions, links and signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDraft {
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default = "default_schema_version")]
    pub schema_version: u32,
    pub payload: Value,
    /// When the fact happened, if the writer knows better than "now".
    #[serde(default)]
    pub occurred_at: Option<String>,
    #[serde(default)]
    pub causation_id: Option<String>,
    /// The event's id, when the writer fixed it in advance (a sealed part is bound to it).
    /// Never taken from a client.
    #[serde(skip)]
    pub id: Option<String>,
}

fn default_schema_version() -> u32 {
    1
}

impl EventDraft {
    pub fn new(event_type: impl Into<String>, payload: Value) -> Self {
        EventDraft {
            event_type: event_type.into(),
            schema_version: 1,
            payload,
            occurred_at: None,
            causation_id: None,
            id: None,
        }
    }
}

/// An event as stored: every column of the events table, exactly as hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub position: u64,
    pub id: String,
    pub stream: String,
    pub stream_version: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u32,
    /// The payload's canonical (RFC 8785) JSON text.
    pub payload: String,
    pub actor: String,
    pub request_id: Option<String>,
    pub occurred_at: String,
    pub recorded_at: String,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub idempotency_key: Option<String>,
    #[serde(with = "hex_opt")]
    pub prev_hash: Option<EventHash>,
    #[serde(with = "hex_opt")]
    pub stream_prev_hash: Option<EventHash>,
    pub key_id: String,
    #[serde(with = "hex_array")]
    pub hash: EventHash,
    #[serde(with = "hex_array")]
    pub signature: [u8; SIGNATURE_LEN],
}

/// Event type names: dotted lowercase words.
pub fn validate_event_type(text: &str) -> Result<(), ValidationError> {
    let words_ok = text.split('.').all(|word| {
        word.starts_with(|c: char| c.is_ascii_lowercase())
            && word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    });
    if text.len() <= 100 && text.contains('.') && words_ok {
        Ok(())
    } else {
        Err(ValidationError::InvalidEventType)
    }
}

/// True for the types only the log itself may write.
pub fn is_reserved_event_type(text: &str) -> bool {
    text.starts_with("log.") || text.starts_with("keys.")
}

/// Short identifiers (request, correlation, causation and idempotency ids): printable ASCII.
pub fn is_identifier(text: &str) -> bool {
    (1..=MAX_IDENTIFIER_LEN).contains(&text.len()) && text.chars().all(|c| c.is_ascii_graphic())
}

/// Checks what canonical JSON needs of a payload: bounded depth and integers within +-2^53.
pub fn validate_payload_numbers(value: &Value) -> Result<(), ValidationError> {
    fn walk(value: &Value, depth: usize) -> Result<(), ValidationError> {
        if depth > MAX_PAYLOAD_DEPTH {
            return Err(ValidationError::PayloadTooDeep);
        }
        match value {
            Value::Number(number) => {
                let safe = match (number.as_u64(), number.as_i64()) {
                    (Some(n), _) => n <= MAX_SAFE_INTEGER,
                    (None, Some(n)) => n.unsigned_abs() <= MAX_SAFE_INTEGER,
                    // A float that is a whole number beyond 2^53 has lost precision already.
                    (None, None) => number.as_f64().is_some_and(|f| {
                        f.is_finite() && (f.fract() != 0.0 || f.abs() <= MAX_SAFE_INTEGER as f64)
                    }),
                };
                if safe {
                    Ok(())
                } else {
                    Err(ValidationError::UnsafeInteger)
                }
            }
            Value::Array(items) => items.iter().try_for_each(|item| walk(item, depth + 1)),
            Value::Object(fields) => fields.values().try_for_each(|item| walk(item, depth + 1)),
            Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
        }
    }
    walk(value, 0)
}

/// Serde helpers for hashes and signatures as lowercase hex.
pub(crate) mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(text).map_err(D::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| D::Error::custom("wrong length"))
    }
}

pub(crate) mod hex_opt {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => s.serialize_str(&hex::encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let bytes = hex::decode(text).map_err(D::Error::custom)?;
        bytes
            .try_into()
            .map(Some)
            .map_err(|_| D::Error::custom("wrong length"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stream_ids_follow_category_and_key() {
        assert!(StreamId::parse("system").is_ok());
        assert!(StreamId::parse("matter:0190a3b4-7c1d-7000-8000-000000000001").is_ok());
        for bad in [
            "",
            "Matter:1",
            "matter:",
            "matter:a b",
            "matter:x:y",
            "1matter",
        ] {
            assert_eq!(
                StreamId::parse(bad),
                Err(ValidationError::InvalidStreamId),
                "{bad}"
            );
        }
    }

    #[test]
    fn actors_are_system_users_or_api_clients() {
        assert!(Actor::parse("user:42").is_ok());
        assert!(Actor::parse("api_client:billing").is_ok());
        assert_eq!(Actor::parse("root"), Err(ValidationError::InvalidActor));
        assert_eq!(Actor::parse("user:"), Err(ValidationError::InvalidActor));
    }

    #[test]
    fn event_types_are_dotted_lowercase_words() {
        assert!(validate_event_type("matter.opened").is_ok());
        assert!(validate_event_type("matter").is_err());
        assert!(validate_event_type("Matter.Opened").is_err());
        assert!(validate_event_type("matter..opened").is_err());
        assert!(is_reserved_event_type("keys.rotated"));
    }

    #[test]
    fn integers_beyond_two_to_the_53_are_refused() {
        assert!(validate_payload_numbers(&json!({"n": 9007199254740991_u64})).is_ok());
        assert!(validate_payload_numbers(&json!({"n": -9007199254740991_i64})).is_ok());
        assert_eq!(
            validate_payload_numbers(&json!({"n": [9007199254740993_u64]})),
            Err(ValidationError::UnsafeInteger)
        );
        assert!(validate_payload_numbers(&json!({"hours": 1.5})).is_ok());
        assert_eq!(
            validate_payload_numbers(&serde_json::from_str("{\"n\": 9007199254740993.0}").unwrap()),
            Err(ValidationError::UnsafeInteger)
        );
        assert_eq!(
            validate_payload_numbers(
                &serde_json::from_str("{\"n\": 123456789012345678901234567890}").unwrap()
            ),
            Err(ValidationError::UnsafeInteger)
        );
    }

    #[test]
    fn deep_payloads_are_refused() {
        let mut value = json!(1);
        for _ in 0..100 {
            value = json!([value]);
        }
        assert_eq!(
            validate_payload_numbers(&value),
            Err(ValidationError::PayloadTooDeep)
        );
    }

    #[test]
    fn expected_versions_admit_what_they_say() {
        assert!(ExpectedVersion::Any.admits(7));
        assert!(ExpectedVersion::NoStream.admits(0));
        assert!(!ExpectedVersion::NoStream.admits(1));
        assert!(ExpectedVersion::Exactly(3).admits(3));
        assert!(!ExpectedVersion::Exactly(3).admits(4));
    }
}
