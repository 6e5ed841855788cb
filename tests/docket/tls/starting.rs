//! The transport settings: the certificate and key go together, plain HTTP is refused off
//! loopback outside development mode unless a proxy is declared, and `docket serve` serves
//! HTTPS from its flags, reloads on SIGHUP, and refuses bad settings before it creates anything.

use super::*;

/// Settings from `overrides`, over an empty data directory (no file read).
fn resolve(dir: &Path, overrides: Overrides) -> Result<Settings, ConfigError> {
    Settings::resolve(Overrides {
        data_dir: Some(dir.to_owned()),
        ..overrides
    })
}

#[test]
fn the_certificate_and_key_go_together_and_plain_http_stays_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let cert = Some(dir.path().join("cert.pem"));
    let key = Some(dir.path().join("key.pem"));
    let only_cert = resolve(
        dir.path(),
        Overrides {
            tls_cert: cert.clone(),
            ..Overrides::default()
        },
    );
    assert!(matches!(only_cert, Err(ConfigError::TlsPair("tls_cert"))));
    let only_key = resolve(
        dir.path(),
        Overrides {
            tls_key: key.clone(),
            ..Overrides::default()
        },
    );
    assert!(matches!(only_key, Err(ConfigError::TlsPair("tls_key"))));
    // An empty path is no path: both empty is plain HTTP.
    let emptied = resolve(
        dir.path(),
        Overrides {
            tls_cert: Some("".into()),
            tls_key: Some("".into()),
            ..Overrides::default()
        },
    )
    .unwrap();
    assert_eq!(emptied.tls, None);

    let transport = |listen: &str, tls: bool, development: bool, allow_plain_http: bool| {
        resolve(
            dir.path(),
            Overrides {
                listen: Some(listen.to_owned()),
                tls_cert: cert.clone().filter(|_| tls),
                tls_key: key.clone().filter(|_| tls),
                development: Some(development),
                allow_plain_http: Some(allow_plain_http),
                ..Overrides::default()
            },
        )
        .unwrap()
        .check_transport()
    };
    for loopback in ["127.0.0.1:8080", "127.8.9.10:1", "[::1]:8080"] {
        assert!(
            transport(loopback, false, false, false).is_ok(),
            "{loopback}"
        );
    }
    for public in ["0.0.0.0:8080", "[::]:8080", "192.0.2.10:443"] {
        let refused = transport(public, false, false, false).unwrap_err();
        assert!(
            matches!(refused, ConfigError::PlainHttpRefused(address) if address.to_string() == public),
            "{public}"
        );
        let message = refused.to_string();
        assert!(
            message.contains("--tls-cert") && message.contains("--allow-plain-http"),
            "{message}"
        );
        assert!(transport(public, true, false, false).is_ok());
        assert!(transport(public, false, true, false).is_ok());
        assert!(transport(public, false, false, true).is_ok());
    }

    // The file keys, under flags as always.
    std::fs::write(
        dir.path().join("docket.toml"),
        "listen = \"0.0.0.0:8443\"\ntls_cert = \"/etc/docket/cert.pem\"\n\
         tls_key = \"/etc/docket/key.pem\"\nallow_plain_http = true\n",
    )
    .unwrap();
    let from_file = resolve(dir.path(), Overrides::default()).unwrap();
    assert_eq!(
        from_file.tls,
        Some(TlsFiles {
            cert: "/etc/docket/cert.pem".into(),
            key: "/etc/docket/key.pem".into(),
        })
    );
    assert!(from_file.allow_plain_http);
    let overridden = resolve(
        dir.path(),
        Overrides {
            tls_cert: Some("".into()),
            tls_key: Some("".into()),
            allow_plain_http: Some(false),
            ..Overrides::default()
        },
    )
    .unwrap();
    assert!(matches!(
        overridden.check_transport(),
        Err(ConfigError::PlainHttpRefused(_))
    ));
}

