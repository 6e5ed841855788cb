//! The sender: claims due deliveries under a lease, decides again what the endpoint's client
//! may receive of each event (a wall erected or a scope narrowed since it was queued applies),
//! records the reads of client data in the access chain before anything leaves, then signs and
//! POSTs the deliveries, several at a time, and records what each attempt came to.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::db::{
    Attempt, Claimed, DeliveryStatus, Endpoint, EndpointStatus, Outcome, millis, now_ms,
};
use super::http::{self, Response, Signed};
use super::payload;
use super::signing::{SigningSecret, signature_header};
use super::{WebhookError, Webhooks};
use crate::access::Principal;
use crate::access::record::{self, AccessEntry, AccessRecord};
use crate::integrations::gate::Opened;
use crate::integrations::gate::{Admission, matter_of};
use crate::log::Event;

/// How long a delivery waits before it is tried again when its access could not be decided or
/// recorded (no attempt is counted).
const NOT_DECIDED: Duration = Duration::from_secs(1);

/// A delivery ready to go.
struct Prepared {
    claim: Claimed,
    url: String,
    secrets: Vec<Arc<SigningSecret>>,
    body: Vec<u8>,
    access: Option<AccessRecord>,
}

/// An active endpoint with its unsealed signing keys (`None`: not active or not loadable).
type Loaded = Option<(Endpoint, Vec<Arc<SigningSecret>>)>;

/// An endpoint to disable after what a delivery came to.
struct Disabling {
    endpoint_id: String,
    reason: &'static str,
    delivery_id: String,
    position: u64,
}

impl Disabling {
    fn of(claim: &Claimed, reason: &'static str) -> Self {
        Disabling {
            endpoint_id: claim.endpoint_id.clone(),
            reason,
            delivery_id: claim.delivery_id.clone(),
            position: claim.position,
        }
    }
}

/// A finished attempt, waiting to be recorded.
struct Sent {
    claim: Claimed,
    started_at: i64,
    response: Response,
}

/// Runs the sender until the task is aborted. Claims and outcomes go in batches: a claim
/// waits until half the slots are free, and outcomes are recorded together.
pub async fn run(webhooks: Arc<Webhooks>) {
    let concurrency = webhooks.settings.concurrency.max(1);
    let batch = concurrency.div_ceil(2);
    let mut in_flight: JoinSet<Sent> = JoinSet::new();
    let mut finished: Vec<Outcome> = Vec::new();
    let mut disable: Vec<Disabling> = Vec::new();
    // Whether deliveries may be due that the last claim left behind.
    let mut more = true;
    loop {
        while let Some(joined) = in_flight.try_join_next() {
            if let Ok(sent) = joined {
                finished.push(outcome(&webhooks, sent, &mut disable));
            }
        }
        let free = concurrency.saturating_sub(in_flight.len());
        let claim = more && free >= batch;
        if !claim && !finished.is_empty() && (finished.len() >= batch || free >= batch) {
            record(&webhooks, &mut finished, &mut disable).await;
        }
        if claim {
            // The outcomes so far are recorded in the claim's own transaction.
            match prepare(&webhooks, free, &finished).await {
                Ok((ready, settled)) => {
                    finished.clear();
                    disable_all(&webhooks, &mut disable).await;
                    let claimed = ready.len() + settled.len();
                    more = claimed == free;
                    finished.extend(settled);
                    for prepared in ready {
                        in_flight.spawn(send(webhooks.clone(), prepared));
                    }
                    if claimed > 0 {
                        continue;
                    }
                }
                Err(error) => {
                    more = false;
                    tracing::warn!(%error, "webhook deliveries could not be claimed");
                }
            }
        }
        tokio::select! {
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Ok(sent) = joined {
                    finished.push(outcome(&webhooks, sent, &mut disable));
                }
            }
            _ = webhooks.queued.notified() => more = true,
            _ = tokio::time::sleep(webhooks.settings.poll) => more = true,
        }
    }
}

/// Records finished outcomes (kept for the next try when the store fails) and disables the
/// endpoints they call for.
async fn record(webhooks: &Webhooks, finished: &mut Vec<Outcome>, disable: &mut Vec<Disabling>) {
    match webhooks.db.finish(&webhooks.owner, finished).await {
        Ok(()) => finished.clear(),
        Err(error) => {
            tracing::warn!(%error, "webhook outcomes not recorded yet; retrying");
            return;
        }
    }
    disable_all(webhooks, disable).await;
}

/// Disables the endpoints recorded outcomes call for.
async fn disable_all(webhooks: &Webhooks, disable: &mut Vec<Disabling>) {
    for failed in disable.drain(..) {
        webhooks
            .disable_after_failure(
                &failed.endpoint_id,
                failed.reason,
                (&failed.delivery_id, failed.position),
            )
            .await;
    }
}

