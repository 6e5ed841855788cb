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
            docket.checkpoints.clone(),
            docket.integrations.clone(),
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

    /// Runs without the final flush the HTTP handler makes, and hands the caller back.
    async fn run_unflushed(&self, user: &str, query: &str) -> (Value, Arc<Caller>) {
        let caller: Arc<Caller> = caller(&self.docket, Some(self.principal(user)));
        let request =
            with_loaders(Request::new(query), self.docket.projector.db()).data(caller.clone());
        let response = self.schema.execute(request).await;
        (serde_json::to_value(&response).unwrap(), caller)
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
    // An ended session and a revoked key reach nothing by any path.
    let ended = ended_credentials(&firm).await;
    for (query, revealed) in &paths {
        for (what, principal) in &ended {
            let response = firm.run_as(principal.clone(), query).await;
            assert_eq!(code(&response), json!("UNAUTHENTICATED"), "{what}: {query}");
            assert!(!revealed(&response["data"]), "{what}: {query}");
        }
    }
}

/// What a session that ended and an API key that was revoked prove, as the HTTP handler asks
/// (nobody): the session of a team member who logged out, and a revoked key of a client.
async fn ended_credentials(firm: &Firm) -> Vec<(&'static str, Option<Principal>)> {
    let identity = &firm.docket.identity;
    let member = sign_in(identity, "x.ended", Role::Partner).await;
    firm.ok(
        "p.team",
        r#"mutation { addTeamMember(number: "2026-0100", userId: "x.ended", capacity: ATTORNEY) { userErrors { code } } }"#,
    )
    .await;
    identity.logout(&member.principal).await.unwrap();
    identity
        .register_api_client(&Actor::system(), None, "billing", "Billing")
        .await
        .unwrap();
    let key = identity
        .issue_api_key(&Actor::system(), None, "billing", None)
        .await
        .unwrap();
    identity
        .revoke_api_key(&Actor::system(), None, &key.key_id, "revoked")
        .await
        .unwrap();
    vec![
        (
            "ended session",
            identity.authenticate(&member.token).await.unwrap(),
        ),
        (
            "revoked key",
            identity.authenticate(&key.text).await.unwrap(),
        ),
    ]
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

/// Every change to a matter, by every kind of caller: the team may make it (business rules
/// aside), a paralegal on the team only what the matrix allows, and outsiders, walled members,
/// the admin, the auditor and anonymous callers are refused without anything being appended.
async fn every_matter_change_is_decided_for_every_kind_of_caller(backend: Backend) {
    let firm = Firm::new(backend).await;
    let ids = firm
        .ok(
            "p.team",
            r#"{ matter(number: "2026-0100") { tasks { taskId } notes { noteId privileged } } }"#,
        )
        .await;
    let task = ids["matter"]["tasks"][0]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    let note = ids["matter"]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|note| note["privileged"] == json!(false))
        .unwrap()["noteId"]
        .as_str()
        .unwrap()
        .to_owned();
    let absent = "0190a0a0-0000-7000-8000-000000000000";
    let client = &firm.client_id;
    // (mutation, arguments after `number`, whether a paralegal on the team may make it)
    let changes: Vec<(&str, String, bool)> = vec![
        ("updateMatter", r#"input: {title: "Mbeki v. Northgate (amended)"}"#.into(), false),
        ("setCustomField", r#"key: "court", value: "HC""#.into(), false),
        ("addTeamMember", r#"userId: "x.new", capacity: ATTORNEY"#.into(), false),
        ("addParty", format!(r#"contactId: "{client}", role: WITNESS"#), true),
        ("removeParty", format!(r#"partyId: "{absent}""#), true),
        ("recordConflictCheck", r#"query: "Northgate", outcome: CLEARED"#.into(), true),
        ("addDocument", r#"input: {documentType: "memo", title: "Memo", mediaType: "text/plain", contentBase64: "aGk="}"#.into(), true),
        ("addDocumentVersion", format!(r#"documentId: "{absent}", mediaType: "text/plain", contentBase64: "aGk=""#), true),
        ("addNote", r#"body: "Spoke to the council""#.into(), true),
        ("editNote", format!(r#"noteId: "{note}", body: "Client called twice""#), true),
        ("createTask", r#"title: "File the reply""#.into(), true),
        ("setTaskStatus", format!(r#"taskId: "{task}", status: COMPLETED"#), true),
        ("scheduleCalendarEntry", r#"input: {kind: MEETING, title: "Client meeting", startsAt: "2027-01-05T10:00:00Z"}"#.into(), true),
        ("cancelCalendarEntry", format!(r#"entryId: "{absent}""#), true),
        ("recordTime", r#"input: {workedOn: "2026-12-01", minutes: 30, description: "Call"}"#.into(), true),
        ("setMatterVisibility", "firmVisible: true".into(), false),
        ("changeMatterStatus", "status: PENDING".into(), false),
    ];
    let document = |name: &str, args: &str| {
        format!(r#"mutation {{ {name}(number: "2026-0100", {args}) {{ userErrors {{ code }} }} }}"#)
    };
    let ended = ended_credentials(&firm).await;
    let head = firm.docket.log.head().await.unwrap().position;
    for (name, args, _) in &changes {
        let query = document(name, args);
        for outsider in OUTSIDERS.into_iter().chain(["au.dit"]) {
            let response = firm.run(outsider, &query).await;
            let refused = code(&response) == json!("FORBIDDEN")
                || response["data"][*name]["userErrors"][0]["code"] == json!("MATTER_NOT_FOUND");
            assert!(refused, "{outsider} {name}: {response}");
        }
        let anonymous = firm.run_as(None, &query).await;
        assert_eq!(
            code(&anonymous),
            json!("UNAUTHENTICATED"),
            "{name}: {anonymous}"
        );
    }
    // An ended session and a revoked key prove nobody, so every change is refused as for an
    // anonymous caller.
    for (name, args, _) in &changes {
        for (what, principal) in &ended {
            let response = firm.run_as(principal.clone(), &document(name, args)).await;
            assert_eq!(code(&response), json!("UNAUTHENTICATED"), "{what} {name}");
        }
    }
    assert_eq!(
        firm.docket.log.head().await.unwrap().position,
        head,
        "nothing was appended"
    );
    for (name, args, paralegal_may) in &changes {
        let query = document(name, args);
        let paralegal = firm.run("l.team", &query).await;
        if *paralegal_may {
            assert!(
                paralegal.get("errors").is_none(),
                "the paralegal may {name}: {paralegal}"
            );
        } else {
            assert_eq!(
                code(&paralegal),
                json!("FORBIDDEN"),
                "the paralegal may not {name}"
            );
        }
        let team = firm.run("p.team", &query).await;
        assert!(
            team.get("errors").is_none(),
            "the partner may {name}: {team}"
        );
        assert_ne!(
            team["data"][*name]["userErrors"][0]["code"],
            json!("MATTER_NOT_FOUND")
        );
    }
    // Firm-wide changes, by role.
    for (user, may_open, may_write_contacts) in [
        ("p.team", true, true),
        ("l.team", false, true),
        ("ad.min", false, false),
        ("au.dit", false, false),
    ] {
        let opened = firm
            .run(user, &format!(r#"mutation {{ openMatter(input: {{matterNumber: "2026-02{}", title: "T",
                practiceArea: "employment", responsibleAttorney: "{user}"}}) {{ userErrors {{ code }} }} }}"#, user.len()))
            .await;
        assert_eq!(
            opened.get("errors").is_none(),
            may_open,
            "{user} openMatter: {opened}"
        );
        let contact = firm
            .run(user, r#"mutation { createContact(kind: PERSON, input: {displayName: "A Person"}) { userErrors { code } } }"#)
            .await;
        assert_eq!(
            contact.get("errors").is_none(),
            may_write_contacts,
            "{user} createContact: {contact}"
        );
    }
    let walled = firm
        .run("a.clientwall", &format!(r#"mutation {{ updateContact(contactId: "{client}", input: {{displayName: "T. Mbeki"}}) {{ userErrors {{ code }} }} }}"#))
        .await;
    assert_eq!(
        walled["data"]["updateContact"]["userErrors"][0]["code"],
        json!("CONTACT_NOT_FOUND"),
        "{walled}"
    );
}

/// When the access chain cannot take a record, nothing is returned and nothing is changed.
async fn without_a_durable_access_record_nothing_is_served_or_changed(backend: Backend) {
    let firm = Firm::new(backend).await;
    let statement = match backend {
        Backend::Sqlite => "ALTER TABLE events RENAME TO events_gone",
        Backend::Postgres => "ALTER TABLE docket_access.events RENAME TO events_gone",
    };
    match backend {
        Backend::Sqlite => {
            use sqlx::Connection;
            let path = firm._log.dir.path().join("access").join("docket.db");
            let mut connection =
                sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .unwrap();
            sqlx::raw_sql(statement)
                .execute(&mut connection)
                .await
                .unwrap();
        }
        Backend::Postgres => firm._log.execute(&[statement]).await,
    }
    let head = firm.docket.log.head().await.unwrap().position;
    let change = firm
        .run_unflushed(
            "p.team",
            r#"mutation { addNote(number: "2026-0100", body: "x") { userErrors { code } } }"#,
        )
        .await;
    assert_eq!(
        code(&change.0),
        json!("ACCESS_RECORD_UNAVAILABLE"),
        "{}",
        change.0
    );
    assert_eq!(
        firm.docket.log.head().await.unwrap().position,
        head,
        "the change was not made"
    );
    // A read: its record cannot be made durable, so the handler sends nothing (http.rs).
    let read = firm
        .run_unflushed("p.team", r#"{ matter(number: "2026-0100") { title } }"#)
        .await;
    assert!(
        read.1.flush("test").await.is_err(),
        "the read's record is not durable"
    );
}

/// A break-glass opening gives read-only access for a while, never through a wall, and every
/// opening (expired ones too) is listed in the access review.
async fn break_glass_is_read_only_and_listed_in_the_review(backend: Backend) {
    let firm = Firm::new(backend).await;
    let opened = firm
        .run(
            "a.outside",
            r#"mutation { breakGlass(matterNumber: "2026-0100", reason: "Hearing moved to this morning") { userErrors { code } } }"#,
        )
        .await;
    assert!(opened.get("errors").is_none(), "{opened}");
    let seen = firm
        .ok(
            "a.outside",
            r#"{ matter(number: "2026-0100") { title notes { privileged } } }"#,
        )
        .await;
    assert_eq!(seen["matter"]["title"], json!("Mbeki v. Northgate Council"));
    assert_eq!(
        seen["matter"]["notes"],
        json!([{"privileged": false}]),
        "no privileged notes"
    );
    let write = firm
        .run(
            "a.outside",
            r#"mutation { addNote(number: "2026-0100", body: "x") { userErrors { code } } }"#,
        )
        .await;
    assert_eq!(code(&write), json!("FORBIDDEN"), "read-only");
    // An attorney walled from the matter's client cannot break the wall.
    let walled = firm
        .run(
            "a.clientwall",
            r#"mutation { breakGlass(matterNumber: "2026-0100", reason: "Hearing moved to this morning") { userErrors { code } } }"#,
        )
        .await;
    assert_eq!(
        walled["data"]["breakGlass"]["userErrors"][0]["code"],
        json!("MATTER_NOT_FOUND"),
        "{walled}"
    );
    let review = firm
        .ok(
            "au.dit",
            r#"{ accessReview { user { userId } breakGlass { matterNumber reason } } }"#,
        )
        .await;
    let outside = review["accessReview"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["user"]["userId"] == json!("a.outside"))
        .unwrap();
    assert_eq!(
        outside["breakGlass"],
        json!([{"matterNumber": MATTER, "reason": "Hearing moved to this morning"}])
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
    every_matter_change_is_decided_for_every_kind_of_caller,
    without_a_durable_access_record_nothing_is_served_or_changed,
    break_glass_is_read_only_and_listed_in_the_review,
);

/// The SQL condition that filters lists and the policy's decision per matter agree, on many
/// generated firms: roles, teams, firm-visible matters, practice areas, the partner policy,
/// walls by matter, by client and by group, and break-glass openings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_filter_agrees_with_the_policy_on_generated_firms() {
    use docket::access::policy::{MatterFacts, matter_access};
    use docket::access::scope::matter_scope;
    use docket::domain::identity::*;
    use docket::domain::{DomainEvent, RecordedEvent};
    use docket::identity::directory::Directory;
    use docket::read::Sql;

    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    for ddl in [
        "CREATE TABLE rm_matters (number TEXT PRIMARY KEY, practice_area TEXT NOT NULL, firm_visible BIGINT NOT NULL)",
        "CREATE TABLE rm_matter_team (matter_number TEXT NOT NULL, user_id TEXT NOT NULL, capacity TEXT NOT NULL)",
        "CREATE TABLE rm_parties (matter_number TEXT NOT NULL, contact_id TEXT NOT NULL, role TEXT NOT NULL)",
    ] {
        sqlx::query(ddl).execute(&pool).await.unwrap();
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let users = ["u0", "u1", "u2", "u3", "u4", "u5"];
    let clients = ["c0", "c1", "c2"];
    let areas = ["employment", "property"];
    let now = docket::log::time::now_timestamp();
    let mut compared = 0;
    let (mut seen_visible, mut seen_hidden) = (0, 0);
    for case in 0..60 {
        for table in ["rm_matters", "rm_matter_team", "rm_parties"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&pool)
                .await
                .unwrap();
        }
        let mut facts = Vec::new();
        for m in 0..8 {
            let mut matter = MatterFacts {
                number: format!("M-{m}"),
                practice_area: areas[next(2) as usize].to_owned(),
                firm_visible: next(4) == 0,
                ..MatterFacts::default()
            };
            for user in users {
                if next(3) == 0 {
                    matter.team.insert(user.to_owned(), "attorney".to_owned());
                }
            }
            for client in clients {
                if next(3) == 0 {
                    matter.clients.insert(client.to_owned());
                }
            }
            sqlx::query("INSERT INTO rm_matters VALUES ($1, $2, $3)")
                .bind(&matter.number)
                .bind(&matter.practice_area)
                .bind(i64::from(matter.firm_visible))
                .execute(&pool)
                .await
                .unwrap();
            for user in matter.team.keys() {
                sqlx::query("INSERT INTO rm_matter_team VALUES ($1, $2, 'attorney')")
                    .bind(&matter.number)
                    .bind(user)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            for client in &matter.clients {
                sqlx::query("INSERT INTO rm_parties VALUES ($1, $2, 'client')")
                    .bind(&matter.number)
                    .bind(client)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            facts.push(matter);
        }
        // A directory: users with random roles, a group, walls, break-glass, a policy.
        let mut directory = Directory::default();
        let mut version = 0;
        let mut apply = |directory: &mut Directory, event: DomainEvent| {
            version += 1;
            directory.apply(&RecordedEvent {
                position: version,
                stream: DIRECTORY_STREAM.to_owned(),
                stream_version: version,
                actor: "system".to_owned(),
                occurred_at: now.clone(),
                recorded_at: now.clone(),
                event,
                event_id: format!("event-{version}"),
                privacy: Default::default(),
            });
        };
        for user in users {
            let role = Role::ALL[next(6) as usize];
            apply(
                &mut directory,
                DomainEvent::UserAdded(UserAdded {
                    user_id: user.to_owned(),
                    role,
                    practice_areas: vec![areas[next(2) as usize].to_owned()],
                    private: UserDetails {
                        email: format!("{user}@x.example"),
                        name: user.to_owned(),
                    },
                }),
            );
            if next(5) != 0 {
                apply(
                    &mut directory,
                    DomainEvent::UserEnrolled(UserRef {
                        user_id: user.to_owned(),
                    }),
                );
            }
        }
        apply(
            &mut directory,
            DomainEvent::GroupMembersSet(GroupMembersSet {
                group_id: "g".into(),
                name: "g".into(),
                members: vec![users[next(6) as usize].to_owned()],
            }),
        );
        for w in 0..next(3) {
            apply(
                &mut directory,
                DomainEvent::WallErected(WallErected {
                    wall_id: format!("w{w}"),
                    name: "w".into(),
                    reason: "r".into(),
                    screened_users: vec![users[next(6) as usize].to_owned()],
                    screened_groups: if next(2) == 0 {
                        vec!["g".into()]
                    } else {
                        vec![]
                    },
                    matters: vec![format!("M-{}", next(8))],
                    clients: if next(2) == 0 {
                        vec![clients[next(3) as usize].to_owned()]
                    } else {
                        vec![]
                    },
                }),
            );
        }
        apply(
            &mut directory,
            DomainEvent::BreakGlassOpened(BreakGlassOpened {
                user_id: users[next(6) as usize].to_owned(),
                matter_number: format!("M-{}", next(8)),
                reason: "urgent hearing today".into(),
                expires_at: "2999-01-01T00:00:00.000000Z".into(),
            }),
        );
        let partner_access = [
            PartnerAccess::Team,
            PartnerAccess::PracticeAreas,
            PartnerAccess::Firm,
        ][next(3) as usize];
        apply(
            &mut directory,
            DomainEvent::FirmPolicySet(FirmPolicySet {
                partner_access,
                break_glass_minutes: 60,
            }),
        );

        for user in users {
            let principal = Principal::user(user).unwrap();
            let scope = matter_scope(&directory, &principal, &now);
            let mut sql = Sql::new("SELECT number FROM rm_matters WHERE 1 = 1");
            scope.restrict(&mut sql, "number");
            let listed: std::collections::BTreeSet<String> = sql
                .fetch_all::<(String,)>(&pool)
                .await
                .unwrap()
                .into_iter()
                .map(|(number,)| number)
                .collect();
            let decided: std::collections::BTreeSet<String> = facts
                .iter()
                .filter(|facts| matter_access(&directory, &principal, facts, &now).is_visible())
                .map(|facts| facts.number.clone())
                .collect();
            assert_eq!(listed, decided, "case {case}, user {user}: {directory:?}");
            compared += 1;
            seen_visible += listed.len();
            seen_hidden += facts.len() - listed.len();
        }
    }
    assert_eq!(compared, 60 * 6);
    assert!(
        seen_visible > 100 && seen_hidden > 100,
        "{seen_visible} visible, {seen_hidden} hidden"
    );
}

/// An answer of the policy holds until the time `matter_access_changes_at` names (the directory
/// and the facts staying as they are): subscriptions keep it that long without deciding again,
/// so the time must be the first at which the answer can change.
#[test]
fn the_policy_names_the_first_time_its_answer_can_change() {
    use docket::access::policy::{MatterFacts, matter_access, matter_access_changes_at};
    use docket::identity::directory::{ApiClient, BreakGlass, Directory, User, UserStatus};
    use docket::identity::scopes::ClientScopes;

    let at = |minutes: i64| {
        let base = chrono::DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        docket::log::time::format_timestamp(base + chrono::Duration::seconds(minutes * 60))
    };
    let mut directory = Directory::default();
    for (user_id, role) in [("u.glass", Role::Attorney), ("u.team", Role::Attorney)] {
        directory.users.insert(
            user_id.to_owned(),
            User {
                user_id: user_id.to_owned(),
                email: format!("{user_id}@firm.example"),
                name: user_id.to_owned(),
                role,
                practice_areas: Vec::new(),
                status: UserStatus::Active,
                enrolled: true,
                added_at: at(-600),
                last_login_at: None,
            },
        );
    }
    let glass = |user_id: &str, matter: &str, expires: i64| BreakGlass {
        user_id: user_id.to_owned(),
        matter_number: matter.to_owned(),
        reason: "hearing moved".to_owned(),
        opened_at: at(expires - 60),
        expires_at: at(expires),
        position: 1,
    };
    directory.break_glass = vec![
        glass("u.glass", "M-1", 30),
        glass("u.glass", "M-1", 10),
        glass("u.glass", "M-1", -5),
        glass("u.glass", "M-2", 3),
        glass("u.team", "M-1", 1),
    ];
    directory.api_clients.insert(
        "billing".to_owned(),
        ApiClient {
            client_id: "billing".to_owned(),
            name: "Billing".to_owned(),
            registered_at: at(-600),
            keys: Default::default(),
            scopes: ClientScopes {
                expires_at: Some(at(20)),
                ..ClientScopes::default()
            },
        },
    );
    let mut facts = MatterFacts {
        number: "M-1".to_owned(),
        practice_area: "litigation".to_owned(),
        ..MatterFacts::default()
    };
    facts
        .team
        .insert("u.team".to_owned(), "attorney".to_owned());
    facts
        .team
        .insert("billing".to_owned(), "integration".to_owned());

    let glass_user = Principal::user("u.glass").unwrap();
    let team_user = Principal::user("u.team").unwrap();
    let client = Principal::api_client("billing").unwrap();
    // The nearest window of this user on this matter that is still open; none for other matters
    // or users, nor for windows already closed.
    assert_eq!(
        matter_access_changes_at(&directory, &glass_user, &facts, &at(0)),
        Some(at(10))
    );
    assert_eq!(
        matter_access_changes_at(&directory, &glass_user, &facts, &at(10)),
        Some(at(30))
    );
    assert_eq!(
        matter_access_changes_at(&directory, &glass_user, &facts, &at(30)),
        None
    );
    assert_eq!(
        matter_access_changes_at(&directory, &client, &facts, &at(0)),
        Some(at(20))
    );
    assert_eq!(
        matter_access_changes_at(&directory, &client, &facts, &at(20)),
        None
    );

    // At every minute from -10 to 40, the answer is the one taken at any earlier minute whose
    // named time has not come yet.
    for who in [&glass_user, &team_user, &client] {
        for taken in -10..=40 {
            let answer = matter_access(&directory, who, &facts, &at(taken));
            let until = matter_access_changes_at(&directory, who, &facts, &at(taken));
            for later in taken..=40 {
                if until.as_ref().is_some_and(|until| at(later) >= *until) {
                    break;
                }
                assert_eq!(
                    matter_access(&directory, who, &facts, &at(later)),
                    answer,
                    "{who:?} taken at {taken}, asked at {later}"
                );
            }
        }
    }
    // And the answers do change at those times.
    assert!(matter_access(&directory, &glass_user, &facts, &at(29)).is_visible());
    assert!(!matter_access(&directory, &glass_user, &facts, &at(30)).is_visible());
    assert!(matter_access(&directory, &client, &facts, &at(19)).is_visible());
    assert!(!matter_access(&directory, &client, &facts, &at(20)).is_visible());
}
