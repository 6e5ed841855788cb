//! Decoding stored rows into events, shared by both backends. A row that cannot be what Docket
//! wrote (a negative position, a hash of the wrong length) is reported with its position.

use sqlx::postgres::{PgRow, Postgres};
use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{Decode, Row, Type};

use super::plan::{IdempotencyRecord, StreamTip};
use super::{LogHead, StoreError, to_u64};
use crate::log::Event;

/// A column value both backends can decode.
pub trait StoredValue:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

impl<T> StoredValue for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

/// A row of either backend, read by column number.
pub trait StoredRow {
    fn get<T: StoredValue>(&self, index: usize) -> Result<T, sqlx::Error>;
}

impl StoredRow for SqliteRow {
    fn get<T: StoredValue>(&self, index: usize) -> Result<T, sqlx::Error> {
        self.try_get(index)
    }
}

impl StoredRow for PgRow {
    fn get<T: StoredValue>(&self, index: usize) -> Result<T, sqlx::Error> {
        self.try_get(index)
    }
}

/// The event columns in the order every `SELECT` of the events table lists them.
pub const EVENT_COLUMNS: &str = "position, id, stream_id, stream_version, event_type, \
     schema_version, payload, actor, request_id, occurred_at, recorded_at, correlation_id, \
     causation_id, idempotency_key, prev_hash, stream_prev_hash, key_id, hash, signature";

pub fn decode_event(row: &impl StoredRow) -> Result<Event, StoreError> {
    let raw_position: i64 = row.get(0)?;
    let corrupt = |reason| StoreError::CorruptRow {
        position: raw_position,
        reason,
    };
    macro_rules! column {
        ($index:expr) => {
            row.get($index)
                .map_err(|_| corrupt("a column cannot be decoded"))?
        };
    }
    let position = to_u64(raw_position).ok_or(corrupt("negative position"))?;
    let stream_version = to_u64(column!(3)).ok_or(corrupt("negative stream version"))?;
    let schema_version = u32::try_from({
        let v: i64 = column!(5);
        v
    })
    .map_err(|_| corrupt("schema version out of range"))?;
    let hash_of = |value: Option<Vec<u8>>| -> Result<Option<[u8; 32]>, StoreError> {
        value
            .map(|bytes| {
                bytes
                    .try_into()
                    .map_err(|_| corrupt("hash is not 32 bytes"))
            })
            .transpose()
    };
    let hash: Vec<u8> = column!(17);
    let signature: Vec<u8> = column!(18);
    Ok(Event {
        position,
        id: column!(1),
        stream: column!(2),
        stream_version,
        event_type: column!(4),
        schema_version,
        payload: column!(6),
        actor: column!(7),
        request_id: column!(8),
        occurred_at: column!(9),
        recorded_at: column!(10),
        correlation_id: column!(11),
        causation_id: column!(12),
        idempotency_key: column!(13),
        prev_hash: hash_of(column!(14))?,
        stream_prev_hash: hash_of(column!(15))?,
        key_id: column!(16),
        hash: hash
            .try_into()
            .map_err(|_| corrupt("hash is not 32 bytes"))?,
        signature: signature
            .try_into()
            .map_err(|_| corrupt("signature is not 64 bytes"))?,
    })
}

/// The single `log_head` row: position, hash, key id.
pub fn decode_head(row: &impl StoredRow) -> Result<LogHead, StoreError> {
    let position: i64 = row.get(0)?;
    let hash: Option<Vec<u8>> = row.get(1)?;
    let corrupt = |reason| StoreError::CorruptRow { position, reason };
    Ok(LogHead {
        position: to_u64(position).ok_or(corrupt("negative head position"))?,
        hash: hash
            .map(|h| {
                h.try_into()
                    .map_err(|_| corrupt("head hash is not 32 bytes"))
            })
            .transpose()?,
        key_id: row.get(2)?,
    })
}

/// A `streams` row: stream id, version, last hash.
pub fn decode_tip(row: &impl StoredRow) -> Result<(String, StreamTip), StoreError> {
    let version: i64 = row.get(1)?;
    let hash: Vec<u8> = row.get(2)?;
    let corrupt = |reason| StoreError::CorruptRow {
        position: 0,
        reason,
    };
    Ok((
        row.get(0)?,
        StreamTip {
            version: to_u64(version).ok_or(corrupt("negative stream version"))?,
            hash: hash
                .try_into()
                .map_err(|_| corrupt("stream hash is not 32 bytes"))?,
        },
    ))
}

/// An `idempotency_keys` row, columns in table order.
pub fn decode_idempotency(row: &impl StoredRow) -> Result<IdempotencyRecord, StoreError> {
    let corrupt = || StoreError::CorruptRow {
        position: 0,
        reason: "idempotency record",
    };
    let number = |index: usize| -> Result<u64, StoreError> {
        to_u64(row.get::<i64>(index)?).ok_or_else(corrupt)
    };
    let digest: Vec<u8> = row.get(1)?;
    Ok(IdempotencyRecord {
        key: row.get(0)?,
        digest: digest.try_into().map_err(|_| corrupt())?,
        stream: row.get(2)?,
        first_position: number(3)?,
        last_position: number(4)?,
        first_version: number(5)?,
        last_version: number(6)?,
    })
}
