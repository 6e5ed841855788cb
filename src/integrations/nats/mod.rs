//! Publishing the log to NATS JetStream, so that other systems can consume it with any NATS
//! client. Optional: on when `nats_url` is configured.
//!
//! The publisher makes sure the stream exists (see [`stream_config`]), reads back where it
//! ends (the last message's `Docket-Position` header), and publishes every later event of the
//! log in order, one message per event, on a subject naming its stream and type
//! ([`subjects`]), with the event id as `Nats-Msg-Id` and the event exactly as stored as the
//! body. Several messages are in flight at once; their acks are checked in order, and the
//! position counts as published only once JetStream has acked it.
//!
//! Nothing here ever holds up an append: the publisher only reads the log. When NATS is
//! unreachable it tries again with exponential backoff (0.5 s doubling to 30 s, with jitter),
//! logging at `warn` with the servers' scheme, host and port only. With several Docket
//! processes on one database, one publishes and the others wait to take over.

mod jetstream;
mod pipeline;
mod settings;
mod source;
pub mod subjects;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::integrations::feed::Feed;
use crate::store::leadership::{LeaderLock, LockError};
use crate::store::{EventLog, LogOptions, StoreError};

pub use jetstream::{DUPLICATE_WINDOW, stream_config};
pub use settings::{DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX, NatsConfigError, NatsSettings};

/// Messages in flight (published, ack not yet checked) by default.
pub const DEFAULT_WINDOW: usize = 256;
/// How long JetStream API requests and publish acks are waited for.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Sessions in a row that end because the stream moved under the publisher, with no
/// progress, before [`NatsPublisher::publish_until`] gives up.
const RESYNC_ATTEMPTS: u32 = 20;
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Why publishing stopped. Messages never include credentials.
#[derive(Debug, Error)]
pub enum NatsError {
    #[error("cannot connect to NATS at {servers}: {detail}")]
    Connect { servers: String, detail: String },
    #[error("JetStream stream {stream}: {detail}")]
    Stream { stream: String, detail: String },
    #[error("stream {stream} does not hold this log: {detail}")]
    ForeignStream { stream: String, detail: String },
    #[error("publishing the event at position {position} failed: {detail}")]
    Publish { position: u64, detail: String },
    #[error("the log was read out of order: position {expected} expected, {found} read")]
    OutOfOrder { expected: u64, found: u64 },
    #[error("the NATS publisher lock cannot be taken: {0}")]
    Lock(#[from] LockError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stream did not end where the publisher expected (another publisher, or an event
    /// JetStream already had): the end of the stream is to be read again.
    #[error("the stream moved on under the publisher too many times in a row")]
    Resync,
}

/// What a publisher is doing, for whoever watches it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PublisherStatus {
    /// This publisher holds the lock and publishes.
    pub leading: bool,
    /// The last position known to be in the stream (0 before any).
    pub published: u64,
}

/// What [`NatsPublisher::publish_until`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PublishReport {
    /// Events stored in the stream by this run.
    pub published: u64,
    /// Events JetStream already had (dropped by their message id).
    pub duplicates: u64,
    /// The last position known to be in the stream afterwards.
    pub last_position: u64,
}

/// Publishes one log to one JetStream stream.
pub struct NatsPublisher {
    settings: NatsSettings,
    log: Arc<EventLog>,
    /// Where new events come from; without a feed, the store is polled.
    feed: Option<Arc<Feed>>,
    lock: LeaderLock,
    window: usize,
    published: AtomicU64,
    status: watch::Sender<PublisherStatus>,
}

/// Starts publishing the log to NATS JetStream in the background when `nats_url` is
/// configured (`None` otherwise), taking new events from `feed`. The task runs until it is
/// aborted.
pub async fn spawn(
    nats: Option<NatsSettings>,
    log_options: &LogOptions,
    log: Arc<EventLog>,
    feed: Arc<Feed>,
) -> Option<JoinHandle<()>> {
    let publisher = NatsPublisher::new(nats?, log, log_options).with_feed(feed);
    Some(tokio::spawn(Arc::new(publisher).run()))
}

impl NatsPublisher {
    /// A publisher of `log` (opened with `log_options`) to the stream `settings` name.
    pub fn new(settings: NatsSettings, log: Arc<EventLog>, log_options: &LogOptions) -> Self {
        let lock = LeaderLock::for_log(log_options, &format!("nats-publisher-{}", settings.stream));
        NatsPublisher {
            settings,
            log,
            feed: None,
            lock,
            window: DEFAULT_WINDOW,
            published: AtomicU64::new(0),
            status: watch::Sender::new(PublisherStatus::default()),
        }
    }

    /// Takes new events from the process's feed instead of polling the store.
    pub fn with_feed(mut self, feed: Arc<Feed>) -> Self {
        self.feed = Some(feed);
        self
    }

