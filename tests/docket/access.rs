//! Access control through every path that reaches a matter: by number, lists, node lookups,
//! cross-matter lists, time travel, history, conflict search, and changes. Each is tried by the
//! team, a non-member, a walled member (by matter and by client), an admin, an auditor and an
//! anonymous caller; every decision must be recorded in the access chain.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::Request;
use docket::access::Principal;
use docket::access::record::Decision as Recorded;
use docket::api::graphql::caller::Caller;
use docket::api::graphql::{self, guard, with_loaders};
use docket::app::Docket;
use docket::domain::identity::Role;
use docket::identity::admin::WallSpec;
use docket::log::Actor;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, SignedIn, TestLog, caller, sign_in};

const MATTER: &str = "2026-0100";

struct Firm {
    _log: TestLog,
    docket: Docket,
    schema: graphql::DocketSchema,
    users: std::collections::HashMap<&'static str, SignedIn>,
    client_id: String,
}

impl Firm {
    /// A matter run by partner `p.team` with paralegal `l.team`; `s.walled` is on the team but
    /// walled from the matter; `a.clientwall` is on the team but walled from its client;
    /// `a.outside` is an attorney off the team; plus an admin and an auditor.
    async fn new(backend: Backend) -> Firm {
        let log = TestLog::new(backend).await;
        let docket = Docket::open_with(&log.options(), Duration::from_secs(5))
            .await
            .unwrap();
        docket.projector.spawn();
        let schema = graphql::build(
            docket.service.clone(),
            docket.projector.db().clone(),
            docket.identity.clone(),
        );
        let mut users = std::collections::HashMap::new();
        for (id, role) in [
            ("p.team", Role::Partner),
            ("l.team", Role::Paralegal),
            ("s.walled", Role::Staff),
            ("a.clientwall", Role::Attorney),
            ("a.outside", Role::Attorney),
            ("ad.min", Role::Admin),
            ("au.dit", Role::Auditor),
        ] {
            users.insert(id, sign_in(&docket.identity, id, role).await);
        }
        let mut firm = Firm {
            _log: log,
            docket,
            schema,
            users,
            client_id: String::new(),
        };
        firm.ok(
            "p.team",
            r#"mutation { openMatter(input: {matterNumber: "2026-0100",
            title: "Mbeki v. Northgate Council", practiceArea: "employment",
            responsibleAttorney: "p.team"}) { userErrors { code } } }"#,
        )
        .await;
        for (user, capacity) in [
            ("l.team", "PARALEGAL"),
            ("s.walled", "STAFF"),
            ("a.clientwall", "ATTORNEY"),
        ] {
            let added = firm
                .ok(
                    "p.team",
                    &format!(
                        r#"mutation {{ addTeamMember(number: "{MATTER}", userId: "{user}",
                        capacity: {capacity}) {{ userErrors {{ code }} }} }}"#
                    ),
                )
                .await;
            assert_eq!(added["addTeamMember"]["userErrors"], json!([]));
        }
        let contact = firm
            .ok(
                "p.team",
                r#"mutation { createContact(kind: PERSON, input: {displayName: "Thandiwe Mbeki"})
                { contact { contactId } userErrors { code } } }"#,
            )
            .await;
        firm.client_id = contact["createContact"]["contact"]["contactId"]
            .as_str()
            .unwrap()
            .to_owned();
        let client = firm.client_id.clone();
        for query in [
            format!(
                r#"mutation {{ addParty(number: "{MATTER}", contactId: "{client}", role: CLIENT) {{ userErrors {{ code }} }} }}"#
            ),
            format!(
                r#"mutation {{ addNote(number: "{MATTER}", body: "Strategy: settle", privileged: true) {{ userErrors {{ code }} }} }}"#
            ),
            format!(
                r#"mutation {{ addNote(number: "{MATTER}", body: "Client called") {{ userErrors {{ code }} }} }}"#
            ),
            format!(
                r#"mutation {{ createTask(number: "{MATTER}", title: "Draft the claim") {{ userErrors {{ code }} }} }}"#
            ),
        ] {
            let data = firm.ok("p.team", &query).await;
            let payload = data.as_object().unwrap().values().next().unwrap();
            assert_eq!(payload["userErrors"], json!([]), "{query}");
        }
        let identity = &firm.docket.identity;
        identity
            .erect_wall(
                &Actor::system(),
                None,
                &WallSpec {
                    name: "Northgate".into(),
                    reason: "s.walled's spouse works for the council".into(),
                    screened_users: vec!["s.walled".into()],
                    matters: vec![MATTER.into()],
                    ..WallSpec::default()
                },
            )
            .await
            .unwrap();
        identity
            .erect_wall(
                &Actor::system(),
                None,
                &WallSpec {
                    name: "Mbeki".into(),
                    reason: "a.clientwall acted against Ms Mbeki before".into(),
                    screened_users: vec!["a.clientwall".into()],
                    clients: vec![firm.client_id.clone()],
                    ..WallSpec::default()
                },
            )
            .await
            .unwrap();
        firm
    }

    fn principal(&self, user: &str) -> Principal {
        self.users[user].principal.clone()
    }

    async fn run_as(&self, principal: Option<Principal>, query: &str) -> Value {
        let caller: Arc<Caller> = caller(&self.docket, principal);
        let request =
            with_loaders(Request::new(query), self.docket.projector.db()).data(caller.clone());
        let response = self.schema.execute(request).await;
        caller.flush("test").await.unwrap();
        serde_json::to_value(&response).unwrap()
    }

    async fn run(&self, user: &str, query: &str) -> Value {
        self.run_as(Some(self.principal(user)), query).await
    }

    async fn ok(&self, user: &str, query: &str) -> Value {
        let response = self.run(user, query).await;
        assert!(response.get("errors").is_none(), "{user}: {response}");
        response["data"].clone()
    }
}

