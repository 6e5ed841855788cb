//! Appending: positions, versions, optimistic concurrency, idempotency, atomicity, group commit.

use std::sync::Arc;

use docket::log::envelope::ValidationError;
use docket::log::{Actor, EventDraft, ExpectedVersion, StreamId};
use docket::store::pages::log_pages;
use docket::store::{AppendError, AppendRequest, EventLog, LogOptions, StoreError};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, TestLog, exactly, one_event, sample_log};

async fn all_events(log: &EventLog) -> Vec<docket::log::Event> {
    let pages: Vec<_> = log.pages_from(1).try_collect().await.expect("read log");
    pages.into_iter().flatten().collect()
}

on_both_backends!(
    first_open_writes_a_verifiable_genesis,
    appends_get_gapless_positions_and_stream_versions,
    a_stale_expected_version_is_refused_naming_the_actual_one,
    an_idempotent_retry_returns_the_first_result,
    an_idempotency_key_reused_with_other_content_is_refused,
    several_events_append_atomically_or_not_at_all,
    concurrent_appends_are_coalesced_without_gaps,
    a_reopened_log_continues_its_chain,
    key_rotation_hands_signing_to_the_next_key,
    invalid_appends_are_refused_and_leave_nothing,
    the_database_refuses_to_update_or_delete_events,
    reads_are_paged_in_order,
    two_handles_on_one_database_take_turns_without_forking,
    a_plan_from_a_stale_view_of_a_stream_is_refused_and_writes_nothing,
    a_plan_from_a_stale_head_is_refused_and_writes_nothing,
    a_log_verifies_while_it_is_being_appended_to,
    concurrent_retries_of_one_idempotent_append_write_it_once,
);

async fn first_open_writes_a_verifiable_genesis(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let head = log.head().await.unwrap();
    assert_eq!(head.position, 1);
    let events = all_events(&log).await;
    assert_eq!(events[0].event_type, "log.genesis");
    assert_eq!(events[0].stream, "system");
    assert_eq!(events[0].prev_hash, None);
    let summary = test.verify().await.unwrap();
    assert_eq!(summary.events, 1);
    assert_eq!(summary.genesis_key_id.as_deref(), head.key_id.as_deref());

    // Opening again does not write a second genesis.
    drop(log);
    let log = test.open().await;
    assert_eq!(log.head().await.unwrap().position, 1);
}

