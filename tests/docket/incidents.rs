//! Incident response on both backends: freezing a matter (every change refused with
//! MATTER_FROZEN, reads unaffected, no erasure, unfreezing allows again), withdrawing every
//! credential of one principal or of everyone, rotating the signing key and the KEK through
//! GraphQL, the admin-only and step-up rules of those mutations, and `docket incident`.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Request, Variables};
use base64::Engine;
use docket::access::Principal;
use docket::api::graphql::caller::Caller;
use docket::api::graphql::{self, with_loaders};
use docket::app::Docket;
use docket::domain::DomainError;
use docket::domain::commands::{AddNote, MatterCommand, OpenMatter};
use docket::domain::identity::Role;
use docket::identity::incident::Whose;
use docket::log::Actor;
use docket::service::{CommandContext, ServiceError};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, SignedIn, TestLog, sign_in};

on_both_backends!(
    a_frozen_matter_refuses_every_change_until_unfrozen,
    freezing_is_for_admins_after_step_up,
    a_frozen_matter_is_not_erased,
    revoking_a_principal_ends_its_sessions_keys_and_enrolments_at_once,
    a_lockdown_revokes_everyone_the_admin_included,
    rotation_mutations_change_the_keys_and_the_log_still_verifies,
    the_incident_commands_work_from_the_command_line,
);

const MATTER: &str = "2026-0701";

struct Api {
    test: TestLog,
    docket: Docket,
    schema: graphql::DocketSchema,
}

impl Api {
    async fn new(backend: Backend) -> Self {
        let test = TestLog::new(backend).await;
        let docket = Docket::open_with(&test.options(), Duration::from_secs(5))
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
        Api {
            test,
            docket,
            schema,
        }
    }

    async fn run(&self, principal: &Principal, query: &str, variables: Value) -> Value {
        let caller = Arc::new(Caller::new(
            Some(principal.clone()),
            self.docket.identity.directory(),
            uuid::Uuid::now_v7().to_string(),
            Some("127.0.0.1".to_owned()),
            self.docket.access.clone(),
        ));
        let request = Request::new(query).variables(Variables::from_json(variables));
        let request = with_loaders(request, self.docket.projector.db()).data(caller.clone());
        let response = self.schema.execute(request).await;
        caller.flush("test").await.unwrap();
        serde_json::to_value(&response).unwrap()
    }

    /// The data of a request that must not fail.
    async fn ok(&self, principal: &Principal, query: &str, variables: Value) -> Value {
        let response = self.run(principal, query, variables).await;
        assert!(response.get("errors").is_none(), "errors: {response}");
        response["data"].clone()
    }

    /// The code of the first GraphQL error of a request that must fail.
    async fn refused(&self, principal: &Principal, query: &str) -> String {
        let response = self.run(principal, query, json!({})).await;
        response["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error: {response}"))
            .to_owned()
    }

    /// An attorney with a matter of their own, and an admin (both freshly stepped up).
    async fn firm(&self) -> (SignedIn, SignedIn) {
        let identity = &self.docket.identity;
        let attorney = sign_in(identity, "a.okafor", Role::Attorney).await;
        let admin = sign_in(identity, "ad.min", Role::Admin).await;
        let context = CommandContext::new(Actor::parse("user:a.okafor").unwrap());
        let opened = self
            .docket
            .service
            .open_matter(
                &context,
                &OpenMatter {
                    matter_number: MATTER.to_owned(),
                    title: "Okafor v. Brightline".to_owned(),
                    practice_area: "employment".to_owned(),
                    responsible_attorney: "a.okafor".to_owned(),
                    ..OpenMatter::default()
                },
            )
            .await
            .unwrap();
        assert!(opened.projected);
        (attorney, admin)
    }

    async fn matter_version(&self) -> u64 {
        self.docket
            .service
            .matter(MATTER)
            .await
            .unwrap()
            .unwrap()
            .version
    }

    async fn directory_events(&self, event_type: &str) -> Vec<Value> {
        self.docket
            .log
            .store()
            .read_stream_page("directory", 1, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|event| event.event_type == event_type)
            .map(|event| {
                let mut payload: Value = serde_json::from_str(&event.payload).unwrap();
                payload["actor"] = json!(event.actor);
                payload
            })
            .collect()
    }
}

const ADD_NOTE: &str = r#"mutation($n: String!) { addNote(number: $n, body: "Call the client") {
    matter { version } userErrors { code } } }"#;

