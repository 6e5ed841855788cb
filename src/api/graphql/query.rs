//! The query root.

use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

use super::caller::{Caller, admit_matter, admit_part, matter_facts};
use super::errors::{api_error, internal};
use super::ids::{self, Kind, encode_cursor};
use super::loaders::*;
use super::paging::{connection, connection_cost, page_request};
use super::types::*;
use crate::access::policy::{self, Capability, Decision, MatterAccess, Part};
use crate::projection::ReadDb;
use crate::read::matters::{self as read_matters, ContactFilter, MatterFilter, MatterSort};
use crate::read::{self, Bind, Columns, Sql};
use crate::service::{AsOf, Service};

#[derive(Default)]
pub struct Query;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum MatterStatusValue {
    Intake,
    Open,
    Pending,
    Closed,
    Archived,
}

impl MatterStatusValue {
    pub fn stored(self) -> &'static str {
        match self {
            MatterStatusValue::Intake => "intake",
            MatterStatusValue::Open => "open",
            MatterStatusValue::Pending => "pending",
            MatterStatusValue::Closed => "closed",
            MatterStatusValue::Archived => "archived",
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum MatterOrderField {
    Number,
    OpenedOn,
    UpdatedAt,
    Title,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum OrderDirection {
    Asc,
    Desc,
}

#[derive(InputObject, Default)]
pub struct MatterFilterInput {
    pub status: Option<Vec<MatterStatusValue>>,
    pub practice_area: Option<String>,
    /// Responsible or originating attorney.
    pub attorney: Option<String>,
    /// Matters where this contact is a client.
    pub client_contact_id: Option<String>,
    pub opened_from: Option<String>,
    pub opened_to: Option<String>,
    /// Every word must occur in the title.
    pub title_contains: Option<String>,
}

#[derive(InputObject)]
pub struct MatterOrder {
    pub field: MatterOrderField,
    pub direction: OrderDirection,
}

/// What a conflict check may reveal about another matter: its number, the party's role and
/// the responsible attorney, never its contents.
#[derive(SimpleObject)]
pub struct ConflictMatch {
    pub matter_number: String,
    pub party_id: String,
    pub role: String,
    pub contact_id: String,
    pub responsible_attorney: String,
    /// How many of the searched name's tokens matched.
    pub matched_tokens: u64,
}

#[derive(SimpleObject)]
pub struct ProjectionState {
    pub name: String,
    pub status: String,
    pub position: u64,
    pub lag: u64,
    pub failed_position: Option<u64>,
    pub error: Option<String>,
}

#[Object(name = "RecordsQuery")]
impl Query {
    /// Any object by its global id.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Node>> {
        let Some((kind, key)) = ids::decode(&id) else {
            return Ok(None);
        };
        let db = ctx.data::<ReadDb>()?;
        // A thing inside a matter is found only when the caller may read that part of it;
        // otherwise the answer is the same as for an id that names nothing.
        Ok(match kind {
            Kind::Matter => match load_one::<MatterLoader>(ctx, &key).await? {
                Some(row) => admit_matter(ctx, row).await?.map(Node::Matter),
                None => None,
            },
            Kind::Contact => {
                let caller = Caller::of(ctx)?;
                caller.require(Capability::ReadContacts)?;
                let principal = caller.signed()?;
                if policy::contact_walled(&caller.directory, principal, &key) {
                    caller.note(
                        None,
                        "contact",
                        Some(&key),
                        None,
                        Decision::Denied("walled"),
                    );
                    None
                } else {
                    load_one::<ContactLoader>(ctx, &key)
                        .await?
                        .map(|row| Node::Contact(Contact(row)))
                }
            }
            Kind::Party => {
                let row: Option<read::PartyRow> = one(db, "rm_parties", "party_id", &key).await?;
                admitted(ctx, row, |row| &row.matter_number, |_| Part::Parties)
                    .await?
                    .map(|row| Node::Party(Party(row)))
            }
            Kind::Document => {
                let row: Option<read::DocumentRow> =
                    one(db, "rm_documents", "document_id", &key).await?;
                admitted(ctx, row, |row| &row.matter_number, |_| Part::Documents)
                    .await?
                    .map(|row| Node::Document(Document(row)))
            }
            Kind::Task => {
                let row: Option<read::TaskRow> = one(db, "rm_tasks", "task_id", &key).await?;
                admitted(ctx, row, |row| &row.matter_number, |_| Part::Work)
                    .await?
                    .map(|row| Node::Task(Task(row)))
            }
            Kind::CalendarEntry => {
                let row: Option<read::CalendarRow> =
                    one(db, "rm_calendar", "entry_id", &key).await?;
                admitted(ctx, row, |row| &row.matter_number, |_| Part::Work)
                    .await?
                    .map(|row| Node::CalendarEntry(CalendarEntry(row)))
            }
            Kind::Note => {
                let row: Option<read::NoteRow> = one(db, "rm_notes", "note_id", &key).await?;
                admitted(
                    ctx,
                    row,
                    |row| &row.matter_number,
                    |row| {
                        if row.privileged != 0 {
                            Part::PrivilegedNotes
                        } else {
                            Part::Notes
                        }
                    },
                )
                .await?
                .map(|row| Node::Note(Note(row)))
            }
            Kind::TimeEntry => {
                let row: Option<read::TimeEntryRow> =
                    one(db, "rm_time_entries", "time_entry_id", &key).await?;
                admitted(ctx, row, |row| &row.matter_number, |_| Part::Time)
                    .await?
                    .map(|row| Node::TimeEntry(TimeEntry(row)))
            }
        })
    }

    /// A matter by its number.
    async fn matter(
        &self,
        ctx: &Context<'_>,
        number: String,
    ) -> async_graphql::Result<Option<Matter>> {
        let number = number.trim().to_ascii_uppercase();
        match load_one::<MatterLoader>(ctx, &number).await? {
            Some(row) => admit_matter(ctx, row).await,
            None => Ok(None),
        }
    }

    /// Matters, filtered and sorted (by number unless `orderBy` says otherwise).
    #[graphql(complexity = "connection_cost(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn matters(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        last: Option<i32>,
        after: Option<String>,
        before: Option<String>,
        filter: Option<MatterFilterInput>,
        order_by: Option<MatterOrder>,
    ) -> async_graphql::Result<Connection<String, Matter>> {
        let request = page_request(first, last, after, before)?;
        let filter = filter.unwrap_or_default();
        let filter = MatterFilter {
            statuses: filter
                .status
                .unwrap_or_default()
                .into_iter()
                .map(|status| status.stored().to_owned())
                .collect(),
            practice_area: filter.practice_area,
            attorney: filter.attorney,
            client_contact_id: filter.client_contact_id,
            opened_from: filter.opened_from,
            opened_to: filter.opened_to,
            title_contains: filter.title_contains,
        };
        let (sort, descending) = match order_by {
            Some(order) => (
                match order.field {
                    MatterOrderField::Number => MatterSort::Number,
                    MatterOrderField::OpenedOn => MatterSort::OpenedOn,
                    MatterOrderField::UpdatedAt => MatterSort::UpdatedAt,
                    MatterOrderField::Title => MatterSort::Title,
                },
                order.direction == OrderDirection::Desc,
            ),
            None => (MatterSort::Number, false),
        };
        let db = ctx.data::<ReadDb>()?;
        let scope = Caller::of(ctx)?.scope()?;
        let restrict = |sql: &mut Sql| scope.restrict(sql, "number");
        let page = read_matters::matters(db.pool(), &filter, &restrict, sort, descending, &request)
            .await
            .map_err(internal)?;
        let page = admit_page(ctx, page).await?;
        let sealed = page
            .rows
            .iter()
            .map(|(row, _)| (&row.opened, row.private.as_deref()));
        super::types::open_rows(ctx, &["description", "erased"], sealed).await?;
        Ok(connection(&request, page, |(row, access)| {
            let key = match sort {
                MatterSort::Number => row.number.clone(),
                MatterSort::OpenedOn => row.opened_on.clone(),
                MatterSort::UpdatedAt => row.updated_at.clone(),
                MatterSort::Title => row.title.to_lowercase(),
            };
            (encode_cursor(&key, &row.number), Matter { row, access })
        }))
    }

    async fn contact(
        &self,
        ctx: &Context<'_>,
        contact_id: String,
    ) -> async_graphql::Result<Option<Contact>> {
        let caller = Caller::of(ctx)?;
        let principal = caller.signed()?;
        if policy::contact_walled(&caller.directory, principal, &contact_id) {
            caller.note(
                None,
                "contact",
                Some(&contact_id),
                None,
                Decision::Denied("walled"),
            );
            return Ok(None);
        }
        let contact = load_one::<ContactLoader>(ctx, &contact_id).await?;
        if contact.is_some() {
            caller.note(
                None,
                "contact",
                Some(&contact_id),
                Some("contact.details"),
                Decision::Allowed("role"),
            );
        }
        Ok(contact.map(Contact))
    }

    /// Contacts in contact id order (names are stored sealed, so the list is not sorted by
    /// them). `search` keeps those whose names contain every word given; `email` and
    /// `identifier` (`scheme:value`) keep those with exactly that email or identifier (case
    /// of the email and of the scheme does not matter).
    #[graphql(complexity = "connection_cost(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        last: Option<i32>,
        after: Option<String>,
        before: Option<String>,
        search: Option<String>,
        email: Option<String>,
        identifier: Option<String>,
    ) -> async_graphql::Result<Connection<String, Contact>> {
        let request = page_request(first, last, after, before)?;
        let db = ctx.data::<ReadDb>()?;
        let caller = Caller::of(ctx)?;
        let filter = ContactFilter {
            search,
            email,
            identifier,
            excluded: caller.scope()?.walled_clients,
        };
        let vault = super::types::vault(ctx)?;
        let page = read_matters::contacts(db.pool(), vault, &filter, &request)
            .await
            .map_err(internal)?;
        let sealed = page
            .rows
            .iter()
            .map(|row| (&row.opened, Some(row.private.as_str())));
        super::types::open_rows(ctx, super::types::CONTACT_DATA, sealed).await?;
        for row in &page.rows {
            caller.note(
                None,
                "contact",
                Some(&row.contact_id),
                Some("contact.details"),
                Decision::Allowed("role"),
            );
        }
        Ok(connection(&request, page, |row| {
            let cursor = encode_cursor(&row.contact_id, &row.contact_id);
            (cursor, Contact(row))
        }))
    }

