//! `docket bench --suite api`: the matter API under load, beside `/healthz` on the same server
//! in the same run (the baseline), over a store of many matters and many events.
//!
//! The store is seeded with domain events appended straight to the log (many writers, several
//! events per append), then the projections fold it from position 0 (the rate of a full
//! rebuild), then an in-process server answers a matter-detail query and a filtered matter list
//! at 1 and 64 concurrent clients. Finally a matter with many events is read as of random
//! positions, by replay.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::http::Connection;
use super::report::Measurement;
use crate::api::graphql::persisted::PersistedQueries;
use crate::domain::DomainEvent;
use crate::domain::events::*;
use crate::domain::ids::{MatterNumber, contact_stream};
use crate::log::{Actor, ExpectedVersion, StreamId};
use crate::projection::{Projector, ReadDb};
use crate::server::{Components, http_server};
use crate::service::{AsOf, Service};
use crate::store::{AppendError, AppendRequest, EventLog, LogOptions, StoreError};

const AREAS: &[&str] = &[
    "litigation",
    "employment",
    "real_estate",
    "corporate",
    "family",
    "ip",
];
const ATTORNEYS: &[&str] = &["a.okafor", "j.lindqvist", "m.haddad", "s.ito", "r.mensah"];
const WRITERS: u64 = 32;
/// The matter read as of past positions.
pub const DEEP_MATTER: &str = "BENCH-DEEP";

/// What the API benchmark measured.
#[derive(Debug, Serialize)]
pub struct ApiReport {
    pub backend: String,
    pub matters: u64,
    pub events: u64,
    pub seed: Measurement,
    /// All projections folding the whole log from position 0.
    pub projection_catch_up: Measurement,
    /// One rebuild of the `timeline` projection (it reads every matter event).
    pub timeline_rebuild: Measurement,
    pub loads: Vec<Load>,
    pub as_of: Measurement,
    pub deep_matter_events: u64,
    pub errors: u64,
}

#[derive(Debug, Serialize)]
pub struct Load {
    pub name: String,
    pub clients: u64,
    pub measurement: Measurement,
    /// Requests per second relative to `/healthz` at the same concurrency.
    pub ratio_to_healthz: Option<f64>,
}

/// The sizes of the run.
pub struct ApiPlan {
    pub matters: u64,
    pub events: u64,
    pub deep_events: u64,
    pub seconds: u64,
}

fn store_error(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Database {
        detail: detail.to_string(),
    }
}

pub async fn run(options: &LogOptions, plan: &ApiPlan) -> Result<ApiReport, StoreError> {
    let log = Arc::new(EventLog::open(options).await?);
    if log.head().await?.position > 1 {
        return Err(store_error(
            "the API benchmark needs an empty data directory (it seeds its own store)",
        ));
    }

    // Seed the store.
    eprintln!(
        "docket bench: seeding {} matters, {} events",
        plan.matters, plan.events
    );
    let started = Instant::now();
    let deep_positions = seed(&log, plan).await?;
    let events = log.head().await?.position;
    let seed = Measurement::throughput(events, started.elapsed().as_secs_f64());

    // Fold it into the read models from nothing.
    eprintln!("docket bench: projecting {events} events");
    let db = ReadDb::open(&options.data_dir, options.database_url.as_deref()).await?;
    let projector = Projector::open(db.clone(), log.store().clone()).await?;
    let started = Instant::now();
    projector.catch_up().await?;
    let projection_catch_up = Measurement::throughput(events, started.elapsed().as_secs_f64());
    let timeline = projector
        .projections()
        .iter()
        .find(|projection| projection.name() == "timeline")
        .cloned()
        .ok_or_else(|| store_error("no timeline projection"))?;
    let rebuilt = projector
        .rebuild(timeline.as_ref())
        .await
        .map_err(store_error)?;
    let timeline_rebuild = Measurement::throughput(rebuilt.events, rebuilt.seconds);

    // Serve it.
    let service = Arc::new(Service::new(log.clone(), projector.clone(), Duration::ZERO));
    let identity = crate::identity::Identity::open(log.clone(), options)
        .await
        .map_err(store_error)?;
    let access = Arc::new(crate::access::chain::AccessChain::open(options).await?);
    let address = free_address()?;
    let server = http_server(
        Components {
            log: log.clone(),
            projector: projector.clone(),
            service: service.clone(),
            db,
            persisted: PersistedQueries::default(),
            identity,
            access,
            development: false,
        },
        address,
        None,
    )
    .map_err(store_error)?;
    let handle = server.handle();
    tokio::spawn(server);

    let mut loads = Vec::new();
    let mut errors = 0;
    for clients in [1, 64] {
        let mut healthz_rate = None;
        for target in [Target::Healthz, Target::MatterDetail, Target::MatterList] {
            eprintln!("docket bench: {} with {clients} clients", target.name());
            let (measurement, failed) =
                load(address, target, clients, plan.matters, plan.seconds).await?;
            errors += failed;
            let ratio = match target {
                Target::Healthz => {
                    healthz_rate = Some(measurement.per_second);
                    None
                }
                _ => healthz_rate.map(|rate| measurement.per_second / rate.max(1e-9)),
            };
            loads.push(Load {
                name: target.name().to_owned(),
                clients,
                measurement,
                ratio_to_healthz: ratio,
            });
        }
    }

    // Read the deep matter as of random positions, by replay.
    let mut latencies = Vec::new();
    let (first, last) = deep_positions;
    let mut random = Random(0x9e37_79b9);
    let started = Instant::now();
    for _ in 0..30 {
        let position = first + random.next() % (last - first + 1).max(1);
        let began = Instant::now();
        service
            .matter_as_of(DEEP_MATTER, AsOf::Position(position))
            .await
            .map_err(store_error)?
            .ok_or_else(|| store_error("the deep matter is missing"))?;
        latencies.push(began.elapsed());
    }
    let as_of = Measurement::with_latencies(1, latencies, started.elapsed().as_secs_f64());
    // Stopped last: with PostgreSQL, pooled connections opened on the server's worker threads
    // stop working when those threads do.
    handle.stop(true).await;

    Ok(ApiReport {
        backend: log.store().backend().to_string(),
        matters: plan.matters,
        events,
        seed,
        projection_catch_up,
        timeline_rebuild,
        loads,
        as_of,
        deep_matter_events: plan.deep_events,
        errors,
    })
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Healthz,
    MatterDetail,
    MatterList,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Healthz => "healthz",
            Target::MatterDetail => "matter_detail",
            Target::MatterList => "matter_list_filtered",
        }
    }
}

