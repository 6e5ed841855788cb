//! Tamper evidence against the operator: the database is rebuilt the way a dishonest operator
//! would (the signing keys copied from the data directory, events re-planned and re-signed by
//! the real planner), and `docket verify --against` the checkpoints saved earlier finds it and
//! names where the log was changed. Also the checkpointer's refusal to sign over a changed tree,
//! checkpoints across a key rotation, and the witness.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use docket::log::checkpoint::{Checkpoint, SignedCheckpoint};
use docket::log::note::{self, ED25519};
use docket::log::{Actor, Event, EventDraft, StreamId};
use docket::store::plan::{BatchPlan, StreamTip};
use docket::store::{
    AppendRequest, EventLog, LogHead, StoredCheckpoint, WriteOutcome, open_existing_store,
    open_store,
};
use docket::transparency::keys::KeyHistory;
use docket::transparency::{self, CheckpointPolicy, Checkpointer, SigningError};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::on_both_backends;
use crate::support::{Backend, TestLog, one_event};

on_both_backends!(
    a_log_cut_short_and_re_signed_is_found_where_it_was_cut,
    a_log_cut_and_regrown_past_a_checkpoint_is_bracketed,
    a_rewritten_old_event_verifies_alone_but_is_named_by_the_saved_checkpoints,
    a_fork_is_found_with_its_fork_point_and_same_size_checkpoints_prove_it,
    the_checkpointer_refuses_to_sign_over_a_tree_that_no_longer_matches,
    plain_verify_checks_the_latest_stored_checkpoint_against_the_events,
    checkpoints_verify_and_stay_consistent_across_a_key_rotation,
    a_witness_cosigns_a_growing_log_and_refuses_a_rolled_back_or_forked_one,
    concurrent_witness_runs_on_one_state_directory_cosign_once,
);

/// Appends `count` case events, numbered from `first`, under `label`.
async fn append_events(log: &EventLog, first: usize, count: usize, label: &str) {
    for index in first..first + count {
        let payload = json!({ "title": format!("{label} {index}"), "index": index });
        log.append(one_event(
            &format!("matter:{}", index % 3),
            "matter.noted",
            payload,
        ))
        .await
        .unwrap();
    }
}

/// A log of `events` events in all (genesis included) and its checkpointer.
async fn sample(test: &TestLog, events: usize) -> (EventLog, Arc<Checkpointer>) {
    let log = test.open().await;
    append_events(&log, 0, events - 1, "Smith v. Jones").await;
    let checkpoints = checkpointer(&log).await;
    (log, checkpoints)
}

async fn checkpointer(log: &EventLog) -> Arc<Checkpointer> {
    transparency::open(log, None, CheckpointPolicy::default())
        .await
        .unwrap()
}

/// Signs a checkpoint at each size, smallest first.
async fn sign(
    checkpoints: &Checkpointer,
    sizes: impl IntoIterator<Item = u64>,
) -> Vec<StoredCheckpoint> {
    checkpoints.tree().catch_up().await.unwrap();
    let mut signed = Vec::new();
    for size in sizes {
        signed.push(checkpoints.sign_at(size).await.unwrap());
    }
    signed
}

/// The investigator's copies of checkpoints, kept where the operator cannot reach them.
struct Saved {
    dir: TempDir,
}

impl Saved {
    fn new() -> Self {
        Saved {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn keep(&self, checkpoints: &[StoredCheckpoint]) -> Vec<PathBuf> {
        checkpoints
            .iter()
            .map(|c| self.keep_note(&format!("{}", c.tree_size), &c.note))
            .collect()
    }

    fn keep_note(&self, name: &str, note: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.checkpoint"));
        std::fs::write(&path, note).unwrap();
        path
    }

    fn path(&self, size: u64) -> PathBuf {
        self.dir.path().join(format!("{size}.checkpoint"))
    }
}

/// A new database for the same log, as its operator could make one: the key files copied from
/// the data directory and the first `keep` events copied row for row, so the forgery shares the
/// real log's genesis, id and origin.
async fn forge(original: &TestLog, keep: u64) -> TestLog {
    let forged = TestLog::new(original.backend).await;
    let keys = forged.dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(original.dir.path().join("keys")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), keys.join(entry.file_name())).unwrap();
    }