fn code(response: &Value) -> Value {
    response["errors"][0]["extensions"]["code"].clone()
}

/// The users who may see nothing of the matter.
const OUTSIDERS: [&str; 4] = ["a.outside", "s.walled", "a.clientwall", "ad.min"];

async fn only_the_team_reaches_a_matter_by_every_read_path(backend: Backend) {
    let firm = Firm::new(backend).await;
    let id = firm
        .ok(
            "p.team",
            r#"{ matter(number: "2026-0100") { id tasks { id } notes { id } } }"#,
        )
        .await;
    let matter_id = id["matter"]["id"].as_str().unwrap().to_owned();
    let task_id = id["matter"]["tasks"][0]["id"].as_str().unwrap().to_owned();
    let note_id = id["matter"]["notes"][0]["id"].as_str().unwrap().to_owned();
    // Each path and how to tell whether it revealed the matter.
    type Revealed = fn(&Value) -> bool;
    let paths: Vec<(String, Revealed)> = vec![
        (r#"{ matter(number: "2026-0100") { title } }"#.into(), |d| {
            !d["matter"].is_null()
        }),
        (
            r#"{ matters(first: 10) { nodes { number } } }"#.into(),
            |d| {
                d["matters"]["nodes"]
                    .as_array()
                    .is_some_and(|n| !n.is_empty())
            },
        ),
        (format!(r#"{{ node(id: "{matter_id}") {{ id }} }}"#), |d| {
            !d["node"].is_null()
        }),
        (format!(r#"{{ node(id: "{task_id}") {{ id }} }}"#), |d| {
            !d["node"].is_null()
        }),
        (format!(r#"{{ node(id: "{note_id}") {{ id }} }}"#), |d| {
            !d["node"].is_null()
        }),
        (
            r#"{ openTasks(first: 10) { nodes { title } } }"#.into(),
            |d| {
                d["openTasks"]["nodes"]
                    .as_array()
                    .is_some_and(|n| !n.is_empty())
            },
        ),
        (
            r#"{ matterAsOf(number: "2026-0100", position: 100000) { title } }"#.into(),
            |d| !d["matterAsOf"].is_null(),
        ),
    ];
    for (query, revealed) in &paths {
        let team = firm.run("p.team", query).await;
        assert!(team.get("errors").is_none(), "{query}: {team}");
        assert!(revealed(&team["data"]), "the team sees it: {query}");
        for outsider in OUTSIDERS {
            let response = firm.run(outsider, query).await;
            assert!(
                response.get("errors").is_none() || code(&response) == json!("FORBIDDEN"),
                "{outsider} {query}: {response}"
            );
            assert!(
                !revealed(&response["data"]),
                "{outsider} must not see it: {query}"
            );
        }
        let anonymous = firm.run_as(None, query).await;
        assert_eq!(
            code(&anonymous),
            json!("UNAUTHENTICATED"),
            "{query}: {anonymous}"
        );
        assert!(!revealed(&anonymous["data"]), "anonymous: {query}");
    }
}

