//! Two Docket processes appending to one database at once extend one chain, never a fork.

use std::collections::HashSet;
use std::io::Write;
use std::process::Stdio;

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestLog};

on_both_backends!(two_processes_appending_at_once_keep_one_chain);

const PER_PROCESS: u64 = 1500;

async fn two_processes_appending_at_once_keep_one_chain(backend: Backend) {
    let test = TestLog::new(backend).await;
    assert!(
        test.docket_command()
            .arg("init")
            .status()
            .unwrap()
            .success()
    );

    // Both processes get all their input at once and append as fast as they can.
    let mut children = Vec::new();
    for process in 0..2u64 {
        let mut child = test
            .docket_command()
            .args(["append", "--concurrency", "8"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn docket append");
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            for line in 0..PER_PROCESS {
                // Every tenth append goes to a stream both processes write to.
                let stream = if line % 10 == 0 {
                    "matter:shared".to_owned()
                } else {
                    format!("matter:p{process}-{}", line % 20)
                };
                let request = json!({
                    "stream": stream,
                    "expected_version": "any",
                    "actor": format!("api_client:process-{process}"),
                    "events": [{ "type": "matter.noted", "payload": { "process": process, "line": line } }],
                });
                writeln!(stdin, "{request}").unwrap();
            }
        });
        children.push(child);
    }
    let mut positions: Vec<Vec<u64>> = Vec::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "an append failed");
        let text = String::from_utf8(output.stdout).unwrap();
        let mine: Vec<u64> = text
            .lines()
            .map(|line| {
                serde_json::from_str::<Value>(line).unwrap()["outcome"]["first_position"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(mine.len() as u64, PER_PROCESS);
        positions.push(mine);
    }

    // Positions are unique across processes, cover 2..=3001 exactly, and interleave.
    let all: HashSet<u64> = positions.iter().flatten().copied().collect();
    assert_eq!(all.len() as u64, 2 * PER_PROCESS);
    assert_eq!(all, (2..=2 * PER_PROCESS + 1).collect::<HashSet<_>>());
    let (a_max, b_min) = (
        positions[0].iter().max().unwrap(),
        positions[1].iter().min().unwrap(),
    );
    let (b_max, a_min) = (
        positions[1].iter().max().unwrap(),
        positions[0].iter().min().unwrap(),
    );
    assert!(
        b_min < a_max && a_min < b_max,
        "the processes did not run at the same time"
    );

    let summary = test.verify().await.expect("one intact chain");
    assert_eq!(summary.events, 2 * PER_PROCESS + 1);
}
