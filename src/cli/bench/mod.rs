//! `docket bench`: appends with 1, 16 and 64 concurrent writers and verification of a large log,
//! each beside a raw baseline measured in the same run on the same machine, reported as ratios.
//!
//! Baselines: durable single-row and 100-row-batch inserts of rows the size of an event into a
//! plain table (no hashing, no signing), and ed25519 batch verification of precomputed
//! signatures on all cores. The log is left in `--data-dir` (one subdirectory per backend) so it
//! can be inspected and verified afterwards with `docket verify`.

mod api;
mod auth;
mod baseline;
mod encryption;
mod http;
mod load;
mod nats;
mod parts;
mod report;
mod soak;
mod subscriptions;
mod transparency;
mod webhooks;
mod websocket;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};

use super::fail;
use crate::config::Settings;
use crate::store::{Backend, EventLog, LogOptions, StoreError};
use crate::verification::{VerifyOptions, verify_log};
use report::{BackendReport, Measurement};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchBackend {
    Sqlite,
    Postgres,
    Both,
}

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Suite {
    /// Appends and verification against raw baselines.
    Log,
    /// The matter API under load beside /healthz, projection rebuild and time travel.
    Api,
    /// The Merkle tree over a large log: building it, proofs, and appends while checkpoints
    /// are signed (the log is filled to --verify-events).
    Transparency,
    /// Encryption at rest: KEK rotation over --data-keys keys against unwrap+wrap in memory,
    /// and appends with sealing on against off.
    Encryption,
    /// Publishing the log (--events events) to NATS JetStream, against raw JetStream publishes
    /// of the same messages.
    Nats,
    /// --subscribers subscribers to the log while --rate notes per second are appended for
    /// --seconds: delivery lag through GraphQL subscriptions against feed followers alone.
    Subscriptions,
    /// Signed webhook deliveries (--webhook-deliveries) to a local receiver, against raw POSTs
    /// of the same bodies.
    Webhooks,
    /// `docket serve` in a child process under appends, queries, WebSocket subscriptions and
    /// webhooks at once for --duration seconds, reporting every --interval seconds and judging
    /// whether the server's memory stayed flat (exit status 1 if not, or on any error).
    Soak,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which measurements to run.
    #[arg(long, value_enum, default_value = "log")]
    suite: Suite,
    /// API suite: matters to seed.
    #[arg(long, default_value_t = 10_000)]
    matters: u64,
    /// API suite: events in the seeded store (matters, contacts, notes, time entries).
    #[arg(long, default_value_t = 1_000_000)]
    api_events: u64,
    /// API suite: events of the matter read as of past positions.
    #[arg(long, default_value_t = 10_000)]
    deep_events: u64,
    /// API suite: seconds each load runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Events appended in each concurrent-writer run (16 and 64 writers).
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// Events appended by the single writer (each one commit).
    #[arg(long, default_value_t = 3_000)]
    single_writer_events: u64,
    /// Size the log is filled to before verification is timed.
    #[arg(long, default_value_t = 1_000_000)]
    verify_events: u64,
    /// Encryption suite: data keys the KEK rotation rewraps.
    #[arg(long, default_value_t = 100_000)]
    data_keys: u64,
    /// Approximate payload size in bytes.
    #[arg(long, default_value_t = 1024)]
    payload_bytes: usize,
    /// Backends to measure [default: postgres too when a database URL is configured].
    #[arg(long, value_enum)]
    backend: Option<BenchBackend>,
    /// API suite: write client data unsealed, the baseline that shows what sealing costs
    /// (never how Docket runs).
    #[arg(long)]
    unsealed: bool,
    /// Subscriptions suite: concurrent subscribers.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Subscriptions suite: events appended per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Webhooks suite: deliveries to time.
    #[arg(long, default_value_t = 5000)]
    webhook_deliveries: u64,
    /// Soak suite: seconds of load.
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Soak suite: seconds between reports.
    #[arg(long, default_value_t = 30)]
    interval: u64,
    /// Soak suite: notes added per second (through the addNote mutation).
    #[arg(long, default_value_t = 50)]
    append_rate: u64,
    /// Soak suite: matter reads and matter lists per second, together.
    #[arg(long, default_value_t = 100)]
    query_rate: u64,
    /// Soak suite: WebSocket subscribers, each to every event of the soak's matters.
    #[arg(long, default_value_t = 20)]
    soak_subscribers: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: &Settings, args: BenchArgs) -> ExitCode {
    let which = args.backend.unwrap_or(if settings.database_url.is_some() {
        BenchBackend::Both
    } else {
        BenchBackend::Sqlite
    });
    let mut backends = Vec::new();
    if matches!(which, BenchBackend::Sqlite | BenchBackend::Both) {
        backends.push(Backend::Sqlite);
    }
    if matches!(which, BenchBackend::Postgres | BenchBackend::Both) {
        if settings.database_url.is_none() {
            return fail("the postgres benchmark needs --database-url or DOCKET_DATABASE_URL");
        }
        backends.push(Backend::Postgres);
    }

    if args.suite == Suite::Api {
        return run_api(settings, &args, &backends).await;
    }
    if args.suite == Suite::Transparency {
        return run_transparency(settings, &args, &backends).await;
    }
    if args.suite == Suite::Encryption {
        return run_encryption(settings, &args, &backends).await;
    }
    if args.suite == Suite::Subscriptions {
        return run_subscriptions(settings, &args, &backends).await;
    }
    if args.suite == Suite::Nats {
        return nats::run(settings, &args, &backends).await;
    }
    if args.suite == Suite::Soak {
        return run_soak(settings, &args, &backends).await;
    }
    if args.suite == Suite::Webhooks {
        let deliveries = args.webhook_deliveries;
        return webhooks::run_suite(settings, deliveries, args.json, &backends).await;
    }

    let mut reports = Vec::new();
    for backend in backends {
        eprintln!("docket bench: {backend}");
        match run_backend(settings, &args, backend).await {
            Ok(report) => reports.push(report),
            Err(error) => return fail(format!("{backend} benchmark failed: {error}")),
        }
    }
    let raw_verify =
        baseline::batch_verify_rate(args.verify_events.clamp(10_000, 200_000) as usize);
    let document = report::Report::new(reports, raw_verify, &args);
    let path = settings.data_dir.join("bench-report.json");
    if let Err(error) = std::fs::write(&path, document.to_json()) {
        return fail(format!("cannot write {}: {error}", path.display()));
    }
    if args.json {
        println!("{}", document.to_json());
    } else {
        print!("{}", document.to_table());
    }
    ExitCode::SUCCESS
}

