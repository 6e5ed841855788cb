//! The account, administration and audit API, executed against the schema with a fresh store
//! per test, on both backends: enrolment, login and sessions, step-up, administration, walls,
//! API keys, break-glass, access records and the access review.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_graphql::{Request, Variables};
use docket::access::Principal;
use docket::api::graphql::caller::{Caller, CookieChange};
use docket::api::graphql::{self, with_loaders};
use docket::app::Docket;
use docket::domain::commands::OpenMatter;
use docket::domain::identity::Role;
use docket::identity::secret::totp::TotpSecret;
use docket::log::Actor;
use docket::service::CommandContext;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::on_both_backends;
use crate::support::{Backend, TestLog};

/// The password every test user enrols with.
const PASSWORD: &str = "Plover-Quartz-Meridian-77";

struct Api {
    _log: TestLog,
    docket: Docket,
    schema: graphql::DocketSchema,
    requests: AtomicU32,
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
        Api {
            _log: log,
            docket,
            schema,
            requests: AtomicU32::new(0),
        }
    }

    /// The caller of a new request. Each comes from an address of its own, so that the
    /// per-address throttle never slows a test down.
    fn caller(&self, principal: Option<&Principal>) -> Arc<Caller> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst);
        Arc::new(Caller::new(
            principal.cloned(),
            self.docket.identity.directory(),
            format!("req-{n}"),
            Some(format!("10.0.{}.{}", n / 250, n % 250 + 1)),
            self.docket.access.clone(),
        ))
    }

    /// Runs one request for `caller` and writes its access record, as the HTTP handler does.
    async fn run_with(&self, caller: &Arc<Caller>, query: &str, variables: Value) -> Value {
        let request = Request::new(query).variables(Variables::from_json(variables));
        let request = with_loaders(request, self.docket.projector.db()).data(caller.clone());
        let response = self.schema.execute(request).await;
        caller.flush("test").await.unwrap();
        serde_json::to_value(&response).unwrap()
    }

    async fn run(&self, principal: Option<&Principal>, query: &str, variables: Value) -> Value {
        let caller = self.caller(principal);
        self.run_with(&caller, query, variables).await
    }

    /// The data of a request that must not fail.
    async fn ok(&self, principal: Option<&Principal>, query: &str, variables: Value) -> Value {
        let response = self.run(principal, query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response}"
        );
        response["data"].clone()
    }

    /// The code of the first error of a request that must fail.
    async fn refused(
        &self,
        principal: Option<&Principal>,
        query: &str,
        variables: Value,
    ) -> String {
        let response = self.run(principal, query, variables).await;
        response["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error: {response}"))
            .to_owned()
    }

    /// The event types of the directory stream, in order.
    async fn directory_events(&self) -> Vec<String> {
        self.docket
            .log
            .store()
            .read_stream_page("directory", 1, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|event| event.event_type)
            .collect()
    }

    /// Adds a user and enrols them directly through the identity service.
    async fn enrol(&self, user_id: &str, role: Role, practice_areas: &[&str]) -> Account {
        let email = format!("{user_id}@firm.example");
        let areas: Vec<String> = practice_areas.iter().map(|a| (*a).to_owned()).collect();
        let identity = &self.docket.identity;
        let added = identity
            .add_user(
                &Actor::system(),
                None,
                &email,
                &format!("Test {}", role.as_str()),
                role,
                &areas,
                Some(user_id),
            )
            .await
            .unwrap();
        let start = identity
            .begin_enrolment(&added.enrolment_token)
            .await
            .unwrap();
        let mut totp = Authenticator::new(&start.secret_base32);
        let code = totp.code().await;
        let recovery = identity
            .complete_enrolment(
                &added.enrolment_token,
                Zeroizing::new(PASSWORD.to_owned()),
                &code,
            )
            .await
            .unwrap()
            .iter()
            .map(|code| code.to_string())
            .collect();
        Account {
            user_id: user_id.to_owned(),
            email,
            totp,
            recovery,
        }
    }

    /// A new session of an enrolled user, as a login opens it, and the principal it proves.
    async fn session(&self, user_id: &str) -> (String, Principal) {
        let identity = &self.docket.identity;
        let session = identity
            .open_session(user_id, Some("127.0.0.1"), chrono::Utc::now())
            .await
            .unwrap();
        let principal = identity
            .authenticate(&session.token)
            .await
            .unwrap()
            .unwrap();
        (session.token.to_string(), principal)
    }

    /// Whether a bearer secret still proves someone.
    async fn authenticates(&self, secret: &str) -> bool {
        self.docket
            .identity
            .authenticate(secret)
            .await
            .unwrap()
            .is_some()
    }

    /// Opens a matter with `attorney` responsible (and so on its team).
    async fn open_matter(&self, number: &str, attorney: &str, practice_area: &str) {
        let context = CommandContext::new(Actor::parse(&format!("user:{attorney}")).unwrap());
        let command = OpenMatter {
            matter_number: number.to_owned(),
            title: format!("Matter {number}"),
            description: None,
            practice_area: practice_area.to_owned(),
            responsible_attorney: attorney.to_owned(),
            originating_attorney: None,
            opened_on: None,
            statute_of_limitations_on: None,
            intake: false,
        };
        let committed = self
            .docket
            .service
            .open_matter(&context, &command)
            .await
            .unwrap();
        assert!(committed.projected, "the read models have the matter");
    }
}

/// An enrolled user: their email, authenticator and recovery codes.
struct Account {
    user_id: String,
    email: String,
    totp: Authenticator,
    recovery: Vec<String>,
}

/// A user's authenticator app. A TOTP step is accepted once per user and only steps later than
/// the last accepted one are, so it hands out the current or next step and waits for the clock
/// when both are used.
struct Authenticator {
    secret: TotpSecret,
    last: Option<u64>,
}

impl Authenticator {
    fn new(base32: &str) -> Self {
        Authenticator {
            secret: TotpSecret::from_base32(base32).unwrap(),
            last: None,
        }
    }

    async fn code(&mut self) -> String {
        loop {
            let now = unix_now();
            let current = now / 30;
            let step = self.last.map_or(current, |last| (last + 1).max(current));
            if step <= current + 1 {
                self.last = Some(step);
                return self.secret.code_at(step * 30);
            }
            let wait = (current + 1) * 30 - now;
            tokio::time::sleep(Duration::from_millis(wait * 1000 + 200)).await;
        }
    }

