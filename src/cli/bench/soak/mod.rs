//! `docket bench --suite soak`: one Docket server under a steady mixed load for a long time
//! (ten minutes by default), reporting every interval what each kind of work did and how much
//! memory the server held, and judging at the end whether that memory stayed flat.
//!
//! The data directory (and database) must be empty. The soak seeds matters as the API suite
//! does ([`super::api::seed`]), signs the benchmark user in ([`super::auth`]), registers a
//! webhook endpoint of an API client on those matters pointing at a receiver in this process
//! ([`super::webhooks`]), and times the raw single-row inserts of the log suite
//! ([`super::baseline`]) on the same database. Then it starts `docket serve` in a child
//! process ([`server`]) and, all at once until the duration is up:
//!
//! - writers add notes through the `addNote` mutation at `--append-rate` in all;
//! - query clients send matter reads and filtered matter lists at `--query-rate` in all;
//! - `--soak-subscribers` WebSocket connections ([`super::websocket`]) each subscribe to every
//!   event of the matters and measure each note's lag;
//! - the server's webhook sender delivers every note to the receiver, which measures each
//!   delivery's lag;
//! - one client sends `GET /healthz` ten times a second, the baseline for the queries.
//!
//! After the load stops, the soak waits (up to a minute) for the deliveries still owed, then
//! stops the server.

mod memory;
mod report;
mod server;
mod tally;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zeroize::Zeroizing;

pub use report::{SoakReport, to_table};

use super::api::{self, ApiPlan};
use super::auth::sign_in;
use super::baseline::RawTable;
use super::load::{Client, Server, Target, answered};
use super::subscriptions::lag_micros;
use super::webhooks::{Received, Receiver, register_endpoint};
use super::websocket::{Incoming, Socket};
use crate::app::Docket;
use crate::store::{Backend, EventLog, LogOptions, StoreError};
use memory::Reading;
use report::{Baselines, Interval, Load, Owed, WorkFigures};
use tally::{Tally, Work};

/// Matters seeded (and written to, read, subscribed to and sent as webhooks).
const MATTERS: u64 = 50;
/// Concurrent writers; writer `w` adds notes to matters `w`, `w + WRITERS`, ... in turn.
const WRITERS: u64 = 8;
/// Concurrent query clients, alternating matter reads and matter lists.
const QUERY_CLIENTS: u64 = 4;
/// The baseline's requests per second.
const HEALTHZ_PER_SECOND: f64 = 10.0;
/// Raw single-row inserts timed for the baseline.
const RAW_INSERTS: u64 = 2_000;
/// Longest wait, after the load, for deliveries still owed.
const DRAIN: Duration = Duration::from_secs(60);
/// A request not answered in this long counts as an error (and its connection is replaced).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often subscribers ping (the server closes connections silent for a minute).
const PING_EVERY: Duration = Duration::from_secs(20);

const ADD_NOTE: &str = "mutation($n: String!, $body: String!) { addNote(number: $n, body: $body) \
    { version userErrors { message } } }";
const EVENTS: &str = "subscription($from: Int, $m: [String!]) { events(from: $from, matters: $m) \
    { position eventType recordedAt hash signature data } }";
const NOTE_ADDED: &str = "matter.note_added";

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct SoakPlan {
    pub duration: Duration,
    pub interval: Duration,
    /// Notes added per second, by all writers together.
    pub append_rate: u64,
    /// Queries per second, by all query clients together.
    pub query_rate: u64,
    pub subscribers: usize,
}

fn failed(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Database {
        detail: format!("soak: {detail}"),
    }
}

/// What the preparation leaves for the load.
struct Prepared {
    tokens: Arc<[Zeroizing<String>]>,
    numbers: Arc<[String]>,
    /// The first position the subscribers ask for.
    from: u64,
    raw_inserts: super::report::Measurement,
}

