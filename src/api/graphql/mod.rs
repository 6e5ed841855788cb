//! The GraphQL API: schema, limits, per-request data and the HTTP handler.
//!
//! Limits are on from the start: depth, complexity (cost) and body size; the cost of every
//! response is reported in `extensions.cost`.

pub mod cost;
pub mod errors;
pub mod http;
pub mod ids;
pub mod loaders;
pub mod mutation;
pub mod paging;
pub mod persisted;
pub mod query;
pub mod types;

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{EmptySubscription, Schema};

use crate::projection::ReadDb;
use crate::service::Service;
use loaders::*;
use mutation::Mutation;
use query::Query;

pub type DocketSchema = Schema<Query, Mutation, EmptySubscription>;

/// Deepest selection accepted.
pub const MAX_DEPTH: usize = 12;
/// Highest cost accepted; a page of 100 matters with a dozen scalar fields and three child
/// lists costs about 2,000.
pub const MAX_COST: usize = 10_000;
/// Largest GraphQL request body.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The schema with its limits, without request data (enough for the SDL).
pub fn schema() -> DocketSchema {
    Schema::build(Query, Mutation, EmptySubscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COST)
        .limit_recursive_depth(32)
        .limit_directives(8)
        .extension(cost::Cost { maximum: MAX_COST })
        .finish()
}

/// The schema served: with the service and the read models.
pub fn build(service: Arc<Service>, db: ReadDb) -> DocketSchema {
    Schema::build(Query, Mutation, EmptySubscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COST)
        .limit_recursive_depth(32)
        .limit_directives(8)
        .extension(cost::Cost { maximum: MAX_COST })
        .data(service)
        .data(db)
        .finish()
}

/// The SDL as committed in schema/docket.graphql.
pub fn sdl() -> String {
    schema().sdl()
}

/// Attaches the per-request batch loaders (their caches live for one request only).
pub fn with_loaders(request: async_graphql::Request, db: &ReadDb) -> async_graphql::Request {
    request
        .data(DataLoader::new(MatterLoader(db.clone()), tokio::spawn))
        .data(DataLoader::new(ContactLoader(db.clone()), tokio::spawn))
        .data(DataLoader::new(TeamLoader(db.clone()), tokio::spawn))
        .data(DataLoader::new(PartiesLoader(db.clone()), tokio::spawn))
        .data(DataLoader::new(
            PartiesOfContactLoader(db.clone()),
            tokio::spawn,
        ))
        .data(DataLoader::new(DocumentsLoader(db.clone()), tokio::spawn))
        .data(DataLoader::new(VersionsLoader(db.clone()), tokio::spawn))
        .data(DataLoader::new(TasksLoader(db.clone()), tokio::spawn))
        .data(DataLoader::new(CalendarLoader(db.clone()), tokio::spawn))
        .data(DataLoader::new(NotesLoader(db.clone()), tokio::spawn))
        .data(DataLoader::new(TimeEntriesLoader(db.clone()), tokio::spawn))
        .data(DataLoader::new(
            ConflictChecksLoader(db.clone()),
            tokio::spawn,
        ))
}
