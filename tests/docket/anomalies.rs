//! Anomaly detection: the rules trip over what the access chain and the log record, raise one
//! alert per burst as an `alert.raised` event, never twice across restarts, and the alerts
//! reach only those allowed to read them (the `alerts` query, the `events` subscription, the
//! webhook filter and the event gate).

use std::time::Duration;

use docket::access::Principal;
use docket::access::record::{AccessEntry, AccessRecord, Decision};
use docket::identity::api_clients::ScopesRequest;
use docket::identity::login::SecondFactor;
use docket::integrations::gate::Admission;
use docket::integrations::webhooks::filter::EventFilter;
use docket::log::Actor;
use docket::monitoring::alert_log::{self, AlertRaised, AlertSource};
use docket::monitoring::anomaly::rules::Detector;
use docket::monitoring::anomaly::watcher::{Cursor, Watcher};
use docket::monitoring::anomaly::{AnomalySettings, Rule, Threshold, WorkingHours};
use futures::StreamExt;
use serde_json::Value;

use crate::on_both_backends;
use crate::subscriptions::{Desk, next};
use crate::support::{Backend, caller};

on_both_backends!(
    failed_logins_raise_one_alert_per_subject_that_admins_and_auditors_read,
    the_access_chain_trips_every_rule_it_feeds,
    a_restarted_watcher_raises_nothing_twice,
    alerts_go_only_to_those_allowed_to_read_them,
    serve_watches_with_the_thresholds_of_its_configuration,
    integrity_alerts_are_appended_to_the_log,
);

fn settings(set: &[(Rule, u32, u64)]) -> AnomalySettings {
    let mut settings = AnomalySettings::default();
    for (rule, count, window_secs) in set {
        settings
            .thresholds
            .set(*rule, Threshold::new(*count, *window_secs));
    }
    settings
}

fn watcher(desk: &Desk, settings: &AnomalySettings) -> Watcher {
    Watcher::new(
        desk.docket.log.clone(),
        desk.docket.access.clone(),
        &desk._log.options(),
        settings.clone(),
    )
}

/// Runs a watcher until both sources are read to their end.
async fn watch(watcher: &Watcher, detector: &mut Detector, cursor: &mut Cursor) {
    for _ in 0..100 {
        if watcher.step(detector, cursor).await.unwrap() {
            return;
        }
    }
    panic!("the watcher did not catch up");
}

/// A fresh watcher that resumes and catches up; its detector and cursor.
async fn started(desk: &Desk, settings: &AnomalySettings) -> (Watcher, Detector, Cursor) {
    let watcher = watcher(desk, settings);
    let mut detector = Detector::new(settings.thresholds.clone());
    let mut cursor = watcher.resume(&mut detector).await.unwrap();
    watch(&watcher, &mut detector, &mut cursor).await;
    (watcher, detector, cursor)
}

async fn alerts(desk: &Desk) -> Vec<AlertRaised> {
    alert_log::read(&desk.docket.log, 1)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, alert)| alert)
        .collect()
}

async fn fail_login(desk: &Desk, email: &str, address: &str) {
    let failed = desk
        .docket
        .identity
        .login(
            email,
            zeroize::Zeroizing::new("not the password".into()),
            SecondFactor::Totp("000000"),
            Some(address),
        )
        .await;
    assert!(failed.is_err());
}

fn entry(matter: Option<&str>, target: &str, allowed: bool, reason: &str) -> AccessEntry {
    AccessEntry {
        matter: matter.map(str::to_owned),
        target: target.into(),
        target_id: None,
        fields: Vec::new(),
        decision: if allowed {
            Decision::Allowed
        } else {
            Decision::Denied
        },
        reason: reason.into(),
    }
}

async fn record(desk: &Desk, principal: &str, operation: &str, entries: Vec<AccessEntry>) {
    desk.docket
        .access
        .record(&AccessRecord {
            principal: principal.into(),
            session: None,
            operation: operation.into(),
            request_id: None,
            client_address: None,
            entries,
        })
        .await
        .unwrap();
}

