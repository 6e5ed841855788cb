//! The projector: feeds the log to every projection, in order, exactly once.
//!
//! One task per process reads a page of the log from the lowest checkpoint of the healthy
//! projections, decodes each event once, and applies it to every projection still behind it,
//! one transaction per projection per page. The transaction ends by moving the checkpoint with
//! a compare-and-set; if another process (or a rebuild) moved it first, the work is rolled back
//! and the next round starts from the new checkpoint.
//!
//! A projection whose `apply` fails on an event is marked failed at that event, with the reason,
//! after the events before it are kept; the others go on. Database outages are not failures:
//! the round is retried.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use super::apply::{ApplyFailure, Decoded, PAGE, apply_in_transaction, decode_page};
use super::rebuild::{RebuildError, RebuildReport};
use super::state::{self, ProjectionStatus, StateRow};
use super::{Projection, ReadDb};
use crate::store::{LogStore, StoreError};
use crate::vault::Vault;

/// How often the projector looks for events appended by other processes.
const POLL: Duration = Duration::from_millis(200);

/// How far the projections have got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Every healthy projection has applied the log up to here.
    pub reached: u64,
    /// Projections stopped by a failure.
    pub failed: Vec<String>,
}

/// What waiting for a position came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Every healthy projection has the position; `failed` lists those that are stopped.
    Reached {
        failed: Vec<String>,
    },
    TimedOut,
}

pub struct Projector {
    db: ReadDb,
    log: Arc<dyn LogStore>,
    /// Opens the events' client data while they are folded, and computes blind indexes.
    vault: Arc<Vault>,
    projections: Vec<Arc<dyn Projection>>,
    progress: watch::Sender<Progress>,
    wake: Notify,
    /// Events applied per projection since its tables' statistics were last refreshed.
    since_analyze: std::sync::Mutex<std::collections::HashMap<&'static str, u64>>,
}

/// Events after which a projection's tables get fresh planner statistics: a read model filled
/// from nothing would otherwise be planned as if empty.
const ANALYZE_EVERY: u64 = 100_000;

impl Projector {
    /// Prepares every projection's tables and state; projections whose definition changed
    /// since their tables were built are rebuilt before this returns.
    pub async fn open(
        db: ReadDb,
        log: Arc<dyn LogStore>,
        vault: Arc<Vault>,
    ) -> Result<Arc<Self>, StoreError> {
        let projections = super::all();
        let projector = Arc::new(Projector {
            db,
            log,
            vault,
            projections,
            progress: watch::Sender::new(Progress::default()),
            wake: Notify::new(),
            since_analyze: Default::default(),
        });
        for projection in &projector.projections {
            let row = state::ensure(&projector.db, projection.as_ref()).await?;
            if row.definition != projection.definition() {
                tracing::info!(
                    projection = projection.name(),
                    "definition changed; rebuilding"
                );
                if let Err(error) = projector.rebuild(projection.as_ref()).await {
                    tracing::error!(projection = projection.name(), %error, "rebuild failed");
                }
            }
        }
        Ok(projector)
    }

    pub fn db(&self) -> &ReadDb {
        &self.db
    }

    pub fn log(&self) -> &Arc<dyn LogStore> {
        &self.log
    }

    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    pub fn projections(&self) -> &[Arc<dyn Projection>] {
        &self.projections
    }

