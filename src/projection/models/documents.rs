//! `documents`: document metadata and all their versions. Title, description and filename are
//! kept sealed (`private`: the column form of each event's `private` member).

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::AssertSqlSafe;

use super::{matter_number, pos, private_column, run};
use crate::domain::RecordedEvent;
use crate::domain::events::{DocumentContent, DomainEvent};
use crate::projection::{Projection, Tables};
use crate::vault::Vault;

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
        _vault: &Vault,
        e: &RecordedEvent,
    ) -> Result<(), sqlx::Error> {
        let Some(number) = matter_number(&e.stream) else {
            return Ok(());
        };
        let documents = t.name("documents");
        let (document_id, content, private) = match &e.event {
            DomainEvent::DocumentAdded(added) => {
                let private = private_column(e, &added.private);
                let sql = format!(
                    "INSERT INTO {documents} (document_id, matter_number, document_type, private, \
                     latest_version, position, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
                );
                let query = sqlx::query(AssertSqlSafe(sql))
                    .bind(&added.document_id)
                    .bind(number)
                    .bind(&added.document_type)
                    .bind(private.clone())
                    .bind(i64::from(added.content.version))
                    .bind(pos(e.position))
                    .bind(&e.recorded_at);
                run(c, query).await?;
                (&added.document_id, &added.content, private)
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
                (
                    &added.document_id,
                    &added.content,
                    private_column(e, &added.private),
                )
            }
            _ => return Ok(()),
        };
        insert_version(c, t, document_id, content, &private, &e.recorded_at).await
    }
}

async fn insert_version(
    c: &mut AnyConnection,
    t: &Tables,
    document_id: &str,
    content: &DocumentContent,
    private: &str,
    at: &str,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO {} (document_id, version, content_hash, size, media_type, private, \
         uploaded_by, added_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        t.name("document_versions")
    );
    let query = sqlx::query(AssertSqlSafe(sql))
        .bind(document_id)
        .bind(i64::from(content.version))
        .bind(&content.content_hash)
        .bind(i64::try_from(content.size).unwrap_or(i64::MAX))
        .bind(&content.media_type)
        .bind(private)
        .bind(&content.uploaded_by)
        .bind(at);
    run(c, query).await
}
