//! `notes`: notes on matters.

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::AssertSqlSafe;

use super::{flag, matter_number, pos, run};
use crate::domain::RecordedEvent;
use crate::domain::events::DomainEvent;
use crate::projection::{Projection, Tables};

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
        e: &RecordedEvent,
    ) -> Result<(), sqlx::Error> {
        let Some(number) = matter_number(&e.stream) else {
            return Ok(());
        };
        let notes = t.name("notes");
        match &e.event {
            DomainEvent::NoteAdded(note) => {
                let sql = format!(
                    "INSERT INTO {notes} (note_id, matter_number, privileged, subject, body, \
                     author, position, created_at, edited_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)"
                );
                let query = sqlx::query(AssertSqlSafe(sql))
                    .bind(&note.note_id)
                    .bind(number)
                    .bind(flag(note.privileged))
                    .bind(note.private.subject.clone())
                    .bind(&note.private.body)
                    .bind(&e.actor)
                    .bind(pos(e.position))
                    .bind(&e.recorded_at);
                run(c, query).await
            }
            DomainEvent::NoteEdited(note) => {
                let sql = format!(
                    "UPDATE {notes} SET subject = $2, body = $3, edited_at = $4 WHERE note_id = $1"
                );
                let query = sqlx::query(AssertSqlSafe(sql))
                    .bind(&note.note_id)
                    .bind(note.private.subject.clone())
                    .bind(&note.private.body)
                    .bind(&e.recorded_at);
                run(c, query).await
            }
            _ => Ok(()),
        }
    }
}
