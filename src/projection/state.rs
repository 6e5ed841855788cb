//! The `projection_state` rows: each projection's generation, checkpoint and health.

use serde::Serialize;
use sqlx::AssertSqlSafe;
use sqlx::{AnyConnection, Row};

use super::{Projection, ReadDb, Tables, table_bases};

pub const OK: &str = "ok";
pub const FAILED: &str = "failed";

/// One projection's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    pub name: String,
    pub generation: i64,
    pub position: u64,
    pub definition: String,
    pub status: String,
    pub failed_position: Option<u64>,
    pub error: Option<String>,
}

impl StateRow {
    pub fn is_failed(&self) -> bool {
        self.status == FAILED
    }

    pub fn tables(&self) -> Tables {
        Tables {
            generation: self.generation,
        }
    }
}

/// What `docket projections status`, /healthz and GraphQL report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectionStatus {
    pub name: String,
    pub status: String,
    pub position: u64,
    /// Events between the projection's checkpoint and the log's head.
    pub lag: u64,
    pub generation: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_position: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

const COLUMNS: &str = "name, generation, position, definition, status, failed_position, error";

fn from_row(row: &sqlx::any::AnyRow) -> Result<StateRow, sqlx::Error> {
    let unsigned = |value: i64| u64::try_from(value).unwrap_or(0);
    Ok(StateRow {
        name: row.try_get("name")?,
        generation: row.try_get("generation")?,
        position: unsigned(row.try_get("position")?),
        definition: row.try_get("definition")?,
        status: row.try_get("status")?,
        failed_position: row
            .try_get::<Option<i64>, _>("failed_position")?
            .map(unsigned),
        error: row.try_get("error")?,
    })
}

pub async fn load(
    connection: &mut AnyConnection,
    name: &str,
) -> Result<Option<StateRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM projection_state WHERE name = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(name)
        .fetch_optional(connection)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn load_all(db: &ReadDb) -> Result<Vec<StateRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM projection_state ORDER BY name");
    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

