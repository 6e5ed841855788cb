//! `docket bench --suite soak`, run for a few seconds: the report has its intervals and its
//! summary, and every kind of work was done and measured.

use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, TestLog};

on_both_backends!(a_short_soak_does_and_measures_every_kind_of_work);

const KINDS: [&str; 6] = [
    "appends",
    "matter_reads",
    "matter_lists",
    "subscriptions",
    "webhooks",
    "healthz",
];

async fn a_short_soak_does_and_measures_every_kind_of_work(backend: Backend) {
    let test = TestLog::new(backend).await;
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let output = test
        .docket_command()
        .args([
            "--log",
            "warn",
            "bench",
            "--suite",
            "soak",
            "--backend",
            name,
        ])
        .args(["--duration", "6", "--interval", "2", "--append-rate", "20"])
        .args(["--query-rate", "20", "--soak-subscribers", "3", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // 0 when memory was judged flat, 1 when not (six seconds are mostly warm-up); never 2,
    // which means the soak could not run.
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{:?}\n{stderr}",
        output.status
    );
    let reports: Value = serde_json::from_slice(&output.stdout).unwrap();
    let report = &reports[0];
    assert_eq!(report["backend"], name);
    assert_eq!(report["load"]["subscribers"], 3);

    // One row per interval, each with every kind of work and a reading of the server's memory.
    let intervals = report["intervals"].as_array().unwrap();
    assert!((3..=4).contains(&intervals.len()), "{intervals:?}");
    for interval in intervals {
        for kind in KINDS {
            let figures = &interval["work"][kind];
            assert!(figures["operations"].is_u64(), "{kind}: {figures}");
            assert!(figures["errors"].is_u64(), "{kind}: {figures}");
        }
        assert!(interval["server_rss_mb"].as_f64().unwrap() > 1.0);
    }
    // The last interval, well past the warm-up, saw every kind of work.
    let last = &intervals[intervals.len() - 1]["work"];
    for kind in KINDS {
        assert!(
            last[kind]["operations"].as_u64().unwrap() > 0,
            "no {kind} in the last interval: {last}"
        );
    }

    // Over the whole run: every kind done and timed, nothing failed, every delivery arrived.
    for kind in KINDS {
        let figures = &report["whole"][kind];
        assert!(
            figures["operations"].as_u64().unwrap() > 0,
            "{kind}: {figures}"
        );
        assert!(
            figures["p99_ms"].as_f64().unwrap() > 0.0,
            "{kind}: {figures}"
        );
        assert!(
            figures["per_second"].as_f64().unwrap() > 0.0,
            "{kind}: {figures}"
        );
    }
    assert_eq!(report["errors"], 0, "{report}\n{stderr}");
    let owed = &report["owed"];
    let notes = owed["notes_appended"].as_u64().unwrap();
    assert_eq!(report["whole"]["appends"]["operations"], notes);
    assert_eq!(owed["subscription_deliveries_owed"], notes * 3);
    assert!(owed["subscription_deliveries_received"].as_u64().unwrap() >= notes * 3);
    assert!(owed["webhooks_received"].as_u64().unwrap() >= notes);

    // The memory verdict and the baselines carry their figures.
    let memory = &report["memory"];
    assert!(memory["flat"].is_boolean());
    assert!(memory["reference_mb"].as_f64().unwrap() > 1.0);
    assert!(memory["slope_mb_per_minute"].is_f64());
    assert!(memory["rule"].as_str().unwrap().contains("least-squares"));
    assert_eq!(
        report["passed"],
        memory["flat"].as_bool().unwrap(),
        "no errors, so passing is the memory verdict"
    );
    assert_eq!(output.status.code() == Some(0), memory["flat"] == true);
    let baselines = &report["baselines"];
    assert!(
        baselines["raw_single_row_inserts"]["per_second"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(baselines["append_p99_vs_raw_insert_p99"].as_f64().unwrap() > 0.0);
    assert!(
        baselines["matter_read_p99_vs_healthz_p99"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // The report is also left in the data directory, and the log the server wrote verifies.
    let written: Value =
        serde_json::from_slice(&std::fs::read(test.dir.path().join("bench-soak.json")).unwrap())
            .unwrap();
    assert_eq!(written[0]["owed"], report["owed"]);
    let mut verify = std::process::Command::new(crate::support::docket_binary());
    verify
        .arg("--data-dir")
        .arg(test.dir.path().join(format!("soak-{name}")))
        .env_remove("DOCKET_DATABASE_URL");
    if let Some(url) = &test.database_url {
        verify.arg("--database-url").arg(url);
    }
    let verified = verify.arg("verify").output().unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}
