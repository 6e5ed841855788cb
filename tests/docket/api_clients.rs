//! Scoped API clients end to end, over HTTP on both backends: which matters a client reads
//! (its teams', all, or listed; walls still win), which mutations it may call, expiry of
//! clients and keys, key rotation with a grace period, revocation, `Identity::still_valid`,
//! the rate limit (429 with its headers, then allowed again), and the access record every call
//! leaves. The last test checks the SQL scope against the policy on generated directories.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use base64::Engine;
use docket::access::index::AccessQuery;
use docket::app::Docket;
use docket::domain::identity::Role;
use docket::identity::admin::WallSpec;
use docket::log::Actor;
use docket::server::{Components, http_server};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::on_both_backends;
use crate::support::{Backend, SignedIn, TestLog, sign_in};

const TEAM: &str = "2026-0201";
const OTHER: &str = "2026-0202";
const THIRD: &str = "2026-0203";

on_both_backends!(
    scopes_decide_which_matters_a_client_reads_and_walls_still_win,
    mutations_outside_the_commands_are_forbidden,
    scopes_are_set_by_admins_and_checked,
    expired_clients_and_keys_prove_nobody,
    a_rotated_key_works_for_its_grace_period_only,
    still_valid_follows_revocations_logouts_and_disabled_users,
    over_the_rate_limit_a_client_gets_429_until_the_window_passes,
    every_call_of_a_client_is_an_access_record,
);

// ---- a small HTTP/1.1 client ----------------------------------------------------------------

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(found, _)| found == name)
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn code(&self) -> Value {
        self.json()["errors"][0]["extensions"]["code"].clone()
    }
}

