//! The matter aggregate: its state folded from its stream ([`state`]) and the rules that decide
//! whether a command may add to it ([`decide`]).

pub mod decide;
pub mod state;

pub use state::{CalendarEntry, ConflictCheck, Document, Matter, Note, Party, Task, TimeEntry};
