//! `notes`: notes on matters. Subject and body are kept sealed (`private`: the column form of
//! the note's latest `private` member).

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::AssertSqlSafe;

use super::{flag, matter_number, pos, private_column, run};
use crate::domain::RecordedEvent;
use crate::domain::events::DomainEvent;
use crate::projection::{Projection, Tables};
use crate::vault::Vault;

pub struct Notes;

#[async_trait]
impl Projection for Notes {
    fn name(&self) -> &'static str {
        "notes"
    }

    fn ddl(&self) -> &'static str {
        include_str!("../../../projections/notes.sql")
    }

    fn handles(&self, event_type: &str) -> bool {
        matches!(event_type, "matter.note_added" | "matter.note_edited")
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
        let notes = t.name("notes");
        match &e.event {
            DomainEvent::NoteAdded(note) => {
                let sql = format!(
                    "INSERT INTO {notes} (note_id, matter_number, privileged, private, author, \
                     position, created_at, edited_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)"
                );
                let query = sqlx::query(AssertSqlSafe(sql))
                    .bind(&note.note_id)
                    .bind(number)
                    .bind(flag(note.privileged))
                    .bind(private_column(e, &note.private))
                    .bind(&e.actor)
                    .bind(pos(e.position))
                    .bind(&e.recorded_at);
                run(c, query).await
            }
            DomainEvent::NoteEdited(note) => {
                let sql =
                    format!("UPDATE {notes} SET private = $2, edited_at = $3 WHERE note_id = $1");
                let query = sqlx::query(AssertSqlSafe(sql))
                    .bind(&note.note_id)
                    .bind(private_column(e, &note.private))
                    .bind(&e.recorded_at);
                run(c, query).await
            }
            _ => Ok(()),
        }
    }
}