const DETAIL: &str = "query($n: String!) { matter(number: $n) { number title status \
    responsibleAttorney parties { role contact { displayName } } \
    documents { title latestVersion } calendarEntries { kind title startsAt rule } } }";
const LIST: &str = "query($area: String!) { matters(first: 20, filter: {status: [OPEN], \
    practiceArea: $area}, orderBy: {field: OPENED_ON, direction: DESC}) { edges { node { number \
    title responsibleAttorney openedOn } } pageInfo { hasNextPage endCursor } } }";

/// `clients` connections send requests back to back for `seconds`; returns the latencies and
/// the number of failed requests.
async fn load(
    address: SocketAddr,
    target: Target,
    clients: u64,
    matters: u64,
    seconds: u64,
) -> Result<(Measurement, u64), StoreError> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(address).await?;
            let mut random = Random(0x2545_f491 ^ (client + 1));
            let mut latencies = Vec::new();
            let mut failed = 0u64;
            while Instant::now() < deadline {
                let began = Instant::now();
                let reply = match target {
                    Target::Healthz => connection.get("/healthz").await?,
                    Target::MatterDetail => {
                        let number = format!("B{:06}", random.next() % matters.max(1));
                        let body = json!({"query": DETAIL, "variables": {"n": number}});
                        connection
                            .post_json("/graphql", body.to_string().as_bytes())
                            .await?
                    }
                    Target::MatterList => {
                        let area = AREAS[(random.next() % AREAS.len() as u64) as usize];
                        let body = json!({"query": LIST, "variables": {"area": area}});
                        connection
                            .post_json("/graphql", body.to_string().as_bytes())
                            .await?
                    }
                };
                let ok = reply.status == 200
                    && (matches!(target, Target::Healthz) || !contains(&reply.body, b"\"errors\""));
                if ok {
                    latencies.push(began.elapsed());
                } else {
                    failed += 1;
                }
            }
            Ok::<_, std::io::Error>((latencies, failed))
        }));
    }
    let mut latencies = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let (mine, mine_failed) = task.await.map_err(store_error)?.map_err(store_error)?;
        latencies.extend(mine);
        failed += mine_failed;
    }
    let measurement =
        Measurement::with_latencies(clients, latencies, started.elapsed().as_secs_f64());
    Ok((measurement, failed))
}

