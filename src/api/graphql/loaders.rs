//! Batch loaders: nested fields ask for rows by key, and each loader answers every key asked
//! for in one request-wide batch with one query, so a list of matters with their parties,
//! documents and deadlines costs a handful of queries, not one per row.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use crate::projection::ReadDb;
use crate::read;
use crate::read::matters::{contacts_by_id, grouped_by, matters_by_number};
use crate::store::StoreError;

pub type LoadError = Arc<StoreError>;

macro_rules! grouped_loaders {
    ($($(#[$doc:meta])* $loader:ident => $row:ty, $view:literal, $columns:literal,
       by $key:ident, $order:literal;)+) => {$(
        $(#[$doc])*
        pub struct $loader(pub ReadDb);

        impl Loader<String> for $loader {
            type Value = Vec<$row>;
            type Error = LoadError;

            async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
                let key = stringify!($key);
                grouped_by(self.0.pool(), $view, $columns, key, keys, $order, |row: &$row| &row.$key)
                    .await
                    .map_err(Arc::new)
            }
        }
    )+};
}

grouped_loaders! {
    TeamLoader => read::TeamRow, "rm_matter_team", "matter_number, user_id, capacity", by matter_number, "user_id";
    PartiesLoader => read::PartyRow, "rm_parties",
        "party_id, matter_number, contact_id, role, position, added_at", by matter_number, "position";
    DocumentsLoader => read::DocumentRow, "rm_documents",
        "document_id, matter_number, document_type, title, description, latest_version, position, created_at, updated_at",
        by matter_number, "position";
    TasksLoader => read::TaskRow, "rm_tasks",
        "task_id, matter_number, title, assignee, due_on, status, position, created_at, updated_at",
        by matter_number, "position";
    CalendarLoader => read::CalendarRow, "rm_calendar",
        "entry_id, matter_number, kind, title, starts_at, ends_at, all_day, rule, location, cancelled, position",
        by matter_number, "starts_at, entry_id";
    NotesLoader => read::NoteRow, "rm_notes",
        "note_id, matter_number, privileged, subject, body, author, position, created_at, edited_at",
        by matter_number, "position";
    TimeEntriesLoader => read::TimeEntryRow, "rm_time_entries",
        "time_entry_id, matter_number, user_id, worked_on, minutes, billable, description, position, recorded_at",
        by matter_number, "position";
    ConflictChecksLoader => read::ConflictCheckRow, "rm_conflict_checks",
        "check_id, matter_number, outcome, reviewer, query, notes, hits, position, recorded_at",
        by matter_number, "position";
    /// Parties of contacts, by contact id.
    PartiesOfContactLoader => read::PartyRow, "rm_parties",
        "party_id, matter_number, contact_id, role, position, added_at",
        by contact_id, "position";
    /// Versions of documents, by document id.
    VersionsLoader => read::DocumentVersionRow, "rm_document_versions",
        "document_id, version, content_hash, size, media_type, filename, uploaded_by, added_at",
        by document_id, "document_id, version";
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
