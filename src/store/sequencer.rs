//! The sequencer: the one task per process that writes to the log.
//!
//! Appenders send prepared requests over a channel. The sequencer takes the first waiting
//! request, then everything else already waiting (up to a bound), and commits them as one
//! transaction. While it commits, new requests queue up and form the next batch, so one fsync
//! covers many appends under load while a lone writer still commits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::append::{AppendOutcome, PreparedAppend};
use super::error::{AppendError, StoreError};
use super::LogStore;
use crate::keyring::Keyring;

/// How many requests may wait for the sequencer before appenders are slowed down.
const QUEUE_DEPTH: usize = 8192;
/// Retries of a batch whose transaction failed before commit because the database was away.
const RETRIES: u32 = 5;

/// One request and where its answer goes.
pub struct Submission {
    pub append: PreparedAppend,
    pub reply: oneshot::Sender<Result<AppendOutcome, AppendError>>,
}

/// Counters of the sequencer's work since start.
#[derive(Debug, Default)]
pub struct SequencerCounters {
    batches: AtomicU64,
    requests: AtomicU64,
}

/// A snapshot of [`SequencerCounters`]: `requests / batches` is the mean group-commit size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SequencerStats {
    pub batches: u64,
    pub requests: u64,
}

impl SequencerCounters {
    pub fn snapshot(&self) -> SequencerStats {
        SequencerStats {
            batches: self.batches.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
        }
    }
}

/// Starts the sequencer on the current runtime and returns its inbox and counters.
pub fn start(
    store: Arc<dyn LogStore>,
    keys: Arc<Keyring>,
    max_batch_events: usize,
) -> (mpsc::Sender<Submission>, Arc<SequencerCounters>) {
    let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
    let counters = Arc::new(SequencerCounters::default());
    tokio::spawn(run(store, keys, receiver, max_batch_events.max(1), counters.clone()));
    (sender, counters)
}

async fn run(
    store: Arc<dyn LogStore>,
    keys: Arc<Keyring>,
    mut inbox: mpsc::Receiver<Submission>,
    max_batch_events: usize,
    counters: Arc<SequencerCounters>,
) {
    while let Some(first) = inbox.recv().await {
        // Gather what is already waiting: that is the group commit.
        let mut events = first.append.events.len();
        let mut batch = vec![first];
        while events < max_batch_events {
            match inbox.try_recv() {
                Ok(next) => {
                    events += next.append.events.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }

        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters.requests.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let (appends, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|s| (s.append, s.reply)).unzip();
        let started = std::time::Instant::now();
        let committed = commit_with_retry(store.as_ref(), &appends, &keys).await;
        tracing::debug!(requests = appends.len(), micros = started.elapsed().as_micros() as u64, "batch");
        match committed {
            Ok(outcome) => {
                for (reply, result) in replies.into_iter().zip(outcome.outcomes) {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, requests = appends.len(), "batch not committed");
                for reply in replies {
                    let _ = reply.send(Err(AppendError::Store(error.clone())));
                }
            }
        }
    }
}

/// Commits a batch, retrying only failures that provably left nothing behind.
async fn commit_with_retry(
    store: &dyn LogStore,
    batch: &[PreparedAppend],
    keys: &Keyring,
) -> Result<super::plan::BatchOutcome, StoreError> {
    let mut attempt = 0;
    loop {
        match store.commit_batch(batch, keys).await {
            Err(error) if error.is_transient() && attempt < RETRIES => {
                attempt += 1;
                let pause = Duration::from_millis(50 << attempt);
                tracing::warn!(error = %error, attempt, "database unavailable; retrying batch");
                tokio::time::sleep(pause).await;
            }
            result => return result,
        }
    }
}
