//! The GraphQL API, executed against the schema with a fresh store per test, on both backends.

use std::time::Duration;

use async_graphql::Request;
use docket::api::graphql::{self, with_loaders};
use docket::app::Docket;
use docket::domain::identity::Role;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, SignedIn, TestLog, caller, sign_in};

struct Api {
    _log: TestLog,
    docket: Docket,
    schema: graphql::DocketSchema,
    /// The partner every request is made by (responsible attorney of the matters opened).
    partner: SignedIn,
}

impl Api {
    async fn new(backend: Backend) -> Self {
        let log = TestLog::new(backend).await;
        let docket = Docket::open_with(&log.options(), Duration::from_secs(5))
            .await
            .unwrap();
        docket.projector.spawn();
        let schema = graphql::build(
            docket.service.clone(),
            docket.projector.db().clone(),
            docket.identity.clone(),
            docket.checkpoints.clone(),
            docket.integrations.clone(),
        );
        let partner = sign_in(&docket.identity, "a.okafor", Role::Partner).await;
        Api {
            _log: log,
            docket,
            schema,
            partner,
        }
    }

    async fn run(&self, query: &str, variables: Value) -> Value {
        let request = Request::new(query).variables(async_graphql::Variables::from_json(variables));
        let caller = caller(&self.docket, Some(self.partner.principal.clone()));
        let request = with_loaders(request, self.docket.projector.db()).data(caller.clone());
        let response = self.schema.execute(request).await;
        caller.flush("test").await.unwrap();
        serde_json::to_value(&response).unwrap()
    }

    async fn ok(&self, query: &str, variables: Value) -> Value {
        let response = self.run(query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response}"
        );
        response["data"].clone()
    }
}

const OPEN: &str = r#"mutation($n: String!) {
  openMatter(input: {matterNumber: $n, title: "Okafor v. Brightline Ltd", practiceArea: "employment",
                     responsibleAttorney: "a.okafor", statuteOfLimitationsOn: "2027-06-30"}) {
    matter { id number status version }
    positions { first last }
    version projected
    userErrors { field code message }
  }
}"#;

async fn opens_a_matter_and_reads_it_back(backend: Backend) {
    let api = Api::new(backend).await;
    let data = api.ok(OPEN, json!({"n": "2026-0042"})).await;
    let payload = &data["openMatter"];
    assert_eq!(payload["userErrors"], json!([]));
    assert_eq!(payload["projected"], json!(true));
    assert_eq!(payload["matter"]["status"], json!("OPEN"));
    assert_eq!(
        payload["version"],
        json!(2),
        "matter.opened + team_member_added"
    );
    assert!(payload["positions"]["last"].as_u64().unwrap() > 1);

    // The same number again is a typed user error, and nothing is appended.
    let head = api.docket.log.head().await.unwrap().position;
    let again = api.ok(OPEN, json!({"n": "2026-0042"})).await;
    assert_eq!(
        again["openMatter"]["userErrors"][0]["code"],
        json!("DUPLICATE_MATTER_NUMBER")
    );
    assert_eq!(api.docket.log.head().await.unwrap().position, head);

    // By node id.
    let id = payload["matter"]["id"].as_str().unwrap();
    let node = api
        .ok(
            "query($id: ID!) { node(id: $id) { id ... on Matter { title } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(node["node"]["title"], json!("Okafor v. Brightline Ltd"));
}

const DETAIL: &str = r#"query($n: String!) {
  matter(number: $n) {
    number title status version
    parties { role contact { displayName emails } }
    documents { title latestVersion versions { version contentHash size mediaType } }
    calendarEntries { kind title startsAt rule }
    tasks { title status }
    team { userId capacity }
  }
}"#;

