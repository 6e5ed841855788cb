//! `contacts`: people and organisations, with the name tokens conflict checks search.

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::AssertSqlSafe;

use super::{enum_name, pos, run};
use crate::domain::RecordedEvent;
use crate::domain::events::{ContactDetails, DomainEvent};
use crate::domain::names::name_tokens;
use crate::projection::{Projection, Tables};

pub struct Contacts;

#[async_trait]
impl Projection for Contacts {
    fn name(&self) -> &'static str {
        "contacts"
    }

    fn ddl(&self) -> &'static str {
        include_str!("../../../projections/contacts.sql")
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type.starts_with("contact.")
    }

    async fn apply(
        &self,
        c: &mut AnyConnection,
        t: &Tables,
        e: &RecordedEvent,
    ) -> Result<(), sqlx::Error> {
        let contacts = t.name("contacts");
        let (contact_id, details) = match &e.event {
            DomainEvent::ContactCreated(created) => {
                let sql = format!(
                    "INSERT INTO {contacts} (contact_id, kind, display_name, name_folded, details, \
                     version, position, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
                );
                let query = sqlx::query(AssertSqlSafe(sql))
                    .bind(&created.contact_id)
                    .bind(enum_name(&created.kind))
                    .bind(&created.private.display_name)
                    .bind(created.private.display_name.to_lowercase())
                    .bind(details_json(&created.private))
                    .bind(pos(e.stream_version))
                    .bind(pos(e.position))
                    .bind(&e.recorded_at);
                run(c, query).await?;
                (created.contact_id.clone(), &created.private)
            }
            DomainEvent::ContactUpdated(updated) => {
                let contact_id = e
                    .stream
                    .strip_prefix("contact:")
                    .unwrap_or_default()
                    .to_owned();
                let sql = format!(
                    "UPDATE {contacts} SET display_name = $2, name_folded = $3, details = $4, \
                     version = $5, position = $6, updated_at = $7 WHERE contact_id = $1"
                );
                let query = sqlx::query(AssertSqlSafe(sql))
                    .bind(&contact_id)
                    .bind(&updated.private.display_name)
                    .bind(updated.private.display_name.to_lowercase())
                    .bind(details_json(&updated.private))
                    .bind(pos(e.stream_version))
                    .bind(pos(e.position))
                    .bind(&e.recorded_at);
                run(c, query).await?;
                (contact_id, &updated.private)
            }
            _ => return Ok(()),
        };

        // Replace the contact's name tokens.
        let tokens_table = t.name("contact_tokens");
        let sql = format!("DELETE FROM {tokens_table} WHERE contact_id = $1");
        run(c, sqlx::query(AssertSqlSafe(sql)).bind(&contact_id)).await?;
        let sql = format!("INSERT INTO {tokens_table} (token, contact_id) VALUES ($1, $2)");
        for token in contact_tokens(details) {
            run(
                c,
                sqlx::query(AssertSqlSafe(sql.clone()))
                    .bind(token)
                    .bind(&contact_id),
            )
            .await?;
        }
        Ok(())
    }
}

/// Tokens of every name a contact goes by.
pub fn contact_tokens(details: &ContactDetails) -> Vec<String> {
    let mut names = vec![details.display_name.clone()];
    names.extend(details.given_name.clone());
    names.extend(details.family_name.clone());
    let mut tokens = name_tokens(&names.join(" "));
    tokens.dedup();
    tokens
}

fn details_json(details: &ContactDetails) -> String {
    serde_json::to_string(details).unwrap_or_default()
}