/// Runs the soak on the empty log `options` describe.
pub async fn run(
    options: &LogOptions,
    backend: Backend,
    plan: SoakPlan,
) -> Result<SoakReport, StoreError> {
    let tally = Arc::new(Tally::default());
    let webhooks_received = Arc::new(AtomicU64::new(0));
    let receiver = {
        let (tally, count) = (tally.clone(), webhooks_received.clone());
        Receiver::start(Received::observed(move |body| {
            observe_webhook(&tally, &count, body)
        }))?
    };
    let sessions = WRITERS as usize + QUERY_CLIENTS as usize + plan.subscribers;
    eprintln!("docket bench: soak on {backend}: preparing");
    let prepared = prepare(options, backend, sessions, &receiver.url()).await?;
    let address = api::free_address()?;
    let mut serving =
        server::ServerProcess::start(&options.data_dir, options.database_url.as_deref(), address)
            .await?;
    eprintln!(
        "docket bench: soak: serving on {address} (pid {}), {} s of load",
        serving.pid,
        plan.duration.as_secs()
    );

    let started = Instant::now();
    let end = started + plan.duration;
    let appended = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(AtomicU64::new(0));
    let target = Server {
        address,
        tokens: prepared.tokens.clone(),
    };
    let mut load = Vec::new();
    for writer in 0..WRITERS {
        let numbers: Vec<String> = prepared
            .numbers
            .iter()
            .skip(writer as usize)
            .step_by(WRITERS as usize)
            .cloned()
            .collect();
        let job = Job::Notes {
            numbers,
            writer,
            appended: appended.clone(),
        };
        let per_second = plan.append_rate as f64 / WRITERS as f64;
        load.push(tokio::spawn(drive(
            target.clone(),
            writer,
            job,
            per_second,
            end,
            tally.clone(),
        )));
    }
    for client in 0..QUERY_CLIENTS {
        let index = WRITERS + client;
        let per_second = plan.query_rate as f64 / QUERY_CLIENTS as f64;
        load.push(tokio::spawn(drive(
            target.clone(),
            index,
            Job::Queries,
            per_second,
            end,
            tally.clone(),
        )));
    }
    let healthz = Server {
        address,
        tokens: Arc::from(Vec::new()),
    };
    load.push(tokio::spawn(drive(
        healthz,
        0,
        Job::Healthz,
        HEALTHZ_PER_SECOND,
        end,
        tally.clone(),
    )));
    let mut subscribers = Vec::new();
    for subscriber in 0..plan.subscribers {
        let index = (WRITERS + QUERY_CLIENTS) as usize + subscriber;
        let token = prepared
            .tokens
            .get(index)
            .map(|token| Zeroizing::new(token.as_str().to_owned()))
            .ok_or_else(|| failed("too few sessions"))?;
        subscribers.push(tokio::spawn(subscribe(
            address,
            token,
            index as u64,
            prepared.numbers.clone(),
            prepared.from,
            tally.clone(),
            delivered.clone(),
        )));
    }

    // Every second a reading of memory; every interval a row.
    let mut readings = Vec::new();
    let mut intervals = Vec::new();
    let mut interval_started = started;
    let mut peak: Option<f64> = None;
    let mut seconds = tokio::time::interval(Duration::from_secs(1));
    seconds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    eprint!("{}", report::interval_header());
    loop {
        seconds.tick().await;
        let now = Instant::now();
        if !serving.running() {
            for task in load.iter().chain(subscribers.iter()) {
                task.abort();
            }
            receiver.stop().await;
            return Err(failed("the server exited during the load"));
        }
        let elapsed = now.duration_since(started).as_secs_f64();
        let rss = memory::rss_bytes(serving.pid).map(|bytes| Reading::new(elapsed, bytes));
        if let Some(reading) = rss {
            readings.push(reading);
            peak = Some(peak.map_or(reading.rss_mb, |peak| peak.max(reading.rss_mb)));
        }
        let finished = now >= end;
        if now.duration_since(interval_started) + Duration::from_millis(100) >= plan.interval
            || finished
        {
            let length = now.duration_since(interval_started).as_secs_f64();
            let interval = Interval {
                ends_at_seconds: elapsed,
                seconds: length,
                work: WorkFigures::each(|work| tally.take(work, length)),
                server_rss_mb: rss.map(|reading| reading.rss_mb),
                server_rss_peak_mb: peak.take(),
                bench_rss_mb: memory::rss_bytes(std::process::id())
                    .map(|bytes| Reading::new(elapsed, bytes).rss_mb),
            };
            eprint!("{}", report::interval_row(&interval));
            intervals.push(interval);
            interval_started = now;
        }
        if finished {
            break;
        }
    }
    let load_seconds = started.elapsed().as_secs_f64();
    for task in load {
        let _ = task.await;
    }

    // The deliveries still owed.
    let notes = appended.load(Ordering::SeqCst);
    let owed_to_subscribers = notes * plan.subscribers as u64;
    let draining = Instant::now();
    while draining.elapsed() < DRAIN
        && (delivered.load(Ordering::SeqCst) < owed_to_subscribers
            || webhooks_received.load(Ordering::SeqCst) < notes)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drain_seconds = draining.elapsed().as_secs_f64();
    for task in &subscribers {
        task.abort();
    }
    serving.stop().await;
    receiver.stop().await;

    let owed = Owed {
        notes_appended: notes,
        subscribers: plan.subscribers,
        subscription_deliveries_owed: owed_to_subscribers,
        subscription_deliveries_received: delivered.load(Ordering::SeqCst),
        webhooks_owed: notes,
        webhooks_received: webhooks_received.load(Ordering::SeqCst),
        drain_seconds,
    };
    let whole = WorkFigures::each(|work| tally.whole(work, load_seconds));
    let memory = memory::judge(
        &readings,
        plan.interval.as_secs_f64(),
        plan.duration.as_secs_f64(),
    );
    let over = |value: Option<f64>, base: Option<f64>| {
        value
            .zip(base)
            .filter(|(_, base)| *base > 0.0)
            .map(|(value, base)| value / base)
    };
    let baselines = Baselines {
        append_p99_vs_raw_insert_p99: over(whole.appends.p99_ms, prepared.raw_inserts.p99_ms),
        raw_single_row_inserts: prepared.raw_inserts,
        healthz_p99_ms: whole.healthz.p99_ms,
        matter_read_p99_vs_healthz_p99: over(whole.matter_reads.p99_ms, whole.healthz.p99_ms),
        matter_list_p99_vs_healthz_p99: over(whole.matter_lists.p99_ms, whole.healthz.p99_ms),
    };
    let errors = whole.errors() + owed.missing();
    let passed = errors == 0 && memory.flat;
    Ok(SoakReport {
        backend,
        load: Load {
            duration_seconds: plan.duration.as_secs(),
            interval_seconds: plan.interval.as_secs(),
            appends_per_second: plan.append_rate,
            queries_per_second: plan.query_rate,
            subscribers: plan.subscribers,
            matters: MATTERS,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
        memory_of: "the docket serve process",
        intervals,
        whole,
        owed,
        memory,
        baselines,
        errors,
        passed,
    })
}

/// Seeds the matters, signs the user in with `sessions` sessions, registers the webhook
/// endpoint at `webhook_url` and times the raw inserts, in this process, before the server
/// starts.
async fn prepare(
    options: &LogOptions,
    backend: Backend,
    sessions: usize,
    webhook_url: &str,
) -> Result<Prepared, StoreError> {
    {
        let log = EventLog::open(options).await?;
        if log.head().await?.position > 1 {
            return Err(failed(
                "the soak needs an empty data directory and database (it seeds its own)",
            ));
        }
    }
    let docket = Docket::open_with(options, Duration::ZERO).await?;
    let projecting = docket.projector.spawn();
    let plan = ApiPlan {
        matters: MATTERS,
        events: MATTERS * 14 + 1,
        deep_events: 1,
        seconds: 0,
        seal: true,
    };
    api::seed(&docket.log, Some(docket.vault.clone()), &plan).await?;
    let head = docket.log.head().await?.position;
    docket
        .projector
        .wait_for(head, Duration::from_secs(60))
        .await;
    let user = sign_in(&docket.identity, sessions).await?;
    let numbers: Vec<String> = (0..MATTERS).map(|index| format!("B{index:06}")).collect();
    register_endpoint(&docket, options, &numbers, webhook_url).await?;
    let from = docket.log.head().await?.position + 1;
    let raw = RawTable::open(backend, &options.data_dir, options.database_url.as_deref()).await?;
    let raw_inserts = raw.single_row_inserts(RAW_INSERTS, 1024).await?;
    raw.close().await;
    projecting.abort();
    Ok(Prepared {
        tokens: user.tokens.into(),
        numbers: numbers.into(),
        from,
        raw_inserts,
    })
}

/// What a paced client sends.
enum Job {
    /// Notes, to each of `numbers` in turn; `appended` counts those the server accepted.
    Notes {
        numbers: Vec<String>,
        writer: u64,
        appended: Arc<AtomicU64>,
    },
    /// Matter reads and matter lists, alternately.
    Queries,
    Healthz,
}

/// Client `index` of `server` does `job` `per_second` times a second until `end` (one request
/// at a time: a slow answer delays the next, then the client catches up), recording each
/// request's latency or failure.
async fn drive(
    server: Server,
    index: u64,
    job: Job,
    per_second: f64,
    end: Instant,
    tally: Arc<Tally>,
) {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second.max(0.01)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut client: Option<Client> = None;
    let mut sequence = 0u64;
    loop {
        ticks.tick().await;
        if Instant::now() >= end {
            return;
        }
        let (work, target) = match &job {
            Job::Notes { .. } => (Work::Appends, None),
            Job::Queries if sequence.is_multiple_of(2) => {
                (Work::MatterReads, Some(Target::MatterDetail))
            }
            Job::Queries => (Work::MatterLists, Some(Target::MatterList)),
            Job::Healthz => (Work::Healthz, Some(Target::Healthz)),
        };
        sequence += 1;
        if client.is_none() {
            client = Client::open(&server, index).await.ok();
        }
        let Some(open) = client.as_mut() else {
            tally.failed(work);
            continue;
        };
        let began = Instant::now();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
            match (&job, target) {
                (
                    Job::Notes {
                        numbers, writer, ..
                    },
                    _,
                ) => {
                    let number = numbers
                        .get((sequence as usize) % numbers.len().max(1))
                        .cloned()
                        .unwrap_or_default();
                    let body = format!(
                        "Soak note {writer}-{sequence}: called the client about disclosure."
                    );
                    let reply = open
                        .graphql(ADD_NOTE, json!({"n": number, "body": body}))
                        .await?;
                    Ok(answered(&reply, "/data/addNote/version"))
                }
                (_, Some(target)) => open.request(target, MATTERS).await,
                (_, None) => Ok(false),
            }
        })
        .await;
        match answer {
            Ok(Ok(true)) => {
                tally.done(work, began.elapsed());
                if let Job::Notes { appended, .. } = &job {
                    appended.fetch_add(1, Ordering::SeqCst);
                }
            }
            Ok(Ok(false)) => tally.failed(work),
            // A broken or stalled connection: count it and start a new one.
            Ok(Err(_)) | Err(_) => {
                tally.failed(work);
                client = None;
            }
        }
    }
}

