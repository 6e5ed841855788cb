//! Batch loaders: nested fields ask for rows by key, and each loader answers every key asked
//! for in one request-wide batch with one query, so a list of matters with their parties,
//! documents and deadlines costs a handful of queries, not one per row.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use crate::projection::ReadDb;
use crate::read::matters::{by_matter, contacts_by_id, matters_by_number};
use crate::read::{self, Sql};
use crate::store::StoreError;

pub type LoadError = Arc<StoreError>;

macro_rules! children_of_matters {
    ($($loader:ident => $row:ty, $view:literal, $columns:literal, $order:literal;)+) => {$(
        pub struct $loader(pub ReadDb);

        impl Loader<String> for $loader {
            type Value = Vec<$row>;
            type Error = LoadError;

            async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
                by_matter(self.0.pool(), $view, $columns, keys, $order, |row: &$row| &row.matter_number)
                    .await
                    .map_err(Arc::new)
            }
        }
    )+};
}

children_of_matters! {
    TeamLoader => read::TeamRow, "rm_matter_team", "matter_number, user_id, capacity", "user_id";
    PartiesLoader => read::PartyRow, "rm_parties",
        "party_id, matter_number, contact_id, role, position, added_at", "position";
    DocumentsLoader => read::DocumentRow, "rm_documents",
        "document_id, matter_number, document_type, title, description, latest_version, position, created_at, updated_at",
        "position";
    TasksLoader => read::TaskRow, "rm_tasks",
        "task_id, matter_number, title, assignee, due_on, status, position, created_at, updated_at",
        "position";
    CalendarLoader => read::CalendarRow, "rm_calendar",
        "entry_id, matter_number, kind, title, starts_at, ends_at, all_day, rule, location, cancelled, position",
        "starts_at, entry_id";
    NotesLoader => read::NoteRow, "rm_notes",
        "note_id, matter_number, privileged, subject, body, author, position, created_at, edited_at",
        "position";
    TimeEntriesLoader => read::TimeEntryRow, "rm_time_entries",
        "time_entry_id, matter_number, user_id, worked_on, minutes, billable, description, position, recorded_at",
        "position";
    ConflictChecksLoader => read::ConflictCheckRow, "rm_conflict_checks",
        "check_id, matter_number, outcome, reviewer, query, notes, hits, position, recorded_at",
        "position";
}

pub struct MatterLoader(pub ReadDb);

impl Loader<String> for MatterLoader {
    type Value = read::MatterRow;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = matters_by_number(self.0.pool(), keys)
            .await
            .map_err(Arc::new)?;
        Ok(rows
            .into_iter()
            .map(|row| (row.number.clone(), row))
            .collect())
    }
}

pub struct ContactLoader(pub ReadDb);

impl Loader<String> for ContactLoader {
    type Value = read::ContactRow;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = contacts_by_id(self.0.pool(), keys)
            .await
            .map_err(Arc::new)?;
        Ok(rows
            .into_iter()
            .map(|row| (row.contact_id.clone(), row))
            .collect())
    }
}

/// Parties of contacts, by contact id.
pub struct PartiesOfContactLoader(pub ReadDb);

impl Loader<String> for PartiesOfContactLoader {
    type Value = Vec<read::PartyRow>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let mut sql = Sql::new(String::new());
        let list = sql.bind_list(keys);
        sql.text = format!(
            "SELECT party_id, matter_number, contact_id, role, position, added_at FROM rm_parties \
             WHERE contact_id IN ({list}) ORDER BY position"
        );
        let rows: Vec<read::PartyRow> = sql.fetch_all(self.0.pool()).await.map_err(Arc::new)?;
        let mut grouped: HashMap<String, Vec<read::PartyRow>> = HashMap::new();
        for row in rows {
            grouped.entry(row.contact_id.clone()).or_default().push(row);
        }
        Ok(grouped)
    }
}

/// Versions of documents, by document id.
pub struct VersionsLoader(pub ReadDb);

impl Loader<String> for VersionsLoader {
    type Value = Vec<read::DocumentVersionRow>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let mut sql = Sql::new(String::new());
        let list = sql.bind_list(keys);
        sql.text = format!(
            "SELECT document_id, version, content_hash, size, media_type, filename, uploaded_by, \
             added_at FROM rm_document_versions WHERE document_id IN ({list}) \
             ORDER BY document_id, version"
        );
        let rows: Vec<read::DocumentVersionRow> =
            sql.fetch_all(self.0.pool()).await.map_err(Arc::new)?;
        let mut grouped: HashMap<String, Vec<read::DocumentVersionRow>> = HashMap::new();
        for row in rows {
            grouped
                .entry(row.document_id.clone())
                .or_default()
                .push(row);
        }
        Ok(grouped)
    }
}
