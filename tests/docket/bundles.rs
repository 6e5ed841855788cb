//! Evidence bundles (docs/evidence-bundle.md): a matter's events, or a range of positions, with
//! their inclusion proofs, the checkpoint and the log's key events, exported from the log and
//! checked offline by `docket verify-bundle` and by the library; every way of tampering with the
//! file is caught with its own failure, and every export is an audited read.
//!
//! The committed vectors (tests/vectors/bundle-v1.json) are built here from the log vectors
//! (tests/vectors/log-v1.json) with fixed keys and times, and checked by an independent verifier
//! too (tests/vectors/verify_bundle.py). Regenerate them deliberately, only with a format change:
//! `DOCKET_REGENERATE_VECTORS=1 cargo test --test docket bundles`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use docket::access::index::AccessQuery;
use docket::access::record::Decision;
use docket::domain::commands::*;
use docket::domain::identity::Role;
use docket::log::canonical::{canonical_json, compute_hash};
use docket::log::checkpoint::{Checkpoint, SignedCheckpoint};
use docket::log::keys::key_acceptance_message;
use docket::log::merkle::{Frontier, inclusion_ranges};
use docket::log::note;
use docket::log::{Event, LogSigner};
use docket::transparency::bundle::{
    Bundle, ExportError, ExportRequest, ExportScope, Exported, FailureKind, Manifest, ProvenEvent,
    Scope, VerifyOptions, View, ViewEvent, WitnessKey, export, verify_bundle,
};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestDocket, as_user, docket_binary, one_event, sign_in};

on_both_backends!(
    a_matter_bundle_verifies_offline_through_the_binary_and_the_library,
    a_key_rotation_in_the_middle_of_the_matter_still_verifies,
    a_range_bundle_proves_every_position_of_the_range,
    each_tampering_of_a_matter_bundle_is_caught_with_its_own_failure,
    a_wrong_genesis_key_fails_and_the_right_one_is_reported_as_pinned,
    the_smallest_covering_checkpoint_is_used_unless_a_fresh_one_is_asked_for,
    a_view_is_recorded_in_the_access_chain_and_matches_the_events,
    an_investigator_who_is_not_one_is_refused_and_the_refusal_recorded,
    export_refuses_a_missing_matter_a_bad_range_and_an_existing_file,
    witnesses_are_reported_and_each_one_named_must_have_cosigned,
);

const MATTER: &str = "2026-0042";

// ---- a matter built through the service -----------------------------------------------------

/// Opens the matter and works on it, with events of other streams in between and a key rotation
/// half way; returns the matter's positions.
async fn story(test: &TestDocket) -> Vec<u64> {
    let service = test.service();
    let log = &test.docket.log;
    let open = OpenMatter {
        matter_number: MATTER.into(),
        title: "Hale v. Marsh".into(),
        description: Some("Boundary dispute; instructions received".into()),
        practice_area: "property".into(),
        responsible_attorney: "a.okafor".into(),
        opened_on: Some("2026-01-12".into()),
        ..OpenMatter::default()
    };
    service
        .open_matter(&as_user("a.okafor"), &open)
        .await
        .expect("matter opens");
    log.append(one_event("contact:7", "contact.noted", json!({"n": 1})))
        .await
        .unwrap();
    note(test, "Site visit booked with the surveyor").await;
    log.rotate_key().await.expect("key rotates");
    log.append(one_event(
        "matter:2026-0099",
        "matter.noted",
        json!({"n": 2}),
    ))
    .await
    .unwrap();
    let rename = MatterCommand::ChangeDetails(ChangeMatterDetails {
        title: Some("Hale v. Marsh and another".into()),
        ..ChangeMatterDetails::default()
    });
    service
        .change_matter(&as_user("a.okafor"), MATTER, &rename)
        .await
        .expect("renamed");
    note(test, "Disclosure list \"final\" sent; Zoë to review").await;
    matter_events(test)
        .await
        .iter()
        .map(|e| e.position)
        .collect()
}

async fn note(test: &TestDocket, body: &str) {
    let command = MatterCommand::AddNote(AddNote {
        privileged: false,
        subject: None,
        body: body.into(),
    });
    test.service()
        .change_matter(&as_user("a.okafor"), MATTER, &command)
        .await
        .expect("note added");
}

async fn matter_events(test: &TestDocket) -> Vec<Event> {
    test.docket
        .log
        .store()
        .read_stream_page(&format!("matter:{MATTER}"), 1, 1000)
        .await
        .unwrap()
}

fn request(scope: ExportScope) -> ExportRequest {
    ExportRequest {
        scope,
        checkpoint_now: false,
        investigator: None,
        with_view: false,
    }
}

fn matter_scope() -> ExportScope {
    ExportScope::Matter(MATTER.into())
}

async fn export_with(test: &TestDocket, request: &ExportRequest) -> Result<Exported, ExportError> {
    let docket = &test.docket;
    export(
        &docket.log,
        &docket.checkpoints,
        &docket.access,
        &docket.vault,
        request,
    )
    .await
}

async fn genesis_key_id(test: &TestDocket) -> String {
    let page = test.docket.log.store().read_page(1, 1).await.unwrap();
    page[0].key_id.clone()
}

/// The kind and position of the first failure.
fn failure(bytes: &[u8], options: &VerifyOptions) -> (FailureKind, Option<u64>) {
    let failure = verify_bundle(bytes, options).expect_err("the bundle must not verify");
    (failure.kind, failure.position)
}

