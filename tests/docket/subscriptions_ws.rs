//! Subscriptions over a real WebSocket: the graphql-transport-ws protocol spoken frame by frame,
//! by the protocol's reference client (graphql-ws, under Node.js), and across two Docket
//! processes sharing one PostgreSQL database.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::on_both_backends;
use crate::subscriptions::{Desk, OURS, assert_verifies};
use crate::support::{Backend, serve};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `ws://address/graphql` asking for `protocol` (none when `None`).
async fn open(
    address: SocketAddr,
    protocol: Option<&str>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://{address}/graphql")
        .into_client_request()
        .unwrap();
    if let Some(protocol) = protocol {
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next text frame as JSON, or the close frame's code.
async fn receive(socket: &mut Socket) -> Result<Value, u16> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s");
        match frame {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                return Err(frame.map_or(1005, |frame| u16::from(frame.code)));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(1006),
        }
    }
}

on_both_backends!(
    the_graphql_transport_ws_protocol_serves_subscriptions,
    a_socket_with_a_bad_credential_is_refused,
    the_reference_client_receives_and_resumes,
    breaches_of_the_protocol_close_the_connection_with_its_codes,
);

async fn the_graphql_transport_ws_protocol_serves_subscriptions(backend: Backend) {
    let desk = Desk::new(backend).await;
    let (address, handle) = serve(&desk.docket).await;
    // A WebSocket that does not ask for the protocol is refused at the upgrade.
    assert!(open(address, None).await.is_err());

    let mut socket = open(address, Some("graphql-transport-ws")).await.unwrap();
    let token = desk.users["a.ttorney"].token.clone();
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}),
    )
    .await;
    assert_eq!(
        receive(&mut socket).await.unwrap()["type"],
        "connection_ack"
    );
    let from = desk.docket.log.head().await.unwrap().position + 1;
    send(
        &mut socket,
        json!({"id": "s1", "type": "subscribe", "payload": {
            "query": "subscription($from: Int, $m: [String!]) { events(from: $from, matters: $m) { position eventId stream matterNumber version eventType schemaVersion actor occurredAt recordedAt requestId correlationId causationId idempotencyKey prevHash streamPrevHash keyId hash signature payload data } }",
            "variables": {"from": from, "m": [OURS]}
        }}),
    )
    .await;
    // Pings are answered while subscribed.
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "pong");
    let position = desk.note("p.one", OURS, "Over the wire").await;
    let message = receive(&mut socket).await.unwrap();
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["id"], "s1");
    let event = &message["payload"]["data"]["events"];
    assert_eq!(event["position"], position);
    assert_eq!(event["data"]["private"]["body"], "Over the wire");
    assert_verifies(&desk.docket, event).await;
    // The client ends the subscription (the server confirms); the connection stays open.
    send(&mut socket, json!({"id": "s1", "type": "complete"})).await;
    send(&mut socket, json!({"type": "ping"})).await;
    let mut reply = receive(&mut socket).await.unwrap();
    if reply["type"] == "complete" {
        assert_eq!(reply["id"], "s1");
        reply = receive(&mut socket).await.unwrap();
    }
    assert_eq!(reply["type"], "pong");
    handle.stop(false).await;
}

async fn a_socket_with_a_bad_credential_is_refused(backend: Backend) {
    let desk = Desk::new(backend).await;
    let (address, handle) = serve(&desk.docket).await;
    // A bad bearer token in the upgrade request: refused before the upgrade.
    let mut request = format!("ws://{address}/graphql")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    request.headers_mut().insert(
        "authorization",
        "Bearer dkt_s_not-a-session".parse().unwrap(),
    );
    assert!(tokio_tungstenite::connect_async(request).await.is_err());
    // A bad one, or none, in connection_init: the socket is closed with 4403 (Forbidden).
    for payload in [
        json!({"authorization": "Bearer dkt_s_not-a-session"}),
        json!({}),
    ] {
        let mut socket = open(address, Some("graphql-transport-ws")).await.unwrap();
        send(
            &mut socket,
            json!({"type": "connection_init", "payload": payload}),
        )
        .await;
        assert_eq!(receive(&mut socket).await, Err(4403));
    }
    // Subscribing before connection_init is refused (4401, Unauthorized).
    let mut socket = open(address, Some("graphql-transport-ws")).await.unwrap();
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { events { position } }"}}),
    )
    .await;
    assert_eq!(receive(&mut socket).await, Err(4401));
    handle.stop(false).await;
}

/// Runs tests/clients/subscribe.mjs, which subscribes with graphql-ws, the protocol's reference
/// client, and prints one JSON line per event.
fn reference_client(address: SocketAddr, token: &str, from: u64, count: usize) -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    assert!(
        dir.join("node_modules/graphql-ws").exists(),
        "the reference client is not installed: run `npm ci --prefix tests/clients` (.ci/run does)"
    );
    let output = std::process::Command::new("node")
        .arg(dir.join("subscribe.mjs"))
        .arg(format!("ws://{address}/graphql"))
        .arg(token)
        .arg(from.to_string())
        .arg(count.to_string())
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "graphql-ws failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

