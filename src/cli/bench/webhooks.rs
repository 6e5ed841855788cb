//! `docket bench --suite webhooks`: how fast signed webhooks reach a receiver.
//!
//! An API client on the team of eight matters has one endpoint, an HTTP receiver on
//! 127.0.0.1 in the same process that answers 200 at once. `--webhook-deliveries` notes are
//! added to those matters first (through the service, client data sealed) with the webhook
//! service stopped; then the service starts and the run is timed until the receiver has every
//! delivery. Each delivery is the whole path: the dispatcher reads the event and asks the gate,
//! the sender claims it under a lease, asks the gate again, opens the note, records the read
//! in the access chain, signs (ed25519), POSTs and records the attempt.
//!
//! The baseline, in the same run, POSTs the very bodies the receiver got to the same receiver
//! from the same number of concurrent requests, with nothing else: no database, no signing.
//! The figure is the ratio of the two rates.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use futures::StreamExt;
use serde::Serialize;

use super::report::Measurement;
use crate::app::Docket;
use crate::cli::fail;
use crate::config::Settings;
use crate::domain::commands::{AddNote, AddTeamMember, MatterCommand, OpenMatter};
use crate::domain::events::TeamCapacity;
use crate::integrations::webhooks::{
    Cidr, DeliveryStatus, EgressPolicy, NewEndpoint, Scheme, WebhookParts, WebhookSettings,
    Webhooks,
};
use crate::log::Actor;
use crate::service::CommandContext;
use crate::store::{Backend, LogOptions, StoreError};

/// Matters the notes are spread over (one writer each).
const MATTERS: usize = 8;
/// Attempts in flight at once, for Docket and for the baseline alike.
const CONCURRENCY: usize = 64;

/// What the webhook suite measured on one backend.
#[derive(Debug, Serialize)]
pub struct WebhookReport {
    pub backend: Backend,
    pub concurrency: usize,
    /// Notes added beforehand (not timed as deliveries).
    pub appends: Measurement,
    /// Signed deliveries, from the service's start to the last one received.
    pub deliveries: Measurement,
    /// Plain POSTs of the same bodies to the same receiver.
    pub raw_posts: Measurement,
    /// `deliveries.per_second / raw_posts.per_second`.
    pub ratio: f64,
}

/// Shown each body the receiver gets.
type Observer = Box<dyn Fn(&[u8]) + Send + Sync>;

/// What the receiver saw: a count of requests, their bodies while `keep` is set (for the
/// baseline), and each body shown to the observer when there is one.
#[derive(Default)]
pub(super) struct Received {
    pub count: AtomicU64,
    bodies: std::sync::Mutex<Vec<web::Bytes>>,
    keep: std::sync::atomic::AtomicBool,
    observer: Option<Observer>,
}

impl Received {
    /// A receiver state that shows every body to `observer`.
    pub fn observed(observer: impl Fn(&[u8]) + Send + Sync + 'static) -> Self {
        Received {
            observer: Some(Box::new(observer)),
            ..Received::default()
        }
    }
}

async fn receive(body: web::Bytes, received: web::Data<Received>) -> HttpResponse {
    if received.keep.load(Ordering::Relaxed)
        && let Ok(mut bodies) = received.bodies.lock()
    {
        bodies.push(body.clone());
    }
    if let Some(observer) = &received.observer {
        observer(&body);
    }
    received.count.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Ok().finish()
}

