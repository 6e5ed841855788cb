//! The soak's report: one row per interval, a summary of the whole run with the memory verdict
//! and the baselines, as a table or JSON.

use std::fmt::Write;

use serde::Serialize;

use super::memory::Flatness;
use super::tally::{Figures, Work};
use crate::cli::bench::report::Measurement;
use crate::store::Backend;

/// Every kind of work's figures over one stretch of time.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkFigures {
    pub appends: Figures,
    pub matter_reads: Figures,
    pub matter_lists: Figures,
    pub subscriptions: Figures,
    pub webhooks: Figures,
    pub healthz: Figures,
}

impl WorkFigures {
    /// Builds the figures of each kind with `figures`.
    pub fn each(mut figures: impl FnMut(Work) -> Figures) -> Self {
        WorkFigures {
            appends: figures(Work::Appends),
            matter_reads: figures(Work::MatterReads),
            matter_lists: figures(Work::MatterLists),
            subscriptions: figures(Work::Subscriptions),
            webhooks: figures(Work::Webhooks),
            healthz: figures(Work::Healthz),
        }
    }

    fn all(&self) -> [&Figures; 6] {
        [
            &self.appends,
            &self.matter_reads,
            &self.matter_lists,
            &self.subscriptions,
            &self.webhooks,
            &self.healthz,
        ]
    }

    pub fn errors(&self) -> u64 {
        self.all().iter().map(|figures| figures.errors).sum()
    }
}

/// One interval of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Interval {
    /// Seconds since the load started, at the interval's end.
    pub ends_at_seconds: f64,
    pub seconds: f64,
    pub work: WorkFigures,
    /// The serving process's RSS at the interval's end, and its highest reading in it.
    pub server_rss_mb: Option<f64>,
    pub server_rss_peak_mb: Option<f64>,
    /// The benchmark's own RSS (the load and the webhook receiver) at the interval's end.
    pub bench_rss_mb: Option<f64>,
}

/// Deliveries owed to the subscribers and the receiver (one per note appended, per
/// subscriber), against those that arrived by the end of the drain.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Owed {
    pub notes_appended: u64,
    pub subscribers: usize,
    pub subscription_deliveries_owed: u64,
    pub subscription_deliveries_received: u64,
    pub webhooks_owed: u64,
    pub webhooks_received: u64,
    /// Seconds waited after the load stopped for the last deliveries.
    pub drain_seconds: f64,
}

impl Owed {
    pub fn missing(&self) -> u64 {
        self.subscription_deliveries_owed
            .saturating_sub(self.subscription_deliveries_received)
            + self.webhooks_owed.saturating_sub(self.webhooks_received)
    }
}

/// The baselines measured in the same run, and Docket's figures against them.
#[derive(Debug, Clone, Serialize)]
pub struct Baselines {
    /// Durable single-row inserts into a plain table of the same database, one writer, timed
    /// before the load (the log suite's baseline).
    pub raw_single_row_inserts: Measurement,
    /// Append p99 over raw insert p99.
    pub append_p99_vs_raw_insert_p99: Option<f64>,
    /// `/healthz` p99 on the same server during the load (the API suite's baseline), over the
    /// whole run; the query p99s over it.
    pub healthz_p99_ms: Option<f64>,
    pub matter_read_p99_vs_healthz_p99: Option<f64>,
    pub matter_list_p99_vs_healthz_p99: Option<f64>,
}

/// What the soak was asked to do.
#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub duration_seconds: u64,
    pub interval_seconds: u64,
    pub appends_per_second: u64,
    pub queries_per_second: u64,
    pub subscribers: usize,
    pub matters: u64,
    pub cores: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub backend: Backend,
    pub load: Load,
    /// What RSS is measured: the `docket serve` child process's.
    pub memory_of: &'static str,
    pub intervals: Vec<Interval>,
    pub whole: WorkFigures,
    pub owed: Owed,
    pub memory: Flatness,
    pub baselines: Baselines,
    /// Errors of every kind plus deliveries missing after the drain.
    pub errors: u64,
    /// No errors, nothing missing, and memory flat.
    pub passed: bool,
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

fn mb(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.2}x"))
}

/// The header of the interval rows.
pub fn interval_header() -> String {
    format!(
        "{:>6} {:>15} {:>15} {:>15} {:>16} {:>15} {:>8} {:>6} {:>8}\n",
        "t (s)",
        "appends/s p99",
        "reads/s p99",
        "lists/s p99",
        "sub deliv/s lag",
        "webhooks/s lag",
        "healthz",
        "errors",
        "RSS MB"
    )
}