    /// Sets how many messages may be in flight at once (at least 1).
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = window.max(1);
        self
    }

    /// Where this publisher publishes.
    pub fn settings(&self) -> &NatsSettings {
        &self.settings
    }

    /// Follows what the publisher is doing.
    pub fn status(&self) -> watch::Receiver<PublisherStatus> {
        self.status.subscribe()
    }

    /// Publishes until the event at position `head` is in the stream, then returns. Takes
    /// the publisher lock for the while (waiting for another holder), and fails at once if
    /// NATS or the lock cannot be reached.
    pub async fn publish_until(&self, head: u64) -> Result<PublishReport, NatsError> {
        let _leadership = self.lock.acquire().await?;
        let js = self.connect().await?;
        let mut report = PublishReport::default();
        let mut attempts = 0;
        while attempts < RESYNC_ATTEMPTS {
            let before = self.published();
            match pipeline::session(self, &js, Some(head), &mut report).await {
                Ok(()) => {
                    report.last_position = self.published();
                    return Ok(report);
                }
                Err(NatsError::Resync) if self.published() > before => attempts = 0,
                Err(NatsError::Resync) => attempts += 1,
                Err(error) => return Err(error),
            }
        }
        Err(NatsError::Resync)
    }

    /// Publishes for as long as it runs: waits for the lock, publishes while it holds it,
    /// and waits again if it loses it. Never returns.
    pub async fn run(self: Arc<Self>) {
        let mut backoff = Backoff::new();
        loop {
            let mut leadership = match self.lock.acquire().await {
                Ok(leadership) => leadership,
                Err(error) => {
                    let wait = backoff.next_wait();
                    tracing::warn!(
                        stream = %self.settings.stream,
                        error = %error,
                        retry_in_ms = wait.as_millis() as u64,
                        "cannot take the NATS publisher lock"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            self.status.send_modify(|status| status.leading = true);
            tracing::info!(
                stream = %self.settings.stream,
                servers = %self.settings.servers_shown(),
                "publishing the log to NATS JetStream"
            );
            tokio::select! {
                () = self.lead(&mut backoff) => {}
                () = leadership.lost() => tracing::warn!(
                    stream = %self.settings.stream,
                    "lost the NATS publisher lock (its database connection failed); \
                     waiting to take it again"
                ),
            }
            self.status.send_modify(|status| status.leading = false);
        }
    }

    /// Publishes session after session, reconnecting and backing off on failures.
    async fn lead(&self, backoff: &mut Backoff) {
        let mut js = None;
        let mut report = PublishReport::default();
        loop {
            let before = self.published();
            let result = match js.take() {
                Some(context) => {
                    let result = pipeline::session(self, &context, None, &mut report).await;
                    js = Some(context);
                    result
                }
                None => self.connect().await.map(|context| js = Some(context)),
            };
            let progressed = self.published() > before;
            if progressed {
                backoff.reset();
            }
            match result {
                Ok(()) => {}
                Err(NatsError::Resync) if progressed => {}
                // The stream keeps moving under this publisher: pause before reading it again.
                Err(NatsError::Resync) => tokio::time::sleep(backoff.next_wait()).await,
                Err(error) => {
                    let wait = backoff.next_wait();
                    tracing::warn!(
                        stream = %self.settings.stream,
                        servers = %self.settings.servers_shown(),
                        error = %error,
                        retry_in_ms = wait.as_millis() as u64,
                        "publishing the log to NATS failed; trying again"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn connect(&self) -> Result<async_nats::jetstream::Context, NatsError> {
        let client = self
            .settings
            .connect()
            .await
            .map_err(|error| NatsError::Connect {
                servers: self.settings.servers_shown(),
                detail: error.to_string(),
            })?;
        Ok(async_nats::jetstream::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .build(client))
    }

    fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// Forgets what was published: the stream is new.
    fn restart(&self) {
        self.published.store(0, Ordering::Release);
        self.status.send_modify(|status| status.published = 0);
    }

    /// Records that the event at `position` is in the stream.
    fn advance(&self, position: u64) {
        let previous = self.published.fetch_max(position, Ordering::AcqRel);
        if position > previous {
            self.status
                .send_modify(|status| status.published = status.published.max(position));
        }
    }
}

/// Exponential backoff with +-20% jitter.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff {
            next: BACKOFF_FIRST,
        }
    }

    fn reset(&mut self) {
        self.next = BACKOFF_FIRST;
    }

    fn next_wait(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        let jitter = getrandom::u32().unwrap_or(0) % 401;
        base * (800 + jitter) / 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds_with_jitter_and_resets() {
        let mut backoff = Backoff::new();
        let waits: Vec<Duration> = (0..10).map(|_| backoff.next_wait()).collect();
        assert!(waits[0] >= Duration::from_millis(400) && waits[0] <= Duration::from_millis(600));
        assert!(waits[1] >= Duration::from_millis(800) && waits[1] <= Duration::from_millis(1200));
        assert!(waits[9] >= Duration::from_secs(24) && waits[9] <= Duration::from_secs(36));
        backoff.reset();
        assert!(backoff.next_wait() <= Duration::from_millis(600));
    }
}