    /// A code no step near now has.
    fn wrong_code(&self) -> String {
        let current = unix_now() / 30;
        let near: Vec<String> = (current.saturating_sub(2)..=current + 2)
            .map(|step| self.secret.code_at(step * 30))
            .collect();
        (0..)
            .map(|k| self.secret.code_at((current + 40 + k) * 30))
            .find(|code| !near.contains(code))
            .unwrap()
    }
}

fn unix_now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap()
}

const BEGIN: &str = r#"mutation($t: String!) { beginEnrolment(token: $t) {
    enrolment { userId email otpauthUri secretBase32 } userErrors { field code message } } }"#;

const COMPLETE: &str = r#"mutation($t: String!, $p: String!, $c: String!) {
    completeEnrolment(token: $t, password: $p, totpCode: $c) {
        recoveryCodes userErrors { field code message } } }"#;

const LOGIN_TOTP: &str = r#"mutation($e: String!, $p: String!, $c: String!) {
    login(input: {email: $e, password: $p, totpCode: $c}) {
        session { sessionId userId token expiresAt } userErrors { field code message } } }"#;

const LOGIN_RECOVERY: &str = r#"mutation($e: String!, $p: String!, $c: String!) {
    login(input: {email: $e, password: $p, recoveryCode: $c}) {
        session { sessionId userId token expiresAt } userErrors { field code message } } }"#;

const ADD_USER: &str = r#"mutation($e: String!, $id: String) {
    addUser(email: $e, name: "Grace Hopper", role: ATTORNEY, practiceAreas: ["employment"],
            userId: $id) {
        enrolment { userId enrolmentToken expiresAt } userErrors { field code message } } }"#;

/// The first admin: added by the system, enrolled and signed in through GraphQL.
async fn bootstrap_admin(api: &Api) -> (Account, String, Principal) {
    let added = api
        .docket
        .identity
        .add_user(
            &Actor::system(),
            None,
            "ada@firm.example",
            "Ada Lovelace",
            Role::Admin,
            &[],
            Some("ada"),
        )
        .await
        .unwrap();
    let token = added.enrolment_token.to_string();
    let begun = api.ok(None, BEGIN, json!({"t": token})).await;
    let start = &begun["beginEnrolment"]["enrolment"];
    let mut totp = Authenticator::new(start["secretBase32"].as_str().unwrap());
    let code = totp.code().await;
    let done = api
        .ok(
            None,
            COMPLETE,
            json!({"t": token, "p": PASSWORD, "c": code}),
        )
        .await;
    let recovery: Vec<String> =
        serde_json::from_value(done["completeEnrolment"]["recoveryCodes"].clone()).unwrap();
    let code = totp.code().await;
    let login = api
        .ok(
            None,
            LOGIN_TOTP,
            json!({"e": "ada@firm.example", "p": PASSWORD, "c": code}),
        )
        .await;
    let session = api.docket.identity.directory();
    assert!(session.user("ada").unwrap().enrolled);
    let token = login["login"]["session"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let principal = api
        .docket
        .identity
        .authenticate(&token)
        .await
        .unwrap()
        .unwrap();
    let account = Account {
        user_id: "ada".into(),
        email: "ada@firm.example".into(),
        totp,
        recovery,
    };
    (account, token, principal)
}

async fn enrolment_sets_up_password_authenticator_and_recovery_codes(backend: Backend) {
    let api = Api::new(backend).await;
    let added = api
        .docket
        .identity
        .add_user(
            &Actor::system(),
            None,
            "Ada@Firm.example",
            "Ada Lovelace",
            Role::Admin,
            &[],
            Some("ada"),
        )
        .await
        .unwrap();
    let token = added.enrolment_token.to_string();

    // An unknown token and a real one that is not yet used: the unknown one is refused.
    let unknown = api
        .ok(None, BEGIN, json!({"t": "dke_not-a-real-token"}))
        .await;
    assert_eq!(
        unknown["beginEnrolment"]["userErrors"][0]["code"],
        json!("INVALID_ENROLMENT")
    );
    let begun = api.ok(None, BEGIN, json!({"t": token})).await;
    let start = &begun["beginEnrolment"]["enrolment"];
    assert_eq!(start["userId"], json!("ada"));
    assert_eq!(start["email"], json!("ada@firm.example"));
    let secret = start["secretBase32"].as_str().unwrap();
    assert!(secret.len() >= 32, "160 bits of secret");
    assert_eq!(
        start["otpauthUri"],
        json!(format!(
            "otpauth://totp/Docket:ada%40firm.example?secret={secret}&issuer=Docket\
             &algorithm=SHA1&digits=6&period=30"
        ))
    );
    let mut totp = Authenticator::new(secret);

    // Weak and common passwords are refused, and so is a wrong first code.
    for weak in ["short", "password1234!", "ada-lovelace-2026"] {
        let code = totp.wrong_code();
        let refused = api
            .ok(None, COMPLETE, json!({"t": token, "p": weak, "c": code}))
            .await;
        let payload = &refused["completeEnrolment"];
        assert_eq!(payload["recoveryCodes"], Value::Null);
        assert_eq!(
            payload["userErrors"][0]["code"],
            json!("PASSWORD_REJECTED"),
            "{weak}"
        );
        assert_eq!(payload["userErrors"][0]["field"], json!("password"));
    }
    let wrong = api
        .ok(
            None,
            COMPLETE,
            json!({"t": token, "p": PASSWORD, "c": totp.wrong_code()}),
        )
        .await;
    assert_eq!(
        wrong["completeEnrolment"]["userErrors"][0]["code"],
        json!("INVALID_CODE")
    );

    // The right code completes it: ten distinct recovery codes, shown once.
    let code = totp.code().await;
    let done = api
        .ok(
            None,
            COMPLETE,
            json!({"t": token, "p": PASSWORD, "c": code}),
        )
        .await;
    assert_eq!(done["completeEnrolment"]["userErrors"], json!([]));
    let codes: Vec<String> =
        serde_json::from_value(done["completeEnrolment"]["recoveryCodes"].clone()).unwrap();
    assert_eq!(codes.len(), 10);
    let mut distinct = codes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);
    for code in &codes {
        assert_eq!(code.len(), 19, "xxxx-xxxx-xxxx-xxxx: {code}");
        assert_eq!(code.matches('-').count(), 3);
    }
    assert!(
        api.docket
            .identity
            .directory()
            .user("ada")
            .unwrap()
            .enrolled
    );

    // The token was used up: neither half of enrolment accepts it again.
    let again = api.ok(None, BEGIN, json!({"t": token})).await;
    assert_eq!(
        again["beginEnrolment"]["userErrors"][0], unknown["beginEnrolment"]["userErrors"][0],
        "a used token is answered like one that never existed"
    );
    let code = totp.wrong_code();
    let again = api
        .ok(
            None,
            COMPLETE,
            json!({"t": token, "p": PASSWORD, "c": code}),
        )
        .await;
    assert_eq!(
        again["completeEnrolment"]["userErrors"][0]["code"],
        json!("INVALID_ENROLMENT")
    );

    // Two enrolment attempts in one request: the second is refused.
    let twice = api
        .run(
            None,
            r#"mutation($t: String!) { a: beginEnrolment(token: $t) { userErrors { code } }
                b: beginEnrolment(token: $t) { userErrors { code } } }"#,
            json!({"t": token}),
        )
        .await;
    assert_eq!(
        twice["errors"][0]["extensions"]["code"],
        json!("ONE_ATTEMPT_PER_REQUEST")
    );

    // Secrets never reach the log: not the token, the TOTP secret, nor a recovery code.
    let mut stored = String::new();
    for event in api
        .docket
        .log
        .store()
        .read_stream_page("directory", 1, 1000)
        .await
        .unwrap()
    {
        stored.push_str(&event.payload);
    }
    for event in api
        .docket
        .access
        .log()
        .store()
        .read_page(1, 1000)
        .await
        .unwrap()
    {
        stored.push_str(&event.payload);
    }
    assert!(!stored.contains(&token));
    assert!(!stored.contains(secret));
    for code in &codes {
        assert!(!stored.contains(code.as_str()));
    }

    // Enrolment is recorded, against the account, for the anonymous caller.
    let (_, auditor) = {
        api.enrol("aud", Role::Auditor, &[]).await;
        api.session("aud").await
    };
    let records = api
        .ok(
            Some(&auditor),
            r#"{ accessRecords(principal: "anonymous", first: 50) { entries { target targetId fields decision reason } } }"#,
            json!({}),
        )
        .await;
    let entries = records["accessRecords"]["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["target"] == json!("account")
        && e["targetId"] == json!("ada")
        && e["reason"] == json!("enrolment_token")));
    assert!(entries.iter().any(|e| e["target"] == json!("account")
        && e["decision"] == json!("DENIED")
        && e["reason"] == json!("password_rejected")));
    assert!(entries.iter().any(|e| e["target"] == json!("account")
        && e["decision"] == json!("ALLOWED")
        && e["reason"] == json!("enrolled")));
}

