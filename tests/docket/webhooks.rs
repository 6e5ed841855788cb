//! Signed webhooks end to end, on both backends: a real HTTP receiver (actix-web on a local
//! socket), both signing schemes verified here and by the Standard Webhooks reference library
//! (tests/webhooks/verify.js), key rotation, retries with backoff, 410 and exhausted retries,
//! restarts, replays, filters and authorisation, the SSRF rules, the GraphQL administration and
//! the delivery log, and two senders sharing one store.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use async_graphql::{Request, Variables};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use docket::access::Principal;
use docket::api::graphql::caller::Caller;
use docket::api::graphql::{self, with_loaders};
use docket::app::Docket;
use docket::domain::commands::{AddNote, AddTeamMember, CreateTask, MatterCommand, OpenMatter};
use docket::domain::events::TeamCapacity;
use docket::domain::identity::Role;
use docket::identity::admin::WallSpec;
use docket::integrations::webhooks::{
    Backoff, Cidr, Delivery, DeliveryStatus, EgressPolicy, EndpointStatus, NewEndpoint, Scheme,
    WebhookError, WebhookParts, WebhookSettings, Webhooks, Workers, events,
};
use docket::log::{Actor, Event};
use docket::service::CommandContext;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestLog, sign_in};

const MATTER: &str = "2026-0001";
const OTHER: &str = "2026-0002";
const CLIENT: &str = "billing";

// ---- the receiver --------------------------------------------------------------------------

/// One request as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    headers: HashMap<String, String>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// What the receiver answers.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
}

