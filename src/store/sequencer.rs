//! The sequencer: the one task per process that writes to the log.
//!
//! Appenders send prepared requests over a channel. The sequencer takes everything waiting (up
//! to a bound) as one batch and commits it as one transaction (group commit), so one fsync
//! covers many appends under load while a lone writer still commits at once.
//!
//! It also pipelines: while batch k is being written, batch k+1 is planned (hashed and signed)
//! from the state batch k will leave. That is safe because every write checks that the log ends
//! where its plan assumed (see [`LogStore::write_planned`]). If a write finds the log moved (a
//! second process appended) or fails, the sequencer forgets its state, and batch k and any batch
//! planned after it are planned again under the log lock.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::append::{AppendOutcome, PreparedAppend};
use super::error::{AppendError, StoreError};
use super::plan::{BatchPlan, IdempotencyRecord, StreamTip, plan_from_state};
use super::sqlite::batch_keys;
use super::{LogHead, LogStore, WriteOutcome};
use crate::keyring::Keyring;

/// How many requests may wait for the sequencer before appenders are slowed down.
const QUEUE_DEPTH: usize = 8192;
/// Retries of a batch whose transaction failed before commit because the database was away.
const RETRIES: u32 = 5;
/// Stream tips remembered at most; beyond this the memory starts over (a miss costs one read).
const MAX_CACHED_STREAMS: usize = 100_000;

type Reply = oneshot::Sender<Result<AppendOutcome, AppendError>>;

/// One request and where its answer goes.
pub struct Submission {
    pub append: PreparedAppend,
    pub reply: Reply,
}

/// Counters of the sequencer's work since start.
#[derive(Debug, Default)]
pub struct SequencerCounters {
    batches: AtomicU64,
    requests: AtomicU64,
    replanned: AtomicU64,
}

/// A snapshot of [`SequencerCounters`]: `requests / batches` is the mean group-commit size;
/// `replanned` counts batches planned again under the lock because the log had moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SequencerStats {
    pub batches: u64,
    pub requests: u64,
    pub replanned: u64,
}