async fn login_takes_a_totp_or_a_recovery_code_and_refuses_alike(backend: Backend) {
    let api = Api::new(backend).await;
    let (mut ada, _, _) = bootstrap_admin(&api).await;

    // With a TOTP code (a fresh one: a code is accepted once).
    let code = ada.totp.code().await;
    let login = api
        .ok(
            None,
            LOGIN_TOTP,
            json!({"e": ada.email, "p": PASSWORD, "c": code}),
        )
        .await;
    let session = &login["login"]["session"];
    assert_eq!(session["userId"], json!("ada"));
    let token = session["token"].as_str().unwrap();
    assert!(token.starts_with("dks_"));
    assert!(api.authenticates(token).await);
    let reused = api
        .ok(
            None,
            LOGIN_TOTP,
            json!({"e": ada.email, "p": PASSWORD, "c": code}),
        )
        .await;
    let wrong_code = reused["login"]["userErrors"][0].clone();
    assert_eq!(
        wrong_code["code"],
        json!("INVALID_CREDENTIALS"),
        "a used code"
    );

    // With a recovery code, each once.
    let first = ada.recovery[0].clone();
    let by_recovery = api
        .ok(
            None,
            LOGIN_RECOVERY,
            json!({"e": ada.email, "p": PASSWORD, "c": first}),
        )
        .await;
    assert_eq!(by_recovery["login"]["userErrors"], json!([]));
    assert!(
        api.authenticates(by_recovery["login"]["session"]["token"].as_str().unwrap())
            .await
    );
    let used = api
        .ok(
            None,
            LOGIN_RECOVERY,
            json!({"e": ada.email, "p": PASSWORD, "c": first}),
        )
        .await;
    let used_recovery = used["login"]["userErrors"][0].clone();
    let second = api
        .ok(
            None,
            LOGIN_RECOVERY,
            json!({"e": ada.email, "p": PASSWORD, "c": ada.recovery[1]}),
        )
        .await;
    assert_eq!(second["login"]["userErrors"], json!([]));
    let me = api
        .ok(
            Some(
                &api.docket
                    .identity
                    .authenticate(second["login"]["session"]["token"].as_str().unwrap())
                    .await
                    .unwrap()
                    .unwrap(),
            ),
            "{ me { userId role recoveryCodesLeft } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["me"],
        json!({"userId": "ada", "role": "ADMIN", "recoveryCodesLeft": 8})
    );

    // Unknown email, wrong password, wrong code, a disabled user: one and the same answer.
    let mut dora = api.enrol("dora", Role::Staff, &[]).await;
    api.docket
        .identity
        .disable_user(&Actor::system(), None, "dora", "left the firm")
        .await
        .unwrap();
    let unknown = api
        .ok(
            None,
            LOGIN_TOTP,
            json!({"e": "nobody@firm.example", "p": PASSWORD, "c": "123456"}),
        )
        .await;
    let bad_password = api
        .ok(
            None,
            LOGIN_TOTP,
            json!({"e": ada.email, "p": "Wrong-Password-Entirely-1", "c": ada.totp.wrong_code()}),
        )
        .await;
    let code = dora.totp.code().await;
    let disabled = api
        .ok(
            None,
            LOGIN_TOTP,
            json!({"e": dora.email, "p": PASSWORD, "c": code}),
        )
        .await;
    let expected = unknown["login"]["userErrors"][0].clone();
    assert_eq!(expected["code"], json!("INVALID_CREDENTIALS"));
    for (what, answer) in [
        (
            "wrong password",
            bad_password["login"]["userErrors"][0].clone(),
        ),
        ("wrong code", wrong_code),
        ("used recovery code", used_recovery),
        ("disabled user", disabled["login"]["userErrors"][0].clone()),
    ] {
        assert_eq!(answer, expected, "{what}");
    }

    // Two logins in one request: the second is refused before it is tried.
    let twice = api
        .run(
            None,
            r#"mutation($e: String!, $p: String!, $c: String!, $d: String!) {
                a: login(input: {email: $e, password: $p, recoveryCode: $c}) { session { userId } userErrors { code } }
                b: login(input: {email: $e, password: $p, recoveryCode: $d}) { session { userId } userErrors { code } } }"#,
            json!({"e": ada.email, "p": PASSWORD, "c": ada.recovery[2], "d": ada.recovery[3]}),
        )
        .await;
    assert_eq!(
        twice["errors"][0]["extensions"]["code"],
        json!("ONE_ATTEMPT_PER_REQUEST"),
        "{twice}"
    );
    assert_eq!(twice["errors"][0]["path"], json!(["b"]));
    assert_eq!(
        api.docket
            .identity
            .remaining_recovery_codes("ada")
            .await
            .unwrap(),
        7,
        "the refused alias did not use its code"
    );
}

