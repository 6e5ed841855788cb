//! `timeline`: every event of every matter, with the fields it changed (names, not values).

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::AssertSqlSafe;

use super::{matter_number, pos, run};
use crate::domain::RecordedEvent;
use crate::projection::{Projection, Tables};

pub struct Timeline;

#[async_trait]
impl Projection for Timeline {
    fn name(&self) -> &'static str {
        "timeline"
    }

    fn ddl(&self) -> &'static str {
        include_str!("../../../projections/timeline.sql")
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type.starts_with("matter.")
    }

    async fn apply(
        &self,
        c: &mut AnyConnection,
        t: &Tables,
        e: &RecordedEvent,
    ) -> Result<(), sqlx::Error> {
        let Some(number) = matter_number(&e.stream) else {
            return Ok(());
        };
        let sql = format!(
            "INSERT INTO {} (position, matter_number, stream_version, event_type, actor, \
             occurred_at, recorded_at, changed_fields) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            t.name("timeline")
        );
        let fields = serde_json::to_string(&e.event.changed_fields()).unwrap_or_default();
        let query = sqlx::query(AssertSqlSafe(sql))
            .bind(pos(e.position))
            .bind(number)
            .bind(pos(e.stream_version))
            .bind(e.event.event_type())
            .bind(&e.actor)
            .bind(&e.occurred_at)
            .bind(&e.recorded_at)
            .bind(fields);
        run(c, query).await
    }
}
