//! `docket bench --suite api`: the matter API under load, beside `/healthz` on the same server
//! in the same run (the baseline), over a store of many matters and many events, and what
//! authentication and access records cost.
//!
//! The store is seeded with domain events appended straight to the log (many writers, several
//! events per append), then the projections fold it from position 0 (the rate of a full
//! rebuild). A partner on the team of every seeded matter is then added, enrolled and given one
//! session per client ([`super::auth`]), and two in-process servers answer over the same data:
//! "on", the normal server, which authenticates every request's bearer token and makes its
//! access record durable before answering; and "off", which serves every request as the same
//! principal without authenticating it or recording it (the policy still decides). Matter detail
//! and a filtered matter list run at 1 and 64 concurrent clients against both, alternating
//! off, on, on, off so that drift in the machine hits both alike. Finally a matter with many
//! events is read as of random positions, by replay.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::auth::{self, BENCH_USER};
use super::load::{AREAS, Random, Sample, Server, Target, load};
use super::parts::{self, AuthParts};
use super::report::Measurement;
use crate::access::Principal;
use crate::access::chain::AccessChain;
use crate::access::index::AccessQuery;
use crate::api::graphql::persisted::PersistedQueries;
use crate::domain::DomainEvent;
use crate::domain::events::*;
use crate::domain::ids::{MatterNumber, contact_stream};
use crate::identity::Identity;
use crate::log::{Actor, ExpectedVersion, StreamId};
use crate::projection::{Projector, ReadDb};
use crate::server::{Components, http_server};
use crate::service::{AsOf, Service};
use crate::store::{AppendError, AppendRequest, EventLog, LogOptions, StoreError};
use crate::vault::Vault;

const ATTORNEYS: &[&str] = &["a.okafor", "j.lindqvist", "m.haddad", "s.ito", "r.mensah"];
const WRITERS: u64 = 32;
/// The matter read as of past positions.
pub const DEEP_MATTER: &str = "BENCH-DEEP";
/// The concurrencies measured.
const CLIENTS: [u64; 2] = [1, 64];
/// How many times each load runs against each server; each run takes an equal share of
/// `--seconds`, in the order off, on, on, off, ... (every pair reversing the one before).
pub const AUTH_ROUNDS: u64 = 2;
/// Seconds each part of the cost is timed alone.
const PART_SECONDS: u64 = 3;

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
    /// Who the GraphQL loads read as (on both servers).
    pub principal: String,
    /// Sessions opened for it: one per client of the widest load, client `i` using session
    /// `i` (every request of the "on" loads is authenticated by its own client's token).
    pub sessions: u64,
    /// Runs per load and server (see [`AUTH_ROUNDS`]).
    pub auth_rounds: u64,
    pub loads: Vec<Load>,
    /// Each GraphQL load with authentication and access records on against off.
    pub auth_cost: Vec<AuthCost>,
    /// The session lookup and the access record, each timed alone.
    pub auth_parts: AuthParts,
    pub as_of: Measurement,
    pub deep_matter_events: u64,
    pub errors: u64,
}

/// One load at one concurrency against one server.
#[derive(Debug, Serialize)]
pub struct Load {
    pub name: String,
    pub clients: u64,
    /// `on`: bearer authentication and a durable access record per request; `off`: served as
    /// the same principal, unauthenticated and unrecorded; none for `/healthz`.
    pub auth: Option<&'static str>,
    pub measurement: Measurement,
    /// Requests per second relative to `/healthz` at the same concurrency.
    pub ratio_to_healthz: Option<f64>,
    /// Responses that were not what was asked for (an error, a refusal, no matter).
    pub failed: u64,
    /// With auth on: the access records committed during the load and the commits that held
    /// them (group commit puts many records in one).
    pub access: Option<AccessCommits>,
    /// With auth on: the longest wait, after a run, for the access index to take in the
    /// records the run committed (the index is written behind the chain, off the request).
    pub index_settle_ms: Option<f64>,
}

/// Access records against the commits (one fsync each) that made them durable.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct AccessCommits {
    pub records: u64,
    pub commits: u64,
}

/// A GraphQL load with authentication and access records on, against the same load off.
#[derive(Debug, Serialize)]
pub struct AuthCost {
    pub name: String,
    pub clients: u64,
    pub off_per_second: f64,
    pub on_per_second: f64,
    /// `on_per_second / off_per_second`; the target is at least 0.70.
    pub ratio: f64,
    pub off_p99_ms: Option<f64>,
    pub on_p99_ms: Option<f64>,
}