    /// Starts the background task that keeps the projections up to date.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let projector = self.clone();
        tokio::spawn(async move { projector.run().await })
    }

    /// Wakes the projector: new events were appended.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    async fn run(&self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.step().await {
                Ok(true) => backoff = Duration::from_millis(100),
                Ok(false) => {
                    let _ = tokio::time::timeout(POLL, self.wake.notified()).await;
                }
                Err(error) => {
                    tracing::warn!(%error, "projector round failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Applies everything up to the log's head (for commands and tests that run no server).
    pub async fn catch_up(&self) -> Result<Progress, StoreError> {
        while self.step().await? {}
        Ok(self.progress.borrow().clone())
    }

    /// One round: returns whether any projection was behind.
    pub async fn step(&self) -> Result<bool, StoreError> {
        let head = self.log.head().await?.position;
        let rows = state::load_all(&self.db).await?;
        let behind: Vec<(&Arc<dyn Projection>, StateRow)> = self
            .projections
            .iter()
            .filter_map(|projection| {
                let row = rows.iter().find(|row| row.name == projection.name())?;
                (!row.is_failed() && row.position < head).then(|| (projection, row.clone()))
            })
            .collect();
        self.publish(&rows, head);
        let Some(from) = behind.iter().map(|(_, row)| row.position).min() else {
            return Ok(false);
        };

        let events = self.log.read_page(from + 1, PAGE).await?;
        let page = decode_page(&self.vault, events, |event_type| {
            behind
                .iter()
                .any(|(projection, _)| projection.handles(event_type))
        })
        .await?;
        for (projection, row) in behind {
            let pending: Vec<&Decoded> = page
                .iter()
                .filter(|d| d.event.position > row.position)
                .collect();
            if pending.is_empty() {
                continue;
            }
            self.apply_page(projection.as_ref(), &row, &pending).await?;
        }
        let rows = state::load_all(&self.db).await?;
        self.publish(&rows, head);
        Ok(true)
    }

    /// Applies `pending` (all after the row's checkpoint) in one transaction; on an event's
    /// failure, keeps what came before it and marks the projection failed.
    async fn apply_page(
        &self,
        projection: &dyn Projection,
        row: &StateRow,
        pending: &[&Decoded],
    ) -> Result<(), StoreError> {
        match apply_in_transaction(&self.db, &self.vault, projection, row, pending).await {
            Ok(_) => {
                self.count_applied(projection, row, pending.len() as u64)
                    .await;
                Ok(())
            }
            Err(ApplyFailure::Database(error)) => Err(error),
            Err(ApplyFailure::Event { position, reason }) => {
                let before: Vec<&Decoded> = pending
                    .iter()
                    .copied()
                    .filter(|d| d.event.position < position)
                    .collect();
                let mut row = row.clone();
                if !before.is_empty() {
                    match apply_in_transaction(&self.db, &self.vault, projection, &row, &before)
                        .await
                    {
                        Ok(Some(reached)) => row.position = reached,
                        Ok(None) => return Ok(()),
                        Err(ApplyFailure::Database(error)) => return Err(error),
                        Err(ApplyFailure::Event { .. }) => {}
                    }
                }
                if state::mark_failed(&self.db, &row, position, &reason).await? {
                    tracing::error!(
                        projection = projection.name(),
                        position,
                        reason = %reason,
                        "projection stopped on an event"
                    );
                }
                Ok(())
            }
        }
    }

    fn publish(&self, rows: &[StateRow], head: u64) {
        let healthy = rows.iter().filter(|row| !row.is_failed());
        let reached = healthy.map(|row| row.position).min().unwrap_or(head);
        let failed = rows
            .iter()
            .filter(|row| row.is_failed())
            .map(|row| row.name.clone())
            .collect();
        self.progress.send_if_modified(|progress| {
            let next = Progress { reached, failed };
            let changed = *progress != next;
            *progress = next;
            changed
        });
    }

    /// Waits until every healthy projection has applied `position`, or `timeout` passes.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> WaitOutcome {
        let deadline = Instant::now() + timeout;
        let mut progress = self.progress.subscribe();
        loop {
            {
                let now = progress.borrow_and_update();
                if now.reached >= position {
                    return WaitOutcome::Reached {
                        failed: now.failed.clone(),
                    };
                }
            }
            self.notify();
            let left = deadline.saturating_duration_since(Instant::now());
            // Poll as well: another process may be the one applying.
            let wait = left.min(POLL);
            if wait.is_zero() {
                return WaitOutcome::TimedOut;
            }
            if tokio::time::timeout(wait, progress.changed())
                .await
                .is_err()
                && let Ok(rows) = state::load_all(&self.db).await
                && let Ok(head) = self.log.head().await
            {
                self.publish(&rows, head.position);
            }
        }
    }

    /// Refreshes a projection's planner statistics once enough events have gone into it.
    async fn count_applied(&self, projection: &dyn Projection, row: &StateRow, events: u64) {
        let due = match self.since_analyze.lock() {
            Ok(mut counts) => {
                let count = counts.entry(projection.name()).or_default();
                *count += events;
                let due = *count >= ANALYZE_EVERY;
                if due {
                    *count = 0;
                }
                due
            }
            Err(_) => false,
        };
        if due {
            state::analyze(&self.db, projection, row.tables()).await;
        }
    }

    /// Rebuilds one projection from the log and swaps it in (see [`super::rebuild`]).
    pub async fn rebuild(
        &self,
        projection: &dyn Projection,
    ) -> Result<RebuildReport, RebuildError> {
        let report =
            super::rebuild::rebuild(&self.db, self.log.as_ref(), &self.vault, projection).await?;
        self.notify();
        Ok(report)
    }

    /// The projection named `name`.
    pub fn projection(&self, name: &str) -> Option<&Arc<dyn Projection>> {
        self.projections
            .iter()
            .find(|projection| projection.name() == name)
    }

    /// Every projection's checkpoint, lag and health.
    pub async fn status(&self) -> Result<Vec<ProjectionStatus>, StoreError> {
        let head = self.log.head().await?.position;
        let rows = state::load_all(&self.db).await?;
        Ok(rows
            .into_iter()
            .map(|row| ProjectionStatus {
                lag: head.saturating_sub(row.position),
                name: row.name,
                status: row.status,
                position: row.position,
                generation: row.generation,
                failed_position: row.failed_position,
                error: row.error,
            })
            .collect())
    }
}
