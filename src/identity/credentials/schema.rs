//! Opening the credential database and creating its tables.
//!
//! The DDL lives in `migrations/{sqlite,postgres}/identity/credentials.sql`. It is not a sqlx
//! migration (the log's migrators skip subdirectories): every statement is idempotent and runs
//! each time the store opens.

use std::path::Path;

use sqlx::{AnyPool, AssertSqlSafe};

use super::CredentialError;
use crate::store::Backend;
use crate::store::side_db::{self, Connections, Durability};

const SQLITE_DDL: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/migrations/sqlite/identity/credentials.sql"
));
const POSTGRES_DDL: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/migrations/postgres/identity/credentials.sql"
));

/// The SQLite file, beside the log's `docket.db`.
pub(super) const SQLITE_FILE: &str = "identity.db";

/// Serialises table creation between processes opening one PostgreSQL database at once, which
/// `CREATE TABLE IF NOT EXISTS` alone does not (the loser fails on a catalogue unique index).
const POSTGRES_DDL_LOCK: &str =
    "DO $$ BEGIN PERFORM pg_advisory_xact_lock(4380217663190275); END $$";

/// Connects to the credential database, creating the SQLite file (mode 0600) if needed.
pub(super) async fn connect(
    data_dir: &Path,
    database_url: Option<&str>,
) -> Result<(AnyPool, Backend), CredentialError> {
    sqlx::any::install_default_drivers();
    let (url, backend) = match database_url {
        Some(url) => (url.to_owned(), Backend::Postgres),
        None => {
            let path = data_dir.join(SQLITE_FILE);
            create_private_file(&path).await?;
            let path = path.to_str().ok_or_else(|| CredentialError::DataDir {
                detail: "the data directory path is not UTF-8".into(),
            })?;
            (format!("sqlite://{path}?mode=rw"), Backend::Sqlite)
        }
    };
    let connections = Connections {
        sqlite: 4,
        postgres: 8,
    };
    // Credentials are not derivable from anything: a committed change must survive power
    // loss, so every commit is synced.
    let pool = side_db::pool_options(backend, connections, Durability::Synced)
        .connect(&url)
        .await?;
    Ok((pool, backend))
}

/// Creates every table and index that does not exist yet, in one transaction.
pub(super) async fn create_tables(pool: &AnyPool, backend: Backend) -> Result<(), CredentialError> {
    let ddl = match backend {
        Backend::Sqlite => SQLITE_DDL,
        Backend::Postgres => POSTGRES_DDL,
    };
    let mut transaction = pool.begin().await?;
    if backend == Backend::Postgres {
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

/// The statements of a DDL file: split at semicolons, dropping comment lines (which must not
/// themselves hold a semicolon) and empty pieces.
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

/// Creates the database file readable and writable by its owner only, leaving an existing file
/// as it is. SQLite gives the `-wal` and `-shm` files the database file's permissions.
async fn create_private_file(path: &Path) -> Result<(), CredentialError> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(path).await {
        Ok(file) => {
            file.sync_all()
                .await
                .map_err(|error| data_dir_error(&error))?;
            sync_parent(path).await
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(data_dir_error(&error)),
    }
}

/// Makes the new file's directory entry durable, so a crash cannot lose the file itself.
#[cfg(unix)]
async fn sync_parent(path: &Path) -> Result<(), CredentialError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    let directory = tokio::fs::File::open(parent)
        .await
        .map_err(|error| data_dir_error(&error))?;
    directory
        .sync_all()
        .await
        .map_err(|error| data_dir_error(&error))
}

#[cfg(not(unix))]
async fn sync_parent(_path: &Path) -> Result<(), CredentialError> {
    Ok(())
}

fn data_dir_error(error: &std::io::Error) -> CredentialError {
    CredentialError::DataDir {
        detail: format!("cannot create {SQLITE_FILE}: {}", error.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ddl_files_split_into_the_same_statements() {
        let sqlite = statements(SQLITE_DDL);
        assert_eq!(sqlite, statements(POSTGRES_DDL));
        assert!(sqlite.len() >= 7);
        for statement in &sqlite {
            assert!(
                statement.starts_with("CREATE TABLE IF NOT EXISTS auth_")
                    || statement.starts_with("CREATE INDEX IF NOT EXISTS auth_"),
                "{statement}"
            );
        }
    }
}
