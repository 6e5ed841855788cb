//! The object types of the schema, each a thin view over a read-model row.

mod children;
mod contact;
mod history;
mod matter;
mod snapshot;

pub use children::*;
pub use contact::Contact;
pub use history::{HistoryEvent, TimelineEntry};
pub use matter::Matter;
pub use snapshot::MatterSnapshot;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, ID, Interface};

use super::errors::internal;

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