async fn appends_get_gapless_positions_and_stream_versions(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let first = log
        .append(one_event("matter:a", "matter.opened", json!({"n": 1})))
        .await
        .unwrap();
    let second = log
        .append(one_event("matter:b", "matter.opened", json!({"n": 2})))
        .await
        .unwrap();
    let third = log
        .append(one_event("matter:a", "matter.noted", json!({"n": 3})))
        .await
        .unwrap();
    assert_eq!((first.first_position, first.first_version), (2, 1));
    assert_eq!((second.first_position, second.first_version), (3, 1));
    assert_eq!((third.first_position, third.first_version), (4, 2));

    let events = all_events(&log).await;
    assert_eq!(
        events.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(events[3].prev_hash, Some(events[2].hash));
    assert_eq!(events[3].stream_prev_hash, Some(events[1].hash));
    assert_eq!(events[2].stream_prev_hash, None);
    assert!(test.verify().await.is_ok());
}

async fn a_stale_expected_version_is_refused_naming_the_actual_one(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let mut request = one_event("matter:a", "matter.opened", json!({}));
    request.expected_version = ExpectedVersion::NoStream;
    log.append(request.clone()).await.unwrap();

    let refused = log.append(request).await.unwrap_err();
    assert!(
        matches!(
            refused,
            AppendError::VersionConflict {
                actual: 1,
                expected: ExpectedVersion::NoStream,
                ..
            }
        ),
        "{refused:?}"
    );
    assert_eq!(refused.code(), "VERSION_CONFLICT");

    let mut stale = one_event("matter:a", "matter.noted", json!({}));
    stale.expected_version = exactly(5);
    assert!(matches!(
        log.append(stale).await,
        Err(AppendError::VersionConflict { actual: 1, .. })
    ));

    let mut current = one_event("matter:a", "matter.noted", json!({}));
    current.expected_version = exactly(1);
    assert_eq!(log.append(current).await.unwrap().last_version, 2);
    assert_eq!(log.head().await.unwrap().position, 3);
}

async fn an_idempotent_retry_returns_the_first_result(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let mut request = one_event("matter:a", "matter.opened", json!({"title": "Doe"}));
    request.expected_version = ExpectedVersion::NoStream;
    request.idempotency_key = Some("open-doe-1".into());
    let first = log.append(request.clone()).await.unwrap();
    assert!(!first.replayed);

    // A retry (with a new request id, and a version check that is now stale) is answered
    // with the first result and appends nothing.
    request.request_id = Some("retry".into());
    let again = log.append(request).await.unwrap();
    assert!(again.replayed);
    assert_eq!(
        (
            again.first_position,
            again.last_position,
            again.last_version
        ),
        (
            first.first_position,
            first.last_position,
            first.last_version
        )
    );
    assert_eq!(log.head().await.unwrap().position, 2);
}

async fn an_idempotency_key_reused_with_other_content_is_refused(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let mut request = one_event("matter:a", "matter.opened", json!({"title": "Doe"}));
    request.idempotency_key = Some("k".into());
    log.append(request.clone()).await.unwrap();
    request.events[0].payload = json!({"title": "Roe"});
    assert!(matches!(
        log.append(request).await,
        Err(AppendError::IdempotencyKeyReused)
    ));
    assert_eq!(log.head().await.unwrap().position, 2);
}

async fn several_events_append_atomically_or_not_at_all(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let events = (0..5)
        .map(|n| EventDraft::new("matter.noted", json!({"n": n})))
        .collect();
    let request = AppendRequest::new(
        StreamId::parse("matter:a").unwrap(),
        Actor::parse("user:ada").unwrap(),
        events,
    );
    let outcome = log.append(request).await.unwrap();
    assert_eq!((outcome.first_position, outcome.last_position), (2, 6));
    assert_eq!((outcome.first_version, outcome.last_version), (1, 5));

    // One bad event refuses the whole request.
    let mut events: Vec<_> = (0..3)
        .map(|n| EventDraft::new("matter.noted", json!({"n": n})))
        .collect();
    events[2].payload = json!({"too_big": 9007199254740993_u64});
    let request = AppendRequest::new(
        StreamId::parse("matter:a").unwrap(),
        Actor::parse("user:ada").unwrap(),
        events,
    );
    assert!(matches!(
        log.append(request).await,
        Err(AppendError::Invalid(ValidationError::UnsafeInteger))
    ));
    assert_eq!(log.head().await.unwrap().position, 6);
}

async fn concurrent_appends_are_coalesced_without_gaps(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = Arc::new(test.open().await);
    let writers = 32;
    let per_writer = 25;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..per_writer {
                let stream = format!("matter:{}", (writer + n) % 7);
                log.append(one_event(
                    &stream,
                    "matter.noted",
                    json!({"writer": writer, "n": n}),
                ))
                .await
                .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    let total = 1 + writers * per_writer;
    let events = all_events(&log).await;
    assert_eq!(events.len(), total);
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(index, event)| event.position == index as u64 + 1)
    );
    let stats = log.stats();
    assert_eq!(stats.requests, total as u64);
    assert!(
        stats.writes < stats.requests,
        "no write held more than one append: {stats:?}"
    );
    let summary = test.verify().await.unwrap();
    assert_eq!(summary.events, total as u64);
    assert_eq!(summary.streams, 8);
}

async fn a_reopened_log_continues_its_chain(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    sample_log(&log, 10).await;
    drop(log);
    let log = test.open().await;
    let outcome = log
        .append(one_event("matter:0", "matter.noted", json!({})))
        .await
        .unwrap();
    assert_eq!(outcome.first_position, 13);
    assert_eq!(test.verify().await.unwrap().events, 13);
}

async fn key_rotation_hands_signing_to_the_next_key(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let before = log.head().await.unwrap().key_id.unwrap();
    let rotation = log.rotate_key().await.unwrap();
    assert_eq!(rotation.previous_key_id, before);
    log.append(one_event("matter:a", "matter.opened", json!({})))
        .await
        .unwrap();

    let events = all_events(&log).await;
    assert_eq!(events[1].event_type, "keys.rotated");
    assert_eq!(
        events[1].key_id, before,
        "the rotation is signed by the outgoing key"
    );
    assert_eq!(events[2].key_id, rotation.next_key_id);
    let summary = test.verify().await.unwrap();
    assert_eq!(summary.key_rotations, 1);
    assert_eq!(
        summary.current_key_id.as_deref(),
        Some(rotation.next_key_id.as_str())
    );
    assert_eq!(summary.genesis_key_id.as_deref(), Some(before.as_str()));
}

