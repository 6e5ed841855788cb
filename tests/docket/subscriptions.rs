//! GraphQL subscriptions to the log: catch-up then live, in order, without gaps or duplicates,
//! authorised on every event. Each behaviour runs both ways a subscription is served: resolved
//! per subscriber by the schema, and decided per subscriber but rendered once per document and
//! admission (the WebSocket endpoint's way); over WebSocket by the protocol tests in
//! `subscriptions_ws`.

use std::collections::HashMap;
use std::time::Duration;

use std::sync::Arc;

use async_graphql::Request;
use docket::api::graphql::subscription::shared::{self, Renders, Started};
use docket::api::graphql::{self, DocketSchema, with_loaders};
use docket::app::Docket;
use docket::domain::identity::Role;
use docket::identity::admin::WallSpec;
use docket::log::{Actor, Event};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, SignedIn, TestLog, caller, sign_in};

pub(crate) const OURS: &str = "2026-0701";
pub(crate) const THEIRS: &str = "2026-0702";

/// Every field a subscriber needs to verify an event on its own.
pub(crate) const EVENT_FIELDS: &str = "position eventId stream matterNumber version eventType \
    schemaVersion actor occurredAt recordedAt requestId correlationId causationId idempotencyKey \
    prevHash streamPrevHash keyId hash signature payload data erased";

/// How subscriptions are served in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// Each delivery resolved for its subscriber by the schema.
    General,
    /// Each delivery decided per subscriber, rendered once per (document, admission).
    Shared,
}

/// Runs an `async fn(Backend, Path)` test on both backends and both paths.
macro_rules! on_both_paths {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::Path;
            use crate::support::Backend;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_general() {
                super::$name(Backend::Sqlite, Path::General).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_shared() {
                super::$name(Backend::Sqlite, Path::Shared).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_general() {
                super::$name(Backend::Postgres, Path::General).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_shared() {
                super::$name(Backend::Postgres, Path::Shared).await
            }
        }
    )*};
}

/// A firm with two matters: p.one runs OURS (with a.ttorney on its team) and p.two runs THEIRS.
/// au.ditor is an auditor and ad.min an admin. The feed is running.
pub(crate) struct Desk {
    pub(crate) _log: TestLog,
    pub(crate) docket: Docket,
    pub(crate) schema: DocketSchema,
    pub(crate) users: HashMap<&'static str, SignedIn>,
    pub(crate) path: Path,
    pub(crate) renders: Arc<Renders>,
}

impl Desk {
    pub(crate) async fn new(backend: Backend) -> Desk {
        Desk::serving(backend, Path::General).await
    }

