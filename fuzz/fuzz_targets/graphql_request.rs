//! The GraphQL request path as an anonymous client meets it: each input is the body of a
//! `POST /graphql` to a real Docket served on loopback (SQLite in a temporary directory, opened
//! once), so the body's JSON, persisted-query resolution, parsing, the alias, depth and cost
//! limits, validation and execution against the schema all run on it.
//!
//! An input that is not a JSON object is sent as the query text of `{"query": ...}`. Every
//! request must be answered within ten seconds, with a status the API documents and a JSON
//! body; a panic in any thread aborts the run (libFuzzer reports it as a crash).

#![no_main]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use docket::app::Docket;
use docket::server::{Components, http_server_with};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

/// Statuses a GraphQL POST may be answered with.
const DOCUMENTED: &[u16] = &[200, 400, 401, 403, 413, 415, 429, 503];

struct Served {
    address: SocketAddr,
    _runtime: tokio::runtime::Runtime,
    _data: std::path::PathBuf,
}

fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        remove_stale_data();
        let data = std::env::temp_dir().join(format!("{DATA_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let address = runtime.block_on(async {
            let options = docket::store::LogOptions::new(&data);
            let docket = Docket::open_with(&options, Duration::ZERO)
                .await
                .expect("docket opens");
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
            let address = listener.local_addr().expect("address");
            drop(listener);
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
            let server = http_server_with(components, address, Some(1), None).expect("binds");
            tokio::spawn(server);
            // Kept alive for the whole run.
            std::mem::forget(docket);
            address
        });
        Served {
            address,
            _runtime: runtime,
            _data: data,
        }
    })
}

/// The temporary data directories are named after the process that made them.
const DATA_PREFIX: &str = "docket-fuzz-graphql-";

/// Removes the data directories of earlier runs whose process has ended.
fn remove_stale_data() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(DATA_PREFIX) else {
            continue;
        };
        if !std::path::Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn body_of(data: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(_)) => data.to_vec(),
        _ => json!({ "query": String::from_utf8_lossy(data) })
            .to_string()
            .into_bytes(),
    }
}

fuzz_target!(|data: &[u8]| {
    let served = served();
    let body = body_of(data);
    let mut stream = TcpStream::connect(served.address).expect("the server accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        served.address,
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("request head");
    // The server may refuse before reading everything (413): a short write is not a finding.
    let _ = stream.write_all(&body);
    let mut reply = Vec::new();
    if let Err(error) = stream.read_to_end(&mut reply) {
        assert!(
            error.kind() != std::io::ErrorKind::WouldBlock
                && error.kind() != std::io::ErrorKind::TimedOut,
            "no answer within ten seconds"
        );
    }
    let text = String::from_utf8_lossy(&reply);
    let Some((head, _)) = text.split_once("\r\n\r\n") else {
        panic!("not an HTTP response: {text:?}");
    };
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status code");
    assert!(DOCUMENTED.contains(&status), "status {status}: {text}");
});
