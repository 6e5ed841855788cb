//! `matters`: the matter list and detail, each matter's team, its conflict checks, and the custom
//! field definitions.
//!
//! Client data is kept sealed: a matter's `private` is the column form of the last event that
//! carried its description (`matter.opened`, or `matter.details_changed` with a `private`
//! member); a sensitive custom field's value is kept in `custom_fields` as
//! `{"sealed_ref": <column form of that matter.custom_field_set's private member>}`; a conflict
//! check's query and notes are its event's `private`. `subject.erased` marks the matter erased;
//! `matter.frozen` and `matter.unfrozen` set and clear `frozen`.

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::AssertSqlSafe;

use super::{enum_name, flag, is_subject_event, matter_number, pos, private_column, run};
use crate::domain::RecordedEvent;
use crate::domain::events::{DomainEvent, MatterStatus};
use crate::projection::{Projection, Tables};
use crate::vault::Vault;

/// The member of a custom field's entry in `custom_fields` that holds a sealed value.
pub const SEALED_REF: &str = "sealed_ref";

pub struct Matters;

#[async_trait]
impl Projection for Matters {
    fn name(&self) -> &'static str {
        "matters"
    }

    fn ddl(&self) -> &'static str {
        include_str!("../../../projections/matters.sql")
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type.starts_with("matter.")
            || event_type == "custom_field.defined"
            || is_subject_event(event_type)
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

    /// Applies each event, then moves each touched matter's version, position and update time
    /// once, to its last event's.
    async fn apply_batch(
        &self,
        c: &mut AnyConnection,
        t: &Tables,
        _vault: &Vault,
        events: &[&RecordedEvent],
    ) -> Result<(), sqlx::Error> {
        let mut latest: Vec<(&str, &RecordedEvent)> = Vec::new();
        for e in events {
            if let Some(number) = apply_one(c, t, e).await? {
                match latest.iter_mut().find(|(seen, _)| *seen == number) {
                    Some(entry) => entry.1 = e,
                    None => latest.push((number, e)),
                }
            }
        }
        let sql = format!(
            "UPDATE {} SET version = $2, position = $3, updated_at = $4 WHERE number = $1",
            t.name("matters")
        );
        for (number, e) in latest {
            let query = sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(number)
                .bind(pos(e.stream_version))
                .bind(pos(e.position))
                .bind(&e.recorded_at);
            run(c, query).await?;
        }
        Ok(())
    }
}