    pub(crate) async fn serving(backend: Backend, path: Path) -> Desk {
        let log = TestLog::new(backend).await;
        let docket = Docket::open_with(&log.options(), Duration::from_secs(5))
            .await
            .unwrap();
        docket.projector.spawn();
        docket.integrations.spawn(&docket.log);
        let schema = graphql::build(
            docket.service.clone(),
            docket.projector.db().clone(),
            docket.identity.clone(),
            docket.checkpoints.clone(),
            docket.integrations.clone(),
        );
        let mut users = HashMap::new();
        for (id, role) in [
            ("p.one", Role::Partner),
            ("p.two", Role::Partner),
            ("a.ttorney", Role::Attorney),
            ("au.ditor", Role::Auditor),
            ("ad.min", Role::Admin),
        ] {
            users.insert(id, sign_in(&docket.identity, id, role).await);
        }
        let desk = Desk {
            _log: log,
            docket,
            schema,
            users,
            path,
            renders: Arc::new(Renders::default()),
        };
        for (user, number) in [("p.one", OURS), ("p.two", THEIRS)] {
            desk.ok(
                user,
                &format!(
                    r#"mutation {{ openMatter(input: {{matterNumber: "{number}",
                    title: "Matter {number}", practiceArea: "commercial",
                    responsibleAttorney: "{user}"}}) {{ userErrors {{ code }} }} }}"#
                ),
            )
            .await;
        }
        desk.ok(
            "p.one",
            &format!(
                r#"mutation {{ addTeamMember(number: "{OURS}", userId: "a.ttorney",
                capacity: ATTORNEY) {{ userErrors {{ code }} }} }}"#
            ),
        )
        .await;
        desk
    }

    pub(crate) async fn ok(&self, user: &str, query: &str) -> Value {
        let caller = caller(&self.docket, Some(self.users[user].principal.clone()));
        let request =
            with_loaders(Request::new(query), self.docket.projector.db()).data(caller.clone());
        let response = self.schema.execute(request).await;
        caller.flush("test").await.unwrap();
        let response = serde_json::to_value(&response).unwrap();
        assert!(response.get("errors").is_none(), "{user}: {response}");
        let data = response["data"].clone();
        let payload = data.as_object().and_then(|o| o.values().next()).cloned();
        if let Some(errors) = payload.as_ref().and_then(|p| p.get("userErrors")) {
            assert_eq!(errors, &json!([]), "{user}: {query}");
        }
        data
    }

    /// Adds a note to `number` as `user` and returns the last position of the log.
    pub(crate) async fn note(&self, user: &str, number: &str, body: &str) -> u64 {
        self.ok(
            user,
            &format!(
                r#"mutation {{ addNote(number: "{number}", body: "{body}") {{ userErrors {{ code }} }} }}"#
            ),
        )
        .await;
        self.docket.log.head().await.unwrap().position
    }

    /// A subscription as `principal`, served the desk's way; each item is a response's JSON.
    pub(crate) fn subscribe(
        &self,
        principal: &docket::access::Principal,
        arguments: &str,
    ) -> BoxStream<'static, Value> {
        let caller = caller(&self.docket, Some(principal.clone()));
        // The resolver runs when the stream is first polled: without `from`, the test's
        // appends in between would come before "now".
        let arguments = if arguments.contains("from:") {
            arguments.to_owned()
        } else {
            let from = format!("from: {}", self.docket.integrations.feed.head() + 1);
            match arguments.strip_suffix(')') {
                Some(open) => format!("{open}, {from})"),
                None => format!("({from})"),
            }
        };
        let query = format!("subscription {{ events{arguments} {{ {EVENT_FIELDS} }} }}");
        self.start(caller, Request::new(query))
    }

    /// The responses to subscription `request` as `caller`, served the desk's way.
    pub(crate) fn start(
        &self,
        caller: Arc<docket::api::graphql::caller::Caller>,
        request: Request,
    ) -> BoxStream<'static, Value> {
        let json = |response: async_graphql::Response| serde_json::to_value(&response).unwrap();
        if self.path == Path::General {
            return self
                .schema
                .execute_stream(request.data(caller))
                .map(json)
                .boxed();
        }
        let (schema, renders) = (self.schema.clone(), self.renders.clone());
        futures::stream::once(
            async move { shared::start(&schema, &renders, caller, request).await },
        )
        .flat_map(move |started| match started {
            Started::Shared(frames) => frames
                .map(|frame| serde_json::from_str::<Value>(&frame.json).unwrap())
                .boxed(),
            Started::General(responses) => responses.map(json).boxed(),
        })
        .boxed()
    }
}

/// The next message of a subscription, within a few seconds.
pub(crate) async fn next(stream: &mut (impl Stream<Item = Value> + Unpin)) -> Value {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a message within 10 s")
        .expect("the subscription is still open")
}

/// Nothing arrives for a little while.
async fn quiet(stream: &mut (impl Stream<Item = Value> + Unpin)) {
    if let Ok(Some(response)) =
        tokio::time::timeout(Duration::from_millis(700), stream.next()).await
    {
        panic!("expected nothing, got {response}");
    }
}

