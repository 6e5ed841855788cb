//! Evidence bundles: one self-contained file holding a matter's events (or a range of
//! positions) as stored, an inclusion proof for each, the checkpoint they are proven against, the
//! log's key events, and a manifest; checkable offline, with no database and no server.
//!
//! docs/evidence-bundle.md is the normative description, precise enough for an independent
//! verifier (tests/vectors/verify_bundle.py is one). In outline:
//!
//! - [`format`] is the file: its sections, their JSON encodings, and the manifest's digests.
//! - [`export`] reads a bundle's contents from the log, proves them against a checkpoint, records
//!   the export in the access chain (a bundle is an audited read), and checks the result before
//!   handing it out.
//! - [`verify`] checks a bundle: digests, the key chain from the genesis event, every event's hash
//!   and signature under the key in force at its position, every inclusion proof against the
//!   checkpoint's root, the checkpoint's signature, and that the scope is complete (a matter's
//!   stream from version 1 with its links intact, or a range with no gap).
//!
//! Invariants: a bundle that [`verify::verify_bundle`] accepts was, event for event, part of the
//! log whose checkpoint it carries; the view (decoded payloads for an investigator) is a reading
//! of the events, not covered by any proof, and is accepted only when it agrees with them; a
//! malformed bundle is a typed failure, never a panic.

pub mod export;
pub mod format;
pub mod verify;

mod audit;
mod checks;
mod read;
mod scope;

use serde::Serialize;

pub use audit::OPERATION;
pub use export::{ExportError, ExportRequest, ExportScope, Exported, export};
pub use format::{Bundle, FORMAT, Manifest, ProvenEvent, Scope, View, ViewEvent};
pub use verify::{BundleReport, VerifyOptions, WitnessKey, verify_bundle};

/// What is wrong with a bundle. The names are stable: they appear in `verify-bundle --json` and
/// in docs/evidence-bundle.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The file is larger than the verifier accepts.
    TooLarge,
    /// The file is not a bundle: not JSON, or a section missing or of the wrong shape.
    Malformed,
    /// The manifest names a format this verifier does not implement.
    UnsupportedFormat,
    /// A section's digest is not the one the manifest records (the file was cut or edited).
    DigestMismatch,
    /// The manifest disagrees with the checkpoint or the events (size, origin, count, scope).
    ManifestMismatch,
    /// The checkpoint is not a well-formed signed checkpoint note.
    MalformedCheckpoint,
    /// An event's position is 0 or beyond the checkpoint's tree size.
    BeyondCheckpoint,
    /// An event's id or a timestamp is not in the form the writer guarantees.
    MalformedEvent,
    /// An event's recomputed hash differs from its stored hash.
    HashMismatch,
    /// Events of a section are not in ascending position order.
    OutOfOrder,
    /// A stream version is not the previous one plus one (or 1).
    StreamVersionGap,
    /// `stream_prev_hash` is not the hash of the stream's previous event.
    StreamChainBroken,
    /// The first key event is not a well-formed genesis event at position 1.
    BadGenesis,
    /// The genesis key is not the one the verifier was told to trust.
    UntrustedGenesisKey,
    /// An event names a key other than the one in force at its position.
    UnknownSigningKey,
    /// A key rotation is malformed or its incoming key did not accept it.
    BadKeyRotation,
    /// A signature does not verify under the key in force.
    BadSignature,
    /// An inclusion proof does not lead to the checkpoint's root.
    BadInclusionProof,
    /// The checkpoint is not signed by the key in force after its tree size.
    BadCheckpointSignature,
    /// A witness the verifier was told to require did not cosign the checkpoint.
    MissingCosignature,
    /// An event of the `system` stream is not among the bundle's key events.
    KeysIncomplete,
    /// An event of a matter bundle belongs to another stream.
    OutOfScope,
    /// A range bundle lacks a position (or holds one twice).
    PositionGap,
    /// In a range bundle, `prev_hash` is not the previous event's hash.
    ChainBroken,
    /// The events end before the scope does: the matter's last version or the range's end.
    ScopeIncomplete,
    /// The view disagrees with the events it claims to show.
    ViewMismatch,
}

impl FailureKind {
    /// Whether the file could not be read as a bundle at all (exit code 2), rather than being
    /// a bundle that fails a check (exit code 1).
    pub fn is_unreadable(self) -> bool {
        matches!(
            self,
            FailureKind::TooLarge | FailureKind::Malformed | FailureKind::UnsupportedFormat
        )
    }

    /// The stable name, as in the JSON report.
    pub fn as_str(self) -> &'static str {
        use FailureKind::*;
        match self {
            TooLarge => "too_large",
            Malformed => "malformed",
            UnsupportedFormat => "unsupported_format",
            DigestMismatch => "digest_mismatch",
            ManifestMismatch => "manifest_mismatch",
            MalformedCheckpoint => "malformed_checkpoint",
            BeyondCheckpoint => "beyond_checkpoint",
            MalformedEvent => "malformed_event",
            HashMismatch => "hash_mismatch",
            OutOfOrder => "out_of_order",
            StreamVersionGap => "stream_version_gap",
            StreamChainBroken => "stream_chain_broken",
            BadGenesis => "bad_genesis",
            UntrustedGenesisKey => "untrusted_genesis_key",
            UnknownSigningKey => "unknown_signing_key",
            BadKeyRotation => "bad_key_rotation",
            BadSignature => "bad_signature",
            BadInclusionProof => "bad_inclusion_proof",
            BadCheckpointSignature => "bad_checkpoint_signature",
            MissingCosignature => "missing_cosignature",
            KeysIncomplete => "keys_incomplete",
            OutOfScope => "out_of_scope",
            PositionGap => "position_gap",
            ChainBroken => "chain_broken",
            ScopeIncomplete => "scope_incomplete",
            ViewMismatch => "view_mismatch",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first failure found: its kind, the log position it concerns (when it concerns one
/// event), and a description that is not stable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{kind}{}: {detail}", position.map(|p| format!(" at position {p}")).unwrap_or_default())]
pub struct BundleFailure {
    pub kind: FailureKind,
    pub position: Option<u64>,
    pub detail: String,
}

impl BundleFailure {
    /// A failure of the bundle as a whole.
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        BundleFailure {
            kind,
            position: None,
            detail: detail.into(),
        }
    }

    /// A failure of the event at `position`.
    pub fn at(kind: FailureKind, position: u64, detail: impl Into<String>) -> Self {
        BundleFailure {
            kind,
            position: Some(position),
            detail: detail.into(),
        }
    }
}
