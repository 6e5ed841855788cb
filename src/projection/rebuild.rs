//! Rebuilds: a projection is folded from the whole log into a fresh generation of its tables
//! while the current one keeps serving; then one transaction points the views and the
//! checkpoint at the new generation, and the old tables are dropped. The live projector, whose
//! compare-and-set on the old generation then fails, carries on from the new checkpoint.
//!
//! The log is folded a page per transaction; a page that fails for a transient reason (SQLite
//! busy under concurrent writers, a dropped connection) is tried again a few times with backoff.
//! An event the projection cannot apply ends the rebuild, and its fresh tables are dropped.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::ReadDb;
use super::apply::{ApplyFailure, Decoded, PAGE, Refused, apply_events, decode_page, locate};
use super::state;
use super::{Projection, Tables};
use crate::store::{LogStore, StoreError};
use crate::vault::Vault;

/// What a rebuild did.
#[derive(Debug, Clone, Serialize)]
pub struct RebuildReport {
    pub name: String,
    pub generation: i64,
    pub position: u64,
    pub events: u64,
    pub seconds: f64,
    pub events_per_second: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("no projection named {0}")]
    Unknown(String),
    #[error("event at position {position} cannot be applied: {reason}")]
    Event { position: u64, reason: String },
    #[error("another rebuild of this projection finished first")]
    Superseded,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RebuildError {
    fn from(error: sqlx::Error) -> Self {
        RebuildError::Store(StoreError::from(error))
    }
}

/// Rebuilds `projection` from the log and swaps it in.
pub async fn rebuild(
    db: &ReadDb,
    log: &dyn LogStore,
    vault: &Vault,
    projection: &dyn Projection,
) -> Result<RebuildReport, RebuildError> {
    let started = Instant::now();
    let mut connection = db.pool().acquire().await?;
    let current = state::load(&mut connection, projection.name())
        .await?
        .ok_or_else(|| RebuildError::Unknown(projection.name().to_owned()))?;

    // A fresh generation, unique across processes: microseconds since the epoch.
    let fresh = Tables {
        generation: fresh_generation(current.generation),
    };
    state::drop_tables(&mut connection, projection, fresh).await?;
    state::create_tables(&mut connection, projection, fresh).await?;
    drop(connection);

    // Fold the whole log into it, a page per transaction.
    let mut position = 0;
    let mut events = 0;
    loop {
        let folded = retrying(projection.name(), position, || {
            fold_page(db, log, vault, projection, fresh, position)
        })
        .await;
        match folded {
            Ok(Some((last, folded))) => {
                events += folded;
                position = last;
            }
            Ok(None) => break,
            Err(error) => {
                discard(db, projection, fresh).await;
                return Err(error);
            }
        }
    }

    // Give the planner the new tables' statistics before they serve.
    state::analyze(db, projection, fresh).await;

    // Swap the views and the checkpoint together.
    let mut transaction = db.pool().begin().await?;
    let swapped = state::swap(
        &mut transaction,
        projection.name(),
        current.generation,
        fresh,
        position,
        &projection.definition(),
    )
    .await?;
    if !swapped {
        drop(transaction);
        discard(db, projection, fresh).await;
        return Err(RebuildError::Superseded);
    }
    state::create_views(db, &mut transaction, projection, fresh, true).await?;
    transaction.commit().await?;

    // The old generation is no longer read or written.
    let mut connection = db.pool().acquire().await?;
    state::drop_tables(&mut connection, projection, current.tables()).await?;

    let seconds = started.elapsed().as_secs_f64();
    Ok(RebuildReport {
        name: projection.name().to_owned(),
        generation: fresh.generation,
        position,
        events,
        seconds,
        events_per_second: if seconds > 0.0 {
            events as f64 / seconds
        } else {
            0.0
        },
    })
}

/// How many times a page is tried before a transient failure ends the rebuild, and the wait
/// before the first retry (doubled for each further one).
const PAGE_ATTEMPTS: u32 = 5;
const PAGE_BACKOFF: Duration = Duration::from_millis(50);

