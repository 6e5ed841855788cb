//! `Matter`: the matter detail, with its children loaded in batches.
//!
//! Its description and sensitive custom field values are sealed in the row and opened when
//! those fields resolve; the child lists open their rows' client data with one load of keys
//! when the selection shows any of it.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object};
use serde_json::Value;

use super::children::{CHECK_DATA, DOCUMENT_DATA, NOTE_DATA, TIME_DATA};
use super::contact::CONTACT_DATA;
use super::{
    CalendarEntry, ConflictCheck, Document, HistoryEvent, LIST_ESTIMATE, Note, Party, Task,
    TeamMember, TimeEntry, TimelineEntry, load_one, open_rows, opened, vault,
};
use crate::access::policy::{MatterAccess, Part};
use crate::api::graphql::caller::Caller;
use crate::api::graphql::errors::{api_error, internal};
use crate::api::graphql::guard::matter_part;
use crate::api::graphql::ids::{Kind, encode, encode_cursor};
use crate::api::graphql::loaders::*;
use crate::api::graphql::paging::{connection, connection_cost, page_request};
use crate::projection::ReadDb;
use crate::projection::models::SEALED_REF;
use crate::read::{self, Bind, Private, Sql};
use crate::service::Service;

/// A matter as one caller may see it: the row and the access the caller was admitted with.
/// Every field checks its part (see `guard::FIELDS`) before it reveals anything.
#[derive(Clone)]
pub struct Matter {
    pub row: read::MatterRow,
    pub access: MatterAccess,
}

impl Matter {
    /// Checks the part the field being resolved reveals, and records it as touched.
    fn see(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let Some(part) = matter_part(ctx.field().name()) else {
            return Err(api_error("FORBIDDEN", "you do not have access to this"));
        };
        Caller::of(ctx)?.read_part(&self.row.number, self.access, part)
    }

    /// The opened description column (an empty object when the matter never had one).
    async fn private<'a>(&'a self, ctx: &Context<'_>) -> async_graphql::Result<&'a Private> {
        opened(ctx, &self.row.opened, self.row.private.as_deref()).await
    }

