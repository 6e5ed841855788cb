//! The subscription root: the log's events, from a position, as they are appended.
//!
//! `events(from:, matters:, types:)` delivers the catch-up from `from` and then live events, in
//! log order, each at most once per connection and none skipped among those the subscriber may
//! receive. Every event is decided by the [`EventGate`] when it is delivered, and the
//! credential is re-checked as it goes: an API key on every event, a session at least every
//! second, so that a revocation or a wall ends the flow at once. A subscription that cannot go
//! on ends with an error whose `extensions.resumeFrom` is the position to subscribe from again.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::{Context, ErrorExtensions, Json, Object, Subscription};
use futures::Stream;
use serde_json::Value;

use super::caller::{Caller, unauthenticated};
use super::errors::api_error;
use crate::access::Principal;
use crate::access::record::{self, AccessEntry, AccessRecord};
use crate::integrations::Integrations;
use crate::integrations::feed::{FeedError, Follower};
use crate::integrations::gate::{Admission, EventGate, matter_of};
use crate::log::Event;

/// Most matters or event types one subscription may name.
const MAX_FILTER: usize = 100;
/// How often a quiet subscription re-checks its credential.
const RECHECK: Duration = Duration::from_secs(1);

/// One event of the log, with what verifies it.
pub struct LogEvent {
    event: Arc<Event>,
    /// The payload, when the subscriber may read the part it belongs to.
    opened: Option<(Value, bool)>,
}

#[Object]
impl LogEvent {
    /// The event's position in the log: resume from the last one received plus one.
    async fn position(&self) -> u64 {
        self.event.position
    }
    async fn event_id(&self) -> &str {
        &self.event.id
    }
    async fn stream(&self) -> &str {
        &self.event.stream
    }
    async fn matter_number(&self) -> Option<&str> {
        matter_of(&self.event.stream)
    }
    async fn version(&self) -> u64 {
        self.event.stream_version
    }
    async fn event_type(&self) -> &str {
        &self.event.event_type
    }
    async fn schema_version(&self) -> u32 {
        self.event.schema_version
    }
    async fn actor(&self) -> &str {
        &self.event.actor
    }
    async fn occurred_at(&self) -> &str {
        &self.event.occurred_at
    }
    async fn recorded_at(&self) -> &str {
        &self.event.recorded_at
    }
    async fn request_id(&self) -> Option<&str> {
        self.event.request_id.as_deref()
    }
    async fn correlation_id(&self) -> Option<&str> {
        self.event.correlation_id.as_deref()
    }
    async fn causation_id(&self) -> Option<&str> {
        self.event.causation_id.as_deref()
    }
    async fn idempotency_key(&self) -> Option<&str> {
        self.event.idempotency_key.as_deref()
    }
    /// The previous event's hash (lowercase hex); null for the first event of the log.
    async fn prev_hash(&self) -> Option<String> {
        self.event.prev_hash.map(hex::encode)
    }
    /// The hash of the previous event of the same stream; null for a stream's first event.
    async fn stream_prev_hash(&self) -> Option<String> {
        self.event.stream_prev_hash.map(hex::encode)
    }
    async fn key_id(&self) -> &str {
        &self.event.key_id
    }
    /// blake3 hash, lowercase hex.
    async fn hash(&self) -> String {
        hex::encode(self.event.hash)
    }
    /// ed25519 signature over the hash, lowercase hex.
    async fn signature(&self) -> String {
        hex::encode(self.event.signature)
    }
    /// The payload exactly as hashed (canonical JSON, client data sealed), so that the hash
    /// can be recomputed; null when the subscriber may see only the event's metadata.
    async fn payload(&self) -> Option<&str> {
        self.opened.as_ref().map(|_| self.event.payload.as_str())
    }
    /// The payload with its client data opened; null with `payload`.
    async fn data(&self) -> Option<Json<Value>> {
        self.opened.as_ref().map(|(value, _)| Json(value.clone()))
    }
    /// Whether the event's client data was erased (its `private` member is then empty).
    async fn erased(&self) -> bool {
        self.opened.as_ref().is_some_and(|(_, erased)| *erased)
    }
}