async fn administration_needs_the_role_and_a_recent_step_up(backend: Backend) {
    let api = Api::new(backend).await;
    let (_, _, admin) = bootstrap_admin(&api).await;

    // Right after login the second factor is fresh: an admin adds a user.
    let added = api
        .ok(
            Some(&admin),
            ADD_USER,
            json!({"e": "grace@firm.example", "id": "grace"}),
        )
        .await;
    let enrolment = &added["addUser"]["enrolment"];
    assert_eq!(enrolment["userId"], json!("grace"));
    assert!(
        enrolment["enrolmentToken"]
            .as_str()
            .unwrap()
            .starts_with("dke_")
    );
    assert!(enrolment["expiresAt"].as_str().unwrap() > "2026");
    let listed = api
        .ok(
            Some(&admin),
            "{ users { userId email role practiceAreas status enrolled lastLoginAt } }",
            json!({}),
        )
        .await;
    let grace = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["userId"] == json!("grace"))
        .unwrap()
        .clone();
    assert_eq!(
        grace,
        json!({"userId": "grace", "email": "grace@firm.example", "role": "ATTORNEY",
               "practiceAreas": ["employment"], "status": "PENDING", "enrolled": false,
               "lastLoginAt": null})
    );
    let text = listed.to_string();
    assert!(
        !text.contains(enrolment["enrolmentToken"].as_str().unwrap()),
        "a token is shown once"
    );

    // A session whose second factor is not recent is asked to step up, and nothing changes.
    let mut stale = admin.clone();
    stale.step_up_at = None;
    let before = api.directory_events().await.len();
    for query in [
        ADD_USER,
        r#"mutation { setFirmPolicy(partnerAccess: FIRM, breakGlassMinutes: 30) { userErrors { code } } }"#,
        "{ apiClients { clientId } }",
    ] {
        let code = api
            .refused(Some(&stale), query, json!({"e": "alan@firm.example"}))
            .await;
        assert_eq!(code, "STEP_UP_REQUIRED", "{query}");
    }
    assert_eq!(api.directory_events().await.len(), before);

    // stepUp with a wrong code is refused; with a right one the session may administer again.
    let mut eve = api.enrol("eve", Role::Admin, &[]).await;
    let (eve_token, eve_session) = api.session("eve").await;
    let mut eve_stale = eve_session.clone();
    eve_stale.step_up_at = None;
    let wrong = api
        .ok(
            Some(&eve_stale),
            r#"mutation($c: String!) { stepUp(code: $c) { ok userErrors { field code } } }"#,
            json!({"c": eve.totp.wrong_code()}),
        )
        .await;
    assert_eq!(
        wrong["stepUp"]["userErrors"][0]["code"],
        json!("INVALID_CODE")
    );
    let code = eve.totp.code().await;
    let stepped = api
        .ok(
            Some(&eve_stale),
            r#"mutation($c: String!) { stepUp(code: $c) { ok userErrors { code } } }"#,
            json!({"c": code}),
        )
        .await;
    assert_eq!(stepped["stepUp"]["ok"], json!(true));
    let fresh = api
        .docket
        .identity
        .authenticate(&eve_token)
        .await
        .unwrap()
        .unwrap();
    assert!(fresh.step_up_at.unwrap() >= eve_session.step_up_at.unwrap());
    let added = api
        .ok(Some(&fresh), ADD_USER, json!({"e": "alan@firm.example"}))
        .await;
    assert_eq!(added["addUser"]["enrolment"]["userId"], json!("alan"));

    // Everyone else is refused every administrative field; signed-out callers are asked to
    // sign in. Nothing reaches the directory.
    api.enrol("pat", Role::Partner, &[]).await;
    api.enrol("aud", Role::Auditor, &[]).await;
    let (_, partner) = api.session("pat").await;
    let (_, auditor) = api.session("aud").await;
    let before = api.directory_events().await.len();
    let administration = [
        r#"mutation { addUser(email: "x@firm.example", name: "X", role: STAFF) { userErrors { code } } }"#,
        r#"mutation { changeRole(userId: "grace", role: STAFF) { userErrors { code } } }"#,
        r#"mutation { disableUser(userId: "grace", reason: "left") { userErrors { code } } }"#,
        r#"mutation { enableUser(userId: "grace") { userErrors { code } } }"#,
        r#"mutation { unlockUser(userId: "grace") { userErrors { code } } }"#,
        r#"mutation { reissueEnrolment(userId: "grace") { userErrors { code } } }"#,
        r#"mutation { revokeSessions(principal: "*") { userErrors { code } } }"#,
        r#"mutation { setGroup(groupId: "g", name: "G", members: ["grace"]) { userErrors { code } } }"#,
        r#"mutation { erectWall(input: {name: "W", reason: "conflict", screenedUsers: ["grace"],
            matters: ["2026-0001"]}) { userErrors { code } } }"#,
        r#"mutation { liftWall(wallId: "w", reason: "over") { userErrors { code } } }"#,
        r#"mutation { registerApiClient(clientId: "billing", name: "Billing") { userErrors { code } } }"#,
        r#"mutation { issueApiKey(clientId: "billing") { userErrors { code } } }"#,
        r#"mutation { revokeApiKey(keyId: "abcdefghijkl") { userErrors { code } } }"#,
        r#"mutation { setFirmPolicy(partnerAccess: FIRM, breakGlassMinutes: 30) { userErrors { code } } }"#,
        "{ apiClients { clientId } }",
    ];
    for query in administration {
        for who in [&partner, &auditor] {
            let code = api.refused(Some(who), query, json!({})).await;
            assert_eq!(code, "FORBIDDEN", "{query}");
        }
        let code = api.refused(None, query, json!({})).await;
        assert_eq!(code, "UNAUTHENTICATED", "{query}");
    }
    for query in ["{ users { userId } }", "{ walls { wallId } }"] {
        assert_eq!(
            api.refused(Some(&partner), query, json!({})).await,
            "FORBIDDEN"
        );
        api.ok(Some(&auditor), query, json!({})).await;
    }
    assert_eq!(api.directory_events().await.len(), before);
}

