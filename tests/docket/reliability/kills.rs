//! SIGKILL at random points, repeated, while the read models are updated and while a backup is
//! written.
//!
//! Projections: each round writes a matter's worth of commands through an in-process Docket,
//! starts a second process that projects them (`docket serve`, whose projector catches up, or
//! `docket projections rebuild`), keeps appending while it runs, and kills it after a random
//! delay. Then every acknowledged command must be in the log where it was told, the log must
//! verify, and the read models, once caught up, must equal what a fresh rebuild makes of the log.
//!
//! Backups: `docket backup` is killed after a random share of the time a whole backup takes.
//! Every archive left incomplete must be refused by `docket restore`, which must leave its
//! target empty; a restore that picks the newest complete archive itself must never pick a
//! partial one; and the next backup must succeed and restore to a log that verifies.

use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use docket::backup::Target;
use docket::log::{Actor, EventDraft, StreamId};
use docket::service::Committed;
use docket::store::AppendRequest;
use serde_json::{Value, json};

use super::{COMMAND_BOUND, assert_failed_cleanly, free_address, kill, run_bounded};
use crate::backups::{copy_key_files, target_is_empty};
use crate::on_both_backends;
use crate::projections::{change, dump, note, open_matter, task};
use crate::support::{Backend, Seeded, TestDocket, TestLog};

on_both_backends!(
    projection_updates_survive_sigkill_at_random_points,
    a_backup_killed_at_random_points_is_never_restored,
);

/// Rounds of kill and restart per test.
const ROUNDS: usize = 4;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

// ---- projections ---------------------------------------------------------------------------

/// Starts the process that projects while it is killed: `docket serve` (its projector catches
/// up on the events written meanwhile) or `docket projections rebuild` (every projection).
fn start_projecting(test: &TestLog, rebuild: bool) -> Child {
    let mut command = test.docket_command();
    if rebuild {
        command.args(["projections", "rebuild"]);
    } else {
        command.args(["serve", "--listen", &free_address().to_string()]);
    }
    command
        .env_remove("DOCKET_CONFIG")
        .env("DOCKET_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docket starts")
}

/// The commands of one round: a matter opened, then notes and tasks on it.
async fn write_matter(test: &TestDocket, number: &str, changes: usize) -> Vec<Committed> {
    let service = test.service();
    let mut committed =
        vec![open_matter(service, number, "Ashdown v. Pellegrini", "litigation").await];
    for index in 0..changes {
        let command = if index % 2 == 0 {
            note(&format!("Attendance note {index}"), index % 4 == 0)
        } else {
            task(&format!("Chase expert report {index}"))
        };
        committed.push(change(service, number, command).await);
    }
    committed
}

/// Every acknowledged command's events are in the log, in its stream, at the positions and the
/// version it was told.
async fn acknowledged_commands_are_in_the_log(
    test: &TestDocket,
    acknowledged: &[Committed],
    context: &str,
) {
    let store = test.docket.log.store();
    for committed in acknowledged {
        let count = committed.last_position - committed.first_position + 1;
        let events = store
            .read_page(committed.first_position, u32::try_from(count).unwrap())
            .await
            .unwrap();
        assert_eq!(events.len() as u64, count, "{committed:?}: {context}");
        for (offset, event) in events.iter().enumerate() {
            assert_eq!(event.position, committed.first_position + offset as u64);
            assert_eq!(event.stream, committed.stream, "{context}");
        }
        let last = events.last().unwrap();
        assert_eq!(last.stream_version, committed.version, "{context}");
    }
}

