//! Signed webhooks: the log's events pushed to API clients' HTTPS endpoints, following the
//! Standard Webhooks specification.
//!
//! - Administrators register an endpoint for an API client with an event filter
//!   ([`admin`]), and disable, enable or remove it (`lifecycle`); every change to it is an
//!   event of the `integrations` stream ([`events`]).
//!   Its signing keys are sealed by the vault ([`secrets`], [`signing`]).
//! - The [`dispatcher`] follows the log and queues a delivery for each event an endpoint asks
//!   for and its client may receive; the [`sender`] claims due deliveries under a lease,
//!   decides again what the client may receive, records the access, signs and POSTs them
//!   ([`http`]) and retries failures on a schedule over about a day ([`backoff`]), then
//!   disables the endpoint.
//! - Everything is in the webhook store ([`db`]), so deliveries survive restarts and several
//!   processes on one PostgreSQL database share the work without sending anything twice at
//!   once. Delivery is at least once: a receiver drops duplicates by `webhook-id`.
//! - [`target`] keeps webhooks off loopback, private and link-local networks.

pub mod admin;
pub mod backoff;
pub mod db;
pub mod dispatcher;
mod error;
pub mod events;
pub mod filter;
pub mod http;
mod lifecycle;
pub mod payload;
pub mod secrets;
pub mod sender;
pub mod signing;
pub mod target;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

pub use admin::{EndpointChange, NewEndpoint, Registered};
pub use backoff::Backoff;
pub use db::{Attempt, Delivery, DeliveryStatus, Endpoint, EndpointStatus, WebhookDb};
pub use error::WebhookError;
pub use filter::EventFilter;
pub use signing::Scheme;
pub use target::{Cidr, EgressPolicy};

use crate::access::chain::AccessChain;
use crate::identity::Identity;
use crate::integrations::feed::Feed;
use crate::integrations::gate::EventGate;
use crate::store::{EventLog, LogOptions};
use crate::vault::Vault;

/// How webhooks are delivered.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Where deliveries may go (https only and public addresses, unless widened).
    pub egress: EgressPolicy,
    /// The retry schedule.
    pub backoff: Backoff,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// How long a claimed delivery stays with its sender; longer than `timeout`.
    pub lease: Duration,
    /// How often the sender looks for due deliveries queued by other processes or retries.
    pub poll: Duration,
    /// How often the dispatcher reloads endpoints changed by other processes.
    pub reload: Duration,
    /// Attempts in flight at once, over all endpoints.
    pub concurrency: usize,
    /// How long the previous key signs beside a new one after a rotation, by default.
    pub rotation_overlap: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            egress: EgressPolicy::default(),
            backoff: Backoff::default(),
            timeout: Duration::from_secs(15),
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(500),
            reload: Duration::from_secs(2),
            concurrency: 64,
            rotation_overlap: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// Why the webhook configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookConfigError {
    #[error("webhook_allowed_cidrs: `{0}` is not an address range such as 127.0.0.1/32")]
    Cidr(String),
    #[error(
        "webhook_backoff_ms must be comma-separated waits in milliseconds, at most 50 of them, \
         each at most 7 days"
    )]
    Backoff,
}

