//! Rebuilds: a projection is folded from the whole log into a fresh generation of its tables
//! while the current one keeps serving; then one transaction points the views and the
//! checkpoint at the new generation, and the old tables are dropped. The live projector, whose
//! compare-and-set on the old generation then fails, carries on from the new checkpoint.

use std::time::Instant;

use serde::Serialize;

use super::runner::{ApplyFailure, Decoded, PAGE, Projector, apply_events, decode_page};
use super::state;
use super::{Projection, Tables};
use crate::store::StoreError;

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
    projector: &Projector,
    projection: &dyn Projection,
) -> Result<RebuildReport, RebuildError> {
    let started = Instant::now();
    let db = projector.db();
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
        let head = projector.log().head().await?.position;
        if position >= head {
            break;
        }
        let page = decode_page(projector.log().read_page(position + 1, PAGE).await?);
        let Some(last) = page.last().map(|d| d.event.position) else {
            break;
        };
        let pending: Vec<&Decoded> = page.iter().collect();
        let mut transaction = db.pool().begin().await?;
        match apply_events(&mut transaction, projection, fresh, &pending).await {
            Ok(()) => transaction.commit().await?,
            Err(failure) => {
                drop(transaction);
                discard(projector, projection, fresh).await;
                return Err(match failure {
                    ApplyFailure::Event { position, reason } => {
                        RebuildError::Event { position, reason }
                    }
                    ApplyFailure::Database(error) => RebuildError::Store(error),
                });
            }
        }
        events += pending.len() as u64;
        position = last;
    }

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
        discard(projector, projection, fresh).await;
        return Err(RebuildError::Superseded);
    }
    state::create_views(db, &mut transaction, projection, fresh, true).await?;
    transaction.commit().await?;

    // The old generation is no longer read or written.
    let mut connection = db.pool().acquire().await?;
    state::drop_tables(&mut connection, projection, current.tables()).await?;
    projector.notify();

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

async fn discard(projector: &Projector, projection: &dyn Projection, tables: Tables) {
    if let Ok(mut connection) = projector.db().pool().acquire().await
        && let Err(error) = state::drop_tables(&mut connection, projection, tables).await
    {
        tracing::warn!(projection = projection.name(), %error, "could not drop rebuild tables");
    }
}

fn fresh_generation(current: i64) -> i64 {
    let micros = chrono::Utc::now().timestamp_micros();
    micros.max(current + 1)
}