/// Rebuilds the stored event from what a subscriber received.
pub(crate) fn event_of(delivered: &Value) -> Event {
    let text = |name: &str| delivered[name].as_str().map(str::to_owned);
    let hash = |name: &str| {
        text(name).map(|hex| -> [u8; 32] { hex::decode(hex).unwrap().try_into().unwrap() })
    };
    Event {
        position: delivered["position"].as_u64().unwrap(),
        id: text("eventId").unwrap(),
        stream: text("stream").unwrap(),
        stream_version: delivered["version"].as_u64().unwrap(),
        event_type: text("eventType").unwrap(),
        schema_version: delivered["schemaVersion"].as_u64().unwrap() as u32,
        payload: text("payload").unwrap_or_default(),
        actor: text("actor").unwrap(),
        request_id: text("requestId"),
        occurred_at: text("occurredAt").unwrap(),
        recorded_at: text("recordedAt").unwrap(),
        correlation_id: text("correlationId"),
        causation_id: text("causationId"),
        idempotency_key: text("idempotencyKey"),
        prev_hash: hash("prevHash"),
        stream_prev_hash: hash("streamPrevHash"),
        key_id: text("keyId").unwrap(),
        hash: hash("hash").unwrap(),
        signature: hex::decode(text("signature").unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    }
}

/// Checks a delivered event's hash and signature against the log's keys, as a subscriber would.
pub(crate) async fn assert_verifies(docket: &Docket, delivered: &Value) {
    let event = event_of(delivered);
    assert_eq!(
        docket::log::canonical::compute_hash(&event),
        event.hash,
        "the hash recomputes from what was delivered"
    );
    let keys = docket::service::history::log_keys(&docket.log)
        .await
        .unwrap();
    let key = docket::log::keys::parse_public_key(&keys[&event.key_id]).unwrap();
    assert!(docket::log::keys::verify_event_signature(
        &key,
        &event.hash,
        &event.signature
    ));
}

on_both_paths!(
    the_catch_up_then_live_events_arrive_in_order_each_once_and_verifying,
    resuming_from_the_last_position_seen_loses_nothing,
    filters_by_matter_and_type_and_withholds_unseen_matters,
    an_auditor_receives_metadata_without_payload,
    a_wall_erected_during_a_subscription_takes_effect_at_once,
    a_team_change_during_a_subscription_takes_effect_at_once,
    a_revoked_key_ends_the_subscription_at_once,
    a_signed_out_session_ends_the_subscription,
    subscriptions_are_recorded_as_accesses,
    open_subscriptions_and_their_lag_are_in_the_metrics,
);

on_both_backends!(
    a_slow_subscriber_is_told_to_resume_from_its_position,
    the_shared_rendering_is_the_general_one,
    one_document_is_rendered_apart_for_each_admission,
);

async fn the_catch_up_then_live_events_arrive_in_order_each_once_and_verifying(
    backend: Backend,
    path: Path,
) {
    let desk = Desk::serving(backend, path).await;
    let first = desk.note("p.one", OURS, "Before one").await;
    desk.note("p.one", OURS, "Before two").await;
    let mut events = Box::pin(desk.subscribe(
        &desk.users["a.ttorney"].principal,
        &format!(r#"(from: 1, matters: ["{OURS}"])"#),
    ));
    let mut seen = Vec::new();
    // History: opened, the opener and a.ttorney added to the team, two notes.
    for _ in 0..5 {
        seen.push(next(&mut events).await["data"]["events"].clone());
    }
    // Live: appended after the subscription caught up.
    for body in ["Live one", "Live two", "Live three"] {
        desk.note("p.one", OURS, body).await;
        seen.push(next(&mut events).await["data"]["events"].clone());
    }
    let positions: Vec<u64> = seen
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let types: Vec<&str> = seen
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "matter.opened",
            "matter.team_member_added",
            "matter.team_member_added",
            "matter.note_added",
            "matter.note_added",
            "matter.note_added",
            "matter.note_added",
            "matter.note_added",
        ]
    );
    // Every event of the matter's stream, none missing: versions run 1..=8.
    let versions: Vec<u64> = seen
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, (1..=8).collect::<Vec<_>>());
    assert!(first > 0);
    for event in &seen {
        assert_verifies(&desk.docket, event).await;
        assert_eq!(event["matterNumber"], OURS);
    }
    // The team member reads the notes' text, opened; the payload keeps it sealed.
    assert_eq!(seen[7]["data"]["private"]["body"], "Live three");
    assert!(!seen[7]["payload"].as_str().unwrap().contains("Live three"));
    assert_eq!(seen[7]["erased"], false);
    quiet(&mut events).await;
}

