//! Opening Docket: the log, the read models and their projector, and the service over them.

use std::sync::Arc;
use std::time::Duration;

use crate::access::chain::AccessChain;
use crate::config::Settings;
use crate::identity::Identity;
use crate::integrations::Integrations;
use crate::projection::{Projector, ReadDb};
use crate::service::Service;
use crate::store::{EventLog, LogOptions, StoreError};
use crate::transparency::{self, CheckpointPolicy, Checkpointer};
use crate::vault::{Vault, VaultError};

/// How long a mutation waits for the projections to reach its events, by default (the
/// `read_your_writes_ms` setting's default).
pub const DEFAULT_READ_YOUR_WRITES: Duration =
    Duration::from_millis(crate::config::DEFAULT_READ_YOUR_WRITES_MS);

/// An open Docket.
pub struct Docket {
    pub log: Arc<EventLog>,
    pub projector: Arc<Projector>,
    pub service: Arc<Service>,
    /// Users, sessions, API clients and the directory the policy reads.
    pub identity: Arc<Identity>,
    /// The signed chain of access records.
    pub access: Arc<AccessChain>,
    /// The Merkle tree over the log and its signed checkpoints.
    pub checkpoints: Arc<Checkpointer>,
    /// The data keys that seal client data, and the blind index.
    pub vault: Arc<Vault>,
    /// The feed of the log and the per-event gate (start the feed with
    /// [`Integrations::spawn`]).
    pub integrations: Arc<Integrations>,
}

impl Docket {
    /// Opens (creating on first use) the log and the read models, with the settings'
    /// read-your-writes wait. Call [`Projector::spawn`] on `projector` to keep the read models
    /// up to date in the background.
    pub async fn open(settings: &Settings) -> Result<Self, StoreError> {
        Docket::open_with(&settings.log_options(), settings.read_your_writes()).await
    }

    /// Opens with explicit log options and read-your-writes wait.
    pub async fn open_with(
        options: &LogOptions,
        read_your_writes: Duration,
    ) -> Result<Self, StoreError> {
        let log = Arc::new(EventLog::open(options).await?);
        let db = ReadDb::open(&options.data_dir, options.database_url.as_deref()).await?;
        let vault = Vault::open_configured(log.store().clone(), &options.data_dir)
            .await
            .map_err(vault_unavailable)?;
        let projector = Projector::open(db, log.store().clone(), vault.clone()).await?;
        let service = Arc::new(Service::new(
            log.clone(),
            projector.clone(),
            vault.clone(),
            read_your_writes,
        ));
        let identity = Identity::open(log.clone(), options)
            .await
            .map_err(|error| StoreError::Database {
                detail: error.to_string(),
            })?;
        let access = Arc::new(AccessChain::open(options).await?);
        let checkpoints = transparency::open(&log, None, CheckpointPolicy::default()).await?;
        let integrations =
            Integrations::open(&log, identity.clone(), projector.clone(), vault.clone()).await?;
        Ok(Docket {
            log,
            projector,
            service,
            identity,
            access,
            checkpoints,
            vault,
            integrations,
        })
    }
}

/// A vault that cannot open stops start-up: nothing may be written unsealed.
pub fn vault_unavailable(error: VaultError) -> StoreError {
    match error {
        VaultError::Store(store) => store,
        other => StoreError::Unavailable {
            detail: format!("the vault cannot open: {other}"),
        },
    }
}
