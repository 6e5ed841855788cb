//! Matter lists, per-matter children (for the API's batch loaders), contacts and the conflict
//! search.

use std::collections::HashMap;

use sqlx::AnyPool;

use super::rows::*;
use super::{Bind, Page, PageRequest, Sql, page};
use crate::domain::names::name_tokens;
use crate::store::StoreError;

const MATTER_COLUMNS: &str = "number, title, description, practice_area, status, \
    responsible_attorney, originating_attorney, opened_on, closed_on, statute_of_limitations_on, \
    custom_fields, firm_visible, version, position, created_at, updated_at";

/// Filters of the matter list; every one present must hold.
#[derive(Debug, Clone, Default)]
pub struct MatterFilter {
    pub statuses: Vec<String>,
    pub practice_area: Option<String>,
    pub attorney: Option<String>,
    pub client_contact_id: Option<String>,
    pub opened_from: Option<String>,
    pub opened_to: Option<String>,
    /// Words that must all occur in the title (case-insensitive).
    pub title_contains: Option<String>,
}

/// The sort column of the matter list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatterSort {
    Number,
    OpenedOn,
    UpdatedAt,
    Title,
}

impl MatterSort {
    pub fn column(self) -> &'static str {
        match self {
            MatterSort::Number => "number",
            MatterSort::OpenedOn => "opened_on",
            MatterSort::UpdatedAt => "updated_at",
            MatterSort::Title => "title_folded",
        }
    }
}

pub async fn matters(
    pool: &AnyPool,
    filter: &MatterFilter,
    restrict: &(dyn Fn(&mut Sql) + Sync),
    sort: MatterSort,
    descending: bool,
    request: &PageRequest,
) -> Result<Page<MatterRow>, StoreError> {
    let mut sql = Sql::new(format!("SELECT {MATTER_COLUMNS} FROM rm_matters"));
    let mut conditions = Vec::new();
    if !filter.statuses.is_empty() {
        let list = sql.bind_list(&filter.statuses);
        conditions.push(format!("status IN ({list})"));
    }
    if let Some(area) = &filter.practice_area {
        conditions.push(format!(
            "practice_area = {}",
            sql.bind(Bind::Text(area.clone()))
        ));
    }
    if let Some(attorney) = &filter.attorney {
        let value = sql.bind(Bind::Text(attorney.clone()));
        conditions.push(format!(
            "(responsible_attorney = {value} OR originating_attorney = {value})"
        ));
    }
    if let Some(contact) = &filter.client_contact_id {
        let value = sql.bind(Bind::Text(contact.clone()));
        conditions.push(format!(
            "number IN (SELECT matter_number FROM rm_parties WHERE role = 'client' AND contact_id = {value})"
        ));
    }
    if let Some(from) = &filter.opened_from {
        conditions.push(format!(
            "opened_on >= {}",
            sql.bind(Bind::Text(from.clone()))
        ));
    }
    if let Some(to) = &filter.opened_to {
        conditions.push(format!("opened_on <= {}", sql.bind(Bind::Text(to.clone()))));
    }
    if let Some(words) = &filter.title_contains {
        for word in words.to_lowercase().split_whitespace().take(8) {
            let pattern = format!("%{}%", escape_like(word));
            let value = sql.bind(Bind::Text(pattern));
            conditions.push(format!("title_folded LIKE {value} ESCAPE '\\'"));
        }
    }
    if conditions.is_empty() {
        conditions.push("1 = 1".to_owned());
    }
    sql.text.push_str(" WHERE ");
    sql.text.push_str(&conditions.join(" AND "));
    // The caller's access: only matters it may see anything of.
    restrict(&mut sql);
    page(
        pool,
        sql,
        true,
        sort.column(),
        "number",
        descending,
        request,
    )
    .await
}

/// The matters with these numbers.
pub async fn matters_by_number(
    pool: &AnyPool,
    numbers: &[String],
) -> Result<Vec<MatterRow>, StoreError> {
    let mut sql = Sql::new(String::new());
    let list = sql.bind_list(numbers);
    sql.text = format!("SELECT {MATTER_COLUMNS} FROM rm_matters WHERE number IN ({list})");
    sql.fetch_all(pool).await
}

