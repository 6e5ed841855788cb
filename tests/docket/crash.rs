//! SIGKILL during heavy appending, at random points, repeated: every acknowledged append
//! survives and the log verifies. The points come from [`Seeded`]; a failing run prints its
//! seed, and `DOCKET_TEST_SEED=<seed>` repeats it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Seeded, TestLog};

on_both_backends!(acknowledged_appends_survive_sigkill);

/// Starts `docket append` fed by an endless writer; returns the child and its acknowledgements.
fn start_appender(test: &TestLog, round: u64) -> (Child, Arc<Mutex<Vec<Value>>>) {
    let mut child = test
        .docket_command()
        .args(["append", "--concurrency", "16"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn docket append");
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::spawn(move || {
        for line in 0..1_000_000u64 {
            let request = json!({
                "stream": format!("matter:{}", line % 50),
                "expected_version": "any",
                "actor": "user:ada",
                "events": [{ "type": "matter.noted", "payload": { "round": round, "line": line + 1 } }],
            });
            if writeln!(stdin, "{request}").is_err() {
                break;
            }
        }
    });
    let acks = Arc::new(Mutex::new(Vec::new()));
    let stdout = child.stdout.take().expect("stdout");
    let sink = acks.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(value) = serde_json::from_str::<Value>(&line) {
                sink.lock().unwrap().push(value);
            }
        }
    });
    (child, acks)
}

async fn acknowledged_appends_survive_sigkill(backend: Backend) {
    let test = TestLog::new(backend).await;
    assert!(
        test.docket_command()
            .arg("init")
            .status()
            .unwrap()
            .success()
    );

    let mut random = Seeded::new("appends under SIGKILL");
    for round in 0..4u64 {
        // Killed once a random number of appends was acknowledged, a random moment later: in
        // the middle of a group commit, between two, or while results are being printed.
        let threshold = random.between(1, 600) as usize;
        let extra = Duration::from_millis(random.between(0, 40));
        let context = format!(
            "round {round}, {threshold} acknowledgements and {extra:?}, {}",
            random.context()
        );
        let (mut child, acks) = start_appender(&test, round);
        let started = Instant::now();
        while acks.lock().unwrap().len() < threshold {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "appender made no progress ({context})"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(extra);
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        std::thread::sleep(Duration::from_millis(100));
        let acknowledged: Vec<Value> = acks.lock().unwrap().clone();

        // Every acknowledged append is in the log, at the position it was told.
        let log = test.open().await;
        let pages: Vec<_> = log.pages_from(1).try_collect().await.unwrap();
        let events: Vec<_> = pages.into_iter().flatten().collect();
        for ack in &acknowledged {
            let outcome = ack
                .get("outcome")
                .unwrap_or_else(|| panic!("append failed: {ack} ({context})"));
            let position = outcome["first_position"].as_u64().unwrap();
            let event = &events[position as usize - 1];
            let payload: Value = serde_json::from_str(&event.payload).unwrap();
            assert_eq!(
                payload["line"], ack["line"],
                "acknowledged append at {position} ({context})"
            );
            assert_eq!(payload["round"], json!(round));
            assert_eq!(
                event.stream_version,
                outcome["first_version"].as_u64().unwrap()
            );
        }
        drop(log);
        let summary = test
            .verify()
            .await
            .unwrap_or_else(|failure| panic!("intact after SIGKILL: {failure:?} ({context})"));
        assert!(summary.events as usize > acknowledged.len());
    }
}
