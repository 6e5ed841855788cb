//! Applying events of the log to one projection: shared by the live projector
//! ([`super::runner`]) and rebuilds ([`super::rebuild`]).
//!
//! A page is decoded once, only for the event types some reader handles, with the data keys of
//! its sealed events: projections see client data (to compute blind indexes) but store only the
//! sealed column form. A key that cannot be loaded fails the round, which is retried; a key the
//! store does not know makes the event undecodable. Each projection folds
//! its events in one call ([`Projection::apply_batch`]), so that it may write several rows per
//! statement; when the database refuses a batch, the events are applied again one by one in a
//! transaction that is rolled back, to name the event at fault.

use super::state::{self, StateRow};
use super::{Projection, ReadDb, Tables};
use crate::domain::RecordedEvent;
use crate::domain::events::DecodeError;
use crate::domain::privacy::has_sealed_part;
use crate::log::Event;
use crate::store::StoreError;
use crate::vault::{Vault, VaultError};

/// Events read from the log per round.
pub const PAGE: u32 = 2000;

/// An event of a page, decoded for the projections that read it.
pub struct Decoded {
    pub event: Event,
    /// `Ok(None)` for events no reader wanted decoded, and for events that are not the domain's.
    pub domain: Result<Option<RecordedEvent>, DecodeError>,
}

/// Decodes the events whose type `wanted` accepts, opening their sealed parts with keys loaded
/// once for the page.
pub async fn decode_page(
    vault: &Vault,
    events: Vec<Event>,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<Decoded>, StoreError> {
    let wanted: Vec<bool> = events
        .iter()
        .map(|event| wanted(&event.event_type))
        .collect();
    let sealed: Vec<Event> = events
        .iter()
        .zip(&wanted)
        .filter(|(event, wanted)| **wanted && has_sealed_part(&event.payload))
        .map(|(event, _)| event.clone())
        .collect();
    let keys = vault
        .keys_for_events(&sealed)
        .await
        .map_err(keys_unavailable)?;
    Ok(events
        .into_iter()
        .zip(wanted)
        .map(|(event, wanted)| Decoded {
            domain: if wanted {
                RecordedEvent::open(&event, &keys)
            } else {
                Ok(None)
            },
            event,
        })
        .collect())
}

/// Keys that could not be loaded (the key store or the master key failed) fail the round, not
/// the event: it is tried again.
fn keys_unavailable(error: VaultError) -> StoreError {
    match error {
        VaultError::Store(store) => store,
        other => StoreError::Unavailable {
            detail: format!("data keys could not be loaded: {other}"),
        },
    }
}

/// Why applying failed: an event's fault (the projection stops there) or the database's (the
/// round is retried).
pub enum ApplyFailure {
    Event { position: u64, reason: String },
    Database(StoreError),
}

fn database(error: sqlx::Error) -> ApplyFailure {
    ApplyFailure::Database(StoreError::from(error))
}

/// Applies events and moves the checkpoint to the last; `Ok(None)` when the checkpoint had
/// moved meanwhile (nothing is kept).
///
/// The checkpoint is moved first, so that the transaction holds the projection's state row
/// (PostgreSQL's row lock; SQLite's write lock) before it writes any read-model row: a
/// concurrent applier of the same events waits for it, then finds the checkpoint moved and
/// writes nothing. (Applying first would let the loser run into the winner's rows, and take
/// the duplicate key for a fault of the event.)
pub async fn apply_in_transaction(
    db: &ReadDb,
    vault: &Vault,
    projection: &dyn Projection,
    row: &StateRow,
    pending: &[&Decoded],
) -> Result<Option<u64>, ApplyFailure> {
    let Some(last) = pending.last().map(|d| d.event.position) else {
        return Ok(Some(row.position));
    };
    let mut transaction = db.pool().begin().await.map_err(database)?;
    if !state::advance(&mut transaction, row, last)
        .await
        .map_err(database)?
    {
        return Ok(None);
    }
    match apply_events(&mut transaction, vault, projection, row.tables(), pending).await {
        Ok(()) => {}
        Err(Refused::Located(failure)) => return Err(failure),
        Err(Refused::Batch) => {
            drop(transaction);
            return Err(locate(db, vault, projection, row.tables(), pending).await);
        }
    }
    transaction.commit().await.map_err(database)?;
    Ok(Some(last))
}

/// How [`apply_events`] failed.
pub enum Refused {
    /// The event at fault is known (or the database failed).
    Located(ApplyFailure),
    /// The database refused the batch; [`locate`] finds the event. The transaction is unusable.
    Batch,
}

/// Applies the events the projection handles, without touching the checkpoint.
pub async fn apply_events(
    connection: &mut sqlx::AnyConnection,
    vault: &Vault,
    projection: &dyn Projection,
    tables: Tables,
    pending: &[&Decoded],
) -> Result<(), Refused> {
    let mut batch = Vec::with_capacity(pending.len());
    for decoded in pending {
        if !projection.handles(&decoded.event.event_type) {
            continue;
        }
        match &decoded.domain {
            Ok(Some(recorded)) => batch.push(recorded),
            Ok(None) => {}
            Err(_) => {
                // The events before it are applied by the caller once it knows the position.
                return Err(Refused::Located(undecodable(&decoded.event)));
            }
        }
    }
    match projection
        .apply_batch(connection, &tables, vault, &batch)
        .await
    {
        Ok(()) => Ok(()),
        Err(sqlx::Error::Database(db)) if !StoreError::from_database_is_transient(&*db) => {
            Err(Refused::Batch)
        }
        Err(other) => Err(Refused::Located(database(other))),
    }
}

/// Applies `pending` one event at a time in a transaction that is then rolled back, and names
/// the first event the database refuses.
pub async fn locate(
    db: &ReadDb,
    vault: &Vault,
    projection: &dyn Projection,
    tables: Tables,
    pending: &[&Decoded],
) -> ApplyFailure {
    let mut transaction = match db.pool().begin().await {
        Ok(transaction) => transaction,
        Err(error) => return database(error),
    };
    for decoded in pending {
        if !projection.handles(&decoded.event.event_type) {
            continue;
        }
        let recorded = match &decoded.domain {
            Ok(Some(recorded)) => recorded,
            Ok(None) => continue,
            Err(_) => return undecodable(&decoded.event),
        };
        match projection
            .apply(&mut transaction, &tables, vault, recorded)
            .await
        {
            Ok(()) => {}
            Err(sqlx::Error::Database(db)) if !StoreError::from_database_is_transient(&*db) => {
                return ApplyFailure::Event {
                    position: decoded.event.position,
                    reason: format!("database refused the change: {}", db.message()),
                };
            }
            Err(other) => return database(other),
        }
    }
    // Every event applied alone: the batch failed for a reason of its own (a database limit).
    ApplyFailure::Database(StoreError::Database {
        detail: format!(
            "projection {} refused a batch it accepts event by event",
            projection.name()
        ),
    })
}

fn undecodable(event: &Event) -> ApplyFailure {
    ApplyFailure::Event {
        position: event.position,
        reason: format!(
            "payload of {} v{} does not match its schema",
            event.event_type, event.schema_version
        ),
    }
}