/// `docket serve` with `args` on an empty data directory, expected to refuse: its exit code
/// and standard error.
fn refused_serve(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = serve_command(dir).args(args).output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `docket serve` on `dir` (SQLite) with the transport and serving variables cleared.
fn serve_command(dir: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(docket_binary());
    command.arg("--data-dir").arg(dir).arg("serve");
    for variable in [
        "DOCKET_CONFIG",
        "DOCKET_DATABASE_URL",
        "DOCKET_LISTEN",
        "DOCKET_DEV",
        "DOCKET_TLS_CERT",
        "DOCKET_TLS_KEY",
        "DOCKET_ALLOW_PLAIN_HTTP",
    ] {
        command.env_remove(variable);
    }
    command
}

#[test]
fn serve_refuses_plain_http_off_loopback_and_bad_tls_before_creating_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, stderr) = refused_serve(&data, &["--listen", "0.0.0.0:0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing to serve plain HTTP on 0.0.0.0:0")
            && stderr.contains("--allow-plain-http"),
        "{stderr}"
    );

    let authority = Authority::new("CLI authority");
    let files = install(dir.path(), &authority.leaf(1));
    let cert = files.cert.to_str().unwrap();
    let (code, stderr) = refused_serve(&data, &["--listen", "0.0.0.0:0", "--tls-cert", cert]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("go together: tls_cert"), "{stderr}");

    // The key of another certificate: refused at start-up, naming the files only.
    let other = authority.leaf(2);
    let other_key = dir.path().join("other-key.pem");
    std::fs::write(&other_key, &other.key_pem).unwrap();
    let other_key = other_key.to_str().unwrap();
    let (code, stderr) = refused_serve(
        &data,
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert,
            "--tls-key",
            other_key,
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("does not match the certificate"),
        "{stderr}"
    );
    let key_body = other.key_pem.lines().nth(1).unwrap();
    assert!(!stderr.contains(key_body), "{stderr}");
    assert!(!data.exists(), "nothing is created when serving is refused");

    // Declaring a TLS-terminating proxy lets plain HTTP listen on every interface.
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = serve_command(&data)
        .args(["--listen", &format!("0.0.0.0:{port}"), "--allow-plain-http"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut answer = String::new();
    for _ in 0..300 {
        use std::io::{Read, Write};
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .unwrap();
            stream.read_to_string(&mut answer).unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        !answer
            .to_ascii_lowercase()
            .contains("strict-transport-security"),
        "{answer}"
    );
}

/// Waits up to 30 s for a TLS handshake with `address` to succeed, returning it.
async fn first_handshake(address: SocketAddr, root: &CertificateDer<'static>) -> Handshake {
    for _ in 0..300 {
        if let Ok(shown) = handshake(address, client_config(root, &both_versions(), &[])).await {
            return shown;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("docket serve never answered over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_over_tls_from_its_flags_and_reload_on_sighup() {
    let test = TestLog::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new("Served authority");
    let a = authority.leaf(1);
    let b = authority.leaf(2);
    let files = install(dir.path(), &a);
    {
        use std::os::unix::fs::PermissionsExt;
        let readable = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(&files.key, readable).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut server = serve_command(test.dir.path())
        .args(["--listen", &address.to_string()])
        .arg("--tls-cert")
        .arg(&files.cert)
        .env("DOCKET_TLS_KEY", &files.key)
        .env("DOCKET_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(
        first_handshake(address, &authority.root()).await.leaf,
        a.der
    );
    let response = https_client(&authority.root())
        .get(format!("https://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["strict-transport-security"],
        STRICT_TRANSPORT_SECURITY
    );

    install(dir.path(), &b);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut reloaded = false;
    for _ in 0..100 {
        let config = client_config(&authority.root(), &both_versions(), &[]);
        if handshake(address, config).await.unwrap().leaf == b.der {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The server is still running: SIGHUP reloads, it does not end the process.
    let still_running = server.try_wait().unwrap().is_none();
    server.kill().unwrap();
    let output = server.wait_with_output().unwrap();
    // Without colours: the log is coloured even when it is not a terminal.
    let stderr = regex::Regex::new("\x1b\\[[0-9;]*m")
        .unwrap()
        .replace_all(&String::from_utf8_lossy(&output.stderr), "")
        .into_owned();
    assert!(
        reloaded,
        "a new connection sees the certificate installed before SIGHUP"
    );
    assert!(still_running);
    assert!(stderr.contains("TLS certificate reloaded"), "{stderr}");
    // The test's key file has mode 0644: worth a warning, not a refusal.
    assert!(stderr.contains("readable by other users"), "{stderr}");
    assert!(
        !stderr.contains(a.key_pem.lines().nth(1).unwrap()),
        "{stderr}"
    );
}