async fn matter_detail_shows_parties_documents_and_deadlines(backend: Backend) {
    let api = Api::new(backend).await;
    api.ok(OPEN, json!({"n": "2026-0001"})).await;
    let contact = api
        .ok(
            r#"mutation { createContact(kind: PERSON, input: {displayName: "Ngozi Okafor",
                emails: ["Ngozi@Example.org"]}) { contact { contactId } userErrors { code } } }"#,
            json!({}),
        )
        .await;
    let contact_id = contact["createContact"]["contact"]["contactId"]
        .as_str()
        .unwrap()
        .to_owned();
    let party = api
        .ok(
            r#"mutation($n: String!, $c: String!) { addParty(number: $n, contactId: $c, role: CLIENT) {
                userErrors { code } } }"#,
            json!({"n": "2026-0001", "c": contact_id}),
        )
        .await;
    assert_eq!(party["addParty"]["userErrors"], json!([]));
    let content = base64_of(b"%PDF-1.7 claim form");
    api.ok(
        r#"mutation($n: String!, $b: String!) { addDocument(number: $n, input: {documentType: "pleading",
            title: "ET1 claim form", mediaType: "application/pdf", contentBase64: $b}) { userErrors { code } } }"#,
        json!({"n": "2026-0001", "b": content}),
    )
    .await;
    api.ok(
        r#"mutation($n: String!) { scheduleCalendarEntry(number: $n, input: {kind: FILING_DEADLINE,
            title: "ET3 response due", startsAt: "2026-12-24", allDay: true,
            rule: "Employment Tribunal Rules 2024, r.16"}) { userErrors { code } } }"#,
        json!({"n": "2026-0001"}),
    )
    .await;

    let data = api.ok(DETAIL, json!({"n": "2026-0001"})).await;
    let matter = &data["matter"];
    assert_eq!(matter["parties"][0]["role"], json!("CLIENT"));
    assert_eq!(
        matter["parties"][0]["contact"]["emails"],
        json!(["ngozi@example.org"])
    );
    assert_eq!(matter["documents"][0]["versions"][0]["size"], json!(19));
    assert_eq!(
        matter["documents"][0]["versions"][0]["contentHash"],
        json!(blake3::hash(b"%PDF-1.7 claim form").to_hex().to_string())
    );
    assert_eq!(
        matter["calendarEntries"][0]["kind"],
        json!("FILING_DEADLINE")
    );
    assert_eq!(matter["team"][0]["capacity"], json!("RESPONSIBLE_ATTORNEY"));

    // The stored bytes come back unchanged.
    let hash = matter["documents"][0]["versions"][0]["contentHash"]
        .as_str()
        .unwrap();
    let bytes = api
        .docket
        .service
        .content("2026-0001", hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bytes, b"%PDF-1.7 claim form");

    // Conflict search finds the client by a differently written name.
    let search = api
        .ok(r#"{ conflictSearch(name: "OKAFOR, ngozi") { matterNumber role responsibleAttorney } }"#, json!({}))
        .await;
    assert_eq!(
        search["conflictSearch"][0]["matterNumber"],
        json!("2026-0001")
    );
    assert_eq!(search["conflictSearch"][0]["role"], json!("CLIENT"));
}

async fn business_rule_violations_are_user_errors_and_append_nothing(backend: Backend) {
    let api = Api::new(backend).await;
    api.ok(OPEN, json!({"n": "2026-0002"})).await;
    let task = api
        .ok(
            r#"mutation { createTask(number: "2026-0002", title: "Draft witness statement") {
                matter { version } userErrors { code } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(task["createTask"]["userErrors"], json!([]));
    let head = api.docket.log.head().await.unwrap().position;
    let close = api
        .ok(
            r#"mutation { changeMatterStatus(number: "2026-0002", status: CLOSED) {
                userErrors { field code message } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        close["changeMatterStatus"]["userErrors"][0]["code"],
        json!("MATTER_HAS_OPEN_TASKS")
    );
    assert_eq!(
        close["changeMatterStatus"]["userErrors"][0]["field"],
        json!("force")
    );
    let stale = api
        .ok(
            r#"mutation { addNote(number: "2026-0002", body: "x", options: {expectedVersion: 1}) {
                userErrors { code } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        stale["addNote"]["userErrors"][0]["code"],
        json!("VERSION_CONFLICT")
    );
    assert_eq!(api.docket.log.head().await.unwrap().position, head);

    let forced = api
        .ok(
            r#"mutation { changeMatterStatus(number: "2026-0002", status: CLOSED, force: true,
                reason: "client withdrew") { matter { status closedOn } userErrors { code } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        forced["changeMatterStatus"]["matter"]["status"],
        json!("CLOSED")
    );
    let late = api
        .ok(
            r#"mutation { addNote(number: "2026-0002", body: "late") { userErrors { code } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        late["addNote"]["userErrors"][0]["code"],
        json!("MATTER_CLOSED")
    );
}

async fn idempotent_mutations_return_the_first_result(backend: Backend) {
    let api = Api::new(backend).await;
    api.ok(OPEN, json!({"n": "2026-0003"})).await;
    let query = r#"mutation { addNote(number: "2026-0003", body: "call client",
        options: {idempotencyKey: "note-1"}) { positions { last } replayed userErrors { code } } }"#;
    let first = api.ok(query, json!({})).await;
    let second = api.ok(query, json!({})).await;
    assert_eq!(first["addNote"]["replayed"], json!(false));
    assert_eq!(second["addNote"]["replayed"], json!(true));
    assert_eq!(
        first["addNote"]["positions"],
        second["addNote"]["positions"]
    );
}