async fn admin_changes_are_events_and_access_records(backend: Backend) {
    let api = Api::new(backend).await;
    let (_, _, admin) = bootstrap_admin(&api).await;
    api.enrol("tom", Role::Staff, &[]).await;
    let (tom_token, _) = api.session("tom").await;
    let start = api.directory_events().await.len();

    let changes = [
        (
            r#"mutation { addUser(email: "kim@firm.example", name: "Kim Li", role: PARALEGAL) {
                enrolment { userId } userErrors { code } } }"#,
            "addUser",
        ),
        (
            r#"mutation { changeRole(userId: "tom", role: PARALEGAL, practiceAreas: ["property"]) {
                user { role practiceAreas } userErrors { code } } }"#,
            "changeRole",
        ),
        (
            r#"mutation { disableUser(userId: "tom", reason: "on leave") { user { status } userErrors { code } } }"#,
            "disableUser",
        ),
        (
            r#"mutation { enableUser(userId: "tom") { user { status } userErrors { code } } }"#,
            "enableUser",
        ),
        (
            r#"mutation { reissueEnrolment(userId: "kim") { enrolment { enrolmentToken } userErrors { code } } }"#,
            "reissueEnrolment",
        ),
        (
            r#"mutation { revokeSessions(principal: "user:tom") { revoked userErrors { code } } }"#,
            "revokeSessions",
        ),
        (
            r#"mutation { setGroup(groupId: "tax-team", name: "Tax team", members: ["tom", "kim"]) {
                ok userErrors { code } } }"#,
            "setGroup",
        ),
        (
            r#"mutation { erectWall(input: {name: "Acme", reason: "acting against Acme",
                screenedGroups: ["tax-team"], matters: ["2026-0001"]}) {
                wallId wall { name screenedGroups matters erectedBy } userErrors { code } } }"#,
            "erectWall",
        ),
        (
            r#"mutation { registerApiClient(clientId: "billing", name: "Billing system") {
                client { clientId name keyIds } userErrors { code } } }"#,
            "registerApiClient",
        ),
        (
            r#"mutation { issueApiKey(clientId: "billing", expiresAt: "2999-01-01T00:00:00Z") {
                key { keyId clientId key expiresAt } userErrors { code } } }"#,
            "issueApiKey",
        ),
        (
            r#"mutation { setFirmPolicy(partnerAccess: PRACTICE_AREAS, breakGlassMinutes: 30) {
                policy { partnerAccess breakGlassMinutes } userErrors { code } } }"#,
            "setFirmPolicy",
        ),
    ];
    let mut results = serde_json::Map::new();
    for (query, name) in changes {
        let data = api.ok(Some(&admin), query, json!({})).await;
        assert_eq!(data[name]["userErrors"], json!([]), "{name}: {data}");
        results.insert(name.to_owned(), data[name].clone());
    }
    assert_eq!(
        results["changeRole"]["user"],
        json!({"role": "PARALEGAL", "practiceAreas": ["property"]})
    );
    assert_eq!(results["disableUser"]["user"]["status"], json!("DISABLED"));
    assert_eq!(results["enableUser"]["user"]["status"], json!("ACTIVE"));
    assert_eq!(
        results["erectWall"]["wall"],
        json!({"name": "Acme", "screenedGroups": ["tax-team"], "matters": ["2026-0001"],
               "erectedBy": "user:ada"})
    );
    assert_eq!(
        results["setFirmPolicy"]["policy"],
        json!({"partnerAccess": "PRACTICE_AREAS", "breakGlassMinutes": 30})
    );
    // Disabling ended tom's session at once.
    assert!(!api.authenticates(&tom_token).await);

    // The key authenticates until it is revoked, and not a moment after.
    let key = results["issueApiKey"]["key"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_id = results["issueApiKey"]["key"]["keyId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(key.starts_with(&format!("dkt_{key_id}_")));
    assert!(api.authenticates(&key).await);
    let clients = api
        .ok(
            Some(&admin),
            "{ apiClients { clientId keyIds } }",
            json!({}),
        )
        .await;
    assert_eq!(
        clients["apiClients"],
        json!([{"clientId": "billing", "keyIds": [key_id]}])
    );
    assert!(!clients.to_string().contains(&key), "a key is shown once");
    let revoked = api
        .ok(
            Some(&admin),
            r#"mutation($k: String!) { revokeApiKey(keyId: $k) { ok userErrors { code } } }"#,
            json!({"k": key_id}),
        )
        .await;
    assert_eq!(revoked["revokeApiKey"]["ok"], json!(true));
    assert!(!api.authenticates(&key).await);

    let walls = api
        .ok(Some(&admin), "{ walls { wallId name reason } }", json!({}))
        .await;
    let wall_id = results["erectWall"]["wallId"].as_str().unwrap().to_owned();
    assert_eq!(
        walls["walls"],
        json!([{"wallId": wall_id, "name": "Acme", "reason": "acting against Acme"}])
    );
    let lifted = api
        .ok(
            Some(&admin),
            r#"mutation($w: String!) { liftWall(wallId: $w, reason: "matter closed") { ok userErrors { code } } }"#,
            json!({"w": wall_id}),
        )
        .await;
    assert_eq!(lifted["liftWall"]["ok"], json!(true));

    // Unlocking an account that is not locked changes nothing, and says so without error.
    let unlocked = api
        .ok(
            Some(&admin),
            r#"mutation { unlockUser(userId: "tom") { user { status } userErrors { code } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(unlocked["unlockUser"]["user"]["status"], json!("ACTIVE"));

    // Bad input comes back as user errors, and an admin cannot lock themselves out.
    for (query, code) in [
        (
            r#"mutation { disableUser(userId: "ada", reason: "oops") { userErrors { code field } } }"#,
            "INVALID_INPUT",
        ),
        (
            r#"mutation { addUser(email: "kim@firm.example", name: "Kim", role: STAFF) { userErrors { code field } } }"#,
            "EMAIL_TAKEN",
        ),
        (
            r#"mutation { revokeSessions(principal: "tom") { userErrors { code field } } }"#,
            "INVALID_INPUT",
        ),
        (
            r#"mutation { issueApiKey(clientId: "billing", expiresAt: "2001-01-01T00:00:00Z") { userErrors { code field } } }"#,
            "INVALID_INPUT",
        ),
        (
            r#"mutation { setFirmPolicy(partnerAccess: FIRM, breakGlassMinutes: 5000) { userErrors { code field } } }"#,
            "INVALID_INPUT",
        ),
    ] {
        let data = api.ok(Some(&admin), query, json!({})).await;
        let payload = data.as_object().unwrap().values().next().unwrap();
        assert_eq!(payload["userErrors"][0]["code"], json!(code), "{query}");
    }

    // Every change is an event on the directory stream.
    let events = api.directory_events().await;
    let new: Vec<&str> = events[start..].iter().map(String::as_str).collect();
    for expected in [
        "user.added",
        "user.enrolment_issued",
        "user.role_changed",
        "user.disabled",
        "user.enabled",
        "auth.sessions_revoked",
        "group.members_set",
        "wall.erected",
        "wall.lifted",
        "api_client.registered",
        "api_client.key_issued",
        "api_client.key_revoked",
        "firm.policy_set",
    ] {
        assert!(new.contains(&expected), "{expected} in {new:?}");
    }

    // And every change is in the access records, before it was made, with its target.
    let (_, auditor) = {
        api.enrol("aud", Role::Auditor, &[]).await;
        api.session("aud").await
    };
    let records = api
        .ok(
            Some(&auditor),
            r#"{ accessRecords(principal: "user:ada", decision: ALLOWED, first: 500) {
                entries { operation target targetId fields reason } } }"#,
            json!({}),
        )
        .await;
    let entries = records["accessRecords"]["entries"].as_array().unwrap();
    let has = |operation: &str, target: &str, target_id: Value, reason: &str| {
        entries.iter().any(|e| {
            e["operation"] == json!(operation)
                && e["target"] == json!(target)
                && e["targetId"] == target_id
                && e["reason"] == json!(reason)
        })
    };
    assert!(has(
        "mutation changeRole",
        "user",
        json!("tom"),
        "administer_users"
    ));
    assert!(has(
        "mutation disableUser",
        "user",
        json!("tom"),
        "administer_users"
    ));
    assert!(has(
        "mutation revokeSessions",
        "user",
        json!("tom"),
        "administer_users"
    ));
    assert!(has(
        "mutation erectWall",
        "wall",
        Value::Null,
        "administer_walls"
    ));
    assert!(has("test", "wall", json!(wall_id), "administer_walls"));
    assert!(has(
        "mutation liftWall",
        "wall",
        json!(wall_id),
        "administer_walls"
    ));
    assert!(has(
        "mutation issueApiKey",
        "api_client",
        json!("billing"),
        "administer_api_clients"
    ));
    assert!(has(
        "mutation revokeApiKey",
        "api_client",
        json!("billing"),
        "administer_api_clients"
    ));
    assert!(has(
        "mutation setFirmPolicy",
        "firm_policy",
        Value::Null,
        "set_firm_policy"
    ));
    assert!(has(
        "mutation addUser",
        "user",
        Value::Null,
        "administer_users"
    ));
    assert!(has("test", "user", json!("kim"), "administer_users"));
}