/// Applies one event's own change; returns the matter whose version it moves, if any.
async fn apply_one<'e>(
    c: &mut AnyConnection,
    t: &Tables,
    e: &'e RecordedEvent,
) -> Result<Option<&'e str>, sqlx::Error> {
    if let DomainEvent::CustomFieldDefined(field) = &e.event {
        let sql = format!(
            "INSERT INTO {} (key, label, kind, choices, sensitive) VALUES ($1, $2, $3, $4, $5)",
            t.name("custom_fields")
        );
        let choices = serde_json::to_string(&field.choices).unwrap_or_default();
        let query = sqlx::query(AssertSqlSafe(sql))
            .bind(&field.key)
            .bind(&field.label)
            .bind(enum_name(&field.kind))
            .bind(choices)
            .bind(flag(field.sensitive));
        run(c, query).await?;
        return Ok(None);
    }
    let Some(number) = matter_number(&e.stream) else {
        return Ok(None);
    };
    let matters = t.name("matters");
    match &e.event {
        DomainEvent::MatterOpened(opened) => {
            let sql = format!(
                "INSERT INTO {matters} (number, title, title_folded, private, \
                     practice_area, status, responsible_attorney, originating_attorney, opened_on, \
                     closed_on, statute_of_limitations_on, custom_fields, erased, version, \
                     position, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                     $9, NULL, $10, '{{}}', $11, $12, $13, $14, $14)"
            );
            // Without a seal and without a description there is nothing to keep.
            let private = (e.privacy.sealed().is_some() || opened.private.description.is_some())
                .then(|| private_column(e, &opened.private));
            let query = sqlx::query(AssertSqlSafe(sql))
                .bind(number)
                .bind(&opened.title)
                .bind(opened.title.to_lowercase())
                .bind(private)
                .bind(&opened.practice_area)
                .bind(opened.status.as_str())
                .bind(&opened.responsible_attorney)
                .bind(opened.originating_attorney.clone())
                .bind(&opened.opened_on)
                .bind(opened.statute_of_limitations_on.clone())
                .bind(flag(e.privacy.is_erased()))
                .bind(pos(e.stream_version))
                .bind(pos(e.position))
                .bind(&e.recorded_at);
            run(c, query).await?;
            return Ok(None);
        }
        DomainEvent::MatterDetailsChanged(change) => {
            let sql = format!(
                "UPDATE {matters} SET title = COALESCE($2, title), \
                     title_folded = COALESCE($3, title_folded), \
                     practice_area = COALESCE($4, practice_area), \
                     responsible_attorney = COALESCE($5, responsible_attorney), \
                     originating_attorney = COALESCE($6, originating_attorney), \
                     statute_of_limitations_on = COALESCE($7, statute_of_limitations_on), \
                     private = COALESCE($8, private) WHERE number = $1"
            );
            let private = change.private.as_ref().map(|p| private_column(e, p));
            let query = sqlx::query(AssertSqlSafe(sql))
                .bind(number)
                .bind(change.title.clone())
                .bind(change.title.as_ref().map(|title| title.to_lowercase()))
                .bind(change.practice_area.clone())
                .bind(change.responsible_attorney.clone())
                .bind(change.originating_attorney.clone())
                .bind(change.statute_of_limitations_on.clone())
                .bind(private);
            run(c, query).await?;
        }
        DomainEvent::MatterStatusChanged(change) => {
            let closed_on = match change.to {
                MatterStatus::Closed => "$3",
                MatterStatus::Archived => "closed_on",
                _ => "NULL",
            };
            let sql = format!(
                "UPDATE {matters} SET status = $2, closed_on = {closed_on} WHERE number = $1"
            );
            let mut query = sqlx::query(AssertSqlSafe(sql))
                .bind(number)
                .bind(change.to.as_str());
            if change.to == MatterStatus::Closed {
                query = query.bind(&change.effective_on);
            }
            run(c, query).await?;
        }
        DomainEvent::MatterVisibilityChanged(change) => {
            let sql = format!("UPDATE {matters} SET firm_visible = $2 WHERE number = $1");
            let query = sqlx::query(AssertSqlSafe(sql))
                .bind(number)
                .bind(i64::from(change.firm_visible));
            run(c, query).await?;
        }
        DomainEvent::MatterCustomFieldSet(set) => {
            let value = match &set.private {
                // Sensitive: a cleared value (known only when readable) goes; any other stays
                // sealed.
                Some(private) if e.privacy.is_readable() && private.value.is_null() => {
                    serde_json::Value::Null
                }
                Some(private) => serde_json::json!({ SEALED_REF: private_column(e, private) }),
                None => set.value.clone().unwrap_or(serde_json::Value::Null),
            };
            let current: Option<(String,)> = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT custom_fields FROM {matters} WHERE number = $1"
            )))
            .bind(number)
            .fetch_optional(&mut *c)
            .await?;
            let mut fields: serde_json::Map<String, serde_json::Value> = current
                .and_then(|(text,)| serde_json::from_str(&text).ok())
                .unwrap_or_default();
            if value.is_null() {
                fields.remove(&set.key);
            } else {
                fields.insert(set.key.clone(), value);
            }
            let text = serde_json::Value::Object(fields).to_string();
            let sql = format!("UPDATE {matters} SET custom_fields = $2 WHERE number = $1");
            run(c, sqlx::query(AssertSqlSafe(sql)).bind(number).bind(text)).await?;
        }
        DomainEvent::TeamMemberAdded(added) => {
            let sql = format!(
                "INSERT INTO {} (matter_number, user_id, capacity) VALUES ($1, $2, $3)",
                t.name("matter_team")
            );
            let query = sqlx::query(AssertSqlSafe(sql))
                .bind(number)
                .bind(&added.user_id)
                .bind(enum_name(&added.capacity));
            run(c, query).await?;
        }
        DomainEvent::TeamMemberRemoved(removed) => {
            let sql = format!(
                "DELETE FROM {} WHERE matter_number = $1 AND user_id = $2",
                t.name("matter_team")
            );
            run(
                c,
                sqlx::query(AssertSqlSafe(sql))
                    .bind(number)
                    .bind(&removed.user_id),
            )
            .await?;
        }
        DomainEvent::ConflictCheckRecorded(check) => {
            let sql = format!(
                "INSERT INTO {} (check_id, matter_number, outcome, reviewer, private, hits, \
                     position, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                t.name("conflict_checks")
            );
            let hits = serde_json::to_string(&check.hits).unwrap_or_default();
            let query = sqlx::query(AssertSqlSafe(sql))
                .bind(&check.check_id)
                .bind(number)
                .bind(enum_name(&check.outcome))
                .bind(&check.reviewer)
                .bind(private_column(e, &check.private))
                .bind(hits)
                .bind(pos(e.position))
                .bind(&e.recorded_at);
            run(c, query).await?;
        }
        DomainEvent::MatterFrozen(_) | DomainEvent::MatterUnfrozen(_) => {
            let frozen = matches!(e.event, DomainEvent::MatterFrozen(_));
            let sql = format!("UPDATE {matters} SET frozen = $2 WHERE number = $1");
            let query = sqlx::query(AssertSqlSafe(sql))
                .bind(number)
                .bind(flag(frozen));
            run(c, query).await?;
        }
        DomainEvent::SubjectErased(_) => {
            let sql = format!("UPDATE {matters} SET erased = 1 WHERE number = $1");
            run(c, sqlx::query(AssertSqlSafe(sql)).bind(number)).await?;
        }
        _ => {}
    }
    Ok(Some(number))
}
