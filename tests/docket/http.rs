//! The HTTP server end to end: `docket::server::http_server` on a real socket, spoken to by a
//! tiny HTTP/1.1 client, on both backends.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use base64::Engine;
use docket::api::graphql::MAX_BODY_BYTES;
use docket::api::graphql::persisted::{PersistedQueries, sha256_hex};
use docket::app::Docket;
use docket::log::Event;
use docket::server::{Components, http_server};
use futures::TryStreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::on_both_backends;
use crate::support::{Backend, SignedIn, TEST_PASSWORD, TestLog, one_event, sign_in};
use docket::domain::identity::Role;

// ---- the client ----------------------------------------------------------------------------

/// A response as it came off the wire.
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// Names lowercased, in the order sent.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(found, _)| found == name)
            .map(|(_, value)| value.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// `errors[0].extensions.code` of a GraphQL error response.
    fn code(&self) -> Value {
        self.json()["errors"][0]["extensions"]["code"].clone()
    }
}

/// One request on a fresh connection (`Connection: close`), the response read to EOF.
pub(crate) async fn send(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Reply> {
    let stream = TcpStream::connect(address).await?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\
         content-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let (mut reader, mut writer) = stream.into_split();
    // Writing and reading at once: a server that refuses a body may answer before reading it.
    // The write half stays open until the response is read (a half-close could end the request).
    let write = async move {
        writer.write_all(head.as_bytes()).await?;
        writer.write_all(body).await?;
        writer.flush().await?;
        Ok::<_, io::Error>(writer)
    };
    let read = async move {
        let mut raw = Vec::new();
        reader.read_to_end(&mut raw).await?;
        Ok::<_, io::Error>(raw)
    };
    let (written, raw) = tokio::join!(write, read);
    let raw = raw?;
    if raw.is_empty() {
        written?;
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no response"));
    }
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> io::Result<Reply> {
    let malformed = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let end = find(raw, b"\r\n\r\n").ok_or_else(|| malformed("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| malformed("head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    if parts.next() != Some("HTTP/1.1") {
        return Err(malformed("not an HTTP/1.1 status line"));
    }
    let status = parts
        .next()
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| malformed("no status code"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let body = if chunked {
        dechunk(rest).ok_or_else(|| malformed("bad chunked body"))?
    } else {
        rest.to_vec()
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = find(data, b"\r\n")?;
        let size = std::str::from_utf8(&data[..line]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        data = &data[line + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

// ---- the server ----------------------------------------------------------------------------

/// Docket served over HTTP on 127.0.0.1, with its projector running.
struct Served {
    _test: TestLog,
    docket: Docket,
    /// Users signed in so far, by id (a.okafor, a partner, from the start).
    users: tokio::sync::Mutex<std::collections::HashMap<String, SignedIn>>,
    address: SocketAddr,
    handle: ServerHandle,
    server: JoinHandle<io::Result<()>>,
    projecting: JoinHandle<()>,
}

impl Served {
    async fn start(backend: Backend) -> Self {
        Self::with(backend, PersistedQueries::default(), false).await
    }

    async fn with(backend: Backend, persisted: PersistedQueries, development: bool) -> Self {
        let test = TestLog::new(backend).await;
        let docket = test.open_docket(Duration::from_secs(5)).await;
        let projecting = docket.projector.spawn();
        // http_server takes an address: find a free port, and try another should it be taken
        // between finding and binding.
        let mut attempts = 0;
        let (address, server) = loop {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port();
            let address = SocketAddr::from(([127, 0, 0, 1], port));
            let components = Components {
                log: docket.log.clone(),
                projector: docket.projector.clone(),
                service: docket.service.clone(),
                db: docket.projector.db().clone(),
                persisted: persisted.clone(),
                identity: docket.identity.clone(),
                access: docket.access.clone(),
                checkpoints: docket.checkpoints.clone(),
                monitoring: Default::default(),
                integrations: docket.integrations.clone(),
                development,
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
        let partner = sign_in(&docket.identity, "a.okafor", Role::Partner).await;
        let users = tokio::sync::Mutex::new(std::collections::HashMap::from([(
            "a.okafor".to_owned(),
            partner,
        )]));
        Served {
            _test: test,
            docket,
            users,
            address,
            handle,
            server,
            projecting,
        }
    }

    async fn stop(self) {
        self.handle.stop(false).await;
        self.server.await.expect("server task").expect("server ran");
        self.projecting.abort();
    }

    /// `GET path` as a.okafor.
    async fn get(&self, path: &str) -> Reply {
        let bearer = format!("Bearer {}", self.token("a.okafor").await);
        send(
            self.address,
            "GET",
            path,
            &[("authorization", &bearer)],
            b"",
        )
        .await
        .expect("GET answered")
    }

    /// `GET path` without credentials.
    async fn get_anonymously(&self, path: &str) -> Reply {
        send(self.address, "GET", path, &[], b"")
            .await
            .expect("GET answered")
    }

    /// `POST /graphql` with these headers and raw body, as a.okafor unless the headers carry a
    /// credential of their own.
    async fn post(&self, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let credential = headers
            .iter()
            .any(|(name, _)| *name == "authorization" || *name == "cookie");
        let bearer = format!("Bearer {}", self.token("a.okafor").await);
        let mut all = headers.to_vec();
        if !credential {
            all.push(("authorization", &bearer));
        }
        send(self.address, "POST", "/graphql", &all, body)
            .await
            .expect("POST answered")
    }

    /// `POST /graphql` without credentials.
    async fn post_anonymously(&self, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        send(self.address, "POST", "/graphql", headers, body)
            .await
            .expect("POST answered")
    }

    /// The bearer token of `user` (a partner, signed in on first use).
    async fn token(&self, user: &str) -> String {
        let mut users = self.users.lock().await;
        if !users.contains_key(user) {
            let signed_in = sign_in(&self.docket.identity, user, Role::Partner).await;
            users.insert(user.to_owned(), signed_in);
        }
        users[user].token.clone()
    }

    /// A JSON GraphQL request, as `user` (a bearer token) or anonymously.
    async fn graphql(&self, user: Option<&str>, body: &Value) -> Reply {
        let bearer = match user {
            Some(user) => Some(format!("Bearer {}", self.token(user).await)),
            None => None,
        };
        let mut headers = vec![("content-type", "application/json")];
        match &bearer {
            Some(bearer) => {
                headers.push(("authorization", bearer.as_str()));
                self.post(&headers, body.to_string().as_bytes()).await
            }
            None => {
                self.post_anonymously(&headers, body.to_string().as_bytes())
                    .await
            }
        }
    }

    /// Runs `query` as `a.okafor` and returns `data`, asserting 200 and no errors.
    async fn ok(&self, query: &str, variables: Value) -> Value {
        self.ok_with("a.okafor", query, variables).await
    }

    async fn ok_as(&self, user: &str, query: &str) -> Value {
        self.ok_with(user, query, json!({})).await
    }

    async fn ok_with(&self, user: &str, query: &str, variables: Value) -> Value {
        let reply = self
            .graphql(Some(user), &json!({"query": query, "variables": variables}))
            .await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let response = reply.json();
        assert!(response.get("errors").is_none(), "errors: {response}");
        response["data"].clone()
    }

    async fn head(&self) -> u64 {
        self.docket.log.head().await.unwrap().position
    }

    async fn matter_events(&self, number: &str) -> Vec<Event> {
        self.docket
            .log
            .stream_from(&format!("matter:{number}"), 1)
            .try_collect()
            .await
            .unwrap()
    }
}

pub(crate) const OPEN: &str = r#"mutation($n: String!) {
  openMatter(input: {matterNumber: $n, title: "Okafor v. Brightline Ltd",
                     practiceArea: "employment", responsibleAttorney: "a.okafor"}) {
    matter { number status version }
    positions { first last }
    projected
    userErrors { field code message }
  }
}"#;

fn open_body(number: &str) -> Value {
    open_body_for(number, "a.okafor")
}

fn open_body_for(number: &str, attorney: &str) -> Value {
    let query = OPEN.replace("\"a.okafor\"", &format!("\"{attorney}\""));
    json!({"query": query, "variables": {"n": number}})
}

fn base64_of(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---- POST /graphql -------------------------------------------------------------------------

async fn a_json_post_runs_and_the_response_carries_a_request_id(backend: Backend) {
    let served = Served::start(backend).await;
    let reply = served
        .graphql(Some("a.okafor"), &open_body("2026-0042"))
        .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|value| value.starts_with("application/json")),
        "{:?}",
        reply.headers
    );
    let request_id = reply
        .header("x-request-id")
        .expect("x-request-id")
        .to_owned();
    let parsed = uuid::Uuid::parse_str(&request_id).expect("a UUID");
    assert_eq!(parsed.get_version_num(), 7, "{request_id}");
    let response = reply.json();
    let payload = &response["data"]["openMatter"];
    assert_eq!(payload["userErrors"], json!([]), "{response}");
    assert_eq!(payload["matter"]["status"], json!("OPEN"));
    assert_eq!(payload["projected"], json!(true));
    assert!(response["extensions"]["cost"]["requestedQueryCost"].is_u64());

    // Every event of the mutation records the request id its response carried.
    let events = served.matter_events("2026-0042").await;
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|event| event.request_id.as_deref() == Some(request_id.as_str())),
        "{events:?}"
    );

    // Every response gets an id of its own, errors and other paths included.
    let again = served
        .graphql(Some("a.okafor"), &json!({"query": "{ me { userId } }"}))
        .await;
    let health = served.get("/healthz").await;
    let missing = served.get("/no/such/path").await;
    assert_eq!(missing.status, 404);
    let mut ids: Vec<&str> = [&again, &health, &missing]
        .iter()
        .map(|reply| reply.header("x-request-id").expect("x-request-id"))
        .collect();
    ids.push(&request_id);
    let distinct: std::collections::HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
    served.stop().await;
}

async fn events_record_the_signed_in_user_as_their_actor(backend: Backend) {
    let served = Served::start(backend).await;
    let opened = served
        .graphql(
            Some("s.whitfield"),
            &open_body_for("2026-0043", "s.whitfield"),
        )
        .await;
    assert_eq!(opened.json()["data"]["openMatter"]["userErrors"], json!([]));
    let note = json!({"query": r#"mutation { addNote(number: "2026-0043", body: "Called the client") {
        userErrors { code } } }"#});
    let noted = served.graphql(Some("s.whitfield"), &note).await;
    assert_eq!(noted.json()["data"]["addNote"]["userErrors"], json!([]));
    // Without a credential the same mutation is refused and nothing is written.
    let head = served.head().await;
    let anonymous = served.graphql(None, &note).await;
    assert_eq!(
        anonymous.json()["errors"][0]["extensions"]["code"],
        json!("UNAUTHENTICATED")
    );
    assert!(anonymous.json()["data"].is_null());
    assert_eq!(served.head().await, head, "nothing was appended");

    let actors: Vec<String> = served
        .matter_events("2026-0043")
        .await
        .into_iter()
        .map(|event| event.actor)
        .collect();
    assert_eq!(
        actors,
        ["user:s.whitfield", "user:s.whitfield", "user:s.whitfield"],
        "matter.opened, team_member_added and the note, by the signed-in user"
    );

    // The history the API serves from the log says the same.
    let data = served
        .ok_as(
            "s.whitfield",
            r#"{ matter(number: "2026-0043") { history(first: 10) { actor eventType verified } } }"#,
        )
        .await;
    let history = data["matter"]["history"].as_array().unwrap();
    let served_actors: Vec<&str> = history
        .iter()
        .map(|event| event["actor"].as_str().unwrap())
        .collect();
    assert_eq!(served_actors, actors);
    assert!(history.iter().all(|event| event["verified"] == json!(true)));
    served.stop().await;
}

async fn a_content_type_other_than_json_is_refused_with_415(backend: Backend) {
    let served = Served::start(backend).await;
    let head = served.head().await;
    let body = open_body("2026-0044").to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/graphql"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|value| ("content-type", value))
            .into_iter()
            .collect();
        let reply = served.post(&headers, body.as_bytes()).await;
        assert_eq!(reply.status, 415, "{content_type:?}");
        assert_eq!(
            reply.code(),
            json!("UNSUPPORTED_MEDIA_TYPE"),
            "{content_type:?}"
        );
        assert!(reply.header("x-request-id").is_some());
    }
    // A charset parameter is still JSON.
    let reply = served
        .post(
            &[("content-type", "application/json; charset=utf-8")],
            b"{\"query\": \"{ me { userId } }\"}",
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(served.head().await, head, "nothing was appended");
    served.stop().await;
}

async fn a_malformed_body_is_refused_with_400_invalid_request(backend: Backend) {
    let served = Served::start(backend).await;
    let head = served.head().await;
    let json = [("content-type", "application/json")];
    for body in [
        &b"{\"query\": \"mutation { openMatter"[..],
        b"query=%7B%20projections%20%7B%20name%20%7D%20%7D",
        b"{\"query\": 42}",
        b"[{\"query\": \"{ me { userId } }\"}]",
        b"",
        b"\xff\xfe{}",
    ] {
        let reply = served.post(&json, body).await;
        assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(body));
        assert_eq!(reply.code(), json!("INVALID_REQUEST"));
    }
    // Well-formed JSON without a query (or a persisted query's hash) is refused too, as a
    // GraphQL error.
    let reply = served.post(&json, b"{\"variables\": {}}").await;
    assert_eq!(reply.code(), json!("INVALID_REQUEST"));
    assert!(reply.json()["data"].is_null());
    assert_eq!(served.head().await, head, "nothing was appended");
    served.stop().await;
}

async fn a_credential_that_proves_nobody_is_refused_with_401(backend: Backend) {
    let served = Served::start(backend).await;
    let head = served.head().await;
    let long = format!("dks_{}", "a".repeat(1000));
    for bearer in [
        "Bearer dks_bogus",
        "Bearer ",
        "Bearer dkt_aaaaaaaaaaaa_bbbb",
        long.as_str(),
    ] {
        let reply = served
            .post(
                &[
                    ("content-type", "application/json"),
                    ("authorization", bearer),
                ],
                open_body("2026-0045").to_string().as_bytes(),
            )
            .await;
        assert_eq!(reply.status, 401, "{bearer:?}");
        assert_eq!(reply.code(), json!("UNAUTHENTICATED"), "{bearer:?}");
    }
    assert_eq!(served.head().await, head, "nothing was appended");
    served.stop().await;
}

async fn more_than_fifty_aliases_are_refused(backend: Backend) {
    let served = Served::start(backend).await;
    let fields = |n: usize| {
        (0..n)
            .map(|i| format!("a{i}: me {{ userId }}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let ok = served
        .graphql(
            Some("a.okafor"),
            &json!({"query": format!("{{ {} }}", fields(50))}),
        )
        .await;
    assert!(ok.json().get("errors").is_none(), "{}", ok.json());
    let refused = served
        .graphql(
            Some("a.okafor"),
            &json!({"query": format!("{{ {} }}", fields(51))}),
        )
        .await;
    assert_eq!(refused.code(), json!("INVALID_QUERY"));
    assert!(refused.json()["data"].is_null());
    served.stop().await;
}

async fn a_session_cookie_needs_the_csrf_header(backend: Backend) {
    let served = Served::start(backend).await;
    let token = served.token("a.okafor").await;
    let cookie = format!("docket_session={token}");
    let body = json!({"query": "{ me { userId role } }"}).to_string();
    let without = served
        .post(
            &[("content-type", "application/json"), ("cookie", &cookie)],
            body.as_bytes(),
        )
        .await;
    assert_eq!(without.status, 403);
    assert_eq!(without.code(), json!("CSRF_HEADER_REQUIRED"));
    let with = served
        .post(
            &[
                ("content-type", "application/json"),
                ("cookie", &cookie),
                ("x-docket-csrf", "1"),
            ],
            body.as_bytes(),
        )
        .await;
    assert_eq!(with.status, 200);
    assert_eq!(
        with.json()["data"]["me"],
        json!({"userId": "a.okafor", "role": "PARTNER"})
    );
    served.stop().await;
}

async fn a_browser_login_sets_a_strict_http_only_cookie(backend: Backend) {
    let served = Served::start(backend).await;
    let (email, code) = {
        let users = served.users.lock().await;
        let user = &users["a.okafor"];
        (user.email.clone(), user.code(1))
    };
    let login = json!({"query": r#"mutation($e: String!, $p: String!, $c: String!) {
        login(input: {email: $e, password: $p, totpCode: $c, cookie: true}) {
          session { sessionId token } userErrors { code } } }"#,
        "variables": {"e": email, "p": TEST_PASSWORD, "c": code}});
    let reply = served
        .post_anonymously(
            &[("content-type", "application/json")],
            login.to_string().as_bytes(),
        )
        .await;
    assert_eq!(reply.json()["data"]["login"]["userErrors"], json!([]));
    assert!(
        reply.json()["data"]["login"]["session"]["token"].is_null(),
        "not in the body"
    );
    let cookie = reply.header("set-cookie").expect("a cookie").to_owned();
    assert!(cookie.starts_with("docket_session=dks_"), "{cookie}");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    served.stop().await;
}

// ---- persisted queries ---------------------------------------------------------------------

const MATTER_TITLE: &str = "query MatterTitle($n: String!) { matter(number: $n) { number title } }";

async fn a_registered_document_runs_by_its_sha256_hash(backend: Backend) {
    let mut persisted = PersistedQueries::default();
    let hash = persisted.register(MATTER_TITLE);
    assert_eq!(hash, sha256_hex(MATTER_TITLE));
    let open_hash = persisted.register(OPEN);
    let served = Served::with(backend, persisted, false).await;

    // A mutation by hash writes, as the signed-in user (not on the matter's team: it names a.okafor).
    let reply = served
        .graphql(
            Some("h.sato"),
            &json!({"variables": {"n": "2026-0046"},
                    "extensions": {"persistedQuery": {"version": 1, "sha256Hash": open_hash}}}),
        )
        .await;
    assert_eq!(reply.status, 200);
    let response = reply.json();
    assert_eq!(
        response["data"]["openMatter"]["userErrors"],
        json!([]),
        "{response}"
    );
    let events = served.matter_events("2026-0046").await;
    assert_eq!(events[0].actor, "user:h.sato");

    // A query by hash, with variables and an operation name; the hash may be upper case.
    for sent in [hash.clone(), hash.to_ascii_uppercase()] {
        let reply = served
            .graphql(
                Some("a.okafor"),
                &json!({"operationName": "MatterTitle", "variables": {"n": "2026-0046"},
                        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sent}}}),
            )
            .await;
        assert_eq!(reply.status, 200);
        let response = reply.json();
        assert_eq!(
            response["data"]["matter"],
            json!({"number": "2026-0046", "title": "Okafor v. Brightline Ltd"}),
            "{response}"
        );
        assert!(response["extensions"]["cost"].is_object());
    }
    served.stop().await;
}

async fn an_unknown_hash_is_persisted_query_not_found(backend: Backend) {
    let mut persisted = PersistedQueries::default();
    persisted.register(MATTER_TITLE);
    let served = Served::with(backend, persisted, false).await;
    let unknown = sha256_hex("{ me { userId } }");
    let reply = served
        .graphql(
            Some("a.okafor"),
            &json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": unknown}}}),
        )
        .await;
    // The Apollo convention: 200, and the client retries with the query's text.
    assert_eq!(reply.status, 200);
    assert_eq!(reply.code(), json!("PERSISTED_QUERY_NOT_FOUND"));
    assert_eq!(
        reply.json()["errors"][0]["message"],
        json!("PersistedQueryNotFound")
    );
    assert!(reply.json()["data"].is_null());

    // Sending the text with the hash runs the text (outside registered-only mode).
    let reply = served
        .graphql(
            Some("a.okafor"),
            &json!({"query": "{ me { userId } }",
                    "extensions": {"persistedQuery": {"version": 1, "sha256Hash": unknown}}}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.json()["data"]["me"].is_object());
    served.stop().await;
}

async fn registered_only_mode_runs_registered_documents_only(backend: Backend) {
    let mut persisted = PersistedQueries::default();
    let hash = persisted.register(MATTER_TITLE);
    persisted.registered_only = true;
    let served = Served::with(backend, persisted, false).await;
    let head = served.head().await;

    // An unregistered text, query or mutation, is refused before it runs.
    for body in [
        json!({"query": "{ me { userId } }"}),
        open_body("2026-0047"),
        json!({"query": format!("{MATTER_TITLE} "), "variables": {"n": "2026-0047"}}),
    ] {
        let reply = served.graphql(Some("a.okafor"), &body).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.code(), json!("PERSISTED_QUERY_REQUIRED"), "{body}");
        assert!(reply.json()["data"].is_null());
    }
    assert_eq!(served.head().await, head, "nothing was appended");

    // The registered document runs, by its text or by its hash.
    for body in [
        json!({"query": MATTER_TITLE, "variables": {"n": "2026-0047"}}),
        json!({"variables": {"n": "2026-0047"},
               "extensions": {"persistedQuery": {"version": 1, "sha256Hash": hash}}}),
    ] {
        let reply = served.graphql(Some("a.okafor"), &body).await;
        assert_eq!(reply.status, 200);
        let response = reply.json();
        assert!(response.get("errors").is_none(), "{response}");
        assert_eq!(
            response["data"]["matter"],
            Value::Null,
            "no such matter yet"
        );
    }
    served.stop().await;
}

// ---- GraphiQL, health, documents -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_is_served_in_development_mode_only() {
    let served = Served::start(Backend::Sqlite).await;
    assert_eq!(served.get("/graphiql").await.status, 404);
    served.stop().await;

    let served = Served::with(Backend::Sqlite, PersistedQueries::default(), true).await;
    let page = served.get("/graphiql").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = String::from_utf8_lossy(&page.body).to_lowercase();
    assert!(
        html.contains("graphiql") && html.contains("/graphql"),
        "{html}"
    );
    served.stop().await;
}

async fn healthz_lists_each_projection_and_is_degraded_when_one_has_failed(backend: Backend) {
    let served = Served::start(backend).await;
    served.ok(OPEN, json!({"n": "2026-0048"})).await;
    let reply = served.get("/healthz").await;
    assert_eq!(reply.status, 200);
    let health = reply.json();
    assert_eq!(health["status"], json!("ok"), "{health}");
    let expected_backend = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(health["backend"], json!(expected_backend));
    assert_eq!(health["log"]["position"], json!(served.head().await));
    assert!(health["log"]["key_id"].is_string());
    let projections = health["projections"].as_array().unwrap();
    let mut names: Vec<&str> = projections
        .iter()
        .map(|projection| projection["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    let mut expected: Vec<String> = docket::projection::all()
        .iter()
        .map(|projection| projection.name().to_owned())
        .collect();
    expected.sort_unstable();
    assert_eq!(names, expected);
    assert!(
        projections
            .iter()
            .all(|projection| projection["status"] == json!("ok")),
        "{health}"
    );

    // A raw note without a body: the projections that read matter.note_added stop on it.
    let malformed = served
        .docket
        .log
        .append(one_event(
            "matter:2026-0048",
            "matter.note_added",
            json!({"note_id": 7}),
        ))
        .await
        .unwrap()
        .last_position;
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        let reply = served.get("/healthz").await;
        assert_eq!(reply.status, 200, "degraded is still an answer");
        let health = reply.json();
        // The projections stop one after another within a round: wait for the one examined.
        let notes_failed =
            health["projections"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|projection| {
                    projection["name"] == json!("notes") && projection["status"] == json!("failed")
                });
        if notes_failed {
            assert_eq!(health["status"], json!("degraded"), "{health}");
            break health;
        }
        assert!(Instant::now() < deadline, "notes never stopped: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let notes = health["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|projection| projection["name"] == json!("notes"))
        .unwrap();
    assert_eq!(notes["status"], json!("failed"), "{health}");
    assert_eq!(notes["failed_position"], json!(malformed));
    assert!(
        notes["error"]
            .as_str()
            .unwrap()
            .contains("does not match its schema"),
        "{notes}"
    );
    // Projections that do not read notes are unaffected.
    let parties = health["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|projection| projection["name"] == json!("parties"))
        .unwrap();
    assert_eq!(parties["status"], json!("ok"), "{health}");
    served.stop().await;
}

const ADD_DOCUMENT: &str = r#"mutation($n: String!, $b: String!) {
  addDocument(number: $n, input: {documentType: "pleading", title: "ET1 claim form",
              filename: "et1.pdf", mediaType: "application/pdf", contentBase64: $b}) {
    matter { documents { documentId latestVersion
                         versions { version contentHash size mediaType downloadPath } } }
    userErrors { field code message }
  }
}"#;

async fn document_content_downloads_byte_for_byte_with_its_hash(backend: Backend) {
    let served = Served::start(backend).await;
    served.ok(OPEN, json!({"n": "2026-0049"})).await;
    // Every byte value, so nothing on the way may treat the content as text.
    let content: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let data = served
        .ok(
            ADD_DOCUMENT,
            json!({"n": "2026-0049", "b": base64_of(&content)}),
        )
        .await;
    assert_eq!(data["addDocument"]["userErrors"], json!([]));
    let document = &data["addDocument"]["matter"]["documents"][0];
    let version = &document["versions"][0];
    let hash = blake3::hash(&content).to_hex().to_string();
    assert_eq!(version["contentHash"], json!(hash));
    assert_eq!(version["size"], json!(content.len()));
    let document_id = document["documentId"].as_str().unwrap();
    let path = version["downloadPath"].as_str().unwrap();
    assert_eq!(path, format!("/documents/{document_id}/versions/1/content"));

    let download = served.get(path).await;
    assert_eq!(download.status, 200);
    assert_eq!(download.body, content);
    assert_eq!(download.header("content-type"), Some("application/pdf"));
    assert_eq!(download.header("x-content-blake3"), Some(hash.as_str()));
    assert_eq!(download.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(download.header("content-disposition"), Some("attachment"));

    // A second version is its own download; the first stays as it was.
    let second = b"%PDF-1.7 amended claim form".to_vec();
    let data = served
        .ok(
            r#"mutation($n: String!, $d: String!, $b: String!) {
                addDocumentVersion(number: $n, documentId: $d, mediaType: "application/pdf",
                                   contentBase64: $b) { userErrors { code } } }"#,
            json!({"n": "2026-0049", "d": document_id, "b": base64_of(&second)}),
        )
        .await;
    assert_eq!(data["addDocumentVersion"]["userErrors"], json!([]));
    let newer = served
        .get(&format!("/documents/{document_id}/versions/2/content"))
        .await;
    assert_eq!(newer.status, 200);
    assert_eq!(newer.body, second);
    assert_eq!(served.get(path).await.body, content);

    // Without a credential: 401. For a user off the matter's team: 404, like a missing one.
    assert_eq!(served.get_anonymously(path).await.status, 401);
    let outsider = format!("Bearer {}", served.token("r.outsider").await);
    let refused = send(
        served.address,
        "GET",
        path,
        &[("authorization", &outsider)],
        b"",
    )
    .await
    .expect("GET answered");
    assert_eq!(refused.status, 404);
    assert!(refused.body.is_empty());

    // Unknown versions and documents are 404.
    for missing in [
        format!("/documents/{document_id}/versions/3/content"),
        format!("/documents/{document_id}/versions/0/content"),
        "/documents/no-such-document/versions/1/content".to_owned(),
    ] {
        assert_eq!(served.get(&missing).await.status, 404, "{missing}");
    }
    served.stop().await;
}

async fn a_body_over_the_limit_is_refused_and_appends_nothing(backend: Backend) {
    let served = Served::start(backend).await;
    served.ok(OPEN, json!({"n": "2026-0050"})).await;
    let head = served.head().await;
    // Content well under the 16 MiB a document may have, but whose base64 in a request body
    // passes MAX_BODY_BYTES.
    let content = vec![b'%'; MAX_BODY_BYTES / 4 * 3 + 1024];
    let body =
        json!({"query": ADD_DOCUMENT, "variables": {"n": "2026-0050", "b": base64_of(&content)}})
            .to_string();
    assert!(body.len() > MAX_BODY_BYTES);
    let reply = send(
        served.address,
        "POST",
        "/graphql",
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
    .await;
    match reply {
        Ok(reply) => {
            assert_ne!(reply.status, 200);
            assert!(
                [400, 413].contains(&reply.status),
                "status {}",
                reply.status
            );
        }
        // Closing the connection on the oversized body is a refusal too.
        Err(error) => assert!(
            matches!(
                error.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            ),
            "{error}"
        ),
    }
    assert_eq!(served.head().await, head, "nothing was appended");
    let documents = served
        .ok(
            r#"{ matter(number: "2026-0050") { documents { documentId } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(documents["matter"]["documents"], json!([]));
    // The server goes on answering.
    assert_eq!(served.get("/healthz").await.status, 200);
    served.stop().await;
}

on_both_backends!(
    a_json_post_runs_and_the_response_carries_a_request_id,
    events_record_the_signed_in_user_as_their_actor,
    a_content_type_other_than_json_is_refused_with_415,
    a_malformed_body_is_refused_with_400_invalid_request,
    a_credential_that_proves_nobody_is_refused_with_401,
    a_session_cookie_needs_the_csrf_header,
    more_than_fifty_aliases_are_refused,
    a_browser_login_sets_a_strict_http_only_cookie,
    a_registered_document_runs_by_its_sha256_hash,
    an_unknown_hash_is_persisted_query_not_found,
    registered_only_mode_runs_registered_documents_only,
    healthz_lists_each_projection_and_is_degraded_when_one_has_failed,
    document_content_downloads_byte_for_byte_with_its_hash,
    a_body_over_the_limit_is_refused_and_appends_nothing,
);
