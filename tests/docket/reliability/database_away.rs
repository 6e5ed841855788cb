//! PostgreSQL going away and coming back, without touching the shared server: Docket reaches
//! its database through a TCP proxy in the test, which can cut every connection (and refuse
//! new ones) and later let them through again.
//!
//! While it is cut, a GraphQL request is answered in bounded time with the typed `UNAVAILABLE`
//! code, an append fails with `StoreError::Unavailable`, `/readyz` says the database is not
//! ready and `/livez` stays up. Once it is back, the same Docket, never restarted, serves
//! requests again, its projector catches up, and every request acknowledged before the cut is
//! in the log, which verifies.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use docket::app::Docket;
use docket::domain::identity::Role;
use docket::store::{AppendError, StoreError};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::http::{OPEN, Reply, send};
use crate::support::{Backend, TestLog, one_event, serve, sign_in};

/// How long anything may take to answer while the database is away, or to recover after.
const BOUND: Duration = Duration::from_secs(60);

/// A TCP proxy to one upstream address that the test can cut and restore.
struct Proxy {
    address: SocketAddr,
    up: watch::Sender<bool>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (up, _) = watch::channel(true);
        let state = up.subscribe();
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if !*state.borrow() {
                    // Refused: closed at once, before a byte is exchanged.
                    drop(client);
                    continue;
                }
                let mut state = state.clone();
                tokio::spawn(async move {
                    let mut client = client;
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        // Cut: both sides are closed when the task ends.
                        _ = state.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Proxy {
            address,
            up,
            accepting,
        }
    }

    /// Drops every connection and refuses new ones.
    fn cut(&self) {
        self.up.send_replace(false);
    }

    /// Lets connections through again.
    fn restore(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// `url` with its host and port replaced by `address`.
fn through(url: &str, address: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let user = authority
        .rsplit_once('@')
        .map(|(user, _)| format!("{user}@"))
        .unwrap_or_default();
    format!("{scheme}://{user}{address}/{path}")
}

/// The address of the server in a PostgreSQL URL.
fn upstream_of(url: &str) -> SocketAddr {
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let host = match options.get_host() {
        "localhost" => "127.0.0.1",
        host => host,
    };
    format!("{host}:{}", options.get_port()).parse().unwrap()
}

async fn graphql(address: SocketAddr, token: &str, body: &Value) -> Reply {
    let bearer = format!("Bearer {token}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", bearer.as_str()),
    ];
    tokio::time::timeout(
        BOUND,
        send(
            address,
            "POST",
            "/graphql",
            &headers,
            body.to_string().as_bytes(),
        ),
    )
    .await
    .expect("answered in bounded time")
    .expect("answered")
}

async fn get(address: SocketAddr, path: &str) -> Reply {
    tokio::time::timeout(BOUND, send(address, "GET", path, &[], b""))
        .await
        .expect("answered in bounded time")
        .expect("answered")
}

fn open(number: &str) -> Value {
    json!({ "query": OPEN, "variables": { "n": number } })
}

/// The code of the first GraphQL error (or of the refusal of the request).
fn code(reply: &Reply) -> String {
    let body = reply.json();
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .or_else(|| body["code"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_and_coming_back() {
    let test = TestLog::new(Backend::Postgres).await;
    let direct = test.database_url.clone().unwrap();
    let proxy = Proxy::start(upstream_of(&direct)).await;
    let mut options = test.options();
    options.database_url = Some(through(&direct, proxy.address));
    let docket = Docket::open_with(&options, Duration::from_secs(5))
        .await
        .unwrap();
    let projecting = docket.projector.spawn();
    let (address, handle) = serve(&docket).await;
    let partner = sign_in(&docket.identity, "a.okafor", Role::Partner).await;

    // Acknowledged before the database goes away.
    let mut acknowledged = Vec::new();
    for number in ["2026-0901", "2026-0902", "2026-0903"] {
        let reply = graphql(address, &partner.token, &open(number)).await;
        let body = reply.json();
        assert_eq!(
            body["data"]["openMatter"]["userErrors"],
            json!([]),
            "{body}"
        );
        acknowledged.push(number);
    }
    let appended = docket
        .log
        .append(one_event("matter:raw-1", "matter.noted", json!({ "n": 1 })))
        .await
        .unwrap();
    assert_eq!(get(address, "/readyz").await.status, 200);

    proxy.cut();
    let started = Instant::now();
    let refused = graphql(address, &partner.token, &open("2026-0904")).await;
    assert_eq!(code(&refused), "UNAVAILABLE", "{:?}", refused.json());
    assert!(
        !String::from_utf8_lossy(&refused.body).contains("127.0.0.1"),
        "no connection details in the answer"
    );
    // An append on a pooled connection that broke under it cannot know whether the server got
    // its statement: that is `CommitOutcomeUnknown` (retry with an idempotency key). Once the
    // broken connections are gone, the refusal is plainly `Unavailable`.
    let mut outcomes = Vec::new();
    for n in 2..5 {
        let append = tokio::time::timeout(
            BOUND,
            docket
                .log
                .append(one_event("matter:raw-1", "matter.noted", json!({ "n": n }))),
        )
        .await
        .expect("the append fails in bounded time");
        match append {
            Err(AppendError::Store(
                error @ (StoreError::Unavailable { .. } | StoreError::CommitOutcomeUnknown { .. }),
            )) => outcomes.push(error),
            other => panic!("a typed refusal, not {other:?}"),
        }
    }
    assert!(
        matches!(outcomes.last(), Some(StoreError::Unavailable { .. })),
        "{outcomes:?}"
    );
    let ready = get(address, "/readyz").await;
    assert_eq!(ready.status, 503, "{:?}", ready.json());
    assert!(
        ready.json()["failed"]
            .as_array()
            .unwrap()
            .contains(&json!("database")),
        "{:?}",
        ready.json()
    );
    assert_eq!(get(address, "/livez").await.status, 200, "still alive");
    eprintln!("answered while away within {:?}", started.elapsed());

    proxy.restore();
    // The same process recovers: ready again, requests served, the projector at the head.
    let started = Instant::now();
    while get(address, "/readyz").await.status != 200 {
        assert!(
            started.elapsed() < BOUND,
            "ready again after the database is back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reply = graphql(address, &partner.token, &open("2026-0905")).await;
    let body = reply.json();
    assert_eq!(
        body["data"]["openMatter"]["userErrors"],
        json!([]),
        "{body}"
    );
    acknowledged.push("2026-0905");
    let head = docket.log.head().await.unwrap().position;
    let started = Instant::now();
    loop {
        let statuses = docket.projector.status().await.unwrap();
        if statuses
            .iter()
            .all(|s| s.status == "ok" && s.position >= head)
        {
            break;
        }
        assert!(
            started.elapsed() < BOUND,
            "the projector catches up: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for number in &acknowledged {
        let query = json!({ "query": format!(r#"{{ matter(number: "{number}") {{ number }} }}"#) });
        let body = graphql(address, &partner.token, &query).await.json();
        assert_eq!(body["data"]["matter"]["number"], json!(number), "{body}");
    }
    handle.stop(false).await;
    projecting.abort();
    drop(docket);

    // Read directly, not through the proxy: everything acknowledged is there, and it verifies.
    let log = test.open().await;
    let event = log
        .store()
        .read_page(appended.first_position, 1)
        .await
        .unwrap();
    assert_eq!(event[0].stream, "matter:raw-1");
    assert_eq!(event[0].payload, r#"{"n":1}"#);
    drop(log);
    let summary = test.verify().await.expect("the log verifies");
    assert!(summary.events >= head);
}