/// Rows of `view` whose `key_column` is one of `keys`, grouped by that key (`group` reads it
/// back from a row), each group in `order`.
pub async fn grouped_by<T>(
    pool: &AnyPool,
    view: &str,
    columns: &str,
    key_column: &str,
    keys: &[String],
    order: &str,
    group: fn(&T) -> &str,
) -> Result<HashMap<String, Vec<T>>, StoreError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let mut sql = Sql::new(String::new());
    let list = sql.bind_list(keys);
    sql.text =
        format!("SELECT {columns} FROM {view} WHERE {key_column} IN ({list}) ORDER BY {order}");
    let rows: Vec<T> = sql.fetch_all(pool).await?;
    let mut grouped: HashMap<String, Vec<T>> = HashMap::new();
    for row in rows {
        grouped.entry(group(&row).to_owned()).or_default().push(row);
    }
    Ok(grouped)
}

pub const CONTACT_COLUMNS: &str =
    "contact_id, kind, display_name, details, version, position, created_at, updated_at";

pub async fn contacts_by_id(pool: &AnyPool, ids: &[String]) -> Result<Vec<ContactRow>, StoreError> {
    let mut sql = Sql::new(String::new());
    let list = sql.bind_list(ids);
    sql.text = format!("SELECT {CONTACT_COLUMNS} FROM rm_contacts WHERE contact_id IN ({list})");
    sql.fetch_all(pool).await
}

/// Contacts, optionally only those whose names contain every token of `search`, leaving out
/// the contacts in `excluded` (clients a wall screens the caller from).
pub async fn contacts(
    pool: &AnyPool,
    search: Option<&str>,
    excluded: &[String],
    request: &PageRequest,
) -> Result<Page<ContactRow>, StoreError> {
    let mut sql = Sql::new(format!("SELECT {CONTACT_COLUMNS} FROM rm_contacts"));
    let tokens = search.map(name_tokens).unwrap_or_default();
    let mut conditions = Vec::new();
    if !tokens.is_empty() {
        let count = sql.bind(Bind::Int(tokens.len() as i64));
        let list = sql.bind_list(&tokens);
        conditions.push(format!(
            "contact_id IN (SELECT contact_id FROM rm_contact_tokens WHERE token IN ({list}) \
             GROUP BY contact_id HAVING COUNT(*) = {count})"
        ));
    }
    if !excluded.is_empty() {
        let list = sql.bind_list(excluded);
        conditions.push(format!("contact_id NOT IN ({list})"));
    }
    let has_where = !conditions.is_empty();
    if has_where {
        sql.text.push_str(" WHERE ");
        sql.text.push_str(&conditions.join(" AND "));
    }
    page(
        pool,
        sql,
        has_where,
        "name_folded",
        "contact_id",
        false,
        request,
    )
    .await
}

/// Parties anywhere in the firm whose contact's name shares tokens with `name`, best matches
/// first. Only what a conflict check needs is returned.
pub async fn conflict_matches(
    pool: &AnyPool,
    name: &str,
    limit: usize,
) -> Result<Vec<ConflictMatchRow>, StoreError> {
    let tokens = name_tokens(name);
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(String::new());
    let list = sql.bind_list(&tokens);
    let limit = sql.bind(Bind::Int(i64::try_from(limit).unwrap_or(100)));
    sql.text = format!(
        "SELECT p.matter_number AS matter_number, p.party_id AS party_id, p.role AS role, \
         p.contact_id AS contact_id, m.responsible_attorney AS responsible_attorney, \
         t.matched AS matched \
         FROM (SELECT contact_id, COUNT(*) AS matched FROM rm_contact_tokens \
               WHERE token IN ({list}) GROUP BY contact_id) t \
         JOIN rm_parties p ON p.contact_id = t.contact_id \
         JOIN rm_matters m ON m.number = p.matter_number \
         ORDER BY t.matched DESC, p.matter_number, p.party_id LIMIT {limit}"
    );
    sql.fetch_all(pool).await
}

fn escape_like(word: &str) -> String {
    word.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
