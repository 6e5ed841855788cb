//! Only one Docket process publishes to a stream at a time.
//!
//! On PostgreSQL the publisher holds a session advisory lock, keyed by the stream name, on a
//! connection of its own: the other processes wait for it, and when the holder dies its
//! connection closes, the lock is released and one of them takes over. On SQLite (one
//! machine) the lock is an exclusive lock on a file in the data directory, released by the
//! operating system when its holder exits.
//!
//! Two publishers at once would not corrupt the stream (every message must follow the one the
//! publisher expects, and ids are deduplicated), but would race each other for nothing.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::Connection;

use super::NatsError;
use crate::store::LogOptions;

/// How often a waiting publisher tries to take the lock.
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// How often the holder checks that its lock connection is still alive.
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// The first key of Docket's publisher advisory locks (ASCII `DKNS`); the second is derived
/// from the stream name. Two-key advisory locks never collide with one-key ones.
const LOCK_CLASS: i32 = 0x444B_4E53;

/// Where the publisher lock for one stream is taken.
#[derive(Debug, Clone)]
pub enum PublisherLock {
    Postgres { url: String, key: i32 },
    File { path: PathBuf },
}

/// The lock, held: dropping it releases it.
pub enum Leadership {
    Postgres(sqlx::PgConnection),
    File(std::fs::File),
}

impl PublisherLock {
    /// The lock for publishing `stream` from the log `options` describe.
    pub fn for_log(options: &LogOptions, stream: &str) -> Self {
        match &options.database_url {
            Some(url) => {
                let digest = blake3::hash(stream.as_bytes());
                let mut key = [0u8; 4];
                key.copy_from_slice(&digest.as_bytes()[..4]);
                PublisherLock::Postgres {
                    url: url.clone(),
                    key: i32::from_be_bytes(key),
                }
            }
            None => PublisherLock::File {
                path: options
                    .data_dir
                    .join(format!("nats-publisher-{stream}.lock")),
            },
        }
    }

    /// Waits until this publisher holds the lock. Fails only if the lock cannot be asked for
    /// (database unreachable, file not writable).
    pub async fn acquire(&self) -> Result<Leadership, NatsError> {
        match self {
            PublisherLock::Postgres { url, key } => {
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
            PublisherLock::File { path } => {
                let file = open_lock_file(path)?;
                loop {
                    match file.try_lock() {
                        Ok(()) => return Ok(Leadership::File(file)),
                        Err(std::fs::TryLockError::WouldBlock) => {
                            tokio::time::sleep(RETRY_EVERY).await;
                        }
                        Err(std::fs::TryLockError::Error(error)) => {
                            return Err(NatsError::Lock {
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

fn lock_error(error: sqlx::Error) -> NatsError {
    NatsError::Lock {
        detail: error.to_string(),
    }
}

fn open_lock_file(path: &std::path::Path) -> Result<std::fs::File, NatsError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| NatsError::Lock {
            detail: format!("{}: {error}", path.display()),
        })
}
