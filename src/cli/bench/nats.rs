//! `docket bench --suite nats`: publishing the log to NATS JetStream.
//!
//! The log is filled to `--events` events; then, in three rounds, each on fresh streams:
//!
//! - the baseline: the very same messages (subjects, headers, bodies), built beforehand and
//!   held in memory, published straight to JetStream with the publisher's pipelining (the same
//!   number in flight, acks checked in order), no Docket in between;
//! - Docket's publisher, from an empty stream to the log's head: reading the log, encoding,
//!   publishing and checking every ack.
//!
//! The two alternate (baseline, Docket, baseline, ...) so that drift in the machine hits both
//! alike. Rates are acked events per second; the ratio is Docket's over the baseline's. The
//! server is `nats_url` if configured, else `DOCKET_NATS_URL`, else nats://127.0.0.1:4222.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use async_nats::jetstream::{self, message::PublishMessage};
use futures::stream::{FuturesOrdered, StreamExt, TryStreamExt};
use serde::Serialize;

use super::report::Measurement;
use super::{BenchArgs, fail, remember_database, workload};
use crate::config::Settings;
use crate::integrations::nats::{
    DEFAULT_WINDOW, NatsPublisher, NatsSettings, stream_config, subjects,
};
use crate::store::{Backend, EventLog, LogOptions};

const ROUNDS: usize = 3;
const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// What the NATS suite measured on one backend.
#[derive(Debug, Serialize)]
pub struct NatsReport {
    pub backend: Backend,
    pub events: u64,
    /// Messages in flight at once, in both runs.
    pub window: usize,
    pub mean_body_bytes: u64,
    /// One per round: the same messages published straight to JetStream.
    pub raw: Vec<Measurement>,
    /// One per round: Docket's publisher from an empty stream to the head.
    pub docket: Vec<Measurement>,
    /// Median over the rounds of `docket.per_second / raw.per_second`.
    pub docket_to_raw: f64,
}

/// Runs the suite on each backend, prints the tables and writes `bench-nats.json`.
pub async fn run(settings: &Settings, args: &BenchArgs, backends: &[Backend]) -> ExitCode {
    let base = match server_settings(settings) {
        Ok(base) => base,
        Err(error) => return fail(error),
    };
    let mut reports = Vec::new();
    for &backend in backends {
        eprintln!("docket bench: nats on {backend} ({})", base.servers_shown());
        let data_dir = settings.data_dir.join(format!("nats-{backend}"));
        let mut options = LogOptions::new(&data_dir);
        options.max_payload_bytes = settings.max_payload_bytes.max(args.payload_bytes * 2);
        if backend == Backend::Postgres {
            options.database_url = settings.database_url.clone();
            if let Err(error) = remember_database(&data_dir, settings) {
                return fail(error);
            }
        }
        match run_backend(&options, &base, backend, args).await {
            Ok(report) => {
                print!("{}", to_table(&report));
                reports.push(report);
            }
            Err(error) => return fail(format!("{backend} NATS benchmark failed: {error}")),
        }
    }
    let path = settings.data_dir.join("bench-nats.json");
    let json = serde_json::to_string_pretty(&reports).unwrap_or_default();
    if let Err(error) = std::fs::write(&path, &json) {
        return fail(format!("cannot write {}: {error}", path.display()));
    }
    if args.json {
        println!("{json}");
    }
    ExitCode::SUCCESS
}

