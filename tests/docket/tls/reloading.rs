//! Reloading the certificate: a reload reaches the next connection, a failed one keeps the
//! certificate in force, and both triggers (the files changing, SIGHUP) work. The server runs
//! on SQLite only: nothing here touches storage.

use super::*;

/// Waits up to 10 s for `store`'s leaf to become `expected`.
async fn until_leaf(store: &CertificateStore, expected: &[u8]) -> bool {
    for _ in 0..100 {
        if store.chain().first().map(|leaf| leaf.as_ref()) == Some(expected) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reaches_new_connections_and_a_broken_one_keeps_the_certificate() {
    let test = TestDocket::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let first_authority = Authority::new("First authority");
    let second_authority = Authority::new("Second authority");
    let a = first_authority.leaf(100);
    let b = second_authority.leaf(200);
    let files = install(dir.path(), &a);
    let store = CertificateStore::open(&files).unwrap();
    let (address, handle) = serve_tls(&test.docket, store.clone()).await;
    let trusts_first = || client_config(&first_authority.root(), &both_versions(), &[]);
    let trusts_second = || client_config(&second_authority.root(), &both_versions(), &[]);
    assert_eq!(
        handshake(address, trusts_first()).await.unwrap().leaf,
        a.der
    );

    install(dir.path(), &b);
    // Written but not reloaded: still A.
    assert_eq!(
        handshake(address, trusts_first()).await.unwrap().leaf,
        a.der
    );
    store.reload().unwrap();
    assert_eq!(
        handshake(address, trusts_second()).await.unwrap().leaf,
        b.der
    );
    assert!(handshake(address, trusts_first()).await.is_err());

    // Broken files: each reload fails with its reason and B stays in force.
    let third = first_authority.leaf(300);
    let broken: [(&str, String, TlsError); 3] = [
        (
            "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
            b.key_pem.clone(),
            TlsError::CertificatePem(files.cert.display().to_string()),
        ),
        (
            // A certificate of another key beside B's key.
            &third.chain_pem,
            b.key_pem.clone(),
            TlsError::KeyMismatch {
                cert: files.cert.display().to_string(),
                key: files.key.display().to_string(),
            },
        ),
        (
            &b.chain_pem,
            String::new(),
            TlsError::NoKey(files.key.display().to_string()),
        ),
    ];
    for (cert, key, expected) in &broken {
        std::fs::write(&files.cert, cert).unwrap();
        std::fs::write(&files.key, key).unwrap();
        let error = store.reload().unwrap_err();
        assert_eq!(&error, expected);
        assert_eq!(
            handshake(address, trusts_second()).await.unwrap().leaf,
            b.der
        );
    }
    // A missing file too.
    std::fs::remove_file(&files.key).unwrap();
    assert!(matches!(store.reload(), Err(TlsError::Unreadable { .. })));
    assert_eq!(
        handshake(address, trusts_second()).await.unwrap().leaf,
        b.der
    );
    handle.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_files_are_reloaded_and_a_bad_change_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new("Watched authority");
    let a = authority.leaf(1);
    let b = authority.leaf(2);
    let c = authority.leaf(3);
    let files = install(dir.path(), &a);
    let store = CertificateStore::open(&files).unwrap();
    let watcher = spawn_reloader(store.clone(), Duration::from_millis(100));

    install(dir.path(), &b);
    assert!(
        until_leaf(&store, &b.der).await,
        "the change to B is picked up"
    );
    // A new certificate beside the old key (a renewal half-written) does not load...
    std::fs::write(&files.cert, &c.chain_pem).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.chain()[0].as_ref(), &b.der[..]);
    // ...and its key, written next, completes it.
    std::fs::write(&files.key, &c.key_pem).unwrap();
    assert!(
        until_leaf(&store, &c.der).await,
        "the completed change to C is picked up"
    );
    watcher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new("Signalled authority");
    let a = authority.leaf(1);
    let b = authority.leaf(2);
    let files = install(dir.path(), &a);
    let store = CertificateStore::open(&files).unwrap();
    // The file check would take an hour: only the signal can cause the reload.
    let watcher = spawn_reloader(store.clone(), Duration::from_secs(3600));
    install(dir.path(), &b);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.chain()[0].as_ref(), &a.der[..]);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(until_leaf(&store, &b.der).await, "SIGHUP reloads B");
    watcher.abort();
}

#[test]
fn loading_names_what_is_wrong_and_never_shows_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new("Loading authority");
    let leaf = authority.leaf(9);
    let files = install(dir.path(), &leaf);
    assert!(load(&files).is_ok());
    // An Ed25519 key loads as well as the ECDSA one.
    let ed25519 = authority.leaf_with(10, KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap());
    assert!(load(&install(dir.path(), &ed25519)).is_ok());

    let cert = files.cert.display().to_string();
    let key = files.key.display().to_string();
    let key_body: String = leaf.key_pem.lines().nth(1).unwrap().to_owned();
    let cases: [(&str, &str, TlsError); 5] = [
        (
            // Only a key in the certificate file.
            &leaf.key_pem,
            &leaf.key_pem,
            TlsError::NoCertificate(cert.clone()),
        ),
        (
            "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
            &leaf.key_pem,
            TlsError::BadCertificate(cert.clone()),
        ),
        (
            &leaf.chain_pem,
            &leaf.chain_pem,
            TlsError::NoKey(key.clone()),
        ),
        (
            &leaf.chain_pem,
            "-----BEGIN PRIVATE KEY-----\naGVsbG8=\n-----END PRIVATE KEY-----\n",
            TlsError::UnusableKey(key.clone()),
        ),
        (
            &ed25519.chain_pem,
            &leaf.key_pem,
            TlsError::KeyMismatch {
                cert: cert.clone(),
                key: key.clone(),
            },
        ),
    ];
    for (cert_pem, key_pem, expected) in cases {
        std::fs::write(&files.cert, cert_pem).unwrap();
        std::fs::write(&files.key, key_pem).unwrap();
        let error = load(&files).unwrap_err();
        assert_eq!(error, expected);
        let message = error.to_string();
        assert!(!message.contains(&key_body), "{message}");
        assert!(
            message.contains("cert.pem") || message.contains("key.pem"),
            "{message}"
        );
    }
}
