//! What hangs off a matter: team, parties, documents, tasks, calendar, notes, time, checks.
//!
//! Documents, versions, notes, time entries and conflict checks keep their client data sealed in
//! the row's `private` column; each type opens it when one of its client-data fields resolves
//! (see [`super::opened`]) and has `erased`.

use async_graphql::{Context, ID, Object, SimpleObject};

use super::{Contact, ERASED, LIST_ESTIMATE, Matter, enum_text, load_one, open_rows, opened};
use crate::api::graphql::caller::admit_matter;
use crate::api::graphql::ids::{Kind, encode};
use crate::api::graphql::loaders::{ContactLoader, MatterLoader, VersionsLoader};
use crate::read::{self, Private};

/// Fields that show client data, per type: a list opens its rows at once when it selects one.
pub const DOCUMENT_DATA: &[&str] = &["erased", "title", "description"];
pub const VERSION_DATA: &[&str] = &["erased", "filename"];
pub const NOTE_DATA: &[&str] = &["erased", "subject", "body"];
pub const TIME_DATA: &[&str] = &["erased", "description"];
pub const CHECK_DATA: &[&str] = &["erased", "query", "notes"];

/// A required text member of opened client data: "[erased]" once erased, empty when absent.
fn required_text(private: &Private, member: &str) -> String {
    if private.is_erased() {
        return ERASED.to_owned();
    }
    private.text(member).unwrap_or_default()
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[derive(Clone)]
pub struct TeamMember(pub read::TeamRow);

#[Object]
impl TeamMember {
    async fn user_id(&self) -> &str {
        &self.0.user_id
    }
    /// RESPONSIBLE_ATTORNEY, ORIGINATING_ATTORNEY, ATTORNEY, PARALEGAL or STAFF.
    async fn capacity(&self) -> String {
        enum_text(&self.0.capacity)
    }
}

#[derive(Clone)]
pub struct Party(pub read::PartyRow);

#[Object]
impl Party {
    pub async fn id(&self) -> ID {
        encode(Kind::Party, &self.0.party_id)
    }
    /// CLIENT, OPPOSING_PARTY, OPPOSING_COUNSEL, CO_COUNSEL, WITNESS, EXPERT or COURT.
    async fn role(&self) -> String {
        enum_text(&self.0.role)
    }
    async fn added_at(&self) -> &str {
        &self.0.added_at
    }
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(load_one::<ContactLoader>(ctx, &self.0.contact_id)
            .await?
            .map(Contact))
    }
    async fn matter(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Matter>> {
        match load_one::<MatterLoader>(ctx, &self.0.matter_number).await? {
            Some(row) => admit_matter(ctx, row).await,
            None => Ok(None),
        }
    }
}

#[derive(Clone)]
pub struct Document(pub read::DocumentRow);

#[Object]
impl Document {
    pub async fn id(&self) -> ID {
        encode(Kind::Document, &self.0.document_id)
    }
    async fn document_id(&self) -> &str {
        &self.0.document_id
    }
    async fn document_type(&self) -> &str {
        &self.0.document_type
    }
    /// Whether the document's title and description were erased.
    async fn erased(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(self.private(ctx).await?.is_erased())
    }
    async fn title(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self.private(ctx).await?.text("title"))
    }
    async fn description(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self.private(ctx).await?.text("description"))
    }
    async fn latest_version(&self) -> u64 {
        unsigned(self.0.latest_version)
    }
    async fn created_at(&self) -> &str {
        &self.0.created_at
    }
    async fn updated_at(&self) -> &str {
        &self.0.updated_at
    }
    /// Every version, oldest first; none is ever replaced.
    #[graphql(complexity = "LIST_ESTIMATE * child_complexity")]
    async fn versions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<DocumentVersion>> {
        let rows = load_one::<VersionsLoader>(ctx, &self.0.document_id)
            .await?
            .unwrap_or_default();
        let sealed = rows
            .iter()
            .map(|row| (&row.opened, Some(row.private.as_str())));
        open_rows(ctx, VERSION_DATA, sealed).await?;
        Ok(rows.into_iter().map(DocumentVersion).collect())
    }
}

impl Document {
    async fn private<'a>(&'a self, ctx: &Context<'_>) -> async_graphql::Result<&'a Private> {
        opened(ctx, &self.0.opened, Some(&self.0.private)).await
    }
}

#[derive(Clone)]
pub struct DocumentVersion(pub read::DocumentVersionRow);

#[Object]
impl DocumentVersion {
    async fn version(&self) -> u64 {
        unsigned(self.0.version)
    }
    /// blake3 of the bytes, lowercase hex.
    async fn content_hash(&self) -> &str {
        &self.0.content_hash
    }
    async fn size(&self) -> u64 {
        unsigned(self.0.size)
    }
    async fn media_type(&self) -> &str {
        &self.0.media_type
    }
    /// Whether the version's filename was erased.
    async fn erased(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(self.private(ctx).await?.is_erased())
    }
    async fn filename(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self.private(ctx).await?.text("filename"))
    }
    async fn uploaded_by(&self) -> &str {
        &self.0.uploaded_by
    }
    async fn added_at(&self) -> &str {
        &self.0.added_at
    }
    /// Where to GET the bytes.
    async fn download_path(&self) -> String {
        format!(
            "/documents/{}/versions/{}/content",
            self.0.document_id, self.0.version
        )
    }
}

impl DocumentVersion {
    async fn private<'a>(&'a self, ctx: &Context<'_>) -> async_graphql::Result<&'a Private> {
        opened(ctx, &self.0.opened, Some(&self.0.private)).await
    }
}

#[derive(Clone)]
pub struct Task(pub read::TaskRow);

