//! What a principal may do, and the tamper-evident record of every decision.
//!
//! [`policy`] takes every decision (pure functions over the directory and a matter's facts);
//! [`scope`] renders its matter rules as a SQL condition for lists; [`ledger`] gathers one
//! request's decisions; [`chain`] makes them durable as signed, hash-chained access records
//! before any data leaves, and [`index`] answers auditors' queries over them.

pub mod chain;
pub mod facts;
pub mod index;
pub mod ledger;
pub mod policy;
pub mod record;
pub mod scope;

pub use crate::identity::principal::{Principal, PrincipalKind};
pub use policy::{Capability, Decision, MatterAccess, MatterChange, MatterFacts, Part};