/// An outcome that puts a claimed delivery back without an attempt.
fn released(claim: &Claimed, status: DeliveryStatus, wait: Option<Duration>) -> Outcome {
    let now = now_ms();
    Outcome {
        delivery_id: claim.delivery_id.clone(),
        attempt: None,
        status,
        failures: claim.failures,
        next_attempt_at: wait.map(|wait| now.saturating_add(millis(wait))),
        finished_at: wait.is_none().then_some(now),
    }
}

/// Records `finished` and claims up to `limit` due deliveries, then readies them: the ones to
/// send, and the ones settled without sending (withheld, or put back to be decided again). An
/// error means nothing was recorded or claimed.
async fn prepare(
    webhooks: &Webhooks,
    limit: usize,
    finished: &[Outcome],
) -> Result<(Vec<Prepared>, Vec<Outcome>), WebhookError> {
    let now = now_ms();
    let lease_until = now.saturating_add(millis(webhooks.settings.lease));
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let claims = webhooks
        .db
        .finish_and_claim(&webhooks.owner, finished, (now, lease_until), limit)
        .await?;
    if claims.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let positions: Vec<u64> = claims.iter().map(|claim| claim.position).collect();
    let events = match read_events(webhooks, &positions).await {
        Ok(events) => events,
        Err(error) => {
            tracing::warn!(%error, "queued webhook events could not be read");
            let released = claims
                .iter()
                .map(|claim| released(claim, DeliveryStatus::Pending, Some(NOT_DECIDED)));
            return Ok((Vec::new(), released.collect()));
        }
    };
    let mut endpoints: HashMap<String, Loaded> = HashMap::new();
    let mut ready = Vec::new();
    let mut settled = Vec::new();
    for claim in claims {
        if !endpoints.contains_key(&claim.endpoint_id) {
            let loaded = load_endpoint(webhooks, &claim.endpoint_id).await;
            endpoints.insert(claim.endpoint_id.clone(), loaded);
        }
        let Some(Some((endpoint, secrets))) = endpoints.get(&claim.endpoint_id) else {
            settled.push(released(&claim, DeliveryStatus::Pending, Some(NOT_DECIDED)));
            continue;
        };
        let Some(event) = events.get(&claim.position) else {
            tracing::error!(
                position = claim.position,
                "a queued webhook event is not in the log"
            );
            settled.push(released(&claim, DeliveryStatus::Failed, None));
            continue;
        };
        match decide(webhooks, endpoint, event, &claim).await {
            Ok(Some((opened, access))) => ready.push(Prepared {
                url: endpoint.url.clone(),
                secrets: secrets.clone(),
                body: payload::body(event, opened.as_deref()),
                access,
                claim,
            }),
            Ok(None) => settled.push(released(&claim, DeliveryStatus::Withheld, None)),
            Err(error) => {
                tracing::warn!(%error, "a webhook delivery's access could not be decided");
                settled.push(released(&claim, DeliveryStatus::Pending, Some(NOT_DECIDED)));
            }
        }
    }
    let records: Vec<AccessRecord> = ready.iter().filter_map(|p| p.access.clone()).collect();
    if !records.is_empty()
        && let Err(error) = webhooks.parts.access.record_all(&records).await
    {
        tracing::error!(%error, "webhook reads could not be recorded; nothing with data is sent");
        let (unrecorded, rest): (Vec<_>, Vec<_>) = ready
            .into_iter()
            .partition(|prepared| prepared.access.is_some());
        settled.extend(
            unrecorded
                .iter()
                .map(|p| released(&p.claim, DeliveryStatus::Pending, Some(NOT_DECIDED))),
        );
        ready = rest;
    }
    Ok((ready, settled))
}

/// The endpoint with its unsealed signing keys, if it is still active.
async fn load_endpoint(webhooks: &Webhooks, endpoint_id: &str) -> Loaded {
    let loaded = async {
        let Some(endpoint) = webhooks.db.endpoint(endpoint_id).await? else {
            return Ok(None);
        };
        if endpoint.status != EndpointStatus::Active {
            return Ok(None);
        }
        let keys = webhooks.db.signing_keys(endpoint_id, now_ms()).await?;
        let secrets = webhooks.secrets.open(&webhooks.parts.vault, &keys).await?;
        Ok::<_, WebhookError>(Some((endpoint, secrets)))
    };
    match loaded.await {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(%error, endpoint_id, "a webhook endpoint could not be loaded");
            None
        }
    }
}

