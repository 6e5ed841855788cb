//! Integrations: how other systems keep in step with the log and write back.
//!
//! - [`feed`] follows the log as it grows, in this process and others, and fans new events out.
//! - [`gate`] decides, event by event, what a principal may receive.
//! - [`nats`] publishes the log to a NATS JetStream stream.
//! - [`webhooks`] pushes the log's events to API clients' endpoints, signed.

pub mod feed;
pub mod gate;
pub mod nats;
pub mod webhooks;

use std::sync::Arc;

use crate::identity::Identity;
use crate::projection::Projector;
use crate::store::{EventLog, StoreError};
use crate::vault::Vault;
use feed::{Feed, FeedOptions};
use gate::EventGate;

/// What every integration shares: the feed of the log and the gate that authorises each event.
pub struct Integrations {
    pub feed: Arc<Feed>,
    pub gate: Arc<EventGate>,
    /// The webhook service, once `serve` has started it.
    webhooks: std::sync::OnceLock<Arc<webhooks::Webhooks>>,
}

impl Integrations {
    /// Opens the feed at the log's head (start it with [`Integrations::spawn`]).
    pub async fn open(
        log: &EventLog,
        identity: Arc<Identity>,
        projector: Arc<Projector>,
        vault: Arc<Vault>,
    ) -> Result<Arc<Self>, StoreError> {
        let options = FeedOptions::for_backend(log.store().backend());
        Integrations::open_with(log, identity, projector, vault, options).await
    }

    /// Opens with explicit feed options.
    pub async fn open_with(
        log: &EventLog,
        identity: Arc<Identity>,
        projector: Arc<Projector>,
        vault: Arc<Vault>,
        options: FeedOptions,
    ) -> Result<Arc<Self>, StoreError> {
        let feed = Feed::open(log, options).await?;
        let gate = Arc::new(EventGate::new(identity, projector, vault));
        Ok(Arc::new(Integrations {
            feed,
            gate,
            webhooks: std::sync::OnceLock::new(),
        }))
    }

    /// The webhook service, if it has been started.
    pub fn webhooks(&self) -> Option<&Arc<webhooks::Webhooks>> {
        self.webhooks.get()
    }

    /// Makes the started webhook service reachable from the API (the first one set stays).
    pub fn set_webhooks(&self, webhooks: Arc<webhooks::Webhooks>) {
        let _ = self.webhooks.set(webhooks);
    }

    /// Starts the feed's tail, woken by `log`'s commits.
    pub fn spawn(&self, log: &EventLog) -> tokio::task::JoinHandle<()> {
        self.feed.spawn(log.committed())
    }
}