/// Seeds matters (each with a client, an opposing party, documents, deadlines and tasks), then
/// notes and time entries up to the event count, and one matter with many events. Returns the
/// first and last positions of that matter's events.
async fn seed(log: &Arc<EventLog>, plan: &ApiPlan) -> Result<(u64, u64), StoreError> {
    let actor = Actor::parse("user:bench").map_err(store_error)?;
    let per_matter = 14;
    let filler_total = plan
        .events
        .saturating_sub(plan.matters * per_matter + plan.deep_events);
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let log = log.clone();
        let actor = actor.clone();
        let matters = plan.matters;
        tasks.push(tokio::spawn(async move {
            let mine: Vec<u64> = (writer..matters).step_by(WRITERS as usize).collect();
            for &index in &mine {
                seed_matter(&log, &actor, index).await?;
            }
            // Filler: batches of notes and time entries, round robin over this writer's matters.
            let mut left = filler_total / WRITERS;
            let mut turn = 0;
            while left > 0 && !mine.is_empty() {
                let index = mine[turn % mine.len()];
                let batch = left.min(20);
                let events = (0..batch).map(|k| filler_event(index, k)).collect();
                append(
                    &log,
                    &actor,
                    matter_stream(&format!("B{index:06}"))?,
                    events,
                )
                .await?;
                left -= batch;
                turn += 1;
            }
            Ok::<_, StoreError>(())
        }));
    }

    // The deep matter, appended meanwhile in batches of 100.
    let stream = matter_stream(DEEP_MATTER)?;
    let opened = append(
        &log.clone(),
        &actor,
        stream.clone(),
        vec![opened_event(DEEP_MATTER, 0)],
    )
    .await?;
    let mut last = opened;
    let mut left = plan.deep_events.saturating_sub(1);
    while left > 0 {
        let batch = left.min(100);
        let events = (0..batch).map(|k| filler_event(left, k)).collect();
        last = append(log, &actor, stream.clone(), events).await?;
        left -= batch;
    }
    for task in tasks {
        task.await.map_err(store_error)??;
    }
    Ok((opened, last))
}

async fn seed_matter(log: &EventLog, actor: &Actor, index: u64) -> Result<(), StoreError> {
    let client = person(&format!("Client{index} Example"), index);
    let opposing = person(&format!("Opponent{index} Holdings"), index + 1_000_000);
    let ids = [contact_id(&client), contact_id(&opposing)];
    for contact in [client, opposing] {
        let stream = contact_stream(&contact_id(&contact)).map_err(store_error)?;
        append(log, actor, stream, vec![contact]).await?;
    }
    let number = format!("B{index:06}");
    let attorney = ATTORNEYS[(index % ATTORNEYS.len() as u64) as usize];
    let mut events = vec![
        opened_event(&number, index),
        DomainEvent::TeamMemberAdded(TeamMemberAdded {
            user_id: attorney.to_owned(),
            capacity: TeamCapacity::ResponsibleAttorney,
        }),
    ];
    for (contact, role) in ids
        .iter()
        .zip([PartyRole::Client, PartyRole::OpposingParty])
    {
        events.push(DomainEvent::PartyAdded(PartyAdded {
            party_id: uuid::Uuid::now_v7().to_string(),
            contact_id: contact.clone(),
            role,
        }));
    }
    for (k, title) in ["Claim form", "Witness statement"].iter().enumerate() {
        events.push(DomainEvent::DocumentAdded(DocumentAdded {
            document_id: uuid::Uuid::now_v7().to_string(),
            document_type: "pleading".to_owned(),
            content: DocumentContent {
                version: 1,
                content_hash: blake3::hash(format!("{index}-{k}").as_bytes())
                    .to_hex()
                    .to_string(),
                size: 48_000,
                media_type: "application/pdf".to_owned(),
                uploaded_by: attorney.to_owned(),
            },
            private: DocumentPrivate {
                title: Some((*title).to_owned()),
                description: None,
                filename: Some(format!("{number}-{k}.pdf")),
            },
        }));
    }
    for (k, kind) in [
        CalendarKind::Hearing,
        CalendarKind::FilingDeadline,
        CalendarKind::Deadline,
    ]
    .into_iter()
    .enumerate()
    {
        events.push(DomainEvent::CalendarEntryScheduled(
            CalendarEntryScheduled {
                entry_id: uuid::Uuid::now_v7().to_string(),
                kind,
                title: format!("Listing {k}"),
                starts_at: format!("2027-{:02}-{:02}", 1 + index % 12, 1 + k),
                ends_at: None,
                all_day: true,
                rule: Some("CPR 3.1".to_owned()),
                location: None,
            },
        ));
    }
    for title in ["Review disclosure", "Prepare bundle"] {
        events.push(DomainEvent::TaskCreated(TaskCreated {
            task_id: uuid::Uuid::now_v7().to_string(),
            title: title.to_owned(),
            assignee: Some(attorney.to_owned()),
            due_on: Some("2027-03-01".to_owned()),
        }));
    }
    append(log, actor, matter_stream(&number)?, events)
        .await
        .map(|_| ())
}

