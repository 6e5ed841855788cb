//! The object types of the schema, each a thin view over a read-model row.
//!
//! Client data reaches a type sealed (a row's `private` column) and is opened here, with the
//! service's vault, only when a field that shows it resolves: the parent field has decided the
//! caller may see it by then. Once the subject's key is destroyed the data reads as erased:
//! `erased` is true, nullable fields are null and required text fields read [`ERASED`], never
//! an error.

mod children;
mod contact;
mod history;
mod matter;
mod snapshot;

pub use children::*;
pub use contact::{CONTACT_DATA, Contact};
pub use history::{HistoryEvent, TimelineEntry};
pub use matter::Matter;
pub use snapshot::MatterSnapshot;

use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, ID, Interface};

use super::errors::internal;
use crate::read::{Opening, Private, open_all};
use crate::service::Service;
use crate::vault::Vault;

/// What a required text field of client data shows once the data is erased.
pub const ERASED: &str = "[erased]";

/// Anything with a global id.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    Matter(Matter),
    Contact(Contact),
    Party(Party),
    Document(Document),
    Task(Task),
    CalendarEntry(CalendarEntry),
    Note(Note),
    TimeEntry(TimeEntry),
}

/// Loads one key through the request's batch loader.
pub async fn load_one<L>(ctx: &Context<'_>, key: &str) -> async_graphql::Result<Option<L::Value>>
where
    L: Loader<String, Error = super::loaders::LoadError>,
{
    let loader = ctx.data::<DataLoader<L>>()?;
    loader
        .load_one(key.to_owned())
        .await
        .map_err(|error| internal((*error).clone()))
}

/// Upper-case GraphQL enum text of a stored snake_case value (`opposing_party` -> `OPPOSING_PARTY`).
pub fn enum_text(stored: &str) -> String {
    stored.to_ascii_uppercase()
}

/// The size assumed for a nested list when costing a query (lists of parties, documents,
/// tasks and so on are not paged).
pub const LIST_ESTIMATE: usize = 10;

/// The vault of the request's service.
pub fn vault<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<Vault>> {
    Ok(ctx.data::<Arc<Service>>()?.vault())
}

/// A row's sealed column, opened (once per row) for the field being resolved.
pub async fn opened<'r>(
    ctx: &Context<'_>,
    opening: &'r Opening,
    column: Option<&str>,
) -> async_graphql::Result<&'r Private> {
    opening.open(vault(ctx)?, column).await.map_err(internal)
}

/// Opens the sealed columns of a list's rows with one load of keys, when the selection shows
/// any of `fields` (otherwise nothing is opened at all).
pub async fn open_rows<'a>(
    ctx: &Context<'_>,
    fields: &[&str],
    rows: impl IntoIterator<Item = (&'a Opening, Option<&'a str>)>,
) -> async_graphql::Result<()> {
    if !selects(ctx, fields) {
        return Ok(());
    }
    open_all(vault(ctx)?, rows).await.map_err(internal)
}

/// Whether the field being resolved selects any of `fields` of its items, directly (a list)
/// or through a connection's `nodes` or `edges.node`.
pub fn selects(ctx: &Context<'_>, fields: &[&str]) -> bool {
    let look = ctx.look_ahead();
    fields.iter().any(|field| {
        look.field(field).exists()
            || look.field("nodes").field(field).exists()
            || look.field("edges").field("node").field(field).exists()
    })
}
