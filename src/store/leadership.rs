//! Leadership among the Docket processes that share one store: a background duty that only
//! one process should perform at a time (publishing to NATS, watching for anomalies) takes a
//! lock named after the duty.
//!
//! On PostgreSQL the leader holds a session advisory lock, keyed by the duty's name, on a
//! connection of its own: the other processes wait for it, and when the holder dies its
//! connection closes, the lock is released and one of them takes over. On SQLite (one
//! machine) the lock is an exclusive lock on a file in the data directory, released by the
//! operating system when its holder exits.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::Connection;

use thiserror::Error;

use super::LogOptions;

/// The lock could not be asked for: the database is unreachable or the file is not writable.
#[derive(Debug, Clone, Error)]
#[error("the leadership lock could not be taken: {detail}")]
pub struct LockError {
    pub detail: String,
}

/// How often a waiting process tries to take the lock.
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// How often the holder checks that its lock connection is still alive.
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// The first key of Docket's leadership advisory locks (ASCII `DKNS`); the second is derived
/// from the duty's name. Two-key advisory locks never collide with one-key ones.
const LOCK_CLASS: i32 = 0x444B_4E53;

/// Where the lock of one duty is taken.
#[derive(Debug, Clone)]
pub enum LeaderLock {
    Postgres { url: String, key: i32 },
    File { path: PathBuf },
}

/// The lock, held: dropping it releases it.
pub enum Leadership {
    Postgres(sqlx::PgConnection),
    File(std::fs::File),
}

impl LeaderLock {
    /// The lock of the duty `name` (a file-name-safe word, e.g. `nats-publisher-DOCKET`) over
    /// the log `options` describe.
    pub fn for_log(options: &LogOptions, name: &str) -> Self {
        match &options.database_url {
            Some(url) => {
                let digest = blake3::hash(name.as_bytes());
                let mut key = [0u8; 4];
                key.copy_from_slice(&digest.as_bytes()[..4]);
                LeaderLock::Postgres {
                    url: url.clone(),
                    key: i32::from_be_bytes(key),
                }
            }
            None => LeaderLock::File {
                path: options.data_dir.join(format!("{name}.lock")),
            },
        }
    }

    /// Waits until this process holds the lock. Fails only if the lock cannot be asked for
    /// (database unreachable, file not writable).
    pub async fn acquire(&self) -> Result<Leadership, LockError> {
        match self {
            LeaderLock::Postgres { url, key } => {
                let mut connection = sqlx::PgConnection::connect(url).await.map_err(lock_error)?;
                loop {
                    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
                        .bind(LOCK_CLASS)
                        .bind(*key)
                        .fetch_one(&mut connection)
                        .await
                        .map_err(lock_error)?;
                    if taken {
                        return Ok(Leadership::Postgres(connection));
                    }
                    tokio::time::sleep(RETRY_EVERY).await;
                }
            }
            LeaderLock::File { path } => {
                let file = open_lock_file(path)?;
                loop {
                    match file.try_lock() {
                        Ok(()) => return Ok(Leadership::File(file)),
                        Err(std::fs::TryLockError::WouldBlock) => {
                            tokio::time::sleep(RETRY_EVERY).await;
                        }
                        Err(std::fs::TryLockError::Error(error)) => {
                            return Err(LockError {
                                detail: format!("{}: {error}", path.display()),
                            });
                        }
                    }
                }
            }
        }
    }
}

impl Leadership {
    /// Resolves when the lock is lost: its database connection stopped answering. A file lock
    /// is held until it is dropped.
    pub async fn lost(&mut self) {
        match self {
            Leadership::Postgres(connection) => loop {
                tokio::time::sleep(CHECK_EVERY).await;
                let alive = tokio::time::timeout(CHECK_EVERY, connection.ping()).await;
                if !matches!(alive, Ok(Ok(()))) {
                    return;
                }
            },
            Leadership::File(_) => std::future::pending().await,
        }
    }
}

fn lock_error(error: sqlx::Error) -> LockError {
    LockError {
        detail: error.to_string(),
    }
}

fn open_lock_file(path: &std::path::Path) -> Result<std::fs::File, LockError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| LockError {
            detail: format!("{}: {error}", path.display()),
        })
}
