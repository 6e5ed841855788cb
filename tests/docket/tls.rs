//! TLS for `docket serve`: HTTPS and WSS with a certificate from a test authority, HSTS only
//! over TLS, plain HTTP refused on the TLS port, reloads (called directly, on file changes and
//! on SIGHUP) that reach new connections and never replace a good certificate with a bad one,
//! and the production rule that refuses plain HTTP off loopback.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use docket::config::{ConfigError, Overrides, Settings, TlsFiles};
use docket::server::STRICT_TRANSPORT_SECURITY;
use docket::server::tls::{CertificateStore, TlsError, load, spawn_reloader};
use futures::{SinkExt, StreamExt};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::on_both_backends;
use crate::subscriptions::{Desk, OURS};
use crate::support::{Backend, TestDocket, TestLog, docket_binary, serve, serve_tls};

/// A self-signed certificate authority of the test.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate for localhost and 127.0.0.1: its chain (leaf, then the authority) and
/// key as PEM, and the leaf's DER to recognise it in a handshake.
struct Leaf {
    chain_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Authority { issuer }
    }

    fn root(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    fn leaf(&self, serial: u64) -> Leaf {
        self.leaf_with(serial, KeyPair::generate().unwrap())
    }

    fn leaf_with(&self, serial: u64, key: KeyPair) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.serial_number = Some(SerialNumber::from(serial));
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            chain_pem: format!("{}{}", cert.pem(), self.issuer.pem()),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// Writes `leaf` to `cert.pem` and `key.pem` in `dir` (replacing them) and names them.
fn install(dir: &Path, leaf: &Leaf) -> TlsFiles {
    let files = files_in(dir);
    std::fs::write(&files.cert, &leaf.chain_pem).unwrap();
    std::fs::write(&files.key, &leaf.key_pem).unwrap();
    files
}

fn files_in(dir: &Path) -> TlsFiles {
    TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

/// A client that trusts only `root`, speaking the given TLS versions and offering `alpn`.
fn client_config(
    root: &CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    config
}

fn both_versions() -> [&'static rustls::SupportedProtocolVersion; 2] {
    [&rustls::version::TLS13, &rustls::version::TLS12]
}

/// What a completed handshake with "localhost" at `address` showed.
#[derive(Debug)]
struct Handshake {
    leaf: Vec<u8>,
    version: rustls::ProtocolVersion,
    alpn: Option<Vec<u8>>,
}

/// A fresh TCP connection and TLS handshake (blocking, off the runtime's threads).
async fn handshake(
    address: SocketAddr,
    config: rustls::ClientConfig,
) -> std::io::Result<Handshake> {
    tokio::task::spawn_blocking(move || {
        let name = ServerName::try_from("localhost").unwrap();
        let mut connection =
            rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
        let mut socket = std::net::TcpStream::connect(address)?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        while connection.is_handshaking() {
            connection.complete_io(&mut socket)?;
        }
        Ok(Handshake {
            leaf: connection
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| leaf.to_vec())
                .unwrap_or_default(),
            version: connection.protocol_version().unwrap(),
            alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
        })
    })
    .await
    .unwrap()
}

/// An HTTP client that trusts only `root` and never goes through a proxy.
fn https_client(root: &CertificateDer<'static>) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(client_config(root, &both_versions(), &[b"http/1.1"]))
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

on_both_backends!(
    https_serves_with_hsts_and_plain_http_has_none,
    wss_speaks_graphql_transport_ws,
);

async fn https_serves_with_hsts_and_plain_http_has_none(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new("Docket test authority");
    let files = install(dir.path(), &authority.leaf(1));
    let store = CertificateStore::open(&files).unwrap();
    let (address, handle) = serve_tls(&test.docket, store).await;
    let port = address.port();

    let client = https_client(&authority.root());
    let response = client
        .get(format!("https://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["strict-transport-security"],
        STRICT_TRANSPORT_SECURITY
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["status"], "ok");
    // Every response, not only successful ones.
    let missing = client
        .get(format!("https://127.0.0.1:{port}/no-such-route"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["strict-transport-security"],
        STRICT_TRANSPORT_SECURITY
    );

    // Plain HTTP to the TLS port gets no answer.
    // (The same client: it speaks http:// too, and needs no process-wide crypto provider.)
    let plain = client.clone();
    assert!(
        plain
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_err()
    );

    // TLS 1.3 and 1.2 are both served; ALPN settles on HTTP/1.1 even when h2 is offered.
    for (version, expected) in [
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
    ] {
        let config = client_config(&authority.root(), &[version], &[b"h2", b"http/1.1"]);
        let shown = handshake(address, config).await.unwrap();
        assert_eq!(shown.version, expected);
        assert_eq!(shown.alpn.as_deref(), Some(&b"http/1.1"[..]));
    }
    handle.stop(false).await;

    // The same server over plain HTTP: no HSTS.
    let (address, handle) = serve(&test.docket).await;
    let response = plain
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none(),
        "{:?}",
        response.headers()
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    handle.stop(false).await;
}

async fn wss_speaks_graphql_transport_ws(backend: Backend) {
    let desk = Desk::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new("Docket test authority");
    let store = CertificateStore::open(&install(dir.path(), &authority.leaf(7))).unwrap();
    let (address, handle) = serve_tls(&desk.docket, store).await;

    let mut request = format!("wss://127.0.0.1:{}/graphql", address.port())
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let connector = tokio_tungstenite::Connector::Rustls(Arc::new(client_config(
        &authority.root(),
        &both_versions(),
        &[],
    )));
    let (mut socket, upgrade) =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector))
            .await
            .unwrap();
    assert_eq!(
        upgrade.headers()["strict-transport-security"],
        STRICT_TRANSPORT_SECURITY
    );
    let token = desk.users["a.ttorney"].token.clone();
    send_json(
        &mut socket,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}),
    )
    .await;
    assert_eq!(next_json(&mut socket).await["type"], "connection_ack");
    let from = desk.docket.log.head().await.unwrap().position + 1;
    send_json(
        &mut socket,
        json!({"id": "s1", "type": "subscribe", "payload": {
            "query": "subscription($from: Int, $m: [String!]) { events(from: $from, matters: $m) { position data } }",
            "variables": {"from": from, "m": [OURS]}
        }}),
    )
    .await;
    let position = desk.note("p.one", OURS, "Over TLS").await;
    let message = next_json(&mut socket).await;
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["payload"]["data"]["events"]["position"], position);
    assert_eq!(
        message["payload"]["data"]["events"]["data"]["private"]["body"],
        "Over TLS"
    );
    handle.stop(false).await;
}

async fn send_json<S>(socket: &mut tokio_tungstenite::WebSocketStream<S>, message: Value)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next text frame as JSON (within 10 s).
async fn next_json<S>(socket: &mut tokio_tungstenite::WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket stays open")
            .unwrap();
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

mod reloading;
mod starting;