/// Makes sure a projection has a state row, its tables and its views. A new projection starts
/// at generation 1, position 0.
///
/// Views that exist are left alone: only a rebuild's swap re-points them, in the transaction
/// that changes the generation. A rebuild may swap (and drop the old tables) between reading
/// the row and creating its tables here; then whatever was re-created for the old generation
/// is dropped again and the new generation is ensured instead.
pub async fn ensure(db: &ReadDb, projection: &dyn Projection) -> Result<StateRow, sqlx::Error> {
    let mut connection = db.pool().acquire().await?;
    sqlx::query(
        "INSERT INTO projection_state (name, generation, position, definition, status, \
         updated_at) VALUES ($1, 1, 0, $2, 'ok', $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(projection.name())
    .bind(projection.definition())
    .bind(now())
    .execute(&mut *connection)
    .await?;
    let mut row = load(&mut connection, projection.name())
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    loop {
        let made = match create_tables(&mut connection, projection, row.tables()).await {
            Ok(()) => create_views(db, &mut connection, projection, row.tables(), false).await,
            Err(error) => Err(error),
        };
        let current = load(&mut connection, projection.name())
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        if current.generation == row.generation {
            made?;
            return Ok(current);
        }
        // Superseded (what failed may have been the rebuild dropping the tables under us).
        // Generations only grow, so the old one is never served again.
        drop_tables(&mut connection, projection, row.tables()).await?;
        row = current;
    }
}

pub async fn create_tables(
    connection: &mut AnyConnection,
    projection: &dyn Projection,
    tables: Tables,
) -> Result<(), sqlx::Error> {
    let ddl = strip_comments(&tables.ddl(projection.ddl()));
    for statement in ddl.split(';') {
        let statement = statement.to_owned();
        if !statement.trim().is_empty() {
            sqlx::query(AssertSqlSafe(statement))
                .execute(&mut *connection)
                .await?;
        }
    }
    Ok(())
}

pub async fn drop_tables(
    connection: &mut AnyConnection,
    projection: &dyn Projection,
    tables: Tables,
) -> Result<(), sqlx::Error> {
    for base in table_bases(projection.ddl()) {
        let sql = format!("DROP TABLE IF EXISTS {}", tables.name(base));
        sqlx::query(AssertSqlSafe(sql))
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// Points the projection's views at `tables`. With `replace` (a rebuild's swap, inside its
/// transaction), existing views are dropped and re-created; without it, only missing views are
/// created and existing ones keep pointing wherever they point.
pub async fn create_views(
    db: &ReadDb,
    connection: &mut AnyConnection,
    projection: &dyn Projection,
    tables: Tables,
    replace: bool,
) -> Result<(), sqlx::Error> {
    for base in table_bases(projection.ddl()) {
        let view = format!("rm_{base}");
        let table = tables.name(base);
        if replace {
            sqlx::query(AssertSqlSafe(format!("DROP VIEW IF EXISTS {view}")))
                .execute(&mut *connection)
                .await?;
            let sql = format!("CREATE VIEW {view} AS SELECT * FROM {table}");
            sqlx::query(AssertSqlSafe(sql))
                .execute(&mut *connection)
                .await?;
            continue;
        }
        match db.backend() {
            crate::store::Backend::Sqlite => {
                let sql = format!("CREATE VIEW IF NOT EXISTS {view} AS SELECT * FROM {table}");
                sqlx::query(AssertSqlSafe(sql))
                    .execute(&mut *connection)
                    .await?;
            }
            crate::store::Backend::Postgres => {
                // PostgreSQL has no CREATE VIEW IF NOT EXISTS, and CREATE OR REPLACE would
                // point the view back at this (possibly just superseded) generation.
                let exists: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM (SELECT 1) AS one WHERE to_regclass($1) IS NOT NULL",
                )
                .bind(&view)
                .fetch_one(&mut *connection)
                .await?;
                if exists > 0 {
                    continue;
                }
                let sql = format!("CREATE VIEW {view} AS SELECT * FROM {table}");
                match sqlx::query(AssertSqlSafe(sql))
                    .execute(&mut *connection)
                    .await
                {
                    Ok(_) => {}
                    // Another process created it first (or a swap did): it stays as it is.
                    Err(sqlx::Error::Database(error)) if is_duplicate(error.code().as_deref()) => {}
                    Err(error) => return Err(error),
                }
            }
        }
    }
    Ok(())
}

/// PostgreSQL's `duplicate_table` (42P07), or the `unique_violation` (23505) on its catalog
/// that two concurrent creations of one name can end in.
fn is_duplicate(code: Option<&str>) -> bool {
    matches!(code, Some("42P07" | "23505"))
}

/// Moves the checkpoint from `from` to `to`, only if nobody else moved it: false when the row
/// was not at `from` in this generation (another applier won, or a rebuild swapped).
pub async fn advance(
    connection: &mut AnyConnection,
    row: &StateRow,
    to: u64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE projection_state SET position = $1, updated_at = $2 \
         WHERE name = $3 AND generation = $4 AND position = $5 AND status = 'ok'",
    )
    .bind(i64::try_from(to).unwrap_or(i64::MAX))
    .bind(now())
    .bind(&row.name)
    .bind(row.generation)
    .bind(i64::try_from(row.position).unwrap_or(i64::MAX))
    .execute(connection)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stops a projection at `position`, only if its checkpoint is still where `row` says: a
/// failure seen by an applier that another one (or a rebuild) has overtaken is not recorded.
pub async fn mark_failed(
    db: &ReadDb,
    row: &StateRow,
    position: u64,
    error: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE projection_state SET status = 'failed', failed_position = $1, error = $2, \
         updated_at = $3 WHERE name = $4 AND generation = $5 AND position = $6 \
         AND status = 'ok'",
    )
    .bind(i64::try_from(position).unwrap_or(i64::MAX))
    .bind(error)
    .bind(now())
    .bind(&row.name)
    .bind(row.generation)
    .bind(i64::try_from(row.position).unwrap_or(i64::MAX))
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Swaps a rebuilt generation in: false if the row was no longer at `from_generation`.
pub async fn swap(
    connection: &mut AnyConnection,
    name: &str,
    from_generation: i64,
    to: Tables,
    position: u64,
    definition: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE projection_state SET generation = $1, position = $2, definition = $3, \
         status = 'ok', failed_position = NULL, error = NULL, updated_at = $4 \
         WHERE name = $5 AND generation = $6",
    )
    .bind(to.generation)
    .bind(i64::try_from(position).unwrap_or(i64::MAX))
    .bind(definition)
    .bind(now())
    .bind(name)
    .bind(from_generation)
    .execute(connection)
    .await?;
    Ok(done.rows_affected() == 1)
}

fn strip_comments(statement: &str) -> String {
    statement
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Refreshes the planner statistics of a generation's tables (`ANALYZE`, on both databases).
/// Failures are logged: statistics only make plans better.
pub async fn analyze(db: &ReadDb, projection: &dyn Projection, tables: Tables) {
    for base in table_bases(projection.ddl()) {
        let sql = format!("ANALYZE {}", tables.name(base));
        if let Err(error) = sqlx::query(AssertSqlSafe(sql)).execute(db.pool()).await {
            tracing::warn!(projection = projection.name(), %error, "could not analyze tables");
        }
    }
}