/// The sizes of the run.
pub struct ApiPlan {
    pub matters: u64,
    pub events: u64,
    pub deep_events: u64,
    pub seconds: u64,
    /// Seal client data as Docket does (off only to measure what sealing costs).
    pub seal: bool,
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
    let seal_with = match plan.seal {
        true => Some(
            crate::vault::Vault::open_configured(log.store().clone(), &options.data_dir)
                .await
                .map_err(crate::app::vault_unavailable)?,
        ),
        false => None,
    };
    let deep_positions = seed(&log, seal_with, plan).await?;
    let events = log.head().await?.position;
    let seed = Measurement::throughput(events, started.elapsed().as_secs_f64());

    // Fold it into the read models from nothing.
    eprintln!("docket bench: projecting {events} events");
    let db = ReadDb::open(&options.data_dir, options.database_url.as_deref()).await?;
    let projector = Projector::open(
        db.clone(),
        log.store().clone(),
        crate::vault::Vault::open_configured(log.store().clone(), &options.data_dir)
            .await
            .map_err(crate::app::vault_unavailable)?,
    )
    .await?;
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

    // Sign the reader in, then serve the same data twice: with authentication and access
    // records ("on") and without ("off").
    let vault = crate::vault::Vault::open_configured(log.store().clone(), &options.data_dir)
        .await
        .map_err(crate::app::vault_unavailable)?;
    let service = Arc::new(Service::new(
        log.clone(),
        projector.clone(),
        vault.clone(),
        Duration::ZERO,
    ));
    let identity = Identity::open(log.clone(), options)
        .await
        .map_err(store_error)?;
    let access = Arc::new(AccessChain::open(options).await?);
    let checkpoints = crate::transparency::open(&log, None, Default::default()).await?;
    let integrations =
        crate::integrations::Integrations::open(&log, identity.clone(), projector.clone(), vault)
            .await?;
    eprintln!("docket bench: signing in {BENCH_USER}");
    let widest = CLIENTS.iter().copied().max().unwrap_or(1);
    let user = auth::sign_in(&identity, widest as usize).await?;
    let components = |unrecorded: Option<Principal>| Components {
        log: log.clone(),
        projector: projector.clone(),
        service: service.clone(),
        db: db.clone(),
        persisted: PersistedQueries::default(),
        identity: identity.clone(),
        access: access.clone(),
        checkpoints: checkpoints.clone(),
        monitoring: Default::default(),
        integrations: integrations.clone(),
        development: false,
        unrecorded_principal_for_benchmarks: unrecorded,
    };
    // Both receive the same bytes (the token included); only the server's work differs.
    let tokens: Arc<[_]> = user.tokens.into();
    let on = Server {
        address: free_address()?,
        tokens: tokens.clone(),
    };
    let off = Server {
        address: free_address()?,
        tokens,
    };
    let mut handles = Vec::new();
    for (server, unrecorded) in [(&on, None), (&off, Some(user.principal.clone()))] {
        let running =
            http_server(components(unrecorded), server.address, None).map_err(store_error)?;
        handles.push(running.handle());
        tokio::spawn(running);
    }

    let mut loads = Vec::new();
    let mut auth_cost = Vec::new();
    let whole = Duration::from_secs(plan.seconds.max(1));
    let share = whole / AUTH_ROUNDS as u32;
    for clients in CLIENTS {
        eprintln!("docket bench: healthz with {clients} clients");
        let healthz = load(&on, Target::Healthz, clients, plan.matters, whole).await?;
        let healthz_rate = healthz.latencies.len() as f64 / healthz.seconds.max(1e-9);
        loads.push(Load {
            name: Target::Healthz.name().to_owned(),
            clients,
            auth: None,
            failed: healthz.failed,
            measurement: measure(clients, healthz),
            ratio_to_healthz: None,
            access: None,
            index_settle_ms: None,
        });
        for target in [Target::MatterDetail, Target::MatterList] {
            let mut samples = [Sample::default(), Sample::default()];
            let mut commits = AccessCommits::default();
            let mut settle = Duration::ZERO;
            for round in 0..AUTH_ROUNDS * 2 {
                // off, on, on, off, off, on, ...
                let auth_on = (round % 4 == 1) || (round % 4 == 2);
                let server = if auth_on { &on } else { &off };
                eprintln!(
                    "docket bench: {} with {clients} clients, auth {}",
                    target.name(),
                    if auth_on { "on" } else { "off" }
                );
                let before = access.log().stats();
                let sample = load(server, target, clients, plan.matters, share).await?;
                if auth_on {
                    let after = access.log().stats();
                    commits.records += after.requests.saturating_sub(before.requests);
                    commits.commits += after.writes.saturating_sub(before.writes);
                    settle = settle.max(settle_index(&access).await);
                }
                samples[usize::from(auth_on)].merge(sample);
            }
            let [off_sample, on_sample] = samples;
            let off_load = graphql_load(target, clients, "off", off_sample, healthz_rate);
            let on_load = graphql_load(target, clients, "on", on_sample, healthz_rate);
            let on_load = Load {
                access: Some(commits),
                index_settle_ms: Some(settle.as_secs_f64() * 1000.0),
                ..on_load
            };
            auth_cost.push(AuthCost {
                name: target.name().to_owned(),
                clients,
                off_per_second: off_load.measurement.per_second,
                on_per_second: on_load.measurement.per_second,
                ratio: on_load.measurement.per_second / off_load.measurement.per_second.max(1e-9),
                off_p99_ms: off_load.measurement.p99_ms,
                on_p99_ms: on_load.measurement.p99_ms,
            });
            loads.push(off_load);
            loads.push(on_load);
        }
    }
    let errors = loads.iter().map(|load| load.failed).sum();
    eprintln!("docket bench: session lookup and access records alone");
    let token = on
        .tokens
        .first()
        .map(|token| token.as_str())
        .unwrap_or_default();
    let auth_parts = parts::measure(
        &identity,
        &access,
        &user.principal,
        token,
        Duration::from_secs(PART_SECONDS),
    )
    .await?;

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
    for handle in handles {
        handle.stop(true).await;
    }