/// After a kill: the log holds what was acknowledged and verifies; the read models catch up
/// with no projection stopped, count every acknowledged matter event, and equal a rebuild.
async fn intact_after_kill(test: &TestDocket, acknowledged: &[Committed], context: &str) {
    acknowledged_commands_are_in_the_log(test, acknowledged, context).await;
    let summary = test
        .test
        .verify()
        .await
        .unwrap_or_else(|failure| panic!("the log verifies ({context}): {failure:?}"));
    let head = test.docket.log.head().await.unwrap().position;
    assert_eq!(summary.events, head, "{context}");

    let progress = test.projector().catch_up().await.unwrap();
    assert!(progress.failed.is_empty(), "{progress:?}: {context}");
    for status in test.projector().status().await.unwrap() {
        assert_eq!(
            (status.status.as_str(), status.position),
            ("ok", head),
            "{status:?}: {context}"
        );
    }
    let pool = test.pool();
    let timeline: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rm_timeline")
        .fetch_one(pool)
        .await
        .unwrap();
    let mut versions = std::collections::BTreeMap::new();
    for committed in acknowledged {
        let version = versions.entry(committed.stream.clone()).or_insert(0);
        *version = committed.version.max(*version);
    }
    assert_eq!(
        timeline as u64,
        versions.values().sum::<u64>(),
        "every acknowledged matter event is on a timeline: {context}"
    );

    let projected = dump(pool).await;
    for projection in test.projector().projections().to_vec() {
        test.projector()
            .rebuild(projection.as_ref())
            .await
            .unwrap_or_else(|error| panic!("{} rebuilds ({context}): {error}", projection.name()));
    }
    let rebuilt = dump(pool).await;
    let differing: Vec<&String> = projected
        .keys()
        .chain(rebuilt.keys())
        .filter(|view| projected.get(*view) != rebuilt.get(*view))
        .collect();
    assert!(
        differing.is_empty(),
        "the caught-up read models equal a fresh rebuild; these differ: {differing:?} ({context})"
    );
}

async fn projection_updates_survive_sigkill_at_random_points(backend: Backend) {
    let mut random = Seeded::new("projection updates under SIGKILL");
    let test = TestDocket::new(backend).await;
    let mut acknowledged = Vec::new();
    for round in 0..ROUNDS {
        let number = format!("2026-{:04}", 700 + round);
        acknowledged.extend(write_matter(&test, &number, 40).await);

        let rebuild = round % 2 == 1;
        let mut child = start_projecting(&test.test, rebuild);
        // Commands go on while the other process projects.
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let service = test.docket.service.clone();
            let stop = stop.clone();
            let number = number.clone();
            tokio::spawn(async move {
                let mut committed = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let body = format!("Written during the kill {}", committed.len());
                    committed.push(change(&service, &number, note(&body, false)).await);
                }
                committed
            })
        };
        let delay = random.between(20, 1_500);
        tokio::time::sleep(ms(delay)).await;
        kill(&mut child);
        stop.store(true, Ordering::SeqCst);
        acknowledged.extend(writer.await.unwrap());

        let what = if rebuild { "rebuild" } else { "serve" };
        // Where the killed process had got to (shown with a failure, or with --nocapture).
        let head = test.docket.log.head().await.unwrap().position;
        let reached: Vec<u64> = test
            .projector()
            .status()
            .await
            .unwrap()
            .iter()
            .map(|status| status.position)
            .collect();
        eprintln!("round {round}: {what} killed after {delay} ms at {reached:?} of {head}");
        let context = format!(
            "round {round}, {what} killed after {delay} ms, {}",
            random.context()
        );
        intact_after_kill(&test, &acknowledged, &context).await;
    }
}

// ---- backups -------------------------------------------------------------------------------

/// A log worth backing up for a while: a few thousand events in batches, besides what opening
/// Docket writes (identity, access chain, data keys).
async fn busy_log(backend: Backend) -> TestDocket {
    let test = TestDocket::new(backend).await;
    let actor = Actor::parse("user:ada").unwrap();
    for batch in 0..15 {
        let stream = StreamId::parse(&format!("matter:backup-{}", batch % 7)).unwrap();
        let drafts = (0..100)
            .map(|index| {
                EventDraft::new(
                    "matter.noted",
                    json!({ "batch": batch, "index": index, "text": "Witness statement ".repeat(8) }),
                )
            })
            .collect();
        test.docket
            .log
            .append(AppendRequest::new(stream, actor.clone(), drafts))
            .await
            .unwrap();
    }
    test
}

fn backup_command(test: &TestLog, archives: &std::path::Path) -> std::process::Command {
    let mut command = test.docket_command();
    command
        .env_remove("DOCKET_CONFIG")
        .args(["backup", "--json", "--out"])
        .arg(archives);
    command
}

