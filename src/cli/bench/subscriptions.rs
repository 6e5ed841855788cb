//! Subscriptions under load: many subscribers to the log while notes are appended at a steady
//! rate, measuring each delivery's lag (receipt time minus the event's `recorded_at`) and
//! checking that every subscriber received every event, in order.
//!
//! Two runs in one process, one after the other: the baseline is the same number of followers
//! reading the feed directly (the fan-out alone); then GraphQL subscriptions, each event
//! authorised by the gate for its subscriber, rendered once per (document, admission) and framed
//! as the `next` message a WebSocket connection sends (the socket itself is left out).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::Request;
use futures::StreamExt;
use serde::Serialize;

use super::auth::{BENCH_USER, sign_in};
use crate::api::graphql::caller::Caller;
use crate::api::graphql::subscription::shared::{self, Renders, Started};
use crate::api::graphql::websocket::next_message;
use crate::app::Docket;
use crate::domain::commands::{AddNote, MatterCommand, OpenMatter};
use crate::log::Actor;
use crate::service::CommandContext;
use crate::store::{Backend, LogOptions, StoreError};

/// Matters the notes are spread over, one writer each (appends to one matter are sequential);
/// the bench user is on every team.
const MATTERS: u64 = 50;

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct SubscriptionPlan {
    pub subscribers: usize,
    /// Events appended per second.
    pub rate: u64,
    pub seconds: u64,
}

/// One run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Deliveries {
    pub subscribers: usize,
    pub appended: u64,
    pub append_seconds: f64,
    pub appended_per_second: f64,
    pub delivered: u64,
    /// Deliveries owed and not received (0 when every subscriber got every event).
    pub missing: u64,
    /// Deliveries out of order or repeated (must be 0).
    pub disordered: u64,
    pub lag_p50_ms: f64,
    pub lag_p99_ms: f64,
    pub lag_max_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionReport {
    pub backend: Backend,
    pub target_rate: u64,
    pub feed: Deliveries,
    pub graphql: Deliveries,
    /// GraphQL p99 lag over the feed's p99 lag.
    pub p99_ratio: f64,
}

fn store_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Database {
        detail: error.to_string(),
    }
}

/// Now, in microseconds since the Unix epoch: what a subscriber notes when an event arrives.
/// Reading the clock is all a delivery costs the measurement; the lag is worked out after the
/// run ([`recorded_micros`]), so that parsing a million timestamps a second does not take the cores
/// the deliveries need.
fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

/// Each position's `recorded_at` (RFC 3339) as microseconds since the Unix epoch, read from
/// the log once per event.
async fn recorded_micros(
    docket: &Docket,
    from: u64,
    through: u64,
) -> Result<std::collections::HashMap<u64, u64>, StoreError> {
    let mut recorded = std::collections::HashMap::new();
    let mut next = from;
    while next <= through {
        let page = docket.log.store().read_page(next, 1_000).await?;
        let Some(last) = page.last().map(|event| event.position) else {
            break;
        };
        for event in page {
            if let Ok(at) = chrono::DateTime::parse_from_rfc3339(&event.recorded_at) {
                let micros = u64::try_from(at.timestamp_micros()).unwrap_or(0);
                recorded.insert(event.position, micros);
            }
        }
        next = last + 1;
    }
    Ok(recorded)
}

/// Lag of an event recorded at `recorded_at` (RFC 3339), received now, in microseconds.
pub(super) fn lag_micros(recorded_at: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(recorded_at)
        .map(|at| (chrono::Utc::now() - at.with_timezone(&chrono::Utc)).num_microseconds())
        .ok()
        .flatten()
        .map_or(0, |micros| micros.max(0) as u64)
}

