//! The case-records domain: matters, contacts and everything recorded on a matter.
//!
//! This layer is pure. Commands are checked against the current state of the stream they
//! touch ([`matter::Matter`], [`contact::Contact`]) and, when they pass, become
//! [`events::DomainEvent`]s that the service appends with the stream version the decision was
//! taken at. Folding the same events rebuilds the state, which is how commands see the present
//! and how history is read as of any position (replay).
//!
//! Client data (names, contact details, note bodies, document titles, narratives, sensitive
//! custom fields) lives only under the `private` member of a payload, so that it can be
//! encrypted and erased as a unit without touching the rest of the event.

pub mod commands;
pub mod contact;
pub mod custom_fields;
pub mod error;
pub mod events;
pub mod governance;
pub mod identity;
pub mod ids;
pub mod matter;
pub mod names;
pub mod privacy;
pub mod records;
pub mod rules;
pub mod upcast;

pub use error::DomainError;
pub use events::{DomainEvent, RecordedEvent};
pub use privacy::{NoKeys, OpenPrivate, Privacy, PrivatePart};