fn answer(status: u16) -> Answer {
    Answer {
        status,
        retry_after: None,
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Vec<Received>,
    /// Answers to give in turn; then `otherwise`.
    script: VecDeque<Answer>,
    otherwise: Option<Answer>,
}

/// An HTTP server on 127.0.0.1 that records every request and answers as scripted.
struct Receiver {
    address: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
    handle: ServerHandle,
}

async fn receive(
    request: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<ReceiverState>>,
) -> HttpResponse {
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let mut state = state.lock().unwrap();
    state.received.push(Received {
        at: Instant::now(),
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    });
    let reply = state
        .script
        .pop_front()
        .or_else(|| state.otherwise.clone())
        .unwrap_or_else(|| answer(200));
    let status = actix_web::http::StatusCode::from_u16(reply.status).unwrap();
    let mut response = HttpResponse::build(status);
    if let Some(wait) = reply.retry_after {
        response.insert_header(("retry-after", wait));
    }
    if reply.status == 302 {
        response.insert_header(("location", "http://127.0.0.1:9/elsewhere"));
    }
    response.body(format!("answered {}", reply.status))
}

impl Receiver {
    async fn start() -> Receiver {
        let state = web::Data::new(Mutex::new(ReceiverState::default()));
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let address = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver {
            address,
            state: state.into_inner(),
            handle,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hooks", self.address)
    }

    fn script(&self, answers: &[Answer]) {
        self.state
            .lock()
            .unwrap()
            .script
            .extend(answers.iter().cloned());
    }

    fn otherwise(&self, answer: Option<Answer>) {
        self.state.lock().unwrap().otherwise = answer;
    }

    fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

// ---- Docket with webhooks ------------------------------------------------------------------

/// Settings that let webhooks reach the local receiver and retry within milliseconds.
fn test_settings(waits_ms: &str) -> WebhookSettings {
    WebhookSettings {
        egress: EgressPolicy {
            allow_http: true,
            allowed: vec![
                Cidr::parse("127.0.0.1/32").unwrap(),
                Cidr::parse("::1").unwrap(),
            ],
        },
        backoff: Backoff {
            jitter: 0.0,
            ..Backoff::from_millis_list(waits_ms).unwrap()
        },
        timeout: Duration::from_secs(3),
        lease: Duration::from_secs(10),
        poll: Duration::from_millis(20),
        reload: Duration::from_millis(100),
        concurrency: 8,
        rotation_overlap: Duration::from_secs(3600),
    }
}

struct Firm {
    test: TestLog,
    docket: Docket,
    webhooks: Arc<Webhooks>,
    workers: Workers,
    receiver: Receiver,
}

fn as_user(id: &str) -> CommandContext {
    CommandContext::new(Actor::parse(&format!("user:{id}")).unwrap())
}

async fn open_matter(docket: &Docket, number: &str) {
    let command = OpenMatter {
        matter_number: number.into(),
        title: format!("Matter {number}"),
        practice_area: "litigation".into(),
        responsible_attorney: "ada".into(),
        ..OpenMatter::default()
    };
    docket
        .service
        .open_matter(&as_user("ada"), &command)
        .await
        .unwrap();
}

async fn change(docket: &Docket, number: &str, command: MatterCommand) -> u64 {
    docket
        .service
        .change_matter(&as_user("ada"), number, &command)
        .await
        .unwrap()
        .last_position
}

async fn note(docket: &Docket, number: &str, body: &str) -> u64 {
    let command = MatterCommand::AddNote(AddNote {
        privileged: false,
        subject: None,
        body: body.into(),
    });
    change(docket, number, command).await
}

fn parts(docket: &Docket) -> WebhookParts {
    WebhookParts {
        log: docket.log.clone(),
        identity: docket.identity.clone(),
        vault: docket.vault.clone(),
        access: docket.access.clone(),
        feed: docket.integrations.feed.clone(),
        gate: docket.integrations.gate.clone(),
    }
}

impl Firm {
    /// A firm with matter 2026-0001 (the API client `billing` on its team) and 2026-0002 (not),
    /// a running webhook service and a receiver.
    async fn new(backend: Backend, waits_ms: &str) -> Firm {
        let test = TestLog::new(backend).await;
        let docket = Docket::open_with(&test.options(), Duration::from_secs(5))
            .await
            .unwrap();
        docket.projector.spawn();
        docket.integrations.spawn(&docket.log);
        docket
            .identity
            .register_api_client(&Actor::system(), None, CLIENT, "Billing")
            .await
            .unwrap();
        open_matter(&docket, MATTER).await;
        open_matter(&docket, OTHER).await;
        let member = AddTeamMember {
            user_id: CLIENT.into(),
            capacity: TeamCapacity::Staff,
        };
        change(&docket, MATTER, MatterCommand::AddTeamMember(member)).await;
        let webhooks = Webhooks::open(parts(&docket), &test.options(), test_settings(waits_ms))
            .await
            .unwrap();
        let workers = webhooks.spawn();
        let receiver = Receiver::start().await;
        Firm {
            test,
            docket,
            webhooks,
            workers,
            receiver,
        }
    }

    async fn register(&self, scheme: Scheme, matters: &[&str], types: &[&str]) -> (String, String) {
        let registered = self
            .webhooks
            .register(
                &Actor::system(),
                None,
                NewEndpoint {
                    client_id: CLIENT.into(),
                    url: self.receiver.url(),
                    matters: matters.iter().map(|m| m.to_string()).collect(),
                    event_types: types.iter().map(|t| t.to_string()).collect(),
                    scheme,
                    from_position: None,
                },
            )
            .await
            .unwrap();
        (
            registered.endpoint.endpoint_id,
            registered.receiver_key.to_string(),
        )
    }

    async fn deliveries(&self, endpoint_id: &str) -> Vec<Delivery> {
        self.webhooks
            .db()
            .deliveries(endpoint_id, None, None, 100)
            .await
            .unwrap()
    }

    async fn delivery_at(&self, endpoint_id: &str, position: u64) -> Option<Delivery> {
        self.deliveries(endpoint_id)
            .await
            .into_iter()
            .find(|d| d.position == position)
    }

    /// Waits until the delivery of `position` reaches `status`.
    async fn settled(&self, endpoint_id: &str, position: u64, status: DeliveryStatus) -> Delivery {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self.delivery_at(endpoint_id, position).await;
            if let Some(delivery) = found.as_ref().filter(|d| d.status == status) {
                return delivery.clone();
            }
            assert!(
                Instant::now() < deadline,
                "delivery of {position} did not become {status:?}: {found:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the receiver has had `count` requests.
    async fn received(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let received = self.receiver.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} of {count} requests",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn endpoint_status(&self, endpoint_id: &str) -> (EndpointStatus, Option<String>) {
        let endpoint = self
            .webhooks
            .db()
            .endpoint(endpoint_id)
            .await
            .unwrap()
            .unwrap();
        (endpoint.status, endpoint.disabled_reason)
    }

    /// The events of the `integrations` stream.
    async fn integration_events(&self) -> Vec<Event> {
        self.docket
            .log
            .store()
            .read_stream_page(events::STREAM, 1, 1000)
            .await
            .unwrap()
    }

    /// Waits for the `webhook.endpoint_disabled` event Docket appends itself (the alert).
    async fn alert(&self) -> Event {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.integration_events().await.into_iter().find(|event| {
                event.event_type == events::ENDPOINT_DISABLED && event.actor == "system"
            });
            if let Some(event) = found {
                return event;
            }
            assert!(Instant::now() < deadline, "the disabling is in the log");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.workers.abort();
        self.receiver.stop().await;
    }
}

/// Waits a little and checks that nothing more arrived.
async fn quiet(firm: &Firm, expected: usize) {
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        firm.receiver.received().len(),
        expected,
        "nothing more arrives"
    );
}

// ---- verification --------------------------------------------------------------------------

/// Checks a delivery's signatures as a receiver would: some signature in `webhook-signature`
/// verifies under `key` (`whsec_` or `whpk_`).
fn verifies(received: &Received, key: &str) -> bool {
    let id = received.header("webhook-id");
    let timestamp = received.header("webhook-timestamp");
    let content = format!("{id}.{timestamp}.{}", received.body);
    received
        .header("webhook-signature")
        .split(' ')
        .any(|signature| match signature.split_once(',') {
            Some(("v1", encoded)) => key.strip_prefix("whsec_").is_some_and(|secret| {
                use hmac::{KeyInit, Mac};
                let secret = STANDARD.decode(secret).unwrap();
                let mut mac =
                    <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&secret).unwrap();
                mac.update(content.as_bytes());
                mac.verify_slice(&STANDARD.decode(encoded).unwrap()).is_ok()
            }),
            Some(("v1a", encoded)) => key.strip_prefix("whpk_").is_some_and(|public| {
                let bytes: [u8; 32] = STANDARD.decode(public).unwrap().try_into().unwrap();
                let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes).unwrap();
                let signature =
                    ed25519_dalek::Signature::from_slice(&STANDARD.decode(encoded).unwrap())
                        .unwrap();
                key.verify_strict(content.as_bytes(), &signature).is_ok()
            }),
            _ => false,
        })
}

/// Whether the Standard Webhooks reference library (and Node's ed25519) accept each delivery
/// under its key; `None` (with a message) when Node or the library is not installed.
fn verified_by_reference_library(cases: &[(&Received, &str)]) -> Option<Vec<bool>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks");
    if !dir.join("node_modules/standardwebhooks").exists() {
        eprintln!(
            "SKIPPED the Standard Webhooks reference check: the npm package is not installed \
             (run `npm ci --prefix tests/webhooks`)"
        );
        return None;
    }
    let input = json!({
        "cases": cases.iter().map(|(received, key)| json!({
            "key": key,
            "headers": received.headers,
            "body": received.body,
        })).collect::<Vec<_>>(),
    });
    let mut child = match std::process::Command::new("node")
        .arg(dir.join("verify.js"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(_) => {
            eprintln!("SKIPPED the Standard Webhooks reference check: node is not installed");
            return None;
        }
    };
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.to_string().as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "verify.js failed");
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    Some(
        answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|result| result["ok"] == json!(true))
            .collect(),
    )
}