async fn a_hidden_matter_looks_exactly_like_a_missing_one(backend: Backend) {
    let firm = Firm::new(backend).await;
    for outsider in OUTSIDERS {
        let hidden = firm
            .run(outsider, r#"{ matter(number: "2026-0100") { title } }"#)
            .await;
        let missing = firm
            .run(outsider, r#"{ matter(number: "2099-0001") { title } }"#)
            .await;
        assert_eq!(hidden["data"], missing["data"], "{outsider}");
        let note = |number: &str| {
            format!(
                r#"mutation {{ addNote(number: "{number}", body: "x") {{ userErrors {{ code message }} }} }}"#
            )
        };
        let hidden = firm.run(outsider, &note(MATTER)).await;
        let missing = firm.run(outsider, &note("2099-0001")).await;
        assert_eq!(
            hidden, missing,
            "{outsider}: a refused change says what a missing matter says"
        );
        assert_eq!(
            hidden["data"]["addNote"]["userErrors"][0]["code"],
            json!("MATTER_NOT_FOUND")
        );
    }
    let head = firm.docket.log.head().await.unwrap().position;
    firm.run(
        "a.outside",
        &format!(
            r#"mutation {{ addNote(number: "{MATTER}", body: "x") {{ userErrors {{ code }} }} }}"#
        ),
    )
    .await;
    assert_eq!(
        firm.docket.log.head().await.unwrap().position,
        head,
        "nothing was appended"
    );
}

async fn privileged_notes_are_for_lawyers_on_the_team_only(backend: Backend) {
    let firm = Firm::new(backend).await;
    let notes = |data: &Value| -> Vec<bool> {
        data["matter"]["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|note| note["privileged"].as_bool().unwrap())
            .collect()
    };
    let query = r#"{ matter(number: "2026-0100") { notes { privileged body } } }"#;
    let partner = firm.ok("p.team", query).await;
    assert_eq!(notes(&partner).len(), 2);
    let paralegal = firm.ok("l.team", query).await;
    assert_eq!(
        notes(&paralegal),
        vec![false],
        "the paralegal sees the ordinary note only"
    );
    // Nor can the paralegal write one, or reach it by id.
    let refused = firm
        .run("l.team", r#"mutation { addNote(number: "2026-0100", body: "x", privileged: true) { userErrors { code } } }"#)
        .await;
    assert_eq!(code(&refused), json!("FORBIDDEN"));
    let id = firm
        .ok(
            "p.team",
            r#"{ matter(number: "2026-0100") { notes { id privileged } } }"#,
        )
        .await;
    let privileged_id = id["matter"]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|note| note["privileged"] == json!(true))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_id = firm
        .ok(
            "l.team",
            &format!(r#"{{ node(id: "{privileged_id}") {{ id }} }}"#),
        )
        .await;
    assert!(by_id["node"].is_null());
}

async fn auditors_see_history_but_not_content_and_admins_see_nothing(backend: Backend) {
    let firm = Firm::new(backend).await;
    let history = firm
        .ok(
            "au.dit",
            r#"{ matter(number: "2026-0100") { number status history(first: 5) { eventType } } }"#,
        )
        .await;
    assert_eq!(history["matter"]["number"], json!(MATTER));
    assert!(!history["matter"]["history"].as_array().unwrap().is_empty());
    let content = firm
        .run("au.dit", r#"{ matter(number: "2026-0100") { title } }"#)
        .await;
    assert_eq!(code(&content), json!("FORBIDDEN"), "{content}");
    assert!(content["data"]["matter"].is_null() || content["data"]["matter"]["title"].is_null());
    let admin = firm
        .ok("ad.min", r#"{ matter(number: "2026-0100") { number } }"#)
        .await;
    assert!(admin["matter"].is_null(), "duties are separated");
}

async fn firm_visible_matters_are_read_only_beyond_the_team(backend: Backend) {
    let firm = Firm::new(backend).await;
    let made = firm
        .ok("p.team", r#"mutation { setMatterVisibility(number: "2026-0100", firmVisible: true) { userErrors { code } } }"#)
        .await;
    assert_eq!(made["setMatterVisibility"]["userErrors"], json!([]));
    let seen = firm
        .ok(
            "a.outside",
            r#"{ matter(number: "2026-0100") { title notes { privileged } } }"#,
        )
        .await;
    assert_eq!(seen["matter"]["title"], json!("Mbeki v. Northgate Council"));
    assert_eq!(seen["matter"]["notes"], json!([{"privileged": false}]));
    let write = firm
        .run(
            "a.outside",
            r#"mutation { addNote(number: "2026-0100", body: "x") { userErrors { code } } }"#,
        )
        .await;
    assert_eq!(code(&write), json!("FORBIDDEN"));
    // Walls still hold, and the admin still sees nothing.
    for user in ["s.walled", "a.clientwall", "ad.min"] {
        let hidden = firm
            .ok(user, r#"{ matter(number: "2026-0100") { number } }"#)
            .await;
        assert!(hidden["matter"].is_null(), "{user}");
    }
}

async fn a_wall_applies_to_open_sessions_at_once_and_overrides_partners(backend: Backend) {
    let firm = Firm::new(backend).await;
    let query = r#"{ matter(number: "2026-0100") { number } }"#;
    assert!(!firm.ok("l.team", query).await["matter"].is_null());
    let wall = firm
        .docket
        .identity
        .erect_wall(
            &Actor::system(),
            None,
            &WallSpec {
                name: "Late conflict".into(),
                reason: "discovered after opening".into(),
                screened_users: vec!["l.team".into(), "p.team".into()],
                matters: vec![MATTER.into()],
                ..WallSpec::default()
            },
        )
        .await
        .unwrap();
    // The same sessions, the next request.
    assert!(firm.ok("l.team", query).await["matter"].is_null());
    assert!(
        firm.ok("p.team", query).await["matter"].is_null(),
        "a partner is walled too"
    );
    firm.docket
        .identity
        .lift_wall(&Actor::system(), None, &wall, "conflict resolved")
        .await
        .unwrap();
    assert!(!firm.ok("l.team", query).await["matter"].is_null());
}

async fn contacts_behind_a_client_wall_are_hidden(backend: Backend) {
    let firm = Firm::new(backend).await;
    let query = format!(
        r#"{{ contact(contactId: "{}") {{ displayName }} }}"#,
        firm.client_id
    );
    assert!(!firm.ok("p.team", &query).await["contact"].is_null());
    assert!(firm.ok("a.clientwall", &query).await["contact"].is_null());
    let listed = firm
        .ok(
            "a.clientwall",
            r#"{ contacts(first: 10) { nodes { contactId } } }"#,
        )
        .await;
    assert_eq!(listed["contacts"]["nodes"], json!([]));
    // Admins and auditors have no contact access at all.
    for user in ["ad.min", "au.dit"] {
        assert_eq!(
            code(&firm.run(user, &query).await),
            json!("FORBIDDEN"),
            "{user}"
        );
    }
}

async fn conflict_search_is_firm_wide_and_reveals_only_what_it_needs(backend: Backend) {
    let firm = Firm::new(backend).await;
    for user in ["a.outside", "s.walled", "a.clientwall"] {
        let found = firm
            .ok(
                user,
                r#"{ conflictSearch(name: "mbeki") { matterNumber role responsibleAttorney } }"#,
            )
            .await;
        assert_eq!(
            found["conflictSearch"],
            json!([{"matterNumber": MATTER, "role": "CLIENT", "responsibleAttorney": "p.team"}]),
            "{user}"
        );
    }
    let refused = firm
        .run(
            "ad.min",
            r#"{ conflictSearch(name: "mbeki") { matterNumber } }"#,
        )
        .await;
    assert_eq!(code(&refused), json!("FORBIDDEN"));
}

async fn every_decision_is_recorded_in_the_signed_access_chain(backend: Backend) {
    let firm = Firm::new(backend).await;
    firm.ok("a.outside", r#"{ matter(number: "2026-0100") { number } }"#)
        .await;
    firm.ok(
        "p.team",
        r#"{ matter(number: "2026-0100") { title notes { body } } }"#,
    )
    .await;
    let rows = firm
        .docket
        .access
        .query(&docket::access::index::AccessQuery {
            principal: None,
            matter: Some(MATTER.into()),
            decision: None,
            from: None,
            to: None,
            before_position: None,
            limit: 500,
        })
        .await
        .unwrap();
    let denied = rows
        .iter()
        .find(|row| row.principal == "user:a.outside")
        .expect("the outsider's denial is recorded");
    assert_eq!(denied.decision, Recorded::Denied);
    assert_eq!(denied.reason, "not_on_team");
    let read = rows
        .iter()
        .filter(|row| row.principal == "user:p.team" && row.decision == Recorded::Allowed)
        .flat_map(|row| row.fields.iter().cloned())
        .collect::<Vec<_>>();
    for part in ["matter.core", "matter.notes", "matter.notes.privileged"] {
        assert!(read.iter().any(|field| field == part), "{part} in {read:?}");
    }
    let verified = docket::verification::verify_log(
        firm.docket.access.log().store().clone(),
        Default::default(),
        |_| {},
    )
    .await
    .unwrap();
    assert!(verified.is_ok(), "the access chain verifies: {verified:?}");
}

async fn a_revoked_session_or_key_proves_nobody_at_once(backend: Backend) {
    let firm = Firm::new(backend).await;
    let user = &firm.users["l.team"];
    let identity = &firm.docket.identity;
    assert!(identity.authenticate(&user.token).await.unwrap().is_some());
    identity.logout(&user.principal).await.unwrap();
    assert!(identity.authenticate(&user.token).await.unwrap().is_none());

    identity
        .register_api_client(&Actor::system(), None, "billing", "Billing system")
        .await
        .unwrap();
    let key = identity
        .issue_api_key(&Actor::system(), None, "billing", None)
        .await
        .unwrap();
    let principal = identity
        .authenticate(&key.text)
        .await
        .unwrap()
        .expect("the key works");
    assert_eq!(principal.actor.as_str(), "api_client:billing");
    identity
        .revoke_api_key(&Actor::system(), None, &key.key_id, "revoked")
        .await
        .unwrap();
    assert!(identity.authenticate(&key.text).await.unwrap().is_none());
    // A disabled user's other sessions end too.
    let partner = &firm.users["p.team"];
    identity
        .disable_user(&Actor::system(), None, "p.team", "left the firm")
        .await
        .unwrap();
    assert!(
        identity
            .authenticate(&partner.token)
            .await
            .unwrap()
            .is_none()
    );
    let refused = firm
        .run("p.team", r#"{ matter(number: "2026-0100") { number } }"#)
        .await;
    assert_eq!(
        code(&refused),
        json!("UNAUTHENTICATED"),
        "a stale principal is inactive"
    );
}

/// Every field of every object type in the schema has a rule in the guard's table.
#[test]
fn every_field_of_the_schema_has_a_policy() {
    let sdl = graphql::sdl();
    let mut missing = Vec::new();
    let mut checked = 0;
    let mut current: Option<String> = None;
    let mut in_description = false;
    let mut depth = 0i32;
    for line in sdl.lines() {
        let trimmed = line.trim();
        if in_description {
            in_description = !trimmed.contains("\"\"\"");
            continue;
        }
        if trimmed.starts_with("\"\"\"") {
            let rest = trimmed.strip_prefix("\"\"\"").unwrap_or_default();
            in_description = !rest.contains("\"\"\"");
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("type ") {
            current = rest.split_whitespace().next().map(str::to_owned);
            depth = 0;
            continue;
        }
        if trimmed.starts_with('}') && depth == 0 {
            current = None;
            continue;
        }
        let Some(type_name) = &current else { continue };
        let at_field = depth == 0;
        depth += trimmed.matches('(').count() as i32 - trimmed.matches(')').count() as i32;
        if !at_field || trimmed.starts_with('"') || trimmed.starts_with('@') {
            continue;
        }
        let field: String = trimmed
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if field.is_empty() {
            continue;
        }
        checked += 1;
        if guard::rule(type_name, &field).is_none() {
            missing.push(format!("{type_name}.{field}"));
        }
    }
    assert!(checked > 200, "the schema was read ({checked} fields)");
    assert_eq!(missing, Vec::<String>::new(), "fields without a policy");
}

on_both_backends!(
    only_the_team_reaches_a_matter_by_every_read_path,
    a_hidden_matter_looks_exactly_like_a_missing_one,
    privileged_notes_are_for_lawyers_on_the_team_only,
    auditors_see_history_but_not_content_and_admins_see_nothing,
    firm_visible_matters_are_read_only_beyond_the_team,
    a_wall_applies_to_open_sessions_at_once_and_overrides_partners,
    contacts_behind_a_client_wall_are_hidden,
    conflict_search_is_firm_wide_and_reveals_only_what_it_needs,
    every_decision_is_recorded_in_the_signed_access_chain,
    a_revoked_session_or_key_proves_nobody_at_once,
);