const RECORD_TIME: &str = r#"mutation($n: String!) { recordTime(number: $n, input: {
    workedOn: "2026-11-02", minutes: 30, description: "Drafting" }) { userErrors { code } } }"#;

const ADD_DOCUMENT: &str = r#"mutation($n: String!, $c: String!) { addDocument(number: $n,
    input: { documentType: "letter", title: "Letter", mediaType: "text/plain",
             contentBase64: $c }) { userErrors { code } } }"#;

const FREEZE: &str = r#"mutation($n: String!, $r: String!) { freezeMatter(number: $n, reason: $r) {
    number frozen positions { first last } version userErrors { code } } }"#;

const UNFREEZE: &str = r#"mutation($n: String!, $r: String!) { unfreezeMatter(number: $n,
    reason: $r) { number frozen userErrors { code } } }"#;

const READ: &str = r#"query($n: String!) { matter(number: $n) { frozen title
    notes { body } timeEntries { minutes } } }"#;

fn content() -> String {
    base64::engine::general_purpose::STANDARD.encode(b"Dear Sirs")
}

/// The codes of a payload's user errors.
fn codes(payload: &Value) -> Vec<String> {
    payload["userErrors"]
        .as_array()
        .unwrap_or_else(|| panic!("no userErrors in {payload}"))
        .iter()
        .map(|error| error["code"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_frozen_matter_refuses_every_change_until_unfrozen(backend: Backend) {
    let api = Api::new(backend).await;
    let (attorney, admin) = api.firm().await;
    let lawyer = &attorney.principal;
    let vars = json!({"n": MATTER, "c": content()});
    let added = api.ok(lawyer, ADD_NOTE, vars.clone()).await;
    assert_eq!(codes(&added["addNote"]), Vec::<String>::new());

    let blank = api
        .ok(&admin.principal, FREEZE, json!({"n": MATTER, "r": "  "}))
        .await;
    assert_eq!(codes(&blank["freezeMatter"]), vec!["INVALID_INPUT"]);
    let frozen = api
        .ok(
            &admin.principal,
            FREEZE,
            json!({"n": MATTER, "r": "INC-2026-7: suspected exfiltration"}),
        )
        .await;
    let frozen = &frozen["freezeMatter"];
    assert_eq!(codes(frozen), Vec::<String>::new());
    assert_eq!(frozen["number"], json!(MATTER));
    assert_eq!(frozen["frozen"], json!(true));
    let version = api.matter_version().await;
    assert_eq!(frozen["version"], json!(version));

    // Reads go on: the matter, its notes, and that it is frozen.
    let read = api.ok(lawyer, READ, json!({"n": MATTER})).await;
    assert_eq!(read["matter"]["frozen"], json!(true));
    assert_eq!(read["matter"]["notes"][0]["body"], json!("Call the client"));

    // Every change is refused with MATTER_FROZEN, and nothing is appended.
    for (query, field) in [
        (ADD_NOTE, "addNote"),
        (RECORD_TIME, "recordTime"),
        (ADD_DOCUMENT, "addDocument"),
    ] {
        let refused = api.ok(lawyer, query, vars.clone()).await;
        assert_eq!(codes(&refused[field]), vec!["MATTER_FROZEN"], "{field}");
    }
    // An API client's write, or any other actor's, goes through the same decide step.
    let client = CommandContext::new(Actor::parse("api_client:billing").unwrap());
    let note = MatterCommand::AddNote(AddNote {
        body: "from a client".to_owned(),
        subject: None,
        privileged: false,
    });
    let refused = api
        .docket
        .service
        .change_matter(&client, MATTER, &note)
        .await;
    assert!(
        matches!(
            refused,
            Err(ServiceError::Domain(DomainError::MatterFrozen))
        ),
        "{refused:?}"
    );
    assert_eq!(api.matter_version().await, version);

    // Freezing twice is refused; so is unfreezing a matter that is not frozen (below).
    let again = api
        .ok(&admin.principal, FREEZE, json!({"n": MATTER, "r": "again"}))
        .await;
    assert_eq!(codes(&again["freezeMatter"]), vec!["MATTER_FROZEN"]);
    let unknown = api
        .ok(
            &admin.principal,
            FREEZE,
            json!({"n": "2026-0999", "r": "x"}),
        )
        .await;
    assert_eq!(codes(&unknown["freezeMatter"]), vec!["MATTER_NOT_FOUND"]);

    let thawed = api
        .ok(
            &admin.principal,
            UNFREEZE,
            json!({"n": MATTER, "r": "INC-2026-7 closed"}),
        )
        .await;
    assert_eq!(codes(&thawed["unfreezeMatter"]), Vec::<String>::new());
    assert_eq!(thawed["unfreezeMatter"]["frozen"], json!(false));
    for (query, field) in [
        (ADD_NOTE, "addNote"),
        (RECORD_TIME, "recordTime"),
        (ADD_DOCUMENT, "addDocument"),
    ] {
        let allowed = api.ok(lawyer, query, vars.clone()).await;
        assert_eq!(codes(&allowed[field]), Vec::<String>::new(), "{field}");
    }
    let read = api.ok(lawyer, READ, json!({"n": MATTER})).await;
    assert_eq!(read["matter"]["frozen"], json!(false));
    assert_eq!(read["matter"]["timeEntries"][0]["minutes"], json!(30));
    let twice = api
        .ok(
            &admin.principal,
            UNFREEZE,
            json!({"n": MATTER, "r": "again"}),
        )
        .await;
    assert_eq!(codes(&twice["unfreezeMatter"]), vec!["MATTER_NOT_FROZEN"]);

    // Both acts are events of the matter's stream, by the admin, with their reasons.
    let events: Vec<(String, String, Value)> = api
        .docket
        .log
        .store()
        .read_stream_page(&format!("matter:{MATTER}"), 1, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|event| event.event_type.ends_with("frozen"))
        .map(|event| {
            let payload = serde_json::from_str(&event.payload).unwrap();
            (event.event_type, event.actor, payload)
        })
        .collect();
    assert_eq!(
        events,
        vec![
            (
                "matter.frozen".to_owned(),
                "user:ad.min".to_owned(),
                json!({"reason": "INC-2026-7: suspected exfiltration"})
            ),
            (
                "matter.unfrozen".to_owned(),
                "user:ad.min".to_owned(),
                json!({"reason": "INC-2026-7 closed"})
            ),
        ]
    );
    // And the freeze left an access record naming the matter.
    let records = api
        .docket
        .access
        .log()
        .store()
        .read_stream_page("access", 1, 10_000)
        .await
        .unwrap();
    let text = format!("{records:?}");
    assert!(
        text.contains("mutation freezeMatter"),
        "access record of the freeze"
    );
    assert!(text.contains("mutation unfreezeMatter"));
}

async fn freezing_is_for_admins_after_step_up(backend: Backend) {
    let api = Api::new(backend).await;
    let (attorney, admin) = api.firm().await;
    let auditor = sign_in(&api.docket.identity, "a.udit", Role::Auditor).await;
    let mut stale = admin.principal.clone();
    stale.step_up_at = None;
    let fields = [
        format!(r#"mutation {{ freezeMatter(number: "{MATTER}", reason: "x") {{ frozen }} }}"#),
        format!(r#"mutation {{ unfreezeMatter(number: "{MATTER}", reason: "x") {{ frozen }} }}"#),
        r#"mutation { revokeCredentials(principal: "user:a.okafor", reason: "x") { sessions } }"#
            .to_owned(),
        r#"mutation { lockdown(reason: "x") { sessions } }"#.to_owned(),
        "mutation { rotateSigningKey { keyId } }".to_owned(),
        "mutation { rotateKek { version } }".to_owned(),
    ];
    let version = api.matter_version().await;
    let head = api.docket.log.head().await.unwrap().position;
    for query in &fields {
        for who in [&attorney.principal, &auditor.principal] {
            assert_eq!(api.refused(who, query).await, "FORBIDDEN", "{query}");
        }
        assert_eq!(
            api.refused(&stale, query).await,
            "STEP_UP_REQUIRED",
            "{query}"
        );
    }
    // Nothing changed: no event, the sessions still work.
    assert_eq!(api.docket.log.head().await.unwrap().position, head);
    assert_eq!(api.matter_version().await, version);
    assert!(
        api.docket
            .identity
            .authenticate(&attorney.token)
            .await
            .unwrap()
            .is_some()
    );
}

async fn a_frozen_matter_is_not_erased(backend: Backend) {
    let api = Api::new(backend).await;
    let (attorney, admin) = api.firm().await;
    let service = &api.docket.service;
    let lawyer = CommandContext::new(attorney.principal.actor.clone());
    let close = MatterCommand::ChangeStatus(docket::domain::commands::ChangeMatterStatus {
        to: docket::domain::events::MatterStatus::Closed,
        effective_on: Some("2020-01-31".to_owned()),
        reason: None,
        force: false,
    });
    service
        .change_matter(&lawyer, MATTER, &close)
        .await
        .unwrap();
    let system = CommandContext::new(Actor::system());
    service
        .set_retention_policy(&system, "employment", Some(1))
        .await
        .unwrap();
    // A closed matter can be frozen too: the freeze is about evidence, not the lifecycle.
    let frozen = api
        .ok(&admin.principal, FREEZE, json!({"n": MATTER, "r": "INC-9"}))
        .await;
    assert_eq!(codes(&frozen["freezeMatter"]), Vec::<String>::new());

    let today = chrono::NaiveDate::from_ymd_opt(2030, 1, 1).unwrap();
    let run = service.run_retention(today).await.unwrap();
    assert_eq!(run.erased, Vec::<String>::new());
    assert_eq!(run.frozen, vec![format!("matter:{MATTER}")]);
    let requested = service
        .request_erasure(&system, &format!("matter:{MATTER}"), "DSR-1")
        .await;
    assert!(
        matches!(
            requested,
            Err(ServiceError::Domain(DomainError::MatterFrozen))
        ),
        "{requested:?}"
    );
    let matter = service.matter(MATTER).await.unwrap().unwrap();
    assert!(!matter.erased && matter.frozen);

    // Unfrozen, retention erases it as before.
    service
        .unfreeze_matter(&system, MATTER, "INC-9 closed")
        .await
        .unwrap();
    let run = service.run_retention(today).await.unwrap();
    assert_eq!(run.erased, vec![format!("matter:{MATTER}")]);
}

async fn revoking_a_principal_ends_its_sessions_keys_and_enrolments_at_once(backend: Backend) {
    let api = Api::new(backend).await;
    let (attorney, admin) = api.firm().await;
    let identity = &api.docket.identity;
    let system = Actor::system();
    // A second session of the attorney, a pending enrolment of another user, and two keys of
    // an API client.
    let second = identity
        .open_session("a.okafor", None, chrono::Utc::now())
        .await
        .unwrap();
    let pending = identity
        .add_user(
            &system,
            None,
            "n.ew@firm.example",
            "New",
            Role::Staff,
            &[],
            Some("n.ew"),
        )
        .await
        .unwrap();
    identity
        .register_api_client(&system, None, "billing", "Billing")
        .await
        .unwrap();
    let key = identity
        .issue_api_key(&system, None, "billing", None)
        .await
        .unwrap();
    let spare = identity
        .issue_api_key(&system, None, "billing", None)
        .await
        .unwrap();
    let key_principal = identity.authenticate(&key.text).await.unwrap().unwrap();
    assert!(identity.still_valid(&attorney.principal).await.unwrap());
    assert!(identity.still_valid(&key_principal).await.unwrap());

    const REVOKE: &str = r#"mutation($p: String!) { revokeCredentials(principal: $p,
        reason: "INC-3: phished") { principal sessions apiKeys enrolments userErrors { code } } }"#;
    let user = api
        .ok(&admin.principal, REVOKE, json!({"p": "user:a.okafor"}))
        .await;
    assert_eq!(
        user["revokeCredentials"],
        json!({"principal": "user:a.okafor", "sessions": 2, "apiKeys": [], "enrolments": 0,
               "userErrors": []})
    );
    for token in [attorney.token.as_str(), second.token.as_str()] {
        assert!(identity.authenticate(token).await.unwrap().is_none());
    }
    // An open subscription re-checks this and ends.
    assert!(!identity.still_valid(&attorney.principal).await.unwrap());
    // Everyone else is untouched.
    assert!(identity.authenticate(&admin.token).await.unwrap().is_some());
    assert!(identity.authenticate(&key.text).await.unwrap().is_some());

    let client = api
        .ok(&admin.principal, REVOKE, json!({"p": "api_client:billing"}))
        .await;
    let mut keys = vec![key.key_id.clone(), spare.key_id.clone()];
    keys.sort();
    assert_eq!(client["revokeCredentials"]["apiKeys"], json!(keys));
    for text in [key.text.as_str(), spare.text.as_str()] {
        assert!(identity.authenticate(text).await.unwrap().is_none());
    }
    assert!(!identity.still_valid(&key_principal).await.unwrap());

    // A user's pending enrolment token is withdrawn with their credentials.
    let enrolment = api
        .ok(&admin.principal, REVOKE, json!({"p": "user:n.ew"}))
        .await;
    assert_eq!(enrolment["revokeCredentials"]["enrolments"], json!(1));
    assert!(
        identity
            .begin_enrolment(&pending.enrolment_token)
            .await
            .is_err()
    );

    // Unknown and malformed principals, and `*` (that is `lockdown`), are user errors.
    for (principal, code) in [
        ("user:nobody", "NOT_FOUND"),
        ("api_client:nobody", "NOT_FOUND"),
        ("nobody", "INVALID_INPUT"),
        ("*", "INVALID_INPUT"),
        ("system", "INVALID_INPUT"),
    ] {
        let refused = api
            .ok(&admin.principal, REVOKE, json!({"p": principal}))
            .await;
        assert_eq!(
            codes(&refused["revokeCredentials"]),
            vec![code],
            "{principal}"
        );
    }

    // Each revocation is one event, by the admin, with the reason and what it withdrew.
    let events = api.directory_events("auth.credentials_revoked").await;
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[0],
        json!({"principal": "user:a.okafor", "reason": "INC-3: phished", "sessions": 2,
               "api_keys": [], "enrolments": 0, "actor": "user:ad.min"})
    );
    assert_eq!(events[1]["api_keys"], json!(keys));
}

async fn a_lockdown_revokes_everyone_the_admin_included(backend: Backend) {
    let api = Api::new(backend).await;
    let (attorney, admin) = api.firm().await;
    let identity = &api.docket.identity;
    let system = Actor::system();
    let other = sign_in(identity, "o.ther", Role::Paralegal).await;
    identity
        .register_api_client(&system, None, "sync", "Sync")
        .await
        .unwrap();
    let key = identity
        .issue_api_key(&system, None, "sync", None)
        .await
        .unwrap();
    let pending = identity
        .add_user(
            &system,
            None,
            "p.end@firm.example",
            "P",
            Role::Staff,
            &[],
            Some("p.end"),
        )
        .await
        .unwrap();

    let locked = api
        .ok(
            &admin.principal,
            r#"mutation { lockdown(reason: "INC-4: key leak") { principal sessions apiKeys
                enrolments userErrors { code } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        locked["lockdown"],
        json!({"principal": "*", "sessions": 3, "apiKeys": [key.key_id], "enrolments": 1,
               "userErrors": []})
    );
    for secret in [&attorney.token, &other.token, &admin.token, &*key.text] {
        assert!(identity.authenticate(secret).await.unwrap().is_none());
    }
    for principal in [&attorney.principal, &admin.principal] {
        assert!(!identity.still_valid(principal).await.unwrap());
    }
    assert!(
        identity
            .begin_enrolment(&pending.enrolment_token)
            .await
            .is_err()
    );
    let events = api.directory_events("auth.credentials_revoked").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["principal"], json!("*"));
    // After a lockdown people sign in again: a new session works.
    let again = identity
        .open_session("a.okafor", None, chrono::Utc::now())
        .await
        .unwrap();
    assert!(identity.authenticate(&again.token).await.unwrap().is_some());
    // Revoking directly through the identity service is the same operation.
    let revoked = identity
        .revoke_credentials(&system, None, &Whose::Everyone, "INC-4 again")
        .await
        .unwrap();
    assert_eq!(revoked.sessions, 1);
}

async fn rotation_mutations_change_the_keys_and_the_log_still_verifies(backend: Backend) {
    let api = Api::new(backend).await;
    let (attorney, admin) = api.firm().await;
    let before = api.docket.log.head().await.unwrap().key_id.unwrap();
    let rotated = api
        .ok(
            &admin.principal,
            "mutation { rotateSigningKey { previousKeyId keyId position } }",
            json!({}),
        )
        .await;
    let rotated = &rotated["rotateSigningKey"];
    assert_eq!(rotated["previousKeyId"], json!(before));
    let key_id = rotated["keyId"].as_str().unwrap().to_owned();
    assert_ne!(key_id, before);

    // Later events are signed by the new key.
    let added = api
        .ok(&attorney.principal, ADD_NOTE, json!({"n": MATTER}))
        .await;
    assert_eq!(codes(&added["addNote"]), Vec::<String>::new());
    let events = api
        .docket
        .log
        .store()
        .read_stream_page(&format!("matter:{MATTER}"), 1, 1000)
        .await
        .unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.event_type, "matter.note_added");
    assert_eq!(last.key_id, key_id);
    assert!(last.position > rotated["position"].as_u64().unwrap());

    let kek = api
        .ok(
            &admin.principal,
            "mutation { rotateKek { version rewrapped remaining } }",
            json!({}),
        )
        .await;
    assert_eq!(kek["rotateKek"]["version"], json!(2));
    assert!(
        kek["rotateKek"]["rewrapped"].as_u64().unwrap() >= 1,
        "{kek}"
    );
    assert_eq!(kek["rotateKek"]["remaining"], json!(0));
    let usage = api.docket.vault.kek_usage().await.unwrap();
    assert!(usage.iter().all(|(version, _)| *version == 2), "{usage:?}");
    // Client data is still readable after the rewrap.
    let read = api
        .ok(&attorney.principal, READ, json!({"n": MATTER}))
        .await;
    assert_eq!(read["matter"]["notes"][0]["body"], json!("Call the client"));

    let summary = api.test.verify().await.unwrap();
    assert_eq!(summary.current_key_id.as_deref(), Some(key_id.as_str()));
    assert_eq!(summary.key_rotations, 1);
}