async fn lists_page_with_cursors_and_filter(backend: Backend) {
    let api = Api::new(backend).await;
    for n in 1..=5 {
        api.ok(OPEN, json!({"n": format!("2026-01{n:02}")})).await;
    }
    api.ok(
        r#"mutation { changeMatterStatus(number: "2026-0103", status: PENDING) { userErrors { code } } }"#,
        json!({}),
    )
    .await;
    let page = r#"query($after: String) { matters(first: 2, after: $after) {
        edges { cursor node { number } } pageInfo { hasNextPage endCursor } } }"#;
    let one = api.ok(page, json!({})).await;
    assert_eq!(
        one["matters"]["edges"][0]["node"]["number"],
        json!("2026-0101")
    );
    assert_eq!(one["matters"]["pageInfo"]["hasNextPage"], json!(true));
    let cursor = one["matters"]["pageInfo"]["endCursor"].clone();
    let two = api.ok(page, json!({"after": cursor})).await;
    assert_eq!(
        two["matters"]["edges"][0]["node"]["number"],
        json!("2026-0103")
    );

    let last = api
        .ok(
            r#"{ matters(last: 1) { edges { node { number } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        last["matters"]["edges"][0]["node"]["number"],
        json!("2026-0105")
    );

    let pending = api
        .ok(
            r#"{ matters(first: 10, filter: {status: [PENDING]}) { edges { node { number } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(pending["matters"]["edges"].as_array().unwrap().len(), 1);

    // first/last are required and bounded.
    let unbounded = api
        .run(r#"{ matters { edges { node { number } } } }"#, json!({}))
        .await;
    assert_eq!(
        unbounded["errors"][0]["extensions"]["code"],
        json!("INVALID_ARGUMENT")
    );
    let huge = api
        .run(
            r#"{ matters(first: 101) { edges { node { number } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        huge["errors"][0]["extensions"]["code"],
        json!("INVALID_ARGUMENT")
    );
}

async fn responses_report_their_cost_and_expensive_queries_are_refused(backend: Backend) {
    let api = Api::new(backend).await;
    let response = api
        .run(
            r#"{ matters(first: 10) { edges { node { number } } } }"#,
            json!({}),
        )
        .await;
    let cost = &response["extensions"]["cost"];
    assert!(
        cost["requestedQueryCost"].as_u64().unwrap() >= 10,
        "{response}"
    );
    assert_eq!(cost["maximumAvailable"], json!(graphql::MAX_COST));

    let expensive = r#"{ matters(first: 100) { edges { node { parties { matter {
        documents { versions { contentHash } } parties { contact { parties { role } } } } } } } } }"#;
    let refused = api.run(expensive, json!({})).await;
    let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("complex"), "{refused}");
    assert!(refused["data"].is_null());
}