/// Checks the webhook events of the log against their schemas: required members present, no
/// member the schema does not describe, and no secret anywhere.
fn check_event_schemas(events: &[Event]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/events");
    for event in events {
        assert!(
            !event.payload.contains("whsec_") && !event.payload.contains("whsk_"),
            "no secret in {}",
            event.event_type
        );
        let path = dir.join(format!(
            "{}.v{}.json",
            event.event_type, event.schema_version
        ));
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let payload: Value = serde_json::from_str(&event.payload).unwrap();
        let properties = schema["properties"].as_object().unwrap();
        for (member, value) in payload.as_object().unwrap() {
            let Some(rule) = properties.get(member) else {
                panic!("{}: {member} is not in the schema", event.event_type);
            };
            let (rule, values) = match value {
                Value::Array(items) => (&rule["items"], items.iter().collect::<Vec<_>>()),
                other => (rule, vec![other]),
            };
            for value in values {
                if let Some(pattern) = rule["pattern"].as_str() {
                    let pattern = regex::Regex::new(pattern).unwrap();
                    assert!(
                        pattern.is_match(value.as_str().unwrap()),
                        "{}: {member} = {value}",
                        event.event_type
                    );
                }
                if let Some(allowed) = rule["enum"].as_array() {
                    assert!(allowed.contains(value), "{}: {member}", event.event_type);
                }
                if rule["type"] == "integer" {
                    assert!(value.is_u64(), "{}: {member}", event.event_type);
                }
            }
        }
        for required in schema["required"].as_array().unwrap() {
            assert!(
                payload.get(required.as_str().unwrap()).is_some(),
                "{}: {required}",
                event.event_type
            );
        }
    }
}

// ---- the tests -----------------------------------------------------------------------------