    let source = open_existing_store(&original.options()).await.unwrap();
    let events = source
        .read_page(1, u32::try_from(keep).unwrap())
        .await
        .unwrap();
    assert_eq!(events.len() as u64, keep);
    let mut stream_tips = HashMap::new();
    for event in &events {
        let tip = StreamTip {
            version: event.stream_version,
            hash: event.hash,
        };
        stream_tips.insert(event.stream.clone(), tip);
    }
    let key_id = KeyHistory::from_events(&events)
        .in_force_after(keep)
        .map(|key| key.key_id.clone());
    let head = LogHead {
        position: keep,
        hash: events.last().map(|event| event.hash),
        key_id,
    };
    let plan = BatchPlan {
        events,
        stream_tips,
        head: Some(head),
        ..BatchPlan::default()
    };
    let target = open_store(&forged.options()).await.unwrap();
    let empty = LogHead {
        position: 0,
        hash: None,
        key_id: None,
    };
    assert_eq!(
        target.write_planned(&empty, &plan).await.unwrap(),
        WriteOutcome::Committed
    );
    forged
}

/// Appends copies of `events` (stream, type, payload, actor, time): re-signed by the key in
/// force, with new ids, hashes and links.
async fn reappend(log: &EventLog, events: &[Event]) {
    for event in events {
        let mut draft = EventDraft::new(
            &event.event_type,
            serde_json::from_str(&event.payload).unwrap(),
        );
        draft.occurred_at = Some(event.occurred_at.clone());
        let request = AppendRequest::new(
            StreamId::parse(&event.stream).unwrap(),
            Actor::parse(&event.actor).unwrap(),
            vec![draft],
        );
        log.append(request).await.unwrap();
    }
}

async fn events(test: &TestLog, from: u64, to: u64) -> Vec<Event> {
    let store = open_existing_store(&test.options()).await.unwrap();
    store
        .read_page(from, u32::try_from(to - from + 1).unwrap())
        .await
        .unwrap()
}

/// `docket verify --json [--against PATH]...` and its report.
fn verify(test: &TestLog, against: &[&Path]) -> (Output, Value) {
    let mut command = test.docket_command();
    command.args(["verify", "--json"]);
    for path in against {
        command.arg("--against").arg(path);
    }
    let output = command.output().unwrap();
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("no JSON report: {output:?}"));
    (output, report)
}

