//! Docket's integration tests: one binary, every storage test run on SQLite and PostgreSQL.
//!
//! PostgreSQL tests need a server: `DOCKET_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) must reach a role allowed to create databases.
//! Each test gets a fresh database of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod access;
mod access_chain;
mod accounts;
mod anomalies;
mod api_clients;
mod appends;
mod backups;
mod bundles;
mod cli;
mod crash;
mod credentials;
mod domain;
mod encryption;
mod forensics;
mod graphql;
mod http;
mod incidents;
mod monitoring;
mod multiprocess;
mod nats;
mod projections;
mod proofs;
mod properties;
mod records;
mod reliability;
mod replay;
mod schemas;
mod soak;
mod subscriptions;
mod subscriptions_ws;
mod tampering;
mod tls;
mod transparency;
mod vault;
mod vectors;
mod webhooks;
