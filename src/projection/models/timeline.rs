//! `timeline`: every event of every matter, with the fields it changed (names, not values).

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::AssertSqlSafe;

use super::{matter_number, pos, run};
use crate::domain::RecordedEvent;
use crate::projection::{Projection, Tables};
use crate::vault::Vault;

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
        // An erasure and its request are events of the matter's own stream too.
        event_type.starts_with("matter.") || super::is_subject_event(event_type)
    }

    async fn apply(
        &self,
        c: &mut AnyConnection,
        t: &Tables,
        vault: &Vault,
        e: &RecordedEvent,
    ) -> Result<(), sqlx::Error> {
        self.apply_batch(c, t, vault, &[e]).await
    }

    /// Inserts the rows [`ROWS_PER_INSERT`] at a time.
    async fn apply_batch(
        &self,
        c: &mut AnyConnection,
        t: &Tables,
        _vault: &Vault,
        events: &[&RecordedEvent],
    ) -> Result<(), sqlx::Error> {
        let rows: Vec<(&str, &RecordedEvent)> = events
            .iter()
            .filter_map(|e| matter_number(&e.stream).map(|number| (number, *e)))
            .collect();
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            // SQLite looks a `$N` name up in a list for every parameter, which is quadratic in a
            // long VALUES list; anonymous `?` are bound in order at no cost.
            let sqlite = c.backend_name() == "SQLite";
            let placeholders: Vec<String> = (0..chunk.len())
                .map(|row| {
                    let first = row * 8 + 1;
                    let columns: Vec<String> = (first..first + 8)
                        .map(|n| {
                            if sqlite {
                                "?".to_owned()
                            } else {
                                format!("${n}")
                            }
                        })
                        .collect();
                    format!("({})", columns.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO {} (position, matter_number, stream_version, event_type, actor, \
                 occurred_at, recorded_at, changed_fields) VALUES {}",
                t.name("timeline"),
                placeholders.join(", ")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (number, e) in chunk {
                let fields = serde_json::to_string(&e.changed_fields()).unwrap_or_default();
                query = query
                    .bind(pos(e.position))
                    .bind(*number)
                    .bind(pos(e.stream_version))
                    .bind(e.event.event_type())
                    .bind(&e.actor)
                    .bind(&e.occurred_at)
                    .bind(&e.recorded_at)
                    .bind(fields);
            }
            run(c, query).await?;
        }
        Ok(())
    }
}

/// Rows per multi-row INSERT: 800 parameters, well inside both databases' limits.
const ROWS_PER_INSERT: usize = 100;