/// `docket restore` of `archive` (or the newest complete one) from `archives` into a fresh
/// target holding only the key files kept apart from backups.
async fn restore_into_fresh(
    source: &TestLog,
    archives: &std::path::Path,
    archive: Option<&str>,
) -> (TestLog, std::process::Output) {
    let target = TestLog::new(source.backend).await;
    copy_key_files(source.dir.path(), target.dir.path());
    let mut command = target.docket_command();
    command
        .env_remove("DOCKET_CONFIG")
        .args(["restore", "--json", "--no-surviving-log", "--from"])
        .arg(archives);
    if let Some(archive) = archive {
        command.args(["--archive", archive]);
    }
    let output = run_bounded(command, COMMAND_BOUND);
    (target, output)
}

fn json_line(output: &std::process::Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "one JSON object on stdout: {stdout} / {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

async fn a_backup_killed_at_random_points_is_never_restored(backend: Backend) {
    let mut random = Seeded::new("backups under SIGKILL");
    let source = busy_log(backend).await;

    // How long one whole backup takes here: the kills land anywhere within it.
    let reference = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let whole = run_bounded(
        backup_command(&source.test, reference.path()),
        COMMAND_BOUND,
    );
    assert!(
        whole.status.success(),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let whole_ms = u64::try_from(started.elapsed().as_millis()).unwrap();

    let archives = tempfile::tempdir().unwrap();
    let target = Target::directory(archives.path()).unwrap();
    eprintln!("a whole backup takes {whole_ms} ms here");
    let mut refused = std::collections::BTreeSet::new();
    for round in 0..ROUNDS {
        let delay = random.between(0, whole_ms);
        let context = format!(
            "round {round}, backup killed after {delay} of {whole_ms} ms, {}",
            random.context()
        );
        let mut child = backup_command(&source.test, archives.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(ms(delay));
        kill(&mut child);

        // Every archive left incomplete is refused, and nothing is written.
        for archive in target.archives().await.unwrap() {
            if archive.complete || refused.contains(&archive.name) {
                continue;
            }
            let (restored, output) =
                restore_into_fresh(&source.test, archives.path(), Some(&archive.name)).await;
            assert_failed_cleanly(&output, &format!("restoring {} ({context})", archive.name));
            assert_eq!(json_line(&output)["status"], "failed", "{context}");
            assert!(
                target_is_empty(&restored).await,
                "nothing restored: {context}"
            );
            refused.insert(archive.name);
        }
    }
    eprintln!("incomplete archives refused: {refused:?}");

    // The next backup succeeds.
    let head = source.docket.log.head().await.unwrap().position;
    let next = run_bounded(backup_command(&source.test, archives.path()), COMMAND_BOUND);
    assert!(
        next.status.success(),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    let written = json_line(&next);
    assert_eq!(written["status"], "written");
    let name = written["report"]["name"].as_str().unwrap().to_owned();

    // One more, killed as soon as its archive appears: the newest archive is now partial.
    let before = target.archives().await.unwrap().len();
    let mut child = backup_command(&source.test, archives.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while target.archives().await.unwrap().len() == before {
        assert!(
            started.elapsed() < COMMAND_BOUND,
            "the backup starts an archive"
        );
        std::thread::sleep(ms(5));
    }
    kill(&mut child);
    let listed = target.archives().await.unwrap();
    let newest = listed.last().unwrap();

    // Left to choose, restore takes the newest complete archive, never a partial one; what it
    // restores verifies, up to the head the backup saw.
    let (restored, output) = restore_into_fresh(&source.test, archives.path(), None).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let chosen = json_line(&output)["report"]["archive"]
        .as_str()
        .unwrap()
        .to_owned();
    if newest.complete {
        // The kill came after the archive was finished: a valid point, and it is the newest.
        assert_eq!(chosen, newest.name, "{}", random.context());
    } else {
        assert_eq!(chosen, name, "{}", random.context());
    }
    let summary = restored.verify().await.expect("the restored log verifies");
    assert_eq!(summary.events, head);
}
