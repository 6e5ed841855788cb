//! `work`: tasks and calendar entries across matters.

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::AssertSqlSafe;

use super::{enum_name, flag, matter_number, pos, run};
use crate::domain::RecordedEvent;
use crate::domain::events::{DomainEvent, TaskStatus};
use crate::projection::{Projection, Tables};
use crate::vault::Vault;

pub struct Work;

#[async_trait]
impl Projection for Work {
    fn name(&self) -> &'static str {
        "work"
    }

    fn ddl(&self) -> &'static str {
        include_str!("../../../projections/work.sql")
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type.starts_with("matter.task_") || event_type.starts_with("matter.calendar_entry_")
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
        let tasks = t.name("tasks");
        let status_change =
            |task_id: &str, status: TaskStatus| (task_id.to_owned(), status.as_str());
        let (task_id, status) = match &e.event {
            DomainEvent::TaskCreated(task) => {
                let sql = format!(
                    "INSERT INTO {tasks} (task_id, matter_number, title, assignee, due_on, status, \
                     position, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $7)"
                );
                let query = sqlx::query(AssertSqlSafe(sql))
                    .bind(&task.task_id)
                    .bind(number)
                    .bind(&task.title)
                    .bind(task.assignee.clone())
                    .bind(task.due_on.clone())
                    .bind(pos(e.position))
                    .bind(&e.recorded_at);
                return run(c, query).await;
            }
            DomainEvent::TaskCompleted(task) => status_change(&task.task_id, TaskStatus::Completed),
            DomainEvent::TaskReopened(task) => status_change(&task.task_id, TaskStatus::Open),
            DomainEvent::TaskCancelled(task) => status_change(&task.task_id, TaskStatus::Cancelled),
            DomainEvent::CalendarEntryScheduled(entry) => {
                let sql = format!(
                    "INSERT INTO {} (entry_id, matter_number, kind, title, starts_at, ends_at, \
                     all_day, rule, location, cancelled, position) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10)",
                    t.name("calendar")
                );
                let query = sqlx::query(AssertSqlSafe(sql))
                    .bind(&entry.entry_id)
                    .bind(number)
                    .bind(enum_name(&entry.kind))
                    .bind(&entry.title)
                    .bind(&entry.starts_at)
                    .bind(entry.ends_at.clone())
                    .bind(flag(entry.all_day))
                    .bind(entry.rule.clone())
                    .bind(entry.location.clone())
                    .bind(pos(e.position));
                return run(c, query).await;
            }
            DomainEvent::CalendarEntryCancelled(cancelled) => {
                let sql = format!(
                    "UPDATE {} SET cancelled = 1 WHERE entry_id = $1",
                    t.name("calendar")
                );
                return run(c, sqlx::query(AssertSqlSafe(sql)).bind(&cancelled.entry_id)).await;
            }
            _ => return Ok(()),
        };
        let sql = format!("UPDATE {tasks} SET status = $2, updated_at = $3 WHERE task_id = $1");
        run(
            c,
            sqlx::query(AssertSqlSafe(sql))
                .bind(task_id)
                .bind(status)
                .bind(&e.recorded_at),
        )
        .await
    }
}
