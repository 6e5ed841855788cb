//! The bundle file (docs/evidence-bundle.md section 3): one JSON object with a `manifest`, the
//! `checkpoint` note, the `keys` and `events` sections of proven events, and an optional `view`.
//!
//! Each event is in the JSON form of docs/log-format.md section 13.2 plus its `inclusion_proof`.
//! The manifest records the SHA-256 of the RFC 8785 (JCS) encoding of every other section, so
//! that a file cut short or edited is caught whatever its whitespace; the digests are a seal
//! against accidents and careless edits, not a signature: the proofs and signatures are what
//! establish the events.

use std::collections::BTreeMap;
use std::io::Write;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::log::Event;
use crate::log::envelope::{EventHash, SIGNATURE_LEN, hex_array, hex_opt};
use crate::log::merkle::TreeHash;

/// The format identifier, in `manifest.format`.
pub const FORMAT: &str = "docket-evidence-bundle/1";

/// The sections besides the manifest, in the order their digests are checked.
pub const SECTIONS: [&str; 4] = ["checkpoint", "keys", "events", "view"];
/// The digest of the manifest's own members (all but `digests`), checked first.
pub const MANIFEST_DIGEST: &str = "manifest";

/// A whole bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub manifest: Manifest,
    /// The signed checkpoint note, exactly as stored (docs/log-format.md section 16.2).
    pub checkpoint: String,
    /// Every event of the `system` stream up to the checkpoint's size: the genesis event and
    /// the key rotations.
    pub keys: Vec<ProvenEvent>,
    /// The scope's events, in ascending position order.
    pub events: Vec<ProvenEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<View>,
}

/// What the bundle holds and the digests of its sections. Not signed: see the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    /// When the bundle was made (canonical UTC timestamp, docs/log-format.md section 5.3).
    pub created_at: String,
    /// The checkpoint's origin: the log's name.
    pub origin: String,
    pub scope: Scope,
    /// For a matter: the matter stream's version when the bundle was made, so its last event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_version: Option<u64>,
    /// How many events the `events` section holds.
    pub events: u64,
    /// The checkpoint's tree size.
    pub tree_size: u64,
    /// A UUID naming this export; also the request id of its access record.
    pub export_id: String,
    /// Where the export is recorded in the access chain (its position there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_position: Option<u64>,
    /// Section name to lowercase hex SHA-256 of the section's JCS encoding.
    pub digests: BTreeMap<String, String>,
}

/// What was exported: a matter, or positions `from_position..=to_position`. Exactly one of
/// the two forms is present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// The matter number; the events are those of the stream `matter:<number>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_position: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_position: Option<u64>,
}

/// A scope resolved to one of its two forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKind<'a> {
    Matter(&'a str),
    Range { from: u64, to: u64 },
}

impl Scope {
    pub fn matter(number: &str) -> Self {
        Scope {
            matter: Some(number.to_owned()),
            from_position: None,
            to_position: None,
        }
    }

    pub fn range(from: u64, to: u64) -> Self {
        Scope {
            matter: None,
            from_position: Some(from),
            to_position: Some(to),
        }
    }

    /// The scope's form; `None` when it mixes or lacks members.
    pub fn kind(&self) -> Option<ScopeKind<'_>> {
        match (&self.matter, self.from_position, self.to_position) {
            (Some(number), None, None) => Some(ScopeKind::Matter(number)),
            (None, Some(from), Some(to)) => Some(ScopeKind::Range { from, to }),
            _ => None,
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind() {
            Some(ScopeKind::Matter(number)) => write!(f, "matter {number}"),
            Some(ScopeKind::Range { from, to }) => write!(f, "positions {from}-{to}"),
            None => f.write_str("an unknown scope"),
        }
    }
}

/// A sibling hash of an inclusion proof, as hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofHash(#[serde(with = "hex_array")] pub TreeHash);

/// An event in the JSON form of docs/log-format.md section 13.2, with its inclusion proof in
/// the checkpoint's tree: sibling hashes, bottom up (section 16.1 there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenEvent {
    pub position: u64,
    pub id: String,
    pub stream: String,
    pub stream_version: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u32,
    pub payload: String,
    pub actor: String,
    pub request_id: Option<String>,
    pub occurred_at: String,
    pub recorded_at: String,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub idempotency_key: Option<String>,
    #[serde(default, with = "hex_opt")]
    pub prev_hash: Option<EventHash>,
    #[serde(default, with = "hex_opt")]
    pub stream_prev_hash: Option<EventHash>,
    pub key_id: String,
    #[serde(with = "hex_array")]
    pub hash: EventHash,
    #[serde(with = "hex_array")]
    pub signature: [u8; SIGNATURE_LEN],
    pub inclusion_proof: Vec<ProofHash>,
}

impl ProvenEvent {
    pub fn new(event: Event, proof: Vec<TreeHash>) -> Self {
        ProvenEvent {
            position: event.position,
            id: event.id,
            stream: event.stream,
            stream_version: event.stream_version,
            event_type: event.event_type,
            schema_version: event.schema_version,
            payload: event.payload,
            actor: event.actor,
            request_id: event.request_id,
            occurred_at: event.occurred_at,
            recorded_at: event.recorded_at,
            correlation_id: event.correlation_id,
            causation_id: event.causation_id,
            idempotency_key: event.idempotency_key,
            prev_hash: event.prev_hash,
            stream_prev_hash: event.stream_prev_hash,
            key_id: event.key_id,
            hash: event.hash,
            signature: event.signature,
            inclusion_proof: proof.into_iter().map(ProofHash).collect(),
        }
    }