/// What the endpoint's client may receive of the event now: `None` for nothing, else the
/// opened payload (when it may read it) with the access record of that read.
async fn decide(
    webhooks: &Webhooks,
    endpoint: &Endpoint,
    event: &Event,
    claim: &Claimed,
) -> Result<Option<(Option<Arc<Opened>>, Option<AccessRecord>)>, WebhookError> {
    let gate = &webhooks.parts.gate;
    let principal = Principal::api_client(&endpoint.client_id)
        .map_err(|error| WebhookError::internal("the endpoint's client", error))?;
    let admission = gate
        .admit(&principal, event)
        .await
        .map_err(|error| WebhookError::internal("the event gate", error))?;
    let Admission::Content { part, reason } = admission else {
        return Ok(admission.is_delivered().then_some((None, None)));
    };
    let opened = gate
        .payload(event)
        .await
        .map_err(|error| WebhookError::internal("the event gate", error))?;
    let access = AccessRecord {
        principal: principal.actor.as_str().to_owned(),
        session: None,
        operation: "webhook delivery".to_owned(),
        request_id: Some(claim.delivery_id.clone()),
        client_address: None,
        entries: vec![AccessEntry {
            matter: matter_of(&event.stream).map(str::to_owned),
            target: "event".to_owned(),
            target_id: Some(event.id.clone()),
            fields: vec![part.as_str().to_owned()],
            decision: record::Decision::Allowed,
            reason: reason.to_owned(),
        }],
    };
    Ok(Some((Some(opened), Some(access))))
}

/// The events at `positions`, read in as few pages as their spread allows.
async fn read_events(
    webhooks: &Webhooks,
    positions: &[u64],
) -> Result<HashMap<u64, Arc<Event>>, WebhookError> {
    let mut wanted: Vec<u64> = positions.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let store = webhooks.parts.log.store();
    let mut found = HashMap::new();
    let mut index = 0;
    while let Some(&from) = wanted.get(index) {
        let span = wanted
            .iter()
            .skip(index)
            .take_while(|p| **p < from + 2000)
            .last();
        let limit = u32::try_from(span.map_or(1, |last| last - from + 1)).unwrap_or(1);
        let page = store
            .read_page(from, limit)
            .await
            .map_err(|error| WebhookError::internal("the log", error))?;
        for event in page {
            if wanted.binary_search(&event.position).is_ok() {
                found.insert(event.position, Arc::new(event));
            }
        }
        index += wanted
            .iter()
            .skip(index)
            .take_while(|p| **p < from + 2000)
            .count();
    }
    Ok(found)
}

/// Signs and POSTs one delivery.
async fn send(webhooks: Arc<Webhooks>, prepared: Prepared) -> Sent {
    let started_at = now_ms();
    let timestamp = started_at.div_euclid(1000);
    let webhook_id = prepared.claim.delivery_id.clone();
    let signature = signature_header(
        prepared.secrets.iter().map(|secret| secret.as_ref()),
        &webhook_id,
        timestamp,
        &prepared.body,
    );
    let signed = Signed {
        webhook_id,
        timestamp,
        signature,
    };
    let response = http::post(
        &webhooks.client,
        &webhooks.egress,
        &prepared.url,
        &signed,
        prepared.body,
    )
    .await;
    Sent {
        claim: prepared.claim,
        started_at,
        response,
    }
}

/// What an attempt means for its delivery: delivered, retried later, or given up (and the
/// endpoint to disable, noted in `disable`).
fn outcome(webhooks: &Webhooks, sent: Sent, disable: &mut Vec<Disabling>) -> Outcome {
    let Sent {
        claim,
        started_at,
        response,
    } = sent;
    let now = now_ms();
    let mut failures = claim.failures;
    let (status, next_attempt_at) = if response.succeeded() {
        (DeliveryStatus::Delivered, None)
    } else if response.gone() {
        failures += 1;
        disable.push(Disabling::of(&claim, "gone"));
        (DeliveryStatus::Failed, None)
    } else {
        failures += 1;
        let failed = u32::try_from(failures).unwrap_or(u32::MAX);
        match webhooks
            .settings
            .backoff
            .next_wait(failed, response.retry_after)
        {
            Some(wait) => (
                DeliveryStatus::Pending,
                Some(now.saturating_add(millis(wait))),
            ),
            None => {
                disable.push(Disabling::of(&claim, "retries_exhausted"));
                (DeliveryStatus::Failed, None)
            }
        }
    };
    crate::metrics::global().webhook_attempt(delivery_outcome(status));
    let attempt = Attempt {
        delivery_id: claim.delivery_id.clone(),
        attempt: claim.attempts + 1,
        started_at,
        latency_ms: millis(response.latency),
        status_code: response.status.map(i64::from),
        error_class: response.error_class.map(str::to_owned),
        excerpt: response.excerpt.clone(),
        next_attempt_at,
    };
    Outcome {
        delivery_id: claim.delivery_id,
        attempt: Some(attempt),
        status,
        failures,
        next_attempt_at,
        finished_at: (status != DeliveryStatus::Pending).then_some(now),
    }
}

/// What a delivery's new status says of the attempt, for the metrics.
fn delivery_outcome(status: DeliveryStatus) -> crate::metrics::DeliveryOutcome {
    use crate::metrics::DeliveryOutcome;
    match status {
        DeliveryStatus::Delivered => DeliveryOutcome::Delivered,
        DeliveryStatus::Pending => DeliveryOutcome::Retrying,
        DeliveryStatus::Failed | DeliveryStatus::Withheld | DeliveryStatus::Cancelled => {
            DeliveryOutcome::Failed
        }
    }
}
