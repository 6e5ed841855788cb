//! The `docket` binary's commands, as an operator uses them.

use serde_json::Value;

use crate::support::{Backend, TestLog, docket_binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_exits_zero_when_intact_and_one_with_the_failure() {
    let test = TestLog::new(Backend::Sqlite).await;
    assert!(
        test.docket_command()
            .arg("init")
            .status()
            .unwrap()
            .success()
    );
    assert!(
        test.docket_command()
            .args(["keys", "rotate"])
            .status()
            .unwrap()
            .success()
    );

    let intact = test
        .docket_command()
        .args(["verify", "--json"])
        .output()
        .unwrap();
    assert_eq!(intact.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&intact.stdout).unwrap();
    assert_eq!(report["status"], "intact");
    assert_eq!(report["summary"]["events"], 2);
    assert_eq!(report["summary"]["key_rotations"], 1);

    test.drop_triggers().await;
    test.execute(&[
        "UPDATE events SET recorded_at = '2020-01-01T00:00:00.000000Z' WHERE position = 2",
    ])
    .await;
    let broken = test
        .docket_command()
        .args(["verify", "--json"])
        .output()
        .unwrap();
    assert_eq!(broken.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(report["status"], "broken");
    assert_eq!(report["failure"]["position"], 2);
    assert_eq!(report["failure"]["reason"], "hash_mismatch");

    let text = test.docket_command().arg("verify").output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("BROKEN at position 2"));
}

#[test]
fn verify_of_a_missing_log_is_an_error_not_a_new_log() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let output = std::process::Command::new(docket_binary())
        .arg("--data-dir")
        .arg(&missing)
        .arg("verify")
        .env_remove("DOCKET_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(!missing.join("docket.db").exists());
}

#[test]
fn help_documents_flags_and_environment_variables() {
    let output = std::process::Command::new(docket_binary())
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "DOCKET_DATA_DIR",
        "DOCKET_DATABASE_URL",
        "DOCKET_CONFIG",
        "serve",
        "verify",
        "keys",
        "bench",
        "TOML",
    ] {
        assert!(
            help.contains(expected),
            "--help does not mention {expected}"
        );
    }
}

#[test]
fn the_database_url_never_appears_in_output() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(docket_binary())
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--database-url",
            "postgres://docket:s3cret-pw@127.0.0.1:1/none",
            "init",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!all.contains("s3cret-pw"), "{all}");
}