async fn the_reference_client_receives_and_resumes(backend: Backend) {
    let desk = Desk::new(backend).await;
    let (address, handle) = serve(&desk.docket).await;
    let from = desk.docket.log.head().await.unwrap().position + 1;
    let mut positions = Vec::new();
    for body in ["One", "Two", "Three", "Four"] {
        positions.push(desk.note("p.one", OURS, body).await);
    }
    let token = desk.users["a.ttorney"].token.clone();
    // Two events, then the client disconnects; it resumes after the last one it saw.
    let first = tokio::task::spawn_blocking({
        let token = token.clone();
        move || reference_client(address, &token, from, 2)
    })
    .await
    .unwrap();
    let seen: Vec<u64> = first
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(seen, positions[..2]);
    let resume = seen[1] + 1;
    let rest = tokio::task::spawn_blocking(move || reference_client(address, &token, resume, 2))
        .await
        .unwrap();
    let seen: Vec<u64> = rest
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(seen, positions[2..]);
    assert_eq!(rest[1]["data"]["private"]["body"], "Four");
    handle.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_on_one_process_receives_what_another_process_appends() {
    let desk = Desk::new(Backend::Postgres).await;
    let (address, handle) = serve(&desk.docket).await;
    // A second Docket process on the same database and data directory.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let mut other = desk
        ._log
        .docket_command()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("a second docket serve");
    let other_address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut ready = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(other_address).await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the second process listens");

    let mut socket = open(address, Some("graphql-transport-ws")).await.unwrap();
    let token = desk.users["a.ttorney"].token.clone();
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}),
    )
    .await;
    assert_eq!(
        receive(&mut socket).await.unwrap()["type"],
        "connection_ack"
    );
    let from = desk.docket.log.head().await.unwrap().position + 1;
    send(
        &mut socket,
        json!({"id": "x", "type": "subscribe", "payload": {
            "query": "subscription($from: Int) { events(from: $from) { position data } }",
            "variables": {"from": from}
        }}),
    )
    .await;
    // p.one's session (stored in the shared database) adds notes through the other process.
    let partner = desk.users["p.one"].token.clone();
    for body in ["Through the other process", "And again"] {
        let query = json!({ "query": format!(
            r#"mutation {{ addNote(number: "{OURS}", body: "{body}") {{ userErrors {{ code }} }} }}"#
        )});
        let reply = post_graphql(other_address, &partner, &query).await;
        assert!(reply.contains("\"userErrors\":[]"), "{reply}");
    }
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let message = receive(&mut socket).await.unwrap();
        assert_eq!(message["type"], "next", "{message}");
        bodies.push(message["payload"]["data"]["events"]["data"]["private"]["body"].clone());
    }
    assert_eq!(
        bodies,
        [json!("Through the other process"), json!("And again")]
    );
    let _ = other.kill();
    let _ = other.wait();
    handle.stop(false).await;
}

/// POSTs a GraphQL request with a bearer token and returns the response body.
async fn post_graphql(address: SocketAddr, token: &str, body: &Value) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.to_string();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

async fn breaches_of_the_protocol_close_the_connection_with_its_codes(backend: Backend) {
    let desk = Desk::new(backend).await;
    let (address, handle) = serve(&desk.docket).await;
    let token = desk.users["a.ttorney"].token.clone();
    let init =
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}});
    let from = desk.docket.log.head().await.unwrap().position + 1;
    let subscribe = |id: &str| {
        json!({"id": id, "type": "subscribe", "payload": {
            "query": format!("subscription {{ events(from: {from}) {{ position }} }}")
        }})
    };
    let connected = || async {
        let mut socket = open(address, Some("graphql-transport-ws")).await.unwrap();
        send(&mut socket, init.clone()).await;
        assert_eq!(
            receive(&mut socket).await.unwrap()["type"],
            "connection_ack"
        );
        socket
    };

    // Something that is not a message of the protocol: 4400.
    let mut socket = connected().await;
    send(&mut socket, json!({"type": "subscribe", "payload": {}})).await;
    assert_eq!(receive(&mut socket).await, Err(4400));

    // A second connection_init: 4429.
    let mut socket = connected().await;
    send(&mut socket, init.clone()).await;
    assert_eq!(receive(&mut socket).await, Err(4429));

    // A completed operation sends nothing more; its id may be used again, and an id already
    // running closes the connection with 4409.
    let mut socket = connected().await;
    send(&mut socket, subscribe("a")).await;
    send(&mut socket, json!({"id": "a", "type": "complete"})).await;
    send(&mut socket, subscribe("b")).await;
    // Messages are handled in order: the pong means the three above were.
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "pong");
    let position = desk.note("p.one", OURS, "Once").await;
    let mut received = Vec::new();
    send(&mut socket, json!({"type": "ping"})).await;
    loop {
        let message = receive(&mut socket).await.unwrap();
        if message["type"] == "pong" && !received.is_empty() {
            break;
        }
        if message["type"] == "next" {
            received.push((
                message["id"].as_str().map(str::to_owned),
                message["payload"]["data"]["events"]["position"].as_u64(),
            ));
            send(&mut socket, json!({"type": "ping"})).await;
        }
    }
    assert_eq!(
        received,
        vec![(Some("b".to_owned()), Some(position))],
        "{received:?}"
    );
    // The new "a" catches up from the start (its `next` may come first); a second "a": 4409.
    send(&mut socket, subscribe("a")).await;
    send(&mut socket, subscribe("a")).await;
    let close = loop {
        match receive(&mut socket).await {
            // (or the answer to a ping sent above)
            Ok(message) => assert!(
                message["id"] == "a" || message["type"] == "pong",
                "{message}"
            ),
            Err(code) => break code,
        }
    };
    assert_eq!(close, 4409);

    // A query over the socket is answered once and completed.
    let mut socket = connected().await;
    send(
        &mut socket,
        json!({"id": "q", "type": "subscribe", "payload": {"query": "{ __typename }"}}),
    )
    .await;
    let answer = receive(&mut socket).await.unwrap();
    assert_eq!(answer["payload"]["data"]["__typename"], "Query");
    let done = receive(&mut socket).await.unwrap();
    assert_eq!(
        (done["id"].as_str(), done["type"].as_str()),
        (Some("q"), Some("complete"))
    );
    handle.stop(false).await;
}
