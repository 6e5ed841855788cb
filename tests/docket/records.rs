//! Records management through GraphQL: erasure by two people, legal holds, retention and
//! subject access, each on both backends. An erased subject's events stay in the log, which
//! still verifies; only their client data is gone.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::Request;
use chrono::NaiveDate;
use docket::api::graphql::caller::Caller;
use docket::api::graphql::{self, with_loaders};
use docket::app::Docket;
use docket::domain::identity::Role;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, SignedIn, TestLog, caller, sign_in};

pub(crate) const MATTER: &str = "2026-0300";

pub(crate) struct Firm {
    pub(crate) log: TestLog,
    pub(crate) docket: Docket,
    pub(crate) schema: graphql::DocketSchema,
    pub(crate) users: std::collections::HashMap<&'static str, SignedIn>,
    pub(crate) contact_id: String,
}

impl Firm {
    /// Partner `p.one` runs an employment matter for client Quillon Zebedee-Marsh; `p.two` is
    /// another partner, `ad.min` an admin and `a.ttorney` an attorney.
    pub(crate) async fn new(backend: Backend) -> Firm {
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
            ("p.one", Role::Partner),
            ("p.two", Role::Partner),
            ("ad.min", Role::Admin),
            ("a.ttorney", Role::Attorney),
        ] {
            users.insert(id, sign_in(&docket.identity, id, role).await);
        }
        let mut firm = Firm {
            log,
            docket,
            schema,
            users,
            contact_id: String::new(),
        };
        firm.ok(
            "p.one",
            &format!(
                r#"mutation {{ openMatter(input: {{matterNumber: "{MATTER}",
                title: "Employment claim", practiceArea: "employment",
                responsibleAttorney: "p.one", description: "Dismissal after whistleblowing"}})
                {{ userErrors {{ code }} }} }}"#
            ),
        )
        .await;
        let created = firm
            .ok(
                "p.one",
                r#"mutation { createContact(kind: PERSON, input: {displayName: "Quillon Zebedee-Marsh",
                emails: ["quillon@zebedee.example"]}) { contact { contactId } userErrors { code } } }"#,
            )
            .await;
        firm.contact_id = created["createContact"]["contact"]["contactId"]
            .as_str()
            .unwrap()
            .to_owned();
        firm.ok(
            "p.one",
            &format!(
                r#"mutation {{ addParty(number: "{MATTER}", contactId: "{}", role: CLIENT)
                {{ userErrors {{ code }} }} }}"#,
                firm.contact_id
            ),
        )
        .await;
        firm
    }

    pub(crate) async fn run(&self, user: &str, query: &str) -> Value {
        let caller: Arc<Caller> = caller(&self.docket, Some(self.users[user].principal.clone()));
        let request =
            with_loaders(Request::new(query), self.docket.projector.db()).data(caller.clone());
        let response = self.schema.execute(request).await;
        caller.flush("test").await.unwrap();
        serde_json::to_value(&response).unwrap()
    }

    pub(crate) async fn ok(&self, user: &str, query: &str) -> Value {
        let response = self.run(user, query).await;
        assert!(response.get("errors").is_none(), "{user}: {response}");
        response["data"].clone()
    }

    pub(crate) async fn request_erasure(&self, user: &str, subject: &str) -> Value {
        self.ok(
            user,
            &format!(
                r#"mutation {{ requestErasure(subject: "{subject}", reason: "DSR-2026-114")
                {{ id position userErrors {{ code }} }} }}"#
            ),
        )
        .await["requestErasure"]
            .clone()
    }

    pub(crate) async fn confirm_erasure(
        &self,
        user: &str,
        subject: &str,
        request_id: &str,
    ) -> Value {
        self.ok(
            user,
            &format!(
                r#"mutation {{ confirmErasure(subject: "{subject}", requestId: "{request_id}")
                {{ id keyDestroyed userErrors {{ code }} }} }}"#
            ),
        )
        .await["confirmErasure"]
            .clone()
    }

    async fn place_hold(&self, target: &str) -> String {
        let placed = self
            .ok(
                "p.two",
                &format!(
                    r#"mutation {{ placeLegalHold(target: "{target}", reason: "LIT-77 preservation")
                    {{ id userErrors {{ code }} }} }}"#
                ),
            )
            .await;
        placed["placeLegalHold"]["id"].as_str().unwrap().to_owned()
    }
}