    /// Searches parties across every matter of the firm by name (case, accents and word order
    /// do not matter). Reveals only what a conflict check needs.
    #[graphql(complexity = 50)]
    async fn conflict_search(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<Vec<ConflictMatch>> {
        if name.chars().count() > 300 {
            return Err(api_error(
                "INVALID_ARGUMENT",
                "name must be at most 300 characters",
            ));
        }
        let db = ctx.data::<ReadDb>()?;
        let rows = read_matters::search_conflicts(db.pool(), super::types::vault(ctx)?, &name, 100)
            .await
            .map_err(internal)?;
        // Firm-wide by design (walls included): it reveals only what a conflict check needs,
        // and each match is recorded.
        let caller = Caller::of(ctx)?;
        caller.note(
            None,
            "conflict_search",
            None,
            Some("conflict.search"),
            Decision::Allowed("role"),
        );
        for row in &rows {
            caller.note(
                Some(&row.matter_number),
                "conflict_match",
                Some(&row.party_id),
                Some("conflict.match"),
                Decision::Allowed("conflict_search"),
            );
        }
        Ok(rows
            .into_iter()
            .map(|row| ConflictMatch {
                matter_number: row.matter_number,
                party_id: row.party_id,
                role: enum_text(&row.role),
                contact_id: row.contact_id,
                responsible_attorney: row.responsible_attorney,
                matched_tokens: u64::try_from(row.matched).unwrap_or(0),
            })
            .collect())
    }

    /// Open tasks across matters, soonest due first.
    #[graphql(complexity = "connection_cost(first, None, child_complexity)")]
    async fn open_tasks(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        assignee: Option<String>,
    ) -> async_graphql::Result<Connection<String, Task>> {
        let request = page_request(first, None, after, None)?;
        let db = ctx.data::<ReadDb>()?;
        let mut sql = Sql::new(format!(
            "SELECT {} FROM rm_tasks WHERE status = 'open'",
            read::TaskRow::COLUMNS
        ));
        let caller = Caller::of(ctx)?;
        caller.scope()?.restrict(&mut sql, "matter_number");
        if let Some(assignee) = assignee {
            let value = sql.bind(Bind::Text(assignee));
            sql.text.push_str(&format!(" AND assignee = {value}"));
        }
        let page = read::page::<read::TaskRow>(
            db.pool(),
            sql,
            true,
            "COALESCE(due_on, '')",
            "task_id",
            false,
            &request,
        )
        .await
        .map_err(internal)?;
        for row in &page.rows {
            caller.note(
                Some(&row.matter_number),
                "matter",
                None,
                Some(Part::Work.as_str()),
                Decision::Allowed("scope"),
            );
        }
        Ok(connection(&request, page, |row| {
            let cursor = encode_cursor(row.due_on.as_deref().unwrap_or(""), &row.task_id);
            (cursor, Task(row))
        }))
    }

    /// Calendar entries across matters from a date or time on, earliest first.
    #[graphql(complexity = "connection_cost(first, None, child_complexity)")]
    async fn calendar(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(desc = "Earliest start (a date or an RFC 3339 time)")] from: Option<String>,
    ) -> async_graphql::Result<Connection<String, CalendarEntry>> {
        let request = page_request(first, None, after, None)?;
        let db = ctx.data::<ReadDb>()?;
        let mut sql = Sql::new(format!(
            "SELECT {} FROM rm_calendar WHERE cancelled = 0",
            read::CalendarRow::COLUMNS
        ));
        let caller = Caller::of(ctx)?;
        caller.scope()?.restrict(&mut sql, "matter_number");
        if let Some(from) = from {
            let value = sql.bind(Bind::Text(from));
            sql.text.push_str(&format!(" AND starts_at >= {value}"));
        }
        let page = read::page::<read::CalendarRow>(
            db.pool(),
            sql,
            true,
            "starts_at",
            "entry_id",
            false,
            &request,
        )
        .await
        .map_err(internal)?;
        for row in &page.rows {
            caller.note(
                Some(&row.matter_number),
                "matter",
                None,
                Some(Part::Work.as_str()),
                Decision::Allowed("scope"),
            );
        }
        Ok(connection(&request, page, |row| {
            (
                encode_cursor(&row.starts_at, &row.entry_id),
                CalendarEntry(row),
            )
        }))
    }