/// Folds the events after `position` (a page of them) into `fresh` in one transaction: the
/// last position folded and how many events, or `None` at the head of the log.
async fn fold_page(
    db: &ReadDb,
    log: &dyn LogStore,
    vault: &Vault,
    projection: &dyn Projection,
    fresh: Tables,
    position: u64,
) -> Result<Option<(u64, u64)>, RebuildError> {
    let head = log.head().await?.position;
    if position >= head {
        return Ok(None);
    }
    let events = log.read_page(position + 1, PAGE).await?;
    let page = decode_page(vault, events, |event_type| projection.handles(event_type)).await?;
    let Some(last) = page.last().map(|d| d.event.position) else {
        return Ok(None);
    };
    let pending: Vec<&Decoded> = page.iter().collect();
    let to_rebuild_error = |failure| match failure {
        ApplyFailure::Event { position, reason } => RebuildError::Event { position, reason },
        ApplyFailure::Database(error) => RebuildError::Store(error),
    };
    let mut transaction = db.pool().begin().await?;
    match apply_events(&mut transaction, vault, projection, fresh, &pending).await {
        Ok(()) => {}
        Err(Refused::Located(failure)) => return Err(to_rebuild_error(failure)),
        Err(Refused::Batch) => {
            drop(transaction);
            return Err(to_rebuild_error(
                locate(db, vault, projection, fresh, &pending).await,
            ));
        }
    }
    // A commit whose connection broke may have happened: that is not retried (it is not
    // transient), since the page's rows would then be written twice.
    transaction
        .commit()
        .await
        .map_err(StoreError::from_commit)?;
    Ok(Some((last, pending.len() as u64)))
}

/// Runs `page` until it succeeds, retrying a transient database failure (SQLite's "database is
/// locked" under concurrent writers, a dropped connection) with backoff, up to [`PAGE_ATTEMPTS`]
/// tries. A failed page was rolled back and the fresh tables are the rebuild's own, so trying
/// it again is safe. An event that cannot be applied, or any other failure, ends it at once.
async fn retrying<T, F, Fut>(name: &str, position: u64, mut page: F) -> Result<T, RebuildError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RebuildError>>,
{
    let mut attempt = 1;
    loop {
        match page().await {
            Err(RebuildError::Store(error)) if error.is_transient() && attempt < PAGE_ATTEMPTS => {
                tracing::warn!(
                    projection = name,
                    after = position,
                    attempt,
                    %error,
                    "rebuild page failed; retrying"
                );
                tokio::time::sleep(PAGE_BACKOFF * 2u32.pow(attempt - 1)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

async fn discard(db: &ReadDb, projection: &dyn Projection, tables: Tables) {
    if let Ok(mut connection) = db.pool().acquire().await
        && let Err(error) = state::drop_tables(&mut connection, projection, tables).await
    {
        tracing::warn!(projection = projection.name(), %error, "could not drop rebuild tables");
    }
}

fn fresh_generation(current: i64) -> i64 {
    let micros = chrono::Utc::now().timestamp_micros();
    micros.max(current + 1)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn busy() -> RebuildError {
        RebuildError::Store(StoreError::Unavailable {
            detail: "database is locked".into(),
        })
    }

    #[tokio::test]
    async fn a_page_that_failed_transiently_is_tried_again() {
        let calls = AtomicU32::new(0);
        let result = retrying("notes", 0, || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(busy())
            } else {
                Ok(7)
            }
        })
        .await;
        assert!(matches!(result, Ok(7)));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_page_that_keeps_failing_transiently_gives_up() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retrying("notes", 0, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(busy())
        })
        .await;
        assert!(matches!(
            result,
            Err(RebuildError::Store(StoreError::Unavailable { .. }))
        ));
        assert_eq!(calls.load(Ordering::SeqCst), PAGE_ATTEMPTS);
    }

    #[tokio::test]
    async fn an_event_or_a_lasting_failure_is_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retrying("notes", 0, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(RebuildError::Event {
                position: 9,
                reason: "refused".into(),
            })
        })
        .await;
        assert!(matches!(
            result,
            Err(RebuildError::Event { position: 9, .. })
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retrying("notes", 0, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(RebuildError::Store(StoreError::CommitOutcomeUnknown {
                detail: "connection reset".into(),
            }))
        })
        .await;
        assert!(matches!(
            result,
            Err(RebuildError::Store(StoreError::CommitOutcomeUnknown { .. }))
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