async fn an_erasure_needs_a_second_person_and_the_log_still_verifies(backend: Backend) {
    let firm = Firm::new(backend).await;
    let subject = format!("contact:{}", firm.contact_id);

    // The requester cannot confirm their own request.
    let requested = firm.request_erasure("p.one", &subject).await;
    assert_eq!(requested["userErrors"], json!([]));
    let request_id = requested["id"].as_str().unwrap().to_owned();
    let own = firm.confirm_erasure("p.one", &subject, &request_id).await;
    assert_eq!(
        own["userErrors"][0]["code"],
        json!("SECOND_PERSON_REQUIRED")
    );
    assert!(!firm.docket.vault.is_erased(&subject).await.unwrap());

    // A second partner confirms: the key is destroyed.
    let confirmed = firm.confirm_erasure("p.two", &subject, &request_id).await;
    assert_eq!(confirmed["userErrors"], json!([]));
    assert_eq!(confirmed["keyDestroyed"], json!(true));
    assert!(firm.docket.vault.is_erased(&subject).await.unwrap());

    // The contact's details read as erased, and nothing more can be written for it.
    let export = firm
        .docket
        .service
        .subject_access(&firm.contact_id)
        .await
        .unwrap();
    assert_eq!(export["contact"]["erased"], json!(true));
    assert_eq!(export["contact"]["details"]["display_name"], json!(""));
    assert!(
        export["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|entry| entry["type"] == json!("contact.created"))
            .all(|entry| entry["erased"] == json!(true))
    );
    assert!(!export.to_string().contains("Quillon"));
    let update = firm
        .run(
            "p.one",
            &format!(
                r#"mutation {{ updateContact(contactId: "{}", input: {{displayName: "New"}})
                {{ userErrors {{ code }} }} }}"#,
                firm.contact_id
            ),
        )
        .await;
    assert_eq!(
        update["data"]["updateContact"]["userErrors"][0]["code"],
        json!("ERASED"),
        "{update}"
    );

    // Confirming again is harmless; the log, ciphertext and all, still verifies.
    let again = firm.confirm_erasure("ad.min", &subject, &request_id).await;
    assert_eq!(again["keyDestroyed"], json!(false));
    firm.log
        .verify()
        .await
        .expect("the log verifies after erasure");
}

async fn a_legal_hold_blocks_erasure_until_released(backend: Backend) {
    let firm = Firm::new(backend).await;
    let matter = format!("matter:{MATTER}");
    let client = format!("contact:{}", firm.contact_id);

    // A hold on the client covers the client and their matter.
    let hold = firm.place_hold(&client).await;
    for subject in [&matter, &client] {
        let refused = firm.request_erasure("p.one", subject).await;
        assert_eq!(
            refused["userErrors"][0]["code"],
            json!("LEGAL_HOLD"),
            "{subject}"
        );
    }
    let holds = firm
        .ok("p.one", "{ legalHolds { holdId target reason } }")
        .await;
    assert_eq!(holds["legalHolds"][0]["target"], json!(client));

    // A hold on the matter covers its parties.
    let released = firm
        .ok(
            "p.two",
            &format!(
                r#"mutation {{ releaseLegalHold(holdId: "{hold}", reason: "LIT-77 settled")
                {{ userErrors {{ code }} }} }}"#
            ),
        )
        .await;
    assert_eq!(released["releaseLegalHold"]["userErrors"], json!([]));
    let matter_hold = firm.place_hold(&matter).await;
    let refused = firm.request_erasure("p.one", &client).await;
    assert_eq!(refused["userErrors"][0]["code"], json!("LEGAL_HOLD"));

    // A request made before a hold cannot be confirmed under it.
    firm.ok(
        "p.two",
        &format!(
            r#"mutation {{ releaseLegalHold(holdId: "{matter_hold}", reason: "done")
            {{ userErrors {{ code }} }} }}"#
        ),
    )
    .await;
    let requested = firm.request_erasure("p.one", &matter).await;
    let request_id = requested["id"].as_str().unwrap().to_owned();
    firm.place_hold(&matter).await;
    let blocked = firm.confirm_erasure("p.two", &matter, &request_id).await;
    assert_eq!(blocked["userErrors"][0]["code"], json!("LEGAL_HOLD"));
    assert!(!firm.docket.vault.is_erased(&matter).await.unwrap());
}

