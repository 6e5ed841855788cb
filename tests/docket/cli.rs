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