async fn resuming_from_the_last_position_seen_loses_nothing(backend: Backend, path: Path) {
    let desk = Desk::serving(backend, path).await;
    let principal = desk.users["p.one"].principal.clone();
    let arguments = format!(r#"(from: 1, matters: ["{OURS}"], types: ["matter.note_added"])"#);
    let mut events = Box::pin(desk.subscribe(&principal, &arguments));
    desk.note("p.one", OURS, "One").await;
    let one = next(&mut events).await["data"]["events"].clone();
    drop(events);
    // Appended while nobody listens.
    for body in ["Two", "Three", "Four"] {
        desk.note("p.one", OURS, body).await;
    }
    let resume = one["position"].as_u64().unwrap() + 1;
    let mut events = Box::pin(desk.subscribe(
        &principal,
        &format!(r#"(from: {resume}, matters: ["{OURS}"], types: ["matter.note_added"])"#),
    ));
    let mut bodies = Vec::new();
    for _ in 0..3 {
        bodies.push(next(&mut events).await["data"]["events"]["data"]["private"]["body"].clone());
    }
    assert_eq!(bodies, [json!("Two"), json!("Three"), json!("Four")]);
    quiet(&mut events).await;
}

async fn filters_by_matter_and_type_and_withholds_unseen_matters(backend: Backend, path: Path) {
    let desk = Desk::serving(backend, path).await;
    // a.ttorney is on OURS only: THEIRS's events are withheld even unfiltered.
    let mut everything = Box::pin(desk.subscribe(&desk.users["a.ttorney"].principal, ""));
    let mut notes_of_theirs_only = Box::pin(desk.subscribe(
        &desk.users["p.two"].principal,
        &format!(r#"(matters: ["{THEIRS}"], types: ["matter.note_added"])"#),
    ));
    desk.note("p.two", THEIRS, "Not for a.ttorney").await;
    desk.note("p.one", OURS, "For a.ttorney").await;
    desk.ok(
        "p.two",
        &format!(
            r#"mutation {{ recordTime(number: "{THEIRS}", input: {{workedOn: "2026-12-01",
            minutes: 30, description: "Call"}}) {{ userErrors {{ code }} }} }}"#
        ),
    )
    .await;
    desk.note("p.two", THEIRS, "Second of theirs").await;
    let got = next(&mut everything).await["data"]["events"].clone();
    assert_eq!(got["matterNumber"], OURS);
    assert_eq!(got["data"]["private"]["body"], "For a.ttorney");
    quiet(&mut everything).await;
    let first = next(&mut notes_of_theirs_only).await["data"]["events"].clone();
    let second = next(&mut notes_of_theirs_only).await["data"]["events"].clone();
    assert_eq!(first["data"]["private"]["body"], "Not for a.ttorney");
    assert_eq!(second["data"]["private"]["body"], "Second of theirs");
    quiet(&mut notes_of_theirs_only).await;
}

async fn an_auditor_receives_metadata_without_payload(backend: Backend, path: Path) {
    let desk = Desk::serving(backend, path).await;
    let mut events = Box::pin(desk.subscribe(
        &desk.users["au.ditor"].principal,
        &format!(r#"(matters: ["{OURS}"])"#),
    ));
    desk.note("p.one", OURS, "Auditors see that this happened")
        .await;
    let got = next(&mut events).await["data"]["events"].clone();
    assert_eq!(got["eventType"], "matter.note_added");
    assert!(got["hash"].as_str().unwrap().len() == 64);
    assert_eq!(got["payload"], Value::Null);
    assert_eq!(got["data"], Value::Null);
}

async fn a_wall_erected_during_a_subscription_takes_effect_at_once(backend: Backend, path: Path) {
    let desk = Desk::serving(backend, path).await;
    let mut events = Box::pin(desk.subscribe(&desk.users["a.ttorney"].principal, ""));
    desk.note("p.one", OURS, "Before the wall").await;
    assert_eq!(
        next(&mut events).await["data"]["events"]["data"]["private"]["body"],
        "Before the wall"
    );
    desk.docket
        .identity
        .erect_wall(
            &Actor::parse("user:ad.min").unwrap(),
            None,
            &WallSpec {
                name: "Conflict".into(),
                reason: "Acted for the other side".into(),
                screened_users: vec!["a.ttorney".into()],
                screened_groups: vec![],
                matters: vec![OURS.into()],
                clients: vec![],
            },
        )
        .await
        .unwrap();
    // The very next event of the matter is not delivered.
    desk.note("p.one", OURS, "Behind the wall").await;
    quiet(&mut events).await;
}

async fn a_team_change_during_a_subscription_takes_effect_at_once(backend: Backend, path: Path) {
    let desk = Desk::serving(backend, path).await;
    let mut events = Box::pin(desk.subscribe(
        &desk.users["a.ttorney"].principal,
        r#"(types: ["matter.note_added"])"#,
    ));
    let team = |change: &str| {
        format!(
            r#"mutation {{ {change}(number: "{OURS}", userId: "a.ttorney"{capacity})
            {{ userErrors {{ code }} }} }}"#,
            capacity = if change == "addTeamMember" {
                ", capacity: ATTORNEY"
            } else {
                ""
            }
        )
    };
    // Decided several times on the team as it was, so that whatever the flow remembers of
    // the matter is in use when the team changes.
    for body in ["On the team", "Still on the team"] {
        desk.note("p.one", OURS, body).await;
        assert_eq!(
            next(&mut events).await["data"]["events"]["data"]["private"]["body"],
            body
        );
    }
    desk.ok("p.one", &team("removeTeamMember")).await;
    // The very next note of the matter is not delivered.
    desk.note("p.one", OURS, "Off the team").await;
    quiet(&mut events).await;
    // Back on the team: the notes come again, the one written meanwhile still withheld.
    desk.ok("p.one", &team("addTeamMember")).await;
    desk.note("p.one", OURS, "Back on the team").await;
    assert_eq!(
        next(&mut events).await["data"]["events"]["data"]["private"]["body"],
        "Back on the team"
    );
}