/// The subscription root.
#[derive(Default)]
pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// The events of the matters the caller may see, from position `from` (default: only
    /// events appended from now on), optionally only those of `matters` and of `types`.
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The first position to deliver (the last received plus one).")]
        from: Option<u64>,
        #[graphql(desc = "Only these matters (numbers), at most 100.")] matters: Option<
            Vec<String>,
        >,
        #[graphql(desc = "Only these event types, e.g. `matter.time_recorded`, at most 100.")]
        types: Option<Vec<String>>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<LogEvent>> + use<>> {
        let caller = ctx.data::<Arc<Caller>>().map_err(|_| unauthenticated())?;
        caller.signed()?;
        let Some(principal) = caller.principal.clone() else {
            return Err(unauthenticated());
        };
        let integrations = ctx.data::<Arc<Integrations>>()?.clone();
        let matters = bounded("matters", matters)?;
        let types = bounded("types", types)?;
        let from = from.unwrap_or_else(|| integrations.feed.head() + 1);
        let flow = Flow {
            follower: integrations.feed.subscribe(from),
            gate: integrations.gate.clone(),
            access: caller.access.clone(),
            principal,
            subscription: caller.request_id.clone(),
            client_address: caller.client_address.clone(),
            matters,
            types,
            recorded: BTreeSet::new(),
            checked: Instant::now(),
            ended: false,
        };
        flow.record_start(from).await?;
        Ok(futures::stream::unfold(flow, |mut flow| async move {
            if flow.ended {
                return None;
            }
            let item = flow.next().await;
            if item.is_err() {
                flow.ended = true;
            }
            Some((item, flow))
        }))
    }
}

fn bounded(
    name: &str,
    list: Option<Vec<String>>,
) -> async_graphql::Result<Option<BTreeSet<String>>> {
    match list {
        Some(list) if list.len() > MAX_FILTER => Err(api_error(
            "BAD_USER_INPUT",
            format!("{name} may name at most {MAX_FILTER} values"),
        )),
        Some(list) => Ok(Some(list.into_iter().collect())),
        None => Ok(None),
    }
}

/// One subscription's state.
struct Flow {
    follower: Follower,
    gate: Arc<EventGate>,
    access: Arc<crate::access::chain::AccessChain>,
    principal: Principal,
    /// The connection's request id, naming the subscription in access records.
    subscription: String,
    client_address: Option<String>,
    matters: Option<BTreeSet<String>>,
    types: Option<BTreeSet<String>>,
    /// (matter, part) pairs already in an access record of this subscription.
    recorded: BTreeSet<(String, &'static str)>,
    checked: Instant,
    ended: bool,
}

/// The error that ends a subscription, saying where to resume.
fn ended(code: &str, message: &str, resume_from: u64) -> async_graphql::Error {
    api_error(code, message).extend_with(|_, extensions| {
        extensions.set("resumeFrom", resume_from);
    })
}

impl Flow {
    /// Records the subscription itself: every matter it names, allowed or not.
    async fn record_start(&self, from: u64) -> async_graphql::Result<()> {
        let mut entries = vec![AccessEntry {
            matter: None,
            target: "event_subscription".into(),
            target_id: Some(format!("from {from}")),
            fields: Vec::new(),
            decision: record::Decision::Allowed,
            reason: "signed_in".into(),
        }];
        for number in self.matters.iter().flatten() {
            let access = self
                .gate
                .matter_access(&self.principal, number, from.saturating_sub(1))
                .await
                .map_err(|_| unavailable(from))?;
            let decision = access.map(|access| access.decide(crate::access::Part::History));
            entries.push(AccessEntry {
                matter: Some(number.clone()),
                target: "event_subscription".into(),
                target_id: None,
                fields: vec![crate::access::Part::History.as_str().into()],
                decision: if decision.is_some_and(|d| d.is_allowed()) {
                    record::Decision::Allowed
                } else {
                    record::Decision::Denied
                },
                reason: decision.map_or("not_found", |d| d.reason()).into(),
            });
        }
        self.write(entries, "subscribe events").await.map_err(|_| {
            ended(
                "ACCESS_RECORD_UNAVAILABLE",
                "the access could not be recorded, so the subscription did not start; try again",
                from,
            )
        })
    }

    async fn write(&self, entries: Vec<AccessEntry>, operation: &str) -> Result<(), ()> {
        let record = AccessRecord {
            principal: self.principal.actor.as_str().to_owned(),
            session: self.principal.session_id.clone(),
            operation: operation.to_owned(),
            request_id: Some(self.subscription.clone()),
            client_address: self.client_address.clone(),
            entries,
        };
        self.access
            .record(&record)
            .await
            .map(|_| ())
            .map_err(|error| {
                tracing::error!(%error, "a subscription's access record could not be written");
            })
    }

