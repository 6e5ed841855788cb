//! The last checks of a bundle (docs/evidence-bundle.md section 5.2, steps 8 and 9): that its
//! scope is complete (a matter's stream from version 1 with its links intact, or every position
//! of a range, each linked to the one before), and that its view shows exactly its events.

use serde_json::Value;

use crate::log::Event;
use crate::log::canonical::canonical_json;
use crate::log::merkle::TreeHash;

use super::format::{Manifest, ScopeKind, View};
use super::{BundleFailure, FailureKind};

/// Step 8: the scope is complete. A matter's stream runs from version 1 to the version the
/// manifest states, each event linked to the one before; a range holds every position from its
/// start to its end, each linked to the one before.
pub(super) fn check_scope(
    manifest: &Manifest,
    events: &[(Event, Vec<TreeHash>)],
) -> Result<(), BundleFailure> {
    let mismatch = |detail: String| BundleFailure::new(FailureKind::ManifestMismatch, detail);
    match manifest.scope.kind() {
        Some(ScopeKind::Matter(number)) => {
            let stream = format!("matter:{number}");
            let mut previous: Option<&Event> = None;
            for (event, _) in events {
                let at = |kind, detail: String| BundleFailure::at(kind, event.position, detail);
                if event.stream != stream {
                    return Err(at(
                        FailureKind::OutOfScope,
                        format!("the event belongs to {}", event.stream),
                    ));
                }
                if previous.is_some_and(|p| event.position <= p.position) {
                    return Err(at(
                        FailureKind::OutOfOrder,
                        "events must ascend by position".into(),
                    ));
                }
                let expected = previous.map_or(1, |p| p.stream_version + 1);
                if event.stream_version != expected {
                    return Err(at(
                        FailureKind::StreamVersionGap,
                        format!(
                            "expected stream version {expected}, found {}",
                            event.stream_version
                        ),
                    ));
                }
                if event.stream_prev_hash != previous.map(|p| p.hash) {
                    return Err(at(
                        FailureKind::StreamChainBroken,
                        "stream_prev_hash is not the stream's previous event hash".into(),
                    ));
                }
                previous = Some(event);
            }
            let last = previous.map_or(0, |p| p.stream_version);
            let stated = manifest
                .stream_version
                .ok_or_else(|| mismatch("a matter's manifest states its stream version".into()))?;
            if last < stated {
                return Err(BundleFailure::new(
                    FailureKind::ScopeIncomplete,
                    format!("the events end at version {last}; the manifest states {stated}"),
                ));
            }
            if last > stated {
                return Err(mismatch(format!(
                    "the events reach version {last}; the manifest states {stated}"
                )));
            }
        }
        Some(ScopeKind::Range { from, to }) => {
            if from == 0
                || from > to
                || to > manifest.tree_size
                || manifest.stream_version.is_some()
            {
                return Err(mismatch(format!(
                    "positions {from}-{to} are not a range of the checkpoint's tree"
                )));
            }
            let mut expected = from;
            let mut previous: Option<&Event> = None;
            for (event, _) in events {
                if expected > to {
                    return Err(BundleFailure::at(
                        FailureKind::OutOfScope,
                        event.position,
                        format!("the range ends at {to}"),
                    ));
                }
                if event.position != expected {
                    return Err(BundleFailure::at(
                        FailureKind::PositionGap,
                        expected,
                        format!("expected position {expected}, found {}", event.position),
                    ));
                }
                let linked = match previous {
                    Some(previous) => event.prev_hash == Some(previous.hash),
                    None => from > 1 || event.prev_hash.is_none(),
                };
                if !linked {
                    return Err(BundleFailure::at(
                        FailureKind::ChainBroken,
                        event.position,
                        "prev_hash is not the previous event's hash",
                    ));
                }
                previous = Some(event);
                expected += 1;
            }
            if expected <= to {
                return Err(BundleFailure::at(
                    FailureKind::ScopeIncomplete,
                    expected,
                    format!("the events end before position {expected}; the range ends at {to}"),
                ));
            }
        }
        None => return Err(mismatch("the scope is neither a matter nor a range".into())),
    }
    if manifest.events != events.len() as u64 {
        return Err(mismatch(format!(
            "the manifest counts {} events; the bundle holds {}",
            manifest.events,
            events.len()
        )));
    }
    Ok(())
}

/// Step 9: the view shows exactly the events' payloads, compared as JCS encodings; a sealed
/// `private` member may be shown opened (its plaintext, which no proof covers).
pub(super) fn check_view(
    view: &View,
    events: &[(Event, Vec<TreeHash>)],
) -> Result<(), BundleFailure> {
    if view.events.len() != events.len() {
        return Err(BundleFailure::new(
            FailureKind::ViewMismatch,
            format!(
                "the view shows {} events; the bundle holds {}",
                view.events.len(),
                events.len()
            ),
        ));
    }
    for (shown, (event, _)) in view.events.iter().zip(events) {
        let differs = || {
            BundleFailure::at(
                FailureKind::ViewMismatch,
                event.position,
                "the view's payload is not the event's",
            )
        };
        if shown.position != event.position {
            return Err(differs());
        }
        let mut stored: Value = serde_json::from_str(&event.payload).map_err(|_| differs())?;
        let mut shown_payload = shown.payload.clone();
        let sealed = stored
            .get("private")
            .and_then(|private| private.get("sealed"))
            .is_some_and(|format| format == crate::vault::seal::SEAL_FORMAT);
        if sealed {
            for payload in [&mut stored, &mut shown_payload] {
                if let Value::Object(members) = payload {
                    members.remove("private");
                }
            }
        }
        let same = match (canonical_json(&stored), canonical_json(&shown_payload)) {
            (Ok(stored), Ok(shown)) => stored == shown,
            _ => false,
        };
        if !same {
            return Err(differs());
        }
    }
    Ok(())
}
