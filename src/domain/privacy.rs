//! What became of an event's `private` member when it was read.
//!
//! Docket seals the `private` member of every payload that has one (see [`crate::vault`]); the
//! domain never sees ciphertext. A reader passes an [`OpenPrivate`] to the decoder, which
//! replaces a sealed member by its plaintext, or, when the subject's data key has been
//! destroyed, by an empty object, and says which in [`Privacy`]. The domain's private structs
//! read an empty object as their defaults, so an erased event still folds: its client data is
//! simply gone.

use serde_json::Value;

/// How an event's client data was read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Privacy {
    /// The payload had no sealed part (no client data, or written before sealing).
    #[default]
    Clear,
    /// The sealed part was opened. `sealed` is its column form (see
    /// [`crate::vault::SealedRef`]), which read models store instead of plaintext.
    Opened { sealed: String },
    /// The subject's data key was destroyed: the client data is erased.
    Erased { sealed: String },
    /// The reader holds no key for it (a reader that does not need client data).
    Unavailable { sealed: String },
}

impl Privacy {
    /// The column form of the sealed part, when there is one.
    pub fn sealed(&self) -> Option<&str> {
        match self {
            Privacy::Clear => None,
            Privacy::Opened { sealed }
            | Privacy::Erased { sealed }
            | Privacy::Unavailable { sealed } => Some(sealed),
        }
    }

    pub fn is_erased(&self) -> bool {
        matches!(self, Privacy::Erased { .. })
    }

    /// Whether the decoded event holds its client data (not erased, not withheld).
    pub fn is_readable(&self) -> bool {
        matches!(self, Privacy::Clear | Privacy::Opened { .. })
    }
}

/// What an opener made of a sealed `private` member.
#[derive(Debug, Clone, PartialEq)]
pub enum PrivatePart {
    Plain(Value),
    Erased,
    Unavailable,
}

/// Opens the sealed `private` member of the event `event_id`.
pub trait OpenPrivate {
    /// `Err` with a reason when the part is malformed or does not open under its key.
    fn open(&self, event_id: &str, sealed: &Value) -> Result<PrivatePart, String>;
}

/// An opener with no keys: every sealed part is [`PrivatePart::Unavailable`]. For readers
/// that need no client data (the identity directory, histories of field names).
pub struct NoKeys;

impl OpenPrivate for NoKeys {
    fn open(&self, _event_id: &str, _sealed: &Value) -> Result<PrivatePart, String> {
        Ok(PrivatePart::Unavailable)
    }
}

/// Whether a stored payload text holds a sealed part. Payloads are stored in JCS form (no
/// whitespace), so the sealed object's format member appears verbatim.
pub fn has_sealed_part(payload_text: &str) -> bool {
    payload_text.contains(r#""sealed":"docket-seal/1""#)
}