fn server_settings(settings: &Settings) -> Result<NatsSettings, String> {
    if let Some(configured) = &settings.nats {
        return Ok(configured.clone());
    }
    let url = std::env::var("DOCKET_NATS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    NatsSettings::new(&url, None, None).map_err(|error| error.to_string())
}

async fn run_backend(
    options: &LogOptions,
    base: &NatsSettings,
    backend: Backend,
    args: &BenchArgs,
) -> Result<NatsReport, String> {
    let log = Arc::new(EventLog::open(options).await.map_err(|e| e.to_string())?);
    workload::fill(&log, args.events, args.payload_bytes)
        .await
        .map_err(|e| e.to_string())?;
    let head = log.head().await.map_err(|e| e.to_string())?.position;
    let events: Vec<_> = log
        .pages_from(1)
        .try_concat()
        .await
        .map_err(|e| e.to_string())?;
    let body_bytes: usize = events
        .iter()
        .map(|event| serde_json::to_vec(event).map_or(0, |body| body.len()))
        .sum();

    let client = base.connect().await.map_err(|e| e.to_string())?;
    let js = jetstream::ContextBuilder::new()
        .timeout(std::time::Duration::from_secs(10))
        .build(client);
    let pid = std::process::id();
    let mut report = NatsReport {
        backend,
        events: head,
        window: DEFAULT_WINDOW,
        mean_body_bytes: (body_bytes / events.len().max(1)) as u64,
        raw: Vec::new(),
        docket: Vec::new(),
        docket_to_raw: 0.0,
    };
    for round in 0..ROUNDS {
        let raw_settings = named(base, &format!("DOCKET_BENCH_RAW_{pid}_{round}"))?;
        let messages = events
            .iter()
            .enumerate()
            .map(|(index, event)| {
                let (subject, message) = subjects::message(&raw_settings.subject_prefix, event)
                    .map_err(|e| e.to_string())?;
                Ok((
                    subject,
                    message
                        .expected_stream(&raw_settings.stream)
                        .expected_last_sequence(index as u64),
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let raw = raw_publish(&js, &raw_settings, messages).await;
        let _ = js.delete_stream(&raw_settings.stream).await;
        report.raw.push(raw?);

        let docket_settings = named(base, &format!("DOCKET_BENCH_{pid}_{round}"))?;
        let publisher = NatsPublisher::new(docket_settings.clone(), log.clone(), options);
        let started = Instant::now();
        let published = publisher.publish_until(head).await;
        let seconds = started.elapsed().as_secs_f64();
        let _ = js.delete_stream(&docket_settings.stream).await;
        let published = published.map_err(|e| e.to_string())?;
        if published.published != head {
            return Err(format!(
                "the publisher stored {} events of {head}",
                published.published
            ));
        }
        report
            .docket
            .push(Measurement::throughput(published.published, seconds));
    }
    let mut ratios: Vec<f64> = report
        .docket
        .iter()
        .zip(&report.raw)
        .map(|(docket, raw)| docket.per_second / raw.per_second.max(1e-9))
        .collect();
    ratios.sort_by(f64::total_cmp);
    report.docket_to_raw = ratios.get(ratios.len() / 2).copied().unwrap_or_default();
    Ok(report)
}

fn named(base: &NatsSettings, stream: &str) -> Result<NatsSettings, String> {
    base.with_stream(stream, &stream.to_lowercase())
        .map_err(|e| e.to_string())
}

/// Publishes prepared messages to a fresh stream, `DEFAULT_WINDOW` in flight, acks checked in
/// order; timed from the first publish to the last ack.
async fn raw_publish(
    js: &jetstream::Context,
    settings: &NatsSettings,
    messages: Vec<(String, PublishMessage)>,
) -> Result<Measurement, String> {
    let _ = js.delete_stream(&settings.stream).await;
    js.create_stream(stream_config(settings))
        .await
        .map_err(|e| e.to_string())?;
    let count = messages.len() as u64;
    let started = Instant::now();
    let mut inflight = FuturesOrdered::new();
    for (subject, message) in messages {
        if inflight.len() >= DEFAULT_WINDOW
            && let Some(acked) = inflight.next().await
        {
            check_ack(acked)?;
        }
        let ack = js
            .send_publish(subject, message)
            .await
            .map_err(|e| e.to_string())?;
        inflight.push_back(ack.into_future());
    }
    while let Some(acked) = inflight.next().await {
        check_ack(acked)?;
    }
    Ok(Measurement::throughput(
        count,
        started.elapsed().as_secs_f64(),
    ))
}

fn check_ack(
    acked: Result<jetstream::publish::PublishAck, jetstream::context::PublishError>,
) -> Result<(), String> {
    match acked {
        Ok(ack) if !ack.duplicate => Ok(()),
        Ok(_) => Err("a baseline message was taken for a duplicate".into()),
        Err(error) => Err(error.to_string()),
    }
}

/// The report as the lines `docket bench` prints.
pub fn to_table(report: &NatsReport) -> String {
    let rates = |runs: &[Measurement]| {
        runs.iter()
            .map(|m| format!("{:.0}", m.per_second))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "\nnats ({}), {} events of {} bytes on average, {} in flight\n  \
         raw JetStream publish   {} events/s (baseline, {ROUNDS} rounds)\n  \
         Docket publisher        {} events/s\n  \
         Docket/baseline         {:.3} (median)\n",
        report.backend,
        report.events,
        report.mean_body_bytes,
        report.window,
        rates(&report.raw),
        rates(&report.docket),
        report.docket_to_raw,
    )
}
