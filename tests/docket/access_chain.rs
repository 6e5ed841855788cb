//! The access chain: every access decision recorded durably in a signed, hash-chained log of its
//! own, queryable by auditors through its index, and checked by `docket verify`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use docket::access::chain::{AccessChain, AccessError, access_database_url};
use docket::access::index::{AccessQuery, AccessRow};
use docket::access::record::{AccessEntry, AccessRecord, Decision};
use docket::log::verify::FailureReason;
use docket::verification::{VerifyOptions, verify_access_chain};
use futures::TryStreamExt;
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection};

use crate::on_both_backends;
use crate::support::{Backend, TestLog};

on_both_backends!(
    records_are_durable_across_reopen_and_queryable_by_each_filter,
    pages_follow_positions_and_never_split_a_record,
    records_are_signed_access_recorded_events_with_the_principal_as_actor,
    the_chain_verifies_and_is_signed_by_a_key_of_its_own,
    a_tampered_record_fails_verification_at_its_position,
    the_index_catches_up_after_rows_are_deleted_from_it,
    docket_verify_reports_and_checks_both_chains,
    concurrent_records_all_succeed_with_distinct_positions,
    records_breaking_the_shape_are_refused_and_nothing_is_recorded,
);

fn entry(matter: Option<&str>, decision: Decision, reason: &str) -> AccessEntry {
    AccessEntry {
        matter: matter.map(str::to_owned),
        target: "matter".into(),
        target_id: None,
        fields: vec!["matter.core".into()],
        decision,
        reason: reason.into(),
    }
}

fn record(principal: &str, matter: &str, decision: Decision) -> AccessRecord {
    AccessRecord {
        principal: principal.into(),
        session: Some("s-1".into()),
        operation: "query matter".into(),
        request_id: Some(format!("req-{principal}-{matter}")),
        client_address: Some("192.0.2.7".into()),
        entries: vec![entry(Some(matter), decision, "team_member")],
    }
}

fn query() -> AccessQuery {
    AccessQuery::latest(500)
}

fn positions(rows: &[AccessRow]) -> Vec<u64> {
    rows.iter().map(|row| row.position).collect()
}

/// Runs statements against the access chain's database (SQLite `access/<file>`, PostgreSQL the
/// access schema), as someone with file or SQL access would.
pub(crate) async fn access_sql(test: &TestLog, file: &str, statements: &[&str]) {
    match test.backend {
        Backend::Sqlite => {
            let path = test.dir.path().join("access").join(file);
            let url = format!("sqlite://{}", path.display());
            let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
            for statement in statements {
                sqlx::raw_sql(AssertSqlSafe(statement.to_string()))
                    .execute(&mut connection)
                    .await
                    .unwrap();
            }
        }
        Backend::Postgres => {
            let url = access_database_url(test.database_url.as_deref().unwrap());
            let mut connection = sqlx::PgConnection::connect(&url).await.unwrap();
            for statement in statements {
                sqlx::raw_sql(AssertSqlSafe(statement.to_string()))
                    .execute(&mut connection)
                    .await
                    .unwrap();
            }
        }
    }
}

pub(crate) async fn drop_access_triggers(test: &TestLog) {
    let statements: &[&str] = match test.backend {
        Backend::Sqlite => &[
            "DROP TRIGGER events_refuse_update",
            "DROP TRIGGER events_refuse_delete",
        ],
        Backend::Postgres => &[
            "DROP TRIGGER events_refuse_update_delete ON events",
            "DROP TRIGGER events_refuse_truncate ON events",
        ],
    };
    access_sql(test, "docket.db", statements).await;
}

async fn verify_access(
    test: &TestLog,
) -> Result<docket::log::verify::VerifySummary, docket::log::verify::VerifyFailure> {
    verify_access_chain(&test.options(), VerifyOptions::default(), |_| {})
        .await
        .expect("the access chain is readable")
        .expect("there is an access chain")
}