/// One subscriber: subscribes to the matters' events from `from` and records each note's lag,
/// until aborted; a connection that fails or ends counts as an error and is opened again from
/// the position after the last event received.
async fn subscribe(
    address: std::net::SocketAddr,
    token: Zeroizing<String>,
    index: u64,
    numbers: Arc<[String]>,
    from: u64,
    tally: Arc<Tally>,
    delivered: Arc<AtomicU64>,
) {
    let mut next = from;
    loop {
        let mut socket = match Socket::connect(address, &token, index).await {
            Ok(socket) => socket,
            Err(error) => {
                report_end(&format!("cannot connect: {error}"));
                tally.failed(Work::Subscriptions);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let request = json!({"id": "1", "type": "subscribe", "payload": {
            "query": EVENTS,
            "variables": {"from": next, "m": &*numbers},
        }});
        if socket.send(&request).await.is_err() {
            tally.failed(Work::Subscriptions);
            continue;
        }
        let mut ping_at = tokio::time::Instant::now() + PING_EVERY;
        loop {
            match socket.receive_until(ping_at).await {
                Ok(Incoming::Idle) => {
                    ping_at = tokio::time::Instant::now() + PING_EVERY;
                    if socket.send(&json!({"type": "ping"})).await.is_err() {
                        break;
                    }
                }
                Ok(Incoming::Message(message)) if message["type"] == "next" => {
                    let event = &message["payload"]["data"]["events"];
                    match event["position"].as_u64() {
                        Some(position) => {
                            next = next.max(position + 1);
                            if event["eventType"] == NOTE_ADDED {
                                let lag = lag_micros(event["recordedAt"].as_str().unwrap_or(""));
                                tally.done_micros(Work::Subscriptions, lag);
                                delivered.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        None => tally.failed(Work::Subscriptions),
                    }
                }
                Ok(Incoming::Message(message)) if message["type"] == "pong" => {}
                // An error, a completion or a close ends this connection.
                Ok(Incoming::Message(message)) => {
                    report_end(&format!(
                        "{} {}",
                        message["type"], message["payload"][0]["message"]
                    ));
                    break;
                }
                Ok(Incoming::Closed(code)) => {
                    report_end(&format!("closed with {code}"));
                    break;
                }
                Err(error) => {
                    report_end(&error.to_string());
                    break;
                }
            }
            if tokio::time::Instant::now() >= ping_at {
                ping_at = tokio::time::Instant::now() + PING_EVERY;
                if socket.send(&json!({"type": "ping"})).await.is_err() {
                    break;
                }
            }
        }
        tally.failed(Work::Subscriptions);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Ends reported so far (only the first few are printed).
static ENDS: AtomicU64 = AtomicU64::new(0);

/// Prints why a subscriber's connection ended, for the first few that do.
fn report_end(why: &str) {
    if ENDS.fetch_add(1, Ordering::Relaxed) < 5 {
        eprintln!("docket bench: soak: a subscription ended: {why}");
    }
}

/// Records a webhook the receiver got: a note's lag from its `recorded_at`.
fn observe_webhook(tally: &Tally, count: &AtomicU64, body: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        tally.failed(Work::Webhooks);
        return;
    };
    if body["type"] != NOTE_ADDED {
        return;
    }
    match body["data"]["recorded_at"].as_str() {
        Some(recorded_at) => {
            tally.done_micros(Work::Webhooks, lag_micros(recorded_at));
            count.fetch_add(1, Ordering::SeqCst);
        }
        None => tally.failed(Work::Webhooks),
    }
}
