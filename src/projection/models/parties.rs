//! `parties`: contacts on matters with their roles, by matter and by contact.

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::AssertSqlSafe;

use super::{enum_name, matter_number, pos, run};
use crate::domain::RecordedEvent;
use crate::domain::events::DomainEvent;
use crate::projection::{Projection, Tables};
use crate::vault::Vault;

pub struct Parties;

#[async_trait]
impl Projection for Parties {
    fn name(&self) -> &'static str {
        "parties"
    }

    fn ddl(&self) -> &'static str {
        include_str!("../../../projections/parties.sql")
    }

    fn handles(&self, event_type: &str) -> bool {
        matches!(event_type, "matter.party_added" | "matter.party_removed")
    }

    async fn apply(
        &self,
        c: &mut AnyConnection,
        t: &Tables,
        _vault: &Vault,
        e: &RecordedEvent,
    ) -> Result<(), sqlx::Error> {
        let Some(number) = matter_number(&e.stream) else {
            return Ok(());
        };
        let parties = t.name("parties");
        match &e.event {
            DomainEvent::PartyAdded(added) => {
                let sql = format!(
                    "INSERT INTO {parties} (party_id, matter_number, contact_id, role, position, \
                     added_at) VALUES ($1, $2, $3, $4, $5, $6)"
                );
                let query = sqlx::query(AssertSqlSafe(sql))
                    .bind(&added.party_id)
                    .bind(number)
                    .bind(&added.contact_id)
                    .bind(enum_name(&added.role))
                    .bind(pos(e.position))
                    .bind(&e.recorded_at);
                run(c, query).await
            }
            DomainEvent::PartyRemoved(removed) => {
                let sql = format!("DELETE FROM {parties} WHERE party_id = $1");
                run(c, sqlx::query(AssertSqlSafe(sql)).bind(&removed.party_id)).await
            }
            _ => Ok(()),
        }
    }
}