    /// Custom field values by key, sensitive ones opened (null once erased), and whether any
    /// was erased.
    async fn opened_custom_fields(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<(serde_json::Map<String, Value>, bool)> {
        let mut fields: serde_json::Map<String, Value> =
            serde_json::from_str(&self.row.custom_fields).unwrap_or_default();
        let sealed: Vec<(String, String)> = fields
            .iter()
            .filter_map(|(key, value)| {
                let text = value.get(SEALED_REF)?.as_str()?;
                Some((key.clone(), text.to_owned()))
            })
            .collect();
        if sealed.is_empty() {
            return Ok((fields, false));
        }
        let texts: Vec<&str> = sealed.iter().map(|(_, text)| text.as_str()).collect();
        let keys = vault(ctx)?
            .keys_for_columns(texts)
            .await
            .map_err(internal)?;
        let mut erased = false;
        for (key, text) in sealed {
            let value = match keys.open_column(&text).map_err(internal)? {
                crate::vault::Column::Plain(private) => {
                    private.get("value").cloned().unwrap_or(Value::Null)
                }
                crate::vault::Column::Erased => {
                    erased = true;
                    Value::Null
                }
            };
            fields.insert(key, value);
        }
        Ok((fields, erased))
    }
}

#[Object]
impl Matter {
    pub async fn id(&self, ctx: &Context<'_>) -> async_graphql::Result<ID> {
        self.see(ctx)?;
        Ok(encode(Kind::Matter, &self.row.number))
    }
    /// The firm-unique matter number, e.g. 2026-0042.
    async fn number(&self, ctx: &Context<'_>) -> async_graphql::Result<&str> {
        self.see(ctx)?;
        Ok(&self.row.number)
    }
    async fn title(&self, ctx: &Context<'_>) -> async_graphql::Result<&str> {
        self.see(ctx)?;
        Ok(&self.row.title)
    }
    /// Null when the matter has none, or once its data is erased.
    async fn description(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        self.see(ctx)?;
        Ok(self.private(ctx).await?.text("description"))
    }
    /// Whether the matter's client data (description, sensitive custom field values) was
    /// erased: its key destroyed.
    async fn erased(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        self.see(ctx)?;
        if self.row.erased != 0 || self.private(ctx).await?.is_erased() {
            return Ok(true);
        }
        Ok(self.opened_custom_fields(ctx).await?.1)
    }
    async fn practice_area(&self, ctx: &Context<'_>) -> async_graphql::Result<&str> {
        self.see(ctx)?;
        Ok(&self.row.practice_area)
    }
    /// INTAKE, OPEN, PENDING, CLOSED or ARCHIVED.
    async fn status(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        self.see(ctx)?;
        Ok(super::enum_text(&self.row.status))
    }
    async fn responsible_attorney(&self, ctx: &Context<'_>) -> async_graphql::Result<&str> {
        self.see(ctx)?;
        Ok(&self.row.responsible_attorney)
    }
    async fn originating_attorney(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        self.see(ctx)?;
        Ok(self.row.originating_attorney.as_deref())
    }
    async fn opened_on(&self, ctx: &Context<'_>) -> async_graphql::Result<&str> {
        self.see(ctx)?;
        Ok(&self.row.opened_on)
    }
    async fn closed_on(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        self.see(ctx)?;
        Ok(self.row.closed_on.as_deref())
    }
    async fn statute_of_limitations_on(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<&str>> {
        self.see(ctx)?;
        Ok(self.row.statute_of_limitations_on.as_deref())
    }
    /// Custom field values by key, as a JSON object; a sensitive field's value is null once
    /// erased.
    async fn custom_fields(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<async_graphql::Json<Value>> {
        self.see(ctx)?;
        let (fields, _) = self.opened_custom_fields(ctx).await?;
        Ok(async_graphql::Json(Value::Object(fields)))
    }
    /// The matter stream's version: pass it as `expectedVersion` to the next mutation.
    async fn version(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        self.see(ctx)?;
        Ok(u64::try_from(self.row.version).unwrap_or(0))
    }
    /// Log position of the matter's latest event.
    async fn position(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        self.see(ctx)?;
        Ok(u64::try_from(self.row.position).unwrap_or(0))
    }
    /// Whether every fee earner of the firm may read the matter, not only its team.
    async fn firm_visible(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        self.see(ctx)?;
        Ok(self.row.firm_visible != 0)
    }
    /// Whether the matter is frozen for an incident: readable, but every change is refused
    /// (`MATTER_FROZEN`) until an admin unfreezes it.
    async fn frozen(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        self.see(ctx)?;
        Ok(self.row.frozen != 0)
    }
    async fn created_at(&self, ctx: &Context<'_>) -> async_graphql::Result<&str> {
        self.see(ctx)?;
        Ok(&self.row.created_at)
    }
    async fn updated_at(&self, ctx: &Context<'_>) -> async_graphql::Result<&str> {
        self.see(ctx)?;
        Ok(&self.row.updated_at)
    }

    #[graphql(complexity = "LIST_ESTIMATE * child_complexity")]
    async fn team(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TeamMember>> {
        self.see(ctx)?;
        let rows = load_one::<TeamLoader>(ctx, &self.row.number)
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(TeamMember).collect())
    }
    #[graphql(complexity = "LIST_ESTIMATE * child_complexity")]
    async fn parties(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Party>> {
        self.see(ctx)?;
        let rows = load_one::<PartiesLoader>(ctx, &self.row.number)
            .await?
            .unwrap_or_default();
        // Each party's contact resolves on its own; loading the contacts' keys here, in one
        // go, spares each of them a key lookup of its own when it opens its details.
        let look = ctx.look_ahead();
        if CONTACT_DATA
            .iter()
            .any(|field| look.field("contact").field(field).exists())
        {
            let ids: Vec<String> = rows.iter().map(|row| row.contact_id.clone()).collect();
            let contacts = ctx
                .data::<async_graphql::dataloader::DataLoader<ContactLoader>>()?
                .load_many(ids)
                .await
                .map_err(|error| internal((*error).clone()))?;
            let texts: Vec<&str> = contacts.values().map(|row| row.private.as_str()).collect();
            vault(ctx)?
                .keys_for_columns(texts)
                .await
                .map_err(internal)?;
        }
        Ok(rows.into_iter().map(Party).collect())
    }
    #[graphql(complexity = "LIST_ESTIMATE * child_complexity")]
    async fn documents(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Document>> {
        self.see(ctx)?;
        let rows = load_one::<DocumentsLoader>(ctx, &self.row.number)
            .await?
            .unwrap_or_default();
        let sealed = rows
            .iter()
            .map(|row| (&row.opened, Some(row.private.as_str())));
        open_rows(ctx, DOCUMENT_DATA, sealed).await?;
        Ok(rows.into_iter().map(Document).collect())
    }
    #[graphql(complexity = "LIST_ESTIMATE * child_complexity")]
    async fn tasks(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Task>> {
        self.see(ctx)?;
        let rows = load_one::<TasksLoader>(ctx, &self.row.number)
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(Task).collect())
    }
    /// Hearings, deadlines and meetings, earliest first.
    #[graphql(complexity = "LIST_ESTIMATE * child_complexity")]
    async fn calendar_entries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] include_cancelled: bool,
    ) -> async_graphql::Result<Vec<CalendarEntry>> {
        self.see(ctx)?;
        let rows = load_one::<CalendarLoader>(ctx, &self.row.number)
            .await?
            .unwrap_or_default();
        Ok(rows
            .into_iter()
            .filter(|row| include_cancelled || row.cancelled == 0)
            .map(CalendarEntry)
            .collect())
    }
    #[graphql(complexity = "LIST_ESTIMATE * child_complexity")]
    async fn notes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Note>> {
        self.see(ctx)?;
        let rows = load_one::<NotesLoader>(ctx, &self.row.number)
            .await?
            .unwrap_or_default();
        // Privileged notes only for lawyers on the team; others do not learn they exist.
        let caller = Caller::of(ctx)?;
        let privileged = self.access.decide(Part::PrivilegedNotes).is_allowed();
        if privileged && rows.iter().any(|row| row.privileged != 0) {
            caller.read_part(&self.row.number, self.access, Part::PrivilegedNotes)?;
        }
        let rows: Vec<read::NoteRow> = rows
            .into_iter()
            .filter(|row| privileged || row.privileged == 0)
            .collect();
        let sealed = rows
            .iter()
            .map(|row| (&row.opened, Some(row.private.as_str())));
        open_rows(ctx, NOTE_DATA, sealed).await?;
        Ok(rows.into_iter().map(Note).collect())
    }
    #[graphql(complexity = "LIST_ESTIMATE * child_complexity")]
    async fn time_entries(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TimeEntry>> {
        self.see(ctx)?;
        let rows = load_one::<TimeEntriesLoader>(ctx, &self.row.number)
            .await?
            .unwrap_or_default();
        let sealed = rows
            .iter()
            .map(|row| (&row.opened, Some(row.private.as_str())));
        open_rows(ctx, TIME_DATA, sealed).await?;
        Ok(rows.into_iter().map(TimeEntry).collect())
    }
    #[graphql(complexity = "LIST_ESTIMATE * child_complexity")]
    async fn conflict_checks(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ConflictCheck>> {
        self.see(ctx)?;
        let rows = load_one::<ConflictChecksLoader>(ctx, &self.row.number)
            .await?
            .unwrap_or_default();
        let sealed = rows
            .iter()
            .map(|row| (&row.opened, Some(row.private.as_str())));
        open_rows(ctx, CHECK_DATA, sealed).await?;
        Ok(rows.into_iter().map(ConflictCheck).collect())
    }

    /// The matter's events from the timeline read model, oldest first.
    #[graphql(complexity = "connection_cost(first, last, child_complexity)")]
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        last: Option<i32>,
        after: Option<String>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, TimelineEntry>> {
        self.see(ctx)?;
        let request = page_request(first, last, after, before)?;
        let db = ctx.data::<ReadDb>()?;
        let mut sql = Sql::new(format!(
            "SELECT {} FROM rm_timeline",
            <read::TimelineRow as read::Columns>::COLUMNS
        ));
        let number = sql.bind(Bind::Text(self.row.number.clone()));
        sql.text
            .push_str(&format!(" WHERE matter_number = {number}"));
        // Positions sort as text only when padded to one width.
        let page = read::page::<read::TimelineRow>(
            db.pool(),
            sql,
            true,
            "CAST(stream_version + 100000000000 AS TEXT)",
            // Versions are unique within a matter: the tie-breaker never decides.
            "matter_number",
            false,
            &request,
        )
        .await
        .map_err(internal)?;
        Ok(connection(&request, page, |row| {
            let cursor = encode_cursor(
                &(row.stream_version + 100_000_000_000).to_string(),
                &row.matter_number,
            );
            (cursor, TimelineEntry(row))
        }))
    }

    /// The matter's events straight from the signed log, each with its hash and signature and
    /// whether it verifies.
    #[graphql(complexity = "connection_cost(Some(first), None, child_complexity) * 2")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many events (1 to 100).", default = 20)] first: i32,
        #[graphql(
            desc = "Start after this stream version (0 for the beginning).",
            default = 0
        )]
        after_version: u64,
    ) -> async_graphql::Result<Vec<HistoryEvent>> {
        self.see(ctx)?;
        let request = page_request(Some(first), None, None, None)?;
        let service = ctx.data::<std::sync::Arc<Service>>()?;
        let stream = crate::domain::ids::MatterNumber::parse(&self.row.number)
            .map_err(|error| internal(crate::service::ServiceError::from(error)))?
            .stream();
        let entries = crate::service::history::stream_history(
            service.log(),
            &stream,
            after_version + 1,
            request.size,
        )
        .await
        .map_err(internal)?;
        Ok(entries.into_iter().map(HistoryEvent).collect())
    }
}
