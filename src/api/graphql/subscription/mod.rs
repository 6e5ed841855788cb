//! The subscription root: the log's events, from a position, as they are appended.
//!
//! `events(from:, matters:, types:)` delivers the catch-up from `from` and then live events, in
//! log order, each at most once per connection and none skipped among those the subscriber may
//! receive. Every event is decided by the event gate when it is delivered, and the credential
//! is re-checked as it goes (see [`flow`]). A subscription that cannot go on ends with an error
//! whose `extensions.resumeFrom` is the position to subscribe from again.
//!
//! Served two ways. Through async-graphql's own executor each delivery is resolved for its
//! subscriber. Through [`shared`], which the WebSocket endpoint uses, each event is resolved
//! once per (document, admission) and every subscriber of that document receives the same
//! bytes: the decision stays per subscriber, the rendering is shared.

mod event;
mod flow;
pub mod shared;

use std::collections::BTreeSet;
use std::sync::Arc;

use async_graphql::{Context, Subscription};
use futures::StreamExt;
use futures::stream::BoxStream;

use super::caller::{Caller, unauthenticated};
use super::errors::api_error;
use crate::integrations::Integrations;
pub use event::LogEvent;
use flow::{Flow, Start};

/// Most matters or event types one subscription may name.
const MAX_FILTER: usize = 100;

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
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<LogEvent>>> {
        // Rendering one delivery for the shared path: the event was decided already.
        if let Ok(rendering) = ctx.data::<Arc<shared::Rendering>>() {
            return Ok(futures::stream::iter(rendering.take()).boxed());
        }
        let caller = ctx.data::<Arc<Caller>>().map_err(|_| unauthenticated())?;
        caller.signed()?;
        let Some(principal) = caller.principal.clone() else {
            return Err(unauthenticated());
        };
        let integrations = ctx.data::<Arc<Integrations>>()?.clone();
        let matters = bounded("matters", matters)?;
        let types = bounded("types", types)?;
        let from = from.unwrap_or_else(|| integrations.feed.head() + 1);
        let flow = Flow::new(Start {
            follower: integrations.feed.subscribe(from),
            gate: integrations.gate.clone(),
            access: caller.access.clone(),
            principal,
            subscription: caller.request_id.clone(),
            client_address: caller.client_address.clone(),
            matters,
            types,
        });
        flow.record_start(from).await?;
        // Starting a shared subscription: its driver takes the flow from here.
        if let Ok(slot) = ctx.data::<Arc<shared::FlowSlot>>() {
            slot.put(flow);
            return Ok(futures::stream::empty().boxed());
        }
        Ok(futures::stream::unfold(Some(flow), |flow| async move {
            let mut flow = flow?;
            let item = match flow.next().await {
                Ok(delivery) => Flow::log_event(flow.gate(), &delivery).await,
                Err(error) => Err(error),
            };
            let more = item.is_ok().then_some(flow);
            Some((item, more))
        })
        .boxed())
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