async fn invalid_appends_are_refused_and_leave_nothing(backend: Backend) {
    let test = TestLog::new(backend).await;
    let mut options = test.options();
    options.max_payload_bytes = 64;
    let log = EventLog::open(&options).await.unwrap();
    let big = one_event(
        "matter:a",
        "matter.opened",
        json!({"title": "x".repeat(100)}),
    );
    let refused = log.append(big).await.unwrap_err();
    assert!(matches!(
        refused,
        AppendError::Invalid(ValidationError::PayloadTooLarge { limit: 64, .. })
    ));
    assert!(
        !refused.to_string().contains("xxxx"),
        "errors never echo client data"
    );

    let forged = one_event("matter:a", "keys.rotated", json!({}));
    assert!(matches!(
        log.append(forged).await,
        Err(AppendError::Invalid(ValidationError::ReservedEventType))
    ));
    let mut bad_time = one_event("matter:a", "matter.opened", json!({}));
    bad_time.events[0].occurred_at = Some("last tuesday".into());
    assert!(matches!(
        log.append(bad_time).await,
        Err(AppendError::Invalid(_))
    ));
    assert_eq!(log.head().await.unwrap().position, 1);
}

async fn the_database_refuses_to_update_or_delete_events(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    sample_log(&log, 3).await;
    drop(log);
    let update = test
        .try_execute("UPDATE events SET payload = '{}' WHERE position = 2")
        .await;
    let delete = test
        .try_execute("DELETE FROM events WHERE position = 2")
        .await;
    assert!(update.is_err_and(|e| e.contains("append-only")));
    assert!(delete.is_err_and(|e| e.contains("append-only")));
    if backend == Backend::Postgres {
        let truncate = test.try_execute("TRUNCATE events").await;
        assert!(truncate.is_err_and(|e| e.contains("append-only")));
    }
    assert!(test.verify().await.is_ok());
}

async fn reads_are_paged_in_order(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    sample_log(&log, 30).await;
    let pages: Vec<Vec<_>> = log_pages(log.store().clone(), 1, 7)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 5);
    assert!(pages[..4].iter().all(|page| page.len() == 7));
    let positions: Vec<u64> = pages.iter().flatten().map(|e| e.position).collect();
    assert_eq!(positions, (1..=32).collect::<Vec<_>>());

    let versions: Vec<u64> = log
        .stream_from("matter:1", 3)
        .map(|e| e.unwrap().stream_version)
        .collect()
        .await;
    assert_eq!(versions, (3..=10).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_unreachable_database_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = LogOptions::new(dir.path());
    options.database_url = Some("postgres://postgres@127.0.0.1:1/nowhere".into());
    let error = EventLog::open(&options).await.err().expect("refused");
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
}

async fn two_handles_on_one_database_take_turns_without_forking(backend: Backend) {
    // Each handle caches the end of the log; every append by one makes the other's cache
    // stale, so each of these appends takes the path that re-reads the head under the lock.
    let test = TestLog::new(backend).await;
    let first = test.open().await;
    let second = test.open().await;
    for n in 0..10u64 {
        let (log, stream) = if n % 2 == 0 {
            (&first, "matter:a")
        } else {
            (&second, "matter:b")
        };
        let mut request = one_event(stream, "matter.noted", json!({"n": n}));
        request.expected_version = if n < 2 {
            ExpectedVersion::NoStream
        } else {
            exactly(n / 2)
        };
        let outcome = log.append(request).await.unwrap();
        assert_eq!(outcome.first_position, n + 2);
    }
    let events = all_events(&first).await;
    assert_eq!(events.len(), 11);
    assert!(test.verify().await.is_ok());
}

