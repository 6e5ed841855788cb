//! `documents`: document metadata and all their versions.

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::AssertSqlSafe;

use super::{matter_number, pos, run};
use crate::domain::RecordedEvent;
use crate::domain::events::{DocumentContent, DomainEvent};
use crate::projection::{Projection, Tables};

pub struct Documents;

#[async_trait]
impl Projection for Documents {
    fn name(&self) -> &'static str {
        "documents"
    }

    fn ddl(&self) -> &'static str {
        include_str!("../../../projections/documents.sql")
    }

    fn handles(&self, event_type: &str) -> bool {
        matches!(
            event_type,
            "matter.document_added" | "matter.document_version_added"
        )
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
        let documents = t.name("documents");
        let (document_id, content, filename) = match &e.event {
            DomainEvent::DocumentAdded(added) => {
                let sql = format!(
                    "INSERT INTO {documents} (document_id, matter_number, document_type, title, \
                     description, latest_version, position, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
                );
                let query = sqlx::query(AssertSqlSafe(sql))
                    .bind(&added.document_id)
                    .bind(number)
                    .bind(&added.document_type)
                    .bind(added.private.title.clone())
                    .bind(added.private.description.clone())
                    .bind(i64::from(added.content.version))
                    .bind(pos(e.position))
                    .bind(&e.recorded_at);
                run(c, query).await?;
                (&added.document_id, &added.content, &added.private.filename)
            }
            DomainEvent::DocumentVersionAdded(added) => {
                let sql = format!(
                    "UPDATE {documents} SET latest_version = $2, updated_at = $3 \
                     WHERE document_id = $1"
                );
                let query = sqlx::query(AssertSqlSafe(sql))
                    .bind(&added.document_id)
                    .bind(i64::from(added.content.version))
                    .bind(&e.recorded_at);
                run(c, query).await?;
                (&added.document_id, &added.content, &added.private.filename)
            }
            _ => return Ok(()),
        };
        insert_version(
            c,
            t,
            document_id,
            content,
            filename.as_deref(),
            &e.recorded_at,
        )
        .await
    }
}

async fn insert_version(
    c: &mut AnyConnection,
    t: &Tables,
    document_id: &str,
    content: &DocumentContent,
    filename: Option<&str>,
    at: &str,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO {} (document_id, version, content_hash, size, media_type, filename, \
         uploaded_by, added_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        t.name("document_versions")
    );
    let query = sqlx::query(AssertSqlSafe(sql))
        .bind(document_id)
        .bind(i64::from(content.version))
        .bind(&content.content_hash)
        .bind(i64::try_from(content.size).unwrap_or(i64::MAX))
        .bind(&content.media_type)
        .bind(filename)
        .bind(&content.uploaded_by)
        .bind(at);
    run(c, query).await
}
