//! The signed, hash-chained event log as a pure data structure.
//!
//! Nothing here touches storage: [`envelope`] defines what an event is, [`canonical`] how it is
//! encoded and hashed, [`keys`] how it is signed and how keys rotate, and [`verify`] how a stream
//! of stored events is checked end to end. docs/log-format.md is the normative description.

pub mod canonical;
pub mod checkpoint;
pub mod envelope;
pub mod keys;
pub mod limits;
pub mod merkle;
pub mod note;
pub mod system_events;
pub mod time;
pub mod verify;

pub use envelope::{Actor, Event, EventDraft, ExpectedVersion, StreamId};
pub use keys::{KeyId, LogSigner};
