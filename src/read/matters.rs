//! Matter lists, per-matter children (for the API's batch loaders), contacts and the conflict
//! search.
//!
//! Names, emails and identifiers are searched through their blind indexes: the query's tokens
//! (or the email, or the `scheme:value` identifier) are blinded with the vault and looked up in
//! `rm_contact_tokens`, which holds nothing else.

use std::collections::HashMap;

use sqlx::AnyPool;

use super::rows::*;
use super::{Bind, Page, PageRequest, Sql, page};
use crate::domain::names::name_tokens;
use crate::store::StoreError;
use crate::vault::{BlindKind, Vault};

const MATTER_COLUMNS: &str = <MatterRow as Columns>::COLUMNS;

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
///
/// The columns read are the row type's ([`Columns`]), whatever `_columns` says: a caller's
/// own list could name columns the read model no longer has (client data is now one sealed
/// `private` column). The parameter goes once no caller passes it.
pub async fn grouped_by<T>(
    pool: &AnyPool,
    view: &str,
    _columns: &str,
    key_column: &str,
    keys: &[String],
    order: &str,
    group: fn(&T) -> &str,
) -> Result<HashMap<String, Vec<T>>, StoreError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Columns + Send + Unpin,
{
    let mut sql = Sql::new(String::new());
    let list = sql.bind_list(keys);
    let columns = T::COLUMNS;
    sql.text =
        format!("SELECT {columns} FROM {view} WHERE {key_column} IN ({list}) ORDER BY {order}");
    let rows: Vec<T> = sql.fetch_all(pool).await?;
    let mut grouped: HashMap<String, Vec<T>> = HashMap::new();
    for row in rows {
        grouped.entry(group(&row).to_owned()).or_default().push(row);
    }
    Ok(grouped)
}

pub const CONTACT_COLUMNS: &str = <ContactRow as Columns>::COLUMNS;

pub async fn contacts_by_id(pool: &AnyPool, ids: &[String]) -> Result<Vec<ContactRow>, StoreError> {
    let mut sql = Sql::new(String::new());
    let list = sql.bind_list(ids);
    sql.text = format!("SELECT {CONTACT_COLUMNS} FROM rm_contacts WHERE contact_id IN ({list})");
    sql.fetch_all(pool).await
}

/// Which contacts a list shows; every condition given must hold.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    /// Words that must all be tokens of the contact's names (case, accents and order do not
    /// matter).
    pub search: Option<String>,
    /// An email address the contact has, exactly (trimmed, case-insensitive).
    pub email: Option<String>,
    /// An identifier the contact has, as `scheme:value`.
    pub identifier: Option<String>,
    /// Contacts left out (clients a wall screens the caller from).
    pub excluded: Vec<String>,
}

/// `contact_id IN (contacts with the blind `blind` of `kind`)`.
fn has_blind(sql: &mut Sql, kind: BlindKind, blind: String) -> String {
    let kind = sql.bind(Bind::Text(kind.as_str().to_owned()));
    let blind = sql.bind(Bind::Text(blind));
    format!(
        "contact_id IN (SELECT contact_id FROM rm_contact_tokens WHERE kind = {kind} \
         AND blind = {blind})"
    )
}

/// Contacts by the filter, in contact id order (names are sealed, so SQL cannot sort by them).
pub async fn contacts(
    pool: &AnyPool,
    vault: &Vault,
    filter: &ContactFilter,
    request: &PageRequest,
) -> Result<Page<ContactRow>, StoreError> {
    let mut sql = Sql::new(format!("SELECT {CONTACT_COLUMNS} FROM rm_contacts"));
    let mut conditions = Vec::new();
    let tokens = filter
        .search
        .as_deref()
        .map(name_tokens)
        .unwrap_or_default();
    if !tokens.is_empty() {
        let blinds: Vec<String> = tokens
            .iter()
            .map(|token| vault.blind(BlindKind::Name, token))
            .collect();
        let count = sql.bind(Bind::Int(blinds.len() as i64));
        let kind = sql.bind(Bind::Text(BlindKind::Name.as_str().to_owned()));
        let list = sql.bind_list(&blinds);
        conditions.push(format!(
            "contact_id IN (SELECT contact_id FROM rm_contact_tokens WHERE kind = {kind} \
             AND blind IN ({list}) GROUP BY contact_id HAVING COUNT(*) = {count})"
        ));
    }
    if let Some(email) = &filter.email {
        let blind = vault.blind(BlindKind::Email, email);
        conditions.push(has_blind(&mut sql, BlindKind::Email, blind));
    }
    if let Some(identifier) = &filter.identifier {
        let blind = vault.blind(BlindKind::Identifier, identifier);
        conditions.push(has_blind(&mut sql, BlindKind::Identifier, blind));
    }
    if !filter.excluded.is_empty() {
        let list = sql.bind_list(&filter.excluded);
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
        "contact_id",
        "contact_id",
        false,
        request,
    )
    .await
}

/// Parties anywhere in the firm whose contact's name shares tokens with `name`, best matches
/// first. Only what a conflict check needs is returned.
pub async fn search_conflicts(
    pool: &AnyPool,
    vault: &Vault,
    name: &str,
    limit: usize,
) -> Result<Vec<ConflictMatchRow>, StoreError> {
    let blinds: Vec<String> = name_tokens(name)
        .iter()
        .map(|token| vault.blind(BlindKind::Name, token))
        .collect();
    if blinds.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(String::new());
    let kind = sql.bind(Bind::Text(BlindKind::Name.as_str().to_owned()));
    let list = sql.bind_list(&blinds);
    let limit = sql.bind(Bind::Int(i64::try_from(limit).unwrap_or(100)));
    sql.text = format!(
        "SELECT p.matter_number AS matter_number, p.party_id AS party_id, p.role AS role, \
         p.contact_id AS contact_id, m.responsible_attorney AS responsible_attorney, \
         t.matched AS matched \
         FROM (SELECT contact_id, COUNT(*) AS matched FROM rm_contact_tokens \
               WHERE kind = {kind} AND blind IN ({list}) GROUP BY contact_id) t \
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
