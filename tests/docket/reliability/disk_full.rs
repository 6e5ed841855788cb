//! A full disk under the SQLite log: the data directory is put on a tmpfs of a few MiB (the
//! test mounts it, so it needs root, as CI and the development machines have; it fails with
//! that reason otherwise rather than pass without testing anything), a ballast file takes the
//! free space, and appends go on until the disk refuses them.
//!
//! Refused appends fail with the typed `StoreError::StorageFull` (no panic, no partial event);
//! every append acknowledged before stays; once the ballast is removed the same open log takes
//! appends again, and after reopening the log verifies with everything acknowledged in it.
//!
//! The read models on a full disk: the projector's rounds fail with the same typed error, the
//! projections are not marked failed, and it catches up once space is freed.
//!
//! PostgreSQL's disk is the shared server's and is not filled here; the mapping of its
//! `disk_full` class to the same error is unit-tested in `src/store/error.rs`.

use std::io::Write;
use std::path::{Path, PathBuf};

use docket::store::{AppendError, AppendOutcome, EventLog, LogOptions, StoreError};
use docket::verification::{VerifyOptions, verify_log};
use serde_json::json;

use crate::projections::{change, note as matter_note, open_matter};
use crate::support::{Seeded, one_event};

/// A tmpfs of a fixed size mounted on a temporary directory for the length of a test.
struct SmallDisk {
    mount_point: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().unwrap();
        let mount_point = dir.path().join("disk");
        std::fs::create_dir(&mount_point).unwrap();
        let output = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&mount_point)
            .output()
            .map_err(|error| format!("mount cannot run: {error}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        Ok(SmallDisk {
            mount_point,
            _dir: dir,
        })
    }

    fn path(&self) -> &Path {
        &self.mount_point
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a connection the test leaked must not keep the mount alive.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
    }
}

/// Writes `path` in 64 KiB pieces until the disk is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let piece = vec![0x5au8; 64 * 1024];
    loop {
        match file.write_all(&piece).and_then(|()| file.sync_all()) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::StorageFull => return,
            Err(error) => panic!("filling the disk: {error}"),
        }
    }
}

fn note(round: &str, index: usize) -> docket::store::AppendRequest {
    let text = "Counsel's opinion on limitation. ".repeat(60);
    one_event(
        &format!("matter:full-{}", index % 5),
        "matter.noted",
        json!({ "round": round, "index": index, "text": text }),
    )
}

fn is_storage_full(result: &Result<AppendOutcome, AppendError>) -> bool {
    matches!(
        result,
        Err(AppendError::Store(StoreError::StorageFull { .. }))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_appends_which_resume_when_space_is_freed() {
    let mut random = Seeded::new("disk full");
    let disk = SmallDisk::mount("24m").unwrap_or_else(|reason| {
        panic!("this test mounts a tmpfs and needs root (CAP_SYS_ADMIN): {reason}")
    });
    let options = LogOptions::new(disk.path().join("data"));
    let log = EventLog::open(&options).await.unwrap();
    let mut acknowledged = Vec::new();
    for index in 0..20 {
        acknowledged.push((
            log.append(note("before", index)).await.unwrap(),
            "before",
            index,
        ));
    }

    // The ballast takes all the free space; then a random few of its last pieces are freed, so
    // that the disk runs out at a different append from run to run.
    let ballast = disk.path().join("ballast");
    fill(&ballast);
    let length = std::fs::metadata(&ballast).unwrap().len();
    let freed = random.between(1, 16) * 64 * 1024;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ballast)
        .unwrap()
        .set_len(length.saturating_sub(freed))
        .unwrap();

    let mut refused = None;
    for index in 0..2_000 {
        let result = log.append(note("filling", index)).await;
        match result {
            Ok(outcome) => acknowledged.push((outcome, "filling", index)),
            Err(_) => {
                refused = Some(result);
                break;
            }
        }
    }
    let refused = refused.unwrap_or_else(|| panic!("the disk filled up ({})", random.context()));
    assert!(
        is_storage_full(&refused),
        "{refused:?} ({})",
        random.context()
    );
    // Still full: still refused the same way, and the head has not moved.
    let head = log.head().await.unwrap().position;
    let again = log.append(note("still full", 0)).await;
    assert!(is_storage_full(&again), "{again:?} ({})", random.context());
    assert_eq!(log.head().await.unwrap().position, head);

    // Space is freed: the same log takes appends again.
    std::fs::remove_file(&ballast).unwrap();
    for index in 0..20 {
        let outcome = log
            .append(note("after", index))
            .await
            .unwrap_or_else(|error| panic!("appends resume: {error} ({})", random.context()));
        acknowledged.push((outcome, "after", index));
    }
    drop(log);

    // Reopened: everything acknowledged is there, and the log verifies.
    let log = EventLog::open(&options).await.unwrap();
    for (outcome, round, index) in &acknowledged {
        let events = log
            .store()
            .read_page(outcome.first_position, 1)
            .await
            .unwrap();
        let payload: serde_json::Value = serde_json::from_str(&events[0].payload).unwrap();
        assert_eq!(
            (payload["round"].as_str(), payload["index"].as_u64()),
            (Some(*round), Some(*index as u64)),
            "at position {} ({})",
            outcome.first_position,
            random.context()
        );
    }
    let store = log.store().clone();
    let summary = verify_log(store, VerifyOptions::default(), |_| {})
        .await
        .unwrap()
        .unwrap_or_else(|failure| panic!("verifies: {failure:?} ({})", random.context()));
    assert_eq!(summary.events, log.head().await.unwrap().position);
}

/// The read models on a full disk: the projector's rounds fail with the typed error (the
/// projections are not marked failed: the events are not at fault), and once space is freed
/// the same projector catches up with every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_holds_the_projector_back_until_space_is_freed() {
    let disk = SmallDisk::mount("48m").unwrap_or_else(|reason| {
        panic!("this test mounts a tmpfs and needs root (CAP_SYS_ADMIN): {reason}")
    });
    let options = LogOptions::new(disk.path().join("data"));
    let docket = docket::app::Docket::open_with(&options, std::time::Duration::ZERO)
        .await
        .unwrap();
    let service = &docket.service;
    open_matter(service, "2026-0800", "Full disk", "litigation").await;
    let body = "Long attendance note on the without-prejudice meeting. ".repeat(40);
    const NOTES: usize = 150;
    for _ in 0..NOTES {
        change(service, "2026-0800", matter_note(&body, false)).await;
    }

    // Nothing projected yet, and no room left to project it.
    let ballast = disk.path().join("ballast");
    fill(&ballast);
    for _ in 0..2 {
        let refused = docket.projector.catch_up().await;
        assert!(
            matches!(refused, Err(StoreError::StorageFull { .. })),
            "{refused:?}"
        );
    }
    for status in docket.projector.status().await.unwrap() {
        assert_eq!(status.status, "ok", "not marked failed: {status:?}");
    }

    std::fs::remove_file(&ballast).unwrap();
    let progress = docket.projector.catch_up().await.expect("projects again");
    assert!(progress.failed.is_empty(), "{progress:?}");
    let head = docket.log.head().await.unwrap().position;
    assert_eq!(progress.reached, head);
    let notes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rm_notes")
        .fetch_one(docket.projector.db().pool())
        .await
        .unwrap();
    assert_eq!(notes, NOTES as i64);
}