async fn a_revoked_key_ends_the_subscription_at_once(backend: Backend, path: Path) {
    let desk = Desk::serving(backend, path).await;
    let identity = &desk.docket.identity;
    let admin = Actor::parse("user:ad.min").unwrap();
    identity
        .register_api_client(&admin, None, "billing", "Billing")
        .await
        .unwrap();
    desk.ok(
        "p.one",
        &format!(
            r#"mutation {{ addTeamMember(number: "{OURS}", userId: "billing",
            capacity: STAFF) {{ userErrors {{ code }} }} }}"#
        ),
    )
    .await;
    let key = identity
        .issue_api_key(&admin, None, "billing", None)
        .await
        .unwrap();
    let principal = identity
        .authenticate(&key.text)
        .await
        .unwrap()
        .expect("the key authenticates");
    let mut events = Box::pin(desk.subscribe(&principal, &format!(r#"(matters: ["{OURS}"])"#)));
    let before = desk.note("p.one", OURS, "Billed").await;
    assert_eq!(
        next(&mut events).await["data"]["events"]["position"],
        before
    );
    identity
        .revoke_api_key(&admin, None, &key.key_id, "incident")
        .await
        .unwrap();
    let after = desk.note("p.one", OURS, "Not for a revoked key").await;
    let ended = next(&mut events).await;
    assert_eq!(ended["data"], Value::Null, "{ended}");
    assert_eq!(ended["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let resume = ended["errors"][0]["extensions"]["resumeFrom"]
        .as_u64()
        .unwrap();
    assert!(resume <= after, "resume at or before the withheld event");
    assert!(resume > before);
    // The subscription is over.
    let end = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
    assert!(matches!(end, Ok(None)), "the stream ends after the error");
}

async fn a_signed_out_session_ends_the_subscription(backend: Backend, path: Path) {
    let desk = Desk::serving(backend, path).await;
    let user = &desk.users["a.ttorney"];
    let mut events = Box::pin(desk.subscribe(&user.principal, ""));
    desk.note("p.one", OURS, "Seen").await;
    next(&mut events).await;
    desk.docket.identity.logout(&user.principal).await.unwrap();
    // A quiet subscription notices within its re-check interval (1 s).
    let ended = next(&mut events).await;
    assert_eq!(ended["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}

async fn a_slow_subscriber_is_told_to_resume_from_its_position(backend: Backend) {
    let desk = Desk::new(backend).await;
    // A feed of its own with a small buffer, so that falling behind is quick.
    let integrations = docket::integrations::Integrations::open_with(
        &desk.docket.log,
        desk.docket.identity.clone(),
        desk.docket.projector.clone(),
        desk.docket.vault.clone(),
        docket::integrations::feed::FeedOptions {
            buffer: 16,
            poll: Duration::from_millis(20),
        },
    )
    .await
    .unwrap();
    let _tail = integrations.spawn(&desk.docket.log);
    let head = desk.docket.log.head().await.unwrap().position;
    let mut follower = integrations.feed.subscribe(head + 1);
    // Caught up (nothing to read yet), the follower is live.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), follower.next())
            .await
            .is_err()
    );
    desk.note("p.one", OURS, "First").await;
    let first = follower.next().await.unwrap();
    assert_eq!(first.position, head + 1);
    assert_eq!(
        integrations.feed.held(),
        0,
        "read by its one follower, it is let go"
    );
    // While it does not read, far more than its buffer is appended.
    for i in 0..40 {
        desk.note("p.one", OURS, &format!("Unread {i}")).await;
    }
    let until = desk.docket.log.head().await.unwrap().position;
    while integrations.feed.head() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        integrations.feed.held(),
        16,
        "held for it, up to the buffer"
    );
    let mut delivered = vec![first.position];
    let resume_from = loop {
        match follower.next().await {
            Ok(event) => delivered.push(event.position),
            Err(docket::integrations::feed::FeedError::TooSlow { resume_from }) => {
                break resume_from;
            }
            Err(other) => panic!("{other}"),
        }
    };
    // Nothing skipped before the error, and the error names the next position owed.
    let expected: Vec<u64> = (head + 1..resume_from).collect();
    assert_eq!(delivered, expected);
    // A new subscription from there gets the rest, in order.
    let mut again = integrations.feed.subscribe(resume_from);
    for position in resume_from..=until {
        assert_eq!(again.next().await.unwrap().position, position);
    }
    // Docket's own followers are never closed: follow() goes back to the store instead.
    let mut follow = Box::pin(integrations.feed.follow(head + 1));
    for position in head + 1..=until {
        assert_eq!(follow.next().await.unwrap().unwrap().position, position);
    }
    // The closed subscriber's events are let go with it; the others have read theirs.
    drop(follower);
    assert_eq!(integrations.feed.held(), 0);
}

async fn subscriptions_are_recorded_as_accesses(backend: Backend, path: Path) {
    let desk = Desk::serving(backend, path).await;
    let before = desk.docket.access.log().head().await.unwrap().position;
    let mut events = Box::pin(desk.subscribe(
        &desk.users["a.ttorney"].principal,
        &format!(r#"(matters: ["{OURS}", "{THEIRS}"])"#),
    ));
    desk.note("p.one", OURS, "One").await;
    desk.note("p.one", OURS, "Two").await;
    next(&mut events).await;
    next(&mut events).await;
    let records: Vec<Value> = desk
        .docket
        .access
        .log()
        .pages_from(before + 1)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flat_map(|page| page.unwrap())
        .map(|event| serde_json::from_str(&event.payload).unwrap())
        .collect();
    let start = records
        .iter()
        .find(|r| r["operation"] == "subscribe events")
        .expect("the subscription is recorded");
    assert_eq!(start["principal"], "user:a.ttorney");
    let decisions: HashMap<&str, &str> = start["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["matter"].as_str()?, e["decision"].as_str()?)))
        .collect();
    assert_eq!(decisions[OURS], "allowed");
    assert_eq!(decisions[THEIRS], "denied");
    // The first delivery of the matter's notes is recorded once, not per event.
    let deliveries: Vec<&Value> = records
        .iter()
        .filter(|r| r["operation"] == "subscription events")
        .collect();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0]["entries"][0]["matter"], OURS);
    assert_eq!(deliveries[0]["entries"][0]["fields"][0], "matter.notes");
}

/// The frames of a shared subscription to `query` as `user`.
async fn shared_frames(desk: &Desk, user: &str, query: &str) -> BoxStream<'static, shared::Frame> {
    let caller = caller(&desk.docket, Some(desk.users[user].principal.clone()));
    match shared::start(&desk.schema, &desk.renders, caller, Request::new(query)).await {
        Started::Shared(frames) => frames,
        Started::General(_) => panic!("an events subscription is served shared"),
    }
}

async fn next_frame(frames: &mut BoxStream<'static, shared::Frame>) -> shared::Frame {
    tokio::time::timeout(Duration::from_secs(10), frames.next())
        .await
        .expect("a frame within 10 s")
        .expect("the subscription is still open")
}

async fn the_shared_rendering_is_the_general_one(backend: Backend) {
    let desk = Desk::serving(backend, Path::Shared).await;
    let from = desk.docket.integrations.feed.head() + 1;
    let query = format!(
        "subscription($from: Int, $withData: Boolean!) {{ events(from: $from) {{ \
         {EVENT_FIELDS} alias: hash data @include(if: $withData) }} }}"
    );
    let request = || {
        Request::new(query.clone()).variables(async_graphql::Variables::from_json(
            json!({"from": from, "withData": true}),
        ))
    };
    let attorney = || {
        caller(
            &desk.docket,
            Some(desk.users["a.ttorney"].principal.clone()),
        )
    };
    let mut shared = desk.start(attorney(), request());
    let mut general = desk
        .schema
        .execute_stream(request().data(attorney()))
        .map(|response| serde_json::to_value(&response).unwrap())
        .boxed();
    for body in ["One", "Two", "Three"] {
        desk.note("p.one", OURS, body).await;
    }
    for body in ["One", "Two", "Three"] {
        let (got, expected) = (next(&mut shared).await, next(&mut general).await);
        assert_eq!(got, expected);
        assert_eq!(got["data"]["events"]["data"]["private"]["body"], body);
        assert_eq!(
            got["data"]["events"]["alias"],
            got["data"]["events"]["hash"]
        );
    }
}

async fn one_document_is_rendered_apart_for_each_admission(backend: Backend) {
    let desk = Desk::serving(backend, Path::Shared).await;
    let from = desk.docket.integrations.feed.head() + 1;
    let query = format!("subscription {{ events(from: {from}) {{ position payload data }} }}");
    let mut first = shared_frames(&desk, "a.ttorney", &query).await;
    let mut second = shared_frames(&desk, "a.ttorney", &query).await;
    let mut auditor = shared_frames(&desk, "au.ditor", &query).await;
    let mut outsider = shared_frames(&desk, "p.two", &query).await;
    let position = desk.note("p.one", OURS, "Only for the team").await;

    // The team member's rendering is made once and shared by both of their subscriptions.
    let (a, b) = (next_frame(&mut first).await, next_frame(&mut second).await);
    assert!(
        Arc::ptr_eq(&a.json, &b.json),
        "one rendering for one (document, admission)"
    );
    let content: Value = serde_json::from_str(&a.json).unwrap();
    assert_eq!(content["data"]["events"]["position"], position);
    assert_eq!(
        content["data"]["events"]["data"]["private"]["body"],
        "Only for the team"
    );

    // The auditor, rendered after, gets the metadata only: another rendering.
    let metadata = next_frame(&mut auditor).await;
    assert!(!Arc::ptr_eq(&a.json, &metadata.json));
    let metadata: Value = serde_json::from_str(&metadata.json).unwrap();
    assert_eq!(metadata["data"]["events"]["position"], position);
    assert_eq!(metadata["data"]["events"]["payload"], Value::Null);
    assert_eq!(metadata["data"]["events"]["data"], Value::Null);
    assert!(!metadata.to_string().contains("Only for the team"));

    // Someone outside the matter gets nothing at all.
    assert!(
        tokio::time::timeout(Duration::from_millis(700), outsider.next())
            .await
            .is_err()
    );
}

/// The value of an unlabelled series in the process's metrics.
fn metric(name: &str) -> f64 {
    let mut text = String::new();
    docket::metrics::global().encode(&mut text).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

async fn open_subscriptions_and_their_lag_are_in_the_metrics(backend: Backend, path: Path) {
    let desk = Desk::serving(backend, path).await;
    let lags_before = metric("docket_subscription_lag_seconds_count");
    let mut events = desk.subscribe(&desk.users["a.ttorney"].principal, "");
    desk.note("p.one", OURS, "Counted").await;
    next(&mut events).await;
    // Other tests of this process subscribe too: the figures only ever include this one.
    assert!(metric("docket_subscriptions_active") >= 1.0);
    assert!(metric("docket_subscription_lag_seconds_count") > lags_before);
}
