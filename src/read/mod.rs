//! Queries over the read models (the `rm_*` views), for the API. Nothing here writes.
//!
//! Lists are keyset-paged: a page is asked for after (or before) a cursor that encodes the
//! sort key of the last row seen, so deep pages cost what the first one does.
//!
//! The read models hold client data only sealed; [`private`] opens it for a request.

pub mod matters;
pub mod private;
pub mod rows;

use sqlx::AnyPool;
use sqlx::any::AnyArguments;
use sqlx::{Arguments, AssertSqlSafe};

use crate::store::StoreError;

pub use private::{Opening, Private, open_all};
pub use rows::*;

/// A value bound into a dynamically built statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
}

/// A statement under construction: SQL text with `$N` placeholders and their values.
#[derive(Debug, Default)]
pub struct Sql {
    pub text: String,
    binds: Vec<Bind>,
}

impl Sql {
    pub fn new(text: impl Into<String>) -> Self {
        Sql {
            text: text.into(),
            binds: Vec::new(),
        }
    }

    /// Appends a value and returns its placeholder.
    pub fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    /// `IN (...)` placeholders for every value.
    pub fn bind_list(&mut self, values: &[String]) -> String {
        let placeholders: Vec<String> = values
            .iter()
            .map(|value| self.bind(Bind::Text(value.clone())))
            .collect();
        placeholders.join(", ")
    }

    fn arguments(&self) -> Result<AnyArguments, StoreError> {
        let mut arguments = AnyArguments::default();
        for bind in &self.binds {
            let added = match bind {
                Bind::Text(text) => arguments.add(text.clone()),
                Bind::Int(value) => arguments.add(*value),
            };
            added.map_err(|error| StoreError::Database {
                detail: error.to_string(),
            })?;
        }
        Ok(arguments)
    }

    pub async fn fetch_all<T>(self, pool: &AnyPool) -> Result<Vec<T>, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        let arguments = self.arguments()?;
        Ok(sqlx::query_as_with(AssertSqlSafe(self.text), arguments)
            .fetch_all(pool)
            .await?)
    }
}

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The first `n` rows after the cursor.
    Forward,
    /// The last `n` rows before the cursor.
    Backward,
}

#[derive(Debug, Clone)]
pub struct PageRequest {
    pub direction: Direction,
    pub size: usize,
    /// The sort key of the row the page starts after (forward) or ends before (backward).
    pub cursor: Option<(String, String)>,
}

/// One page, in display order, with whether more lie beyond it.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub has_more: bool,
}

/// Runs `sql` (which must end before ORDER BY) paged by (`sort`, `tie`), ascending or
/// descending; the cursor compares on both. Both must be NOT NULL text expressions (wrap a
/// nullable column in `COALESCE(column, '')`); a bare indexed column keeps the index usable.
pub async fn page<T>(
    pool: &AnyPool,
    mut sql: Sql,
    has_where: bool,
    sort: &str,
    tie: &str,
    descending: bool,
    request: &PageRequest,
) -> Result<Page<T>, StoreError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    // Backward pages read the other way round, then are turned back.
    let ascending = descending == (request.direction == Direction::Backward);
    if let Some((key, tie_value)) = &request.cursor {
        let operator = if ascending { ">" } else { "<" };
        let key = sql.bind(Bind::Text(key.clone()));
        let tie_value = sql.bind(Bind::Text(tie_value.clone()));
        let joiner = if has_where { " AND" } else { " WHERE" };
        sql.text.push_str(&format!(
            "{joiner} ({sort} {operator} {key} OR ({sort} = {key} AND {tie} {operator} {tie_value}))"
        ));
    }
    let order = if ascending { "ASC" } else { "DESC" };
    let limit = sql.bind(Bind::Int(i64::try_from(request.size + 1).unwrap_or(101)));
    sql.text.push_str(&format!(
        " ORDER BY {sort} {order}, {tie} {order} LIMIT {limit}"
    ));
    let mut rows: Vec<T> = sql.fetch_all(pool).await?;
    let has_more = rows.len() > request.size;
    rows.truncate(request.size);
    if request.direction == Direction::Backward {
        rows.reverse();
    }
    Ok(Page { rows, has_more })
}