fn verify_text(test: &TestLog, against: &[&Path]) -> (Option<i32>, String) {
    let mut command = test.docket_command();
    command.arg("verify");
    for path in against {
        command.arg("--against").arg(path);
    }
    let output = command.output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn statuses(report: &Value) -> Vec<(u64, String)> {
    report["against"]["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| {
            (
                finding["size"].as_u64().unwrap(),
                finding["tree"]["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn a_log_cut_short_and_re_signed_is_found_where_it_was_cut(backend: Backend) {
    let test = TestLog::new(backend).await;
    let (_log, checkpoints) = sample(&test, 10).await;
    let saved = Saved::new();
    saved.keep(&sign(&checkpoints, [4, 7, 8, 10]).await);

    // The operator drops events 8.. and re-signs a checkpoint of what is left.
    let forged = forge(&test, 7).await;
    let forged_log = forged.open().await;
    checkpointer(&forged_log)
        .await
        .checkpoint_now()
        .await
        .unwrap();
    let (output, report) = verify(&forged, &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "the forgery verifies on its own"
    );
    assert_eq!(report["checkpoint"]["status"], "matches");

    // Against the two outer checkpoints, the cut lies between them.
    let (output, report) = verify(&forged, &[&saved.path(4), &saved.path(10)]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(report["status"], "broken");
    assert_eq!(report["against"]["status"], "broken");
    assert_eq!(
        statuses(&report),
        [(4, "matches".into()), (10, "log_too_short".into())]
    );
    assert_eq!(report["against"]["checkpoints"][1]["tree"]["log_size"], 7);
    let divergence = &report["against"]["divergence"];
    assert_eq!(
        (
            divergence["matches_up_to"].as_u64(),
            divergence["differs_by"].as_u64()
        ),
        (Some(4), Some(8))
    );
    assert_eq!(divergence["first_altered"], Value::Null);

    // Against all of them, the first event removed is named.
    let (code, text) = verify_text(&forged, &[saved.dir.path()]);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("LOG TOO SHORT: the log has 7 events; events 8..=10 are gone"),
        "{text}"
    );
    assert!(
        text.contains("DIVERGENCE first altered event: position 8"),
        "{text}"
    );
    let (_, report) = verify(&forged, &[saved.dir.path()]);
    assert_eq!(report["against"]["divergence"]["first_altered"], 8);

    // The real log holds every one of them.
    let (output, report) = verify(&test, &[saved.dir.path()]);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(report["against"]["status"], "holds");
}

async fn a_log_cut_and_regrown_past_a_checkpoint_is_bracketed(backend: Backend) {
    let test = TestLog::new(backend).await;
    let (_log, checkpoints) = sample(&test, 10).await;
    let saved = Saved::new();
    saved.keep(&sign(&checkpoints, [5, 10]).await);

    // Cut after event 6, then grown past 10 with other events.
    let forged = forge(&test, 6).await;
    let forged_log = forged.open().await;
    append_events(&forged_log, 100, 6, "Other v. Else").await;
    checkpointer(&forged_log)
        .await
        .checkpoint_now()
        .await
        .unwrap();
    assert_eq!(verify(&forged, &[]).0.status.code(), Some(0));

    let (output, report) = verify(&forged, &[saved.dir.path()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        statuses(&report),
        [(5, "matches".into()), (10, "root_differs".into())]
    );
    let divergence = &report["against"]["divergence"];
    assert_eq!(divergence["matches_up_to"], 5);
    assert_eq!(divergence["differs_by"], 10);
    let (_, text) = verify_text(&forged, &[saved.dir.path()]);
    assert!(text.contains("size 10 DOES NOT MATCH"), "{text}");
    assert!(
        text.contains("the log first differs at a position in 6..=10"),
        "{text}"
    );
}

async fn a_rewritten_old_event_verifies_alone_but_is_named_by_the_saved_checkpoints(
    backend: Backend,
) {
    let test = TestLog::new(backend).await;
    let (log, checkpoints) = sample(&test, 12).await;
    let saved = Saved::new();
    saved.keep(&sign(&checkpoints, 2..=12).await);
    let genesis_key = log.head().await.unwrap().key_id.unwrap();

    // Event 7 rewritten; 8..12 re-signed after it with the same key.
    let later = events(&test, 8, 12).await;
    let forged = forge(&test, 6).await;
    let forged_log = forged.open().await;
    let rewritten = json!({ "title": "Smith v. Jones 5", "index": 5, "settled": true });
    forged_log
        .append(one_event("matter:2", "matter.noted", rewritten))
        .await
        .unwrap();
    reappend(&forged_log, &later).await;
    let forged_checkpoints = checkpointer(&forged_log).await;
    sign(&forged_checkpoints, [9, 12]).await;

    // On its own the forgery is a perfect log, even with the real genesis key pinned.
    let pinned = forged
        .docket_command()
        .args(["verify", "--json", "--genesis-key", &genesis_key])
        .output()
        .unwrap();
    assert_eq!(pinned.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&pinned.stdout).unwrap();
    assert_eq!(report["summary"]["events"], 12);
    assert_eq!(report["checkpoint"]["status"], "matches");
    assert_eq!(report["checkpoint"]["size"], 12);

    // Checkpoints at every size name the rewritten event.
    let (output, report) = verify(&forged, &[saved.dir.path()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        report["summary"]["events"], 12,
        "the chain itself is intact"
    );
    assert_eq!(report["against"]["divergence"]["first_altered"], 7);
    assert_eq!(report["against"]["divergence"]["matches_up_to"], 6);
    let (_, text) = verify_text(&forged, &[saved.dir.path()]);
    assert!(
        text.contains("DIVERGENCE first altered event: position 7"),
        "{text}"
    );

    // Two far apart only bracket it; one alone cannot place it at all.
    let (_, report) = verify(&forged, &[&saved.path(3), &saved.path(9)]);
    let divergence = &report["against"]["divergence"];
    assert_eq!(
        (
            divergence["matches_up_to"].as_u64(),
            divergence["differs_by"].as_u64()
        ),
        (Some(3), Some(9))
    );
    let (code, text) = verify_text(&forged, &[&saved.path(12)]);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("a position in 1..=12; a root cannot say which"),
        "{text}"
    );
}

async fn a_fork_is_found_with_its_fork_point_and_same_size_checkpoints_prove_it(backend: Backend) {
    let test = TestLog::new(backend).await;
    let (_log, checkpoints) = sample(&test, 8).await;
    let ours = Saved::new();
    ours.keep(&sign(&checkpoints, [4, 8]).await);

    // A second history sharing the first five events, signed with the same key.
    let fork = forge(&test, 5).await;
    let fork_log = fork.open().await;
    append_events(&fork_log, 200, 4, "Forked v. Shown").await;
    let theirs = Saved::new();
    let fork_checkpoints = checkpointer(&fork_log).await;
    theirs.keep(&sign(&fork_checkpoints, [6, 8]).await);

    // Each log against the other's checkpoints: the fork point lies after 4, by 8 at the latest.
    let (output, report) = verify(&fork, &[ours.dir.path()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        statuses(&report),
        [(4, "matches".into()), (8, "root_differs".into())]
    );
    let divergence = &report["against"]["divergence"];
    assert_eq!(
        (
            divergence["matches_up_to"].as_u64(),
            divergence["differs_by"].as_u64()
        ),
        (Some(4), Some(8))
    );
    let (_, report) = verify(&test, &[&ours.path(4), &theirs.path(6)]);
    let divergence = &report["against"]["divergence"];
    assert_eq!(
        (
            divergence["matches_up_to"].as_u64(),
            divergence["differs_by"].as_u64()
        ),
        (Some(4), Some(6))
    );

    // Two signed checkpoints of size 8 with different roots prove the fork against either log.
    for log in [&test, &fork] {
        let (output, report) = verify(log, &[&ours.path(8), &theirs.path(8)]);
        assert_eq!(output.status.code(), Some(1));
        let forks = report["against"]["forks"].as_array().unwrap();
        assert!(
            forks
                .iter()
                .any(|f| f["kind"] == "same_size" && f["size"] == 8),
            "{report}"
        );
    }
    let (_, text) = verify_text(&test, &[&ours.path(8), &theirs.path(8)]);
    assert!(
        text.contains("FORK two checkpoints of docket.log/"),
        "{text}"
    );
    assert!(
        text.contains("at size 8, both signed by the log, have different roots"),
        "{text}"
    );

    // A checkpoint the log matches and a smaller one its prefix contradicts cannot both hold.
    let (_, report) = verify(&test, &[&theirs.path(6), &ours.path(8)]);
    let forks = report["against"]["forks"].as_array().unwrap();
    assert!(
        forks
            .iter()
            .any(|f| f["kind"] == "inconsistent" && f["smaller"] == 6 && f["larger"] == 8),
        "{report}"
    );
}

async fn the_checkpointer_refuses_to_sign_over_a_tree_that_no_longer_matches(backend: Backend) {
    let test = TestLog::new(backend).await;
    let (log, checkpoints) = sample(&test, 6).await;
    assert_eq!(checkpoints.checkpoint_now().await.unwrap().tree_size, 6);

    // The subtree over events 1..=4 is a peak of the tree of 6: rewrite it.
    let forged = test.bytes_literal(&[0x5a; 32]);
    test.execute(&[&format!(
        "UPDATE tree_nodes SET hash = {forged} WHERE level = 2 AND node_index = 0"
    )])
    .await;
    append_events(&log, 10, 2, "Later").await;
    for attempt in [
        checkpoints.checkpoint_now().await,
        checkpoints.sign_at(8).await,
    ] {
        assert!(
            matches!(attempt, Err(SigningError::Inconsistent { size: 6 })),
            "{attempt:?}"
        );
    }
    assert_eq!(checkpoints.latest().await.unwrap().unwrap().tree_size, 6);

    // `docket verify` recomputes roots from the events, so the stored checkpoint still holds.
    let (output, report) = verify(&test, &[]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(report["checkpoint"]["status"], "matches");
}

async fn plain_verify_checks_the_latest_stored_checkpoint_against_the_events(backend: Backend) {
    let test = TestLog::new(backend).await;
    let (log, checkpoints) = sample(&test, 6).await;
    let (output, report) = verify(&test, &[]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(report["checkpoint"]["status"], "absent");
    assert!(
        verify_text(&test, &[])
            .1
            .contains("checkpoint: none signed yet")
    );

    let signed = checkpoints.checkpoint_now().await.unwrap();
    let (output, report) = verify(&test, &[]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(report["checkpoint"]["status"], "matches");
    assert_eq!(report["checkpoint"]["signature"]["key_id"], signed.key_id);
    let text = verify_text(&test, &[]).1;
    assert!(
        text.contains("checkpoint: size 6 matches the log"),
        "{text}"
    );

    // A checkpoint stored with a wrong root, signed by the real key, is caught.
    append_events(&log, 10, 2, "Later").await;
    let signer = log.keyring().get(&signed.key_id).unwrap();
    let origin = checkpoints.origin().to_owned();
    let wrong = SignedCheckpoint::sign(
        Checkpoint {
            origin,
            size: 8,
            root: [7; 32],
        },
        &signer,
    )
    .unwrap();
    let stored = StoredCheckpoint {
        tree_size: 8,
        root: [7; 32],
        key_id: signed.key_id.clone(),
        note: wrong.encode(),
        signed_at: signed.signed_at.clone(),
    };
    assert!(log.store().tree().insert_checkpoint(&stored).await.unwrap());
    let (output, report) = verify(&test, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(report["status"], "broken");
    assert_eq!(report["checkpoint"]["status"], "broken");
    assert_eq!(report["checkpoint"]["tree"]["status"], "root_differs");
    let (code, text) = verify_text(&test, &[]);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("BROKEN checkpoint: size 8 DOES NOT MATCH"),
        "{text}"
    );
}

async fn checkpoints_verify_and_stay_consistent_across_a_key_rotation(backend: Backend) {
    let test = TestLog::new(backend).await;
    let (log, checkpoints) = sample(&test, 5).await;
    let before = checkpoints.checkpoint_now().await.unwrap();
    let rotation = log.rotate_key().await.unwrap();
    append_events(&log, 10, 3, "After").await;
    let at_rotation = sign(&checkpoints, [rotation.position]).await.remove(0);
    let after = checkpoints.checkpoint_now().await.unwrap();
    assert_eq!(before.key_id, rotation.previous_key_id);
    assert_eq!(
        at_rotation.key_id, rotation.next_key_id,
        "the new key is in force at its own position"
    );
    assert_eq!(after.key_id, rotation.next_key_id);

    let saved = Saved::new();
    saved.keep(&[before.clone(), at_rotation, after.clone()]);
    let (output, report) = verify(&test, &[saved.dir.path()]);
    assert_eq!(output.status.code(), Some(0), "{report}");
    let keys: Vec<&str> = report["against"]["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["signature"]["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            &rotation.previous_key_id,
            &rotation.next_key_id,
            &rotation.next_key_id
        ]
    );

    let proof = checkpoints
        .tree()
        .consistency_proof(before.tree_size, after.tree_size)
        .await
        .unwrap();
    assert!(proof.verify(&before.root, &after.root));
    assert!(!proof.verify(&after.root, &before.root));
}

/// `docket witness ARGS...` on this log's data.
fn witness(test: &TestLog, args: &[&str]) -> Output {
    test.docket_command()
        .arg("witness")
        .args(args)
        .output()
        .unwrap()
}

/// Every file of a state directory and its contents.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

async fn a_witness_cosigns_a_growing_log_and_refuses_a_rolled_back_or_forked_one(backend: Backend) {
    let test = TestLog::new(backend).await;
    let (log, checkpoints) = sample(&test, 6).await;
    checkpoints.checkpoint_now().await.unwrap();
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("witness");
    let state_arg = state.to_str().unwrap();

    let init = witness(
        &test,
        &["init", "--state", state_arg, "--name", "witness.example"],
    );
    assert!(init.status.success(), "{init:?}");
    let (name, _, witness_key) =
        note::parse_verifier_key(String::from_utf8_lossy(&init.stdout).trim()).unwrap();
    assert_eq!(name, "witness.example");
    let mode = std::fs::metadata(state.join("witness.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // First sight, then growth checked by a consistency proof.
    let first = witness(
        &test,
        &["cosign", "--state", state_arg, "--log-key-from-log"],
    );
    assert!(first.status.success(), "{first:?}");
    assert!(String::from_utf8_lossy(&first.stdout).contains("cosigned"));
    append_events(&log, 10, 4, "Later").await;
    let grown = checkpoints.checkpoint_now().await.unwrap();
    let log_vkey = note::verifier_key(checkpoints.origin(), ED25519, &signer_key(&log, &grown));
    let wrong = witness(
        &test,
        &[
            "cosign",
            "--state",
            state_arg,
            "--log-vkey",
            &note::verifier_key(checkpoints.origin(), ED25519, &witness_key),
        ],
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("not signed by the log's key"));
    let second = witness(
        &test,
        &["cosign", "--state", state_arg, "--log-vkey", &log_vkey],
    );
    assert!(second.status.success(), "{second:?}");
    assert!(String::from_utf8_lossy(&second.stdout).contains("consistent with checkpoint 6"));

    // The log's checkpoints now carry the cosignature.
    for size in [6, 10] {
        let stored = log.store().tree().checkpoint(size).await.unwrap().unwrap();
        let parsed = SignedCheckpoint::parse(&stored.note).unwrap();
        assert!(
            parsed
                .cosigned_at("witness.example", &witness_key)
                .is_some(),
            "size {size}"
        );
    }

    // A log rolled back to 8 events, re-signed, is refused and nothing changes.
    let before = snapshot(&state);
    let rolled_back = forge(&test, 8).await;
    let rolled_back_log = rolled_back.open().await;
    checkpointer(&rolled_back_log)
        .await
        .checkpoint_now()
        .await
        .unwrap();
    let refused = witness(
        &rolled_back,
        &["cosign", "--state", state_arg, "--log-key-from-log"],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("rollback"),
        "{refused:?}"
    );
    assert_eq!(snapshot(&state), before);
    let stored = rolled_back_log
        .store()
        .tree()
        .checkpoint(8)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        SignedCheckpoint::parse(&stored.note)
            .unwrap()
            .signer_names()
            .len(),
        1
    );

    // So is a longer log that does not extend what the witness saw.
    let forked = forge(&test, 8).await;
    let forked_log = forked.open().await;
    append_events(&forked_log, 300, 4, "Forked").await;
    checkpointer(&forked_log)
        .await
        .checkpoint_now()
        .await
        .unwrap();
    let refused = witness(
        &forked,
        &["cosign", "--state", state_arg, "--log-key-from-log"],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not consistent with checkpoint 10"));
    assert_eq!(snapshot(&state), before);

    // The witness's state is evidence for `verify --against`.
    let (output, report) = verify(&test, &[&state]);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(
        statuses(&report),
        [(6, "matches".into()), (10, "matches".into())]
    );
    let (output, report) = verify(&forked, &[&state]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(report["against"]["divergence"]["differs_by"], 10);
}

fn signer_key(log: &EventLog, checkpoint: &StoredCheckpoint) -> ed25519_dalek::VerifyingKey {
    log.keyring()
        .get(&checkpoint.key_id)
        .unwrap()
        .verifying_key()
}

async fn concurrent_witness_runs_on_one_state_directory_cosign_once(backend: Backend) {
    let test = TestLog::new(backend).await;
    let (log, checkpoints) = sample(&test, 4).await;
    checkpoints.checkpoint_now().await.unwrap();
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("witness");
    let state_arg = state.to_str().unwrap().to_owned();
    assert!(
        witness(&test, &["init", "--state", &state_arg, "--name", "w"])
            .status
            .success()
    );

    let runs: Vec<_> = (0..4)
        .map(|_| {
            test.docket_command()
                .args([
                    "witness",
                    "cosign",
                    "--state",
                    &state_arg,
                    "--log-key-from-log",
                ])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut first_sights = 0;
    for run in runs {
        let output = run.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
        if String::from_utf8_lossy(&output.stdout).contains("the first this witness has seen") {
            first_sights += 1;
        }
    }
    assert_eq!(
        first_sights, 1,
        "each run saw the state the one before it left"
    );
    let stored = log.store().tree().checkpoint(4).await.unwrap().unwrap();
    let names = SignedCheckpoint::parse(&stored.note)
        .unwrap()
        .signer_names()
        .len();
    assert_eq!(names, 2, "the log's signature and one cosignature");
    let files: Vec<PathBuf> = snapshot(&state).into_iter().map(|(path, _)| path).collect();
    let saved: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "checkpoint"))
        .collect();
    assert_eq!(saved.len(), 1, "{files:?}");
}