async fn history_verifies_and_time_travel_replays_the_log(backend: Backend) {
    let api = Api::new(backend).await;
    let opened = api.ok(OPEN, json!({"n": "2026-0004"})).await;
    let before = opened["openMatter"]["positions"]["last"].as_u64().unwrap();
    api.ok(
        r#"mutation { updateMatter(number: "2026-0004", input: {title: "Okafor v. Brightline (settled)"}) {
            userErrors { code } } }"#,
        json!({}),
    )
    .await;
    let history = api
        .ok(
            r#"{ matter(number: "2026-0004") { history(first: 10) {
                eventType changedFields hash signature verified } } }"#,
            json!({}),
        )
        .await;
    let events = history["matter"]["history"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|event| event["verified"] == json!(true)));
    assert_eq!(events[2]["eventType"], json!("matter.details_changed"));
    assert_eq!(events[2]["changedFields"], json!(["title"]));

    let past = api
        .ok(
            r#"query($p: Int!) { matterAsOf(number: "2026-0004", position: $p) { title version } }"#,
            json!({"p": before}),
        )
        .await;
    assert_eq!(
        past["matterAsOf"]["title"],
        json!("Okafor v. Brightline Ltd")
    );
    let now = api
        .ok(
            r#"query($t: String!) { matterAsOf(number: "2026-0004", time: $t) { title } }"#,
            json!({"t": "2999-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        now["matterAsOf"]["title"],
        json!("Okafor v. Brightline (settled)")
    );
    let timeline = api
        .ok(r#"{ matter(number: "2026-0004") { timeline(first: 10) { edges { node { eventType } } } } }"#, json!({}))
        .await;
    assert_eq!(
        timeline["matter"]["timeline"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

async fn timeline_pages_forward_and_backward_with_cursors(backend: Backend) {
    let api = Api::new(backend).await;
    api.ok(OPEN, json!({"n": "2026-0005"})).await;
    for k in 0..4 {
        api.ok(
            r#"mutation($b: String!) { addNote(number: "2026-0005", body: $b) { userErrors { code } } }"#,
            json!({"b": format!("note {k}")}),
        )
        .await;
    }
    let page = r#"query($after: String) { matter(number: "2026-0005") {
        timeline(first: 2, after: $after) { edges { node { version } }
        pageInfo { hasNextPage hasPreviousPage endCursor } } } }"#;
    let one = api.ok(page, json!({})).await;
    let timeline = &one["matter"]["timeline"];
    assert_eq!(timeline["edges"][0]["node"]["version"], json!(1));
    assert_eq!(timeline["pageInfo"]["hasNextPage"], json!(true));
    let cursor = timeline["pageInfo"]["endCursor"].clone();
    let two = api.ok(page, json!({"after": cursor})).await;
    assert_eq!(
        two["matter"]["timeline"]["edges"][0]["node"]["version"],
        json!(3)
    );
    assert_eq!(
        two["matter"]["timeline"]["pageInfo"]["hasPreviousPage"],
        json!(true)
    );

    let last = api
        .ok(
            r#"{ matter(number: "2026-0005") { timeline(last: 2) { edges { node { version } }
                pageInfo { hasNextPage hasPreviousPage } } } }"#,
            json!({}),
        )
        .await;
    let timeline = &last["matter"]["timeline"];
    assert_eq!(timeline["edges"][1]["node"]["version"], json!(6));
    assert_eq!(timeline["pageInfo"]["hasPreviousPage"], json!(true));
    assert_eq!(timeline["pageInfo"]["hasNextPage"], json!(false));
}

async fn retried_contact_creation_returns_the_first_contact(backend: Backend) {
    let api = Api::new(backend).await;
    let query = r#"mutation { createContact(kind: ORGANISATION, input: {displayName: "Brightline Ltd"},
        options: {idempotencyKey: "contact-1"}) { contact { contactId } replayed userErrors { code } } }"#;
    let first = api.ok(query, json!({})).await;
    let second = api.ok(query, json!({})).await;
    assert_eq!(second["createContact"]["replayed"], json!(true));
    assert_eq!(
        first["createContact"]["contact"]["contactId"],
        second["createContact"]["contact"]["contactId"]
    );
}

async fn a_refused_upload_stores_no_content(backend: Backend) {
    let api = Api::new(backend).await;
    api.ok(OPEN, json!({"n": "2026-0006"})).await;
    api.ok(
        r#"mutation { changeMatterStatus(number: "2026-0006", status: CLOSED) { userErrors { code } } }"#,
        json!({}),
    )
    .await;
    let bytes = b"never stored";
    let refused = api
        .ok(
            r#"mutation($b: String!) { addDocument(number: "2026-0006", input: {documentType: "letter",
                title: "Late", mediaType: "text/plain", contentBase64: $b}) { userErrors { code } } }"#,
            json!({"b": base64_of(bytes)}),
        )
        .await;
    assert_eq!(
        refused["addDocument"]["userErrors"][0]["code"],
        json!("MATTER_CLOSED")
    );
    let hash = blake3::hash(bytes).to_hex().to_string();
    assert_eq!(
        api.docket
            .service
            .content("2026-0006", &hash)
            .await
            .unwrap(),
        None
    );
}

on_both_backends!(
    opens_a_matter_and_reads_it_back,
    matter_detail_shows_parties_documents_and_deadlines,
    business_rule_violations_are_user_errors_and_append_nothing,
    idempotent_mutations_return_the_first_result,
    lists_page_with_cursors_and_filter,
    responses_report_their_cost_and_expensive_queries_are_refused,
    history_verifies_and_time_travel_replays_the_log,
    timeline_pages_forward_and_backward_with_cursors,
    retried_contact_creation_returns_the_first_contact,
    a_refused_upload_stores_no_content,
);

#[test]
fn committed_sdl_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/docket.graphql");
    let sdl = graphql::sdl();
    if std::env::var_os("DOCKET_REGENERATE_SDL").is_some() {
        std::fs::write(&path, &sdl).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == sdl,
        "schema/docket.graphql differs from the code; run DOCKET_REGENERATE_SDL=1 cargo test committed_sdl"
    );
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