fn opened_event(number: &str, index: u64) -> DomainEvent {
    DomainEvent::MatterOpened(MatterOpened {
        matter_number: number.to_owned(),
        title: format!("Client{index} Example v. Opponent{index} Holdings"),
        practice_area: AREAS[(index % AREAS.len() as u64) as usize].to_owned(),
        status: if index % 5 == 4 {
            MatterStatus::Intake
        } else {
            MatterStatus::Open
        },
        responsible_attorney: ATTORNEYS[(index % ATTORNEYS.len() as u64) as usize].to_owned(),
        originating_attorney: None,
        opened_on: format!(
            "20{:02}-{:02}-{:02}",
            20 + index % 7,
            1 + index % 12,
            1 + index % 28
        ),
        statute_of_limitations_on: None,
        private: MatterPrivate {
            description: Some("Seeded by docket bench".to_owned()),
        },
    })
}

fn filler_event(seed: u64, k: u64) -> DomainEvent {
    if k.is_multiple_of(2) {
        DomainEvent::NoteAdded(NoteAdded {
            note_id: uuid::Uuid::now_v7().to_string(),
            privileged: k.is_multiple_of(4),
            private: NotePrivate {
                subject: None,
                body: format!("Attendance note {seed}-{k}: call with the client about disclosure."),
            },
        })
    } else {
        DomainEvent::TimeRecorded(TimeRecorded {
            time_entry_id: uuid::Uuid::now_v7().to_string(),
            user_id: "a.okafor".to_owned(),
            worked_on: "2026-11-02".to_owned(),
            minutes: 6 + (k % 60) as u32,
            billable: true,
            private: TimePrivate {
                description: "Drafting".to_owned(),
            },
        })
    }
}

fn person(name: &str, index: u64) -> DomainEvent {
    DomainEvent::ContactCreated(ContactCreated {
        contact_id: uuid::Uuid::now_v7().to_string(),
        kind: ContactKind::Person,
        private: ContactDetails {
            display_name: name.to_owned(),
            emails: vec![LabelledValue {
                value: format!("person{index}@example.org"),
                label: None,
            }],
            ..ContactDetails::default()
        },
    })
}

fn contact_id(event: &DomainEvent) -> String {
    match event {
        DomainEvent::ContactCreated(created) => created.contact_id.clone(),
        _ => String::new(),
    }
}

fn matter_stream(number: &str) -> Result<StreamId, StoreError> {
    Ok(MatterNumber::parse(number).map_err(store_error)?.stream())
}

/// Appends domain events to one stream; returns the last position.
async fn append(
    log: &EventLog,
    actor: &Actor,
    stream: StreamId,
    events: Vec<DomainEvent>,
) -> Result<u64, StoreError> {
    let drafts = events
        .iter()
        .map(DomainEvent::to_draft)
        .collect::<Result<Vec<_>, _>>()
        .map_err(store_error)?;
    let mut request = AppendRequest::new(stream, actor.clone(), drafts);
    request.expected_version = ExpectedVersion::Any;
    match log.append(request).await {
        Ok(outcome) => Ok(outcome.last_position),
        Err(AppendError::Store(error)) => Err(error),
        Err(other) => Err(store_error(other)),
    }
}

fn free_address() -> Result<SocketAddr, StoreError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(store_error)?;
    listener.local_addr().map_err(store_error)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// xorshift64: enough to spread requests over matters.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The report as a table.
pub fn to_table(report: &ApiReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let ms = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.2}"));
    let _ = writeln!(
        out,
        "API benchmark on {}: {} matters, {} events (seeded at {:.0} events/s)",
        report.backend, report.matters, report.events, report.seed.per_second
    );
    let _ = writeln!(
        out,
        "projections from 0: {:.0} events/s; timeline rebuild: {:.0} events/s",
        report.projection_catch_up.per_second, report.timeline_rebuild.per_second
    );
    let _ = writeln!(
        out,
        "{:<22} {:>7} {:>10} {:>8} {:>8} {:>9}",
        "load", "clients", "req/s", "p50 ms", "p99 ms", "vs healthz"
    );
    for load in &report.loads {
        let _ = writeln!(
            out,
            "{:<22} {:>7} {:>10.0} {:>8} {:>8} {:>9}",
            load.name,
            load.clients,
            load.measurement.per_second,
            ms(load.measurement.p50_ms),
            ms(load.measurement.p99_ms),
            load.ratio_to_healthz
                .map_or("-".to_owned(), |r| format!("{r:.2}x"))
        );
    }
    let _ = writeln!(
        out,
        "matter with {} events as of a random position: p50 {} ms, p99 {} ms",
        report.deep_matter_events,
        ms(report.as_of.p50_ms),
        ms(report.as_of.p99_ms)
    );
    let _ = writeln!(out, "failed requests: {}", report.errors);
    out
}
