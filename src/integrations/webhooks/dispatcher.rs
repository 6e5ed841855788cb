//! The dispatcher: follows the log through the feed and queues a delivery for every event an
//! active endpoint asks for (its filter) and its API client may receive (the event gate).
//!
//! Each endpoint has a cursor, the next position it has to be considered for. The dispatcher
//! reads from the lowest cursor of the active endpoints, shows the gate every event in order,
//! and after each run of events queues the deliveries and moves the cursors past the run in
//! one transaction. So an event is passed over only once its deliveries are queued, a restart
//! resumes at the cursors, and a disabled endpoint's cursor waits for it to be enabled again.
//! Several processes may dispatch at once: queueing is idempotent (one delivery per endpoint
//! and event) and cursors only move forward.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::db::{NewDelivery, now_ms};
use super::payload::webhook_id;
use super::{Endpoint, WebhookError, Webhooks};
use crate::access::Principal;
use crate::integrations::gate::matter_of;
use crate::log::Event;

/// Most events taken from the feed and committed as one run.
const RUN: usize = 500;

/// An active endpoint as the dispatcher works with it.
struct Target {
    endpoint: Endpoint,
    principal: Principal,
}

/// Runs the dispatcher until the task is aborted; failures are logged and retried.
pub async fn run(webhooks: Arc<Webhooks>) {
    let mut pause = Duration::from_millis(100);
    loop {
        match follow(&webhooks).await {
            Ok(()) => pause = Duration::from_millis(100),
            Err(error) => {
                tracing::warn!(%error, "the webhook dispatcher stopped; resuming shortly");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn targets(webhooks: &Webhooks) -> Result<Vec<Target>, WebhookError> {
    let endpoints = webhooks.db.active_endpoints().await?;
    Ok(endpoints
        .into_iter()
        .filter_map(|endpoint| {
            let principal = Principal::api_client(&endpoint.client_id).ok()?;
            Some(Target {
                endpoint,
                principal,
            })
        })
        .collect())
}

/// Follows the log from the lowest cursor until the endpoints change in a way that needs a
/// fresh start (one appears whose cursor is behind the feed, or none is left).
async fn follow(webhooks: &Webhooks) -> Result<(), WebhookError> {
    let mut targets = targets(webhooks).await?;
    let Some(from) = targets.iter().map(|t| t.endpoint.next_position).min() else {
        tokio::select! {
            _ = webhooks.endpoints_changed.notified() => {}
            _ = tokio::time::sleep(webhooks.settings.reload) => {}
        }
        return Ok(());
    };
    let feed = webhooks.parts.feed.clone();
    let mut events = Box::pin(feed.follow(from).ready_chunks(RUN));
    let mut next = from;
    let mut reload = tokio::time::interval(webhooks.settings.reload);
    reload.tick().await;
    loop {
        tokio::select! {
            run = events.next() => {
                let Some(run) = run else { return Ok(()) };
                let run = run
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|error| WebhookError::internal("the feed", error))?;
                if let Some(last) = run.last() {
                    next = last.position + 1;
                }
                dispatch(webhooks, &mut targets, &run).await?;
                continue;
            }
            _ = webhooks.endpoints_changed.notified() => {}
            _ = reload.tick() => {}
        }
        targets = self::targets(webhooks).await?;
        let lowest = targets.iter().map(|t| t.endpoint.next_position).min();
        if lowest.is_none_or(|lowest| lowest < next) {
            return Ok(());
        }
    }
}

/// Queues the deliveries of one run of events and moves the cursors past it.
async fn dispatch(
    webhooks: &Webhooks,
    targets: &mut [Target],
    run: &[Arc<Event>],
) -> Result<(), WebhookError> {
    let Some(last) = run.last().map(|event| event.position) else {
        return Ok(());
    };
    let gate = &webhooks.parts.gate;
    let mut deliveries = Vec::new();
    for event in run {
        gate.observe(event)
            .await
            .map_err(|error| WebhookError::internal("the event gate", error))?;
        for target in targets.iter() {
            if target.endpoint.next_position > event.position
                || !target.endpoint.filter.matches(event)
            {
                continue;
            }
            let admission = gate
                .admit(&target.principal, event)
                .await
                .map_err(|error| WebhookError::internal("the event gate", error))?;
            if admission.is_delivered() {
                deliveries.push(NewDelivery {
                    delivery_id: webhook_id(&target.endpoint.endpoint_id, &event.id),
                    endpoint_id: target.endpoint.endpoint_id.clone(),
                    position: event.position,
                    event_id: event.id.clone(),
                    event_type: event.event_type.clone(),
                    matter: matter_of(&event.stream).map(str::to_owned),
                });
            }
        }
    }
    let moved: Vec<String> = targets
        .iter()
        .filter(|target| target.endpoint.next_position <= last + 1)
        .map(|target| target.endpoint.endpoint_id.clone())
        .collect();
    webhooks
        .db
        .enqueue(&deliveries, &moved, last + 1, now_ms())
        .await?;
    for target in targets.iter_mut() {
        target.endpoint.next_position = target.endpoint.next_position.max(last + 1);
    }
    if !deliveries.is_empty() {
        webhooks.queued.notify_one();
    }
    Ok(())
}
