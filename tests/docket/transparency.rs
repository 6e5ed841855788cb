//! The Merkle tree over the log and its signed checkpoints: built incrementally from the events,
//! proofs for every position and size that verify against independently computed roots, several
//! writers on one database, and checkpoints signed by the key in force at their size.

use std::sync::Arc;
use std::time::Duration;

use docket::log::checkpoint::SignedCheckpoint;
use docket::log::merkle::{Frontier, leaf_hash, verify_consistency, verify_inclusion};
use docket::store::EventLog;
use docket::transparency::keys::KeyHistory;
use docket::transparency::{self, CheckpointPolicy, LogTree, SigningError, TreeError};
use futures::TryStreamExt;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, TestLog, one_event, sample_log};

on_both_backends!(
    the_tree_grows_with_the_log_and_its_roots_match_the_leaves,
    every_inclusion_and_consistency_proof_verifies,
    proofs_beyond_the_tree_or_out_of_order_are_refused,
    two_writers_extend_one_tree_without_gaps_or_forks,
    a_tree_is_never_grown_over_a_broken_chain,
    checkpoints_are_signed_by_the_key_in_force_at_their_size,
    signing_again_at_the_same_size_returns_the_stored_checkpoint,
    the_checkpointer_signs_by_its_policy_in_the_background,
);

/// The root of the first `size` events, straight from their hashes.
async fn independent_root(log: &EventLog, size: u64) -> [u8; 32] {
    let pages: Vec<Vec<docket::log::Event>> = log.pages_from(1).try_collect().await.unwrap();
    let mut frontier = Frontier::new();
    for event in pages.into_iter().flatten().take(size as usize) {
        frontier.push(&event.hash);
    }
    frontier.root()
}

async fn append_some(log: &EventLog, count: usize) {
    for index in 0..count {
        let payload = json!({ "title": format!("Estate of Hale {index}") });
        log.append(one_event("matter:9", "matter.noted", payload))
            .await
            .unwrap();
    }
}

async fn the_tree_grows_with_the_log_and_its_roots_match_the_leaves(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let tree = LogTree::new(log.store().clone());
    assert_eq!(tree.size().await.unwrap(), 0);

    // Grown in uneven steps, the stored tree always has the root computed from the leaves.
    let mut expected_size = 1;
    for step in [0usize, 1, 6, 25, 100] {
        append_some(&log, step).await;
        expected_size += step as u64;
        assert_eq!(tree.catch_up().await.unwrap(), expected_size);
        for size in [1, expected_size / 2, expected_size] {
            if size == 0 {
                continue;
            }
            assert_eq!(
                tree.root(size).await.unwrap(),
                independent_root(&log, size).await,
                "root at size {size}"
            );
        }
    }

    // A fresh handle (a restarted process) picks up where the stored tree ends.
    append_some(&log, 3).await;
    let reopened = LogTree::new(log.store().clone());
    assert_eq!(reopened.catch_up().await.unwrap(), expected_size + 3);
    assert_eq!(
        reopened.root(expected_size + 3).await.unwrap(),
        independent_root(&log, expected_size + 3).await
    );
}

async fn every_inclusion_and_consistency_proof_verifies(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    sample_log(&log, 40).await;
    let tree = LogTree::new(log.store().clone());
    let size = tree.catch_up().await.unwrap();
    assert_eq!(size, 42, "genesis, a rotation and 40 events");

    let events: Vec<Vec<docket::log::Event>> = log.pages_from(1).try_collect().await.unwrap();
    let events: Vec<_> = events.into_iter().flatten().collect();
    for tree_size in [1, 2, 7, 16, 33, size] {
        let root = independent_root(&log, tree_size).await;
        for position in 1..=tree_size {
            let proof = tree.inclusion_proof(position, tree_size).await.unwrap();
            assert_eq!(proof.event_hash, events[position as usize - 1].hash);
            assert!(proof.verify(&root), "position {position} in {tree_size}");
            verify_inclusion(
                position - 1,
                tree_size,
                &leaf_hash(&proof.event_hash),
                &proof.path,
                &root,
            )
            .unwrap();
        }
        for first in 1..=tree_size {
            let proof = tree.consistency_proof(first, tree_size).await.unwrap();
            let first_root = independent_root(&log, first).await;
            verify_consistency(first, tree_size, &first_root, &root, &proof.path).unwrap();
            assert!(proof.verify(&first_root, &root));
        }
    }

    // A proof does not verify against another size's root.
    let proof = tree.inclusion_proof(5, 20).await.unwrap();
    assert!(!proof.verify(&independent_root(&log, 21).await));
}

async fn proofs_beyond_the_tree_or_out_of_order_are_refused(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    append_some(&log, 4).await;
    let tree = LogTree::new(log.store().clone());
    assert_eq!(tree.catch_up().await.unwrap(), 5);
    append_some(&log, 2).await;

    assert!(matches!(
        tree.inclusion_proof(6, 6).await,
        Err(TreeError::BeyondTree {
            size: 5,
            requested: 6
        })
    ));
    assert!(matches!(
        tree.inclusion_proof(0, 5).await,
        Err(TreeError::PositionOutOfRange { .. })
    ));
    assert!(matches!(
        tree.inclusion_proof(5, 4).await,
        Err(TreeError::PositionOutOfRange { .. })
    ));
    assert!(matches!(
        tree.consistency_proof(4, 3).await,
        Err(TreeError::SizesOutOfOrder {
            first: 4,
            second: 3
        })
    ));
    assert!(matches!(
        tree.root(9).await,
        Err(TreeError::BeyondTree { .. })
    ));
}