async fn run_api(settings: &Settings, args: &BenchArgs, backends: &[Backend]) -> ExitCode {
    let plan = api::ApiPlan {
        matters: args.matters,
        events: args.api_events,
        deep_events: args.deep_events,
        seconds: args.seconds,
        seal: !args.unsealed,
    };
    let mut reports = Vec::new();
    for &backend in backends {
        let data_dir = settings.data_dir.join(format!("api-{backend}"));
        let mut options = LogOptions::new(&data_dir);
        if backend == Backend::Postgres {
            options.database_url = settings.database_url.clone();
            if let Err(error) = remember_database(&data_dir, settings) {
                return fail(error);
            }
        }
        match api::run(&options, &plan).await {
            Ok(report) => {
                print!("{}", api::to_table(&report));
                reports.push(report);
            }
            Err(error) => return fail(format!("{backend} API benchmark failed: {error}")),
        }
    }
    let path = settings.data_dir.join("bench-api-report.json");
    let json = serde_json::to_string_pretty(&reports).unwrap_or_default();
    if let Err(error) = std::fs::write(&path, &json) {
        return fail(format!("cannot write {}: {error}", path.display()));
    }
    if args.json {
        println!("{json}");
    }
    ExitCode::SUCCESS
}

async fn run_transparency(settings: &Settings, args: &BenchArgs, backends: &[Backend]) -> ExitCode {
    let mut reports = Vec::new();
    for &backend in backends {
        eprintln!("docket bench: transparency on {backend}");
        let data_dir = settings.data_dir.join(format!("transparency-{backend}"));
        let mut options = LogOptions::new(&data_dir);
        options.max_payload_bytes = settings.max_payload_bytes.max(args.payload_bytes * 2);
        if backend == Backend::Postgres {
            options.database_url = settings.database_url.clone();
            if let Err(error) = remember_database(&data_dir, settings) {
                return fail(error);
            }
        }
        let run = async {
            let log = std::sync::Arc::new(EventLog::open(&options).await?);
            transparency::run(
                &log,
                &options,
                backend,
                args.verify_events,
                args.events,
                args.payload_bytes,
            )
            .await
        };
        match run.await {
            Ok(report) => {
                print!("{}", transparency::to_table(&report));
                reports.push(report);
            }
            Err(error) => return fail(format!("{backend} transparency benchmark failed: {error}")),
        }
    }
    let path = settings.data_dir.join("bench-transparency-report.json");
    let json = serde_json::to_string_pretty(&reports).unwrap_or_default();
    if let Err(error) = std::fs::write(&path, &json) {
        return fail(format!("cannot write {}: {error}", path.display()));
    }
    if args.json {
        println!("{json}");
    }
    ExitCode::SUCCESS
}

