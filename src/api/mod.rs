//! The API edge: GraphQL over HTTP. Everything here translates; decisions are taken in the
//! service and the domain.

pub mod graphql;