async fn auditors_query_access_records_and_admins_cannot(backend: Backend) {
    let api = Api::new(backend).await;
    let (_, _, admin) = bootstrap_admin(&api).await;
    api.enrol("aud", Role::Auditor, &[]).await;
    let (_, auditor) = api.session("aud").await;
    api.ok(
        Some(&admin),
        r#"mutation { addUser(email: "kim@firm.example", name: "Kim Li", role: STAFF, userId: "kim") {
            userErrors { code } } }"#,
        json!({}),
    )
    .await;

    // Admins may not read the access records; the refusal is itself recorded.
    let code = api
        .refused(
            Some(&admin),
            "{ accessRecords { entries { target } } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let code = api
        .refused(
            Some(&admin),
            "{ accessReview { user { userId } } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");

    let page = r#"query($p: String, $d: AccessDecisionValue, $b: Int, $n: Int) {
        accessRecords(principal: $p, decision: $d, before: $b, first: $n) {
            entries { position entry recordedAt principal session operation requestId
                      clientAddress matter target targetId fields decision reason }
            nextBefore } }"#;
    let denied = api
        .ok(
            Some(&auditor),
            page,
            json!({"p": "user:ada", "d": "DENIED", "n": 10}),
        )
        .await;
    let entries = denied["accessRecords"]["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["target"] == json!("capability")
            && e["targetId"] == json!("read_access_records")
            && e["reason"] == json!("role")),
        "{denied}"
    );
    assert!(entries.iter().all(|e| e["decision"] == json!("DENIED")));
    assert!(entries.iter().all(|e| e["principal"] == json!("user:ada")));
    let entry = &entries[0];
    assert!(entry["session"].is_string(), "the session's public id");
    assert!(
        entry["clientAddress"]
            .as_str()
            .unwrap()
            .starts_with("10.0.")
    );

    // Paging by position, newest first.
    let one = api
        .ok(Some(&auditor), page, json!({"p": "user:ada", "n": 1}))
        .await;
    let before = one["accessRecords"]["nextBefore"].as_u64().unwrap();
    let first_position = one["accessRecords"]["entries"][0]["position"]
        .as_u64()
        .unwrap();
    assert_eq!(before, first_position);
    let two = api
        .ok(
            Some(&auditor),
            page,
            json!({"p": "user:ada", "n": 1, "b": before}),
        )
        .await;
    assert!(
        two["accessRecords"]["entries"][0]["position"]
            .as_u64()
            .unwrap()
            < before
    );

    // Out-of-range pages are refused.
    let code = api.refused(Some(&auditor), page, json!({"n": 501})).await;
    assert_eq!(code, "INVALID_ARGUMENT");

    // Reading the records is recorded too.
    let mine = api
        .ok(Some(&auditor), page, json!({"p": "user:aud", "n": 100}))
        .await;
    let entries = mine["accessRecords"]["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["target"] == json!("access_records")
                && e["targetId"] == json!("user:ada")
                && e["reason"] == json!("read_access_records"))
    );
}

