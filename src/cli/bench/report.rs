//! Benchmark figures and their presentation as a table or JSON.

use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

use super::BenchArgs;
use crate::store::Backend;
use crate::store::sequencer::SequencerStats;

/// One timed run: how many events (or rows), how fast, and latency percentiles when known.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Measurement {
    pub writers: u64,
    pub events: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Measurement {
    pub fn throughput(events: u64, seconds: f64) -> Self {
        Measurement {
            writers: 0,
            events,
            seconds,
            per_second: events as f64 / seconds.max(1e-9),
            ..Default::default()
        }
    }

    pub fn with_latencies(writers: u64, mut latencies: Vec<Duration>, seconds: f64) -> Self {
        latencies.sort_unstable();
        let percentile = |p: f64| {
            let index = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
            latencies.get(index).map(|d| d.as_secs_f64() * 1000.0)
        };
        Measurement {
            writers,
            events: latencies.len() as u64,
            seconds,
            per_second: latencies.len() as f64 / seconds.max(1e-9),
            p50_ms: percentile(0.50),
            p99_ms: percentile(0.99),
        }
    }
}

/// Everything measured on one backend.
#[derive(Debug, Serialize)]
pub struct BackendReport {
    pub backend: Backend,
    pub raw_single: Measurement,
    pub raw_batched: Measurement,
    pub appends: Vec<Measurement>,
    pub fill: Option<Measurement>,
    pub verify: Option<Measurement>,
    pub sequencer: Option<SequencerStats>,
}

impl BackendReport {
    pub fn new(backend: Backend) -> Self {
        BackendReport {
            backend,
            raw_single: Measurement::default(),
            raw_batched: Measurement::default(),
            appends: Vec::new(),
            fill: None,
            verify: None,
            sequencer: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub cores: usize,
    pub payload_bytes: usize,
    pub raw_batch_verify_per_second: f64,
    pub backends: Vec<BackendReport>,
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

impl Report {
    pub fn new(
        backends: Vec<BackendReport>,
        raw_batch_verify_per_second: f64,
        args: &BenchArgs,
    ) -> Self {
        Report {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            payload_bytes: args.payload_bytes,
            raw_batch_verify_per_second,
            backends,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "cores {}, payload ~{} B",
            self.cores, self.payload_bytes
        );
        let _ = writeln!(
            out,
            "raw ed25519 batch verify (all cores): {:.0} signatures/s",
            self.raw_batch_verify_per_second
        );
        for report in &self.backends {
            let _ = writeln!(out, "\n== {} ==", report.backend);
            let _ = writeln!(
                out,
                "raw single-row inserts: {:.0} rows/s (p50 {} ms, p99 {} ms)",
                report.raw_single.per_second,
                ms(report.raw_single.p50_ms),
                ms(report.raw_single.p99_ms)
            );
            let _ = writeln!(
                out,
                "raw 100-row batched inserts: {:.0} rows/s",
                report.raw_batched.per_second
            );
            let _ = writeln!(
                out,
                "{:>8} {:>9} {:>12} {:>9} {:>9} {:>10}",
                "writers", "events", "events/s", "p50 ms", "p99 ms", "vs raw"
            );
            for run in &report.appends {
                let baseline = if run.writers == 1 {
                    &report.raw_single
                } else {
                    &report.raw_batched
                };
                let _ = writeln!(
                    out,
                    "{:>8} {:>9} {:>12.0} {:>9} {:>9} {:>9.2}x",
                    run.writers,
                    run.events,
                    run.per_second,
                    ms(run.p50_ms),
                    ms(run.p99_ms),
                    ratio(run.per_second, baseline.per_second)
                );
            }
            if let Some(fill) = &report.fill {
                let _ = writeln!(
                    out,
                    "bulk fill (100-event appends, 8 writers): {} events at {:.0} events/s",
                    fill.events, fill.per_second
                );
            }
            if let Some(verify) = &report.verify {
                let _ = writeln!(
                    out,
                    "verify: {} events in {:.2} s = {:.0} events/s ({:.2}x raw batch verify)",
                    verify.events,
                    verify.seconds,
                    verify.per_second,
                    ratio(verify.per_second, self.raw_batch_verify_per_second)
                );
            }
            if let Some(stats) = &report.sequencer {
                let _ = writeln!(
                    out,
                    "group commit: {} requests in {} writes ({:.1} per write)",
                    stats.requests,
                    stats.writes,
                    ratio(stats.requests as f64, stats.writes as f64)
                );
            }
        }
        out
    }
}
