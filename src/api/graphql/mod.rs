//! The GraphQL API: schema, limits, per-request data and the HTTP handler.
//!
//! Limits are on from the start: depth, complexity (cost) and body size; the cost of every
//! response is reported in `extensions.cost`.

pub mod account;
pub mod alerts;
pub mod caller;
pub mod cost;
pub mod errors;
pub mod governance;
pub mod guard;
pub mod http;
pub mod ids;
pub mod incident;
pub mod integrations;
pub mod loaders;
pub mod mutation;
pub mod paging;
pub mod persisted;
pub mod query;
pub mod subscription;
pub mod transparency;
pub mod types;
pub mod websocket;

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{MergedObject, Schema};

use crate::identity::Identity;
use crate::projection::ReadDb;
use crate::service::Service;
use loaders::*;
use mutation::Mutation;
use query::Query;
use subscription::SubscriptionRoot;

/// The query root: matters and records, accounts and audit, and checkpoints and proofs.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    Query,
    account::AccountQuery,
    transparency::TransparencyQuery,
    governance::GovernanceQuery,
    integrations::WebhooksQuery,
    alerts::AlertsQuery,
);

/// The mutation root.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    Mutation,
    account::AccountMutation,
    transparency::TransparencyMutation,
    governance::GovernanceMutation,
    integrations::WebhooksMutation,
    incident::IncidentMutation,
);

pub type DocketSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Deepest selection accepted.
pub const MAX_DEPTH: usize = 12;
/// Highest cost accepted; a page of 100 matters with a dozen scalar fields and three child
/// lists costs about 2,000.
pub const MAX_COST: usize = 10_000;
/// Largest GraphQL request body.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The schema with its limits, without request data (enough for the SDL).
pub fn schema() -> DocketSchema {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COST)
    .limit_recursive_depth(32)
    .limit_directives(8)
    .extension(cost::Cost { maximum: MAX_COST })
    .extension(guard::Guard)
    .finish()
}

/// The schema served: with the service and the read models.
pub fn build(
    service: Arc<Service>,
    db: ReadDb,
    identity: Arc<Identity>,
    checkpoints: Arc<crate::transparency::Checkpointer>,
    integrations: Arc<crate::integrations::Integrations>,
) -> DocketSchema {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COST)
    .limit_recursive_depth(32)
    .limit_directives(8)
    .extension(cost::Cost { maximum: MAX_COST })
    .extension(guard::Guard)
    .data(service)
    .data(db)
    .data(identity)
    .data(checkpoints)
    .data(integrations)
    .finish()
}

/// The SDL as committed in schema/docket.graphql.
pub fn sdl() -> String {
    schema().sdl()
}

/// A batch loader that waits 200 µs (not the default 1 ms) for sibling fields to ask for keys:
/// a matter detail resolves three levels of loaders, so the wait is paid three times.
fn loader<L: async_graphql::dataloader::Loader<String>>(inner: L) -> DataLoader<L> {
    DataLoader::new(inner, tokio::spawn).delay(std::time::Duration::from_micros(200))
}

/// Attaches the per-request batch loaders (their caches live for one request only).
pub fn with_loaders(request: async_graphql::Request, db: &ReadDb) -> async_graphql::Request {
    request
        .data(loader(MatterLoader(db.clone())))
        .data(loader(ContactLoader(db.clone())))
        .data(loader(TeamLoader(db.clone())))
        .data(loader(PartiesLoader(db.clone())))
        .data(loader(PartiesOfContactLoader(db.clone())))
        .data(loader(DocumentsLoader(db.clone())))
        .data(loader(VersionsLoader(db.clone())))
        .data(loader(TasksLoader(db.clone())))
        .data(loader(CalendarLoader(db.clone())))
        .data(loader(NotesLoader(db.clone())))
        .data(loader(TimeEntriesLoader(db.clone())))
        .data(loader(ConflictChecksLoader(db.clone())))
}