async fn the_access_review_lists_reachable_matters_with_reasons_and_walls(backend: Backend) {
    let api = Api::new(backend).await;
    let (_, _, admin) = bootstrap_admin(&api).await;
    api.enrol("pat", Role::Partner, &["employment"]).await;
    api.enrol("ann", Role::Attorney, &[]).await;
    api.enrol("par", Role::Paralegal, &[]).await;
    api.enrol("aud", Role::Auditor, &[]).await;
    let (_, auditor) = api.session("aud").await;
    api.open_matter("2026-0001", "pat", "employment").await;
    api.open_matter("2026-0002", "ann", "employment").await;
    api.open_matter("2026-0003", "ann", "property").await;
    let policy = api
        .ok(
            Some(&admin),
            r#"mutation { setFirmPolicy(partnerAccess: PRACTICE_AREAS, breakGlassMinutes: 60) { userErrors { code } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(policy["setFirmPolicy"]["userErrors"], json!([]));
    let wall = api
        .ok(
            Some(&admin),
            r#"mutation { erectWall(input: {name: "Brightline", reason: "former client",
                screenedUsers: ["pat"], matters: ["2026-0002"]}) { wallId userErrors { code } } }"#,
            json!({}),
        )
        .await;
    let wall_id = wall["erectWall"]["wallId"].as_str().unwrap().to_owned();

    let review = api
        .ok(
            Some(&auditor),
            r#"{ accessReview { user { userId role status lastLoginAt } idle walls { wallId name }
                matters { number reach reason privileged canChange } mattersTruncated } }"#,
            json!({}),
        )
        .await;
    let users = review["accessReview"].as_array().unwrap();
    let of = |id: &str| {
        users
            .iter()
            .find(|u| u["user"]["userId"] == json!(id))
            .unwrap()
            .clone()
    };
    let pat = of("pat");
    assert_eq!(pat["user"]["role"], json!("PARTNER"));
    assert_eq!(pat["idle"], json!(false));
    assert_eq!(
        pat["walls"],
        json!([{"wallId": wall_id, "name": "Brightline"}])
    );
    assert_eq!(
        pat["matters"],
        json!([{"number": "2026-0001", "reach": "CONTENT", "reason": "team_member",
                "privileged": true, "canChange": true}]),
        "2026-0002 is walled, 2026-0003 is outside pat's practice areas"
    );
    assert_eq!(
        of("ann")["matters"],
        json!([
            {"number": "2026-0002", "reach": "CONTENT", "reason": "team_member",
             "privileged": true, "canChange": true},
            {"number": "2026-0003", "reach": "CONTENT", "reason": "team_member",
             "privileged": true, "canChange": true},
        ])
    );
    assert_eq!(of("par")["matters"], json!([]));
    assert_eq!(of("ada")["matters"], json!([]), "duties are separated");
    let aud = of("aud");
    assert_eq!(aud["matters"].as_array().unwrap().len(), 3);
    assert!(
        aud["matters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["reach"] == json!("METADATA") && m["reason"] == json!("auditor"))
    );
    assert_eq!(aud["mattersTruncated"], json!(false));

    // A partner-wide policy widens pat's reach at once (the wall still holds).
    api.ok(
        Some(&admin),
        r#"mutation { setFirmPolicy(partnerAccess: FIRM, breakGlassMinutes: 60) { userErrors { code } } }"#,
        json!({}),
    )
    .await;
    let review = api
        .ok(
            Some(&auditor),
            "{ accessReview { user { userId } matters { number reason } } }",
            json!({}),
        )
        .await;
    let pat = review["accessReview"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"]["userId"] == json!("pat"))
        .unwrap()
        .clone();
    assert_eq!(
        pat["matters"],
        json!([{"number": "2026-0001", "reason": "team_member"},
               {"number": "2026-0003", "reason": "partner_policy"}])
    );

    // The export holds the review and the period's access records in one document.
    let export = api
        .ok(
            Some(&auditor),
            r#"{ accessReviewExport(from: "2000-01-01T00:00:00Z", to: "2999-01-01T00:00:00Z") }"#,
            json!({}),
        )
        .await;
    let document = &export["accessReviewExport"];
    assert_eq!(document["format"], json!("docket.access_review.v1"));
    assert_eq!(document["generatedBy"], json!("user:aud"));
    assert_eq!(document["users"].as_array().unwrap().len(), 5);
    assert_eq!(document["firmPolicy"]["partnerAccess"], json!("FIRM"));
    assert_eq!(document["walls"][0]["wallId"], json!(wall_id));
    let records = document["accessRecords"]["entries"].as_array().unwrap();
    assert!(
        records
            .iter()
            .any(|e| e["target"] == json!("access_review"))
    );
    assert_eq!(document["accessRecords"]["truncated"], json!(false));

    // Reading the review is recorded.
    let mine = api
        .ok(
            Some(&auditor),
            r#"{ accessRecords(principal: "user:aud") { entries { target reason } } }"#,
            json!({}),
        )
        .await;
    assert!(mine["accessRecords"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["target"] == json!("access_review") && e["reason"] == json!("access_review")));
}

async fn break_glass_opens_a_matter_for_a_while_unless_walled(backend: Backend) {
    let api = Api::new(backend).await;
    let (_, _, admin) = bootstrap_admin(&api).await;
    api.enrol("ann", Role::Attorney, &[]).await;
    api.enrol("par", Role::Paralegal, &[]).await;
    api.enrol("aud", Role::Auditor, &[]).await;
    let (_, paralegal) = api.session("par").await;
    let (_, auditor) = api.session("aud").await;
    api.open_matter("2026-0001", "ann", "employment").await;
    api.open_matter("2026-0002", "ann", "employment").await;
    api.ok(
        Some(&admin),
        r#"mutation { erectWall(input: {name: "W", reason: "conflict", screenedUsers: ["par"],
            matters: ["2026-0002"]}) { userErrors { code } } }"#,
        json!({}),
    )
    .await;
    let glass = r#"mutation($n: String!, $r: String!) { breakGlass(matterNumber: $n, reason: $r) {
        matterNumber expiresAt userErrors { field code message } } }"#;
    let read = r#"query($n: String!) { matter(number: $n) { number title } }"#;
    let reason = "court deadline today, attorney unreachable";

    let before = api
        .ok(Some(&paralegal), read, json!({"n": "2026-0001"}))
        .await;
    assert_eq!(before["matter"], Value::Null);

    // A missing matter and a walled one are answered alike.
    let missing = api
        .ok(
            Some(&paralegal),
            glass,
            json!({"n": "2026-0099", "r": reason}),
        )
        .await;
    let walled = api
        .ok(
            Some(&paralegal),
            glass,
            json!({"n": "2026-0002", "r": reason}),
        )
        .await;
    assert_eq!(
        missing["breakGlass"]["userErrors"][0]["code"],
        json!("MATTER_NOT_FOUND")
    );
    assert_eq!(
        missing["breakGlass"]["userErrors"],
        walled["breakGlass"]["userErrors"]
    );

    // A reason is required; then the matter opens, read-only, until the time given.
    let short = api
        .ok(
            Some(&paralegal),
            glass,
            json!({"n": "2026-0001", "r": "urgent"}),
        )
        .await;
    assert_eq!(
        short["breakGlass"]["userErrors"][0]["code"],
        json!("INVALID_INPUT")
    );
    let opened = api
        .ok(
            Some(&paralegal),
            glass,
            json!({"n": "2026-0001", "r": reason}),
        )
        .await;
    let payload = &opened["breakGlass"];
    assert_eq!(payload["userErrors"], json!([]));
    assert_eq!(payload["matterNumber"], json!("2026-0001"));
    let expires =
        chrono::DateTime::parse_from_rfc3339(payload["expiresAt"].as_str().unwrap()).unwrap();
    let minutes = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    assert!(
        (58..=60).contains(&minutes),
        "the firm's default hour: {minutes}"
    );
    let after = api
        .ok(Some(&paralegal), read, json!({"n": "2026-0001"}))
        .await;
    assert_eq!(after["matter"]["title"], json!("Matter 2026-0001"));
    assert!(
        api.directory_events()
            .await
            .contains(&"access.break_glass_opened".to_owned())
    );

    // Admins cannot break glass.
    let code = api
        .refused(Some(&admin), glass, json!({"n": "2026-0001", "r": reason}))
        .await;
    assert_eq!(code, "FORBIDDEN");

    // The opening is recorded with its alert; the refusals with their reasons.
    let records = api
        .ok(
            Some(&auditor),
            r#"{ accessRecords(principal: "user:par", first: 100) { entries { matter target targetId decision reason } } }"#,
            json!({}),
        )
        .await;
    let entries = records["accessRecords"]["entries"].as_array().unwrap();
    let has = |matter: &str, target: &str, decision: &str, reason: &str| {
        entries.iter().any(|e| {
            e["matter"] == json!(matter)
                && e["target"] == json!(target)
                && e["decision"] == json!(decision)
                && e["reason"] == json!(reason)
        })
    };
    assert!(has("2026-0001", "alert", "ALLOWED", "break_glass"));
    assert!(has("2026-0001", "matter", "ALLOWED", "break_glass"));
    assert!(has("2026-0002", "matter", "DENIED", "walled"));
    assert!(has("2026-0099", "matter", "DENIED", "not_found"));
}

