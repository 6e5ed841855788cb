//! The feed: the log as it grows, for everything that follows it (subscriptions, webhooks,
//! JetStream).
//!
//! One tail task per process reads each new event from the store once, in position order, and
//! broadcasts it. It wakes when this process commits and, for appends made by other processes on
//! the same database, polls the head. Followers read history from the store, then switch to the
//! broadcast; a follower that falls behind the broadcast's bounded buffer either goes back to the
//! store ([`Feed::follow`], for Docket's own workers) or is told to resume from its position
//! ([`Feed::subscribe`], for subscribers whose pace Docket does not control).
//!
//! Both yield every event from the requested position on exactly once, in log order: positions
//! below the next one expected are skipped, and a jump past it is filled from the store.

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::{broadcast, watch};

use crate::log::Event;
use crate::store::pages::read_with_retry;
use crate::store::{Backend, EventLog, LogStore, StoreError};

/// Events read from the store at a time.
const PAGE: u32 = 500;
/// Followers reading history from the store at once: many subscribers catching up together
/// must not take every connection the appends need.
const CATCHING_UP: usize = 4;

/// How the feed runs.
#[derive(Debug, Clone, Copy)]
pub struct FeedOptions {
    /// Live events held for followers; a subscriber further behind than this is closed.
    pub buffer: usize,
    /// How often the head is read, to find what other processes appended.
    pub poll: Duration,
}

impl FeedOptions {
    /// The defaults for a backend: PostgreSQL is shared by several processes, so it is polled
    /// often; a SQLite log has other writers only in command-line tools.
    pub fn for_backend(backend: Backend) -> Self {
        FeedOptions {
            buffer: 8192,
            poll: match backend {
                Backend::Postgres => Duration::from_millis(50),
                Backend::Sqlite => Duration::from_millis(250),
            },
        }
    }
}

/// Why a subscription's stream ended.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The subscriber fell more than the buffer behind the log; it should reconnect and resume.
    #[error("the subscriber fell too far behind; resume from position {resume_from}")]
    TooSlow { resume_from: u64 },
}

/// The log as it grows.
pub struct Feed {
    store: Arc<dyn LogStore>,
    live: broadcast::Sender<Arc<Event>>,
    /// The last position broadcast.
    published: watch::Sender<u64>,
    options: FeedOptions,
    catching_up: tokio::sync::Semaphore,
}

impl Feed {
    /// A feed over `log` whose tail starts at the log's current head; [`Feed::spawn`] runs it.
    pub async fn open(log: &EventLog, options: FeedOptions) -> Result<Arc<Feed>, StoreError> {
        let head = log.head().await?.position;
        let (live, _) = broadcast::channel(options.buffer.max(16));
        Ok(Arc::new(Feed {
            store: log.store().clone(),
            live,
            published: watch::Sender::new(head),
            options,
            catching_up: tokio::sync::Semaphore::new(CATCHING_UP),
        }))
    }

    /// The last position broadcast: every event up to it has been read by the tail.
    pub fn head(&self) -> u64 {
        *self.published.borrow()
    }

    /// Watches [`Feed::head`].
    pub fn watch_head(&self) -> watch::Receiver<u64> {
        self.published.subscribe()
    }

    /// How many followers are listening live.
    pub fn listeners(&self) -> usize {
        self.live.receiver_count()
    }

    /// How many live events are held for followers that have not read them yet: an event is
    /// let go once every follower listening when it was broadcast has read it (or the buffer
    /// has moved past it).
    pub fn held(&self) -> usize {
        self.live.len()
    }