/// One interval as a row (rates per second, p99 in ms).
pub fn interval_row(interval: &Interval) -> String {
    let pair = |figures: &Figures| format!("{:.0} {}", figures.per_second, ms(figures.p99_ms));
    let work = &interval.work;
    format!(
        "{:>6.0} {:>15} {:>15} {:>15} {:>16} {:>15} {:>8} {:>6} {:>8}\n",
        interval.ends_at_seconds,
        pair(&work.appends),
        pair(&work.matter_reads),
        pair(&work.matter_lists),
        pair(&work.subscriptions),
        pair(&work.webhooks),
        ms(work.healthz.p99_ms),
        work.errors(),
        mb(interval.server_rss_mb)
    )
}

/// The whole report as a table.
pub fn to_table(report: &SoakReport) -> String {
    let mut out = String::new();
    let load = &report.load;
    let _ = writeln!(
        out,
        "soak on {} for {} s ({} cores): {} appends/s, {} queries/s, {} WebSocket subscribers, \
         webhooks to a local receiver, over {} matters",
        report.backend,
        load.duration_seconds,
        load.cores,
        load.appends_per_second,
        load.queries_per_second,
        load.subscribers,
        load.matters
    );
    let _ = writeln!(
        out,
        "every {} s: rate per second and p99 ms (subscriptions and webhooks: lag from \
         recordedAt); RSS of {}",
        load.interval_seconds, report.memory_of
    );
    out.push_str(&interval_header());
    for interval in &report.intervals {
        out.push_str(&interval_row(interval));
    }
    let _ = writeln!(out, "whole run:");
    for (name, figures) in [
        ("appends", &report.whole.appends),
        ("matter reads", &report.whole.matter_reads),
        ("matter lists", &report.whole.matter_lists),
        ("subscription deliveries", &report.whole.subscriptions),
        ("webhooks", &report.whole.webhooks),
        ("healthz (baseline)", &report.whole.healthz),
    ] {
        let _ = writeln!(
            out,
            "  {name:<24} {:>9} done {:>8.1}/s  p50 {:>7} ms  p99 {:>7} ms  max {:>7} ms  {} errors",
            figures.operations,
            figures.per_second,
            ms(figures.p50_ms),
            ms(figures.p99_ms),
            ms(figures.max_ms),
            figures.errors
        );
    }
    let owed = &report.owed;
    let _ = writeln!(
        out,
        "deliveries: subscriptions {} of {} owed, webhooks {} of {} owed ({} missing after a \
         {:.1} s drain)",
        owed.subscription_deliveries_received,
        owed.subscription_deliveries_owed,
        owed.webhooks_received,
        owed.webhooks_owed,
        owed.missing(),
        owed.drain_seconds
    );
    let baselines = &report.baselines;
    let _ = writeln!(
        out,
        "baselines: raw single-row inserts {:.0} rows/s, p99 {} ms (appends' p99 {}); healthz \
         p99 {} ms (reads' p99 {}, lists' {})",
        baselines.raw_single_row_inserts.per_second,
        ms(baselines.raw_single_row_inserts.p99_ms),
        ratio(baselines.append_p99_vs_raw_insert_p99),
        ms(baselines.healthz_p99_ms),
        ratio(baselines.matter_read_p99_vs_healthz_p99),
        ratio(baselines.matter_list_p99_vs_healthz_p99)
    );
    let memory = &report.memory;
    let _ = writeln!(
        out,
        "memory: {} MB after warm-up, {} MB over the last third ({} MB, limit {} MB), slope {} \
         MB/min (limit {:.1}), peak {} MB: {}",
        mb(memory.reference_mb),
        mb(memory.last_third_mb),
        memory.growth_mb.map_or("-".into(), |g| format!("{g:+.1}")),
        mb(memory.growth_limit_mb),
        memory
            .slope_mb_per_minute
            .map_or("-".into(), |s| format!("{s:+.2}")),
        memory.slope_limit_mb_per_minute,
        mb(memory.peak_mb),
        if memory.flat { "flat" } else { "NOT FLAT" }
    );
    let _ = writeln!(out, "rule: {}", memory.rule);
    let _ = writeln!(
        out,
        "errors: {}; {}",
        report.errors,
        if report.passed { "passed" } else { "FAILED" }
    );
    out
}