    /// The event as the log stores it, and its proof.
    pub fn into_parts(self) -> (Event, Vec<TreeHash>) {
        let proof = self
            .inclusion_proof
            .into_iter()
            .map(|hash| hash.0)
            .collect();
        let event = Event {
            position: self.position,
            id: self.id,
            stream: self.stream,
            stream_version: self.stream_version,
            event_type: self.event_type,
            schema_version: self.schema_version,
            payload: self.payload,
            actor: self.actor,
            request_id: self.request_id,
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            idempotency_key: self.idempotency_key,
            prev_hash: self.prev_hash,
            stream_prev_hash: self.stream_prev_hash,
            key_id: self.key_id,
            hash: self.hash,
            signature: self.signature,
        };
        (event, proof)
    }
}

/// The decoded view for an investigator. Not covered by any proof; a verifier checks only that
/// it agrees with the events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct View {
    /// Whom it was made for: `user:<id>`, the principal of the export's access record.
    pub investigator: String,
    /// Each event's payload as JSON, in the order of the `events` section.
    pub events: Vec<ViewEvent>,
    /// For a matter: its state folded from the events by the exporting Docket (informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matter: Option<Value>,
}

/// One event's payload, decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewEvent {
    pub position: u64,
    pub payload: Value,
}

/// Why a bundle could not be encoded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the bundle cannot be encoded canonically")]
pub struct EncodingError;

impl Bundle {
    /// Records in the manifest the digest of every other section and of the manifest's own
    /// other members.
    pub fn seal(&mut self) -> Result<(), EncodingError> {
        let sections = self.sections()?;
        let mut digests: BTreeMap<String, String> = sections
            .iter()
            .map(|(name, value)| Ok(((*name).to_owned(), section_digest(value)?)))
            .collect::<Result<_, EncodingError>>()?;
        let manifest = serde_json::to_value(&self.manifest).map_err(|_| EncodingError)?;
        digests.insert(MANIFEST_DIGEST.to_owned(), manifest_digest(&manifest)?);
        self.manifest.digests = digests;
        Ok(())
    }

    /// The file's bytes: indented JSON, ending with a newline.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodingError> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|_| EncodingError)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// The sections present, as JSON values, in [`SECTIONS`] order.
    fn sections(&self) -> Result<Vec<(&'static str, Value)>, EncodingError> {
        let value = |v: Result<Value, serde_json::Error>| v.map_err(|_| EncodingError);
        let mut sections = vec![
            ("checkpoint", Value::String(self.checkpoint.clone())),
            ("keys", value(serde_json::to_value(&self.keys))?),
            ("events", value(serde_json::to_value(&self.events))?),
        ];
        if let Some(view) = &self.view {
            sections.push(("view", value(serde_json::to_value(view))?));
        }
        Ok(sections)
    }
}

/// The digest of a manifest (as JSON) without its `digests` member.
pub fn manifest_digest(manifest: &Value) -> Result<String, EncodingError> {
    let mut members = manifest.clone();
    if let Value::Object(members) = &mut members {
        members.remove("digests");
    }
    section_digest(&members)
}

/// Lowercase hex of SHA-256 over the JCS encoding of `section`. An array's elements are
/// encoded in parallel; the bytes hashed are the same as for the array encoded whole.
pub fn section_digest(section: &Value) -> Result<String, EncodingError> {
    let mut hasher = Sha256::new();
    match section {
        Value::Array(items) => {
            let encoded: Vec<Vec<u8>> = items
                .par_iter()
                .map(|item| serde_json_canonicalizer::to_vec(item).map_err(|_| EncodingError))
                .collect::<Result<_, _>>()?;
            hasher.update(b"[");
            for (index, item) in encoded.iter().enumerate() {
                if index > 0 {
                    hasher.update(b",");
                }
                hasher.update(item);
            }
            hasher.update(b"]");
        }
        other => {
            let mut sink = HashWriter(&mut hasher);
            serde_json_canonicalizer::to_writer(other, &mut sink).map_err(|_| EncodingError)?;
            sink.flush().map_err(|_| EncodingError)?;
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Feeds what is written into a hasher.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_array_digest_is_the_digest_of_its_whole_jcs_encoding() {
        let section = json!([{"b": 1, "a": "x"}, [2.50, true], "\u{e9}"]);
        let whole = serde_json_canonicalizer::to_vec(&section).unwrap();
        assert_eq!(
            String::from_utf8(whole.clone()).unwrap(),
            "[{\"a\":\"x\",\"b\":1},[2.5,true],\"\u{e9}\"]"
        );
        assert_eq!(
            section_digest(&section).unwrap(),
            hex::encode(Sha256::digest(&whole))
        );
        assert_eq!(
            section_digest(&json!([])).unwrap(),
            hex::encode(Sha256::digest(b"[]"))
        );
    }

    #[test]
    fn a_scope_is_a_matter_or_a_range_never_both() {
        assert_eq!(
            Scope::matter("2026-0042").kind(),
            Some(ScopeKind::Matter("2026-0042"))
        );
        assert_eq!(
            Scope::range(3, 9).kind(),
            Some(ScopeKind::Range { from: 3, to: 9 })
        );
        let mixed = Scope {
            matter: Some("2026-0042".into()),
            from_position: Some(1),
            to_position: None,
        };
        assert_eq!(mixed.kind(), None);
    }
}
