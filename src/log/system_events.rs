//! Payloads of the events the log writes about itself, on the `system` stream.

use serde::{Deserialize, Serialize};

/// Type of the first event of every log.
pub const GENESIS: &str = "log.genesis";
/// Type of a signing-key handover.
pub const KEY_ROTATED: &str = "keys.rotated";
/// Identifies the envelope format in the genesis event.
pub const FORMAT: &str = "docket-log/1";

/// Payload of `log.genesis` (position 1): the log's identity and its first public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub format: String,
    pub log_id: String,
    pub key_id: String,
    pub public_key: String,
}

/// Payload of `keys.rotated`, signed by the outgoing key, introducing the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRotated {
    pub previous_key_id: String,
    pub next_key_id: String,
    pub next_public_key: String,
    /// The incoming key's signature over its acceptance message, hex.
    pub acceptance_signature: String,
}
