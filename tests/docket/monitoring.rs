//! Monitoring: `/metrics` in the Prometheus text format with counters that move, who may read
//! it, `/livez` and `/readyz`, JSON log lines carrying request ids, and the background verifier
//! finding tampering and a checkpoint the log no longer matches.
//!
//! The metrics registry is process-wide and the tests run in parallel, so counters are checked
//! to have grown by at least what a test did, never for exact values.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use docket::access::record::{AccessEntry, AccessRecord, Decision};
use docket::domain::identity::Role;
use docket::identity::login::SecondFactor;
use docket::monitoring::alerts::{AlertKind, CollectingAlertSink};
use docket::monitoring::endpoints::{MetricsAccess, metrics_access};
use docket::monitoring::verifier::{BackgroundVerifier, CheckOutcome};
use docket::monitoring::{MetricsToken, MonitoringSettings};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::on_both_backends;
use crate::support::{Backend, TestDocket, TestLog, one_event, sample_log, sign_in};

on_both_backends!(
    metrics_are_prometheus_text_and_counters_move,
    readiness_follows_the_projector_and_the_database,
    the_background_verifier_raises_an_alert_on_a_tampered_event,
    the_background_verifier_checks_the_latest_checkpoint,
    the_checkpoint_check_continues_its_scan_and_audits_what_it_read,
    the_background_verifier_watches_the_access_chain,
);

// ---- HTTP ------------------------------------------------------------------------------------

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

/// One HTTP/1.1 request on a fresh connection.
async fn get(address: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut head = format!("GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// `docket` served on a free loopback port with these monitoring settings.
async fn serve(
    docket: &docket::app::Docket,
    monitoring: MonitoringSettings,
) -> (SocketAddr, actix_web::dev::ServerHandle) {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let components = docket::server::Components {
            log: docket.log.clone(),
            projector: docket.projector.clone(),
            service: docket.service.clone(),
            db: docket.projector.db().clone(),
            persisted: Default::default(),
            identity: docket.identity.clone(),
            access: docket.access.clone(),
            checkpoints: docket.checkpoints.clone(),
            monitoring: monitoring.clone(),
            integrations: docket.integrations.clone(),
            development: false,
            unrecorded_principal_for_benchmarks: None,
        };
        match docket::server::http_server(components, address, Some(1)) {
            Ok(server) => {
                let handle = server.handle();
                tokio::spawn(server);
                return (address, handle);
            }
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(error) => panic!("the server binds: {error}"),
        }
    }
}

// ---- the text format -------------------------------------------------------------------------

/// Every sample of a Prometheus text exposition by `name{labels}`, after checking that each
/// line is a comment (`# HELP name ...`, `# TYPE name kind`) or a sample `name{labels} value`.
fn parse_exposition(text: &str) -> HashMap<String, f64> {
    let sample = regex::Regex::new(
        r#"^([a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*",?)*\})?) (\S+)$"#,
    )
    .unwrap();
    let comment =
        regex::Regex::new(r"^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped))$")
            .unwrap();
    let mut samples = HashMap::new();
    for line in text.lines().filter(|line| !line.is_empty()) {
        if line.starts_with('#') {
            assert!(comment.is_match(line), "not a HELP or TYPE line: {line}");
            continue;
        }
        let captures = sample
            .captures(line)
            .unwrap_or_else(|| panic!("not a sample line: {line}"));
        let value = match &captures[4] {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            number => number
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("not a number: {line}")),
        };
        samples.insert(captures[1].to_owned(), value);
    }
    samples
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

async fn scrape(address: SocketAddr) -> HashMap<String, f64> {
    let reply = get(address, "/metrics", &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.headers["content-type"].starts_with("text/plain; version=0.0.4"),
        "{:?}",
        reply.headers
    );
    parse_exposition(&reply.body)
}

const COMMITTED: &str = r#"docket_appended_events_total{log="events"}"#;
const BAD_PASSWORD: &str = r#"docket_login_failures_total{reason="bad_credentials"}"#;
const DENIALS: &str = "docket_access_denials_total";
const GETS: &str = r#"docket_http_requests_total{method="GET",status="2xx"}"#;

async fn metrics_are_prometheus_text_and_counters_move(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let docket = &test.docket;
    let user = sign_in(&docket.identity, "m.watcher", Role::Attorney).await;
    let (address, handle) = serve(docket, MonitoringSettings::default()).await;
    let before = scrape(address).await;
    let text = get(address, "/metrics", &[]).await.body;
    for name in [
        "docket_appends_total",
        "docket_append_duration_seconds",
        "docket_log_head_position",
        "docket_projection_lag_events",
        "docket_subscriptions_active",
        "docket_subscription_lag_seconds",
        "docket_webhook_deliveries_total",
        "docket_verifications_total",
        "docket_alerts_total",
        "docket_login_failures_total",
        "docket_access_denials_total",
        "docket_http_requests_total",
        "docket_http_request_duration_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} is missing"
        );
    }

    // Two appends, a failed login and a denied access.
    for index in 0..2 {
        let payload = json!({ "title": format!("Watched {index}") });
        docket
            .log
            .append(one_event("matter:metrics-1", "matter.noted", payload))
            .await
            .unwrap();
    }
    let refused = docket
        .identity
        .login(
            &user.email,
            zeroize::Zeroizing::new("not the password at all".to_owned()),
            SecondFactor::Totp(&user.code(0)),
            Some("127.0.0.1"),
        )
        .await;
    assert!(refused.is_err());
    docket.access.record(&denial("2026-0001")).await.unwrap();

    let after = scrape(address).await;
    assert!(value(&after, COMMITTED) >= value(&before, COMMITTED) + 2.0);
    assert!(value(&after, BAD_PASSWORD) >= value(&before, BAD_PASSWORD) + 1.0);
    assert!(value(&after, DENIALS) >= value(&before, DENIALS) + 1.0);
    assert!(
        value(&after, GETS) >= value(&before, GETS) + 1.0,
        "the scrapes count"
    );
    let head = docket.log.head().await.unwrap().position;
    assert_eq!(value(&after, "docket_log_head_position"), head as f64);
    assert!(
        after
            .keys()
            .any(|series| series.starts_with("docket_projection_lag_events{projection=")),
        "each projection's lag"
    );
    // No label value outside the code's own sets: the user, the matter and the email never
    // appear.
    let text = get(address, "/metrics", &[]).await.body;
    for secret in ["m.watcher", "2026-0001", "metrics-1", &user.email] {
        assert!(!text.contains(secret), "{secret} leaked into the metrics");
    }
    handle.stop(false).await;
}