async fn records_management_needs_its_capabilities(backend: Backend) {
    let firm = Firm::new(backend).await;
    for query in [
        format!(
            r#"mutation {{ placeLegalHold(target: "matter:{MATTER}", reason: "x") {{ id }} }}"#
        ),
        format!(
            r#"mutation {{ requestErasure(subject: "matter:{MATTER}", reason: "x") {{ id }} }}"#
        ),
        r#"mutation { setRetentionPolicy(practiceArea: "employment", keepYears: 6) { position } }"#
            .to_owned(),
        format!(
            r#"{{ subjectAccessExport(contactId: "{}") }}"#,
            firm.contact_id
        ),
    ] {
        let refused = firm.run("a.ttorney", &query).await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"],
            json!("FORBIDDEN"),
            "{query}: {refused}"
        );
    }
    // A partner may hold but not set retention or export.
    let refused = firm
        .run(
            "p.one",
            r#"mutation { setRetentionPolicy(practiceArea: "employment", keepYears: 6) { position } }"#,
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        json!("FORBIDDEN")
    );
}

async fn retention_erases_expired_matters_that_no_hold_keeps(backend: Backend) {
    let firm = Firm::new(backend).await;
    firm.ok(
        "ad.min",
        r#"mutation { setRetentionPolicy(practiceArea: "employment", keepYears: 6) { userErrors { code } } }"#,
    )
    .await;
    let policies = firm
        .ok("ad.min", "{ retentionPolicies { practiceArea keepYears } }")
        .await;
    assert_eq!(
        policies["retentionPolicies"],
        json!([{"practiceArea": "employment", "keepYears": 6}])
    );
    // A second matter, held; both closed on 2020-01-31.
    firm.ok(
        "p.one",
        r#"mutation { openMatter(input: {matterNumber: "2026-0301", title: "Second claim",
        practiceArea: "employment", responsibleAttorney: "p.one"}) { userErrors { code } } }"#,
    )
    .await;
    for number in [MATTER, "2026-0301"] {
        let closed = firm
            .ok(
                "p.one",
                &format!(
                    r#"mutation {{ changeMatterStatus(number: "{number}", status: CLOSED,
                    effectiveOn: "2020-01-31") {{ userErrors {{ code }} }} }}"#
                ),
            )
            .await;
        assert_eq!(closed["changeMatterStatus"]["userErrors"], json!([]));
    }
    let hold = firm.place_hold("matter:2026-0301").await;
    firm.docket.projector.catch_up().await.unwrap();

    // Not yet expired in 2026; expired in 2026-02 for the unheld matter only.
    let early = firm
        .docket
        .service
        .run_retention(NaiveDate::from_ymd_opt(2026, 1, 30).unwrap())
        .await
        .unwrap();
    assert!(early.erased.is_empty() && early.held.is_empty());
    let run = firm
        .docket
        .service
        .run_retention(NaiveDate::from_ymd_opt(2026, 2, 1).unwrap())
        .await
        .unwrap();
    assert_eq!(run.erased, vec![format!("matter:{MATTER}")]);
    assert_eq!(run.held, vec![("matter:2026-0301".to_owned(), hold)]);
    assert!(run.failed.is_empty());
    assert!(
        firm.docket
            .vault
            .is_erased(&format!("matter:{MATTER}"))
            .await
            .unwrap()
    );
    assert!(
        !firm
            .docket
            .vault
            .is_erased("matter:2026-0301")
            .await
            .unwrap()
    );

    // The erased matter's description is gone from its state; the second run erases nothing.
    let matter = firm.docket.service.matter(MATTER).await.unwrap().unwrap();
    assert!(matter.erased);
    assert_eq!(matter.description, None);
    let again = firm
        .docket
        .service
        .run_retention(NaiveDate::from_ymd_opt(2026, 2, 1).unwrap())
        .await
        .unwrap();
    assert!(again.erased.is_empty());
    firm.log
        .verify()
        .await
        .expect("the log verifies after retention");
}