async fn send(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Reply> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other("no status"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Ok(Reply {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    })
}

// ---- the server -----------------------------------------------------------------------------

/// Docket on 127.0.0.1 with three matters of partner `p.lead` and an admin `ad.min`.
struct Served {
    _test: TestLog,
    docket: Docket,
    address: SocketAddr,
    handle: ServerHandle,
    server: JoinHandle<io::Result<()>>,
    projecting: JoinHandle<()>,
    partner: SignedIn,
    admin: SignedIn,
}

impl Served {
    async fn start(backend: Backend) -> Served {
        let test = TestLog::new(backend).await;
        let docket = test.open_docket(Duration::from_secs(5)).await;
        let projecting = docket.projector.spawn();
        let mut attempts = 0;
        let (address, server) = loop {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .unwrap()
                .port();
            let address = SocketAddr::from(([127, 0, 0, 1], port));
            let components = Components {
                log: docket.log.clone(),
                projector: docket.projector.clone(),
                service: docket.service.clone(),
                db: docket.projector.db().clone(),
                persisted: Default::default(),
                identity: docket.identity.clone(),
                access: docket.access.clone(),
                checkpoints: docket.checkpoints.clone(),
                monitoring: Default::default(),
                integrations: docket.integrations.clone(),
                development: false,
                unrecorded_principal_for_benchmarks: None,
            };
            match http_server(components, address, Some(1)) {
                Ok(server) => break (address, server),
                Err(error) if error.kind() == io::ErrorKind::AddrInUse && attempts < 5 => {
                    attempts += 1;
                }
                Err(error) => panic!("the server binds: {error}"),
            }
        };
        let handle = server.handle();
        let server = tokio::spawn(server);
        let partner = sign_in(&docket.identity, "p.lead", Role::Partner).await;
        let admin = sign_in(&docket.identity, "ad.min", Role::Admin).await;
        let served = Served {
            _test: test,
            docket,
            address,
            handle,
            server,
            projecting,
            partner,
            admin,
        };
        for number in [TEAM, OTHER, THIRD] {
            let opened = served
                .ok(
                    &served.partner.token,
                    &format!(
                        r#"mutation {{ openMatter(input: {{matterNumber: "{number}",
                        title: "Matter {number}", practiceArea: "employment",
                        responsibleAttorney: "p.lead"}}) {{ userErrors {{ code }} }} }}"#
                    ),
                )
                .await;
            assert_eq!(opened["openMatter"]["userErrors"], json!([]));
        }
        served
    }

    async fn stop(self) {
        self.handle.stop(false).await;
        self.server.await.unwrap().unwrap();
        self.projecting.abort();
    }

    async fn post(&self, credential: &str, query: &str) -> Reply {
        self.post_body(credential, &json!({ "query": query })).await
    }

    async fn post_body(&self, credential: &str, body: &Value) -> Reply {
        let bearer = format!("Bearer {credential}");
        send(
            self.address,
            "POST",
            "/graphql",
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer),
            ],
            body.to_string().as_bytes(),
        )
        .await
        .unwrap()
    }

    async fn get(&self, credential: &str, path: &str) -> Reply {
        let bearer = format!("Bearer {credential}");
        send(
            self.address,
            "GET",
            path,
            &[("authorization", &bearer)],
            b"",
        )
        .await
        .unwrap()
    }

    /// `data` of a request that must succeed without errors.
    async fn ok(&self, credential: &str, query: &str) -> Value {
        let reply = self.post(credential, query).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let response = reply.json();
        assert!(response.get("errors").is_none(), "{query}: {response}");
        response["data"].clone()
    }

    async fn admin(&self, query: &str) -> Value {
        self.ok(&self.admin.token, query).await
    }

    /// Registers `client` through the API (with `scopes`, a GraphQL input literal, if given),
    /// puts it on the team of [`TEAM`] and returns the text of a key issued to it.
    async fn client(&self, client: &str, scopes: Option<&str>) -> String {
        let scopes = scopes.map_or(String::new(), |scopes| format!(", scopes: {scopes}"));
        let registered = self
            .admin(&format!(
                r#"mutation {{ registerApiClient(clientId: "{client}", name: "Sync"{scopes}) {{
                client {{ clientId }} userErrors {{ code field message }} }} }}"#
            ))
            .await;
        assert_eq!(registered["registerApiClient"]["userErrors"], json!([]));
        let added = self
            .ok(
                &self.partner.token,
                &format!(
                    r#"mutation {{ addTeamMember(number: "{TEAM}", userId: "{client}",
                    capacity: STAFF) {{ userErrors {{ code }} }} }}"#
                ),
            )
            .await;
        assert_eq!(added["addTeamMember"]["userErrors"], json!([]));
        let issued = self
            .admin(&format!(
                r#"mutation {{ issueApiKey(clientId: "{client}") {{ key {{ key }} userErrors {{ code }} }} }}"#
            ))
            .await;
        issued["issueApiKey"]["key"]["key"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Sets the scopes of `client` (a GraphQL input literal) and returns the payload.
    async fn set_scopes(&self, client: &str, scopes: &str) -> Value {
        self.admin(&format!(
            r#"mutation {{ setApiClientScopes(clientId: "{client}", scopes: {scopes}) {{
            client {{ scopes {{ matters matterNumbers commands expiresAt rateLimit {{ requests perSeconds }} }} }}
            userErrors {{ code field }} }} }}"#
        ))
        .await["setApiClientScopes"]
            .clone()
    }

    async fn head(&self) -> u64 {
        self.docket.log.head().await.unwrap().position
    }

    /// The matter numbers the key lists.
    async fn listed(&self, key: &str) -> Vec<String> {
        let data = self
            .ok(key, "{ matters(first: 50) { nodes { number } } }")
            .await;
        let mut numbers: Vec<String> = data["matters"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|node| node["number"].as_str().unwrap().to_owned())
            .collect();
        numbers.sort();
        numbers
    }

    /// Whether the key reads the matter by number.
    async fn reads(&self, key: &str, number: &str) -> bool {
        let data = self
            .ok(
                key,
                &format!(r#"{{ matter(number: "{number}") {{ title }} }}"#),
            )
            .await;
        !data["matter"].is_null()
    }

    async fn records_of(&self, principal: &str) -> Vec<docket::access::index::AccessRow> {
        self.docket
            .access
            .query(&AccessQuery {
                principal: Some(principal.to_owned()),
                ..AccessQuery::latest(500)
            })
            .await
            .unwrap()
    }
}

fn record_time(number: &str) -> String {
    format!(
        r#"mutation {{ recordTime(number: "{number}", input: {{workedOn: "2026-01-05",
        minutes: 30, description: "Synchronised"}}) {{ userErrors {{ code }} }} }}"#
    )
}

fn add_note(number: &str, privileged: bool) -> String {
    format!(
        r#"mutation {{ addNote(number: "{number}", body: "From the DMS",
        privileged: {privileged}) {{ userErrors {{ code }} }} }}"#
    )
}

// ---- the tests ------------------------------------------------------------------------------

