//! Damage to the SQLite database file itself, as a failing disk or a careless copy would do it:
//! bytes changed inside the page that holds an event, found by searching the file for what
//! that event stores. `docket verify` must fail with a non-zero exit and a message naming the
//! problem; it must never panic and never report the log intact.
//!
//! Three kinds of damage: one byte of a stored payload (the page stays valid SQLite, the event's
//! hash no longer matches), one byte of a stored event hash, and the page's b-tree header
//! (SQLite itself finds the page malformed).
//!
//! PostgreSQL has no faithful equivalent here: its pages live in the data directory of a server
//! shared with every other test, and bytes written under a running server are not what it
//! reads (its buffer cache holds the page) while they could damage the other databases. The
//! same logical damage, done through SQL, is covered on PostgreSQL by `tampering.rs`.

use std::path::Path;

use futures::TryStreamExt;
use sqlx::Connection;

use super::{assert_failed_cleanly, run_bounded};
use crate::support::{Backend, TestLog, sample_log};

/// A SQLite log of 200 events (and a key rotation), closed, its WAL folded into the main file;
/// with the event whose title is `Smith v. Jones 150`.
async fn closed_log() -> (TestLog, docket::log::Event) {
    let test = TestLog::new(Backend::Sqlite).await;
    let log = test.open().await;
    sample_log(&log, 200).await;
    let pages: Vec<_> = log.pages_from(1).try_collect().await.unwrap();
    let event = pages
        .into_iter()
        .flatten()
        .find(|event| event.payload.contains("\"Smith v. Jones 150\""))
        .unwrap();
    drop(log);
    checkpoint_wal(&test.dir.path().join("docket.db")).await;
    let output = run_bounded(verify_command(&test), super::COMMAND_BOUND);
    assert!(
        output.status.success(),
        "intact before the damage: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    (test, event)
}

/// Moves every page out of the write-ahead log into the database file, and empties the WAL.
async fn checkpoint_wal(path: &Path) {
    let url = format!("sqlite://{}", path.display());
    for _ in 0..100 {
        let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
        if busy == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the WAL could not be checkpointed");
}

fn verify_command(test: &TestLog) -> std::process::Command {
    let mut command = test.docket_command();
    command
        .env_remove("DOCKET_CONFIG")
        .args(["verify", "--log-only"]);
    command
}

/// Every offset at which `needle` occurs in `haystack`.
fn occurrences(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, window)| *window == needle)
        .map(|(offset, _)| offset)
        .collect()
}

/// The database file's page size (header bytes 16 and 17; 1 stands for 65536).
fn page_size(file: &[u8]) -> usize {
    match u16::from_be_bytes([file[16], file[17]]) {
        1 => 65_536,
        size => usize::from(size),
    }
}

/// Changes the database file with `damage`, runs `docket verify`, and returns what it printed.
fn damage_and_verify(test: &TestLog, damage: impl FnOnce(&mut Vec<u8>)) -> String {
    let path = test.dir.path().join("docket.db");
    let mut file = std::fs::read(&path).unwrap();
    damage(&mut file);
    std::fs::write(&path, &file).unwrap();
    let output = run_bounded(verify_command(test), super::COMMAND_BOUND);
    assert_failed_cleanly(&output, "docket verify of a damaged file");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!printed.contains("intact"), "{printed}");
    printed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_byte_in_a_stored_payload_fails_verify_at_that_event() {
    let (test, event) = closed_log().await;
    let printed = damage_and_verify(&test, |file| {
        let found = occurrences(file, b"\"Smith v. Jones 150\"");
        assert_eq!(found.len(), 1, "the payload is stored once");
        // `J` becomes `K`: the page is still valid SQLite, the event is not what was signed.
        file[found[0] + 10] ^= 0x01;
    });
    assert!(
        printed.contains(&format!("position {}", event.position)),
        "names the event: {printed}"
    );
    assert!(printed.contains("hash"), "names the reason: {printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_byte_in_a_stored_hash_fails_verify() {
    let (test, event) = closed_log().await;
    let printed = damage_and_verify(&test, |file| {
        // The hash is stored with its event, and again as the next event's link (and maybe in
        // an index): every copy is changed, as a bad sector under all of them would.
        let found = occurrences(file, &event.hash);
        assert!(!found.is_empty(), "the hash is in the file");
        for offset in found {
            file[offset + 7] ^= 0x80;
        }
    });
    assert!(
        printed.contains(&format!("position {}", event.position))
            || printed.contains(&format!("position {}", event.position + 1)),
        "names the event or its successor: {printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_event_page_fails_verify_as_unreadable() {
    let (test, _) = closed_log().await;
    let printed = damage_and_verify(&test, |file| {
        let found = occurrences(file, b"\"Smith v. Jones 150\"");
        let size = page_size(file);
        let page = found[0] / size * size;
        let header = if page == 0 { 100 } else { page };
        // A table leaf page starts with type 13; bytes 1 to 7 are its free-block pointer, cell
        // count, cell content start and fragmented bytes: all made nonsense.
        assert_eq!(file[header], 13, "the event lives on a table leaf page");
        for byte in &mut file[header..header + 8] {
            *byte = 0xff;
        }
    });
    assert!(
        printed.contains("malformed") || printed.contains("corrupt"),
        "names the damage: {printed}"
    );
}
