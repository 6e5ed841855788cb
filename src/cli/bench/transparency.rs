//! `docket bench --suite transparency`: the Merkle tree over a large log.
//!
//! - Building the stored tree from the events' hashes (events per second).
//! - Inclusion and consistency proofs at random positions and sizes, one at a time, beside the
//!   baseline of a single indexed read of one event's hash from the same store.
//! - Appends from 64 writers with the checkpointer running (tree kept current, a checkpoint
//!   signed every 1,000 events) and without it, alternated so that both see the same machine.
//! - `verify-bundle` of a 10,000-event matter exported from the same log, beside the baseline of
//!   batch-verifying as many bare signatures on all cores.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::report::Measurement;
use super::workload;
use crate::store::{Backend, EventLog, StoreError};
use crate::transparency::{self, CheckpointPolicy, LogTree, TreeError};

/// Proofs (and baseline reads) timed per kind.
const SAMPLES: usize = 10_000;
/// How often the checkpointer signs during the append comparison.
const BENCH_POLICY: CheckpointPolicy = CheckpointPolicy {
    every_events: 1_000,
    interval: Duration::from_secs(1),
};

/// What the transparency suite measured on one backend.
#[derive(Debug, Serialize)]
pub struct TransparencyReport {
    pub backend: Backend,
    pub tree_size: u64,
    /// Building the tree over the events not yet in it (none when it was already current).
    pub tree_build: Option<Measurement>,
    pub hash_lookup: Measurement,
    pub inclusion: Measurement,
    pub consistency: Measurement,
    pub appends_without_checkpoints: Vec<Measurement>,
    pub appends_with_checkpoints: Vec<Measurement>,
    pub checkpoints_signed: u64,
    /// Verifying the bundle of a 10,000-event matter, three times.
    pub bundle_verify: Vec<Measurement>,
    pub bundle_bytes: u64,
    /// Bare ed25519 signatures batch-verified per second (the bundle's baseline).
    pub raw_signatures_per_second: f64,
}

impl TransparencyReport {
    fn mean_rate(runs: &[Measurement]) -> f64 {
        runs.iter().map(|m| m.per_second).sum::<f64>() / runs.len().max(1) as f64
    }

    /// Append rate with checkpoints over the rate without.
    pub fn append_ratio(&self) -> f64 {
        Self::mean_rate(&self.appends_with_checkpoints)
            / Self::mean_rate(&self.appends_without_checkpoints).max(1e-9)
    }
}

fn tree_error(error: TreeError) -> StoreError {
    match error {
        TreeError::Store(error) => error,
        other => StoreError::Database {
            detail: other.to_string(),
        },
    }
}

/// A small deterministic generator, so runs sample the same positions.
struct Positions(u64);

impl Positions {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below.max(1)
    }
}

pub async fn run(
    log: &Arc<EventLog>,
    options: &crate::store::LogOptions,
    backend: Backend,
    events: u64,
    append_events: u64,
    payload_bytes: usize,
) -> Result<TransparencyReport, StoreError> {
    // Fill, then build the tree over whatever it does not hold yet.
    if let Some(fill) = workload::fill(log, events, payload_bytes).await? {
        eprintln!(
            "  filled {} events at {:.0}/s",
            fill.events, fill.per_second
        );
    }
    let tree = LogTree::new(log.store().clone());
    let before = tree.size().await.map_err(tree_error)?;
    let started = Instant::now();
    let tree_size = tree.catch_up().await.map_err(tree_error)?;
    let tree_build = (tree_size > before)
        .then(|| Measurement::throughput(tree_size - before, started.elapsed().as_secs_f64()));
    eprintln!("  tree of {tree_size} events");

    // Baseline: one indexed read of an event's hash, the smallest thing a proof must do.
    let mut positions = Positions(0x9e37_79b9_7f4a_7c15);
    let mut latencies = Vec::with_capacity(SAMPLES);
    let started = Instant::now();
    for _ in 0..SAMPLES {
        let position = positions.next(tree_size) + 1;
        let sent = Instant::now();
        log.store().tree().leaf_data(position, 1).await?;
        latencies.push(sent.elapsed());
    }
    let hash_lookup = Measurement::with_latencies(1, latencies, started.elapsed().as_secs_f64());

    // Inclusion proofs of random events in trees of random sizes that hold them.
    let mut latencies = Vec::with_capacity(SAMPLES);
    let started = Instant::now();
    for _ in 0..SAMPLES {
        let size = tree_size - positions.next(tree_size / 2);
        let position = positions.next(size) + 1;
        let sent = Instant::now();
        tree.inclusion_proof(position, size)
            .await
            .map_err(tree_error)?;
        latencies.push(sent.elapsed());
    }
    let inclusion = Measurement::with_latencies(1, latencies, started.elapsed().as_secs_f64());

    // Consistency proofs between random pairs of sizes.
    let mut latencies = Vec::with_capacity(SAMPLES);
    let started = Instant::now();
    for _ in 0..SAMPLES {
        let second = tree_size - positions.next(tree_size / 2);
        let first = positions.next(second) + 1;
        let sent = Instant::now();
        tree.consistency_proof(first, second)
            .await
            .map_err(tree_error)?;
        latencies.push(sent.elapsed());
    }
    let consistency = Measurement::with_latencies(1, latencies, started.elapsed().as_secs_f64());

    // Appends with and without the checkpointer, alternated.
    let checkpoints = transparency::open(log, None, BENCH_POLICY).await?;
    let signed_before = log.store().tree().checkpoints(None, u32::MAX).await?.len();
    let mut without = Vec::new();
    let mut with = Vec::new();
    for round in 0..2 {
        checkpoints.tree().catch_up().await.map_err(tree_error)?;
        without.push(workload::appends(log, 64, append_events, payload_bytes).await?);

        checkpoints.tree().catch_up().await.map_err(tree_error)?;
        let task = checkpoints.spawn();
        let measured = workload::appends(log, 64, append_events, payload_bytes).await;
        task.abort();
        with.push(measured?);
        eprintln!(
            "  round {}: {:.0}/s without checkpoints, {:.0}/s with",
            round + 1,
            without[round].per_second,
            with[round].per_second
        );
    }
    let signed_after = log.store().tree().checkpoints(None, u32::MAX).await?.len();

    // An evidence bundle of one 10,000-event matter, verified as `verify-bundle` does.
    let (bundle_verify, bundle_bytes) = bundle_round(log, options, &checkpoints).await?;
    let raw_signatures_per_second = super::baseline::batch_verify_rate(BUNDLE_EVENTS as usize);

    Ok(TransparencyReport {
        backend,
        tree_size,
        tree_build,
        hash_lookup,
        inclusion,
        consistency,
        appends_without_checkpoints: without,
        appends_with_checkpoints: with,
        checkpoints_signed: (signed_after - signed_before) as u64,
        bundle_verify,
        bundle_bytes,
        raw_signatures_per_second,
    })
}