    Ok(ApiReport {
        backend: log.store().backend().to_string(),
        matters: plan.matters,
        events,
        seed,
        projection_catch_up,
        timeline_rebuild,
        principal: user.principal.actor.as_str().to_owned(),
        sessions: widest,
        auth_rounds: AUTH_ROUNDS,
        loads,
        auth_cost,
        auth_parts,
        as_of,
        deep_matter_events: plan.deep_events,
        errors,
    })
}

fn measure(clients: u64, sample: Sample) -> Measurement {
    Measurement::with_latencies(clients, sample.latencies, sample.seconds)
}

fn graphql_load(
    target: Target,
    clients: u64,
    auth: &'static str,
    sample: Sample,
    healthz_rate: f64,
) -> Load {
    let failed = sample.failed;
    let measurement = measure(clients, sample);
    Load {
        name: target.name().to_owned(),
        clients,
        auth: Some(auth),
        ratio_to_healthz: Some(measurement.per_second / healthz_rate.max(1e-9)),
        measurement,
        failed,
        access: None,
        index_settle_ms: None,
    }
}

/// Waits until the access index holds every record committed so far (so that indexing left
/// over from one run does not slow the next), returning how long that took.
async fn settle_index(access: &AccessChain) -> Duration {
    let started = Instant::now();
    // The query waits for the index first; its answer does not matter.
    let _ = access.query(&AccessQuery::latest(1)).await;
    started.elapsed()
}