async fn ed25519_deliveries_are_signed_and_carry_the_event(backend: Backend) {
    let firm = Firm::new(backend, "20,40").await;
    let (endpoint, public_key) = firm.register(Scheme::Ed25519, &[], &[]).await;
    assert!(public_key.starts_with("whpk_"));
    let position = note(&firm.docket, MATTER, "Call the insurer about the claim").await;
    let received = firm.received(1).await;
    let delivery = firm
        .settled(&endpoint, position, DeliveryStatus::Delivered)
        .await;
    let hook = &received[0];
    assert_eq!(hook.header("webhook-id"), delivery.delivery_id);
    assert!(hook.header("webhook-id").starts_with("msg_"));
    assert_eq!(hook.header("content-type"), "application/json");
    let sent: i64 = hook.header("webhook-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - sent).abs() < 30);
    assert!(hook.header("webhook-signature").starts_with("v1a,"));
    assert!(verifies(hook, &public_key), "the signature verifies");
    let mut forged = hook.clone();
    forged.body = forged.body.replace("insurer", "insured");
    assert!(!verifies(&forged, &public_key), "a changed body does not");

    // The body: the event's metadata and, the client being on the team, its opened payload.
    let body = hook.json();
    let event = firm
        .docket
        .log
        .store()
        .read_page(position, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(body["type"], "matter.note_added");
    assert_eq!(body["timestamp"], json!(event.recorded_at));
    assert_eq!(body["data"]["position"], json!(position));
    assert_eq!(body["data"]["id"], json!(event.id));
    assert_eq!(body["data"]["matter"], MATTER);
    assert_eq!(body["data"]["hash"], json!(hex::encode(event.hash)));
    assert_eq!(
        body["data"]["signature"],
        json!(hex::encode(event.signature))
    );
    assert_eq!(body["data"]["key_id"], json!(event.key_id));
    assert_eq!(
        body["data"]["payload"]["private"]["body"],
        "Call the insurer about the claim"
    );
    assert!(
        !event.payload.contains("insurer"),
        "the log holds it sealed"
    );

    // The read of client data was recorded before it was sent.
    let records = firm
        .docket
        .access
        .log()
        .store()
        .read_page(1, 10_000)
        .await
        .unwrap();
    let recorded = records.iter().any(|record| {
        let payload: Value = serde_json::from_str(&record.payload).unwrap();
        payload["principal"] == "api_client:billing"
            && payload["operation"] == "webhook delivery"
            && payload["request_id"] == json!(delivery.delivery_id)
            && payload["entries"][0]["matter"] == MATTER
            && payload["entries"][0]["fields"][0] == "matter.notes"
    });
    assert!(recorded, "the delivery's read is in the access chain");

    // The delivery log.
    let attempts = firm
        .webhooks
        .db()
        .attempts(&delivery.delivery_id)
        .await
        .unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status_code, Some(200));
    assert_eq!(attempts[0].error_class, None);

    if let Some(results) =
        verified_by_reference_library(&[(hook, &public_key), (&forged, &public_key)])
    {
        assert_eq!(results, vec![true, false]);
    }
    check_event_schemas(&firm.integration_events().await);
    firm.stop().await;
}

async fn hmac_deliveries_verify_with_the_reference_library(backend: Backend) {
    let firm = Firm::new(backend, "20").await;
    let (endpoint, secret) = firm.register(Scheme::HmacSha256, &[], &[]).await;
    assert!(secret.starts_with("whsec_"));
    assert_eq!(
        STANDARD.decode(&secret["whsec_".len()..]).unwrap().len(),
        32
    );
    let position = note(&firm.docket, MATTER, "Draft the reply").await;
    let received = firm.received(1).await;
    firm.settled(&endpoint, position, DeliveryStatus::Delivered)
        .await;
    let hook = &received[0];
    assert!(hook.header("webhook-signature").starts_with("v1,"));
    assert!(verifies(hook, &secret));
    let other = format!("whsec_{}", STANDARD.encode([7u8; 32]));
    assert!(!verifies(hook, &other), "another secret does not verify");
    if let Some(results) = verified_by_reference_library(&[(hook, &secret), (hook, &other)]) {
        assert_eq!(results, vec![true, false]);
    }
    // The secret is stored sealed: it is in no event and not in the store in clear.
    let stored = firm.webhooks.db().signing_keys(&endpoint, 0).await.unwrap();
    assert!(!stored[0].sealed.contains(&secret["whsec_".len()..]));
    check_event_schemas(&firm.integration_events().await);
    firm.stop().await;
}

async fn a_rotation_signs_with_both_keys_during_the_overlap(backend: Backend) {
    let firm = Firm::new(backend, "20").await;
    let (endpoint, old) = firm.register(Scheme::HmacSha256, &[], &[]).await;
    let rotated = firm
        .webhooks
        .rotate_secret(
            &Actor::system(),
            None,
            &endpoint,
            None,
            Some(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let new = rotated.receiver_key.to_string();
    assert_ne!(new, old);
    note(&firm.docket, MATTER, "First after rotation").await;
    let received = firm.received(1).await;
    let hook = &received[0];
    assert_eq!(hook.header("webhook-signature").split(' ').count(), 2);
    assert!(verifies(hook, &old), "the old secret still verifies");
    assert!(verifies(hook, &new), "the new secret verifies");
    if let Some(results) = verified_by_reference_library(&[(hook, &old), (hook, &new)]) {
        assert_eq!(results, vec![true, true]);
    }

    // A rotation to ed25519 with no overlap: only the new key signs.
    let rotated = firm
        .webhooks
        .rotate_secret(
            &Actor::system(),
            None,
            &endpoint,
            Some(Scheme::Ed25519),
            Some(Duration::ZERO),
        )
        .await
        .unwrap();
    let public_key = rotated.receiver_key.to_string();
    assert!(public_key.starts_with("whpk_"));
    note(&firm.docket, MATTER, "Second after rotation").await;
    let received = firm.received(2).await;
    let hook = &received[1];
    assert_eq!(hook.header("webhook-signature").split(' ').count(), 1);
    assert!(verifies(hook, &public_key));
    assert!(!verifies(hook, &new) && !verifies(hook, &old));
    if let Some(results) = verified_by_reference_library(&[(hook, &public_key), (hook, &new)]) {
        assert_eq!(results, vec![true, false]);
    }
    let types: Vec<String> = firm
        .integration_events()
        .await
        .into_iter()
        .map(|event| event.event_type)
        .collect();
    assert_eq!(
        types,
        vec![
            events::ENDPOINT_REGISTERED,
            events::SECRET_ROTATED,
            events::SECRET_ROTATED
        ]
    );
    check_event_schemas(&firm.integration_events().await);
    firm.stop().await;
}

/// `docket_webhook_deliveries_total{outcome}` now (process-wide: other tests add to it too).
fn attempts_counted(outcome: &str) -> u64 {
    let mut text = String::new();
    docket::metrics::global().encode(&mut text).unwrap();
    let series = format!("docket_webhook_deliveries_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .and_then(|value| value.parse().ok())
        .unwrap()
}

async fn failures_are_retried_with_backoff_until_they_succeed(backend: Backend) {
    let firm = Firm::new(backend, "100,200,5000").await;
    let (endpoint, key) = firm.register(Scheme::Ed25519, &[], &[]).await;
    firm.receiver.script(&[
        answer(500),
        Answer {
            status: 429,
            retry_after: Some("1".into()),
        },
        answer(302),
    ]);
    let (retrying, delivered) = (attempts_counted("retrying"), attempts_counted("delivered"));
    let position = note(&firm.docket, MATTER, "Retry me").await;
    let received = firm.received(4).await;
    let delivery = firm
        .settled(&endpoint, position, DeliveryStatus::Delivered)
        .await;
    assert_eq!(delivery.attempts, 4);
    let ids: Vec<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
    assert!(
        ids.iter().all(|id| *id == delivery.delivery_id),
        "one webhook-id for every attempt"
    );
    assert!(
        received.iter().all(|r| verifies(r, &key)),
        "every attempt is signed afresh"
    );
    // The waits: 100 ms after the 500, at least the second Retry-After asked after the 429
    // (above the 200 ms schedule), then 5 s after the redirect (not followed).
    let gaps: Vec<Duration> = received.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[0] >= Duration::from_millis(90), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(950), "{gaps:?}");
    assert!(gaps[2] >= Duration::from_millis(4900), "{gaps:?}");
    let attempts = firm
        .webhooks
        .db()
        .attempts(&delivery.delivery_id)
        .await
        .unwrap();
    let codes: Vec<Option<i64>> = attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, vec![Some(500), Some(429), Some(302), Some(200)]);
    let classes: Vec<Option<&str>> = attempts.iter().map(|a| a.error_class.as_deref()).collect();
    assert_eq!(
        classes,
        vec![Some("status"), Some("status"), Some("redirect"), None]
    );
    assert_eq!(attempts[0].excerpt.as_deref(), Some("answered 500"));
    assert!(attempts[0].next_attempt_at.is_some() && attempts[3].next_attempt_at.is_none());
    assert!(
        attempts_counted("retrying") >= retrying + 3,
        "the metrics count each failure"
    );
    assert!(attempts_counted("delivered") > delivered);
    assert_eq!(
        firm.endpoint_status(&endpoint).await.0,
        EndpointStatus::Active
    );
    firm.stop().await;
}

async fn a_410_disables_the_endpoint_and_raises_an_alert(backend: Backend) {
    let firm = Firm::new(backend, "20,40").await;
    let (endpoint, _) = firm.register(Scheme::Ed25519, &[], &[]).await;
    firm.receiver.script(&[answer(410)]);
    let given_up = attempts_counted("failed");
    let gone = note(&firm.docket, MATTER, "Nobody home").await;
    firm.settled(&endpoint, gone, DeliveryStatus::Failed).await;
    assert!(
        attempts_counted("failed") > given_up,
        "the metrics count the give-up"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while firm.endpoint_status(&endpoint).await.0 != EndpointStatus::Disabled {
        assert!(Instant::now() < deadline, "the endpoint is disabled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        firm.endpoint_status(&endpoint).await.1.as_deref(),
        Some("gone")
    );
    let alert = firm.alert().await;
    let payload: Value = serde_json::from_str(&alert.payload).unwrap();
    assert_eq!(payload["reason"], "gone");
    assert_eq!(payload["position"], json!(gone));
    assert_eq!(alert.actor, "system");

    // While disabled nothing is sent; enabled, what accumulated follows.
    let later = note(&firm.docket, MATTER, "While disabled").await;
    quiet(&firm, 1).await;
    firm.webhooks
        .enable(&Actor::system(), None, &endpoint, false)
        .await
        .unwrap();
    firm.settled(&endpoint, later, DeliveryStatus::Delivered)
        .await;
    assert_eq!(
        firm.delivery_at(&endpoint, gone).await.unwrap().status,
        DeliveryStatus::Failed,
        "without retryFailed the failed delivery stays failed"
    );
    check_event_schemas(&firm.integration_events().await);
    firm.stop().await;
}

async fn exhausted_retries_disable_the_endpoint_until_it_is_enabled(backend: Backend) {
    let firm = Firm::new(backend, "20,20").await;
    let (endpoint, _) = firm.register(Scheme::Ed25519, &[], &[]).await;
    firm.receiver.otherwise(Some(answer(503)));
    let position = note(&firm.docket, MATTER, "Down all day").await;
    let failed = firm
        .settled(&endpoint, position, DeliveryStatus::Failed)
        .await;
    assert_eq!(failed.attempts, 3, "three attempts in all");
    assert_eq!(firm.receiver.received().len(), 3);
    let deadline = Instant::now() + Duration::from_secs(10);
    while firm.endpoint_status(&endpoint).await.1.as_deref() != Some("retries_exhausted") {
        assert!(Instant::now() < deadline, "the endpoint is disabled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let alert = firm.alert().await;
    assert!(alert.payload.contains("retries_exhausted"));
    // Fixed and enabled (with retryFailed), the failed delivery goes again, same webhook-id.
    firm.receiver.otherwise(None);
    firm.webhooks
        .enable(&Actor::system(), None, &endpoint, true)
        .await
        .unwrap();
    let delivered = firm
        .settled(&endpoint, position, DeliveryStatus::Delivered)
        .await;
    assert_eq!(delivered.attempts, 4);
    let received = firm.receiver.received();
    assert_eq!(received[3].header("webhook-id"), delivered.delivery_id);
    check_event_schemas(&firm.integration_events().await);
    firm.stop().await;
}

async fn pending_deliveries_survive_a_restart(backend: Backend) {
    let firm = Firm::new(backend, "1500").await;
    let (endpoint, key) = firm.register(Scheme::Ed25519, &[], &[]).await;
    firm.receiver.script(&[answer(500)]);
    let first = note(&firm.docket, MATTER, "Before the restart").await;
    firm.received(1).await;
    // Stop as soon as the failed attempt is recorded, the retry pending.
    let deadline = Instant::now() + Duration::from_secs(10);
    while firm
        .delivery_at(&endpoint, first)
        .await
        .is_none_or(|d| d.attempts < 1)
    {
        assert!(Instant::now() < deadline, "the first attempt is recorded");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    firm.workers.abort();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pending = firm.delivery_at(&endpoint, first).await.unwrap();
    assert_eq!(pending.status, DeliveryStatus::Pending);
    assert_eq!(pending.attempts, 1);
    let second = note(&firm.docket, MATTER, "While stopped").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        firm.delivery_at(&endpoint, second).await.is_none(),
        "nobody dispatches"
    );

    // A new service on the same store picks both up.
    let webhooks = Webhooks::open(
        parts(&firm.docket),
        &firm.test.options(),
        test_settings("1500"),
    )
    .await
    .unwrap();
    let workers = webhooks.spawn();
    let retried = firm
        .settled(&endpoint, first, DeliveryStatus::Delivered)
        .await;
    assert_eq!(retried.attempts, 2);
    firm.settled(&endpoint, second, DeliveryStatus::Delivered)
        .await;
    let received = firm.received(3).await;
    let retries = received
        .iter()
        .filter(|r| r.header("webhook-id") == retried.delivery_id)
        .count();
    let ids: Vec<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(
        retries, 2,
        "the retry after the restart keeps its webhook-id: {} in {ids:?}",
        retried.delivery_id
    );
    assert!(received.iter().all(|r| verifies(r, &key)));
    workers.abort();
    firm.stop().await;
}

async fn a_replay_resends_with_the_same_webhook_id(backend: Backend) {
    let firm = Firm::new(backend, "20").await;
    let (endpoint, _) = firm.register(Scheme::Ed25519, &[], &[]).await;
    let position = note(&firm.docket, MATTER, "Send me twice").await;
    let delivery = firm
        .settled(&endpoint, position, DeliveryStatus::Delivered)
        .await;
    let replayed = firm.webhooks.replay(&delivery.delivery_id).await.unwrap();
    assert_eq!(replayed.delivery_id, delivery.delivery_id);
    let received = firm.received(2).await;
    assert_eq!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id")
    );
    assert_eq!(received[0].body, received[1].body, "the same body");
    let deadline = Instant::now() + Duration::from_secs(10);
    while firm
        .delivery_at(&endpoint, position)
        .await
        .unwrap()
        .attempts
        < 2
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(
        firm.webhooks.replay("msg_nothing").await,
        Err(WebhookError::NotFound { .. })
    ));
    firm.stop().await;
}

async fn filters_and_authorisation_decide_what_is_delivered(backend: Backend) {
    let firm = Firm::new(backend, "20").await;
    let (notes_only, _) = firm
        .register(Scheme::Ed25519, &[MATTER], &["matter.note_added"])
        .await;
    let (everything, _) = firm.register(Scheme::Ed25519, &[], &[]).await;
    let wanted = note(&firm.docket, MATTER, "Wanted by both").await;
    let task = change(
        &firm.docket,
        MATTER,
        MatterCommand::CreateTask(CreateTask {
            title: "File the claim".into(),
            assignee: None,
            due_on: None,
        }),
    )
    .await;
    // Billing is not on 2026-0002's team: nobody receives its events.
    let hidden = note(&firm.docket, OTHER, "Not for billing").await;
    firm.settled(&notes_only, wanted, DeliveryStatus::Delivered)
        .await;
    firm.settled(&everything, wanted, DeliveryStatus::Delivered)
        .await;
    firm.settled(&everything, task, DeliveryStatus::Delivered)
        .await;
    quiet(&firm, 3).await;
    assert!(
        firm.delivery_at(&notes_only, task).await.is_none(),
        "filtered out"
    );
    for endpoint in [&notes_only, &everything] {
        assert!(
            firm.delivery_at(endpoint, hidden).await.is_none(),
            "not authorised"
        );
    }
    assert!(
        firm.receiver
            .received()
            .iter()
            .all(|r| !r.body.contains("Not for billing") && !r.body.contains(OTHER))
    );

    // A wall screening billing from the matter stops deliveries at once.
    firm.docket
        .identity
        .erect_wall(
            &Actor::system(),
            None,
            &WallSpec {
                name: "Billing screen".into(),
                reason: "conflict".into(),
                screened_users: vec![CLIENT.into()],
                matters: vec![MATTER.into()],
                ..WallSpec::default()
            },
        )
        .await
        .unwrap();
    let walled = note(&firm.docket, MATTER, "Behind the wall").await;
    quiet(&firm, 3).await;
    for endpoint in [&notes_only, &everything] {
        let delivery = firm.delivery_at(endpoint, walled).await;
        assert!(
            delivery
                .as_ref()
                .is_none_or(|d| d.status == DeliveryStatus::Withheld),
            "walled: {delivery:?}"
        );
    }
    firm.stop().await;
}

async fn webhooks_go_only_where_the_egress_rules_allow(backend: Backend) {
    let firm = Firm::new(backend, "20").await;
    let closed = Webhooks::open(
        parts(&firm.docket),
        &firm.test.options(),
        WebhookSettings::default(),
    )
    .await
    .unwrap();
    let new = |url: &str| NewEndpoint {
        client_id: CLIENT.into(),
        url: url.into(),
        matters: Vec::new(),
        event_types: Vec::new(),
        scheme: Scheme::Ed25519,
        from_position: None,
    };
    let refusals = [
        ("http://hooks.example.com/in", "not_https"),
        ("https://127.0.0.1/in", "refused_address"),
        ("https://localhost:8443/in", "refused_address"),
        ("https://10.1.2.3/in", "refused_address"),
        ("https://192.168.0.10/in", "refused_address"),
        (
            "https://169.254.169.254/latest/meta-data/",
            "refused_address",
        ),
        ("https://[::1]/in", "refused_address"),
        ("https://[fd00::1]/in", "refused_address"),
        ("https://[::ffff:10.0.0.1]/in", "refused_address"),
        ("https://100.64.0.1/in", "refused_address"),
        ("https://user:pw@hooks.example.com/in", "credentials_in_url"),
        ("ftp://hooks.example.com/in", "not_https"),
    ];
    for (url, code) in refusals {
        match closed.register(&Actor::system(), None, new(url)).await {
            Err(WebhookError::Target(refused)) => assert_eq!(refused.code(), code, "{url}"),
            other => panic!("{url}: {:?}", other.map(|r| r.endpoint.endpoint_id)),
        }
    }
    // Allowed by configuration (the firm's service allows http to 127.0.0.1 only).
    assert!(
        firm.webhooks
            .register(&Actor::system(), None, new("http://127.0.0.2:9/in"))
            .await
            .is_err(),
        "127.0.0.2 is not in the allowed range"
    );
    let (endpoint, _) = firm.register(Scheme::Ed25519, &[], &[]).await;
    let nothing = firm.integration_events().await.len();
    assert_eq!(nothing, 1, "refusals leave no trace in the log");

    // The rules apply again at every delivery, to IP literals and to names as they resolve: a
    // service that allows plain http but no private range refuses to connect to endpoints
    // registered under wider rules.
    let (by_name, _) = {
        let registered = firm
            .webhooks
            .register(
                &Actor::system(),
                None,
                new(&format!(
                    "http://localhost:{}/hooks",
                    firm.receiver.address.port()
                )),
            )
            .await
            .unwrap();
        (registered.endpoint.endpoint_id, ())
    };
    firm.workers.abort();
    let mut narrow = test_settings("20");
    narrow.egress.allowed.clear();
    let narrow = Webhooks::open(parts(&firm.docket), &firm.test.options(), narrow)
        .await
        .unwrap();
    let workers = narrow.spawn();
    let position = note(&firm.docket, MATTER, "Should not leave").await;
    for endpoint in [&endpoint, &by_name] {
        let deadline = Instant::now() + Duration::from_secs(20);
        let attempts = loop {
            if let Some(delivery) = firm.delivery_at(endpoint, position).await {
                let attempts = narrow.db().attempts(&delivery.delivery_id).await.unwrap();
                if !attempts.is_empty() {
                    break attempts;
                }
            }
            assert!(Instant::now() < deadline, "an attempt is made");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(attempts[0].error_class.as_deref(), Some("refused_address"));
        assert_eq!(attempts[0].status_code, None);
    }
    assert!(
        firm.receiver.received().is_empty(),
        "nothing reached the receiver"
    );
    workers.abort();
    firm.stop().await;
}

async fn two_services_on_one_store_send_each_delivery_once(backend: Backend) {
    let firm = Firm::new(backend, "20").await;
    let (endpoint, _) = firm.register(Scheme::Ed25519, &[], &[]).await;
    let second = Webhooks::open(
        parts(&firm.docket),
        &firm.test.options(),
        test_settings("20"),
    )
    .await
    .unwrap();
    let workers = second.spawn();
    let mut positions = Vec::new();
    for n in 0..30 {
        positions.push(note(&firm.docket, MATTER, &format!("Note {n}")).await);
    }
    for position in &positions {
        firm.settled(&endpoint, *position, DeliveryStatus::Delivered)
            .await;
    }
    quiet(&firm, positions.len()).await;
    let mut ids: Vec<String> = firm
        .receiver
        .received()
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), positions.len(), "each event once");
    workers.abort();
    firm.stop().await;
}

// ---- GraphQL -------------------------------------------------------------------------------

async fn graphql(firm: &Firm, principal: &Principal, query: &str, variables: Value) -> Value {
    let schema = graphql::build(
        firm.docket.service.clone(),
        firm.docket.projector.db().clone(),
        firm.docket.identity.clone(),
        firm.docket.checkpoints.clone(),
        firm.docket.integrations.clone(),
    );
    let caller = Arc::new(Caller::new(
        Some(principal.clone()),
        firm.docket.identity.directory(),
        uuid::Uuid::now_v7().to_string(),
        Some("127.0.0.1".into()),
        firm.docket.access.clone(),
    ));
    let request = Request::new(query).variables(Variables::from_json(variables));
    let request = with_loaders(request, firm.docket.projector.db())
        .data(caller.clone())
        .data(firm.webhooks.clone());
    let response = schema.execute(request).await;
    caller.flush("test").await.unwrap();
    serde_json::to_value(&response).unwrap()
}

async fn administration_and_the_delivery_log_through_graphql(backend: Backend) {
    let firm = Firm::new(backend, "20").await;
    let mut admin = sign_in(&firm.docket.identity, "root", Role::Admin)
        .await
        .principal;
    admin.step_up_at = Some(chrono::Utc::now());
    let register = r#"mutation($input: RegisterWebhookEndpointInput!) {
        registerWebhookEndpoint(input: $input) {
            endpoint { endpointId clientId url status matters keys { keyId scheme publicKey } }
            keyId scheme secret publicKey userErrors { field code message } } }"#;
    let input = |url: String| {
        json!({ "input": { "clientId": CLIENT, "url": url, "scheme": "HMAC_SHA256",
                           "matters": [MATTER] } })
    };
    let registered = graphql(&firm, &admin, register, input(firm.receiver.url())).await;
    let payload = &registered["data"]["registerWebhookEndpoint"];
    assert_eq!(payload["userErrors"], json!([]), "{registered}");
    let secret = payload["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(payload["publicKey"], Value::Null);
    assert_eq!(payload["endpoint"]["status"], "ACTIVE");
    let endpoint = payload["endpoint"]["endpointId"]
        .as_str()
        .unwrap()
        .to_owned();

    // Refusals are user errors beside the field.
    let refused = graphql(&firm, &admin, register, input("https://10.0.0.1/x".into())).await;
    let errors = &refused["data"]["registerWebhookEndpoint"]["userErrors"];
    assert_eq!(errors[0]["field"], "url");
    assert_eq!(errors[0]["code"], "WEBHOOK_TARGET_REFUSED");

    // Listing never shows the secret again.
    let listed = graphql(
        &firm,
        &admin,
        "{ webhookEndpoints(clientId: \"billing\") { endpointId url keys { keyId } } }",
        json!({}),
    )
    .await;
    assert!(!listed.to_string().contains(&secret["whsec_".len()..]));
    assert_eq!(
        listed["data"]["webhookEndpoints"][0]["endpointId"],
        json!(endpoint)
    );

    firm.receiver.script(&[answer(500)]);
    let position = note(&firm.docket, MATTER, "Logged").await;
    let delivered = firm
        .settled(&endpoint, position, DeliveryStatus::Delivered)
        .await;
    let log = graphql(
        &firm,
        &admin,
        r#"query($e: String!) { webhookDeliveries(endpointId: $e) { deliveryId position eventType
            status attemptCount attempts { number statusCode latencyMs errorClass responseExcerpt } } }"#,
        json!({ "e": endpoint }),
    )
    .await;
    let first = &log["data"]["webhookDeliveries"][0];
    assert_eq!(first["deliveryId"], json!(delivered.delivery_id), "{log}");
    assert_eq!(first["position"], json!(position));
    assert_eq!(first["status"], "DELIVERED");
    assert_eq!(first["attempts"][0]["statusCode"], 500);
    assert_eq!(first["attempts"][0]["errorClass"], "status");
    assert_eq!(first["attempts"][1]["statusCode"], 200);
    assert!(
        !log.to_string().contains("Logged"),
        "no client data in the log"
    );

    let replay = graphql(
        &firm,
        &admin,
        r#"mutation($d: String!) { replayWebhookDelivery(deliveryId: $d) {
            delivery { deliveryId status } userErrors { code } } }"#,
        json!({ "d": delivered.delivery_id }),
    )
    .await;
    assert_eq!(
        replay["data"]["replayWebhookDelivery"]["delivery"]["deliveryId"],
        json!(delivered.delivery_id)
    );
    let received = firm.received(3).await;
    assert_eq!(received[2].header("webhook-id"), delivered.delivery_id);

    let disable = graphql(
        &firm,
        &admin,
        r#"mutation($e: String!) { disableWebhookEndpoint(endpointId: $e) {
            endpoint { status disabledReason } userErrors { code } } }"#,
        json!({ "e": endpoint }),
    )
    .await;
    let disabled = &disable["data"]["disableWebhookEndpoint"]["endpoint"];
    assert_eq!(disabled["status"], "DISABLED");
    assert_eq!(disabled["disabledReason"], "administrator");
    let enable = graphql(
        &firm,
        &admin,
        r#"mutation($e: String!) { enableWebhookEndpoint(endpointId: $e) {
            endpoint { status } userErrors { code } } }"#,
        json!({ "e": endpoint }),
    )
    .await;
    assert_eq!(
        enable["data"]["enableWebhookEndpoint"]["endpoint"]["status"],
        "ACTIVE"
    );
    let rotate = graphql(
        &firm,
        &admin,
        r#"mutation($e: String!) { rotateWebhookSecret(endpointId: $e, overlapSeconds: 60) {
            secret endpoint { keys { keyId retiresAt } } userErrors { code } } }"#,
        json!({ "e": endpoint }),
    )
    .await;
    let keys = &rotate["data"]["rotateWebhookSecret"]["endpoint"]["keys"];
    assert_eq!(keys.as_array().unwrap().len(), 2, "{rotate}");
    let update = graphql(
        &firm,
        &admin,
        r#"mutation($e: String!) { updateWebhookEndpoint(endpointId: $e, eventTypes: ["matter.task_*"]) {
            endpoint { eventTypes matters } userErrors { code } } }"#,
        json!({ "e": endpoint }),
    )
    .await;
    let updated = &update["data"]["updateWebhookEndpoint"]["endpoint"];
    assert_eq!(updated["eventTypes"], json!(["matter.task_*"]));
    assert_eq!(updated["matters"], json!([MATTER]));
    let remove = graphql(
        &firm,
        &admin,
        r#"mutation($e: String!) { removeWebhookEndpoint(endpointId: $e) { ok userErrors { code } } }"#,
        json!({ "e": endpoint }),
    )
    .await;
    assert_eq!(remove["data"]["removeWebhookEndpoint"]["ok"], true);
    assert!(
        firm.webhooks
            .db()
            .signing_keys(&endpoint, 0)
            .await
            .unwrap()
            .is_empty(),
        "the keys are gone"
    );
    assert!(
        firm.docket
            .vault
            .is_erased(&format!("webhook:{endpoint}"))
            .await
            .unwrap(),
        "and their data key destroyed"
    );

    let types: Vec<String> = firm
        .integration_events()
        .await
        .into_iter()
        .map(|event| event.event_type)
        .collect();
    assert_eq!(
        types,
        vec![
            events::ENDPOINT_REGISTERED,
            events::ENDPOINT_DISABLED,
            events::ENDPOINT_ENABLED,
            events::SECRET_ROTATED,
            events::ENDPOINT_UPDATED,
            events::ENDPOINT_REMOVED,
        ]
    );
    let registered = &firm.integration_events().await[0];
    assert_eq!(registered.actor, "user:root");
    check_event_schemas(&firm.integration_events().await);

    // Only admins, and only with a recent second factor.
    let paralegal = sign_in(&firm.docket.identity, "pat", Role::Paralegal)
        .await
        .principal;
    let denied = graphql(
        &firm,
        &paralegal,
        "{ webhookEndpoints { endpointId } }",
        json!({}),
    )
    .await;
    assert_eq!(denied["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let mut stale = admin.clone();
    stale.step_up_at = None;
    let stale = graphql(
        &firm,
        &stale,
        "{ webhookEndpoints { endpointId } }",
        json!({}),
    )
    .await;
    assert_eq!(stale["errors"][0]["extensions"]["code"], "STEP_UP_REQUIRED");
    firm.stop().await;
}

on_both_backends!(
    ed25519_deliveries_are_signed_and_carry_the_event,
    hmac_deliveries_verify_with_the_reference_library,
    a_rotation_signs_with_both_keys_during_the_overlap,
    failures_are_retried_with_backoff_until_they_succeed,
    a_410_disables_the_endpoint_and_raises_an_alert,
    exhausted_retries_disable_the_endpoint_until_it_is_enabled,
    pending_deliveries_survive_a_restart,
    a_replay_resends_with_the_same_webhook_id,
    filters_and_authorisation_decide_what_is_delivered,
    webhooks_go_only_where_the_egress_rules_allow,
    two_services_on_one_store_send_each_delivery_once,
    administration_and_the_delivery_log_through_graphql,
    alerts_are_delivered_only_to_clients_granted_them,
);

/// An alert appended to the log, about `subject`.
async fn raise_alert(docket: &Docket, subject: &str) -> u64 {
    use docket::monitoring::alert_log::{self, AlertRaised, AlertSource, Severity};
    let alert = AlertRaised {
        alert_id: alert_log::alert_id(&[subject]),
        rule: "failed_logins".into(),
        severity: Severity::High,
        subject: Some(subject.into()),
        count: 5,
        threshold: 5,
        window_secs: 600,
        first_at: "2026-12-04T03:00:00.000000Z".into(),
        last_at: "2026-12-04T03:04:00.000000Z".into(),
        matters: Vec::new(),
        source: AlertSource::Log,
        through: Some(1),
        summary: "5 failed logins within 10 min".into(),
    };
    alert_log::append(&docket.log, &alert).await.unwrap()
}

async fn alerts_are_delivered_only_to_clients_granted_them(backend: Backend) {
    let firm = Firm::new(backend, "20").await;
    let (alerts, key) = firm.register(Scheme::Ed25519, &[], &["alert.*"]).await;
    let (everything, _) = firm.register(Scheme::Ed25519, &[], &[]).await;
    // Billing's scopes do not include alerts yet: nothing is sent.
    let refused = raise_alert(&firm.docket, "account:eve").await;
    let before = note(&firm.docket, MATTER, "Between the alerts").await;
    firm.settled(&everything, before, DeliveryStatus::Delivered)
        .await;
    let scopes = docket::identity::api_clients::ScopesRequest {
        alerts: true,
        ..Default::default()
    };
    firm.docket
        .identity
        .set_api_client_scopes(&Actor::system(), None, CLIENT, &scopes)
        .await
        .unwrap();
    let granted = raise_alert(&firm.docket, "address:10.9.9.9").await;
    let delivered = firm
        .settled(&alerts, granted, DeliveryStatus::Delivered)
        .await;
    assert_eq!(delivered.event_type, "alert.raised");
    for endpoint in [&alerts, &everything] {
        let early = firm.delivery_at(endpoint, refused).await;
        assert!(
            early
                .as_ref()
                .is_none_or(|d| d.status == DeliveryStatus::Withheld),
            "not granted then: {early:?}"
        );
    }
    assert!(
        firm.delivery_at(&everything, granted).await.is_none(),
        "an endpoint that does not name alerts gets none"
    );
    let received = firm.received(1).await;
    let sent = received
        .iter()
        .find(|r| r.body.contains("alert.raised"))
        .expect("the alert was sent");
    assert!(verifies(sent, &key));
    let body: Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(body["data"]["stream"], "alerts");
    assert_eq!(body["data"]["payload"]["subject"], "address:10.9.9.9");
    assert!(body["data"].get("matter").is_none());
    firm.stop().await;
}