    /// A matter as it stood at a log position or a time, rebuilt by replaying its events from
    /// the log (not from the read models). Give exactly one of `position` or `time`.
    #[graphql(complexity = 100)]
    async fn matter_as_of(
        &self,
        ctx: &Context<'_>,
        number: String,
        position: Option<u64>,
        time: Option<String>,
    ) -> async_graphql::Result<Option<MatterSnapshot>> {
        let service = ctx.data::<Arc<Service>>()?;
        let as_of = match (&position, &time) {
            (Some(position), None) => AsOf::Position(*position),
            (None, Some(time)) => AsOf::Time(time),
            _ => {
                return Err(api_error(
                    "INVALID_ARGUMENT",
                    "give exactly one of `position` or `time`",
                ));
            }
        };
        // Time travel shows content: the caller needs the matter's content as of now.
        let number = number.trim().to_ascii_uppercase();
        if !admit_part(ctx, &number, Part::Core).await? {
            return Ok(None);
        }
        match service.matter_as_of(&number, as_of).await {
            Ok(matter) => Ok(matter.map(MatterSnapshot)),
            Err(error) if error.is_user_error() => {
                Err(api_error(error.code(), error.public_message()))
            }
            Err(error) => Err(internal(error)),
        }
    }

    /// Each read model's checkpoint, lag and health.
    async fn projections(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ProjectionState>> {
        let service = ctx.data::<Arc<Service>>()?;
        let status = service.projector().status().await.map_err(internal)?;
        Ok(status
            .into_iter()
            .map(|state| ProjectionState {
                name: state.name,
                status: state.status,
                position: state.position,
                lag: state.lag,
                failed_position: state.failed_position,
                error: state.error,
            })
            .collect())
    }
}

async fn one<T>(
    db: &ReadDb,
    view: &str,
    key_column: &str,
    key: &str,
) -> async_graphql::Result<Option<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Columns + Send + Unpin,
{
    let mut sql = Sql::new(String::new());
    let value = sql.bind(Bind::Text(key.to_owned()));
    let columns = T::COLUMNS;
    sql.text = format!("SELECT {columns} FROM {view} WHERE {key_column} = {value}");
    let rows: Vec<T> = sql.fetch_all(db.pool()).await.map_err(internal)?;
    Ok(rows.into_iter().next())
}

/// A row that belongs to a matter, if the caller may read `part_of(row)` of that matter.
async fn admitted<T>(
    ctx: &Context<'_>,
    row: Option<T>,
    matter_of: impl Fn(&T) -> &String,
    part_of: impl Fn(&T) -> Part,
) -> async_graphql::Result<Option<T>> {
    let Some(row) = row else {
        return Ok(None);
    };
    let number = matter_of(&row).clone();
    Ok(admit_part(ctx, &number, part_of(&row))
        .await?
        .then_some(row))
}

/// A page of matters the SQL scope let through, each with the caller's access (decided and
/// recorded per matter; the scope and the policy agree, so none is dropped here in practice).
async fn admit_page(
    ctx: &Context<'_>,
    page: read::Page<read::MatterRow>,
) -> async_graphql::Result<read::Page<(read::MatterRow, MatterAccess)>> {
    let caller = Caller::of(ctx)?;
    let facts =
        futures::future::try_join_all(page.rows.iter().map(|row| matter_facts(ctx, row))).await?;
    let mut rows = Vec::with_capacity(page.rows.len());
    for (row, facts) in page.rows.into_iter().zip(facts) {
        let access = caller.matter_access(&facts)?;
        if access.is_visible() {
            rows.push((row, access));
        }
    }
    Ok(read::Page {
        rows,
        has_more: page.has_more,
    })
}