/// An HTTP receiver on 127.0.0.1 that answers 200 to every request at once.
pub(super) struct Receiver {
    pub address: std::net::SocketAddr,
    pub received: web::Data<Received>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// Starts the receiver (two workers) on a free port.
    pub fn start(received: Received) -> Result<Self, StoreError> {
        let received = web::Data::new(received);
        let shared = received.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .default_service(web::to(receive))
        })
        .workers(2)
        .bind("127.0.0.1:0")
        .map_err(|error| failed("the receiver", error))?;
        let address = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| failed("the receiver", "no address"))?;
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Receiver {
            address,
            received,
            handle,
        })
    }

    /// The URL webhooks are sent to.
    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.address)
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// Registers an API client on the team of every matter of `numbers` and one endpoint of it,
/// at `url`, for the notes added to them from the next position on (ed25519 signatures).
/// Returns the webhook service, not started, and the client's id.
pub(super) async fn register_endpoint(
    docket: &Docket,
    options: &LogOptions,
    numbers: &[String],
    url: &str,
) -> Result<(std::sync::Arc<Webhooks>, String), StoreError> {
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let client_id = format!("bench-{}", &run_id[20..]);
    docket
        .identity
        .register_api_client(&Actor::system(), None, &client_id, "Webhook benchmark")
        .await
        .map_err(|error| failed("the API client", error))?;
    let context = CommandContext::new(Actor::parse("user:bench").map_err(|e| failed("actor", e))?);
    for number in numbers {
        let member = MatterCommand::AddTeamMember(AddTeamMember {
            user_id: client_id.clone(),
            capacity: TeamCapacity::Staff,
        });
        docket
            .service
            .change_matter(&context, number, &member)
            .await
            .map_err(|e| failed("team", e))?;
    }
    let settings = WebhookSettings {
        egress: EgressPolicy {
            allow_http: true,
            allowed: Cidr::parse("127.0.0.1/32").into_iter().collect(),
        },
        concurrency: CONCURRENCY,
        poll: Duration::from_millis(50),
        ..WebhookSettings::default()
    };
    let parts = WebhookParts {
        log: docket.log.clone(),
        identity: docket.identity.clone(),
        vault: docket.vault.clone(),
        access: docket.access.clone(),
        feed: docket.integrations.feed.clone(),
        gate: docket.integrations.gate.clone(),
    };
    let webhooks = Webhooks::open(parts, options, settings)
        .await
        .map_err(|e| failed("webhooks", e))?;
    let from = docket.log.head().await?.position + 1;
    webhooks
        .register(
            &Actor::system(),
            None,
            NewEndpoint {
                client_id: client_id.clone(),
                url: url.to_owned(),
                matters: numbers.to_vec(),
                event_types: vec!["matter.note_added".into()],
                scheme: Scheme::Ed25519,
                from_position: Some(from),
            },
        )
        .await
        .map_err(|e| failed("register", e))?;
    Ok((webhooks, client_id))
}

fn failed(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Database {
        detail: format!("{what}: {error}"),
    }
}

/// Runs the suite on every backend asked for, printing each report and writing them all to
/// `<data-dir>/bench-webhooks.json`.
pub async fn run_suite(
    settings: &Settings,
    deliveries: u64,
    json: bool,
    backends: &[Backend],
) -> ExitCode {
    let mut reports = Vec::new();
    for &backend in backends {
        eprintln!("docket bench: webhooks on {backend}");
        let data_dir = settings.data_dir.join(format!("webhooks-{backend}"));
        let mut options = LogOptions::new(&data_dir);
        if backend == Backend::Postgres {
            options.database_url = settings.database_url.clone();
            if let Err(error) = super::remember_database(&data_dir, settings) {
                return fail(error);
            }
        }
        match run(&options, backend, deliveries.max(1)).await {
            Ok(report) => {
                print!("{}", to_table(&report));
                reports.push(report);
            }
            Err(error) => return fail(format!("{backend} webhook benchmark failed: {error}")),
        }
    }
    let path = settings.data_dir.join("bench-webhooks.json");
    let text = serde_json::to_string_pretty(&reports).unwrap_or_default();
    if let Err(error) = std::fs::write(&path, &text) {
        return fail(format!("cannot write {}: {error}", path.display()));
    }
    if json {
        println!("{text}");
    }
    ExitCode::SUCCESS
}

