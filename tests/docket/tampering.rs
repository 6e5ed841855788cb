//! Tampering with the database the way someone with file or SQL access would, triggers dropped
//! first; verification must name the first damaged position and the right reason.

use docket::log::LogSigner;
use docket::log::canonical::compute_hash;
use docket::log::verify::FailureReason;
use docket::store::EventLog;
use docket::verification::VerifyOptions;
use futures::TryStreamExt;

use crate::on_both_backends;
use crate::support::{Backend, TestLog, sample_log};

/// A log of 22 events (genesis, 20 matter events, a key rotation at position 12), triggers off.
async fn tampered_log(backend: Backend) -> (TestLog, Vec<docket::log::Event>) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    sample_log(&log, 20).await;
    let events = read_all(&log).await;
    assert_eq!(events.len(), 22);
    drop(log);
    assert!(test.verify().await.is_ok(), "intact before tampering");
    test.drop_triggers().await;
    (test, events)
}

async fn read_all(log: &EventLog) -> Vec<docket::log::Event> {
    let pages: Vec<_> = log.pages_from(1).try_collect().await.unwrap();
    pages.into_iter().flatten().collect()
}

async fn expect_failure(test: &TestLog, position: u64, reason: FailureReason) {
    let failure = test.verify().await.expect_err("tampering must be detected");
    assert_eq!(
        (failure.position, failure.reason),
        (position, reason),
        "{failure:?}"
    );
}

on_both_backends!(
    one_changed_payload_byte_is_a_hash_mismatch,
    a_deleted_row_is_a_position_gap,
    two_swapped_rows_are_caught_at_the_first,
    a_replaced_signature_is_a_bad_signature,
    an_event_re_signed_with_a_foreign_key_is_refused,
    an_event_re_hashed_and_re_signed_under_its_own_key_id_is_a_bad_signature,
    a_cut_off_tail_disagrees_with_the_recorded_head,
    a_log_recreated_under_a_new_key_fails_against_the_pinned_genesis_key,
    a_changed_stream_version_is_caught,
);

async fn one_changed_payload_byte_is_a_hash_mismatch(backend: Backend) {
    let (test, _) = tampered_log(backend).await;
    test.execute(&[
        "UPDATE events SET payload = replace(payload, 'Jones 5', 'Jonas 5') WHERE position = 7",
    ])
    .await;
    expect_failure(&test, 7, FailureReason::HashMismatch).await;
}

async fn a_deleted_row_is_a_position_gap(backend: Backend) {
    let (test, events) = tampered_log(backend).await;
    test.execute(&["DELETE FROM events WHERE position = 9"])
        .await;
    let failure = test.verify().await.unwrap_err();
    assert_eq!(
        (failure.position, failure.reason),
        (9, FailureReason::PositionGap)
    );
    assert_eq!(
        failure.event_id.as_deref(),
        Some(events[9].id.as_str()),
        "names the event found"
    );
}

async fn two_swapped_rows_are_caught_at_the_first(backend: Backend) {
    let (test, _) = tampered_log(backend).await;
    test.execute(&[
        "UPDATE events SET position = -1 WHERE position = 5",
        "UPDATE events SET position = 5 WHERE position = 6",
        "UPDATE events SET position = 6 WHERE position = -1",
    ])
    .await;
    expect_failure(&test, 5, FailureReason::HashMismatch).await;
}

async fn a_replaced_signature_is_a_bad_signature(backend: Backend) {
    let (test, events) = tampered_log(backend).await;
    let other = test.bytes_literal(&events[8].signature);
    test.execute(&[&format!(
        "UPDATE events SET signature = {other} WHERE position = 4"
    )])
    .await;
    expect_failure(&test, 4, FailureReason::BadSignature).await;
}

async fn an_event_re_signed_with_a_foreign_key_is_refused(backend: Backend) {
    let (test, events) = tampered_log(backend).await;

    // The attacker rewrites event 15, recomputes its hash correctly and signs with a key of
    // their own, naming it as the signer.
    let foreign = LogSigner::from_seed(&[66; 32]);
    let mut forged = events[14].clone();
    forged.payload = r#"{"index":13,"title":"Settled out of court"}"#.into();
    forged.key_id = foreign.id().to_string();
    forged.hash = compute_hash(&forged);
    forged.signature = foreign.sign_event(&forged.hash);
    test.execute(&[&format!(
        "UPDATE events SET payload = '{}', key_id = '{}', hash = {}, signature = {} WHERE position = 15",
        forged.payload,
        forged.key_id,
        test.bytes_literal(&forged.hash),
        test.bytes_literal(&forged.signature)
    )])
    .await;
    expect_failure(&test, 15, FailureReason::UnknownSigningKey).await;
}

async fn an_event_re_hashed_and_re_signed_under_its_own_key_id_is_a_bad_signature(
    backend: Backend,
) {
    let (test, events) = tampered_log(backend).await;
    let foreign = LogSigner::from_seed(&[67; 32]);
    let mut forged = events[2].clone();
    forged.payload = r#"{"index":1,"title":"Withdrawn"}"#.into();
    forged.hash = compute_hash(&forged);
    forged.signature = foreign.sign_event(&forged.hash);
    test.execute(&[&format!(
        "UPDATE events SET payload = '{}', hash = {}, signature = {} WHERE position = 3",
        forged.payload,
        test.bytes_literal(&forged.hash),
        test.bytes_literal(&forged.signature)
    )])
    .await;
    expect_failure(&test, 3, FailureReason::BadSignature).await;
}

async fn a_cut_off_tail_disagrees_with_the_recorded_head(backend: Backend) {
    let (test, _) = tampered_log(backend).await;
    test.execute(&["DELETE FROM events WHERE position > 19"])
        .await;
    expect_failure(&test, 22, FailureReason::HeadMismatch).await;
}

async fn a_log_recreated_under_a_new_key_fails_against_the_pinned_genesis_key(backend: Backend) {
    let (test, events) = tampered_log(backend).await;
    let genesis_key = events[0].key_id.clone();
    let pinned = VerifyOptions {
        strict: false,
        genesis_key: Some(genesis_key),
    };
    assert!(test.verify_with(pinned.clone()).await.is_ok());

    // A whole new log, consistent in itself, in place of the original.
    let other = TestLog::new(backend).await;
    let log = other.open().await;
    sample_log(&log, 3).await;
    drop(log);
    let failure = other.verify_with(pinned).await.unwrap_err();
    assert_eq!(
        (failure.position, failure.reason),
        (1, FailureReason::UntrustedGenesisKey)
    );
}

async fn a_changed_stream_version_is_caught(backend: Backend) {
    let (test, _) = tampered_log(backend).await;
    test.execute(&["UPDATE events SET stream_version = stream_version + 100 WHERE position = 10"])
        .await;
    expect_failure(&test, 10, FailureReason::HashMismatch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_verifies_every_signature_individually() {
    let (test, _) = tampered_log(Backend::Sqlite).await;
    let strict = VerifyOptions {
        strict: true,
        genesis_key: None,
    };
    assert_eq!(test.verify_with(strict.clone()).await.unwrap().events, 22);
    test.execute(&["UPDATE events SET signature = zeroblob(64) WHERE position = 20"])
        .await;
    let failure = test.verify_with(strict).await.unwrap_err();
    assert_eq!(
        (failure.position, failure.reason),
        (20, FailureReason::BadSignature)
    );
}
