//! One subscription's course through the log: the events it may receive, decided one by one.
//!
//! A [`Flow`] follows the feed from its starting position, shows every event to the
//! [`EventGate`] (so later decisions see walls and team changes in log order), re-checks the
//! credential (an API key on every event, a session at least every second), keeps the events
//! its filters want, asks the gate what the principal may receive, and writes the access record
//! of the first delivery of each (matter, part) before that delivery leaves.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::ErrorExtensions;

use super::event::LogEvent;
use crate::access::Principal;
use crate::access::chain::AccessChain;
use crate::access::record::{self, AccessEntry, AccessRecord};
use crate::api::graphql::errors::api_error;
use crate::integrations::feed::{FeedError, Follower};
use crate::integrations::gate::{Admission, EventGate, Memo, matter_of};
use crate::log::Event;
use crate::monitoring::alert_log;

/// How often a quiet subscription re-checks its credential.
const RECHECK: Duration = Duration::from_secs(1);

/// An event the subscriber may receive, and how much of it.
pub struct Delivery {
    pub event: Arc<Event>,
    pub admission: Admission,
}

/// One subscription's state.
pub struct Flow {
    follower: Follower,
    gate: Arc<EventGate>,
    access: Arc<AccessChain>,
    principal: Principal,
    /// The connection's request id, naming the subscription in access records.
    subscription: String,
    client_address: Option<String>,
    matters: Option<BTreeSet<String>>,
    types: Option<BTreeSet<String>>,
    /// What the gate told this flow last, so that most decisions take no lock, with the parts
    /// of each matter already in an access record of this subscription noted beside it.
    memo: Memo,
    /// Whether an access record of this subscription names the alerts stream.
    alerts_recorded: bool,
    checked: Instant,
    /// Deliveries so far; one in [`LAG_SAMPLE`] has its lag measured.
    delivered: u64,
    /// Counts the subscription as active in the metrics while it lives.
    _active: crate::metrics::SubscriptionGuard,
}

/// A delivery's lag is measured for one delivery in this many: the measure (a clock read,
/// a timestamp parse and a shared histogram) would cost more than the delivery itself.
const LAG_SAMPLE: u64 = 16;

/// What a flow starts from.
pub struct Start {
    pub follower: Follower,
    pub gate: Arc<EventGate>,
    pub access: Arc<AccessChain>,
    pub principal: Principal,
    pub subscription: String,
    pub client_address: Option<String>,
    pub matters: Option<BTreeSet<String>>,
    pub types: Option<BTreeSet<String>>,
}

/// The error that ends a subscription, saying where to resume.
pub fn ended(code: &str, message: &str, resume_from: u64) -> async_graphql::Error {
    api_error(code, message).extend_with(|_, extensions| {
        extensions.set("resumeFrom", resume_from);
    })
}

impl Flow {
    /// A flow from `start`, once its start is recorded (see [`Flow::record_start`]).
    pub fn new(start: Start) -> Flow {
        Flow {
            follower: start.follower,
            gate: start.gate,
            access: start.access,
            principal: start.principal,
            subscription: start.subscription,
            client_address: start.client_address,
            matters: start.matters,
            types: start.types,
            memo: Memo::default(),
            alerts_recorded: false,
            checked: Instant::now(),
            delivered: 0,
            _active: crate::metrics::global().subscription_guard(),
        }
    }

    /// Records the subscription itself: every matter it names, allowed or not.
    pub async fn record_start(&self, from: u64) -> async_graphql::Result<()> {
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
        match Box::pin(self.gate.identity().still_valid(&self.principal)).await {
            Ok(valid) => valid,
            Err(error) => {
                tracing::warn!(%error, "a subscription's credential could not be checked");
                false
            }
        }
    }

    /// The next event the subscriber may receive; an error ends the subscription and says
    /// where to resume.
    pub async fn next(&mut self) -> async_graphql::Result<Delivery> {
        loop {
            // An event already waiting is taken without arming a timer: at a thousand
            // subscribers, a timer per delivery would cost more than the delivery.
            let next = {
                let waiting = self.follower.next();
                tokio::pin!(waiting);
                match futures::poll!(waiting.as_mut()) {
                    std::task::Poll::Ready(next) => Ok(next),
                    std::task::Poll::Pending => tokio::time::timeout(RECHECK, waiting).await,
                }
            };
            let event = match next {
                Err(_) => {
                    // Quiet: the credential is still re-checked.
                    if !self.credential_holds().await {
                        return Err(signed_out(self.follower.position()));
                    }
                    continue;
                }
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
            if !self.credential_holds().await {
                return Err(signed_out(position));
            }
            if !self.wanted(&event) {
                continue;
            }
            let admitted = self
                .gate
                .admit_with(&mut self.memo, &self.principal, &event)
                .await
                .map_err(|_| unavailable(position))?;
            let admission = admitted.admission;
            let part = match admission {
                Admission::Withheld => continue,
                Admission::Metadata { part, .. } | Admission::Content { part, .. } => part,
            };
            let recorded = match matter_of(&event.stream) {
                Some(_) => admitted.noted,
                None => self.alerts_recorded,
            };
            if !recorded {
                Box::pin(self.record_delivery(&event, part, admission)).await?;
            }
            if self.delivered.is_multiple_of(LAG_SAMPLE) {
                crate::metrics::global().delivered_recorded_at(&event.recorded_at);
            }
            self.delivered += 1;
            return Ok(Delivery { event, admission });
        }
    }

    /// The delivery as a `LogEvent`, its payload opened when the admission includes it.
    pub async fn log_event(
        gate: &EventGate,
        delivery: &Delivery,
    ) -> async_graphql::Result<LogEvent> {
        let opened = if delivery.admission.includes_payload() {
            Some(
                gate.payload(&delivery.event)
                    .await
                    .map_err(|_| unavailable(delivery.event.position))?,
            )
        } else {
            None
        };
        Ok(LogEvent {
            event: delivery.event.clone(),
            opened,
        })
    }

    pub fn gate(&self) -> &Arc<EventGate> {
        &self.gate
    }

    /// Whether the subscriber asked for `event`. Alerts come only to a subscription that
    /// names their type and no matters.
    fn wanted(&self, event: &Event) -> bool {
        let Some(number) = matter_of(&event.stream) else {
            return event.stream == alert_log::STREAM
                && self.matters.is_none()
                && self
                    .types
                    .as_ref()
                    .is_some_and(|t| t.contains(&event.event_type));
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
        let reason = match admission {
            Admission::Metadata { reason, .. } | Admission::Content { reason, .. } => reason,
            Admission::Withheld => "withheld",
        };
        let entry = AccessEntry {
            matter: matter_of(&event.stream).map(str::to_owned),
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
        match matter_of(&event.stream) {
            Some(number) => self.memo.note(number, part),
            None => self.alerts_recorded = true,
        }
        Ok(())
    }
}

fn signed_out(resume_from: u64) -> async_graphql::Error {
    ended(
        "UNAUTHENTICATED",
        "the session or key is no longer valid; sign in and resume",
        resume_from,
    )
}

pub fn unavailable(resume_from: u64) -> async_graphql::Error {
    ended(
        "UNAVAILABLE",
        "the subscription could not go on; subscribe again from the position given",
        resume_from,
    )
}