#[test]
fn metrics_are_refused_to_other_hosts_and_proxied_requests_without_a_token() {
    let remote = "192.0.2.10".parse().ok();
    assert_eq!(
        metrics_access(None, remote, false, None),
        MetricsAccess::Forbidden
    );
    let local = "127.0.0.1".parse().ok();
    assert_eq!(
        metrics_access(None, local, false, None),
        MetricsAccess::Allowed
    );
    assert_eq!(
        metrics_access(None, local, true, None),
        MetricsAccess::Forbidden
    );
    let token = MetricsToken::new("scraper-token-for-tests-0001").unwrap();
    let bearer = Some("Bearer scraper-token-for-tests-0001");
    assert_eq!(
        metrics_access(Some(&token), remote, false, bearer),
        MetricsAccess::Allowed
    );
    let wrong = Some("Bearer scraper-token-for-tests-0002");
    assert_eq!(
        metrics_access(Some(&token), remote, false, wrong),
        MetricsAccess::Unauthorized
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_configured_token_and_a_proxy_makes_a_request_remote() {
    let test = TestDocket::new(Backend::Sqlite).await;
    let (open, open_handle) = serve(&test.docket, MonitoringSettings::default()).await;
    let proxied = get(open, "/metrics", &[("x-forwarded-for", "198.51.100.7")]).await;
    assert_eq!(proxied.status, 403);
    assert_eq!(
        serde_json::from_str::<Value>(&proxied.body).unwrap()["error"],
        "METRICS_FORBIDDEN"
    );
    open_handle.stop(false).await;

    let settings = MonitoringSettings {
        metrics_token: Some(MetricsToken::new("scraper-token-for-tests-0001").unwrap()),
        ..MonitoringSettings::default()
    };
    let (address, handle) = serve(&test.docket, settings).await;
    let missing = get(address, "/metrics", &[]).await;
    assert_eq!(missing.status, 401, "a token is needed even from loopback");
    assert_eq!(missing.headers["www-authenticate"], "Bearer");
    let wrong = [("authorization", "Bearer scraper-token-for-tests-0002")];
    let wrong = get(address, "/metrics", &wrong).await;
    assert_eq!(wrong.status, 401);
    assert!(!wrong.body.contains("scraper-token"));
    let right = [("authorization", "Bearer scraper-token-for-tests-0001")];
    let right = get(address, "/metrics", &right).await;
    assert_eq!(right.status, 200);
    parse_exposition(&right.body);
    handle.stop(false).await;
}

// ---- liveness and readiness ------------------------------------------------------------------

async fn readiness_follows_the_projector_and_the_database(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let docket = &test.docket;
    docket.projector.catch_up().await.unwrap();
    let settings = MonitoringSettings {
        ready_max_lag_events: 0,
        ..MonitoringSettings::default()
    };
    let (address, handle) = serve(docket, settings).await;
    let live = get(address, "/livez", &[]).await;
    assert_eq!(live.status, 200);
    let ready = get(address, "/readyz", &[]).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    let body: Value = serde_json::from_str(&ready.body).unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(
        body["checks"],
        json!({ "database": "ok", "projector": "ok", "vault": "ok" })
    );

    // The projector is not running: an event it has not applied puts it behind the bound.
    docket
        .log
        .append(one_event(
            "matter:ready-1",
            "matter.noted",
            json!({ "n": 1 }),
        ))
        .await
        .unwrap();
    let behind = get(address, "/readyz", &[]).await;
    assert_eq!(behind.status, 503, "{}", behind.body);
    let body: Value = serde_json::from_str(&behind.body).unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["failed"], json!(["projector"]));
    docket.projector.catch_up().await.unwrap();
    assert_eq!(
        get(address, "/readyz", &[]).await.status,
        200,
        "caught up again"
    );

    if backend == Backend::Postgres {
        // The database goes away under the server.
        drop_database(&test.test).await;
        let gone = get(address, "/readyz", &[]).await;
        assert_eq!(gone.status, 503, "{}", gone.body);
        let body: Value = serde_json::from_str(&gone.body).unwrap();
        let failed = body["failed"].as_array().unwrap();
        assert!(failed.contains(&json!("database")), "{body}");
        assert!(
            !gone.body.contains("error"),
            "no internal text: {}",
            gone.body
        );
        assert_eq!(get(address, "/livez", &[]).await.status, 200, "still alive");
    }
    handle.stop(false).await;
}

async fn drop_database(test: &TestLog) {
    use sqlx::Connection;
    let url = test.database_url.as_deref().unwrap();
    let (base, name) = url.rsplit_once('/').unwrap();
    let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres"))
        .await
        .unwrap();
    let drop = format!("DROP DATABASE {name} WITH (FORCE)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&mut admin)
        .await
        .unwrap();
}

// ---- JSON logs -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_are_json_and_carry_request_ids() {
    let test = TestLog::new(Backend::Sqlite).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut server = test
        .docket_command()
        .env_remove("DOCKET_CONFIG")
        .env_remove("DOCKET_LOG_FORMAT")
        .env("DOCKET_LOG", "info")
        .args([
            "serve",
            "--log-format",
            "json",
            "--listen",
            &address.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = false;
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (kept, replaced) = if ready {
        let kept = get(address, "/livez", &[("x-request-id", "lb-7f3a.trace_01")]).await;
        let forged = "x\" \"injected";
        let replaced = get(address, "/livez", &[("x-request-id", forged)]).await;
        (Some(kept), Some(replaced))
    } else {
        (None, None)
    };
    server.kill().unwrap();
    let output = server.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let (kept, replaced) = (kept.expect(&stderr), replaced.expect(&stderr));
    assert_eq!(kept.headers["x-request-id"], "lb-7f3a.trace_01");
    let fresh = &replaced.headers["x-request-id"];
    assert!(uuid::Uuid::parse_str(fresh).is_ok(), "{fresh}");

    let lines: Vec<Value> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    assert!(
        lines.iter().any(|line| line["message"] == "serving"),
        "{stderr}"
    );
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == "request")
        .collect();
    let ids: Vec<&str> = requests
        .iter()
        .filter_map(|line| line["request_id"].as_str())
        .collect();
    assert!(ids.contains(&"lb-7f3a.trace_01"), "{stderr}");
    assert!(ids.contains(&fresh.as_str()), "{stderr}");
    assert!(!stderr.contains("injected"), "a bad id is never logged");
    for line in requests {
        assert!(line["level"].is_string() && line["timestamp"].is_string());
        assert!(line["http.status"].is_number(), "{line}");
    }
}

// ---- the background verifier -----------------------------------------------------------------

async fn the_background_verifier_raises_an_alert_on_a_tampered_event(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    sample_log(&log, 10).await;
    let sink = Arc::new(CollectingAlertSink::default());
    let mut verifier = BackgroundVerifier::new(log.store().clone(), None, sink.clone());
    let first = verifier.run_once().await;
    assert_eq!(
        first.log,
        CheckOutcome::Holds(12),
        "genesis, 10 events, a rotation"
    );
    assert_eq!(first.checkpoint, CheckOutcome::Holds(0), "none signed yet");
    assert!(sink.raised().is_empty());

    // New events, one of them altered in the database before the next run.
    for index in 0..3 {
        let payload = json!({ "title": format!("Later {index}") });
        log.append(one_event("matter:later", "matter.noted", payload))
            .await
            .unwrap();
    }
    test.drop_triggers().await;
    test.execute(&[
        "UPDATE events SET payload = replace(payload, 'Later 1', 'Lator 1') WHERE position = 14",
    ])
    .await;
    let second = verifier.run_once().await;
    let CheckOutcome::Failed(alert) = &second.log else {
        panic!("tampering must be found: {second:?}");
    };
    assert_eq!(alert.kind, AlertKind::LogIntegrity);
    assert_eq!(alert.position, Some(14));
    assert_eq!(alert.reason, "hash_mismatch");
    assert!(!alert.detail.contains("Lator"), "no content in the alert");

    // It stays failed, and the alert is raised once.
    let third = verifier.run_once().await;
    assert!(matches!(third.log, CheckOutcome::Failed(_)));
    let raised = sink.raised();
    assert_eq!(raised.len(), 1, "{raised:?}");
    let mut text = String::new();
    docket::metrics::global().encode(&mut text).unwrap();
    let samples = parse_exposition(&text);
    assert!(
        value(
            &samples,
            r#"docket_verifications_total{check="log",result="failed"}"#
        ) >= 2.0
    );
    assert!(value(&samples, r#"docket_alerts_total{kind="log_integrity"}"#) >= 1.0);
}

async fn the_background_verifier_checks_the_latest_checkpoint(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    sample_log(&log, 10).await;
    let checkpoints = docket::transparency::open(&log, None, Default::default())
        .await
        .unwrap();
    let signed = checkpoints.checkpoint_now().await.unwrap();
    assert_eq!(signed.tree_size, 12);
    let sink = Arc::new(CollectingAlertSink::default());
    let mut verifier = BackgroundVerifier::new(log.store().clone(), None, sink.clone());
    let first = verifier.run_once().await;
    assert_eq!(first.checkpoint, CheckOutcome::Holds(12));

    // An event's stored hash is replaced after it was verified: the checkpoint's root no
    // longer matches the events.
    test.drop_triggers().await;
    let forged = test.bytes_literal(&[7u8; 32]);
    test.execute(&[&format!(
        "UPDATE events SET hash = {forged} WHERE position = 5"
    )])
    .await;
    for _ in 0..2 {
        let run = verifier.run_once().await;
        let CheckOutcome::Failed(alert) = &run.checkpoint else {
            panic!("the checkpoint must fail: {run:?}");
        };
        assert_eq!(alert.kind, AlertKind::CheckpointMismatch);
        assert_eq!(alert.position, Some(12));
        assert_eq!(alert.reason, "root_differs");
    }
    let raised = sink.raised();
    assert_eq!(raised.len(), 1, "raised once: {raised:?}");
}

/// The latest checkpoint's check as the background verifier makes it: each run reads only the
/// hashes after the last checkpoint checked, and reads a few blocks of the earlier ones again,
/// in turn, so a rewrite of an event already read is found when the audit comes round to it.
async fn the_checkpoint_check_continues_its_scan_and_audits_what_it_read(backend: Backend) {
    use docket::transparency::against::{
        LatestCheckpoint, TreeCheck, check_latest_checkpoint_from,
    };
    use docket::transparency::leaves::{LeafScan, Rewritten};

    let test = TestLog::new(backend).await;
    let log = test.open().await;
    sample_log(&log, 40).await;
    let checkpoints = docket::transparency::open(&log, None, Default::default())
        .await
        .unwrap();
    let store = log.store().clone();
    let check = |leaves: &mut LeafScan| {
        let store = store.clone();
        let mut kept = leaves.clone();
        async move {
            let outcome = check_latest_checkpoint_from(store.as_ref(), None, &mut kept)
                .await
                .unwrap();
            (outcome, kept)
        }
    };
    let holds = |outcome: &LatestCheckpoint| matches!(outcome, LatestCheckpoint::Checked(finding) if finding.holds);

    // Blocks of 4 leaves, 2 read again per check.
    let mut leaves = LeafScan::with_blocks(4, 2);
    assert_eq!(checkpoints.checkpoint_now().await.unwrap().tree_size, 42);
    let (outcome, kept) = check(&mut leaves).await;
    leaves = kept;
    assert!(holds(&outcome), "{outcome:?}");
    assert_eq!(leaves.size(), 42, "read up to the checkpoint");

    // A larger checkpoint: the scan goes on from 42 and agrees with a scan from position 1.
    for index in 0..10 {
        let payload = json!({ "title": format!("Later {index}") });
        log.append(one_event("matter:later", "matter.noted", payload))
            .await
            .unwrap();
    }
    assert_eq!(checkpoints.checkpoint_now().await.unwrap().tree_size, 52);
    let (outcome, kept) = check(&mut leaves).await;
    leaves = kept;
    assert!(holds(&outcome), "{outcome:?}");
    assert_eq!(leaves.size(), 52);
    let fresh = docket::transparency::against::check_latest_checkpoint(store.as_ref(), None)
        .await
        .unwrap();
    assert_eq!(outcome, fresh);

    // Position 30 (the eighth block, positions 29-32) is rewritten. The audit has read the
    // first two blocks again (two per check, from the first); it reaches the eighth on the third
    // check from now, and that check scans from position 1 and finds the root changed.
    test.drop_triggers().await;
    let forged = test.bytes_literal(&[7u8; 32]);
    test.execute(&[&format!(
        "UPDATE events SET hash = {forged} WHERE position = 30"
    )])
    .await;
    for blocks in ["third and fourth", "fifth and sixth"] {
        let (outcome, kept) = check(&mut leaves).await;
        leaves = kept;
        assert!(
            holds(&outcome),
            "the {blocks} blocks are unchanged: {outcome:?}"
        );
    }
    let mut audited = leaves.clone();
    assert_eq!(
        audited.audit(store.as_ref()).await.unwrap(),
        Some(Rewritten {
            first: 29,
            last: 32
        }),
        "the audit names the block that changed"
    );
    let (outcome, kept) = check(&mut leaves).await;
    let LatestCheckpoint::Checked(finding) = &outcome else {
        panic!("a checked checkpoint: {outcome:?}");
    };
    assert!(!finding.holds);
    assert!(
        matches!(finding.tree, TreeCheck::RootDiffers { .. }),
        "{finding:?}"
    );
    assert_eq!(
        outcome,
        fresh_check(&store).await,
        "as a scan from position 1 finds"
    );

    // Scanned afresh, the new scan holds the events as they are now: it stays failed.
    let (again, _) = check(&mut kept.clone()).await;
    assert_eq!(again, outcome);
}

async fn fresh_check(
    store: &std::sync::Arc<dyn docket::store::LogStore>,
) -> docket::transparency::against::LatestCheckpoint {
    docket::transparency::against::check_latest_checkpoint(store.as_ref(), None)
        .await
        .unwrap()
}

fn denial(matter: &str) -> AccessRecord {
    AccessRecord {
        principal: "user:m.watcher".into(),
        session: None,
        operation: "query matter".into(),
        request_id: None,
        client_address: None,
        entries: vec![AccessEntry {
            matter: Some(matter.into()),
            target: "matter".into(),
            target_id: None,
            fields: vec![],
            decision: Decision::Denied,
            reason: "not_on_team".into(),
        }],
    }
}

async fn the_background_verifier_watches_the_access_chain(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let chain = docket::access::chain::AccessChain::open(&test.options())
        .await
        .unwrap();
    chain.record(&denial("2026-0001")).await.unwrap();
    let sink = Arc::new(CollectingAlertSink::default());
    let access = Some(chain.log().store().clone());
    let mut verifier = BackgroundVerifier::new(log.store().clone(), access, sink.clone());
    let first = verifier.run_once().await;
    assert_eq!(
        first.access_chain,
        Some(CheckOutcome::Holds(2)),
        "genesis and a record"
    );

    let later = chain.record(&denial("2026-0002")).await.unwrap();
    crate::access_chain::drop_access_triggers(&test).await;
    let turned = format!(
        "UPDATE events SET payload = replace(payload, '\"denied\"', '\"allowed\"') \
         WHERE position = {later}"
    );
    crate::access_chain::access_sql(&test, "docket.db", &[&turned]).await;
    let second = verifier.run_once().await;
    let Some(CheckOutcome::Failed(alert)) = &second.access_chain else {
        panic!("a denial turned into an allowance must be found: {second:?}");
    };
    assert_eq!(alert.kind, AlertKind::AccessChainIntegrity);
    assert_eq!(alert.position, Some(later));
    assert_eq!(alert.reason, "hash_mismatch");
    assert_eq!(
        second.log,
        CheckOutcome::Holds(1),
        "the event log is untouched"
    );
    assert_eq!(sink.raised().len(), 1);
}
