//! `MatterSnapshot`: a matter as it stood at a past position or time, replayed from the log.

use async_graphql::{Object, SimpleObject};

use super::enum_text;
use crate::domain::matter::Matter;

#[derive(Clone)]
pub struct MatterSnapshot(pub Matter);

#[derive(Clone, SimpleObject)]
pub struct SnapshotParty {
    pub party_id: String,
    pub contact_id: String,
    pub role: String,
}

#[derive(Clone, SimpleObject)]
pub struct SnapshotDocument {
    pub document_id: String,
    pub document_type: String,
    pub title: Option<String>,
    pub versions: u64,
}

#[derive(Clone, SimpleObject)]
pub struct SnapshotTask {
    pub task_id: String,
    pub title: String,
    pub status: String,
    pub due_on: Option<String>,
}

#[derive(Clone, SimpleObject)]
pub struct SnapshotDeadline {
    pub entry_id: String,
    pub kind: String,
    pub title: String,
    pub starts_at: String,
    pub cancelled: bool,
}

#[Object]
impl MatterSnapshot {
    async fn number(&self) -> &str {
        &self.0.number
    }
    /// The stream version the snapshot reflects.
    async fn version(&self) -> u64 {
        self.0.version
    }
    /// The log position of the last event included.
    async fn position(&self) -> u64 {
        self.0.position
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn practice_area(&self) -> &str {
        &self.0.practice_area
    }
    async fn status(&self) -> String {
        enum_text(self.0.status.as_str())
    }
    async fn responsible_attorney(&self) -> &str {
        &self.0.responsible_attorney
    }
    async fn opened_on(&self) -> &str {
        &self.0.opened_on
    }
    async fn closed_on(&self) -> Option<&str> {
        self.0.closed_on.as_deref()
    }
    async fn team(&self) -> Vec<String> {
        self.0.team.keys().cloned().collect()
    }
    async fn custom_fields(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(serde_json::Value::Object(
            self.0.custom_fields.clone().into_iter().collect(),
        ))
    }
    async fn parties(&self) -> Vec<SnapshotParty> {
        self.0
            .parties
            .values()
            .map(|party| SnapshotParty {
                party_id: party.party_id.clone(),
                contact_id: party.contact_id.clone(),
                role: enum_text(party.role.as_str()),
            })
            .collect()
    }
    async fn documents(&self) -> Vec<SnapshotDocument> {
        self.0
            .documents
            .values()
            .map(|document| SnapshotDocument {
                document_id: document.document_id.clone(),
                document_type: document.document_type.clone(),
                title: document.title.clone(),
                versions: document.versions.len() as u64,
            })
            .collect()
    }
    async fn tasks(&self) -> Vec<SnapshotTask> {
        self.0
            .tasks
            .values()
            .map(|task| SnapshotTask {
                task_id: task.task_id.clone(),
                title: task.title.clone(),
                status: enum_text(task.status.as_str()),
                due_on: task.due_on.clone(),
            })
            .collect()
    }
    async fn calendar_entries(&self) -> Vec<SnapshotDeadline> {
        self.0
            .calendar
            .values()
            .map(|entry| SnapshotDeadline {
                entry_id: entry.entry_id.clone(),
                kind: enum_text(
                    &serde_json::to_value(entry.kind)
                        .ok()
                        .and_then(|value| value.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                ),
                title: entry.title.clone(),
                starts_at: entry.starts_at.clone(),
                cancelled: entry.cancelled,
            })
            .collect()
    }
}
