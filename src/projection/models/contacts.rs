//! `contacts`: people and organisations, and the blind indexes that conflict checks, contact
//! search and exact lookups by email or identifier use.
//!
//! A contact's row keeps its details only sealed (`private`, the column form of the latest
//! `contact.created` or `contact.updated`). Its index entries (`rm_contact_tokens`) are blind:
//! `vault.blind(kind, value)` of each folded name token, email and `scheme:value` identifier,
//! computed from the decoded event here and never stored in the clear. An event whose client
//! data is erased yields no entries, and `subject.erased` deletes the contact's entries and
//! marks its row erased.

use std::collections::BTreeSet;

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::AssertSqlSafe;

use super::{enum_name, is_subject_event, pos, private_column, run};
use crate::domain::RecordedEvent;
use crate::domain::events::{ContactDetails, DomainEvent};
use crate::domain::names::name_tokens;
use crate::projection::{Projection, Tables};
use crate::vault::{BlindKind, Vault};

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
        event_type.starts_with("contact.") || is_subject_event(event_type)
    }

    async fn apply(
        &self,
        c: &mut AnyConnection,
        t: &Tables,
        vault: &Vault,
        e: &RecordedEvent,
    ) -> Result<(), sqlx::Error> {
        let Some(contact_id) = e.stream.strip_prefix("contact:") else {
            return Ok(());
        };
        let contacts = t.name("contacts");
        // An event decoded after the key was destroyed (a rebuild) marks the row erased at once.
        let erased = if e.privacy.is_erased() {
            ", erased = 1"
        } else {
            ""
        };
        let details = match &e.event {
            DomainEvent::ContactCreated(created) => {
                let sql = format!(
                    "INSERT INTO {contacts} (contact_id, kind, private, erased, version, position, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
                );
                let query = sqlx::query(AssertSqlSafe(sql))
                    .bind(&created.contact_id)
                    .bind(enum_name(&created.kind))
                    .bind(private_column(e, &created.private))
                    .bind(i64::from(e.privacy.is_erased()))
                    .bind(pos(e.stream_version))
                    .bind(pos(e.position))
                    .bind(&e.recorded_at);
                run(c, query).await?;
                &created.private
            }
            DomainEvent::ContactUpdated(updated) => {
                let sql = format!(
                    "UPDATE {contacts} SET private = $2, version = $3, position = $4, \
                     updated_at = $5{erased} WHERE contact_id = $1"
                );
                let query = sqlx::query(AssertSqlSafe(sql))
                    .bind(contact_id)
                    .bind(private_column(e, &updated.private))
                    .bind(pos(e.stream_version))
                    .bind(pos(e.position))
                    .bind(&e.recorded_at);
                run(c, query).await?;
                &updated.private
            }
            DomainEvent::SubjectErased(_) => {
                let sql = format!(
                    "UPDATE {contacts} SET erased = 1, version = $2, position = $3, \
                     updated_at = $4 WHERE contact_id = $1"
                );
                run(c, moved(sql, contact_id, e)).await?;
                return delete_entries(c, t, contact_id).await;
            }
            DomainEvent::ErasureRequested(_) => {
                let sql = format!(
                    "UPDATE {contacts} SET version = $2, position = $3, updated_at = $4 \
                     WHERE contact_id = $1"
                );
                return run(c, moved(sql, contact_id, e)).await;
            }
            _ => return Ok(()),
        };

        // Replace the contact's index entries; an erased event has none to give.
        delete_entries(c, t, contact_id).await?;
        if !e.privacy.is_readable() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO {} (kind, blind, contact_id) VALUES ($1, $2, $3)",
            t.name("contact_tokens")
        );
        for (kind, blind) in blind_entries(vault, details) {
            let query = sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(kind)
                .bind(blind)
                .bind(contact_id);
            run(c, query).await?;
        }
        Ok(())
    }
}

/// An update that moves the contact's version, position and update time to `e`'s.
fn moved<'q>(sql: String, contact_id: &'q str, e: &'q RecordedEvent) -> super::AnyQuery<'q> {
    sqlx::query(AssertSqlSafe(sql))
        .bind(contact_id)
        .bind(pos(e.stream_version))
        .bind(pos(e.position))
        .bind(&e.recorded_at)
}

async fn delete_entries(
    c: &mut AnyConnection,
    t: &Tables,
    contact_id: &str,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "DELETE FROM {} WHERE contact_id = $1",
        t.name("contact_tokens")
    );
    run(c, sqlx::query(AssertSqlSafe(sql)).bind(contact_id)).await
}

/// Tokens of every name a contact goes by.
pub fn contact_tokens(details: &ContactDetails) -> Vec<String> {
    let mut names = vec![details.display_name.clone()];
    names.extend(details.given_name.clone());
    names.extend(details.family_name.clone());
    name_tokens(&names.join(" "))
}

/// The contact's blind index entries as (kind, blind), each once: its name tokens, emails and
/// identifiers.
pub fn blind_entries(vault: &Vault, details: &ContactDetails) -> BTreeSet<(&'static str, String)> {
    let mut entries = BTreeSet::new();
    let mut add = |kind: BlindKind, value: &str| {
        if !value.trim().is_empty() {
            entries.insert((kind.as_str(), vault.blind(kind, value)));
        }
    };
    for token in contact_tokens(details) {
        add(BlindKind::Name, &token);
    }
    for email in &details.emails {
        add(BlindKind::Email, &email.value);
    }
    for identifier in details.identifiers.iter() {
        if identifier.value.trim().is_empty() {
            continue;
        }
        add(
            BlindKind::Identifier,
            &format!("{}:{}", identifier.scheme, identifier.value),
        );
    }
    entries
}