    /// Starts the tail: woken by `committed` (this process's appends) and by the poll.
    pub fn spawn(self: &Arc<Self>, committed: watch::Receiver<u64>) -> tokio::task::JoinHandle<()> {
        let feed = Arc::downgrade(self);
        let poll = self.options.poll;
        tokio::spawn(async move {
            let mut committed = committed;
            let mut backoff = Duration::from_millis(100);
            loop {
                let Some(strong) = feed.upgrade() else { return };
                match strong.read_new().await {
                    Ok(()) => backoff = Duration::from_millis(100),
                    Err(error) => {
                        tracing::warn!(%error, "the feed could not read the log; retrying");
                        drop(strong);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
                drop(strong);
                tokio::select! {
                    changed = committed.changed() => {
                        if changed.is_err() {
                            // The log was closed: keep polling for other processes' appends.
                            tokio::time::sleep(poll).await;
                        }
                    }
                    _ = tokio::time::sleep(poll) => {}
                }
            }
        })
    }

    /// Reads and broadcasts everything after the last position broadcast.
    async fn read_new(&self) -> Result<(), StoreError> {
        loop {
            let from = self.head() + 1;
            let page = read_with_retry(|| self.store.read_page(from, PAGE)).await?;
            let Some(last) = page.last().map(|event| event.position) else {
                return Ok(());
            };
            let full = page.len() == PAGE as usize;
            for event in page {
                // No listener is not an error: the event is in the store for later followers.
                let _ = self.live.send(Arc::new(event));
            }
            self.published.send_replace(last);
            crate::metrics::global().feed_held(self.held());
            if !full {
                return Ok(());
            }
        }
    }

    /// Every event from `from` on, for Docket's own workers: it never ends by itself, and
    /// falling behind only sends it back to the store.
    pub fn follow(
        self: &Arc<Self>,
        from: u64,
    ) -> impl Stream<Item = Result<Arc<Event>, StoreError>> + Send + 'static {
        futures::stream::try_unfold(
            Follower::new(self.clone(), from),
            |mut follower| async move {
                loop {
                    match follower.next().await {
                        Ok(event) => return Ok(Some((event, follower))),
                        Err(FeedError::Store(error)) => return Err(error),
                        Err(FeedError::TooSlow { .. }) => follower.back_to_store(),
                    }
                }
            },
        )
    }

    /// Every event from `from` on, for a subscriber: ends with [`FeedError::TooSlow`] when the
    /// subscriber falls more than the buffer behind while live.
    pub fn subscribe(self: &Arc<Self>, from: u64) -> Follower {
        Follower::new(self.clone(), from)
    }
}

/// Where a follower is reading from.
enum Source {
    /// History, from the store, until a read comes back empty.
    Store,
    /// The broadcast, subscribed to after the last store read began.
    Live(broadcast::Receiver<Arc<Event>>),
}

/// One reader of the feed: the next position it expects and where it reads from.
pub struct Follower {
    feed: Arc<Feed>,
    next: u64,
    source: Source,
    /// Events read from the store and not yet handed out.
    pending: std::collections::VecDeque<Arc<Event>>,
    /// A receiver subscribed before the last store read, kept to switch to live without a gap.
    standby: Option<broadcast::Receiver<Arc<Event>>>,
}

impl Follower {
    fn new(feed: Arc<Feed>, from: u64) -> Follower {
        Follower {
            feed,
            next: from.max(1),
            source: Source::Store,
            pending: Default::default(),
            standby: None,
        }
    }

    /// The position of the next event this follower will hand out.
    pub fn position(&self) -> u64 {
        self.next
    }

    fn back_to_store(&mut self) {
        self.source = Source::Store;
        self.standby = None;
    }

    /// The next event, waiting for it if the log has none yet.
    pub async fn next(&mut self) -> Result<Arc<Event>, FeedError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if event.position < self.next {
                    continue;
                }
                self.next = event.position + 1;
                return Ok(event);
            }
            match &mut self.source {
                Source::Store => {
                    // Subscribe before reading, so that whatever the tail broadcasts after this
                    // read is in the receiver: switching to it then leaves no gap.
                    if self.standby.is_none() {
                        self.standby = Some(self.feed.live.subscribe());
                    }
                    // Everything after the tail's head will come through the receiver.
                    if self.next > self.feed.head() {
                        if let Some(receiver) = self.standby.take() {
                            self.source = Source::Live(receiver);
                        }
                        continue;
                    }
                    let from = self.next;
                    let store = &self.feed.store;
                    let page = {
                        let _turn = self.feed.catching_up.acquire().await.map_err(|_| {
                            StoreError::Unavailable {
                                detail: "the feed has stopped".into(),
                            }
                        })?;
                        read_with_retry(|| store.read_page(from, PAGE)).await?
                    };
                    if page.is_empty() {
                        if let Some(receiver) = self.standby.take() {
                            self.source = Source::Live(receiver);
                        }
                    } else {
                        // A long catch-up lets the standby receiver lag; take a fresh one
                        // before the next read instead.
                        if self
                            .standby
                            .as_ref()
                            .is_some_and(|r| r.len() >= self.feed.options.buffer / 2)
                        {
                            self.standby = None;
                        }
                        self.pending.extend(page.into_iter().map(Arc::new));
                    }
                }
                Source::Live(receiver) => match receiver.recv().await {
                    Ok(event) if event.position < self.next => {}
                    Ok(event) if event.position == self.next => {
                        self.next += 1;
                        return Ok(event);
                    }
                    // Something was broadcast before this receiver existed: fill from the store.
                    Ok(_) => self.back_to_store(),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        return Err(FeedError::TooSlow {
                            resume_from: self.next,
                        });
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(FeedError::Store(StoreError::Unavailable {
                            detail: "the feed has stopped".into(),
                        }));
                    }
                },
            }
        }
    }
}