    /// Whether the credential still works, re-checked on every event for API keys (a memory
    /// lookup) and at most every second for sessions (a database read).
    async fn credential_holds(&mut self) -> bool {
        let due = self.principal.key_id.is_some() || self.checked.elapsed() >= RECHECK;
        if !due {
            return true;
        }
        self.checked = Instant::now();
        match self.gate.identity().still_valid(&self.principal).await {
            Ok(valid) => valid,
            Err(error) => {
                tracing::warn!(%error, "a subscription's credential could not be checked");
                false
            }
        }
    }

    async fn next(&mut self) -> async_graphql::Result<LogEvent> {
        loop {
            if !self.credential_holds().await {
                return Err(ended(
                    "UNAUTHENTICATED",
                    "the session or key is no longer valid; sign in and resume",
                    self.follower.position(),
                ));
            }
            let event = match tokio::time::timeout(RECHECK, self.follower.next()).await {
                Err(_) => continue,
                Ok(Ok(event)) => event,
                Ok(Err(FeedError::TooSlow { resume_from })) => {
                    return Err(ended(
                        "SUBSCRIBER_TOO_SLOW",
                        &format!(
                            "the subscriber fell too far behind; subscribe again from position {resume_from}"
                        ),
                        resume_from,
                    ));
                }
                Ok(Err(FeedError::Store(error))) => {
                    tracing::warn!(%error, "a subscription could not read the log");
                    return Err(unavailable(self.follower.position()));
                }
            };
            let position = event.position;
            // Decided before anything else about this event: on failure, resume at it.
            if self.gate.observe(&event).await.is_err() {
                return Err(unavailable(position));
            }
            if !self.wanted(&event) {
                continue;
            }
            if self.principal.key_id.is_some() && !self.credential_holds().await {
                return Err(ended(
                    "UNAUTHENTICATED",
                    "the session or key is no longer valid; sign in and resume",
                    position,
                ));
            }
            let admission = self
                .gate
                .admit(&self.principal, &event)
                .await
                .map_err(|_| unavailable(position))?;
            let part = match admission {
                Admission::Withheld => continue,
                Admission::Metadata { part, .. } | Admission::Content { part, .. } => part,
            };
            self.record_delivery(&event, part, admission).await?;
            let opened = if admission.includes_payload() {
                Some(
                    self.gate
                        .payload(&event)
                        .await
                        .map_err(|_| unavailable(position))?,
                )
            } else {
                None
            };
            return Ok(LogEvent { event, opened });
        }
    }

    fn wanted(&self, event: &Event) -> bool {
        let Some(number) = matter_of(&event.stream) else {
            return false;
        };
        self.matters.as_ref().is_none_or(|m| m.contains(number))
            && self
                .types
                .as_ref()
                .is_none_or(|t| t.contains(&event.event_type))
    }

    /// The first delivery of each (matter, part) on this subscription waits for an access
    /// record naming it; later ones are covered by that record.
    async fn record_delivery(
        &mut self,
        event: &Event,
        part: crate::access::Part,
        admission: Admission,
    ) -> async_graphql::Result<()> {
        let Some(number) = matter_of(&event.stream) else {
            return Ok(());
        };
        let key = (number.to_owned(), part.as_str());
        if self.recorded.contains(&key) {
            return Ok(());
        }
        let reason = match admission {
            Admission::Metadata { reason, .. } | Admission::Content { reason, .. } => reason,
            Admission::Withheld => "withheld",
        };
        let entry = AccessEntry {
            matter: Some(number.to_owned()),
            target: "event".into(),
            target_id: Some(event.id.clone()),
            fields: vec![part.as_str().into()],
            decision: record::Decision::Allowed,
            reason: reason.into(),
        };
        self.write(vec![entry], "subscription events")
            .await
            .map_err(|_| {
                ended(
                    "ACCESS_RECORD_UNAVAILABLE",
                    "the access could not be recorded, so the event was not sent; resume later",
                    event.position,
                )
            })?;
        self.recorded.insert(key);
        Ok(())
    }
}

fn unavailable(resume_from: u64) -> async_graphql::Error {
    ended(
        "UNAVAILABLE",
        "the subscription could not go on; subscribe again from the position given",
        resume_from,
    )
}