/// Seeds matters (each with a client, an opposing party, documents, deadlines and tasks), then
/// notes and time entries up to the event count, and one matter with many events. Returns the
/// first and last positions of that matter's events.
pub(super) async fn seed(
    log: &Arc<EventLog>,
    vault: Option<Arc<Vault>>,
    plan: &ApiPlan,
) -> Result<(u64, u64), StoreError> {
    let actor = Actor::parse("user:bench").map_err(store_error)?;
    let per_matter = 14;
    let filler_total = plan
        .events
        .saturating_sub(plan.matters * per_matter + plan.deep_events);
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let log = log.clone();
        let vault = vault.clone();
        let actor = actor.clone();
        let matters = plan.matters;
        tasks.push(tokio::spawn(async move {
            let mine: Vec<u64> = (writer..matters).step_by(WRITERS as usize).collect();
            for &index in &mine {
                seed_matter(&log, vault.as_deref(), &actor, index).await?;
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
                    vault.as_deref(),
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
        vault.as_deref(),
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
        last = append(log, vault.as_deref(), &actor, stream.clone(), events).await?;
        left -= batch;
    }
    for task in tasks {
        task.await.map_err(store_error)??;
    }
    Ok((opened, last))
}

async fn seed_matter(
    log: &EventLog,
    vault: Option<&Vault>,
    actor: &Actor,
    index: u64,
) -> Result<(), StoreError> {
    let client = person(&format!("Client{index} Example"), index);
    let opposing = person(&format!("Opponent{index} Holdings"), index + 1_000_000);
    let ids = [contact_id(&client), contact_id(&opposing)];
    for contact in [client, opposing] {
        let stream = contact_stream(&contact_id(&contact)).map_err(store_error)?;
        append(log, vault, actor, stream, vec![contact]).await?;
    }
    let number = format!("B{index:06}");
    let attorney = ATTORNEYS[(index % ATTORNEYS.len() as u64) as usize];
    let mut events = vec![
        opened_event(&number, index),
        DomainEvent::TeamMemberAdded(TeamMemberAdded {
            user_id: attorney.to_owned(),
            capacity: TeamCapacity::ResponsibleAttorney,
        }),
        // The user the loads read as (signed in after seeding).
        DomainEvent::TeamMemberAdded(TeamMemberAdded {
            user_id: BENCH_USER.to_owned(),
            capacity: TeamCapacity::Attorney,
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
    append(log, vault, actor, matter_stream(&number)?, events)
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
    vault: Option<&Vault>,
    actor: &Actor,
    stream: StreamId,
    events: Vec<DomainEvent>,
) -> Result<u64, StoreError> {
    let mut drafts = events
        .iter()
        .map(DomainEvent::to_draft)
        .collect::<Result<Vec<_>, _>>()
        .map_err(store_error)?;
    let pending = match vault {
        Some(vault) => vault
            .seal_drafts(stream.as_str(), &mut drafts, false)
            .await
            .map_err(crate::app::vault_unavailable)?,
        None => None,
    };
    let mut request = AppendRequest::new(stream, actor.clone(), drafts);
    request.expected_version = ExpectedVersion::Any;
    request.data_keys = pending.iter().map(|key| key.stored.clone()).collect();
    match log.append(request).await {
        Ok(outcome) => {
            if let (Some(vault), Some(key)) = (vault, pending) {
                vault.adopt(key);
            }
            Ok(outcome.last_position)
        }
        Err(AppendError::Store(error)) => Err(error),
        Err(other) => Err(store_error(other)),
    }
}

pub(super) fn free_address() -> Result<SocketAddr, StoreError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(store_error)?;
    listener.local_addr().map_err(store_error)
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
        "GraphQL loads read as {} ({} sessions, one per client); auth off and on alternate, \
         {} runs each",
        report.principal, report.sessions, report.auth_rounds
    );
    let _ = writeln!(
        out,
        "{:<22} {:>7} {:>4} {:>10} {:>8} {:>8} {:>10} {:>6} {:>16}",
        "load",
        "clients",
        "auth",
        "req/s",
        "p50 ms",
        "p99 ms",
        "vs healthz",
        "failed",
        "records/commit"
    );
    for load in &report.loads {
        let per_commit = load.access.map_or("-".to_owned(), |access| {
            format!(
                "{:.1}",
                access.records as f64 / (access.commits as f64).max(1.0)
            )
        });
        let _ = writeln!(
            out,
            "{:<22} {:>7} {:>4} {:>10.0} {:>8} {:>8} {:>10} {:>6} {:>16}",
            load.name,
            load.clients,
            load.auth.unwrap_or("-"),
            load.measurement.per_second,
            ms(load.measurement.p50_ms),
            ms(load.measurement.p99_ms),
            load.ratio_to_healthz
                .map_or("-".to_owned(), |r| format!("{r:.2}x")),
            load.failed,
            per_commit
        );
    }
    let _ = writeln!(out, "authentication and access records, on against off:");
    for cost in &report.auth_cost {
        let _ = writeln!(
            out,
            "  {:<22} {:>3} clients: off {:.0} req/s (p99 {} ms), on {:.0} req/s (p99 {} ms): \
             {:.0}% {}",
            cost.name,
            cost.clients,
            cost.off_per_second,
            ms(cost.off_p99_ms),
            cost.on_per_second,
            ms(cost.on_p99_ms),
            cost.ratio * 100.0,
            if cost.ratio >= 0.70 {
                "(>= 70%)"
            } else {
                "(below 70%)"
            }
        );
    }
    let parts = &report.auth_parts;
    let _ = writeln!(
        out,
        "alone: session lookup {:.0}/s (p50 {} ms, p99 {} ms); access record, 1 writer {:.0}/s \
         (p50 {} ms, p99 {} ms), 64 writers {:.0}/s (p50 {} ms, p99 {} ms, {:.1} per commit)",
        parts.session_lookup.per_second,
        ms(parts.session_lookup.p50_ms),
        ms(parts.session_lookup.p99_ms),
        parts.access_record_1.per_second,
        ms(parts.access_record_1.p50_ms),
        ms(parts.access_record_1.p99_ms),
        parts.access_record_64.per_second,
        ms(parts.access_record_64.p50_ms),
        ms(parts.access_record_64.p99_ms),
        parts.access_record_64.events as f64 / (parts.access_record_64_commits as f64).max(1.0)
    );
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