#[Object]
impl Task {
    pub async fn id(&self) -> ID {
        encode(Kind::Task, &self.0.task_id)
    }
    async fn task_id(&self) -> &str {
        &self.0.task_id
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn assignee(&self) -> Option<&str> {
        self.0.assignee.as_deref()
    }
    async fn due_on(&self) -> Option<&str> {
        self.0.due_on.as_deref()
    }
    /// OPEN, COMPLETED or CANCELLED.
    async fn status(&self) -> String {
        enum_text(&self.0.status)
    }
    async fn matter_number(&self) -> &str {
        &self.0.matter_number
    }
    async fn matter(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Matter>> {
        match load_one::<MatterLoader>(ctx, &self.0.matter_number).await? {
            Some(row) => admit_matter(ctx, row).await,
            None => Ok(None),
        }
    }
}

#[derive(Clone)]
pub struct CalendarEntry(pub read::CalendarRow);

#[Object]
impl CalendarEntry {
    pub async fn id(&self) -> ID {
        encode(Kind::CalendarEntry, &self.0.entry_id)
    }
    async fn entry_id(&self) -> &str {
        &self.0.entry_id
    }
    /// HEARING, FILING_DEADLINE, MEETING or DEADLINE.
    async fn kind(&self) -> String {
        enum_text(&self.0.kind)
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn starts_at(&self) -> &str {
        &self.0.starts_at
    }
    async fn ends_at(&self) -> Option<&str> {
        self.0.ends_at.as_deref()
    }
    async fn all_day(&self) -> bool {
        self.0.all_day != 0
    }
    /// The court rule or reason that sets a deadline.
    async fn rule(&self) -> Option<&str> {
        self.0.rule.as_deref()
    }
    async fn location(&self) -> Option<&str> {
        self.0.location.as_deref()
    }
    async fn cancelled(&self) -> bool {
        self.0.cancelled != 0
    }
    async fn matter_number(&self) -> &str {
        &self.0.matter_number
    }
}

#[derive(Clone)]
pub struct Note(pub read::NoteRow);

#[Object]
impl Note {
    pub async fn id(&self) -> ID {
        encode(Kind::Note, &self.0.note_id)
    }
    async fn note_id(&self) -> &str {
        &self.0.note_id
    }
    async fn privileged(&self) -> bool {
        self.0.privileged != 0
    }
    /// Whether the note's subject and body were erased.
    async fn erased(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(self.private(ctx).await?.is_erased())
    }
    async fn subject(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self.private(ctx).await?.text("subject"))
    }
    /// The text; "[erased]" once erased.
    async fn body(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(required_text(self.private(ctx).await?, "body"))
    }
    async fn author(&self) -> &str {
        &self.0.author
    }
    async fn created_at(&self) -> &str {
        &self.0.created_at
    }
    async fn edited_at(&self) -> Option<&str> {
        self.0.edited_at.as_deref()
    }
}

impl Note {
    async fn private<'a>(&'a self, ctx: &Context<'_>) -> async_graphql::Result<&'a Private> {
        opened(ctx, &self.0.opened, Some(&self.0.private)).await
    }
}

#[derive(Clone)]
pub struct TimeEntry(pub read::TimeEntryRow);

#[Object]
impl TimeEntry {
    pub async fn id(&self) -> ID {
        encode(Kind::TimeEntry, &self.0.time_entry_id)
    }
    async fn user_id(&self) -> &str {
        &self.0.user_id
    }
    async fn worked_on(&self) -> &str {
        &self.0.worked_on
    }
    async fn minutes(&self) -> u64 {
        unsigned(self.0.minutes)
    }
    async fn billable(&self) -> bool {
        self.0.billable != 0
    }
    /// Whether the entry's description was erased.
    async fn erased(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(self.private(ctx).await?.is_erased())
    }
    /// What the time was spent on; "[erased]" once erased.
    async fn description(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(required_text(self.private(ctx).await?, "description"))
    }
}

impl TimeEntry {
    async fn private<'a>(&'a self, ctx: &Context<'_>) -> async_graphql::Result<&'a Private> {
        opened(ctx, &self.0.opened, Some(&self.0.private)).await
    }
}

#[derive(Clone, SimpleObject)]
pub struct ConflictHitView {
    pub matter_number: String,
    pub party_id: String,
    pub role: String,
}

#[derive(Clone)]
pub struct ConflictCheck(pub read::ConflictCheckRow);

#[Object]
impl ConflictCheck {
    async fn check_id(&self) -> &str {
        &self.0.check_id
    }
    /// CLEARED or POTENTIAL_CONFLICT.
    async fn outcome(&self) -> String {
        enum_text(&self.0.outcome)
    }
    async fn reviewer(&self) -> &str {
        &self.0.reviewer
    }
    /// Whether the check's query and notes were erased.
    async fn erased(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(self.private(ctx).await?.is_erased())
    }
    /// The names searched for; "[erased]" once erased.
    async fn query(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(required_text(self.private(ctx).await?, "query"))
    }
    async fn notes(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self.private(ctx).await?.text("notes"))
    }
    async fn recorded_at(&self) -> &str {
        &self.0.recorded_at
    }
    async fn hits(&self) -> Vec<ConflictHitView> {
        let hits: Vec<crate::domain::events::ConflictHit> =
            serde_json::from_str(&self.0.hits).unwrap_or_default();
        hits.into_iter()
            .map(|hit| ConflictHitView {
                matter_number: hit.matter_number,
                party_id: hit.party_id,
                role: enum_text(hit.role.as_str()),
            })
            .collect()
    }
}

impl ConflictCheck {
    async fn private<'a>(&'a self, ctx: &Context<'_>) -> async_graphql::Result<&'a Private> {
        opened(ctx, &self.0.opened, Some(&self.0.private)).await
    }
}