impl SequencerCounters {
    pub fn snapshot(&self) -> SequencerStats {
        SequencerStats {
            batches: self.batches.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            replanned: self.replanned.load(Ordering::Relaxed),
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
    let sequencer = Sequencer {
        store,
        keys,
        inbox: receiver,
        max_batch_events: max_batch_events.max(1),
        counters: counters.clone(),
        head: None,
        tips: HashMap::new(),
        epoch: 0,
    };
    tokio::spawn(sequencer.run());
    (sender, counters)
}

/// Requests committed together, and where their answers go.
#[derive(Default)]
struct Batch {
    appends: Vec<PreparedAppend>,
    replies: Vec<Reply>,
}

/// A batch planned outside the lock, from the head it expects to extend.
struct Planned {
    plan: BatchPlan,
    expected: LogHead,
    /// The sequencer's epoch when planned; a failure since then voids the plan.
    epoch: u64,
}

/// A batch being written.
struct Flight {
    replies: Vec<Reply>,
    appends: Vec<PreparedAppend>,
    /// Idempotency records the write will make, visible to the next batch's planning.
    idempotency: Vec<IdempotencyRecord>,
    write: JoinHandle<(BatchPlan, Result<WriteOutcome, StoreError>)>,
}

struct Sequencer {
    store: Arc<dyn LogStore>,
    keys: Arc<Keyring>,
    inbox: mpsc::Receiver<Submission>,
    max_batch_events: usize,
    counters: Arc<SequencerCounters>,
    /// The head the log will have once everything planned so far is written; `None` when
    /// unknown (at start, and after any failed or refused write).
    head: Option<LogHead>,
    /// Stream tips matching `head`, for the streams recently written.
    tips: HashMap<String, StreamTip>,
    /// Incremented whenever the remembered state is dropped.
    epoch: u64,
}

impl Sequencer {
    async fn run(mut self) {
        let mut flight: Option<Flight> = None;
        loop {
            // The next batch: whatever waits; when nothing is in flight, wait for a request.
            let batch = if flight.is_some() {
                self.gather(None)
            } else {
                match self.inbox.recv().await {
                    Some(first) => self.gather(Some(first)),
                    None => break,
                }
            };

            // Memory is trimmed only between flights: the tips of a batch in flight must stay.
            if flight.is_none() && self.tips.len() > MAX_CACHED_STREAMS {
                self.tips.clear();
            }

            // Plan it now, while the batch in flight is being written.
            let in_flight_keys = flight.as_ref().map(|f| f.idempotency.as_slice()).unwrap_or(&[]);
            let planned = if batch.appends.is_empty() {
                None
            } else {
                self.plan_outside_lock(&batch.appends, in_flight_keys).await
            };

            // Land the flight; a refused or failed write invalidates what was planned after it.
            if let Some(landing) = flight.take() {
                self.land(landing).await;
            }
            if batch.appends.is_empty() {
                continue;
            }
            self.counters.batches.fetch_add(1, Ordering::Relaxed);
            self.counters.requests.fetch_add(batch.appends.len() as u64, Ordering::Relaxed);
            match planned {
                Some(planned) if planned.epoch == self.epoch => {
                    flight = Some(self.launch(batch, planned));
                }
                _ => self.commit_under_lock(batch).await,
            }
        }
        if let Some(landing) = flight.take() {
            self.land(landing).await;
        }
    }

    /// Takes `first` and whatever else is already waiting, up to the batch bound.
    fn gather(&mut self, first: Option<Submission>) -> Batch {
        let mut batch = Batch::default();
        let mut events = 0;
        let mut next = first.or_else(|| self.inbox.try_recv().ok());
        while let Some(submission) = next {
            events += submission.append.events.len();
            batch.appends.push(submission.append);
            batch.replies.push(submission.reply);
            if events >= self.max_batch_events {
                break;
            }
            next = self.inbox.try_recv().ok();
        }
        batch
    }

    /// Plans a batch from the remembered state; `None` when there is none to plan from.
    async fn plan_outside_lock(
        &mut self,
        appends: &[PreparedAppend],
        in_flight_keys: &[IdempotencyRecord],
    ) -> Option<Planned> {
        let head = self.head.clone()?;

        // Read only what memory lacks: tips of streams not written lately, and the batch's
        // idempotency keys (those of the batch in flight are not in the database yet).
        let (streams, keys) = batch_keys(appends);
        let missing: Vec<String> = streams.into_iter().filter(|s| !self.tips.contains_key(s)).collect();
        let context = match self.store.load_context(&missing, &keys).await {
            Ok(context) => context,
            Err(_) => return None,
        };
        self.remember_tips(context.tips);
        let mut idempotency = context.idempotency;
        for record in in_flight_keys {
            idempotency.insert(record.key.clone(), record.clone());
        }
        let tips = appends
            .iter()
            .filter_map(|a| self.tips.get(a.stream.as_str()).map(|tip| (a.stream.as_str().to_owned(), *tip)))
            .collect();

        let plan = plan_from_state(head.clone(), tips, idempotency, &self.keys, appends).ok()?;
        if let Some(next) = &plan.head {
            self.head = Some(next.clone());
        }
        self.remember_tips(plan.stream_tips.clone());
        Some(Planned { plan, expected: head, epoch: self.epoch })
    }

    /// Starts writing a planned batch in its own task.
    fn launch(&self, batch: Batch, planned: Planned) -> Flight {
        let store = self.store.clone();
        let idempotency = planned.plan.idempotency.clone();
        let Planned { plan, expected, .. } = planned;
        let write = tokio::spawn(async move {
            let result = if plan.head.is_some() {
                store.write_planned(&expected, &plan).await
            } else {
                Ok(WriteOutcome::Committed)
            };
            (plan, result)
        });
        Flight { replies: batch.replies, appends: batch.appends, idempotency, write }
    }

    /// Waits for a flight's write and answers its requests.
    async fn land(&mut self, flight: Flight) {
        let Flight { replies, appends, write, .. } = flight;
        match write.await {
            Ok((plan, Ok(WriteOutcome::Committed))) => answer(replies, plan.outcomes),
            Ok((_, Ok(WriteOutcome::Stale))) => {
                tracing::debug!("the log moved under a planned batch; planning again under the lock");
                self.forget();
                self.counters.replanned.fetch_add(1, Ordering::Relaxed);
                self.commit_under_lock(Batch { appends, replies }).await;
            }
            Ok((_, Err(error))) if error.is_transient() => {
                self.forget();
                self.commit_under_lock(Batch { appends, replies }).await;
            }
            Ok((_, Err(error))) => {
                tracing::warn!(error = %error, requests = replies.len(), "batch not committed");
                self.forget();
                fail_all(replies, AppendError::Store(error));
            }
            Err(_) => {
                self.forget();
                let error = StoreError::Database { detail: "write task failed".into() };
                fail_all(replies, AppendError::Store(error));
            }
        }
    }

    /// Commits a batch while holding the log lock, retrying only failures that provably left
    /// nothing behind, and answers its requests.
    async fn commit_under_lock(&mut self, batch: Batch) {
        let mut attempt = 0;
        let result = loop {
            match self.store.commit_locked(&batch.appends, &self.keys).await {
                Err(error) if error.is_transient() && attempt < RETRIES => {
                    attempt += 1;
                    tracing::warn!(error = %error, attempt, "database unavailable; retrying batch");
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                result => break result,
            }
        };
        match result {
            Ok((plan, state)) => {
                self.head = Some(state.head);
                self.remember_tips(state.tips);
                answer(batch.replies, plan.outcomes);
            }
            Err(error) => {
                tracing::warn!(error = %error, requests = batch.replies.len(), "batch not committed");
                self.forget();
                fail_all(batch.replies, AppendError::Store(error));
            }
        }
    }

    fn remember_tips(&mut self, tips: HashMap<String, StreamTip>) {
        self.tips.extend(tips);
    }

    fn forget(&mut self) {
        self.head = None;
        self.tips.clear();
        self.epoch += 1;
    }
}

fn answer(replies: Vec<Reply>, outcomes: Vec<Result<AppendOutcome, AppendError>>) {
    for (reply, outcome) in replies.into_iter().zip(outcomes) {
        let _ = reply.send(outcome);
    }
}

fn fail_all(replies: Vec<Reply>, error: AppendError) {
    for reply in replies {
        let _ = reply.send(Err(error.clone()));
    }
}