async fn a_subject_access_export_is_decrypted_and_recorded(backend: Backend) {
    let firm = Firm::new(backend).await;
    let data = firm
        .ok(
            "ad.min",
            &format!(
                r#"{{ subjectAccessExport(contactId: "{}") }}"#,
                firm.contact_id
            ),
        )
        .await;
    let export = &data["subjectAccessExport"];
    assert_eq!(export["format"], json!("docket-subject-access/1"));
    assert_eq!(
        export["contact"]["details"]["display_name"],
        json!("Quillon Zebedee-Marsh")
    );
    assert_eq!(export["matters"][0]["matter_number"], json!(MATTER));
    assert_eq!(export["matters"][0]["role"], json!("client"));

    // The export is in the access chain, naming the contact.
    let records = firm
        .docket
        .access
        .log()
        .store()
        .read_page(1, 10_000)
        .await
        .unwrap();
    let recorded = records.iter().any(|record| {
        record.payload.contains("subject_access_export")
            && record.payload.contains(&firm.contact_id)
    });
    assert!(recorded, "the export is an access record");
}

/// A new subject's data key is written in the commit of its first events, and a refused
/// append leaves no key behind.
async fn a_new_subjects_key_is_stored_with_its_first_events(backend: Backend) {
    let firm = Firm::new(backend).await;
    let store = firm.docket.log.store().clone();
    let stored = store
        .keys()
        .subject_key(&format!("matter:{MATTER}"))
        .await
        .unwrap()
        .expect("the matter has a key");
    let events = store
        .read_stream_page(&format!("matter:{MATTER}"), 1, 1)
        .await
        .unwrap();
    let opened: Value = serde_json::from_str(&events[0].payload).unwrap();
    assert_eq!(opened["private"]["key"], json!(stored.key_id));

    // Opening the same matter again is refused: no second key, no event.
    let again = firm
        .run(
            "p.one",
            &format!(
                r#"mutation {{ openMatter(input: {{matterNumber: "{MATTER}", title: "Again",
                practiceArea: "employment", responsibleAttorney: "p.one", description: "x"}})
                {{ userErrors {{ code }} }} }}"#
            ),
        )
        .await;
    assert_eq!(
        again["data"]["openMatter"]["userErrors"][0]["code"],
        json!("DUPLICATE_MATTER_NUMBER")
    );
    let after = store
        .keys()
        .subject_key(&format!("matter:{MATTER}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.key_id, stored.key_id);

    // A command refused for a stale version leaves no key for a new subject either.
    let mut context =
        docket::service::CommandContext::new(docket::log::Actor::parse("user:p.one").unwrap());
    context.expected_version = Some(7);
    let refused = firm
        .docket
        .service
        .open_matter(
            &context,
            &docket::domain::commands::OpenMatter {
                matter_number: "2026-0399".into(),
                title: "Refused".into(),
                description: Some("never stored".into()),
                practice_area: "employment".into(),
                responsible_attorney: "p.one".into(),
                ..Default::default()
            },
        )
        .await;
    assert!(refused.is_err());
    assert!(
        store
            .keys()
            .subject_key("matter:2026-0399")
            .await
            .unwrap()
            .is_none()
    );
}

on_both_backends!(
    a_new_subjects_key_is_stored_with_its_first_events,
    an_erasure_needs_a_second_person_and_the_log_still_verifies,
    a_legal_hold_blocks_erasure_until_released,
    records_management_needs_its_capabilities,
    retention_erases_expired_matters_that_no_hold_keeps,
    a_subject_access_export_is_decrypted_and_recorded,
);