pub async fn run(
    options: &LogOptions,
    backend: Backend,
    plan: SubscriptionPlan,
) -> Result<SubscriptionReport, StoreError> {
    let docket = Docket::open_with(options, Duration::ZERO).await?;
    let _projecting = docket.projector.spawn();
    let _following = docket.integrations.spawn(&docket.log);
    let user = sign_in(&docket.identity, 1).await?;
    let context =
        CommandContext::new(Actor::parse(&format!("user:{BENCH_USER}")).map_err(store_error)?);
    let round = uuid::Uuid::now_v7().simple().to_string();
    let numbers: Vec<String> = (0..MATTERS)
        .map(|m| format!("SUB-{}-{m}", &round[20..]))
        .collect();
    for number in &numbers {
        let open = OpenMatter {
            matter_number: number.clone(),
            title: format!("Subscription bench {number}"),
            description: None,
            practice_area: "litigation".into(),
            responsible_attorney: BENCH_USER.into(),
            originating_attorney: None,
            opened_on: None,
            statute_of_limitations_on: None,
            intake: false,
        };
        docket
            .service
            .open_matter(&context, &open)
            .await
            .map_err(store_error)?;
    }
    docket
        .projector
        .wait_for(docket.log.head().await?.position, Duration::from_secs(60))
        .await;

    eprintln!(
        "docket bench: {} feed followers, {} events/s for {} s",
        plan.subscribers, plan.rate, plan.seconds
    );
    let feed = measure(&docket, &context, &numbers, plan, |from| {
        let follower = docket.integrations.feed.subscribe(from);
        Box::pin(futures::stream::unfold(
            follower,
            |mut follower| async move {
                let event = follower.next().await.ok()?;
                Some(((event.position, now_micros()), follower))
            },
        ))
    })
    .await?;
    eprintln!("docket bench: {} GraphQL subscriptions", plan.subscribers);
    let schema = crate::api::graphql::build(
        docket.service.clone(),
        docket.projector.db().clone(),
        docket.identity.clone(),
        docket.checkpoints.clone(),
        docket.integrations.clone(),
    );
    // As the WebSocket endpoint serves them: each event decided per subscriber, rendered once
    // per (document, admission), and framed as a `next` message for each connection.
    let renders = Arc::new(Renders::default());
    let graphql = measure(&docket, &context, &numbers, plan, |from| {
        let caller = Arc::new(Caller::new(
            Some(user.principal.clone()),
            docket.identity.directory(),
            uuid::Uuid::now_v7().to_string(),
            None,
            docket.access.clone(),
        ));
        let query = format!(
            "subscription {{ events(from: {from}) {{ position eventType recordedAt hash signature data }} }}"
        );
        let (schema, renders) = (schema.clone(), renders.clone());
        Box::pin(
            futures::stream::once(async move {
                shared::start(&schema, &renders, caller, Request::new(query)).await
            })
            .flat_map(|started| match started {
                Started::Shared(frames) => frames
                    .filter_map(|frame| {
                        let message = next_message("1", &frame.json);
                        let received = match frame.event {
                            Some(event) => Some((event.position, now_micros())),
                            None => {
                                report_end(&message, None);
                                None
                            }
                        };
                        futures::future::ready(received)
                    })
                    .boxed(),
                Started::General(responses) => responses
                    .filter_map(|response| {
                        if let Some(error) = response.errors.first() {
                            report_end(&error.message, error.extensions.as_ref());
                        }
                        futures::future::ready(None)
                    })
                    .boxed(),
            }),
        )
    })
    .await?;
    let p99_ratio = graphql.lag_p99_ms / feed.lag_p99_ms.max(1e-6);
    Ok(SubscriptionReport {
        backend,
        target_rate: plan.rate,
        feed,
        graphql,
        p99_ratio,
    })
}

/// Ends reported so far (only the first few are printed).
static ENDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Prints why a subscription ended, for the first few that do.
fn report_end(message: &str, extensions: Option<&async_graphql::ErrorExtensionValues>) {
    if ENDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 5 {
        let code = extensions
            .and_then(|e| e.get("code"))
            .map(|code| code.to_string())
            .unwrap_or_default();
        eprintln!("docket bench: a subscription ended: {code} {message}");
    }
}

/// What a subscriber receives: (position, when it arrived in microseconds since the Unix epoch)
/// per event.
type Received = std::pin::Pin<Box<dyn futures::Stream<Item = (u64, u64)> + Send>>;

