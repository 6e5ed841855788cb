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