async fn scopes_decide_which_matters_a_client_reads_and_walls_still_win(backend: Backend) {
    let served = Served::start(backend).await;
    let key = served.client("sync", None).await;
    // By default: the matters whose team names the client.
    assert_eq!(served.listed(&key).await, vec![TEAM]);
    assert!(served.reads(&key, TEAM).await);
    assert!(!served.reads(&key, OTHER).await);

    // All: every matter, read-only as to privileged notes.
    served.set_scopes("sync", "{matters: ALL}").await;
    assert_eq!(served.listed(&key).await, vec![TEAM, OTHER, THIRD]);
    served
        .ok(&served.partner.token, &add_note(OTHER, true))
        .await;
    served
        .ok(&served.partner.token, &add_note(OTHER, false))
        .await;
    let notes = served
        .ok(
            &key,
            &format!(r#"{{ matter(number: "{OTHER}") {{ notes {{ privileged }} }} }}"#),
        )
        .await;
    assert_eq!(
        notes["matter"]["notes"],
        json!([{"privileged": false}]),
        "no privileged note reaches an API client"
    );

    // A wall screening the client wins over its reach, at once.
    served
        .docket
        .identity
        .erect_wall(
            &Actor::system(),
            None,
            &WallSpec {
                name: "Other".into(),
                reason: "the integration serves the other side".into(),
                screened_users: vec!["sync".into()],
                matters: vec![OTHER.into()],
                ..WallSpec::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(served.listed(&key).await, vec![TEAM, THIRD]);
    assert!(!served.reads(&key, OTHER).await);

    // Listed: those matters only, the client's own team's not included, walled ones still out.
    let set = served
        .set_scopes(
            "sync",
            &format!(r#"{{matters: LISTED, matterNumbers: ["{OTHER}", "{THIRD}"]}}"#),
        )
        .await;
    assert_eq!(set["userErrors"], json!([]));
    assert_eq!(
        set["client"]["scopes"]["matterNumbers"],
        json!([OTHER, THIRD])
    );
    assert_eq!(served.listed(&key).await, vec![THIRD]);
    assert!(
        !served.reads(&key, TEAM).await,
        "a listed reach ignores teams"
    );
    assert!(!served.reads(&key, OTHER).await, "the wall still wins");
    assert!(served.reads(&key, THIRD).await);

    // Back to the team.
    served.set_scopes("sync", "{matters: TEAM}").await;
    assert_eq!(served.listed(&key).await, vec![TEAM]);
    served.stop().await;
}

async fn mutations_outside_the_commands_are_forbidden(backend: Backend) {
    let served = Served::start(backend).await;
    let key = served.client("sync", None).await;
    // The defaults: time and documents on the client's teams.
    let recorded = served.ok(&key, &record_time(TEAM)).await;
    assert_eq!(recorded["recordTime"]["userErrors"], json!([]));
    let content = base64::engine::general_purpose::STANDARD.encode(b"engagement letter");
    let added = served
        .ok(
            &key,
            &format!(
                r#"mutation {{ addDocument(number: "{TEAM}", input: {{documentType: "letter",
                title: "Engagement", mediaType: "text/plain", contentBase64: "{content}"}})
                {{ userErrors {{ code }} }} }}"#
            ),
        )
        .await;
    assert_eq!(added["addDocument"]["userErrors"], json!([]));
    // Anything else is refused before it runs, whatever the policy would say.
    let head = served.head().await;
    for query in [
        add_note(TEAM, false),
        format!(
            r#"mutation {{ createTask(number: "{TEAM}", title: "Call") {{ userErrors {{ code }} }} }}"#
        ),
        format!(
            r#"mutation {{ a: recordTime(number: "{TEAM}", input: {{workedOn: "2026-01-05", minutes: 5, description: "x"}}) {{ userErrors {{ code }} }} b: addTeamMember(number: "{TEAM}", userId: "p.lead", capacity: STAFF) {{ userErrors {{ code }} }} }}"#
        ),
        r#"mutation { logout { userErrors { code } } }"#.to_owned(),
    ] {
        let reply = served.post(&key, &query).await;
        assert_eq!(reply.status, 403, "{query}");
        assert_eq!(reply.code(), json!("FORBIDDEN"), "{query}");
    }
    assert_eq!(served.head().await, head, "nothing was appended");
    // A matter off the client's teams is still missing to it.
    let off = served.ok(&key, &record_time(OTHER)).await;
    assert_eq!(
        off["recordTime"]["userErrors"][0]["code"],
        json!("MATTER_NOT_FOUND")
    );

    // Granted notes: ordinary ones only, never privileged; time is no longer granted.
    served
        .set_scopes("sync", r#"{commands: ["addNote"]}"#)
        .await;
    let note = served.ok(&key, &add_note(TEAM, false)).await;
    assert_eq!(note["addNote"]["userErrors"], json!([]));
    let privileged = served.post(&key, &add_note(TEAM, true)).await.json();
    assert_eq!(
        privileged["errors"][0]["extensions"]["code"],
        json!("FORBIDDEN")
    );
    assert_eq!(served.post(&key, &record_time(TEAM)).await.status, 403);

    // A reach of all matters lets the client make its granted changes off its teams.
    served
        .set_scopes("sync", r#"{matters: ALL, commands: ["recordTime"]}"#)
        .await;
    let widened = served.ok(&key, &record_time(OTHER)).await;
    assert_eq!(widened["recordTime"]["userErrors"], json!([]));
    // A read-only client calls no mutation at all.
    served.set_scopes("sync", "{commands: []}").await;
    assert_eq!(served.post(&key, &record_time(TEAM)).await.status, 403);
    // Queries are not commands.
    assert!(served.reads(&key, TEAM).await);
    served.stop().await;
}

async fn scopes_are_set_by_admins_and_checked(backend: Backend) {
    let served = Served::start(backend).await;
    served
        .client(
            "dms",
            Some(r#"{matters: LISTED, matterNumbers: ["2026-0203"], commands: ["addDocument", "createTask"], rateLimit: {requests: 10, perSeconds: 5}}"#),
        )
        .await;
    let listed = served
        .admin("{ apiClients { clientId active scopes { matters matterNumbers commands expiresAt rateLimit { requests perSeconds } } keys { keyId expiresAt replacedBy } } }")
        .await;
    assert_eq!(
        listed["apiClients"][0]["scopes"],
        json!({"matters": "LISTED", "matterNumbers": [THIRD], "commands": ["addDocument", "createTask"],
               "expiresAt": null, "rateLimit": {"requests": 10, "perSeconds": 5}})
    );
    assert_eq!(listed["apiClients"][0]["active"], json!(true));
    assert_eq!(
        listed["apiClients"][0]["keys"][0]["replacedBy"],
        json!(null)
    );
    // The defaults, when registered without scopes.
    served.client("billing", None).await;
    let defaults = served.set_scopes("billing", "{}").await;
    assert_eq!(
        defaults["client"]["scopes"],
        json!({"matters": "TEAM", "matterNumbers": [], "commands": ["addDocument", "addDocumentVersion", "recordTime"],
               "expiresAt": null, "rateLimit": {"requests": 600, "perSeconds": 60}})
    );
    // What cannot be granted, or makes no sense, is refused with the field concerned.
    for (scopes, field) in [
        (r#"{commands: ["addTeamMember"]}"#, "commands"),
        (r#"{commands: ["openMatter"]}"#, "commands"),
        ("{matters: LISTED}", "matterNumbers"),
        (
            r#"{matters: ALL, matterNumbers: ["2026-0201"]}"#,
            "matterNumbers",
        ),
        ("{rateLimit: {requests: 0, perSeconds: 60}}", "rateLimit"),
        (
            "{rateLimit: {requests: 10, perSeconds: 86401}}",
            "rateLimit",
        ),
        (r#"{expiresAt: "2001-01-01T00:00:00Z"}"#, "expiresAt"),
        (r#"{expiresAt: "tomorrow"}"#, "expiresAt"),
    ] {
        let refused = served.set_scopes("billing", scopes).await;
        assert_eq!(
            refused["userErrors"][0]["code"],
            json!("INVALID_INPUT"),
            "{scopes}"
        );
        assert_eq!(refused["userErrors"][0]["field"], json!(field), "{scopes}");
    }
    let missing = served.set_scopes("nobody", "{}").await;
    assert_eq!(missing["userErrors"][0]["code"], json!("NOT_FOUND"));
    // Only admins set scopes; API clients and partners are refused.
    let key = served.client("intruder", None).await;
    for credential in [&key, &served.partner.token] {
        let reply = served
            .post(credential, r#"mutation { setApiClientScopes(clientId: "intruder", scopes: {matters: ALL}) { userErrors { code } } }"#)
            .await;
        assert_ne!(reply.json()["errors"], Value::Null);
    }
    // Every change is an event on the directory stream.
    let events = served
        .docket
        .log
        .store()
        .read_stream_page("directory", 1, 10_000)
        .await
        .unwrap();
    let scopes_set = events
        .iter()
        .filter(|event| event.event_type == "api_client.scopes_set")
        .count();
    assert_eq!(
        scopes_set, 3,
        "one per registration; the same scopes again add nothing"
    );
    served.set_scopes("billing", "{matters: ALL}").await;
    let events = served
        .docket
        .log
        .store()
        .read_stream_page("directory", 1, 10_000)
        .await
        .unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.event_type, "api_client.scopes_set");
    assert_eq!(last.actor, "user:ad.min");
    served.stop().await;
}

async fn expired_clients_and_keys_prove_nobody(backend: Backend) {
    let served = Served::start(backend).await;
    let identity = &served.docket.identity;
    let expiry = chrono::Utc::now() + chrono::Duration::seconds(4);
    let soon = expiry.to_rfc3339();
    // A client that expires, with a key that does not.
    let key = served
        .client("temp", Some(&format!(r#"{{expiresAt: "{soon}"}}"#)))
        .await;
    // A client that does not expire, with a key that does.
    served.client("steady", None).await;
    let short = identity
        .issue_api_key(&Actor::system(), None, "steady", Some(expiry))
        .await
        .unwrap();
    let temp = identity.authenticate(&key).await.unwrap().unwrap();
    let steady = identity.authenticate(&short.text).await.unwrap().unwrap();
    assert_eq!(steady.key_id.as_deref(), Some(short.key_id.as_str()));
    assert!(identity.still_valid(&temp).await.unwrap());
    assert!(identity.still_valid(&steady).await.unwrap());
    assert!(served.reads(&key, TEAM).await);
    let wait = (expiry - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(300)).await;
    assert!(identity.authenticate(&key).await.unwrap().is_none());
    assert!(identity.authenticate(&short.text).await.unwrap().is_none());
    assert!(!identity.still_valid(&temp).await.unwrap());
    assert!(!identity.still_valid(&steady).await.unwrap());
    assert_eq!(served.post(&key, "{ __typename }").await.status, 401);
    // An expired client is inactive to the policy, whatever principal it is given as.
    let directory = identity.directory();
    assert!(docket::access::policy::active_role(&directory, &temp).is_err());
    let listed = served.admin(r#"{ apiClients { clientId active } }"#).await;
    assert!(
        listed["apiClients"]
            .as_array()
            .unwrap()
            .contains(&json!({"clientId": "temp", "active": false}))
    );
    // Moving the expiry away brings the client back.
    served.set_scopes("temp", "{}").await;
    assert!(identity.authenticate(&key).await.unwrap().is_some());
    served.stop().await;
}

async fn a_rotated_key_works_for_its_grace_period_only(backend: Backend) {
    let served = Served::start(backend).await;
    let identity = &served.docket.identity;
    let first = served.client("sync", None).await;
    let first_id = identity
        .authenticate(&first)
        .await
        .unwrap()
        .unwrap()
        .key_id
        .unwrap();
    // With a grace period, both keys work and the old one's end is known.
    let rotated = served
        .admin(&format!(
            r#"mutation {{ rotateApiKey(keyId: "{first_id}", graceMinutes: 60) {{
            key {{ keyId clientId key }} replacedKeyId replacedKeyExpiresAt userErrors {{ code }} }} }}"#
        ))
        .await["rotateApiKey"]
        .clone();
    assert_eq!(rotated["userErrors"], json!([]));
    assert_eq!(rotated["key"]["clientId"], json!("sync"));
    assert_eq!(rotated["replacedKeyId"], json!(first_id));
    let second = rotated["key"]["key"].as_str().unwrap().to_owned();
    let second_id = rotated["key"]["keyId"].as_str().unwrap().to_owned();
    let ends =
        chrono::DateTime::parse_from_rfc3339(rotated["replacedKeyExpiresAt"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc);
    let grace = ends - chrono::Utc::now();
    assert!(grace > chrono::Duration::minutes(59) && grace <= chrono::Duration::minutes(60));
    assert!(served.reads(&first, TEAM).await);
    assert!(served.reads(&second, TEAM).await);
    let old = identity.authenticate(&first).await.unwrap().unwrap();
    assert!(identity.still_valid(&old).await.unwrap());
    // The directory knows the old key's end: past it, the key no longer works.
    let directory = identity.directory();
    let client = &directory.api_clients["sync"];
    assert_eq!(
        client.keys[&first_id].replaced_by.as_deref(),
        Some(second_id.as_str())
    );
    let after = docket::log::time::format_timestamp(ends + chrono::Duration::seconds(1));
    let before = docket::log::time::format_timestamp(ends - chrono::Duration::seconds(1));
    assert!(client.key_works_at(&first_id, &before));
    assert!(!client.key_works_at(&first_id, &after));
    assert!(client.key_works_at(&second_id, &after));
    // A key is replaced once.
    let again = served
        .admin(&format!(
            r#"mutation {{ rotateApiKey(keyId: "{first_id}", graceMinutes: 5) {{ userErrors {{ code field }} }} }}"#
        ))
        .await;
    assert_eq!(
        again["rotateApiKey"]["userErrors"][0]["field"],
        json!("keyId")
    );
    for grace in ["-1", "43201"] {
        let refused = served
            .post(
                &served.admin.token,
                &format!(r#"mutation {{ rotateApiKey(keyId: "{second_id}", graceMinutes: {grace}) {{ userErrors {{ code field }} }} }}"#),
            )
            .await
            .json();
        let rejected = refused["errors"].is_array()
            || refused["data"]["rotateApiKey"]["userErrors"][0]["field"] == json!("graceMinutes");
        assert!(rejected, "{grace}: {refused}");
    }
    // Without a grace period the old key stops at once, for requests and open subscriptions.
    let current = identity.authenticate(&second).await.unwrap().unwrap();
    let third = identity
        .rotate_api_key(&Actor::system(), None, &second_id, 0, None)
        .await
        .unwrap();
    assert!(identity.authenticate(&second).await.unwrap().is_none());
    assert!(!identity.still_valid(&current).await.unwrap());
    assert_eq!(served.post(&second, "{ __typename }").await.status, 401);
    assert!(served.reads(&third.issued.text, TEAM).await);
    // Both rotations are in the log.
    let events = served
        .docket
        .log
        .store()
        .read_stream_page("directory", 1, 10_000)
        .await
        .unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|event| event.event_type.as_str())
        .collect();
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "api_client.key_rotated")
            .count(),
        2
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "api_client.key_issued")
            .count(),
        3
    );
    served.stop().await;
}

async fn still_valid_follows_revocations_logouts_and_disabled_users(backend: Backend) {
    let served = Served::start(backend).await;
    let identity = &served.docket.identity;
    // An API key: valid until revoked, decided in memory.
    let key = served.client("sync", None).await;
    let principal = identity.authenticate(&key).await.unwrap().unwrap();
    let key_id = principal.key_id.clone().unwrap();
    assert!(identity.still_valid(&principal).await.unwrap());
    identity
        .revoke_api_key(&Actor::system(), None, &key_id, "incident")
        .await
        .unwrap();
    assert!(!identity.still_valid(&principal).await.unwrap());
    assert!(identity.authenticate(&key).await.unwrap().is_none());
    // Sessions: a logout, and a disabled user.
    let staff = sign_in(identity, "s.one", Role::Staff).await;
    let other = sign_in(identity, "s.two", Role::Staff).await;
    assert!(identity.still_valid(&staff.principal).await.unwrap());
    assert!(staff.principal.key_id.is_none());
    identity.logout(&staff.principal).await.unwrap();
    assert!(!identity.still_valid(&staff.principal).await.unwrap());
    assert!(identity.still_valid(&other.principal).await.unwrap());
    identity
        .disable_user(&Actor::system(), None, "s.two", "left the firm")
        .await
        .unwrap();
    assert!(!identity.still_valid(&other.principal).await.unwrap());
    // A session that went idle.
    let quick = docket::identity::Identity::open_with(
        served.docket.log.clone(),
        &served._test.options(),
        Default::default(),
        docket::identity::SessionPolicy {
            idle: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let session = quick
        .open_session("p.lead", None, chrono::Utc::now())
        .await
        .unwrap();
    let idle = quick.authenticate(&session.token).await.unwrap().unwrap();
    assert!(quick.still_valid(&idle).await.unwrap());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(!quick.still_valid(&idle).await.unwrap());
    served.stop().await;
}

async fn over_the_rate_limit_a_client_gets_429_until_the_window_passes(backend: Backend) {
    let served = Served::start(backend).await;
    let key = served
        .client("sync", Some("{rateLimit: {requests: 2, perSeconds: 2}}"))
        .await;
    let first = served.post(&key, "{ __typename }").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("ratelimit-limit"), Some("2"));
    assert_eq!(first.header("ratelimit-remaining"), Some("1"));
    assert_eq!(first.header("ratelimit-policy"), Some("2;w=2"));
    assert_eq!(first.header("ratelimit-reset"), Some("1"));
    assert!(first.header("retry-after").is_none());
    let second = served.post(&key, "{ __typename }").await;
    assert_eq!(second.header("ratelimit-remaining"), Some("0"));
    assert_eq!(second.header("ratelimit-reset"), Some("2"));
    let refused = served.post(&key, "{ __typename }").await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.code(), json!("RATE_LIMITED"));
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.header("ratelimit-remaining"), Some("0"));
    assert_eq!(refused.header("ratelimit-limit"), Some("2"));
    assert_eq!(
        refused.json()["errors"][0]["extensions"]["retryAfter"],
        json!(1)
    );
    // Downloads count against the same bucket.
    let download = served
        .get(
            &key,
            "/documents/00000000-0000-0000-0000-000000000000/versions/1/content",
        )
        .await;
    assert_eq!(download.status, 429);
    assert_eq!(download.header("retry-after"), Some("1"));
    // After waiting as told, the client is back.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let back = served.post(&key, "{ __typename }").await;
    assert_eq!(back.status, 200, "{}", String::from_utf8_lossy(&back.body));
    assert_eq!(back.header("ratelimit-remaining"), Some("0"));
    let download = served
        .get(
            &key,
            "/documents/00000000-0000-0000-0000-000000000000/versions/1/content",
        )
        .await;
    assert_eq!(download.status, 429, "the slot was used");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let missing = served
        .get(
            &key,
            "/documents/00000000-0000-0000-0000-000000000000/versions/1/content",
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("ratelimit-limit"), Some("2"));
    // Each client has a bucket of its own, and users have none.
    let other = served.client("other", None).await;
    let fresh = served.post(&other, "{ __typename }").await;
    assert_eq!(fresh.header("ratelimit-remaining"), Some("599"));
    assert_eq!(fresh.header("ratelimit-policy"), Some("600;w=60"));
    let user = served.post(&served.partner.token, "{ __typename }").await;
    assert_eq!(user.status, 200);
    assert!(user.header("ratelimit-limit").is_none());
    // The limiter is what the WebSocket path asks too.
    let limiter = served.docket.identity.rate_limits();
    let limit = docket::identity::scopes::RateLimit::new(1, 60).unwrap();
    assert!(limiter.check("ws-client", limit).is_ok());
    assert_eq!(
        limiter
            .check("ws-client", limit)
            .unwrap_err()
            .retry_after_secs,
        60
    );
    served.stop().await;
}

async fn every_call_of_a_client_is_an_access_record(backend: Backend) {
    let served = Served::start(backend).await;
    let key = served
        .client("sync", Some("{rateLimit: {requests: 5, perSeconds: 60}}"))
        .await;
    // A call that touches no matter, a named query, a refused mutation, a rate-limited call
    // and a download.
    served.ok(&key, "{ __typename }").await;
    let named = served
        .post_body(
            &key,
            &json!({"query": "query Sync($n: String!) { matter(number: $n) { title } }",
                    "operationName": "Sync", "variables": {"n": TEAM}}),
        )
        .await;
    assert_eq!(named.status, 200);
    assert_eq!(served.post(&key, &add_note(TEAM, false)).await.status, 403);
    let content = base64::engine::general_purpose::STANDARD.encode(b"minutes");
    let added = served
        .ok(
            &key,
            &format!(
                r#"mutation {{ addDocument(number: "{TEAM}", input: {{documentType: "note",
                title: "Minutes", mediaType: "text/plain", contentBase64: "{content}"}})
                {{ matter {{ documents {{ documentId }} }} userErrors {{ code }} }} }}"#
            ),
        )
        .await;
    let document = added["addDocument"]["matter"]["documents"][0]["documentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let download = served
        .get(&key, &format!("/documents/{document}/versions/1/content"))
        .await;
    assert_eq!(download.status, 200);
    assert_eq!(download.body, b"minutes");
    assert_eq!(served.post(&key, "{ __typename }").await.status, 429);

    let rows = served.records_of("api_client:sync").await;
    let calls: Vec<&docket::access::index::AccessRow> =
        rows.iter().filter(|row| row.target == "api_call").collect();
    let has = |operation: &str, reason: &str, field: &str| {
        calls.iter().any(|row| {
            row.operation == operation
                && row.reason == reason
                && row.fields.iter().any(|found| found == field)
        })
    };
    assert!(
        has(
            "graphql (unnamed) query __typename",
            "client_scope",
            "__typename"
        ),
        "{calls:#?}"
    );
    assert!(
        has("graphql Sync query matter", "client_scope", "matter"),
        "{calls:#?}"
    );
    assert!(
        has(
            "graphql (unnamed) mutation addNote",
            "command_not_granted",
            "addNote"
        ),
        "{calls:#?}"
    );
    assert!(
        has(
            "graphql (unnamed) mutation addDocument",
            "client_scope",
            "addDocument"
        ),
        "{calls:#?}"
    );
    assert!(
        has(
            "download document content",
            "client_scope",
            "matter.document_content"
        ),
        "{calls:#?}"
    );
    assert!(
        has(
            "graphql (unnamed) query __typename",
            "rate_limited",
            "__typename"
        ),
        "{calls:#?}"
    );
    let refused: Vec<_> = calls
        .iter()
        .filter(|row| row.reason == "command_not_granted" || row.reason == "rate_limited")
        .collect();
    assert!(
        refused
            .iter()
            .all(|row| row.decision == docket::access::record::Decision::Denied)
    );
    // The named query's matter decision is in the same record as its call.
    let sync = calls
        .iter()
        .find(|row| row.operation == "graphql Sync query matter")
        .unwrap();
    assert!(rows.iter().any(|row| row.position == sync.position
        && row.matter.as_deref() == Some(TEAM)
        && row.reason == "team_member"));
    // Records name operations and fields, never variables or values.
    for row in &rows {
        assert!(!row.operation.contains(TEAM), "{}", row.operation);
        assert!(!row.operation.contains("Minutes"), "{}", row.operation);
    }
    served.stop().await;
}