/// The GraphQL response of `query` by `user`, errors and all.
async fn graphql(desk: &Desk, user: &str, query: &str) -> Value {
    let caller = caller(&desk.docket, Some(desk.users[user].principal.clone()));
    let request = async_graphql::Request::new(query).data(caller.clone());
    let response = desk.schema.execute(request).await;
    serde_json::to_value(&response).unwrap()
}

async fn failed_logins_raise_one_alert_per_subject_that_admins_and_auditors_read(backend: Backend) {
    let desk = Desk::new(backend).await;
    let settings = settings(&[(Rule::FailedLogins, 3, 600)]);
    for _ in 0..2 {
        fail_login(&desk, "a.ttorney@firm.example", "10.9.9.9").await;
    }
    let (watcher, mut detector, mut cursor) = started(&desk, &settings).await;
    assert!(
        alerts(&desk).await.is_empty(),
        "two failures are below the threshold"
    );
    fail_login(&desk, "a.ttorney@firm.example", "10.9.9.9").await;
    watch(&watcher, &mut detector, &mut cursor).await;
    let raised = alerts(&desk).await;
    let subjects: Vec<_> = raised.iter().map(|a| a.subject.as_deref()).collect();
    assert_eq!(
        subjects,
        vec![Some("account:a.ttorney"), Some("address:10.9.9.9")]
    );
    for alert in &raised {
        assert_eq!(alert.rule, "failed_logins");
        assert_eq!((alert.count, alert.threshold), (3, 3));
        assert_eq!(alert.source, AlertSource::Log);
        assert!(alert.alert_id.starts_with("al_"));
    }
    // A fourth failure within the window raises nothing more.
    fail_login(&desk, "a.ttorney@firm.example", "10.9.9.9").await;
    watch(&watcher, &mut detector, &mut cursor).await;
    assert_eq!(alerts(&desk).await.len(), 2);

    for reader in ["ad.min", "au.ditor"] {
        let response = graphql(
            &desk,
            reader,
            r#"{ alerts(rule: "failed_logins") { rule subject count severity source summary position } }"#,
        )
        .await;
        assert!(response.get("errors").is_none(), "{reader}: {response}");
        let listed = response["data"]["alerts"].as_array().unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0]["subject"], "address:10.9.9.9", "newest first");
        assert_eq!(listed[0]["severity"], "high");
        assert!(listed[0]["position"].as_u64() > listed[1]["position"].as_u64());
    }
    let one = graphql(
        &desk,
        "ad.min",
        r#"{ alerts(subject: "account:a.ttorney", first: 1) { subject } }"#,
    )
    .await;
    assert_eq!(one["data"]["alerts"][0]["subject"], "account:a.ttorney");
    let refused = graphql(&desk, "a.ttorney", "{ alerts { rule } }").await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let too_many = graphql(&desk, "ad.min", "{ alerts(first: 100000) { rule } }").await;
    assert_eq!(
        too_many["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
}

async fn the_access_chain_trips_every_rule_it_feeds(backend: Backend) {
    let desk = Desk::new(backend).await;
    // Working hours that exclude the present moment, so every read now is off hours.
    let hour = (chrono::Utc::now() + chrono::Duration::hours(3)).format("%H");
    let mut settings = settings(&[
        (Rule::ManyMatters, 3, 600),
        (Rule::BulkExports, 2, 600),
        (Rule::ApiClientErrors, 2, 300),
    ]);
    settings.thresholds.working_hours =
        Some(WorkingHours::parse(&format!("Mon-Sun {hour}:00-{hour}:30")).unwrap());
    let (watcher, mut detector, mut cursor) = started(&desk, &settings).await;
    let before = alerts(&desk).await.len();

    let eve = "user:a.ttorney";
    record(
        &desk,
        eve,
        "query matters",
        vec![
            entry(Some("2026-0001"), "matter", true, "firm_visible"),
            entry(Some("2026-0002"), "matter", true, "firm_visible"),
        ],
    )
    .await;
    record(
        &desk,
        eve,
        "query matter",
        vec![entry(Some("2026-0003"), "matter", true, "firm_visible")],
    )
    .await;
    record(
        &desk,
        eve,
        "query matter",
        vec![entry(Some("2026-0702"), "matter", false, "walled")],
    )
    .await;
    record(
        &desk,
        "user:p.one",
        "mutation breakGlass",
        vec![entry(Some("2026-0702"), "matter", true, "break_glass")],
    )
    .await;
    for _ in 0..2 {
        record(
            &desk,
            "user:ad.min",
            "query subjectAccessExport",
            vec![entry(
                None,
                "subject_access_export",
                true,
                "export_subject_data",
            )],
        )
        .await;
    }
    for _ in 0..2 {
        record(
            &desk,
            "api_client:billing",
            "mutation recordTime",
            vec![entry(None, "api_call", false, "rate_limited")],
        )
        .await;
    }
    watch(&watcher, &mut detector, &mut cursor).await;
    let raised = alerts(&desk).await.split_off(before);
    // Off hours: the reads of the desk's own setup count too, so only the attorney's alert
    // is checked exactly.
    let off_hours: Vec<_> = raised.iter().filter(|a| a.rule == "off_hours").collect();
    assert!(
        off_hours
            .iter()
            .any(|a| a.subject.as_deref() == Some(eve) && a.matters == ["2026-0001"]),
        "{off_hours:?}"
    );
    let mut seen: Vec<(String, Option<String>, Vec<String>)> = raised
        .iter()
        .filter(|a| a.rule != "off_hours")
        .map(|a| (a.rule.clone(), a.subject.clone(), a.matters.clone()))
        .collect();
    seen.sort();
    let owned = |rule: &str, subject: &str, matters: &[&str]| {
        (
            rule.to_owned(),
            Some(subject.to_owned()),
            matters.iter().map(|m| (*m).to_owned()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        seen,
        vec![
            owned("api_client_errors", "api_client:billing", &[]),
            owned("break_glass", "user:p.one", &["2026-0702"]),
            owned("bulk_exports", "user:ad.min", &[]),
            owned(
                "many_matters",
                eve,
                &["2026-0001", "2026-0002", "2026-0003"]
            ),
            owned("walled_attempts", eve, &["2026-0702"]),
        ]
    );
    for alert in &raised {
        assert_eq!(alert.source, AlertSource::AccessChain);
        let severity = alert.severity.as_str();
        match alert.rule.as_str() {
            "off_hours" | "api_client_errors" => assert_eq!(severity, "medium"),
            _ => assert_eq!(severity, "high"),
        }
    }
}

async fn a_restarted_watcher_raises_nothing_twice(backend: Backend) {
    let desk = Desk::new(backend).await;
    let settings = settings(&[(Rule::WalledAttempts, 2, 600)]);
    let walled = || vec![entry(Some("2026-0702"), "matter", false, "walled")];
    let (watcher, mut detector, mut cursor) = started(&desk, &settings).await;
    for _ in 0..2 {
        record(&desk, "user:a.ttorney", "query matter", walled()).await;
    }
    watch(&watcher, &mut detector, &mut cursor).await;
    assert_eq!(alerts(&desk).await.len(), 1);
    drop(watcher);

    // A new watcher (a restart, or another process taking over) goes back a window, but not
    // before the alert it finds, and keeps its subject quiet.
    let (watcher, mut detector, mut cursor) = started(&desk, &settings).await;
    assert_eq!(alerts(&desk).await.len(), 1, "nothing raised twice");
    for _ in 0..2 {
        record(&desk, "user:a.ttorney", "query matter", walled()).await;
    }
    watch(&watcher, &mut detector, &mut cursor).await;
    assert_eq!(alerts(&desk).await.len(), 1, "the subject is still quiet");
    // Another subject trips as usual.
    for _ in 0..2 {
        record(&desk, "user:p.two", "query matter", walled()).await;
    }
    watch(&watcher, &mut detector, &mut cursor).await;
    let raised = alerts(&desk).await;
    assert_eq!(raised.len(), 2);
    assert_eq!(raised[1].subject.as_deref(), Some("user:p.two"));

    // The same alert appended again (two processes racing) is kept once.
    let position = alert_log::append(&desk.docket.log, &raised[1])
        .await
        .unwrap();
    assert_eq!(alerts(&desk).await.len(), 2);
    assert!(position <= desk.docket.log.head().await.unwrap().position);
}

async fn alerts_go_only_to_those_allowed_to_read_them(backend: Backend) {
    let desk = Desk::new(backend).await;
    let identity = &desk.docket.identity;
    let system = Actor::system();
    let mut scopes = ScopesRequest::default();
    identity
        .register_api_client_with(&system, None, "billing", "Billing", Some(&scopes))
        .await
        .unwrap();
    scopes.alerts = true;
    identity
        .register_api_client_with(&system, None, "siem", "Security monitoring", Some(&scopes))
        .await
        .unwrap();

    let admin = desk.users["ad.min"].principal.clone();
    let attorney = desk.users["a.ttorney"].principal.clone();
    let mut admin_alerts = desk.subscribe(&admin, r#"(types: ["alert.raised"])"#);
    let mut attorney_alerts = desk.subscribe(&attorney, r#"(types: ["alert.raised"])"#);
    let mut auditor_everything = desk.subscribe(&desk.users["au.ditor"].principal, "");
    // Let every subscription start before the alert is appended.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let alert = AlertRaised {
        alert_id: alert_log::alert_id(&["test"]),
        rule: "walled_attempts".into(),
        severity: alert_log::Severity::High,
        subject: Some("user:a.ttorney".into()),
        count: 1,
        threshold: 1,
        window_secs: 3600,
        first_at: "2026-12-04T03:00:00.000000Z".into(),
        last_at: "2026-12-04T03:00:00.000000Z".into(),
        matters: vec!["2026-0702".into()],
        source: AlertSource::AccessChain,
        through: Some(1),
        summary: "1 attempts on walled matters within 60 min".into(),
    };
    let position = alert_log::append(&desk.docket.log, &alert).await.unwrap();
    let note = desk
        .note("p.one", crate::subscriptions::OURS, "after the alert")
        .await;

    let delivered = next(&mut admin_alerts).await;
    let event = &delivered["data"]["events"];
    assert_eq!(event["eventType"], "alert.raised");
    assert_eq!(event["position"], position);
    assert_eq!(event["stream"], "alerts");
    assert!(event["matterNumber"].is_null());
    let payload: Value = serde_json::from_str(event["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["subject"], "user:a.ttorney");
    // A subscription that did not ask for alerts gets the note, not the alert.
    let first = next(&mut auditor_everything).await;
    assert_eq!(first["data"]["events"]["position"], note);
    // The attorney gets nothing.
    assert!(
        tokio::time::timeout(Duration::from_millis(700), attorney_alerts.next())
            .await
            .is_err(),
        "an attorney receives no alert"
    );

    // The gate (webhooks decide with it too) and the webhook filter.
    let stored = desk
        .docket
        .log
        .store()
        .read_page(position, 1)
        .await
        .unwrap()
        .remove(0);
    let gate = &desk.docket.integrations.gate;
    gate.observe(&stored).await.unwrap();
    let admit = |principal: Principal| {
        let stored = stored.clone();
        async move { gate.admit(&principal, &stored).await.unwrap() }
    };
    assert!(matches!(
        admit(Principal::api_client("siem").unwrap()).await,
        Admission::Content { .. }
    ));
    assert!(matches!(
        admit(desk.users["au.ditor"].principal.clone()).await,
        Admission::Content { .. }
    ));
    for refused in [
        Principal::api_client("billing").unwrap(),
        attorney.clone(),
        desk.users["p.one"].principal.clone(),
    ] {
        assert_eq!(admit(refused).await, Admission::Withheld);
    }
    let asks = |types: &[&str], matters: &[&str]| {
        let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
        let matters: Vec<String> = matters.iter().map(|m| (*m).to_owned()).collect();
        EventFilter::new(&matters, &types).unwrap().matches(&stored)
    };
    assert!(asks(&["alert.raised"], &[]));
    assert!(asks(&["alert.*"], &[]));
    assert!(
        !asks(&[], &[]),
        "an endpoint asking for everything gets no alerts"
    );
    assert!(!asks(&["alert.raised"], &["2026-0702"]));
    assert!(!asks(&["matter.*"], &[]));
}

async fn serve_watches_with_the_thresholds_of_its_configuration(backend: Backend) {
    let test = crate::support::TestLog::new(backend).await;
    std::fs::write(
        test.options().data_dir.join("docket.toml"),
        "[anomaly]\nfailed_logins = { count = 2, window_secs = 600 }\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut server = test
        .docket_command()
        .env_remove("DOCKET_CONFIG")
        .args(["serve", "--listen", &address.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let login = serde_json::json!({
        "query": r#"mutation { login(input: {email: "nobody@firm.example",
            password: "not the password", totpCode: "000000"}) { __typename } }"#
    })
    .to_string();
    let mut failures = 0;
    for _ in 0..300 {
        if post(address, &login)
            .await
            .is_some_and(|reply| reply.starts_with("HTTP/1.1 200"))
        {
            failures += 1;
            if failures == 2 {
                break;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let store = docket::store::event_log::open_existing_store(&test.options())
        .await
        .unwrap();
    let mut raised = Vec::new();
    for _ in 0..200 {
        raised = store
            .read_stream_page(alert_log::STREAM, 1, 10)
            .await
            .unwrap();
        if !raised.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill().unwrap();
    let _ = server.wait();
    assert_eq!(failures, 2, "the server answered both logins");
    assert_eq!(raised.len(), 1, "one alert, about the address");
    let alert: AlertRaised = serde_json::from_str(&raised[0].payload).unwrap();
    assert_eq!(alert.rule, "failed_logins");
    assert_eq!(alert.subject.as_deref(), Some("address:127.0.0.1"));
    assert_eq!(alert.threshold, 2);
    assert_eq!(raised[0].actor, "system");
}

/// The raw reply to an anonymous `POST /graphql` of `body`, or `None` if nothing listens.
async fn post(address: std::net::SocketAddr, body: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.ok()?;
    Some(String::from_utf8_lossy(&reply).into_owned())
}

async fn integrity_alerts_are_appended_to_the_log(backend: Backend) {
    use docket::monitoring::alert_log::LoggedAlertSink;
    use docket::monitoring::alerts::{Alert, AlertKind, AlertSink};
    let desk = Desk::new(backend).await;
    let (sink, _appending) = LoggedAlertSink::spawn(desk.docket.log.clone());
    sink.raise(&Alert {
        kind: AlertKind::LogIntegrity,
        position: Some(3),
        event_id: Some("0190a3b4-7c1d-7000-8000-000000000003".into()),
        reason: "hash_mismatch".into(),
        detail: "the stored hash is not the event's".into(),
    });
    let mut raised = Vec::new();
    for _ in 0..100 {
        raised = alerts(&desk).await;
        if !raised.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(raised.len(), 1);
    let alert = &raised[0];
    assert_eq!(alert.rule, "log_integrity");
    assert_eq!(alert.severity, alert_log::Severity::Critical);
    assert_eq!(alert.source, AlertSource::Verifier);
    assert_eq!(alert.through, Some(3));
    assert_eq!(alert.summary, "verification failed (hash_mismatch)");
    let listed = graphql(&desk, "au.ditor", "{ alerts { rule severity through } }").await;
    assert_eq!(listed["data"]["alerts"][0]["severity"], "critical");
}