/// Runs the suite on the log `options` describe (created on first use).
pub async fn run(
    options: &LogOptions,
    backend: Backend,
    deliveries: u64,
) -> Result<WebhookReport, StoreError> {
    let docket = Docket::open_with(options, Duration::ZERO).await?;
    let _projecting = docket.projector.spawn();
    let _following = docket.integrations.spawn(&docket.log);
    let receiver = Receiver::start(Received::default())?;
    let received = receiver.received.clone();
    received.keep.store(true, Ordering::SeqCst);

    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let numbers: Vec<String> = (0..MATTERS)
        .map(|n| format!("WH-{}-{n}", &run_id[20..]))
        .collect();
    let context = CommandContext::new(Actor::parse("user:bench").map_err(|e| failed("actor", e))?);
    for number in &numbers {
        let open = OpenMatter {
            matter_number: number.clone(),
            title: "Webhook benchmark".into(),
            practice_area: "litigation".into(),
            responsible_attorney: "bench".into(),
            ..OpenMatter::default()
        };
        docket
            .service
            .open_matter(&context, &open)
            .await
            .map_err(|e| failed("open", e))?;
    }
    let (webhooks, _) = register_endpoint(&docket, options, &numbers, &receiver.url()).await?;

    eprintln!("docket bench: webhooks: adding {deliveries} notes");
    let started = Instant::now();
    let per_matter = deliveries.div_ceil(MATTERS as u64);
    let writers = numbers.iter().enumerate().map(|(index, number)| {
        let service = docket.service.clone();
        let context = context.clone();
        let number = number.clone();
        let count = per_matter.min(deliveries.saturating_sub(per_matter * index as u64));
        tokio::spawn(async move {
            for n in 0..count {
                let note = MatterCommand::AddNote(AddNote {
                    privileged: false,
                    subject: None,
                    body: format!("Benchmark note {n}: the client called about the invoice."),
                });
                service.change_matter(&context, &number, &note).await?;
            }
            Ok::<_, crate::service::ServiceError>(())
        })
    });
    for writer in futures::future::join_all(writers).await {
        writer
            .map_err(|e| failed("writer", e))?
            .map_err(|e| failed("append", e))?;
    }
    let appends = Measurement::throughput(deliveries, started.elapsed().as_secs_f64());
    let head = docket.log.head().await?.position;
    // Let the read models reach the notes, so the gate does not wait on them mid-run.
    let _ = docket
        .projector
        .wait_for(head, Duration::from_secs(120))
        .await;

    eprintln!("docket bench: webhooks: delivering");
    let started = Instant::now();
    let workers = webhooks.spawn();
    let deadline = started + Duration::from_secs(600);
    while received.count.load(Ordering::SeqCst) < deliveries {
        if Instant::now() > deadline {
            workers.abort();
            return Err(failed("the deliveries", "did not all arrive in 10 minutes"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    // The last outcomes are recorded just after their requests: give them a moment.
    let mut delivered = 0;
    for _ in 0..200 {
        delivered = webhooks
            .db()
            .count(DeliveryStatus::Delivered)
            .await
            .map_err(|e| failed("count", e))?;
        if u64::try_from(delivered).unwrap_or(0) >= deliveries {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    workers.abort();
    let measured = Measurement::throughput(deliveries, seconds);

    received.keep.store(false, Ordering::SeqCst);
    let bodies: Vec<web::Bytes> = received
        .bodies
        .lock()
        .map(|bodies| bodies.clone())
        .unwrap_or_default();
    let raw_posts = raw_posts(&receiver.url(), bodies).await?;
    receiver.stop().await;
    eprintln!("docket bench: webhooks: {delivered} deliveries recorded as delivered");
    Ok(WebhookReport {
        backend,
        concurrency: CONCURRENCY,
        appends,
        ratio: measured.per_second / raw_posts.per_second.max(1e-9),
        deliveries: measured,
        raw_posts,
    })
}

/// POSTs every body to `url`, [`CONCURRENCY`] at a time, with a plain client.
async fn raw_posts(url: &str, bodies: Vec<web::Bytes>) -> Result<Measurement, StoreError> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| failed("the baseline client", e))?;
    let count = bodies.len() as u64;
    let started = Instant::now();
    let results: Vec<bool> = futures::stream::iter(bodies)
        .map(|body| {
            let client = client.clone();
            async move {
                client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .is_ok_and(|response| response.status().is_success())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    if results.iter().any(|ok| !ok) {
        return Err(failed("the baseline", "a POST failed"));
    }
    Ok(Measurement::throughput(
        count,
        started.elapsed().as_secs_f64(),
    ))
}

pub fn to_table(report: &WebhookReport) -> String {
    format!(
        "\nwebhooks ({}), {} concurrent requests\n\
         \x20 notes added first       {:>10.0} events/s ({} events)\n\
         \x20 signed deliveries       {:>10.0} deliveries/s ({} in {:.2} s)\n\
         \x20 raw POSTs, same bodies  {:>10.0} requests/s (baseline)\n\
         \x20 deliveries / baseline   {:>10.3}\n",
        report.backend,
        report.concurrency,
        report.appends.per_second,
        report.appends.events,
        report.deliveries.per_second,
        report.deliveries.events,
        report.deliveries.seconds,
        report.raw_posts.per_second,
        report.ratio,
    )
}