/// A copy of the bundle changed by `change` and sealed again (its digests recomputed), as a
/// careful forger would leave it.
fn resealed(bytes: &[u8], change: impl FnOnce(&mut Bundle)) -> Vec<u8> {
    let mut bundle: Bundle = serde_json::from_slice(bytes).unwrap();
    change(&mut bundle);
    bundle.seal().unwrap();
    bundle.to_bytes().unwrap()
}

fn verify_command(file: &Path, extra: &[&str]) -> Output {
    // No data directory and no database: run where there is nothing.
    let nowhere = tempfile::tempdir().unwrap();
    let output = Command::new(docket_binary())
        .current_dir(nowhere.path())
        .env_remove("DOCKET_DATABASE_URL")
        .env_remove("DOCKET_DATA_DIR")
        .arg("verify-bundle")
        .arg(file)
        .args(extra)
        .output()
        .unwrap();
    let left: Vec<_> = std::fs::read_dir(nowhere.path()).unwrap().collect();
    assert!(left.is_empty(), "verify-bundle created files: {left:?}");
    output
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("JSON output: {}", String::from_utf8_lossy(&output.stdout)))
}

// ---- export and verify ----------------------------------------------------------------------

async fn a_matter_bundle_verifies_offline_through_the_binary_and_the_library(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let positions = story(&test).await;
    let out = test.test.dir.path().join("hale.bundle.json");

    let exported = test
        .test
        .docket_command()
        .args(["export", "--matter", MATTER, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(exported.status.code(), Some(0), "{exported:?}");
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "a bundle holds client data");

    // The file holds the matter's events as stored, with the checkpoint that covers them.
    let bytes = std::fs::read(&out).unwrap();
    let bundle: Bundle = serde_json::from_slice(&bytes).unwrap();
    let stored = matter_events(&test).await;
    let shown: Vec<Event> = bundle
        .events
        .iter()
        .map(|e| e.clone().into_parts().0)
        .collect();
    assert_eq!(shown, stored);
    assert_eq!(bundle.manifest.scope, Scope::matter(MATTER));
    assert_eq!(bundle.manifest.stream_version, Some(stored.len() as u64));
    assert!(bundle.manifest.tree_size >= *positions.last().unwrap());
    assert!(bundle.view.is_none());

    // The binary, with nothing but the file.
    let pin = genesis_key_id(&test).await;
    let verified = verify_command(&out, &["--json", "--genesis-key", &pin]);
    assert_eq!(verified.status.code(), Some(0), "{verified:?}");
    let report = json_of(&verified);
    assert_eq!(report["status"], "intact");
    assert_eq!(report["report"]["events"], positions.len());
    assert_eq!(report["report"]["genesis_key_pinned"], true);
    assert_eq!(report["report"]["warnings"], json!([]));
    let text = verify_command(&out, &[]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.starts_with(&format!("intact: matter {MATTER}")),
        "{text}"
    );
    assert!(text.contains("warning: no --genesis-key given"), "{text}");

    // The library says the same, strictly too.
    let report = verify_bundle(&bytes, &VerifyOptions::default()).expect("intact");
    assert_eq!(report.first_position, positions.first().copied());
    assert_eq!(report.last_position, positions.last().copied());
    let strict = VerifyOptions {
        strict: true,
        ..VerifyOptions::default()
    };
    assert!(verify_bundle(&bytes, &strict).is_ok());

    // A broken copy exits 1 and names its failure.
    let broken = test.test.dir.path().join("broken.json");
    let changed = resealed(&bytes, |b| {
        b.events[1].payload = "{\"body\":\"other\"}".into()
    });
    std::fs::write(&broken, changed).unwrap();
    let output = verify_command(&broken, &["--json"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json_of(&output)["failure"]["kind"], "hash_mismatch");
    assert_eq!(json_of(&output)["failure"]["position"], positions[1]);
}

async fn a_key_rotation_in_the_middle_of_the_matter_still_verifies(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let positions = story(&test).await;
    let exported = export_with(&test, &request(matter_scope())).await.unwrap();
    let bundle = &exported.bundle;

    // The matter's events are signed by two keys, and the bundle carries the handover.
    let rotation = &bundle.keys[1];
    assert_eq!(bundle.keys.len(), 2);
    assert_eq!(rotation.event_type, "keys.rotated");
    assert!(positions.first().unwrap() < &rotation.position);
    assert!(&rotation.position < positions.last().unwrap());
    let key_ids: std::collections::BTreeSet<&str> =
        bundle.events.iter().map(|e| e.key_id.as_str()).collect();
    assert_eq!(key_ids.len(), 2);

    let report = verify_bundle(&exported.bytes, &VerifyOptions::default()).expect("intact");
    assert_eq!(report.key_rotations, 1);
    assert_ne!(report.checkpoint_key_id, report.genesis_key_id);
}

async fn a_range_bundle_proves_every_position_of_the_range(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let positions = story(&test).await;
    let (from, to) = (2, *positions.last().unwrap());
    let out = test.test.dir.path().join("range.json");
    let exported = test
        .test
        .docket_command()
        .args([
            "export",
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(exported.status.code(), Some(0), "{exported:?}");

    let bytes = std::fs::read(&out).unwrap();
    let report = verify_bundle(&bytes, &VerifyOptions::default()).expect("intact");
    assert_eq!(report.scope, Scope::range(from, to));
    assert_eq!(report.events, to - from + 1);
    let bundle: Bundle = serde_json::from_slice(&bytes).unwrap();
    let held: Vec<u64> = bundle.events.iter().map(|e| e.position).collect();
    assert_eq!(held, (from..=to).collect::<Vec<_>>());

    // A position taken out, or the end cut off, is caught even when resealed.
    let options = VerifyOptions::default();
    let gap = resealed(&bytes, |b| {
        b.events.remove(2);
        b.manifest.events -= 1;
    });
    assert_eq!(
        failure(&gap, &options),
        (FailureKind::PositionGap, Some(from + 2))
    );
    let cut = resealed(&bytes, |b| {
        b.events.pop();
        b.manifest.events -= 1;
    });
    assert_eq!(
        failure(&cut, &options),
        (FailureKind::ScopeIncomplete, Some(to))
    );
    let relinked = resealed(&bytes, |b| b.events[3].prev_hash = Some(b.events[1].hash));
    assert_eq!(
        failure(&relinked, &options),
        (FailureKind::HashMismatch, Some(from + 3))
    );
}

async fn each_tampering_of_a_matter_bundle_is_caught_with_its_own_failure(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let positions = story(&test).await;
    let exported = export_with(&test, &request(matter_scope())).await.unwrap();
    let bytes = &exported.bytes;
    let options = VerifyOptions::default();
    let middle = positions[2];

    // Edited and not resealed: the manifest's digest no longer matches.
    let text = String::from_utf8(bytes.clone()).unwrap();
    // (The note's body is sealed; its `privileged` flag is in clear.)
    let edited = text.replacen("privileged", "privilegex", 1);
    assert_ne!(edited, text);
    assert_eq!(
        failure(edited.as_bytes(), &options),
        (FailureKind::DigestMismatch, None)
    );

    // A payload changed (resealed): its hash no longer matches.
    let payload = resealed(bytes, |b| {
        b.events[2].payload = b.events[2]
            .payload
            .replace(r#""privileged":false"#, r#""privileged":true"#);
    });
    assert_eq!(
        failure(&payload, &options),
        (FailureKind::HashMismatch, Some(middle))
    );

    // An event removed from the middle: the stream's versions skip one.
    let removed = resealed(bytes, |b| {
        b.events.remove(2);
        b.manifest.events -= 1;
    });
    assert_eq!(
        failure(&removed, &options),
        (FailureKind::StreamVersionGap, Some(positions[3]))
    );

    // The last event removed: the events stop short of the version the manifest states.
    let last_removed = resealed(bytes, |b| {
        b.events.pop();
        b.manifest.events -= 1;
    });
    assert_eq!(
        failure(&last_removed, &options),
        (FailureKind::ScopeIncomplete, None)
    );
    // ... and stating the shorter version in the manifest too makes it a bundle of fewer
    // events, which is what a matter bundle cannot rule out on its own (docs, section 7).
    let restated = resealed(&last_removed, |b| {
        b.manifest.stream_version = b.manifest.stream_version.map(|v| v - 1);
    });
    assert!(verify_bundle(&restated, &options).is_ok());

    // A proof hash flipped.
    let proof = resealed(bytes, |b| b.events[1].inclusion_proof[0].0[7] ^= 1);
    assert_eq!(
        failure(&proof, &options),
        (FailureKind::BadInclusionProof, Some(positions[1]))
    );

    // The checkpoint's signature altered.
    let signature = resealed(bytes, |b| b.checkpoint = flip_signature(&b.checkpoint));
    assert_eq!(
        failure(&signature, &options),
        (FailureKind::BadCheckpointSignature, None)
    );

    // The key rotation swapped for one to a forged key, which its forger signed.
    let rotation_position = exported.bundle.keys[1].position;
    let forged = resealed(bytes, |b| forge_rotation(&mut b.keys[1]));
    assert_eq!(
        failure(&forged, &options),
        (FailureKind::BadSignature, Some(rotation_position))
    );

    // An event of another matter slipped in, with its own valid proof against the same
    // checkpoint (the smallest covering it is the one this bundle uses).
    let other = export_with(&test, &request(ExportScope::Matter("2026-0099".into())))
        .await
        .unwrap();
    assert_eq!(other.bundle.checkpoint, exported.bundle.checkpoint);
    let foreign = other.bundle.events[0].clone();
    let foreign_position = foreign.position;
    let slipped = resealed(bytes, |b| {
        let at = b
            .events
            .iter()
            .position(|e| e.position > foreign_position)
            .unwrap();
        b.events.insert(at, foreign);
        b.manifest.events += 1;
    });
    assert_eq!(
        failure(&slipped, &options),
        (FailureKind::OutOfScope, Some(foreign_position))
    );

    // A different format is named as such, and a cut file is no bundle.
    let later = resealed(bytes, |b| {
        b.manifest.format = "docket-evidence-bundle/2".into()
    });
    assert_eq!(
        failure(&later, &options),
        (FailureKind::UnsupportedFormat, None)
    );
    let cut = &bytes[..bytes.len() / 2];
    assert_eq!(failure(cut, &options), (FailureKind::Malformed, None));
}

/// The checkpoint note with one byte of the log's signature changed.
fn flip_signature(note_text: &str) -> String {
    let (text, lines) = note_text.rsplit_once("\n\n").unwrap();
    let line = lines.lines().next().unwrap();
    let (prefix, encoded) = line.rsplit_once(' ').unwrap();
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut raw = engine.decode(encoded).unwrap();
    raw[10] ^= 0x01;
    format!("{text}\n\n{prefix} {}\n", engine.encode(raw))
}

/// Rewrites a key rotation to hand over to a key of the forger's (who accepts it properly),
/// re-hashed and signed by the forger, who lacks the outgoing key.
fn forge_rotation(rotation: &mut ProvenEvent) {
    let (mut event, proof) = rotation.clone().into_parts();
    event.payload = forged_rotation_payload(&event.payload);
    event.hash = compute_hash(&event);
    event.signature = forger().sign_event(&event.hash);
    *rotation = ProvenEvent::new(event, proof);
}

fn forger() -> LogSigner {
    LogSigner::from_seed(&[0x99; 32])
}

/// A rotation payload from the same outgoing key to the forger's key, with a valid acceptance.
fn forged_rotation_payload(genuine: &str) -> String {
    use ed25519_dalek::Signer;
    let genuine: Value = serde_json::from_str(genuine).unwrap();
    let previous = genuine["previous_key_id"].as_str().unwrap();
    let forger = forger();
    let message = key_acceptance_message(previous, forger.id().as_str());
    let acceptance = ed25519_dalek::SigningKey::from_bytes(&[0x99; 32]).sign(&message);
    canonical_json(&json!({
        "acceptance_signature": hex::encode(acceptance.to_bytes()),
        "next_key_id": forger.id().to_string(),
        "next_public_key": forger.public_key_hex(),
        "previous_key_id": previous,
    }))
    .unwrap()
}

async fn a_wrong_genesis_key_fails_and_the_right_one_is_reported_as_pinned(backend: Backend) {
    let test = TestDocket::new(backend).await;
    story(&test).await;
    let exported = export_with(&test, &request(matter_scope())).await.unwrap();
    let out = test.test.dir.path().join("pinned.json");
    std::fs::write(&out, &exported.bytes).unwrap();

    let wrong = forger().id().to_string();
    let options = VerifyOptions {
        genesis_key: Some(wrong.clone()),
        ..VerifyOptions::default()
    };
    assert_eq!(
        failure(&exported.bytes, &options),
        (FailureKind::UntrustedGenesisKey, Some(1))
    );
    let output = verify_command(&out, &["--genesis-key", &wrong]);
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("BROKEN at position 1: untrusted_genesis_key"),
        "{text}"
    );

    let right = VerifyOptions {
        genesis_key: Some(genesis_key_id(&test).await),
        ..VerifyOptions::default()
    };
    let report = verify_bundle(&exported.bytes, &right).expect("intact");
    assert!(report.genesis_key_pinned);
    assert!(report.warnings.is_empty());
    let unpinned = verify_bundle(&exported.bytes, &VerifyOptions::default()).unwrap();
    assert!(!unpinned.genesis_key_pinned);
    assert!(unpinned.warnings[0].contains("taken from the bundle itself"));
}

async fn the_smallest_covering_checkpoint_is_used_unless_a_fresh_one_is_asked_for(
    backend: Backend,
) {
    let test = TestDocket::new(backend).await;
    story(&test).await;
    let checkpoints = &test.docket.checkpoints;
    let log = &test.docket.log;
    let first = checkpoints.checkpoint_now().await.unwrap().tree_size;
    for n in 0..3 {
        log.append(one_event("contact:8", "contact.noted", json!({"n": n})))
            .await
            .unwrap();
    }
    let second = checkpoints.checkpoint_now().await.unwrap().tree_size;
    assert!(second > first);

    // The matter ends before the first checkpoint: that one, though a later one exists.
    let exported = export_with(&test, &request(matter_scope())).await.unwrap();
    assert_eq!(exported.bundle.manifest.tree_size, first);

    // Asked for, a checkpoint of the whole log now.
    log.append(one_event("contact:8", "contact.noted", json!({"n": 9})))
        .await
        .unwrap();
    let fresh = ExportRequest {
        checkpoint_now: true,
        ..request(matter_scope())
    };
    let exported = export_with(&test, &fresh).await.unwrap();
    let head = log.head().await.unwrap().position;
    assert_eq!(exported.bundle.manifest.tree_size, head);

    // A matter event beyond every stored checkpoint: a fresh one is signed for it.
    note(&test, "Counsel's opinion received").await;
    let exported = export_with(&test, &request(matter_scope())).await.unwrap();
    let head = log.head().await.unwrap().position;
    assert_eq!(exported.bundle.manifest.tree_size, head);
    assert!(verify_bundle(&exported.bytes, &VerifyOptions::default()).is_ok());
}

async fn a_view_is_recorded_in_the_access_chain_and_matches_the_events(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let positions = story(&test).await;
    sign_in(&test.docket.identity, "ines", Role::Auditor).await;
    let with_view = ExportRequest {
        investigator: Some("ines".into()),
        with_view: true,
        ..request(matter_scope())
    };
    let exported = export_with(&test, &with_view).await.unwrap();
    let bundle = &exported.bundle;

    // The view shows each payload decoded, client data opened, and the matter as its events
    // leave it; the events themselves carry the client data sealed.
    let view = bundle.view.as_ref().expect("a view");
    assert_eq!(view.investigator, "user:ines");
    let mut opened = 0;
    for (shown, event) in view.events.iter().zip(&bundle.events) {
        assert_eq!(shown.position, event.position);
        let mut stored: Value = serde_json::from_str(&event.payload).unwrap();
        let mut shown = shown.payload.clone();
        if stored["private"]["sealed"] == json!("docket-seal/1") {
            assert!(
                shown["private"].get("sealed").is_none(),
                "opened in the view"
            );
            opened += 1;
            stored.as_object_mut().unwrap().remove("private");
            shown.as_object_mut().unwrap().remove("private");
        }
        assert_eq!(shown, stored);
    }
    assert!(
        opened >= 2,
        "the opening and the note are sealed and shown opened"
    );
    let text = serde_json::to_string(&view.events).unwrap();
    assert!(text.contains("Site visit booked with the surveyor"));
    let events: Vec<&str> = bundle.events.iter().map(|e| e.payload.as_str()).collect();
    assert!(
        !events.concat().contains("Site visit"),
        "sealed in the events section"
    );
    let matter = view.matter.as_ref().expect("the folded matter");
    assert_eq!(matter["number"], MATTER);
    assert_eq!(matter["title"], "Hale v. Marsh and another");
    assert_eq!(matter["version"], positions.len());
    let report = verify_bundle(&exported.bytes, &VerifyOptions::default()).expect("intact");
    assert_eq!(report.view_for.as_deref(), Some("user:ines"));

    // The export is in the access chain, under the investigator, where the manifest says.
    let query = AccessQuery {
        principal: Some("user:ines".into()),
        ..AccessQuery::latest(10)
    };
    let rows = test.docket.access.query(&query).await.unwrap();
    let row = rows
        .iter()
        .find(|row| row.operation == "export evidence bundle")
        .expect("the export is recorded");
    assert_eq!(Some(row.position), bundle.manifest.access_position);
    assert_eq!(
        row.request_id.as_deref(),
        Some(bundle.manifest.export_id.as_str())
    );
    assert_eq!(row.matter.as_deref(), Some(MATTER));
    assert_eq!(row.decision, Decision::Allowed);
    assert_eq!(row.reason, "investigator");
    assert_eq!(row.fields, ["bundle.events", "bundle.view"]);

    // A view that shows something else than the events is refused.
    let changed = resealed(&exported.bytes, |b| {
        b.view.as_mut().unwrap().events[1].payload = json!({"forged": true});
    });
    assert_eq!(
        failure(&changed, &VerifyOptions::default()),
        (FailureKind::ViewMismatch, Some(positions[1]))
    );

    // Through the binary too; its record is in the chain before the file is written.
    let out = test.test.dir.path().join("view.json");
    let output = test
        .test
        .docket_command()
        .args([
            "export",
            "--matter",
            MATTER,
            "--investigator",
            "ines",
            "--with-view",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let written: Bundle = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let records = test
        .docket
        .access
        .log()
        .store()
        .read_stream_page("access", 1, 1000)
        .await
        .unwrap();
    let recorded = records.iter().any(|record| {
        let payload: Value = serde_json::from_str(&record.payload).unwrap();
        payload["request_id"] == written.manifest.export_id.as_str()
            && payload["principal"] == "user:ines"
    });
    assert!(recorded, "the binary's export is recorded");
    let output = test
        .test
        .docket_command()
        .args(["export", "--matter", MATTER, "--with-view", "--out"])
        .arg(test.test.dir.path().join("no-investigator.json"))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "a view needs an investigator"
    );
}

async fn an_investigator_who_is_not_one_is_refused_and_the_refusal_recorded(backend: Backend) {
    let test = TestDocket::new(backend).await;
    story(&test).await;
    sign_in(&test.docket.identity, "sam", Role::Staff).await;
    sign_in(&test.docket.identity, "lee", Role::Partner).await;
    test.docket
        .identity
        .disable_user(&docket::log::Actor::system(), None, "lee", "left the firm")
        .await
        .unwrap();

    for (user, reason) in [
        ("sam", "role"),
        ("lee", "inactive"),
        ("nobody", "not_found"),
    ] {
        let asked = ExportRequest {
            investigator: Some(user.into()),
            with_view: true,
            ..request(matter_scope())
        };
        match export_with(&test, &asked).await {
            Err(ExportError::InvestigatorRefused {
                reason: refused, ..
            }) => assert_eq!(refused, reason, "{user}"),
            other => panic!("{user}: expected a refusal, got {:?}", other.map(|_| ())),
        }
    }
    let query = AccessQuery {
        principal: Some("user:sam".into()),
        ..AccessQuery::latest(10)
    };
    let rows = test.docket.access.query(&query).await.unwrap();
    assert!(
        rows.iter()
            .any(|row| row.operation == "export evidence bundle"
                && row.decision == Decision::Denied
                && row.reason == "role"),
        "{rows:?}"
    );

    let out = test.test.dir.path().join("refused.json");
    let output = test
        .test
        .docket_command()
        .args([
            "export",
            "--matter",
            MATTER,
            "--investigator",
            "sam",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(!out.exists(), "nothing is written for a refused export");
}

async fn export_refuses_a_missing_matter_a_bad_range_and_an_existing_file(backend: Backend) {
    let test = TestDocket::new(backend).await;
    story(&test).await;
    let dir = test.test.dir.path();
    let run = |args: &[&str], out: &Path| {
        test.test
            .docket_command()
            .arg("export")
            .args(args)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let missing = dir.join("missing.json");
    assert_eq!(
        run(&["--matter", "2026-9999"], &missing).status.code(),
        Some(1)
    );
    assert_eq!(
        run(&["--from", "5", "--to", "2"], &missing).status.code(),
        Some(1)
    );
    assert_eq!(
        run(&["--from", "1", "--to", "100000"], &missing)
            .status
            .code(),
        Some(1)
    );
    assert!(!missing.exists());

    let existing = dir.join("existing.json");
    std::fs::write(&existing, b"keep me").unwrap();
    assert_eq!(run(&["--matter", MATTER], &existing).status.code(), Some(2));
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
}

async fn witnesses_are_reported_and_each_one_named_must_have_cosigned(backend: Backend) {
    let test = TestDocket::new(backend).await;
    story(&test).await;

    // A witness cosigns the checkpoint the export will use.
    let stored = test.docket.checkpoints.checkpoint_now().await.unwrap();
    let mut signed = SignedCheckpoint::parse(&stored.note).unwrap();
    let line = note::cosign(
        WITNESS,
        &witness_key(0x33),
        signed.note().text(),
        COSIGNED_AT,
    );
    signed.add_cosignature(line).unwrap();
    let tree = test.docket.log.store().tree();
    tree.update_checkpoint_note(stored.tree_size, &signed.encode())
        .await
        .unwrap();
    let exported = export_with(&test, &request(matter_scope())).await.unwrap();
    assert_eq!(exported.bundle.manifest.tree_size, stored.tree_size);
    let out = test.test.dir.path().join("witnessed.json");
    std::fs::write(&out, &exported.bytes).unwrap();

    let witness = witness_verifier_key(WITNESS, 0x33);
    let output = verify_command(&out, &["--json", "--witness-key", &witness]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report = json_of(&output);
    assert_eq!(report["report"]["cosigned_by"], json!([WITNESS]));
    assert_eq!(report["report"]["witnesses_verified"], json!([WITNESS]));

    let absent = witness_verifier_key("other.witness", 0x44);
    let output = verify_command(
        &out,
        &[
            "--json",
            "--witness-key",
            &witness,
            "--witness-key",
            &absent,
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json_of(&output)["failure"]["kind"], "missing_cosignature");
    let output = verify_command(&out, &["--witness-key", "not a key"]);
    assert_eq!(output.status.code(), Some(2));
}

// ---- malformed input ------------------------------------------------------------------------

#[test]
fn malformed_input_is_a_typed_failure_never_a_panic() {
    let bytes = vector_matter_bundle().to_bytes().unwrap();
    let options = VerifyOptions::default();
    assert!(verify_bundle(&bytes, &options).is_ok());

    let nested = "[".repeat(100_000);
    for garbage in [
        &b""[..],
        b"not json at all",
        b"\xff\xfe\x00binary",
        b"[]",
        b"{}",
        b"{\"manifest\": 7}",
        nested.as_bytes(),
    ] {
        assert_eq!(failure(garbage, &options), (FailureKind::Malformed, None));
    }
    for cut in (0..bytes.len() - 2).step_by(37) {
        assert_eq!(
            failure(&bytes[..cut], &options).0,
            FailureKind::Malformed,
            "cut at {cut}"
        );
    }
    let small = VerifyOptions {
        max_bytes: 1024,
        ..VerifyOptions::default()
    };
    assert_eq!(failure(&bytes, &small), (FailureKind::TooLarge, None));

    // Sections of the wrong shape, with digests that match them.
    let mut document: Value = serde_json::from_slice(&bytes).unwrap();
    document["events"] = json!([1, 2, 3]);
    reseal_value(&mut document);
    assert_eq!(
        failure(&serde_json::to_vec(&document).unwrap(), &options),
        (FailureKind::Malformed, None)
    );
    let mut document: Value = serde_json::from_slice(&bytes).unwrap();
    document["manifest"]["signed_by_the_court"] = json!(true);
    reseal_value(&mut document);
    assert_eq!(
        failure(&serde_json::to_vec(&document).unwrap(), &options),
        (FailureKind::Malformed, None)
    );
    let mut document: Value = serde_json::from_slice(&bytes).unwrap();
    document["events"][0]["position"] = json!(-1);
    reseal_value(&mut document);
    assert_eq!(
        failure(&serde_json::to_vec(&document).unwrap(), &options),
        (FailureKind::Malformed, None)
    );
}

#[test]
fn a_damaged_byte_never_panics_and_passes_only_when_the_json_is_unchanged() {
    let bytes = vector_matter_bundle().to_bytes().unwrap();
    let original: Value = serde_json::from_slice(&bytes).unwrap();
    let options = VerifyOptions::default();
    for index in (0..bytes.len()).step_by(13) {
        for flip in [0x01u8, 0x20, 0x80] {
            let mut damaged = bytes.clone();
            damaged[index] ^= flip;
            if verify_bundle(&damaged, &options).is_ok() {
                let read: Value = serde_json::from_slice(&damaged).unwrap();
                assert_eq!(read, original, "byte {index} ^ {flip:#x} passed");
            }
        }
    }
}

/// Recomputes the digests of a bundle held as JSON.
fn reseal_value(document: &mut Value) {
    use docket::transparency::bundle::format::{manifest_digest, section_digest};
    for name in ["checkpoint", "keys", "events", "view"] {
        if let Some(section) = document.get(name).cloned() {
            document["manifest"]["digests"][name] = json!(section_digest(&section).unwrap());
        }
    }
    let own = manifest_digest(&document["manifest"]).unwrap();
    document["manifest"]["digests"]["manifest"] = json!(own);
}

// ---- the committed vectors ------------------------------------------------------------------

const ORIGIN: &str = "docket.log/01938a2c-1d00-7000-8000-00000000abcd";
const WITNESS: &str = "witness.example";
const COSIGNED_AT: u64 = 1_796_212_800;

fn bundle_vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/bundle-v1.json")
}

/// The seven events of the log vectors (tests/vectors/log-v1.json), as stored.
fn vector_log() -> Vec<Event> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/log-v1.json");
    let vectors: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    vectors["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let mut row = row.clone();
            row.as_object_mut().unwrap().remove("hash_input");
            serde_json::from_value(row).unwrap()
        })
        .collect()
}

fn log_keys() -> [LogSigner; 2] {
    [
        LogSigner::from_seed(&[0x11; 32]),
        LogSigner::from_seed(&[0x22; 32]),
    ]
}

fn witness_key(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

fn witness_verifier_key(name: &str, seed: u8) -> String {
    note::verifier_key(
        name,
        note::COSIGNATURE_V1,
        &witness_key(seed).verifying_key(),
    )
}

/// The root of the tree over `leaves` (event hashes).
fn root_of(leaves: &[[u8; 32]]) -> [u8; 32] {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        frontier.push(leaf);
    }
    frontier.root()
}

/// The inclusion proof of `position` among `leaves`, computed from the leaves themselves.
fn proof_of(leaves: &[[u8; 32]], position: u64) -> Vec<[u8; 32]> {
    inclusion_ranges(position - 1, leaves.len() as u64)
        .unwrap()
        .iter()
        .map(|range| root_of(&leaves[range.start as usize..range.end as usize]))
        .collect()
}

/// The checkpoint of the seven events, signed by key 2 (in force after them) and cosigned.
fn vector_checkpoint(log: &[Event]) -> String {
    let leaves: Vec<[u8; 32]> = log.iter().map(|event| event.hash).collect();
    let checkpoint = Checkpoint {
        origin: ORIGIN.into(),
        size: log.len() as u64,
        root: root_of(&leaves),
    };
    let mut signed = SignedCheckpoint::sign(checkpoint, &log_keys()[1]).unwrap();
    let line = note::cosign(
        WITNESS,
        &witness_key(0x33),
        signed.note().text(),
        COSIGNED_AT,
    );
    signed.add_cosignature(line).unwrap();
    signed.encode()
}

fn vector_bundle(scope: Scope, positions: &[u64], with_view: bool) -> Bundle {
    let log = vector_log();
    let leaves: Vec<[u8; 32]> = log.iter().map(|event| event.hash).collect();
    let prove = |event: &Event| ProvenEvent::new(event.clone(), proof_of(&leaves, event.position));
    let events: Vec<&Event> = positions.iter().map(|p| &log[*p as usize - 1]).collect();
    let view = with_view.then(|| View {
        investigator: "user:ines".into(),
        events: events
            .iter()
            .map(|event| ViewEvent {
                position: event.position,
                payload: serde_json::from_str(&event.payload).unwrap(),
            })
            .collect(),
        matter: None,
    });
    let mut bundle = Bundle {
        manifest: Manifest {
            format: "docket-evidence-bundle/1".into(),
            created_at: "2026-12-02T12:00:00.000000Z".into(),
            origin: ORIGIN.into(),
            stream_version: scope
                .matter
                .as_ref()
                .map(|_| events.last().unwrap().stream_version),
            scope,
            events: events.len() as u64,
            tree_size: log.len() as u64,
            export_id: "01938a2c-1d00-7000-8000-00000000e001".into(),
            access_position: Some(1),
            digests: Default::default(),
        },
        checkpoint: vector_checkpoint(&log),
        keys: log
            .iter()
            .filter(|e| e.stream == "system")
            .map(prove)
            .collect(),
        events: events.into_iter().map(prove).collect(),
        view,
    };
    bundle.seal().unwrap();
    bundle
}

/// Matter 2026-0042 of the log vectors: positions 2, 4, 5 and 7, with the rotation at 6 between.
fn vector_matter_bundle() -> Bundle {
    vector_bundle(Scope::matter(MATTER), &[2, 4, 5, 7], true)
}

fn vector_range_bundle() -> Bundle {
    vector_bundle(Scope::range(3, 6), &[3, 4, 5, 6], false)
}

fn trusting(genesis_key: &str, witnesses: &[String]) -> Value {
    json!({"genesis_key": genesis_key, "witness_keys": witnesses})
}

/// Copies of the vector bundles each damaged in one way, with the failure they must produce.
fn tampered_vectors(trusted: &Value) -> Vec<Value> {
    let keys = log_keys();
    let mut cases = Vec::new();
    let mut case =
        |description: &str, bundle: Bundle, options: &Value, kind: &str, position: Option<u64>| {
            cases.push(json!({
                "description": description,
                "options": options,
                "bundle": bundle,
                "failure": {"kind": kind, "position": position},
            }));
        };
    let matter = vector_matter_bundle;
    let change = |mut bundle: Bundle, edit: &dyn Fn(&mut Bundle)| {
        edit(&mut bundle);
        bundle.seal().unwrap();
        bundle
    };

    let mut unsealed = matter();
    unsealed.events[0].payload = unsealed.events[0].payload.replace("Zoë", "Zoe");
    case(
        "a payload edited, the digests left as they were",
        unsealed,
        trusted,
        "digest_mismatch",
        None,
    );
    case(
        "a payload edited (position 2, Zoë to Zoe) and the digests recomputed",
        change(matter(), &|b| {
            b.events[0].payload = b.events[0].payload.replace("Zoë", "Zoe")
        }),
        trusted,
        "hash_mismatch",
        Some(2),
    );
    case(
        "position 4 removed from the middle of the matter, count and digests adjusted",
        change(matter(), &|b| {
            b.events.remove(1);
            b.view.as_mut().unwrap().events.remove(1);
            b.manifest.events -= 1;
        }),
        trusted,
        "stream_version_gap",
        Some(5),
    );
    case(
        "the matter's last event (position 7) removed, count and digests adjusted",
        change(matter(), &|b| {
            b.events.pop();
            b.view.as_mut().unwrap().events.pop();
            b.manifest.events -= 1;
        }),
        trusted,
        "scope_incomplete",
        None,
    );
    case(
        "one bit of a sibling hash in position 5's proof flipped",
        change(matter(), &|b| b.events[2].inclusion_proof[0].0[0] ^= 1),
        trusted,
        "bad_inclusion_proof",
        Some(5),
    );
    case(
        "one byte of the log's signature on the checkpoint changed",
        change(matter(), &|b| b.checkpoint = flip_signature(&b.checkpoint)),
        trusted,
        "bad_checkpoint_signature",
        None,
    );
    case(
        "the rotation at 6 rewritten to hand over to a forged key, re-hashed and signed by it",
        change(matter(), &|b| forge_rotation(&mut b.keys[1])),
        trusted,
        "bad_signature",
        Some(6),
    );
    case(
        "the view's payload of position 4 changed",
        change(matter(), &|b| {
            b.view.as_mut().unwrap().events[1].payload = json!({"hours": 15})
        }),
        trusted,
        "view_mismatch",
        Some(4),
    );
    case(
        "verified with another genesis key pinned",
        matter(),
        &trusting(
            keys[1].id().as_str(),
            &[witness_verifier_key(WITNESS, 0x33)],
        ),
        "untrusted_genesis_key",
        Some(1),
    );
    case(
        "verified requiring a witness that did not cosign",
        matter(),
        &trusting(
            keys[0].id().as_str(),
            &[witness_verifier_key("other.witness", 0x44)],
        ),
        "missing_cosignature",
        None,
    );
    case(
        "position 4 removed from the range 3-6",
        change(vector_range_bundle(), &|b| {
            b.events.remove(1);
            b.manifest.events -= 1;
        }),
        trusted,
        "position_gap",
        Some(4),
    );
    case(
        "the range's manifest extended to 7, which the events do not reach",
        change(vector_range_bundle(), &|b| {
            b.manifest.scope = Scope::range(3, 7)
        }),
        trusted,
        "scope_incomplete",
        Some(7),
    );
    case(
        "a manifest naming a later format",
        change(matter(), &|b| {
            b.manifest.format = "docket-evidence-bundle/2".into()
        }),
        trusted,
        "unsupported_format",
        None,
    );
    cases
}

fn options_of(value: &Value) -> VerifyOptions {
    VerifyOptions {
        genesis_key: value["genesis_key"].as_str().map(str::to_owned),
        witness_keys: value["witness_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| WitnessKey::parse(key.as_str().unwrap()).unwrap())
            .collect(),
        ..VerifyOptions::default()
    }
}

#[test]
fn the_committed_bundle_vectors_match_the_format_and_verify() {
    let keys = log_keys();
    let trusted = trusting(
        keys[0].id().as_str(),
        &[witness_verifier_key(WITNESS, 0x33)],
    );
    let intact = |description: &str, bundle: Bundle, first: u64, last: u64| {
        json!({
            "description": description,
            "options": trusted,
            "bundle": bundle,
            "expect": {
                "events": bundle.events.len(), "first_position": first, "last_position": last,
                "tree_size": 7, "key_rotations": 1, "cosigned_by": [WITNESS],
            },
        })
    };
    let document = json!({
        "format": "docket-evidence-bundle/1",
        "description": "Evidence bundles over the seven-event log of tests/vectors/log-v1.json: \
                        matter 2026-0042 (positions 2, 4, 5, 7, with the key rotation at 6 \
                        between them, and a view) and positions 3-6, proven against a checkpoint \
                        of size 7 signed by key 2 and cosigned by a witness; then damaged copies \
                        with the failure each must produce. Seeds are test-only.",
        "keys": keys.iter().zip([0x11u8, 0x22]).map(|(key, seed)| json!({
            "seed": hex::encode([seed; 32]),
            "public_key": key.public_key_hex(),
            "key_id": key.id().to_string(),
        })).collect::<Vec<_>>(),
        "witness": {
            "name": WITNESS,
            "seed": hex::encode([0x33u8; 32]),
            "verifier_key": witness_verifier_key(WITNESS, 0x33),
        },
        "bundles": [
            intact("matter 2026-0042 with a view", vector_matter_bundle(), 2, 7),
            intact("positions 3-6", vector_range_bundle(), 3, 6),
        ],
        "tampered": tampered_vectors(&trusted),
    });

    let path = bundle_vectors_path();
    if std::env::var_os("DOCKET_REGENERATE_VECTORS").is_some() {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&document).unwrap() + "\n",
        )
        .unwrap();
    }
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        committed, document,
        "the bundle format changed; regenerate the vectors deliberately"
    );

    for case in committed["bundles"].as_array().unwrap() {
        let bytes = serde_json::to_vec(&case["bundle"]).unwrap();
        let report = verify_bundle(&bytes, &options_of(&case["options"]))
            .unwrap_or_else(|failure| panic!("{}: {failure}", case["description"]));
        let expect = &case["expect"];
        assert_eq!(json!(report.events), expect["events"]);
        assert_eq!(json!(report.first_position), expect["first_position"]);
        assert_eq!(json!(report.last_position), expect["last_position"]);
        assert_eq!(json!(report.tree_size), expect["tree_size"]);
        assert_eq!(json!(report.key_rotations), expect["key_rotations"]);
        assert_eq!(json!(report.cosigned_by), expect["cosigned_by"]);
    }
    for case in committed["tampered"].as_array().unwrap() {
        let bytes = serde_json::to_vec(&case["bundle"]).unwrap();
        let failure = verify_bundle(&bytes, &options_of(&case["options"]))
            .expect_err(case["description"].as_str().unwrap());
        assert_eq!(
            json!({"kind": failure.kind, "position": failure.position}),
            case["failure"],
            "{}",
            case["description"]
        );
    }
}