async fn the_incident_commands_work_from_the_command_line(backend: Backend) {
    let test = TestLog::new(backend).await;
    {
        let docket = Docket::open_with(&test.options(), Duration::ZERO)
            .await
            .unwrap();
        sign_in(&docket.identity, "a.okafor", Role::Attorney).await;
        let context = CommandContext::new(Actor::parse("user:a.okafor").unwrap());
        docket
            .service
            .open_matter(
                &context,
                &OpenMatter {
                    matter_number: MATTER.to_owned(),
                    title: "Okafor v. Brightline".to_owned(),
                    practice_area: "employment".to_owned(),
                    responsible_attorney: "a.okafor".to_owned(),
                    ..OpenMatter::default()
                },
            )
            .await
            .unwrap();
    }
    let run = |args: &[&str]| {
        let output = test.docket_command().args(args).output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["incident", "freeze", MATTER, "--reason", "INC-5"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("matter {MATTER} frozen")), "{out}");
    let (code, _, err) = run(&["incident", "freeze", MATTER, "--reason", "INC-5"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("frozen"), "{err}");
    {
        let docket = Docket::open_with(&test.options(), Duration::ZERO)
            .await
            .unwrap();
        assert!(docket.service.matter(MATTER).await.unwrap().unwrap().frozen);
        let note = MatterCommand::AddNote(AddNote {
            body: "x".to_owned(),
            subject: None,
            privileged: false,
        });
        let context = CommandContext::new(Actor::parse("user:a.okafor").unwrap());
        let refused = docket.service.change_matter(&context, MATTER, &note).await;
        assert!(matches!(
            refused,
            Err(ServiceError::Domain(DomainError::MatterFrozen))
        ));
    }
    let (code, out, err) = run(&["incident", "unfreeze", MATTER, "--reason", "INC-5 over"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("unfrozen"), "{out}");

    let (code, out, err) = run(&[
        "incident",
        "revoke",
        "--principal",
        "a.okafor",
        "--reason",
        "INC-6",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("credentials of user:a.okafor revoked: 1 sessions ended"),
        "{out}"
    );
    let (code, _, err) = run(&[
        "incident",
        "revoke",
        "--principal",
        "user:nobody",
        "--reason",
        "x",
    ]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("no such user") || err.contains("user"),
        "{err}"
    );
    // Key rotations from the command line are the operator's recorded acts too.
    for args in [&["keys", "rotate"][..], &["keys", "rotate-kek"][..]] {
        let (code, _, err) = run(args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
    }
    let (code, out, err) = run(&["incident", "lockdown", "--reason", "INC-6"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("credentials of * revoked"), "{out}");

    let docket = Docket::open_with(&test.options(), Duration::ZERO)
        .await
        .unwrap();
    let matter = docket.service.matter(MATTER).await.unwrap().unwrap();
    assert!(!matter.frozen);
    let directory = docket
        .log
        .store()
        .read_stream_page("directory", 1, 10_000)
        .await
        .unwrap();
    let revocations: Vec<_> = directory
        .iter()
        .filter(|event| event.event_type == "auth.credentials_revoked")
        .map(|event| event.actor.as_str())
        .collect();
    assert_eq!(revocations, vec!["system", "system"]);
    // Every act was an access record of the operator, before it was carried out.
    let records = docket
        .access
        .log()
        .store()
        .read_stream_page("access", 1, 10_000)
        .await
        .unwrap();
    let text = format!("{records:?}");
    for operation in [
        "cli incident freeze",
        "cli incident unfreeze",
        "cli incident revoke",
        "cli incident lockdown",
        "cli keys rotate",
        "cli keys rotate-kek",
    ] {
        assert!(text.contains(operation), "no access record of {operation}");
    }
    assert!(test.verify().await.is_ok());
}

/// The rule itself, without storage: a frozen matter refuses every kind of command, status
/// changes included, whatever its status; unfrozen, its own rules apply again.
#[test]
fn the_matter_refuses_every_command_while_frozen() {
    use crate::domain::{Case, HASH, details, document, note, task, time, to, upload};
    use docket::domain::commands::ChangeMatterDetails;
    use docket::domain::events::MatterStatus;

    let mut case = Case::opened();
    let frozen = case.matter().freeze("INC-1").unwrap();
    case.record(&frozen);
    assert!(case.matter().frozen);
    let commands = [
        note("a note"),
        time(30),
        document(upload(HASH, "application/pdf")),
        details(ChangeMatterDetails {
            title: Some("New title".to_owned()),
            ..ChangeMatterDetails::default()
        }),
        MatterCommand::SetVisibility { firm_visible: true },
        to(MatterStatus::Closed),
    ];
    for command in commands.clone() {
        assert_eq!(case.refuse(command), DomainError::MatterFrozen);
    }
    assert_eq!(case.refuse(task("call")), DomainError::MatterFrozen);
    assert_eq!(
        case.matter().freeze("again"),
        Err(DomainError::MatterFrozen)
    );
    let thawed = case.matter().unfreeze("INC-1 closed").unwrap();
    case.record(&thawed);
    assert!(!case.matter().frozen);
    assert_eq!(
        case.matter().unfreeze("x"),
        Err(DomainError::MatterNotFrozen)
    );
    for command in commands {
        case.run(command);
    }
    // A closed matter can be frozen, and unfrozen it is closed again, under its own rules.
    let frozen = case.matter().freeze("INC-2").unwrap();
    case.record(&frozen);
    let thawed = case.matter().unfreeze("INC-2 closed").unwrap();
    case.record(&thawed);
    assert_eq!(case.refuse(note("late")), DomainError::MatterClosed);
}

on_both_backends!(revocations_end_open_subscriptions);

/// Open subscriptions re-check their credential (`Identity::still_valid`): revoking one
/// principal ends theirs and nobody else's; a lockdown ends everyone's.
async fn revocations_end_open_subscriptions(backend: Backend) {
    use crate::subscriptions::{Desk, OURS, next};

    let desk = Desk::new(backend).await;
    let attorney = desk.users["a.ttorney"].principal.clone();
    let partner = desk.users["p.one"].principal.clone();
    let mut theirs = Box::pin(desk.subscribe(&attorney, ""));
    let mut ours = Box::pin(desk.subscribe(&partner, ""));
    let seen = desk.note("p.one", OURS, "Seen by both").await;
    for events in [&mut theirs, &mut ours] {
        assert_eq!(next(events).await["data"]["events"]["position"], seen);
    }

    let revoked = desk
        .ok(
            "ad.min",
            r#"mutation { revokeCredentials(principal: "user:a.ttorney", reason: "INC-8") {
                sessions userErrors { code } } }"#,
        )
        .await;
    assert_eq!(revoked["revokeCredentials"]["sessions"], json!(1));
    let ended = next(&mut theirs).await;
    assert_eq!(ended["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let still = desk.note("p.one", OURS, "Only the partner sees this").await;
    assert_eq!(next(&mut ours).await["data"]["events"]["position"], still);

    desk.ok(
        "ad.min",
        r#"mutation { lockdown(reason: "INC-8: everyone") { sessions userErrors { code } } }"#,
    )
    .await;
    let ended = next(&mut ours).await;
    assert_eq!(ended["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}
