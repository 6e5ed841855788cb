//! The webhook store: endpoints, their sealed signing keys, deliveries and attempts.
//!
//! With SQLite it is its own file, `integrations.db` in the data directory (WAL,
//! `synchronous = FULL`: a delivery once queued must survive power loss); with PostgreSQL it is
//! the log's database, in tables prefixed `wh_`. One code path serves both through sqlx's `Any`
//! driver: columns are TEXT or BIGINT, times are unix milliseconds, and every check-then-change
//! (claiming a delivery, advancing a cursor, changing an endpoint's state) is one conditional
//! statement, so several Docket processes on one PostgreSQL database never send a delivery
//! twice at once and never queue one twice.

mod deliveries;
mod endpoints;

use std::path::Path;
use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::{AnyPool, AssertSqlSafe, Row};

pub use deliveries::{Attempt, Claimed, Delivery, DeliveryStatus, NewDelivery, Outcome};
pub use endpoints::{Endpoint, EndpointStatus, StoredKey};

use super::WebhookError;
use crate::store::Backend;
use crate::store::side_db::{self, Connections, Durability};

const SQLITE_DDL: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/migrations/sqlite/integrations/webhooks.sql"
));
const POSTGRES_DDL: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/migrations/postgres/integrations/webhooks.sql"
));

/// The SQLite file, beside the log's `docket.db`.
pub const SQLITE_FILE: &str = "integrations.db";

/// Serialises table creation between processes opening one PostgreSQL database at once.
const POSTGRES_DDL_LOCK: &str =
    "DO $$ BEGIN PERFORM pg_advisory_xact_lock(4380217663190276); END $$";

/// The webhook database and the dialect it speaks. Cloning shares the pool.
#[derive(Clone)]
pub struct WebhookDb {
    pool: AnyPool,
    backend: Backend,
}

impl std::fmt::Debug for WebhookDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookDb")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl WebhookDb {
    /// Opens (creating when needed) the store: `<data_dir>/integrations.db` when
    /// `database_url` is `None`, otherwise the PostgreSQL database it names.
    pub async fn open(data_dir: &Path, database_url: Option<&str>) -> Result<Self, WebhookError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = match database_url {
            Some(url) => (url.to_owned(), Backend::Postgres),
            None => {
                let path = data_dir.join(SQLITE_FILE);
                create_private_file(&path).await?;
                let path = path.to_str().ok_or_else(|| {
                    WebhookError::internal("data directory", "the path is not UTF-8")
                })?;
                (format!("sqlite://{path}?mode=rw"), Backend::Sqlite)
            }
        };
        let connections = Connections {
            sqlite: 4,
            postgres: 8,
        };
        // Endpoints and deliveries owed are not derivable from the log: commits are synced.
        let pool = side_db::pool_options(backend, connections, Durability::Synced)
            .connect(&url)
            .await?;
        let db = WebhookDb { pool, backend };
        db.create_tables().await?;
        Ok(db)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    async fn create_tables(&self) -> Result<(), WebhookError> {
        let ddl = match self.backend {
            Backend::Sqlite => SQLITE_DDL,
            Backend::Postgres => POSTGRES_DDL,
        };
        let mut transaction = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::raw_sql(POSTGRES_DDL_LOCK)
                .execute(&mut *transaction)
                .await?;
        }
        for statement in statements(ddl) {
            sqlx::raw_sql(AssertSqlSafe(statement))
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }
}

/// The statements of a DDL file: comment lines dropped, split at semicolons.
fn statements(ddl: &str) -> Vec<String> {
    let code: Vec<&str> = ddl
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect();
    code.join("\n")
        .split(';')
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Creates the SQLite file readable and writable by its owner only (an existing file is kept).
async fn create_private_file(path: &Path) -> Result<(), WebhookError> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(path).await {
        Ok(file) => file
            .sync_all()
            .await
            .map_err(|error| WebhookError::internal("cannot create integrations.db", error.kind())),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(WebhookError::internal(
            "cannot create integrations.db",
            error.kind(),
        )),
    }
}

/// The current time as stored: unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A duration as stored, saturating.
pub fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A log position as stored.
pub fn position_value(position: u64) -> Result<i64, WebhookError> {
    i64::try_from(position).map_err(|_| WebhookError::invalid("position", "out of range"))
}

fn text(row: &AnyRow, column: &str, what: &'static str) -> Result<String, WebhookError> {
    row.try_get::<String, _>(column)
        .map_err(|_| WebhookError::Corrupt { what })
}

fn optional_text(
    row: &AnyRow,
    column: &str,
    what: &'static str,
) -> Result<Option<String>, WebhookError> {
    row.try_get::<Option<String>, _>(column)
        .map_err(|_| WebhookError::Corrupt { what })
}

fn int(row: &AnyRow, column: &str, what: &'static str) -> Result<i64, WebhookError> {
    row.try_get::<i64, _>(column)
        .map_err(|_| WebhookError::Corrupt { what })
}

fn optional_int(
    row: &AnyRow,
    column: &str,
    what: &'static str,
) -> Result<Option<i64>, WebhookError> {
    row.try_get::<Option<i64>, _>(column)
        .map_err(|_| WebhookError::Corrupt { what })
}

fn position(row: &AnyRow, column: &str, what: &'static str) -> Result<u64, WebhookError> {
    u64::try_from(int(row, column, what)?).map_err(|_| WebhookError::Corrupt { what })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ddl_files_split_into_the_same_statements() {
        let sqlite = statements(SQLITE_DDL);
        assert_eq!(sqlite, statements(POSTGRES_DDL));
        assert_eq!(sqlite.len(), 7);
        for statement in &sqlite {
            assert!(
                statement.starts_with("CREATE TABLE IF NOT EXISTS wh_")
                    || statement.starts_with("CREATE INDEX IF NOT EXISTS wh_"),
                "{statement}"
            );
        }
    }
}