/// Records that a few principals touched a few matters, some of it denied.
async fn sample(chain: &AccessChain) -> Vec<u64> {
    let records = [
        record("user:a.okafor", "2026-0001", Decision::Allowed),
        record("user:b.mensah", "2026-0001", Decision::Denied),
        record("user:a.okafor", "2026-0002", Decision::Allowed),
        record("anonymous", "2026-0003", Decision::Denied),
        record("api_client:billing", "2026-0002", Decision::Allowed),
    ];
    let mut positions = Vec::new();
    for record in &records {
        positions.push(chain.record(record).await.unwrap());
    }
    positions
}

async fn records_are_durable_across_reopen_and_queryable_by_each_filter(backend: Backend) {
    let test = TestLog::new(backend).await;
    let chain = AccessChain::open(&test.options()).await.unwrap();
    let first = sample(&chain).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cutoff = docket::log::time::now_timestamp();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let later = chain
        .record_all(&[
            record("user:a.okafor", "2026-0004", Decision::Allowed),
            record("user:c.ito", "2026-0004", Decision::Denied),
        ])
        .await
        .unwrap();
    assert_eq!(later.len(), 2);
    assert!(later[0] < later[1] && first[4] < later[0]);
    drop(chain);

    let chain = AccessChain::open(&test.options()).await.unwrap();
    let all = chain.query(&query()).await.unwrap();
    let mut expected: Vec<u64> = first.iter().chain(&later).copied().collect();
    expected.reverse();
    assert_eq!(positions(&all), expected, "every record, newest first");
    let newest = &all[0];
    assert_eq!(
        (
            newest.principal.as_str(),
            newest.matter.as_deref(),
            newest.decision,
            newest.reason.as_str(),
            newest.operation.as_str(),
            newest.request_id.as_deref(),
            newest.client_address.as_deref(),
            newest.session.as_deref(),
            newest.fields.clone(),
            newest.entry,
        ),
        (
            "user:c.ito",
            Some("2026-0004"),
            Decision::Denied,
            "team_member",
            "query matter",
            Some("req-user:c.ito-2026-0004"),
            Some("192.0.2.7"),
            Some("s-1"),
            vec!["matter.core".to_owned()],
            0,
        )
    );

    let by_principal = chain
        .query(&AccessQuery {
            principal: Some("user:a.okafor".into()),
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(positions(&by_principal), [later[0], first[2], first[0]]);

    let by_matter = chain
        .query(&AccessQuery {
            matter: Some("2026-0002".into()),
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(positions(&by_matter), [first[4], first[2]]);

    let denied = chain
        .query(&AccessQuery {
            decision: Some(Decision::Denied),
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(positions(&denied), [later[1], first[3], first[1]]);
    assert_eq!(denied[1].principal, "anonymous");

    let since = chain
        .query(&AccessQuery {
            from: Some(cutoff.clone()),
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(positions(&since), [later[1], later[0]]);
    let until = chain
        .query(&AccessQuery {
            to: Some(cutoff.clone()),
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(
        positions(&until),
        [first[4], first[3], first[2], first[1], first[0]]
    );

    let combined = chain
        .query(&AccessQuery {
            principal: Some("user:a.okafor".into()),
            decision: Some(Decision::Allowed),
            to: Some(cutoff),
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(positions(&combined), [first[2], first[0]]);

    for bad in [
        AccessQuery {
            limit: 0,
            ..query()
        },
        AccessQuery {
            limit: 501,
            ..query()
        },
        AccessQuery {
            from: Some("yesterday".into()),
            ..query()
        },
    ] {
        assert!(matches!(
            chain.query(&bad).await,
            Err(AccessError::InvalidQuery(_))
        ));
    }
}

async fn pages_follow_positions_and_never_split_a_record(backend: Backend) {
    let test = TestLog::new(backend).await;
    let chain = AccessChain::open(&test.options()).await.unwrap();
    let mut recorded = Vec::new();
    for index in 0..7 {
        let mut one = record(
            "user:a.okafor",
            &format!("2026-{index:04}"),
            Decision::Allowed,
        );
        if index == 3 {
            // One request that touched three things.
            one.entries
                .push(entry(Some("2026-0099"), Decision::Denied, "walled"));
            one.entries.push(entry(None, Decision::Allowed, "role"));
        }
        recorded.push(chain.record(&one).await.unwrap());
    }

    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = chain
            .query(&AccessQuery {
                before_position: before,
                limit: 3,
                ..query()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.position);
        pages.push(page);
    }
    let records: Vec<Vec<u64>> = pages
        .iter()
        .map(|page| {
            let mut positions = positions(page);
            positions.dedup();
            positions
        })
        .collect();
    let r = &recorded;
    assert_eq!(
        records,
        [vec![r[6], r[5], r[4]], vec![r[3], r[2], r[1]], vec![r[0]]]
    );
    let middle: Vec<(u64, u32, Decision)> = pages[1]
        .iter()
        .map(|row| (row.position, row.entry, row.decision))
        .collect();
    assert_eq!(
        middle,
        [
            (r[3], 0, Decision::Allowed),
            (r[3], 1, Decision::Denied),
            (r[3], 2, Decision::Allowed),
            (r[2], 0, Decision::Allowed),
            (r[1], 0, Decision::Allowed),
        ]
    );

    // A filter on entries returns only the matching entries of a record.
    let walled = chain
        .query(&AccessQuery {
            matter: Some("2026-0099".into()),
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(walled.len(), 1);
    assert_eq!((walled[0].position, walled[0].entry), (r[3], 1));
    assert_eq!(walled[0].reason, "walled");
}

async fn records_are_signed_access_recorded_events_with_the_principal_as_actor(backend: Backend) {
    let test = TestLog::new(backend).await;
    let chain = AccessChain::open(&test.options()).await.unwrap();
    let positions = sample(&chain).await;
    let pages: Vec<_> = chain.log().pages_from(1).try_collect().await.unwrap();
    let events: Vec<_> = pages.into_iter().flatten().collect();
    assert_eq!(events[0].event_type, "log.genesis");
    let records: Vec<_> = events.iter().filter(|e| e.stream == "access").collect();
    assert_eq!(
        records.iter().map(|e| e.position).collect::<Vec<_>>(),
        positions
    );
    for event in &records {
        assert_eq!(
            (event.event_type.as_str(), event.schema_version),
            ("access.recorded", 1)
        );
    }
    let actors: Vec<&str> = records.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(
        actors,
        [
            "user:a.okafor",
            "user:b.mensah",
            "user:a.okafor",
            "system",
            "api_client:billing"
        ]
    );
    assert_eq!(
        records[3].request_id.as_deref(),
        Some("req-anonymous-2026-0003")
    );
    let payload: Value = serde_json::from_str(&records[3].payload).unwrap();
    assert_eq!(payload["principal"], "anonymous");
    assert_eq!(payload["entries"][0]["decision"], "denied");
    assert_eq!(
        payload["entries"][0].get("target_id"),
        None,
        "absent, not null"
    );
    let stored: AccessRecord = serde_json::from_value(payload).unwrap();
    assert_eq!(stored, record("anonymous", "2026-0003", Decision::Denied));
}

async fn the_chain_verifies_and_is_signed_by_a_key_of_its_own(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    crate::support::sample_log(&log, 3).await;
    let chain = AccessChain::open(&test.options()).await.unwrap();
    sample(&chain).await;
    chain.log().rotate_key().await.unwrap();
    chain
        .record(&record("user:a.okafor", "2026-0009", Decision::Allowed))
        .await
        .unwrap();

    let log_key = log.head().await.unwrap().key_id.unwrap();
    let access_key = chain.log().head().await.unwrap().key_id.unwrap();
    assert_ne!(log_key, access_key);
    let keys = test.dir.path().join("keys");
    let access_keys = test.dir.path().join("access").join("keys");
    assert!(access_keys.join(format!("{access_key}.key")).exists());
    assert!(!keys.join(format!("{access_key}.key")).exists());
    assert!(!access_keys.join(format!("{log_key}.key")).exists());
    drop(chain);
    drop(log);

    if backend == Backend::Postgres {
        // Everything of the access chain is in its own schema, its migrations included.
        let url = test.database_url.as_deref().unwrap();
        let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
        for (table, present) in [
            ("docket_access.events", true),
            ("docket_access.log_head", true),
            ("docket_access._sqlx_migrations", true),
            ("docket_access.access_index", true),
            ("public.events", true),
            ("public.access_index", false),
        ] {
            let found: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(table)
                .fetch_one(&mut connection)
                .await
                .unwrap();
            assert_eq!(found, present, "{table}");
        }
        let records: i64 =
            sqlx::query_scalar("SELECT count(*) FROM public.events WHERE stream_id = 'access'")
                .fetch_one(&mut connection)
                .await
                .unwrap();
        assert_eq!(records, 0);
    }

    let access = verify_access(&test).await.unwrap();
    assert_eq!(
        access.events, 8,
        "genesis, five records, a rotation, a record"
    );
    assert_eq!(access.key_rotations, 1);
    assert_eq!(access.current_key_id.as_deref(), Some(access_key.as_str()));
    let events = test.verify().await.unwrap();
    assert_eq!(events.events, 5, "the event log holds no access records");
    assert_ne!(events.log_id, access.log_id);
    assert_ne!(events.genesis_key_id, access.genesis_key_id);

    // The access chain's genesis can be pinned too.
    let pinned = VerifyOptions {
        strict: true,
        genesis_key: access.genesis_key_id.clone(),
    };
    let strict = verify_access_chain(&test.options(), pinned, |_| {})
        .await
        .unwrap()
        .unwrap();
    assert!(strict.is_ok());
    let wrong = VerifyOptions {
        strict: false,
        genesis_key: events.genesis_key_id.clone(),
    };
    let failure = verify_access_chain(&test.options(), wrong, |_| {})
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(failure.reason, FailureReason::UntrustedGenesisKey);
}

async fn a_tampered_record_fails_verification_at_its_position(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    crate::support::sample_log(&log, 2).await;
    drop(log);
    let chain = AccessChain::open(&test.options()).await.unwrap();
    let positions = sample(&chain).await;
    drop(chain);
    assert!(
        verify_access(&test).await.is_ok(),
        "intact before tampering"
    );

    drop_access_triggers(&test).await;
    let denied = positions[1];
    access_sql(
        &test,
        "docket.db",
        &[&format!(
            "UPDATE events SET payload = replace(payload, '\"denied\"', '\"allowed\"') \
             WHERE position = {denied}"
        )],
    )
    .await;
    let failure = verify_access(&test).await.unwrap_err();
    assert_eq!(
        (failure.position, failure.reason),
        (denied, FailureReason::HashMismatch),
        "{failure:?}"
    );
    assert!(test.verify().await.is_ok(), "the event log is untouched");

    access_sql(
        &test,
        "docket.db",
        &[&format!(
            "DELETE FROM events WHERE position = {}",
            positions[3]
        )],
    )
    .await;
    let failure = verify_access(&test).await.unwrap_err();
    assert_eq!(failure.position, denied, "the first damage is reported");
}

async fn the_index_catches_up_after_rows_are_deleted_from_it(backend: Backend) {
    let test = TestLog::new(backend).await;
    let chain = AccessChain::open(&test.options()).await.unwrap();
    let recorded = sample(&chain).await;
    assert_eq!(chain.query(&query()).await.unwrap().len(), 5);
    drop(chain);
    // Give the indexer of the closed chain time to let go of its database.
    tokio::time::sleep(Duration::from_millis(100)).await;

    access_sql(
        &test,
        "index.db",
        &[&format!(
            "DELETE FROM access_index WHERE position >= {}",
            recorded[2]
        )],
    )
    .await;
    let chain = AccessChain::open(&test.options()).await.unwrap();
    let mut expected = recorded.clone();
    expected.reverse();
    assert_eq!(positions(&chain.query(&query()).await.unwrap()), expected);
    drop(chain);
    tokio::time::sleep(Duration::from_millis(100)).await;

    access_sql(&test, "index.db", &["DELETE FROM access_index"]).await;
    let chain = AccessChain::open(&test.options()).await.unwrap();
    assert_eq!(positions(&chain.query(&query()).await.unwrap()), expected);
    let next = chain
        .record(&record("user:c.ito", "2026-0005", Decision::Denied))
        .await
        .unwrap();
    assert_eq!(chain.query(&query()).await.unwrap()[0].position, next);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_left_from_a_replaced_chain_is_rebuilt() {
    let test = TestLog::new(Backend::Sqlite).await;
    let chain = AccessChain::open(&test.options()).await.unwrap();
    sample(&chain).await;
    assert_eq!(chain.query(&query()).await.unwrap().len(), 5);
    drop(chain);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The chain is gone (restored from an older backup, say); its index is still there.
    let access = test.dir.path().join("access");
    for file in ["docket.db", "docket.db-wal", "docket.db-shm"] {
        let _ = std::fs::remove_file(access.join(file));
    }
    let chain = AccessChain::open(&test.options()).await.unwrap();
    let position = chain
        .record(&record("user:c.ito", "2026-0005", Decision::Denied))
        .await
        .unwrap();
    assert_eq!(position, 2);
    let rows = chain.query(&query()).await.unwrap();
    assert_eq!(positions(&rows), [2]);
    assert_eq!(rows[0].principal, "user:c.ito");
}

async fn docket_verify_reports_and_checks_both_chains(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    crate::support::sample_log(&log, 2).await;
    drop(log);

    // Before anything was recorded there is no access chain, and that is not a failure.
    let output = test
        .docket_command()
        .args(["verify", "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["access"]["status"], "absent");
    assert_eq!(report["status"], "intact");

    let chain = AccessChain::open(&test.options()).await.unwrap();
    let positions = sample(&chain).await;
    drop(chain);

    let output = test
        .docket_command()
        .args(["verify", "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], "intact");
    assert_eq!(report["summary"]["events"], 4);
    assert_eq!(report["access"]["status"], "intact");
    assert_eq!(report["access"]["summary"]["events"], 6);
    let text = test.docket_command().arg("verify").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("intact: 4 events"), "{text}");
    assert!(text.contains("access chain intact: 6 events"), "{text}");

    drop_access_triggers(&test).await;
    access_sql(
        &test,
        "docket.db",
        &[&format!(
            "UPDATE events SET actor = 'user:someone.else' WHERE position = {}",
            positions[2]
        )],
    )
    .await;
    let output = test
        .docket_command()
        .args(["verify", "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], "broken");
    assert_eq!(report["summary"]["events"], 4, "the event log is intact");
    assert_eq!(report["access"]["status"], "broken");
    assert_eq!(report["access"]["failure"]["position"], positions[2]);
    assert_eq!(report["access"]["failure"]["reason"], "hash_mismatch");
    let text = test.docket_command().arg("verify").output().unwrap();
    assert_eq!(text.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&text.stdout)
            .contains(&format!("access chain BROKEN at position {}", positions[2]))
    );

    // Each chain on its own.
    let log_only = test
        .docket_command()
        .args(["verify", "--json", "--log-only"])
        .output()
        .unwrap();
    assert_eq!(log_only.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&log_only.stdout).unwrap();
    assert_eq!(report["access"]["status"], "skipped");
    let access_only = test
        .docket_command()
        .args(["verify", "--json", "--access-only"])
        .output()
        .unwrap();
    assert_eq!(access_only.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&access_only.stdout).unwrap();
    assert_eq!(report.get("summary"), None);
    assert_eq!(report["access"]["status"], "broken");
}

async fn concurrent_records_all_succeed_with_distinct_positions(backend: Backend) {
    let test = TestLog::new(backend).await;
    let chain = Arc::new(AccessChain::open(&test.options()).await.unwrap());
    let tasks: Vec<_> = (0..64)
        .map(|task| {
            let chain = chain.clone();
            tokio::spawn(async move {
                let principal = format!("user:u{task}");
                chain
                    .record(&record(&principal, "2026-0001", Decision::Allowed))
                    .await
            })
        })
        .collect();
    let mut recorded = Vec::new();
    for task in tasks {
        recorded.push(task.await.unwrap().unwrap());
    }
    recorded.sort_unstable();
    recorded.dedup();
    assert_eq!(recorded.len(), 64);
    assert_eq!(chain.log().head().await.unwrap().position, 65);
    let stats = chain.log().stats();
    assert!(stats.writes <= stats.requests, "{stats:?}");
    let rows = chain.query(&query()).await.unwrap();
    assert_eq!(rows.len(), 64);
}

async fn records_breaking_the_shape_are_refused_and_nothing_is_recorded(backend: Backend) {
    let test = TestLog::new(backend).await;
    let chain = AccessChain::open(&test.options()).await.unwrap();
    let mut empty = record("user:a.okafor", "2026-0001", Decision::Allowed);
    empty.entries.clear();
    let refused = chain.record(&empty).await.unwrap_err();
    assert!(matches!(refused, AccessError::Invalid(_)), "{refused:?}");
    assert_eq!(refused.code(), "INVALID_ACCESS_RECORD");
    let good = record("user:a.okafor", "2026-0001", Decision::Allowed);
    assert!(matches!(
        chain.record_all(&[good.clone(), empty]).await,
        Err(AccessError::Invalid(_))
    ));
    assert_eq!(
        chain.log().head().await.unwrap().position,
        1,
        "only the genesis"
    );

    // A request id that is no envelope identifier stays in the payload only.
    let mut spaced = good;
    spaced.request_id = Some("has spaces".into());
    let position = chain.record(&spaced).await.unwrap();
    let rows = chain.query(&query()).await.unwrap();
    assert_eq!(rows[0].position, position);
    assert_eq!(rows[0].request_id.as_deref(), Some("has spaces"));
    assert_eq!(chain.record_all(&[]).await.unwrap(), Vec::<u64>::new());
}

/// What recording costs, on one backend. Run with
/// `cargo test --release --test docket access_chain::throughput -- --ignored --nocapture`.
///
/// Runs of 64 concurrent tasks: 20,000 appends of the same payloads to a plain event log
/// (nothing indexed) as a baseline, then 20,000 records as fast as they go; then both again,
/// 10,000 each, paced at 2,000 a second (the API's rate), with the CPU time and latency they
/// cost.
async fn measure_throughput(backend: Backend) {
    const RECORDS: usize = 20_000;
    const TASKS: usize = 64;
    const PER_TASK: usize = RECORDS / TASKS;
    let test = TestLog::new(backend).await;

    let log = Arc::new(test.open().await);
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let log = log.clone();
            tokio::spawn(async move {
                for index in 0..PER_TASK {
                    log.append(plain_append(&sample_record(task, index)))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let baseline = started.elapsed().as_secs_f64();
    drop(log);
    let recorded = PER_TASK * TASKS;
    println!(
        "{backend:?}: baseline, {recorded} appends to a plain event log: {:.0} events/s",
        recorded as f64 / baseline
    );

    let chain = Arc::new(AccessChain::open(&test.options()).await.unwrap());
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let chain = chain.clone();
            tokio::spawn(async move {
                for index in 0..PER_TASK {
                    chain.record(&sample_record(task, index)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let stats = chain.log().stats();
    chain.query(&AccessQuery::latest(1)).await.unwrap();
    let caught_up = started.elapsed().as_secs_f64();
    println!(
        "{backend:?}: {recorded} records from {TASKS} tasks in {seconds:.2} s = {:.0} records/s \
         ({} commits, mean {:.1} records each); index level after {caught_up:.2} s",
        recorded as f64 / seconds,
        stats.writes,
        stats.requests as f64 / stats.writes.max(1) as f64,
    );

    // Paced at the API's rate: first the plain event log, then the chain.
    let log = Arc::new(test.open().await);
    let plain = paced(move |task, index| {
        let log = log.clone();
        async move {
            log.append(plain_append(&sample_record(task, PER_TASK + index)))
                .await
                .unwrap();
        }
    })
    .await;
    println!("{backend:?}: paced baseline, plain event log: {plain}");
    let recorder = chain.clone();
    let access = paced(move |task, index| {
        let chain = recorder.clone();
        async move {
            chain
                .record(&sample_record(task, 2 * PER_TASK + index))
                .await
                .unwrap();
        }
    })
    .await;
    chain.query(&AccessQuery::latest(1)).await.unwrap();
    println!("{backend:?}: paced, access chain: {access}");
}

/// What a paced run cost.
struct Paced {
    records: usize,
    seconds: f64,
    latencies: Vec<Duration>,
    process_ticks: u64,
    machine_ticks: u64,
}

impl std::fmt::Display for Paced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at =
            |q: f64| self.latencies[((self.records as f64 * q) as usize).min(self.records - 1)];
        // Clock ticks are 1/100 s.
        let per_record = |ticks: u64| ticks as f64 * 10_000.0 / self.records as f64;
        write!(
            f,
            "{} records in {:.2} s = {:.0}/s; latency p50 {:?}, p99 {:?}; CPU per record {:.0} us \
             in this process, {:.0} us on the whole machine (database server and anything else \
             running included)",
            self.records,
            self.seconds,
            self.records as f64 / self.seconds,
            at(0.5),
            at(0.99),
            per_record(self.process_ticks),
            per_record(self.machine_ticks),
        )
    }
}

/// 64 tasks, each calling `one` every 32 ms, 156 times: 2,000 calls a second in all.
async fn paced<F, Fut>(one: F) -> Paced
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    const TASKS: usize = 64;
    const PER_TASK: usize = 156;
    let (machine_before, process_before) = (machine_busy_ticks(), process_ticks());
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let one = one.clone();
            tokio::spawn(async move {
                let mut pace = tokio::time::interval(Duration::from_millis(32));
                let mut latencies = Vec::with_capacity(PER_TASK);
                for index in 0..PER_TASK {
                    pace.tick().await;
                    let asked = Instant::now();
                    one(task, index).await;
                    latencies.push(asked.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let seconds = started.elapsed().as_secs_f64();
    let (machine_after, process_after) = (machine_busy_ticks(), process_ticks());
    latencies.sort_unstable();
    Paced {
        records: latencies.len(),
        seconds,
        latencies,
        process_ticks: process_after.saturating_sub(process_before),
        machine_ticks: machine_after.saturating_sub(machine_before),
    }
}

/// The append the chain makes for `record`, for a plain event log.
fn plain_append(record: &AccessRecord) -> docket::store::AppendRequest {
    let mut request = docket::store::AppendRequest::new(
        docket::log::StreamId::parse("access").unwrap(),
        record.actor(),
        vec![docket::log::EventDraft::new(
            "access.recorded",
            record.to_payload().unwrap(),
        )],
    );
    request.request_id = record.request_id.clone();
    request
}

fn sample_record(task: usize, index: usize) -> AccessRecord {
    let mut one = record(
        &format!("user:u{task}"),
        &format!("2026-{:04}", index % 100),
        Decision::Allowed,
    );
    one.request_id = Some(format!("req-{task}-{index}"));
    one
}

/// Busy clock ticks of all cores since boot (user, nice, system, irq, softirq, steal).
fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or_default();
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum()
}

/// User and system clock ticks of this process.
fn process_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --release --ignored --nocapture"]
async fn throughput_sqlite() {
    measure_throughput(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --release --ignored --nocapture"]
async fn throughput_postgres() {
    measure_throughput(Backend::Postgres).await;
}