#[test]
fn the_data_directory_and_key_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let status = std::process::Command::new(docket_binary())
        .arg("--data-dir")
        .arg(&data)
        .arg("init")
        .env_remove("DOCKET_DATABASE_URL")
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for entry in std::fs::read_dir(data.join("keys")).unwrap() {
        let mode = entry.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_answers_every_line_with_an_outcome_or_a_stable_code() {
    use std::io::Write;
    let test = TestLog::new(Backend::Sqlite).await;
    let big = "x".repeat(300);
    let lines = [
        r#"{"stream":"matter:1","expected_version":"no_stream","actor":"user:ada","events":[{"type":"matter.opened","payload":{"title":"A"}}]}"#.to_owned(),
        "this is not json".to_owned(),
        r#"{"stream":"matter:1","expected_version":"no_stream","actor":"user:ada","events":[{"type":"matter.opened","payload":{"title":"A"}}]}"#.to_owned(),
        format!(r#"{{"stream":"matter:2","expected_version":"any","actor":"user:ada","events":[{{"type":"matter.opened","payload":{{"t":"{big}"}}}}]}}"#),
        r#"{"stream":"Not A Stream","expected_version":"any","actor":"user:ada","events":[]}"#.to_owned(),
    ];
    let mut child = test
        .docket_command()
        .args(["--max-payload-bytes", "200", "append"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all((lines.join("\n") + "\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "some lines failed");
    let mut answers: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    answers.sort_by_key(|answer| answer["line"].as_u64());
    let codes: Vec<&str> = answers
        .iter()
        .map(|a| a["error"]["code"].as_str().unwrap_or("ok"))
        .collect();
    assert_eq!(
        codes,
        [
            "ok",
            "INVALID_JSON",
            "VERSION_CONFLICT",
            "INVALID_APPEND",
            "INVALID_JSON"
        ]
    );
    assert_eq!(answers[0]["outcome"]["first_position"], 2);
    assert!(
        answers[3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit is 200")
    );
    assert!(
        !answers[3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("xxx")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_healthz_with_the_head_of_the_log() {
    use std::io::{Read, Write};
    let test = TestLog::new(Backend::Sqlite).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = test
        .docket_command()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut response = String::new();
    for _ in 0..100 {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .unwrap();
            stream.read_to_string(&mut response).unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("x-request-id: "),
        "{response}"
    );
    let body: Value = serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["backend"], "sqlite");
    assert_eq!(body["log"]["position"], 1);
}

/// Runs `docket serve` on a free loopback port with `configure`'s arguments and environment
/// (the serving variables cleared first), sends each raw HTTP request, and returns the
/// responses and what the server wrote on standard error.
fn serve_and_ask(
    test: &TestLog,
    configure: impl FnOnce(&mut std::process::Command),
    requests: &[String],
) -> (Vec<String>, String) {
    use std::io::{Read, Write};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = test.docket_command();
    for variable in [
        "DOCKET_CONFIG",
        "DOCKET_LISTEN",
        "DOCKET_DEV",
        "DOCKET_PERSISTED_QUERIES_ONLY",
        "DOCKET_PERSISTED_ONLY",
        "DOCKET_READ_YOUR_WRITES_MS",
    ] {
        command.env_remove(variable);
    }
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("DOCKET_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    configure(&mut command);
    let mut server = command.spawn().unwrap();
    let mut ready = false;
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            ready = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let responses = requests
        .iter()
        .map(|request| {
            let mut response = String::new();
            if ready {
                let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                stream.write_all(request.as_bytes()).unwrap();
                stream.read_to_string(&mut response).unwrap();
            }
            response
        })
        .collect();
    server.kill().unwrap();
    let output = server.wait_with_output().unwrap();
    // Without colours: the log is coloured even when it is not a terminal.
    let stderr = regex::Regex::new("\x1b\\[[0-9;]*m")
        .unwrap()
        .replace_all(&String::from_utf8_lossy(&output.stderr), "")
        .into_owned();
    assert!(ready, "the server did not start: {stderr}");
    (responses, stderr)
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
}

fn post_graphql(query: &str) -> String {
    let body = serde_json::json!({ "query": query }).to_string();
    format!(
        "POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_settings_come_from_flags_over_the_environment_over_the_file() {
    let test = TestLog::new(Backend::Sqlite).await;
    let file = test.dir.path().join("docket.toml");
    std::fs::write(
        &file,
        "development = true\npersisted_queries_only = true\nread_your_writes_ms = 250\n",
    )
    .unwrap();
    let requests = [get("/graphiql"), post_graphql("{ __typename }")];
    let status = |response: &str| response.lines().next().unwrap_or_default().to_owned();

    // The environment beats the file; what it does not set comes from the file.
    let (responses, _) = serve_and_ask(
        &test,
        |command| {
            command.env("DOCKET_DEV", "0");
        },
        &requests,
    );
    assert!(status(&responses[0]).contains(" 404"), "{}", responses[0]);
    assert!(
        responses[1].contains("PERSISTED_QUERY_REQUIRED"),
        "{}",
        responses[1]
    );

    // Flags beat the environment.
    let (responses, stderr) = serve_and_ask(
        &test,
        |command| {
            command
                .args(["--dev", "--persisted-queries-only=false"])
                .args(["--read-your-writes-ms", "1500"])
                .env("DOCKET_DEV", "0")
                .env("DOCKET_PERSISTED_QUERIES_ONLY", "1")
                .env("DOCKET_READ_YOUR_WRITES_MS", "20");
        },
        &requests,
    );
    assert!(status(&responses[0]).contains(" 200"), "{}", responses[0]);
    assert!(
        responses[1].contains(r#""__typename":"Query""#),
        "{}",
        responses[1]
    );
    assert!(stderr.contains("read_your_writes_ms=1500"), "{stderr}");
    assert!(!stderr.contains("GraphiQL is off"), "{stderr}");

    // Without the file: development is off (and says so), and the old name of the
    // persisted-queries variable is still honoured, with a warning.
    std::fs::remove_file(&file).unwrap();
    let (responses, stderr) = serve_and_ask(
        &test,
        |command| {
            command.env("DOCKET_PERSISTED_ONLY", "1");
        },
        &requests,
    );
    assert!(status(&responses[0]).contains(" 404"), "{}", responses[0]);
    assert!(
        responses[1].contains("PERSISTED_QUERY_REQUIRED"),
        "{}",
        responses[1]
    );
    assert!(stderr.contains("GraphiQL is off"), "{stderr}");
    assert!(
        stderr.contains("DOCKET_PERSISTED_ONLY is deprecated"),
        "{stderr}"
    );
    assert!(stderr.contains("read_your_writes_ms=5000"), "{stderr}");
}

#[test]
fn serve_refuses_bad_serving_settings_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(docket_binary());
        command
            .arg("--data-dir")
            .arg(dir.path())
            .arg("serve")
            .args(args)
            .env_remove("DOCKET_DATABASE_URL")
            .env_remove("DOCKET_DEV")
            .env_remove("DOCKET_PERSISTED_QUERIES_ONLY")
            .env_remove("DOCKET_READ_YOUR_WRITES_MS");
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = serve(&["--read-your-writes-ms", "60001"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("read_your_writes_ms is 60001; it must be between 0 and 60000"),
        "{stderr}"
    );
    let (code, stderr) = serve(&[], &[("DOCKET_READ_YOUR_WRITES_MS", "-5")]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, stderr) = serve(&[], &[("DOCKET_DEV", "maybe")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("DOCKET_DEV") || stderr.contains("--dev"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("docket.db").exists(),
        "nothing is created when the settings are refused"
    );

    let help = std::process::Command::new(docket_binary())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for expected in [
        "--dev",
        "DOCKET_DEV",
        "--persisted-queries-only",
        "DOCKET_PERSISTED_QUERIES_ONLY",
        "--read-your-writes-ms",
        "DOCKET_READ_YOUR_WRITES_MS",
    ] {
        assert!(
            help.contains(expected),
            "serve --help does not mention {expected}"
        );
    }
}

/// `docket users add` prints a one-time enrolment token that enrols the user; `users list`,
/// `unlock` and `disable` work on the directory the API reads, and each is an access record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_add_prints_an_enrolment_token_that_enrols_the_user() {
    let test = TestLog::new(Backend::Sqlite).await;
    let added = test
        .docket_command()
        .args([
            "users",
            "add",
            "--email",
            "Ada@Firm.example",
            "--name",
            "Ada Obi",
            "--role",
            "admin",
        ])
        .output()
        .unwrap();
    assert_eq!(
        added.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let stdout = String::from_utf8_lossy(&added.stdout).to_string();
    assert!(stdout.contains("user ada added (admin)"), "{stdout}");
    let token = stdout
        .split_whitespace()
        .find(|word| word.starts_with("dke_"))
        .expect("an enrolment token")
        .to_owned();
    let refused = test
        .docket_command()
        .args([
            "users",
            "add",
            "--email",
            "x@firm.example",
            "--name",
            "X",
            "--role",
            "boss",
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown role boss"));

    let docket = test.open_docket(std::time::Duration::ZERO).await;
    let start = docket
        .identity
        .begin_enrolment(&token)
        .await
        .expect("the token works");
    assert_eq!(start.user_id, "ada");
    assert_eq!(start.email, "ada@firm.example");
    drop(docket);

    let listed = test
        .docket_command()
        .args(["users", "list"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listing.contains("ada") && listing.contains("pending"),
        "{listing}"
    );
    let disabled = test
        .docket_command()
        .args(["users", "disable", "ada", "--reason", "test"])
        .output()
        .unwrap();
    assert_eq!(disabled.status.code(), Some(0));
    let listed = test
        .docket_command()
        .args(["users", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("disabled"));
    let unknown = test
        .docket_command()
        .args(["users", "unlock", "nobody"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));

    let docket = test.open_docket(std::time::Duration::ZERO).await;
    let records = docket
        .access
        .query(&docket::access::index::AccessQuery {
            principal: Some("system".into()),
            matter: None,
            decision: None,
            from: None,
            to: None,
            before_position: None,
            limit: 100,
        })
        .await
        .unwrap();
    let operations: Vec<&str> = records.iter().map(|row| row.operation.as_str()).collect();
    for operation in ["cli users add", "cli users list", "cli users disable"] {
        assert!(operations.contains(&operation), "{operations:?}");
    }
}

/// `docket keys rotate --access` rotates the access chain's key, and both chains still verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_chain_key_rotates_on_its_own() {
    let test = TestLog::new(Backend::Sqlite).await;
    assert!(
        test.docket_command()
            .arg("init")
            .status()
            .unwrap()
            .success()
    );
    let rotated = test
        .docket_command()
        .args(["keys", "rotate", "--access"])
        .output()
        .unwrap();
    assert_eq!(
        rotated.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert!(
        String::from_utf8_lossy(&rotated.stdout).starts_with("access chain signing key rotated")
    );
    let verified = test
        .docket_command()
        .args(["verify", "--json"])
        .output()
        .unwrap();
    assert_eq!(verified.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(report["access"]["status"], "intact", "{report}");
    assert_eq!(report["access"]["summary"]["key_rotations"], 1, "{report}");
    assert_eq!(
        report["summary"]["key_rotations"], 0,
        "the event log's key is untouched"
    );
}
