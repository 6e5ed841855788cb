//! Bounds on what a writer may put into the log. They keep hashed content reproducible in every
//! language (integers within +-2^53) and keep one append from exhausting memory or a batch.

/// The largest integer every JSON implementation represents exactly (2^53 - 1).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Default upper bound on one event's canonical payload, in bytes.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Upper bound on the events of one append request.
pub const MAX_EVENTS_PER_APPEND: usize = 1000;

/// Upper bound on the nesting depth of a payload.
pub const MAX_PAYLOAD_DEPTH: usize = 64;

/// Upper bound on the length of short identifiers (request, idempotency and actor ids).
pub const MAX_IDENTIFIER_LEN: usize = 200;
