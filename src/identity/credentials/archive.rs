//! The credential store's rows, copied whole into a backup and written back on restore.
//!
//! Credentials cannot be rebuilt from the log, so a backup carries every row of every `auth_*`
//! table. Each table and its columns are named here (TEXT or BIGINT, as in the DDL), so a row
//! read from an archive is written only into a known table and column list, never into SQL
//! built from the archive. A restore writes all rows in one transaction, into an empty store.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{AssertSqlSafe, Row};

use super::{CredentialError, CredentialStore};

/// A column's type in the credential tables.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Integer,
}

use Kind::{Integer, Text};

/// Every credential table with its columns, primary key first.
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "auth_passwords",
        &[("user_id", Text), ("phc", Text), ("updated_at", Integer)],
    ),
    (
        "auth_totp",
        &[
            ("user_id", Text),
            ("secret_hex", Text),
            ("last_step", Integer),
            ("pending_secret_hex", Text),
        ],
    ),
    (
        "auth_recovery_codes",
        &[
            ("user_id", Text),
            ("code_hash", Text),
            ("created_at", Integer),
            ("used_at", Integer),
        ],
    ),
    (
        "auth_enrolments",
        &[
            ("token_hash", Text),
            ("user_id", Text),
            ("expires_at", Integer),
            ("used_at", Integer),
        ],
    ),
    (
        "auth_sessions",
        &[
            ("session_id", Text),
            ("token_hash", Text),
            ("principal", Text),
            ("client_address", Text),
            ("created_at", Integer),
            ("last_seen_at", Integer),
            ("idle_timeout_secs", Integer),
            ("absolute_expires_at", Integer),
            ("step_up_at", Integer),
            ("revoked_at", Integer),
        ],
    ),
    (
        "auth_api_keys",
        &[
            ("key_id", Text),
            ("client_id", Text),
            ("secret_hash", Text),
            ("created_at", Integer),
            ("expires_at", Integer),
            ("revoked_at", Integer),
            ("last_used_at", Integer),
        ],
    ),
    (
        "auth_throttle",
        &[
            ("subject", Text),
            ("failures", Integer),
            ("last_failure_at", Integer),
            ("locked", Integer),
        ],
    ),
];

/// One row of a credential table: its values in the table's column order (strings, integers
/// or nulls).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialRow {
    pub table: String,
    pub values: Vec<Value>,
}

impl std::fmt::Debug for CredentialRow {
    // The values are password hashes and TOTP secrets: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRow")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

fn columns_of(table: &str) -> Option<&'static [(&'static str, Kind)]> {
    TABLES
        .iter()
        .find(|(name, _)| *name == table)
        .map(|(_, columns)| *columns)
}

impl CredentialStore {
    /// Every row of every credential table, table by table in primary key order.
    pub async fn export_rows(&self) -> Result<Vec<CredentialRow>, CredentialError> {
        let mut out = Vec::new();
        for (table, columns) in TABLES {
            let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
            let sql = format!(
                "SELECT {} FROM {table} ORDER BY {}",
                names.join(", "),
                names[0]
            );
            for row in sqlx::query(AssertSqlSafe(sql))
                .fetch_all(&self.pool)
                .await?
            {
                let mut values = Vec::with_capacity(columns.len());
                for (index, (_, kind)) in columns.iter().enumerate() {
                    values.push(match kind {
                        Text => row
                            .try_get::<Option<String>, _>(index)?
                            .map_or(Value::Null, Value::String),
                        Integer => row
                            .try_get::<Option<i64>, _>(index)?
                            .map_or(Value::Null, Value::from),
                    });
                }
                out.push(CredentialRow {
                    table: (*table).to_owned(),
                    values,
                });
            }
        }
        Ok(out)
    }

    /// Whether every credential table is empty (a restore writes only into an empty store).
    pub async fn is_empty(&self) -> Result<bool, CredentialError> {
        for (table, _) in TABLES {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let count: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
                .fetch_one(&self.pool)
                .await?;
            if count != 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Writes `rows` in one transaction: all or none. A row of an unknown table, with the
    /// wrong number of values or a value of the wrong type, refuses the whole import.
    pub async fn import_rows(&self, rows: &[CredentialRow]) -> Result<(), CredentialError> {
        let corrupt = CredentialError::Corrupt {
            what: "archived credential row",
        };
        let mut tx = self.pool.begin().await?;
        for row in rows {
            let columns = columns_of(&row.table).ok_or_else(|| corrupt.clone())?;
            if columns.len() != row.values.len() {
                return Err(corrupt);
            }
            let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
            let marks: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                row.table,
                names.join(", "),
                marks.join(", ")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for ((_, kind), value) in columns.iter().zip(&row.values) {
                query = match (kind, value) {
                    (Text, Value::Null) => query.bind(None::<String>),
                    (Integer, Value::Null) => query.bind(None::<i64>),
                    (Text, Value::String(text)) => query.bind(Some(text.clone())),
                    (Integer, Value::Number(number)) => {
                        query.bind(Some(number.as_i64().ok_or_else(|| corrupt.clone())?))
                    }
                    _ => return Err(corrupt),
                };
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
