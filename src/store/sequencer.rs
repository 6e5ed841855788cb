//! The sequencer: the one task per process that writes to the log.
//!
//! Appenders send prepared requests over a channel. The sequencer takes everything waiting (up
//! to a bound) as one batch and commits it as one transaction (group commit), so one fsync
//! covers many appends under load while a lone writer still commits at once.
//!
//! It also pipelines: while one batch is being written, requests that arrive are planned
//! (positions, links, hashes, signatures) from the state that write will leave, and everything
//! planned meanwhile is written together as the next batch the moment the database is free. So
//! signing overlaps the database's work, and batches grow with the load. That is safe because
//! every write checks that the log ends where its plan assumed (see
//! [`LogStore::write_planned`]). If a write finds the log moved (a second process appended) or
//! fails, the sequencer forgets its state, and what was planned after it is planned again under
//! the log lock.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::append::{AppendOutcome, PreparedAppend};
use super::error::{AppendError, StoreError};
use super::plan::{
    BatchPlan, IdempotencyRecord, StreamTip, batch_keys, sign_events, unsigned_from_state,
};
use super::{LogHead, LogStore, WriteOutcome};
use crate::keyring::Keyring;
use crate::log::Event;

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
    writes: AtomicU64,
    requests: AtomicU64,
    replanned: AtomicU64,
}

/// A snapshot of [`SequencerCounters`]: `requests / writes` is the mean group-commit size;
/// `replanned` counts writes refused because the log had moved, then planned under the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SequencerStats {
    pub writes: u64,
    pub requests: u64,
    pub replanned: u64,
}