async fn run_encryption(settings: &Settings, args: &BenchArgs, backends: &[Backend]) -> ExitCode {
    let mut reports = Vec::new();
    for &backend in backends {
        eprintln!("docket bench: encryption on {backend}");
        let data_dir = settings.data_dir.join(format!("encryption-{backend}"));
        let mut options = LogOptions::new(&data_dir);
        if backend == Backend::Postgres {
            options.database_url = settings.database_url.clone();
            if let Err(error) = remember_database(&data_dir, settings) {
                return fail(error);
            }
        }
        match encryption::run(&options, backend, args.data_keys, args.events).await {
            Ok(report) => {
                print!("{}", encryption::to_table(&report));
                reports.push(report);
            }
            Err(error) => return fail(format!("{backend} encryption benchmark failed: {error}")),
        }
    }
    let path = settings.data_dir.join("bench-encryption.json");
    let json = serde_json::to_string_pretty(&reports).unwrap_or_default();
    if let Err(error) = std::fs::write(&path, &json) {
        return fail(format!("cannot write {}: {error}", path.display()));
    }
    if args.json {
        println!("{json}");
    }
    ExitCode::SUCCESS
}

async fn run_backend(
    settings: &Settings,
    args: &BenchArgs,
    backend: Backend,
) -> Result<BackendReport, StoreError> {
    let data_dir = settings.data_dir.join(backend.to_string());
    let mut options = LogOptions::new(&data_dir);
    options.max_payload_bytes = settings.max_payload_bytes.max(args.payload_bytes * 2);
    if backend == Backend::Postgres {
        options.database_url = settings.database_url.clone();
        remember_database(&data_dir, settings)?;
    }
    let log = std::sync::Arc::new(EventLog::open(&options).await?);
    let mut report = BackendReport::new(backend);

    // Baselines first, on the same database.
    let raw = baseline::RawTable::open(backend, &data_dir, options.database_url.as_deref()).await?;
    report.raw_single = raw
        .single_row_inserts(args.single_writer_events, args.payload_bytes)
        .await?;
    report.raw_batched = raw
        .batched_inserts(args.events, 100, args.payload_bytes)
        .await?;
    raw.close().await;

    // Appends at increasing concurrency.
    report
        .appends
        .push(workload::appends(&log, 1, args.single_writer_events, args.payload_bytes).await?);
    for writers in [16, 64] {
        report
            .appends
            .push(workload::appends(&log, writers, args.events, args.payload_bytes).await?);
    }

    // Fill to the verification size with bulk appends, then time a full verification.
    let target = args.verify_events;
    report.fill = workload::fill(&log, target, args.payload_bytes).await?;
    let store = log.store().clone();
    let started = Instant::now();
    let verified = verify_log(store, VerifyOptions::default(), |_| {}).await?;
    let seconds = started.elapsed().as_secs_f64();
    let summary = verified.map_err(|failure| StoreError::Database {
        detail: format!("the benchmark log does not verify: {failure:?}"),
    })?;
    report.verify = Some(Measurement::throughput(summary.events, seconds));
    report.sequencer = Some(log.stats());
    Ok(report)
}