async fn logout_and_logout_everywhere_end_sessions_at_once(backend: Backend) {
    let api = Api::new(backend).await;
    let (_, _, admin) = bootstrap_admin(&api).await;
    let mut sam = api.enrol("sam", Role::Attorney, &[]).await;
    let (one, first) = api.session("sam").await;
    let (two, second) = api.session("sam").await;
    let (three, _) = api.session("sam").await;

    // logout ends this session only, and clears the cookie.
    let caller = api.caller(Some(&first));
    let out = api
        .run_with(&caller, "mutation { logout { ok } }", json!({}))
        .await;
    assert_eq!(out["data"]["logout"]["ok"], json!(true));
    assert!(matches!(caller.take_cookie(), Some(CookieChange::Clear)));
    assert!(!api.authenticates(&one).await);
    assert!(api.authenticates(&two).await);

    // logoutEverywhere ends all of them at once.
    let caller = api.caller(Some(&second));
    let everywhere = api
        .run_with(
            &caller,
            "mutation { logoutEverywhere { revoked userErrors { code } } }",
            json!({}),
        )
        .await;
    assert_eq!(everywhere["data"]["logoutEverywhere"]["revoked"], json!(2));
    assert!(matches!(caller.take_cookie(), Some(CookieChange::Clear)));
    assert!(!api.authenticates(&two).await);
    assert!(!api.authenticates(&three).await);

    // changePassword needs the current password and a code, then ends every session.
    let (four, fourth) = api.session("sam").await;
    let change = r#"mutation($c: String!, $n: String!, $t: String!) {
        changePassword(currentPassword: $c, newPassword: $n, totpCode: $t) { ok userErrors { code } } }"#;
    let new_password = "Juniper-Obsidian-Lantern-42";
    let wrong = api
        .ok(
            Some(&fourth),
            change,
            json!({"c": "Not-The-Password-At-All", "n": new_password, "t": sam.totp.wrong_code()}),
        )
        .await;
    assert_eq!(
        wrong["changePassword"]["userErrors"][0]["code"],
        json!("INVALID_CREDENTIALS")
    );
    assert!(api.authenticates(&four).await);
    let code = sam.totp.code().await;
    let changed = api
        .ok(
            Some(&fourth),
            change,
            json!({"c": PASSWORD, "n": new_password, "t": code}),
        )
        .await;
    assert_eq!(changed["changePassword"]["ok"], json!(true));
    assert!(!api.authenticates(&four).await);
    let login = api
        .ok(
            None,
            LOGIN_RECOVERY,
            json!({"e": sam.email, "p": new_password, "c": sam.recovery[0]}),
        )
        .await;
    let token = login["login"]["session"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(api.authenticates(&token).await);

    // An admin ends someone else's sessions at once.
    let revoked = api
        .ok(
            Some(&admin),
            r#"mutation { revokeSessions(principal: "user:sam") { revoked userErrors { code } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(revoked["revokeSessions"]["revoked"], json!(1));
    assert!(!api.authenticates(&token).await);
    assert_eq!(sam.user_id, "sam");
}

on_both_backends!(
    enrolment_sets_up_password_authenticator_and_recovery_codes,
    login_takes_a_totp_or_a_recovery_code_and_refuses_alike,
    administration_needs_the_role_and_a_recent_step_up,
    admin_changes_are_events_and_access_records,
    auditors_query_access_records_and_admins_cannot,
    the_access_review_lists_reachable_matters_with_reasons_and_walls,
    break_glass_opens_a_matter_for_a_while_unless_walled,
    logout_and_logout_everywhere_end_sessions_at_once,
);
