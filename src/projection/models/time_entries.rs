//! `time_entries`: time recorded on matters. The description is kept sealed (`private`).

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::AssertSqlSafe;

use super::{flag, matter_number, pos, private_column, run};
use crate::domain::RecordedEvent;
use crate::domain::events::DomainEvent;
use crate::projection::{Projection, Tables};
use crate::vault::Vault;

pub struct TimeEntries;

#[async_trait]
impl Projection for TimeEntries {
    fn name(&self) -> &'static str {
        "time_entries"
    }

    fn ddl(&self) -> &'static str {
        include_str!("../../../projections/time_entries.sql")
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type == "matter.time_recorded"
    }

    async fn apply(
        &self,
        c: &mut AnyConnection,
        t: &Tables,
        _vault: &Vault,
        e: &RecordedEvent,
    ) -> Result<(), sqlx::Error> {
        let (Some(number), DomainEvent::TimeRecorded(time)) = (matter_number(&e.stream), &e.event)
        else {
            return Ok(());
        };
        let sql = format!(
            "INSERT INTO {} (time_entry_id, matter_number, user_id, worked_on, minutes, billable, \
             private, position, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            t.name("time_entries")
        );
        let query = sqlx::query(AssertSqlSafe(sql))
            .bind(&time.time_entry_id)
            .bind(number)
            .bind(&time.user_id)
            .bind(&time.worked_on)
            .bind(i64::from(time.minutes))
            .bind(flag(time.billable))
            .bind(private_column(e, &time.private))
            .bind(pos(e.position))
            .bind(&e.recorded_at);
        run(c, query).await
    }
}