impl SequencerCounters {
    pub fn snapshot(&self) -> SequencerStats {
        SequencerStats {
            writes: self.writes.load(Ordering::Relaxed),
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
        uncommitted_keys: HashMap::new(),
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

/// A batch planned outside the lock, from the head it expects to extend. Its events are being
/// signed on the signing threads and arrive through `signed`.
struct Planned {
    plan: BatchPlan,
    signed: oneshot::Receiver<Vec<Event>>,
    expected: LogHead,
    /// The sequencer's epoch when planned; a failure since then voids the plan.
    epoch: u64,
}

/// Batches planned while a write was in flight, merged into the next write.
#[derive(Default)]
struct Pending {
    batch: Batch,
    plan: BatchPlan,
    /// The pieces' events, in order, as their signing finishes.
    signed: Vec<oneshot::Receiver<Vec<Event>>>,
    expected: Option<LogHead>,
    epoch: u64,
    events: usize,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.batch.appends.is_empty()
    }

    /// Appends a batch planned from the state this pending write will leave.
    fn push(&mut self, planned: Planned, batch: Batch) {
        if self.expected.is_none() {
            self.expected = Some(planned.expected);
            self.epoch = planned.epoch;
        }
        let Planned { plan, signed, .. } = planned;
        self.signed.push(signed);
        self.events += batch.appends.iter().map(|a| a.events.len()).sum::<usize>();
        self.batch.appends.extend(batch.appends);
        self.batch.replies.extend(batch.replies);
        self.plan.stream_tips.extend(plan.stream_tips);
        self.plan.idempotency.extend(plan.idempotency);
        self.plan.data_keys.extend(plan.data_keys);
        self.plan.outcomes.extend(plan.outcomes);
        if plan.head.is_some() {
            self.plan.head = plan.head;
        }
    }
}

/// A batch being written.
struct Flight {
    batch: Batch,
    write: JoinHandle<(BatchPlan, Result<WriteOutcome, StoreError>)>,
}

type Landed = Result<(BatchPlan, Result<WriteOutcome, StoreError>), tokio::task::JoinError>;

/// Waits for the flight's write, or forever when nothing is in flight.
async fn wait_for(flight: &mut Option<Flight>) -> Landed {
    match flight {
        Some(flight) => (&mut flight.write).await,
        None => std::future::pending().await,
    }
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
    /// Idempotency records planned but not yet known to be in the database.
    uncommitted_keys: HashMap<String, IdempotencyRecord>,
    /// Incremented whenever the remembered state is dropped.
    epoch: u64,
}

impl Sequencer {
    async fn run(mut self) {
        let mut flight: Option<Flight> = None;
        let mut pending = Pending::default();
        let mut open = true;
        while open || flight.is_some() || !pending.is_empty() {
            let room = self.max_batch_events.saturating_sub(pending.events);
            tokio::select! {
                biased;

                // The write in flight finished: answer it, then write what was planned meanwhile.
                landed = wait_for(&mut flight) => {
                    if let Some(landing) = flight.take() {
                        self.land(landing.batch, landed).await;
                    }
                    flight = self.launch_pending(&mut pending).await;
                }

                // New requests: plan them now, while the database works on the flight.
                first = self.inbox.recv(), if open && room > 0 => {
                    let Some(first) = first else {
                        open = false;
                        continue;
                    };
                    let batch = self.gather(first, room);
                    self.counters.requests.fetch_add(batch.appends.len() as u64, Ordering::Relaxed);
                    match self.plan_outside_lock(&batch.appends, flight.is_some()).await {
                        Some(planned) => {
                            pending.push(planned, batch);
                            if flight.is_none() {
                                flight = self.launch_pending(&mut pending).await;
                            }
                        }
                        None => {
                            // Nothing to plan from (or planning failed): let everything before
                            // land, forget what was planned on top of it, and lock.
                            if let Some(landing) = flight.take() {
                                let landed = landing.write.await;
                                self.land(landing.batch, landed).await;
                            }
                            self.forget();
                            let before = std::mem::take(&mut pending);
                            if !before.is_empty() {
                                self.commit_under_lock(before.batch).await;
                            }
                            self.commit_under_lock(batch).await;
                        }
                    }
                }
            }
        }
    }

    /// Starts writing what is pending, if its plan still holds; otherwise commits it under
    /// the lock. Returns the new flight, if any.
    async fn launch_pending(&mut self, pending: &mut Pending) -> Option<Flight> {
        if pending.is_empty() {
            // Nothing is in flight or planned: everything remembered is in the database, and
            // memory can be trimmed safely.
            self.uncommitted_keys.clear();
            if self.tips.len() > MAX_CACHED_STREAMS {
                self.tips.clear();
            }
            return None;
        }
        let next = std::mem::take(pending);
        let expected = match next.expected {
            Some(expected) if next.epoch == self.epoch => expected,
            _ => {
                self.commit_under_lock(next.batch).await;
                return None;
            }
        };
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        let store = self.store.clone();
        let mut plan = next.plan;
        let signed = next.signed;
        let write = tokio::spawn(async move {
            for piece in signed {
                match piece.await {
                    Ok(events) => plan.events.extend(events),
                    Err(_) => {
                        let error = StoreError::Database {
                            detail: "signing failed".into(),
                        };
                        return (plan, Err(error));
                    }
                }
            }
            let result = if plan.head.is_some() {
                store.write_planned(&expected, &plan).await
            } else {
                Ok(WriteOutcome::Committed)
            };
            (plan, result)
        });
        Some(Flight {
            batch: next.batch,
            write,
        })
    }

    /// Takes `first` and whatever else is already waiting, up to `room` events.
    fn gather(&mut self, first: Submission, room: usize) -> Batch {
        let mut batch = Batch::default();
        let mut events = 0;
        let mut next = Some(first);
        while let Some(submission) = next {
            events += submission.append.events.len();
            batch.appends.push(submission.append);
            batch.replies.push(submission.reply);
            if events >= room {
                break;
            }
            next = self.inbox.try_recv().ok();
        }
        batch
    }

    /// Plans a batch from the remembered state; `None` when there is none to plan from.
    /// `overlap` says a write is in flight, so signing can run beside it.
    async fn plan_outside_lock(
        &mut self,
        appends: &[PreparedAppend],
        overlap: bool,
    ) -> Option<Planned> {
        let head = self.head.clone()?;

        // Read only what memory lacks: tips of streams not written lately, and idempotency
        // keys (those planned but not yet written are in memory, not in the database).
        let (streams, keys) = batch_keys(appends);
        let missing: Vec<String> = streams
            .into_iter()
            .filter(|s| !self.tips.contains_key(s))
            .collect();
        let context = self.store.load_context(&missing, &keys).await.ok()?;
        self.tips.extend(context.tips);
        let mut idempotency = context.idempotency;
        for key in &keys {
            if let Some(record) = self.uncommitted_keys.get(key) {
                idempotency.insert(key.clone(), record.clone());
            }
        }
        let tips = appends
            .iter()
            .filter_map(|a| {
                self.tips
                    .get(a.stream.as_str())
                    .map(|tip| (a.stream.as_str().to_owned(), *tip))
            })
            .collect();

        let unsigned =
            unsigned_from_state(head.clone(), tips, idempotency, &self.keys, appends).ok()?;
        let (plan, mut events, signers) = unsigned.into_parts();
        if let Some(next) = &plan.head {
            self.head = Some(next.clone());
        }
        self.tips.extend(
            plan.stream_tips
                .iter()
                .map(|(stream, tip)| (stream.clone(), *tip)),
        );
        for record in &plan.idempotency {
            self.uncommitted_keys
                .insert(record.key.clone(), record.clone());
        }
        // With a write in flight, sign on the signing threads while the sequencer goes on
        // gathering and planning; otherwise the batch is written at once, so sign right here.
        let (done, signed) = oneshot::channel();
        if overlap {
            rayon::spawn(move || {
                sign_events(&mut events, &signers);
                let _ = done.send(events);
            });
        } else {
            sign_events(&mut events, &signers);
            let _ = done.send(events);
        }
        Some(Planned {
            plan,
            signed,
            expected: head,
            epoch: self.epoch,
        })
    }

    /// Answers a landed write's requests; a refused or failed write is redone under the lock.
    async fn land(&mut self, batch: Batch, landed: Landed) {
        match landed {
            Ok((plan, Ok(WriteOutcome::Committed))) => answer(batch.replies, plan.outcomes),
            Ok((_, Ok(WriteOutcome::Stale))) => {
                tracing::debug!(
                    "the log moved under a planned batch; planning again under the lock"
                );
                self.forget();
                self.counters.replanned.fetch_add(1, Ordering::Relaxed);
                self.commit_under_lock(batch).await;
            }
            Ok((_, Err(error))) if error.is_transient() => {
                self.forget();
                self.commit_under_lock(batch).await;
            }
            Ok((plan, Err(error @ StoreError::CommitOutcomeUnknown { .. }))) => {
                // The connection broke during the write. The plan's last hash says which:
                // present at its position means committed, absent means nothing was written.
                self.forget();
                match self.was_committed(&plan).await {
                    Some(true) => answer(batch.replies, plan.outcomes),
                    Some(false) => self.commit_under_lock(batch).await,
                    None => {
                        tracing::warn!(error = %error, requests = batch.replies.len(), "commit outcome unknown");
                        fail_all(batch.replies, AppendError::Store(error));
                    }
                }
            }
            Ok((_, Err(error))) => {
                tracing::warn!(error = %error, requests = batch.replies.len(), "batch not committed");
                self.forget();
                fail_all(batch.replies, AppendError::Store(error));
            }
            Err(_) => {
                self.forget();
                let error = StoreError::Database {
                    detail: "write task failed".into(),
                };
                fail_all(batch.replies, AppendError::Store(error));
            }
        }
    }

    /// Commits a batch while holding the log lock, retrying only failures that provably left
    /// nothing behind, and answers its requests.
    async fn commit_under_lock(&mut self, batch: Batch) {
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
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
                self.tips.extend(state.tips);
                answer(batch.replies, plan.outcomes);
            }
            Err(error) => {
                tracing::warn!(error = %error, requests = batch.replies.len(), "batch not committed");
                self.forget();
                fail_all(batch.replies, AppendError::Store(error));
            }
        }
    }

    /// Whether a plan whose write broke off is in the log: the event at its last position
    /// carries its last hash. `None` when the database cannot tell us.
    async fn was_committed(&self, plan: &BatchPlan) -> Option<bool> {
        let Some(last) = plan.events.last() else {
            return Some(true);
        };
        for attempt in 0..=RETRIES {
            match self.store.read_page(last.position, 1).await {
                Ok(page) => {
                    return Some(
                        page.first()
                            .is_some_and(|e| e.position == last.position && e.hash == last.hash),
                    );
                }
                Err(error) if error.is_transient() && attempt < RETRIES => {
                    tokio::time::sleep(Duration::from_millis(50 << (attempt + 1))).await;
                }
                Err(_) => return None,
            }
        }
        None
    }

    fn forget(&mut self) {
        self.head = None;
        self.tips.clear();
        self.uncommitted_keys.clear();
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