/// The SQL scope and the policy agree about API clients on generated firms: every reach (team,
/// all, listed), teams naming clients, walls screening clients by matter and by client, and
/// expired clients; users alongside them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_filter_agrees_with_the_policy_for_api_clients() {
    use docket::access::Principal;
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
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let members = ["u0", "u1", "k0", "k1", "k2", "k3"];
    let clients = ["c0", "c1"];
    let now = docket::log::time::now_timestamp();
    let (mut compared, mut seen_visible, mut seen_hidden) = (0, 0, 0);
    let mut reaches = std::collections::BTreeSet::new();
    for case in 0..80 {
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
                practice_area: "employment".to_owned(),
                firm_visible: next(4) == 0,
                ..MatterFacts::default()
            };
            for member in members {
                if next(3) == 0 {
                    matter.team.insert(member.to_owned(), "staff".to_owned());
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
            for member in matter.team.keys() {
                sqlx::query("INSERT INTO rm_matter_team VALUES ($1, $2, 'staff')")
                    .bind(&matter.number)
                    .bind(member)
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
        for user in ["u0", "u1"] {
            apply(
                &mut directory,
                DomainEvent::UserAdded(UserAdded {
                    user_id: user.to_owned(),
                    role: Role::ALL[next(6) as usize],
                    practice_areas: vec![],
                    private: UserDetails {
                        email: format!("{user}@x.example"),
                        name: user.to_owned(),
                    },
                }),
            );
            apply(
                &mut directory,
                DomainEvent::UserEnrolled(UserRef {
                    user_id: user.to_owned(),
                }),
            );
        }
        for client in ["k0", "k1", "k2", "k3"] {
            // One in eight is never registered; the others get random scopes.
            if next(8) == 0 {
                continue;
            }
            apply(
                &mut directory,
                DomainEvent::ApiClientRegistered(ApiClientRegistered {
                    client_id: client.to_owned(),
                    name: client.to_owned(),
                }),
            );
            if next(4) == 0 {
                continue; // the defaults of a client registered before scopes existed
            }
            let reach = [
                ApiClientReach::Team,
                ApiClientReach::All,
                ApiClientReach::Listed,
            ][next(3) as usize];
            let matters = match reach {
                ApiClientReach::Listed => {
                    (0..1 + next(4)).map(|_| format!("M-{}", next(8))).collect()
                }
                _ => vec![],
            };
            let expires_at = match next(5) {
                0 => Some("2001-01-01T00:00:00.000000Z".to_owned()),
                1 => Some("2999-01-01T00:00:00.000000Z".to_owned()),
                _ => None,
            };
            apply(
                &mut directory,
                DomainEvent::ApiClientScopesSet(ApiClientScopesSet {
                    client_id: client.to_owned(),
                    reach,
                    matters,
                    commands: vec!["recordTime".into()],
                    expires_at,
                    rate_limit: ApiRateLimit {
                        requests: 10,
                        per_seconds: 10,
                    },
                    alerts: next(2) == 0,
                }),
            );
        }
        for w in 0..next(3) {
            apply(
                &mut directory,
                DomainEvent::WallErected(WallErected {
                    wall_id: format!("w{w}"),
                    name: "w".into(),
                    reason: "r".into(),
                    screened_users: vec![members[next(6) as usize].to_owned()],
                    screened_groups: vec![],
                    matters: vec![format!("M-{}", next(8))],
                    clients: if next(2) == 0 {
                        vec![clients[next(2) as usize].to_owned()]
                    } else {
                        vec![]
                    },
                }),
            );
        }
        for member in members {
            let principal = if member.starts_with('k') {
                if let Some(client) = directory.api_clients.get(member) {
                    reaches.insert(
                        format!("{:?}", client.scopes.matters)
                            .chars()
                            .take(4)
                            .collect::<String>(),
                    );
                }
                Principal::api_client(member).unwrap()
            } else {
                Principal::user(member).unwrap()
            };
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
            assert_eq!(listed, decided, "case {case}, {member}: {directory:?}");
            compared += 1;
            seen_visible += listed.len();
            seen_hidden += facts.len() - listed.len();
        }
    }
    assert_eq!(compared, 80 * members.len());
    assert!(
        seen_visible > 100 && seen_hidden > 100,
        "{seen_visible} visible, {seen_hidden} hidden"
    );
    assert_eq!(reaches.len(), 3, "every reach was generated: {reaches:?}");
}
