//! The read models. Each file is one projection: which events it handles and how it folds them.
//!
//! Client data never goes into a column in the clear: where a read model keeps an event's client
//! data, it keeps the whole `private` member in the column form of its sealed part
//! ([`private_column`]), which the read layer opens for an authorised request.

mod contacts;
mod documents;
mod matters;
mod notes;
mod parties;
mod time_entries;
mod timeline;
mod work;

use std::sync::Arc;

pub use matters::SEALED_REF;

use sqlx::AnyConnection;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

use super::Projection;
use crate::domain::RecordedEvent;

pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(matters::Matters),
        Arc::new(contacts::Contacts),
        Arc::new(parties::Parties),
        Arc::new(documents::Documents),
        Arc::new(work::Work),
        Arc::new(notes::Notes),
        Arc::new(time_entries::TimeEntries),
        Arc::new(timeline::Timeline),
    ]
}

type AnyQuery<'q> = Query<'q, sqlx::Any, AnyArguments>;

/// Runs one statement.
async fn run(connection: &mut AnyConnection, query: AnyQuery<'_>) -> Result<(), sqlx::Error> {
    query.execute(connection).await.map(|_| ())
}

/// Log positions fit in i64 (the log refuses to grow past it).
fn pos(position: u64) -> i64 {
    i64::try_from(position).unwrap_or(i64::MAX)
}

fn flag(value: bool) -> i64 {
    i64::from(value)
}

/// The serde name of a unit enum value (`PartyRole::OpposingParty` -> "opposing_party").
fn enum_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// The matter number of a `matter:<number>` stream.
fn matter_number(stream: &str) -> Option<&str> {
    stream.strip_prefix("matter:")
}

/// What a read model stores for an event's `private` member: the column form of its sealed part
/// (a copy of the log's ciphertext, bound to the event), or, for an event written before client
/// data was sealed, the member's JSON as it was written.
fn private_column<T: serde::Serialize>(e: &RecordedEvent, private: &T) -> String {
    match e.privacy.sealed() {
        Some(sealed) => sealed.to_owned(),
        None => serde_json::to_string(private).unwrap_or_default(),
    }
}

/// Events of the subject's own stream that only move its version (an erasure's request) or
/// mark it erased: `subject.*`.
fn is_subject_event(event_type: &str) -> bool {
    event_type.starts_with("subject.")
}