/// Plans one append to `matter:a` as if the stream did not exist yet, from the given head.
fn plan_blind(test: &TestLog, head: docket::store::LogHead) -> docket::store::plan::BatchPlan {
    let keys = docket::keyring::Keyring::open(test.dir.path()).unwrap();
    let request = one_event("matter:a", "matter.noted", json!({"stale": true}));
    let prepared = docket::store::PreparedAppend::prepare(request, 1 << 20).unwrap();
    docket::store::plan::plan_from_state(
        head,
        Default::default(),
        Default::default(),
        &keys,
        &[prepared],
    )
    .unwrap()
}

async fn a_plan_from_a_stale_view_of_a_stream_is_refused_and_writes_nothing(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    log.append(one_event("matter:a", "matter.opened", json!({})))
        .await
        .unwrap();
    let head = log.head().await.unwrap();

    // The head is current, but the plan believes matter:a is new: the write must refuse.
    let plan = plan_blind(&test, head.clone());
    let outcome = log.store().write_planned(&head, &plan).await.unwrap();
    assert_eq!(outcome, docket::store::WriteOutcome::Stale);
    assert_eq!(log.head().await.unwrap(), head);
    assert!(test.verify().await.is_ok());
}

async fn a_plan_from_a_stale_head_is_refused_and_writes_nothing(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let stale = log.head().await.unwrap();
    let plan = plan_blind(&test, stale.clone());
    log.append(one_event("matter:b", "matter.opened", json!({})))
        .await
        .unwrap();

    let outcome = log.store().write_planned(&stale, &plan).await.unwrap();
    assert_eq!(outcome, docket::store::WriteOutcome::Stale);
    assert_eq!(log.head().await.unwrap().position, 2);
    assert!(test.verify().await.is_ok());
}

async fn a_log_verifies_while_it_is_being_appended_to(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = Arc::new(test.open().await);
    sample_log(&log, 300).await;
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for n in 0..300 {
                log.append(one_event("matter:live", "matter.noted", json!({"n": n})))
                    .await
                    .unwrap();
            }
        })
    };
    for _ in 0..5 {
        let summary = test
            .verify()
            .await
            .expect("a growing log is intact up to its head");
        assert!(summary.events >= 302);
    }
    writer.await.unwrap();
    assert_eq!(test.verify().await.unwrap().events, 602);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_continue_after_the_database_drops_every_connection() {
    let test = TestLog::new(Backend::Postgres).await;
    let log = test.open().await;
    log.append(one_event("matter:a", "matter.opened", json!({})))
        .await
        .unwrap();

    // The server ends every session of this database, as a restart or a failover would.
    let url = test.database_url.clone().unwrap();
    let name = url.rsplit('/').next().unwrap().to_owned();
    test.execute(&[&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )])
    .await;

    // The next write meets a dead connection: the sequencer finds out from the log whether it
    // was committed (it was not), plans it again under the lock, and the append succeeds once.
    let outcome = log
        .append(one_event("matter:a", "matter.noted", json!({})))
        .await
        .unwrap();
    assert_eq!(outcome.first_position, 3);
    assert_eq!(test.verify().await.unwrap().events, 3);
}

async fn concurrent_retries_of_one_idempotent_append_write_it_once(backend: Backend) {
    // Keep the sequencer busy so the retries land in different planned pieces and writes.
    let test = TestLog::new(backend).await;
    let log = Arc::new(test.open().await);
    let mut tasks = Vec::new();
    for n in 0..48u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let request = if n % 2 == 0 {
                let mut retry = one_event("matter:a", "matter.opened", json!({"title": "Doe"}));
                retry.idempotency_key = Some("open-doe".into());
                retry
            } else {
                one_event(&format!("matter:busy-{n}"), "matter.noted", json!({"n": n}))
            };
            (n % 2 == 0, log.append(request).await.unwrap())
        }));
    }
    let mut keyed = Vec::new();
    for task in tasks {
        let (is_keyed, outcome) = task.await.unwrap();
        if is_keyed {
            keyed.push(outcome);
        }
    }
    let first = keyed
        .iter()
        .find(|o| !o.replayed)
        .expect("one append wrote the event");
    assert_eq!(keyed.iter().filter(|o| !o.replayed).count(), 1);
    assert!(
        keyed
            .iter()
            .all(|o| o.first_position == first.first_position)
    );
    let opened = all_events(&log)
        .await
        .into_iter()
        .filter(|e| e.stream == "matter:a")
        .count();
    assert_eq!(opened, 1);
    assert_eq!(test.verify().await.unwrap().events, 1 + 1 + 24);
}