/// Writes the database URL into the backend's data directory (mode 0600), so that
/// `docket --data-dir DIR/postgres verify` finds the benchmark's log.
fn remember_database(data_dir: &Path, settings: &Settings) -> Result<(), StoreError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let error = |e: std::io::Error| StoreError::DataDir {
        detail: e.to_string(),
    };
    std::fs::create_dir_all(data_dir).map_err(error)?;
    let path: PathBuf = data_dir.join("docket.toml");
    let url = settings.database_url.clone().unwrap_or_default();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(error)?;
    writeln!(file, "database_url = {}", toml_string(&url)).map_err(error)
}

fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

async fn run_subscriptions(
    settings: &Settings,
    args: &BenchArgs,
    backends: &[Backend],
) -> ExitCode {
    let plan = subscriptions::SubscriptionPlan {
        subscribers: args.subscribers.max(1),
        rate: args.rate.max(1),
        seconds: args.seconds.max(1),
    };
    let mut reports = Vec::new();
    for &backend in backends {
        eprintln!("docket bench: subscriptions on {backend}");
        let data_dir = settings.data_dir.join(format!("subscriptions-{backend}"));
        let mut options = LogOptions::new(&data_dir);
        if backend == Backend::Postgres {
            options.database_url = settings.database_url.clone();
            if let Err(error) = remember_database(&data_dir, settings) {
                return fail(error);
            }
        }
        match subscriptions::run(&options, backend, plan).await {
            Ok(report) => {
                print!("{}", subscriptions::to_table(&report));
                reports.push(report);
            }
            Err(error) => return fail(format!("{backend} subscription benchmark failed: {error}")),
        }
    }
    let path = settings.data_dir.join("bench-subscriptions.json");
    let json = serde_json::to_string_pretty(&reports).unwrap_or_default();
    if let Err(error) = std::fs::write(&path, &json) {
        return fail(format!("cannot write {}: {error}", path.display()));
    }
    if args.json {
        println!("{json}");
    }
    ExitCode::SUCCESS
}

async fn run_soak(settings: &Settings, args: &BenchArgs, backends: &[Backend]) -> ExitCode {
    let plan = soak::SoakPlan {
        duration: std::time::Duration::from_secs(args.duration.max(1)),
        interval: std::time::Duration::from_secs(args.interval.clamp(1, args.duration.max(1))),
        append_rate: args.append_rate.max(1),
        query_rate: args.query_rate.max(1),
        subscribers: args.soak_subscribers,
    };
    let mut reports = Vec::new();
    for &backend in backends {
        let data_dir = settings.data_dir.join(format!("soak-{backend}"));
        let mut options = LogOptions::new(&data_dir);
        if backend == Backend::Postgres {
            options.database_url = settings.database_url.clone();
            if let Err(error) = remember_database(&data_dir, settings) {
                return fail(error);
            }
        }
        match soak::run(&options, backend, plan).await {
            Ok(report) => {
                if !args.json {
                    print!("{}", soak::to_table(&report));
                }
                reports.push(report);
            }
            Err(error) => return fail(format!("{backend} soak failed: {error}")),
        }
    }
    let path = settings.data_dir.join("bench-soak.json");
    let json = serde_json::to_string_pretty(&reports).unwrap_or_default();
    if let Err(error) = std::fs::write(&path, &json) {
        return fail(format!("cannot write {}: {error}", path.display()));
    }
    if args.json {
        println!("{json}");
    }
    if reports.iter().all(|report| report.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
