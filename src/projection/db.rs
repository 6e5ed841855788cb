//! The read-model database. With SQLite it is its own file beside the log (`read_models.db`), so
//! projection writes never queue behind appends and the file can be rebuilt from the log; with
//! PostgreSQL it is the log's database, so every process sees the same read models.
//!
//! One code path serves both through sqlx's `Any` driver: read-model columns are only TEXT and
//! BIGINT (booleans are 0/1, structured values JSON text), which `Any` carries on both.

use std::path::Path;

use sqlx::{AnyPool, Executor};

use crate::store::side_db::{self, Connections, Durability};
use crate::store::{Backend, StoreError};

/// Where the read models live and which SQL dialect they speak.
#[derive(Clone)]
pub struct ReadDb {
    pool: AnyPool,
    backend: Backend,
}

impl ReadDb {
    /// Opens (creating when needed) the read-model database.
    pub async fn open(data_dir: &Path, database_url: Option<&str>) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = match database_url {
            Some(url) => (url.to_owned(), Backend::Postgres),
            None => {
                let path = data_dir.join("read_models.db");
                let path = path.to_str().ok_or_else(|| StoreError::DataDir {
                    detail: "the data directory path is not UTF-8".into(),
                })?;
                (format!("sqlite://{path}?mode=rwc"), Backend::Sqlite)
            }
        };
        let connections = Connections {
            sqlite: 4,
            postgres: 8,
        };
        // Read models are derived: a lost last transaction after power loss is rolled back
        // together with its checkpoint and simply applied again.
        let pool = side_db::pool_options(backend, connections, Durability::Derived)
            .connect(&url)
            .await
            .map_err(StoreError::from)?;
        let db = ReadDb { pool, backend };
        db.pool
            .execute(STATE_TABLE)
            .await
            .map_err(StoreError::from)?;
        Ok(db)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

/// Each projection's checkpoint and health. `generation` names the set of tables currently
/// served; a rebuild fills the next generation and swaps it in.
const STATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS projection_state (
    name            TEXT PRIMARY KEY,
    generation      BIGINT NOT NULL,
    position        BIGINT NOT NULL,
    definition      TEXT   NOT NULL,
    status          TEXT   NOT NULL,
    failed_position BIGINT,
    error           TEXT,
    updated_at      TEXT   NOT NULL
)";
