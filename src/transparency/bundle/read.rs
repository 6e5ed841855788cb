//! Reading a bundle file: its size, its JSON, its format, the manifest's digests, then the typed
//! sections (docs/evidence-bundle.md section 5, steps 1 and 2).
//!
//! The digests are checked on the parsed JSON before the sections are decoded, so an edited or
//! truncated section is reported as a digest mismatch rather than as whatever decoding error the
//! edit happens to cause.

use rayon::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::log::Event;
use crate::log::merkle::TreeHash;

use super::format::{
    FORMAT, MANIFEST_DIGEST, Manifest, ProvenEvent, SECTIONS, View, manifest_digest, section_digest,
};
use super::{BundleFailure, FailureKind};

/// A bundle decoded, its events split from their proofs.
pub(super) struct Decoded {
    pub manifest: Manifest,
    pub checkpoint: String,
    pub keys: Vec<(Event, Vec<TreeHash>)>,
    pub events: Vec<(Event, Vec<TreeHash>)>,
    pub view: Option<View>,
}

fn malformed(detail: impl Into<String>) -> BundleFailure {
    BundleFailure::new(FailureKind::Malformed, detail)
}

/// Parses `bytes`, checks the digests and decodes the sections.
pub(super) fn read(bytes: &[u8], max_bytes: usize) -> Result<Decoded, BundleFailure> {
    if bytes.len() > max_bytes {
        return Err(BundleFailure::new(
            FailureKind::TooLarge,
            format!(
                "the file is {} bytes; this verifier reads at most {max_bytes}",
                bytes.len()
            ),
        ));
    }
    let document: Value =
        serde_json::from_slice(bytes).map_err(|error| malformed(format!("not JSON: {error}")))?;
    let Value::Object(mut members) = document else {
        return Err(malformed("a bundle is a JSON object"));
    };
    if let Some(unknown) = members
        .keys()
        .find(|name| name.as_str() != "manifest" && !SECTIONS.contains(&name.as_str()))
    {
        return Err(malformed(format!("unknown member `{unknown}`")));
    }
    let (manifest, own_digest) = read_manifest(members.remove("manifest"))?;
    check_digests(&manifest, &own_digest, &members)?;

    let checkpoint = match members.remove("checkpoint") {
        Some(Value::String(note)) => note,
        _ => return Err(malformed("`checkpoint` must be the note's text")),
    };
    let keys = read_events("keys", members.remove("keys"))?;
    let events = read_events("events", members.remove("events"))?;
    let view = match members.remove("view") {
        None => None,
        Some(value) => {
            Some(View::deserialize(value).map_err(|error| malformed(format!("view: {error}")))?)
        }
    };
    Ok(Decoded {
        manifest,
        checkpoint,
        keys,
        events,
        view,
    })
}

/// The manifest, and the digest of its members but `digests`. Its format is checked first, so
/// that a later format is named as such.
fn read_manifest(value: Option<Value>) -> Result<(Manifest, String), BundleFailure> {
    let value = value.ok_or_else(|| malformed("the bundle has no manifest"))?;
    match value.get("format") {
        Some(Value::String(format)) if format == FORMAT => {}
        Some(Value::String(format)) => {
            return Err(BundleFailure::new(
                FailureKind::UnsupportedFormat,
                format!("the bundle's format is {format:?}; this verifier reads {FORMAT}"),
            ));
        }
        _ => return Err(malformed("the manifest names no format")),
    }
    let own_digest = manifest_digest(&value).map_err(|_| malformed("manifest: not encodable"))?;
    let manifest =
        Manifest::deserialize(value).map_err(|error| malformed(format!("manifest: {error}")))?;
    if manifest.scope.kind().is_none() {
        return Err(malformed(
            "the scope must be {matter} or {from_position, to_position}",
        ));
    }
    Ok((manifest, own_digest))
}

/// The manifest's own members and every section present have the digests the manifest
/// records, and the manifest records no digest of a section that is absent.
fn check_digests(
    manifest: &Manifest,
    own_digest: &str,
    sections: &Map<String, Value>,
) -> Result<(), BundleFailure> {
    for name in ["checkpoint", "keys", "events"] {
        if !sections.contains_key(name) {
            return Err(malformed(format!("the bundle has no `{name}` section")));
        }
    }
    let mismatch = |detail: String| BundleFailure::new(FailureKind::DigestMismatch, detail);
    if let Some(extra) = manifest
        .digests
        .keys()
        .find(|name| *name != MANIFEST_DIGEST && !sections.contains_key(name.as_str()))
    {
        return Err(mismatch(format!(
            "the manifest has a digest of `{extra}`, which the bundle does not hold"
        )));
    }
    if manifest.digests.get(MANIFEST_DIGEST).map(String::as_str) != Some(own_digest) {
        return Err(mismatch(
            "the manifest's digest of its own members is not theirs".into(),
        ));
    }
    for name in SECTIONS {
        let Some(section) = sections.get(name) else {
            continue;
        };
        let actual =
            section_digest(section).map_err(|_| mismatch(format!("{name}: cannot be encoded")))?;
        match manifest.digests.get(name) {
            Some(recorded) if *recorded == actual => {}
            Some(_) => {
                return Err(mismatch(format!(
                    "the `{name}` section's digest is not the one the manifest records"
                )));
            }
            None => {
                return Err(mismatch(format!(
                    "the manifest records no digest of the `{name}` section"
                )));
            }
        }
    }
    Ok(())
}

/// A section of proven events, decoded in parallel.
fn read_events(
    name: &str,
    value: Option<Value>,
) -> Result<Vec<(Event, Vec<TreeHash>)>, BundleFailure> {
    let Some(Value::Array(items)) = value else {
        return Err(malformed(format!("`{name}` must be an array of events")));
    };
    let decoded: Vec<Result<(Event, Vec<TreeHash>), serde_json::Error>> = items
        .par_iter()
        .map(|item| ProvenEvent::deserialize(item).map(ProvenEvent::into_parts))
        .collect();
    // The first error in the file's order, whichever thread met it first.
    decoded
        .into_iter()
        .enumerate()
        .map(|(index, event)| event.map_err(|error| malformed(format!("{name}[{index}]: {error}"))))
        .collect()
}