impl WebhookSettings {
    /// The settings the configuration gives (`webhook_allow_http`, `webhook_allowed_cidrs`,
    /// `webhook_backoff_ms`), the rest at their defaults. Without any of them webhooks go only
    /// to public addresses over HTTPS, on the default schedule.
    pub fn configured(
        allow_http: bool,
        allowed_cidrs: &[String],
        backoff_ms: Option<&str>,
    ) -> Result<WebhookSettings, WebhookConfigError> {
        let allowed = allowed_cidrs
            .iter()
            .map(|text| Cidr::parse(text).ok_or_else(|| WebhookConfigError::Cidr(text.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let backoff = match backoff_ms {
            Some(text) => Backoff::from_millis_list(text).ok_or(WebhookConfigError::Backoff)?,
            None => Backoff::default(),
        };
        Ok(WebhookSettings {
            egress: EgressPolicy {
                allow_http,
                allowed,
            },
            backoff,
            ..WebhookSettings::default()
        })
    }
}

/// What webhooks are built from: the log and the services around it.
#[derive(Clone)]
pub struct WebhookParts {
    pub log: Arc<EventLog>,
    pub identity: Arc<Identity>,
    pub vault: Arc<Vault>,
    pub access: Arc<AccessChain>,
    pub feed: Arc<Feed>,
    pub gate: Arc<EventGate>,
}

/// The webhook service: endpoint administration, the delivery log, and (once spawned) the
/// dispatcher and sender.
pub struct Webhooks {
    db: WebhookDb,
    parts: WebhookParts,
    settings: WebhookSettings,
    egress: Arc<EgressPolicy>,
    client: reqwest::Client,
    secrets: secrets::SecretCache,
    /// Wakes the sender when deliveries were queued here.
    queued: Notify,
    /// Wakes the dispatcher when endpoints changed here.
    endpoints_changed: Notify,
    /// This process's sender, as lease owner.
    owner: String,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("db", &self.db)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// Opens the webhook store (beside the log `options` describe) and the HTTP client.
    pub async fn open(
        parts: WebhookParts,
        options: &LogOptions,
        settings: WebhookSettings,
    ) -> Result<Arc<Webhooks>, WebhookError> {
        let db = WebhookDb::open(&options.data_dir, options.database_url.as_deref()).await?;
        let egress = Arc::new(settings.egress.clone());
        let client = http::client(egress.clone(), settings.timeout)?;
        Ok(Arc::new(Webhooks {
            db,
            parts,
            settings,
            egress,
            client,
            secrets: secrets::SecretCache::default(),
            queued: Notify::new(),
            endpoints_changed: Notify::new(),
            owner: uuid::Uuid::now_v7().to_string(),
        }))
    }

    /// Starts the dispatcher and the sender; they run until the returned handles are aborted.
    pub fn spawn(self: &Arc<Self>) -> Workers {
        Workers {
            dispatcher: tokio::spawn(dispatcher::run(self.clone())),
            sender: tokio::spawn(sender::run(self.clone())),
        }
    }

    pub fn db(&self) -> &WebhookDb {
        &self.db
    }

    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    pub fn parts(&self) -> &WebhookParts {
        &self.parts
    }
}

/// The running dispatcher and sender.
#[derive(Debug)]
pub struct Workers {
    pub dispatcher: tokio::task::JoinHandle<()>,
    pub sender: tokio::task::JoinHandle<()>,
}

impl Workers {
    /// Stops both (a delivery in flight is attempted again once its lease runs out).
    pub fn abort(&self) {
        self.dispatcher.abort();
        self.sender.abort();
    }
}

/// Opens the webhook service and starts its workers: what `serve` calls.
pub async fn spawn(
    parts: WebhookParts,
    options: &LogOptions,
    settings: WebhookSettings,
) -> Result<(Arc<Webhooks>, Workers), WebhookError> {
    let webhooks = Webhooks::open(parts, options, settings).await?;
    let workers = webhooks.spawn();
    Ok((webhooks, workers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_widens_egress_only_when_asked() {
        let default = WebhookSettings::configured(false, &[], None).unwrap();
        assert_eq!(default.egress, EgressPolicy::default());
        assert_eq!(default.backoff, Backoff::default());
        let local = WebhookSettings::configured(
            true,
            &["127.0.0.1/32".to_owned(), "fd00::/8".to_owned()],
            Some("10,20"),
        )
        .unwrap();
        assert!(local.egress.allow_http);
        assert_eq!(local.egress.allowed.len(), 2);
        assert_eq!(local.backoff.attempts(), 3);
        assert_eq!(
            WebhookSettings::configured(false, &["localhost".to_owned()], None).unwrap_err(),
            WebhookConfigError::Cidr("localhost".to_owned())
        );
        assert_eq!(
            WebhookSettings::configured(false, &[], Some("soon")).unwrap_err(),
            WebhookConfigError::Backoff
        );
    }
}