/// Events of the matter whose bundle is verified.
const BUNDLE_EVENTS: u64 = 10_000;
const BUNDLE_MATTER: &str = "BENCH-TREE";

/// Writes the bundle matter (once), exports it and times three verifications of the bytes.
async fn bundle_round(
    log: &Arc<EventLog>,
    options: &crate::store::LogOptions,
    checkpoints: &crate::transparency::Checkpointer,
) -> Result<(Vec<Measurement>, u64), StoreError> {
    use crate::log::{Actor, EventDraft, StreamId};
    use crate::store::AppendRequest;
    use crate::transparency::bundle::{ExportRequest, ExportScope, VerifyOptions};

    let failed = |detail: String| StoreError::Database { detail };
    let stream = StreamId::parse(&format!("matter:{BUNDLE_MATTER}"))
        .map_err(|error| failed(error.to_string()))?;
    let actor = Actor::parse("user:bench").map_err(|error| failed(error.to_string()))?;
    let present = log
        .store()
        .load_context(&[stream.to_string()], &[])
        .await?
        .tips
        .get(stream.as_str())
        .map_or(0, |tip| tip.version);
    let mut written = present;
    while written < BUNDLE_EVENTS {
        let drafts = (written..(written + 100).min(BUNDLE_EVENTS))
            .map(|n| EventDraft::new("matter.noted", workload::payload(n, 300)))
            .collect();
        log.append(AppendRequest::new(stream.clone(), actor.clone(), drafts))
            .await
            .map_err(|error| failed(error.to_string()))?;
        written = (written + 100).min(BUNDLE_EVENTS);
    }

    let access = crate::access::chain::AccessChain::open(options).await?;
    let request = ExportRequest {
        scope: ExportScope::Matter(BUNDLE_MATTER.to_owned()),
        checkpoint_now: true,
        investigator: None,
        with_view: false,
    };
    let vault = crate::vault::Vault::open_configured(log.store().clone(), &options.data_dir)
        .await
        .map_err(|error| failed(error.to_string()))?;
    let exported = crate::transparency::bundle::export(log, checkpoints, &access, &vault, &request)
        .await
        .map_err(|error| failed(error.to_string()))?;
    let mut runs = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        crate::transparency::bundle::verify_bundle(&exported.bytes, &VerifyOptions::default())
            .map_err(|failure| failed(format!("the bench bundle does not verify: {failure:?}")))?;
        runs.push(Measurement::throughput(
            BUNDLE_EVENTS,
            started.elapsed().as_secs_f64(),
        ));
    }
    Ok((runs, exported.bytes.len() as u64))
}

/// The report as a table.
pub fn to_table(report: &TransparencyReport) -> String {
    let ms = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.3}"));
    let mut out = format!(
        "\ntransparency ({}), tree of {} events\n",
        report.backend, report.tree_size
    );
    if let Some(build) = &report.tree_build {
        out.push_str(&format!(
            "  tree build            {:>10.0} events/s ({} events in {:.1} s)\n",
            build.per_second, build.events, build.seconds
        ));
    }
    for (name, m) in [
        ("hash lookup (baseline)", &report.hash_lookup),
        ("inclusion proof", &report.inclusion),
        ("consistency proof", &report.consistency),
    ] {
        out.push_str(&format!(
            "  {name:<22} p50 {:>7} ms  p99 {:>7} ms  ({} samples)\n",
            ms(m.p50_ms),
            ms(m.p99_ms),
            m.events
        ));
    }
    let rates = |runs: &[Measurement]| {
        runs.iter()
            .map(|m| format!("{:.0}", m.per_second))
            .collect::<Vec<_>>()
            .join(", ")
    };
    out.push_str(&format!(
        "  appends, 64 writers    without checkpoints {}/s; with {}/s; ratio {:.2} \
         ({} checkpoints signed)\n",
        rates(&report.appends_without_checkpoints),
        rates(&report.appends_with_checkpoints),
        report.append_ratio(),
        report.checkpoints_signed
    ));
    let seconds = report
        .bundle_verify
        .iter()
        .map(|m| format!("{:.3}", m.seconds))
        .collect::<Vec<_>>()
        .join(", ");
    out.push_str(&format!(
        "  verify-bundle          {} events ({:.1} MB) in {seconds} s; bare signatures alone \
         {:.3} s\n",
        BUNDLE_EVENTS,
        report.bundle_bytes as f64 / 1e6,
        BUNDLE_EVENTS as f64 / report.raw_signatures_per_second.max(1e-9)
    ));
    out
}
