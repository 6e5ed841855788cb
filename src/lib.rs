//! Docket: an event-sourced case-records backend whose log is hash-chained and signed.
//!
//! The crate is layered so that data flows one way:
//!
//! - [`log`] is the pure domain of the signed log: the envelope, its canonical encoding and hash,
//!   signing keys and key rotation, and the streaming verifier. It does no I/O.
//! - [`store`] persists the log in SQLite or PostgreSQL behind one interface, and owns the
//!   sequencer that assigns positions and chain links at commit (group commit).
//! - [`keyring`] keeps the private signing keys in the data directory.
//! - [`domain`] is the pure case-records domain (and the identity events); [`service`] runs its
//!   commands against the log; [`projection`] folds the log into read models; [`read`] queries
//!   them.
//! - [`transparency`] keeps a Merkle tree over the log, signs checkpoints of it and proves
//!   inclusion and consistency against them; evidence bundles are built and checked there.
//! - [`identity`] knows who is asking: the directory folded from the log, credentials, sessions,
//!   API keys. [`access`] decides what they may do (the one policy module) and keeps the signed
//!   chain of access records.
//! - [`api`] is GraphQL over all of these, every field guarded by the policy.
//! - [`config`] merges flags, `DOCKET_*` variables and the TOML file.
//! - [`verification`] runs the verifier over a store; [`server`] serves HTTP; [`cli`] is the
//!   `docket` binary's commands, its benchmark included.
//! - [`metrics`] is the process's metrics registry, a leaf every layer counts in;
//!   [`monitoring`] serves it, with liveness, readiness, log formats and the background
//!   verifier of `serve`.

pub mod access;
pub mod api;
pub mod app;
pub mod backup;
pub mod cli;
pub mod config;
pub mod domain;
pub mod identity;
pub mod integrations;
pub mod keyring;
pub mod log;
pub mod metrics;
pub mod monitoring;
pub mod projection;
pub mod read;
pub mod server;
pub mod service;
pub mod store;
pub mod transparency;
pub mod vault;
pub mod verification;
