//! Projections: read models folded from the log into SQL tables.
//!
//! Each projection ([`Projection`]) owns a few tables whose DDL lives in `projections/<name>.sql`
//! and an `apply` that folds one event into them. The [`runner::Projector`] feeds every
//! projection the log in order and moves each one's checkpoint in the same transaction as its
//! writes, with a compare-and-set on the checkpoint, so an event is applied exactly once even
//! across crashes and with several processes sharing one PostgreSQL database.
//!
//! Tables carry a generation suffix (`rm_matters_g<N>`); readers go through views without it
//! (`rm_matters`). [`rebuild`] fills a fresh generation from the log while the current one keeps
//! serving, then swaps the views and the checkpoint in one transaction.
//!
//! Read models hold no client data in the clear. Events are decoded with their subjects' keys,
//! but a column that shows client data stores the event's sealed `private` member (its column
//! form, a copy of the log's ciphertext), which the read layer opens when an authorised request
//! resolves it; exact-match search goes through blind indexes computed with the [`Vault`].

pub mod apply;
pub mod db;
pub mod models;
pub mod rebuild;
pub mod runner;
pub mod state;

use async_trait::async_trait;
use sqlx::AnyConnection;

use crate::domain::RecordedEvent;
use crate::vault::Vault;

pub use db::ReadDb;
pub use runner::{Projector, WaitOutcome};
pub use state::ProjectionStatus;

/// One read model.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Its stable name, as `docket projections` shows it.
    fn name(&self) -> &'static str;

    /// Its tables, as `CREATE ... IF NOT EXISTS` statements with `{g}` for the generation suffix.
    fn ddl(&self) -> &'static str;

    /// Whether events of this type change it. Others are skipped without decoding.
    fn handles(&self, event_type: &str) -> bool;

    /// Folds one event into the tables of `tables`' generation. `vault` computes blind indexes;
    /// it never opens anything here (the event arrives decoded).
    async fn apply(
        &self,
        connection: &mut AnyConnection,
        tables: &Tables,
        vault: &Vault,
        event: &RecordedEvent,
    ) -> Result<(), sqlx::Error>;

    /// Folds a batch of events (in log order) into the tables. The default applies them one by
    /// one; a projection may write several rows per statement instead. On a refusal the caller
    /// rolls back and finds the event at fault with [`Projection::apply`].
    async fn apply_batch(
        &self,
        connection: &mut AnyConnection,
        tables: &Tables,
        vault: &Vault,
        events: &[&RecordedEvent],
    ) -> Result<(), sqlx::Error> {
        for event in events {
            self.apply(connection, tables, vault, event).await?;
        }
        Ok(())
    }

    /// Fingerprint of the definition: a change of it rebuilds the projection on start.
    fn definition(&self) -> String {
        blake3::hash(self.ddl().as_bytes()).to_hex()[..16].to_owned()
    }
}

/// The table names of one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tables {
    pub generation: i64,
}

impl Tables {
    /// `rm_<base>_g<generation>`.
    pub fn name(&self, base: &str) -> String {
        format!("rm_{base}_g{}", self.generation)
    }

    /// The DDL of a projection for this generation.
    pub fn ddl(&self, ddl: &str) -> String {
        ddl.replace("{g}", &format!("_g{}", self.generation))
    }
}

/// The table base names a DDL creates (`rm_matters{g}` -> `matters`).
pub fn table_bases(ddl: &str) -> Vec<&str> {
    ddl.split("CREATE TABLE IF NOT EXISTS rm_")
        .skip(1)
        .filter_map(|rest| rest.split_once("{g}").map(|(base, _)| base))
        .collect()
}

/// Every projection Docket maintains.
pub fn all() -> Vec<std::sync::Arc<dyn Projection>> {
    models::all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_come_from_the_ddl() {
        let ddl = "CREATE TABLE IF NOT EXISTS rm_a{g} (x TEXT);\nCREATE INDEX IF NOT EXISTS \
                   rm_a{g}_x ON rm_a{g} (x);\nCREATE TABLE IF NOT EXISTS rm_b_c{g} (y TEXT);";
        assert_eq!(table_bases(ddl), vec!["a", "b_c"]);
        assert!(
            Tables { generation: 7 }
                .ddl(ddl)
                .contains("rm_b_c_g7 (y TEXT)")
        );
    }

    #[test]
    fn every_projection_names_its_tables() {
        for projection in all() {
            assert!(
                !table_bases(projection.ddl()).is_empty(),
                "{}",
                projection.name()
            );
        }
    }
}