/// Starts `plan.subscribers` subscribers (made by `subscribe` from the next position), appends
/// `rate * seconds` notes at the plan's rate, and waits for every subscriber to have them.
async fn measure<S>(
    docket: &Docket,
    context: &CommandContext,
    numbers: &[String],
    plan: SubscriptionPlan,
    subscribe: S,
) -> Result<Deliveries, StoreError>
where
    S: Fn(u64) -> Received,
{
    let from = docket.log.head().await?.position + 1;
    let total = plan.rate * plan.seconds;
    // Warm-up: one note per matter, received by every subscriber before the clock starts, so
    // that the first delivery of each matter (which waits for its access record) is not timed.
    let warm_up = numbers.len() as u64;
    let warmed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut subscribers = Vec::with_capacity(plan.subscribers);
    for _ in 0..plan.subscribers {
        let stream = subscribe(from);
        let warmed = warmed.clone();
        subscribers.push(tokio::spawn(async move {
            let mut arrivals = Vec::with_capacity(total as usize);
            let (mut last, mut disordered, mut seen) = (0u64, 0u64, 0u64);
            // One timer for the whole run, not one per delivery.
            let deadline = Box::pin(tokio::time::sleep(Duration::from_secs(plan.seconds + 120)));
            let mut stream = stream.take_until(deadline);
            while (arrivals.len() as u64) < total {
                let Some((position, arrived)) = stream.next().await else {
                    break;
                };
                if position <= last {
                    disordered += 1;
                }
                last = position;
                seen += 1;
                if seen == warm_up {
                    warmed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                } else if seen > warm_up {
                    arrivals.push((position, arrived));
                }
            }
            (arrivals, disordered)
        }));
    }
    for number in numbers {
        let note = MatterCommand::AddNote(AddNote {
            privileged: false,
            subject: None,
            body: "Subscription bench warm-up".into(),
        });
        docket
            .service
            .change_matter(context, number, &note)
            .await
            .map_err(store_error)?;
    }
    let waiting = Instant::now();
    while warmed.load(std::sync::atomic::Ordering::Relaxed) < plan.subscribers
        && waiting.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "docket bench: warmed up in {:.1} s",
        waiting.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let writers = numbers.len() as u64;
    let mut tasks = Vec::new();
    for (writer, number) in numbers.iter().enumerate() {
        let writer = writer as u64;
        let share = total / writers + u64::from(writer < total % writers);
        let (service, context, number) = (docket.service.clone(), context.clone(), number.clone());
        // Each writer keeps to its share of the rate, catching up when an append was slow.
        let interval = Duration::from_secs_f64(writers as f64 / plan.rate as f64);
        tasks.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for sequence in 0..share {
                ticks.tick().await;
                let note = MatterCommand::AddNote(AddNote {
                    privileged: false,
                    subject: None,
                    body: format!("Subscription bench note {writer}-{sequence}"),
                });
                service.change_matter(&context, &number, &note).await?;
            }
            Ok::<_, crate::service::ServiceError>(())
        }));
    }
    for task in tasks {
        task.await.map_err(store_error)?.map_err(store_error)?;
    }
    let append_seconds = started.elapsed().as_secs_f64();
    let mut arrivals: Vec<Vec<(u64, u64)>> = Vec::with_capacity(plan.subscribers);
    let (mut delivered, mut disordered) = (0u64, 0u64);
    for subscriber in subscribers {
        let (mine, wrong) = subscriber.await.map_err(store_error)?;
        delivered += mine.len() as u64;
        disordered += wrong;
        arrivals.push(mine);
    }
    let recorded = recorded_micros(docket, from, docket.log.head().await?.position).await?;
    let mut lags: Vec<u32> = arrivals
        .iter()
        .flatten()
        .map(|(position, arrived)| {
            let at = recorded.get(position).copied().unwrap_or(*arrived);
            u32::try_from(arrived.saturating_sub(at)).unwrap_or(u32::MAX)
        })
        .collect();
    drop(arrivals);
    lags.sort_unstable();
    let percentile = |p: f64| {
        let index = ((lags.len() as f64 * p).ceil() as usize).saturating_sub(1);
        lags.get(index)
            .map_or(0.0, |&micros| f64::from(micros) / 1000.0)
    };
    Ok(Deliveries {
        subscribers: plan.subscribers,
        appended: total,
        append_seconds,
        appended_per_second: total as f64 / append_seconds.max(1e-9),
        delivered,
        missing: (total * plan.subscribers as u64).saturating_sub(delivered),
        disordered,
        lag_p50_ms: percentile(0.50),
        lag_p99_ms: percentile(0.99),
        lag_max_ms: percentile(1.0),
    })
}

pub fn to_table(report: &SubscriptionReport) -> String {
    let row = |name: &str, d: &Deliveries| {
        format!(
            "{name:<10} {:>6} subscribers  {:>7.0} appends/s  {:>10} delivered  {:>4} missing  {:>3} disordered  lag p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms\n",
            d.subscribers,
            d.appended_per_second,
            d.delivered,
            d.missing,
            d.disordered,
            d.lag_p50_ms,
            d.lag_p99_ms,
            d.lag_max_ms
        )
    };
    format!(
        "subscriptions on {} (target {} events/s)\n{}{}p99 graphql/feed: {:.2}\n",
        report.backend,
        report.target_rate,
        row("feed", &report.feed),
        row("graphql", &report.graphql),
        report.p99_ratio
    )
}