async fn two_writers_extend_one_tree_without_gaps_or_forks(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let store = log.store().clone();
    let first = Arc::new(LogTree::new(store.clone()));
    let second = Arc::new(LogTree::new(store.clone()));

    // Both follow the log while it grows, as two processes on one database would.
    for _ in 0..5 {
        append_some(&log, 30).await;
        let (a, b) = tokio::join!(first.catch_up(), second.catch_up());
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a, b);
    }
    let size = first.size().await.unwrap();
    assert_eq!(size, 151);
    let root = independent_root(&log, size).await;
    assert_eq!(first.root(size).await.unwrap(), root);
    assert_eq!(second.root(size).await.unwrap(), root);
    for position in [1, 75, 151] {
        assert!(
            second
                .inclusion_proof(position, size)
                .await
                .unwrap()
                .verify(&root)
        );
    }
}

async fn a_tree_is_never_grown_over_a_broken_chain(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    append_some(&log, 5).await;
    let tree = LogTree::new(log.store().clone());
    assert_eq!(tree.catch_up().await.unwrap(), 6);
    append_some(&log, 3).await;

    // Someone with the database rewrites the link of position 8.
    test.drop_triggers().await;
    let forged = test.bytes_literal(&[7u8; 32]);
    test.execute(&[&format!(
        "UPDATE events SET prev_hash = {forged} WHERE position = 8"
    )])
    .await;
    let fresh = LogTree::new(log.store().clone());
    assert!(matches!(
        fresh.catch_up().await,
        Err(TreeError::BrokenChain { position: 8 })
    ));
    assert_eq!(
        fresh.size().await.unwrap(),
        6,
        "nothing past the break was stored"
    );
}

async fn checkpoints_are_signed_by_the_key_in_force_at_their_size(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let checkpoints = transparency::open(
        &log,
        Some("firm.example/docket"),
        CheckpointPolicy::default(),
    )
    .await
    .unwrap();
    assert!(matches!(
        checkpoints.sign_at(0).await,
        Err(SigningError::EmptyLog)
    ));

    append_some(&log, 3).await;
    let before = checkpoints.checkpoint_now().await.unwrap();
    assert_eq!(before.tree_size, 4);
    let rotation = log.rotate_key().await.unwrap();
    append_some(&log, 2).await;
    let after = checkpoints.checkpoint_now().await.unwrap();
    assert_eq!(after.tree_size, 7);

    let history = KeyHistory::load(log.store().as_ref()).await.unwrap();
    let old_key = history.in_force_after(4).unwrap();
    let new_key = history.in_force_after(7).unwrap();
    assert_eq!(old_key.key_id, rotation.previous_key_id);
    assert_eq!(new_key.key_id, rotation.next_key_id);
    assert_eq!(before.key_id, old_key.key_id);
    assert_eq!(after.key_id, new_key.key_id);

    // Each note is a C2SP checkpoint of its size and root, signed by its own key only.
    for (stored, key, other) in [(&before, old_key, new_key), (&after, new_key, old_key)] {
        let signed = SignedCheckpoint::parse(&stored.note).unwrap();
        assert_eq!(signed.checkpoint.origin, "firm.example/docket");
        assert_eq!(signed.checkpoint.size, stored.tree_size);
        assert_eq!(
            signed.checkpoint.root,
            independent_root(&log, stored.tree_size).await
        );
        assert!(signed.signed_by_log_key(&key.public_key));
        assert!(!signed.signed_by_log_key(&other.public_key));
    }

    // And the two are consistent across the rotation.
    let proof = checkpoints.tree().consistency_proof(4, 7).await.unwrap();
    assert!(proof.verify(&before.root, &after.root));
}

async fn signing_again_at_the_same_size_returns_the_stored_checkpoint(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    append_some(&log, 2).await;
    let first = transparency::open(&log, None, CheckpointPolicy::default())
        .await
        .unwrap();
    let second = transparency::open(&log, None, CheckpointPolicy::default())
        .await
        .unwrap();
    let (a, b) = tokio::join!(first.checkpoint_now(), second.checkpoint_now());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.note, b.note);
    assert_eq!(first.latest().await.unwrap().unwrap(), a);
    let again = first.checkpoint_now().await.unwrap();
    assert_eq!(again, a);
    let listed = log.store().tree().checkpoints(None, 10).await.unwrap();
    assert_eq!(listed.len(), 1, "one checkpoint per size");
    assert!(first.origin().starts_with("docket.log/"));
}

async fn the_checkpointer_signs_by_its_policy_in_the_background(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let policy = CheckpointPolicy {
        every_events: 10,
        interval: Duration::from_secs(3600),
    };
    let checkpoints = transparency::open(&log, None, policy).await.unwrap();
    let task = checkpoints.spawn();

    // Fewer than 10 new events and the interval far away: nothing is signed yet.
    append_some(&log, 5).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(checkpoints.latest().await.unwrap().is_none());

    // The tenth event makes one due.
    append_some(&log, 5).await;
    let mut signed = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        signed = checkpoints.latest().await.unwrap();
        if signed.is_some() {
            break;
        }
    }
    task.abort();
    let signed = signed.expect("a checkpoint within 4 s");
    assert_eq!(signed.tree_size, 11);
    assert_eq!(signed.root, independent_root(&log, 11).await);
}
