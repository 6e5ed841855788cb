//! Who is asking: users, their credentials and sessions, and API clients.
//!
//! - [`directory`] folds the identity events of the log (users, roles, groups, walls,
//!   break-glass openings, API clients, the firm's policy) and keeps the fold current.
//! - [`credentials`] stores what cannot be an event: password hashes, TOTP secrets, token and
//!   key hashes, sessions, failure counters.
//! - [`secret`] makes and checks those secrets (Argon2id, RFC 6238, 256-bit tokens).
//! - [`Identity`] is the service over all three: [`admin`] changes the directory, [`login`]
//!   enrols users, signs them in and out and authenticates every request, [`api_clients`]
//!   registers integrations, sets their [`scopes`] and issues, rotates and revokes their keys,
//!   [`validity`] says whether the credential behind a principal still works, and
//!   [`rate_limit`] counts each API client's requests, and [`incident`] withdraws every
//!   credential of a principal, or of everyone, at once.

pub mod admin;
pub mod api_clients;
pub mod credentials;
pub mod directory;
pub mod error;
pub mod incident;
pub mod login;
pub mod principal;
pub mod rate_limit;
pub mod scopes;
pub mod secret;
pub mod validity;

use std::sync::Arc;
use std::time::Duration;

use crate::domain::DomainEvent;
use crate::domain::identity::DIRECTORY_STREAM;
use crate::log::{Actor, ExpectedVersion, StreamId};
use crate::store::{AppendError, AppendRequest, EventLog, LogOptions};
use credentials::CredentialStore;
use directory::{Directory, DirectoryHandle};
pub use error::IdentityError;
use secret::throttle::ThrottlePolicy;

/// How long sessions and enrolment tokens live.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after login, used or not.
    pub absolute: Duration,
    /// An enrolment token works this long.
    pub enrolment: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 60 * 60),
            enrolment: Duration::from_secs(72 * 60 * 60),
        }
    }
}

/// The identity service.
pub struct Identity {
    log: Arc<EventLog>,
    directory: Arc<DirectoryHandle>,
    credentials: CredentialStore,
    throttle: ThrottlePolicy,
    sessions: SessionPolicy,
    rate_limits: rate_limit::RateLimiter,
}

impl Identity {
    /// Opens the credential store and folds the directory.
    pub async fn open(
        log: Arc<EventLog>,
        options: &LogOptions,
    ) -> Result<Arc<Self>, IdentityError> {
        Identity::open_with(
            log,
            options,
            ThrottlePolicy::default(),
            SessionPolicy::default(),
        )
        .await
    }

    /// Opens with explicit throttling and session lifetimes.
    pub async fn open_with(
        log: Arc<EventLog>,
        options: &LogOptions,
        throttle: ThrottlePolicy,
        sessions: SessionPolicy,
    ) -> Result<Arc<Self>, IdentityError> {
        let credentials =
            CredentialStore::open(&options.data_dir, options.database_url.as_deref()).await?;
        let directory = DirectoryHandle::open(log.clone()).await?;
        secret::password::prepare().await;
        Ok(Arc::new(Identity {
            log,
            directory,
            credentials,
            throttle,
            sessions,
            rate_limits: rate_limit::RateLimiter::default(),
        }))
    }

    /// The directory as last folded.
    pub fn directory(&self) -> Arc<Directory> {
        self.directory.current()
    }

    pub fn directory_handle(&self) -> &Arc<DirectoryHandle> {
        &self.directory
    }

    pub fn credentials(&self) -> &CredentialStore {
        &self.credentials
    }

    /// This process's request counters of API clients (see [`rate_limit`]).
    pub fn rate_limits(&self) -> &rate_limit::RateLimiter {
        &self.rate_limits
    }

    /// Keeps the directory in step with changes other processes make.
    pub fn spawn_follower(&self) {
        self.directory.spawn_follower();
    }

    /// Appends identity events decided against `version` of the directory, then folds them.
    async fn append(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        version: Option<u64>,
        events: Vec<DomainEvent>,
    ) -> Result<Arc<Directory>, IdentityError> {
        let drafts = events
            .iter()
            .map(DomainEvent::to_draft)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| IdentityError::Internal {
                detail: "an identity event could not be encoded".into(),
            })?;
        let stream = StreamId::parse(DIRECTORY_STREAM).map_err(|_| IdentityError::Internal {
            detail: "the directory stream id is invalid".into(),
        })?;
        let mut request = AppendRequest::new(stream, actor.clone(), drafts);
        request.expected_version = match version {
            None => ExpectedVersion::Any,
            Some(0) => ExpectedVersion::NoStream,
            Some(version) => ExpectedVersion::Exactly(version),
        };
        request.request_id = request_id.map(str::to_owned);
        match self.log.append(request).await {
            Ok(_) => {}
            Err(AppendError::VersionConflict { .. }) => {
                self.directory.refresh().await?;
                return Err(IdentityError::DirectoryChanged);
            }
            Err(error) => return Err(error.into()),
        }
        Ok(self.directory.refresh().await?)
    }

    /// Runs `decide` against the current directory and appends what it returns, deciding again
    /// when another change got in first (a few times, then gives up).
    async fn change<F>(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        decide: F,
    ) -> Result<Arc<Directory>, IdentityError>
    where
        F: Fn(&Directory) -> Result<Vec<DomainEvent>, IdentityError>,
    {
        for _ in 0..5 {
            let directory = self.directory.refresh().await?;
            let events = decide(&directory)?;
            if events.is_empty() {
                return Ok(directory);
            }
            match self
                .append(actor, request_id, Some(directory.version), events)
                .await
            {
                Err(IdentityError::DirectoryChanged) => continue,
                other => return other,
            }
        }
        Err(IdentityError::DirectoryChanged)
    }
}
