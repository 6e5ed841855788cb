//! The databases beside the log (read models, the access index, credentials, integrations):
//! how their connection pools are set up, the same way for each.
//!
//! With SQLite each is a file of its own in the data directory; with PostgreSQL each uses the
//! log's database. Every SQLite connection gets a busy timeout, WAL, the synchronous level its
//! durability needs, and a bounded page cache: a process holds about twenty connections, and
//! SQLite's default of about 2 MB each would let the caches grow by tens of megabytes as the
//! files grow, which a server running for years must not.

use std::time::Duration;

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

use super::Backend;

/// Each SQLite connection's page cache, in KiB (SQLite's default is 2,000). The operating
/// system's file cache still holds the files: a page outside SQLite's own cache costs a read
/// from memory, not from disk.
pub const PAGE_CACHE_KIB: u32 = 512;

/// The page cache of the log's one writing connection, which every append goes through.
pub const WRITER_PAGE_CACHE_KIB: u32 = 2048;

/// How much a committed transaction must survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Not derivable from anything (credentials, webhook endpoints and deliveries): every commit
    /// is synced before it returns.
    Synced,
    /// Derived from the log (read models, the access index): a transaction lost to power loss
    /// is rolled back with its checkpoint and applied again.
    Derived,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Synced => "PRAGMA synchronous = FULL",
            Durability::Derived => "PRAGMA synchronous = NORMAL",
        }
    }
}

/// Sets [`PAGE_CACHE_KIB`] (a negative `cache_size` is in KiB, a positive one in pages).
const PAGE_CACHE_PRAGMA: &str = "PRAGMA cache_size = -512";

/// Connections a pool may hold on each backend.
#[derive(Debug, Clone, Copy)]
pub struct Connections {
    pub sqlite: u32,
    pub postgres: u32,
}

/// The pool options of a database beside the log on `backend`.
///
/// A SQLite connection whose transaction SQLite rolled back by itself (a full disk, an I/O
/// error) still counts itself inside it and would refuse every later one, so such a connection
/// is replaced rather than handed out again (as the log's writer is, src/store/sqlite.rs).
pub fn pool_options(
    backend: Backend,
    connections: Connections,
    durability: Durability,
) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(match backend {
            Backend::Sqlite => connections.sqlite,
            Backend::Postgres => connections.postgres,
        })
        .acquire_timeout(Duration::from_secs(30))
        .before_acquire(|connection, _| {
            Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(connection)) })
        })
        .after_connect(move |connection, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    connection.execute("PRAGMA busy_timeout = 10000").await?;
                    connection.execute("PRAGMA journal_mode = WAL").await?;
                    connection.execute(durability.pragma()).await?;
                    connection.execute(PAGE_CACHE_PRAGMA).await?;
                }
                Ok(())
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pragma(pool: &sqlx::AnyPool, name: &str) -> i64 {
        let sql = match name {
            "cache_size" => "PRAGMA cache_size",
            _ => "PRAGMA synchronous",
        };
        let (value,): (i64,) = sqlx::query_as(sql).fetch_one(pool).await.unwrap();
        value
    }

    #[tokio::test]
    async fn every_sqlite_connection_gets_the_bounded_cache_and_its_durability() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let connections = Connections {
            sqlite: 2,
            postgres: 2,
        };
        for (file, durability, synchronous) in [
            ("synced.db", Durability::Synced, 2),
            ("derived.db", Durability::Derived, 1),
        ] {
            let url = format!("sqlite://{}?mode=rwc", dir.path().join(file).display());
            let pool = pool_options(Backend::Sqlite, connections, durability)
                .connect(&url)
                .await
                .unwrap();
            // Both connections of the pool, not only the first.
            let held = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
            drop(held);
            for _ in 0..2 {
                assert_eq!(
                    pragma(&pool, "cache_size").await,
                    -i64::from(PAGE_CACHE_KIB)
                );
                assert_eq!(pragma(&pool, "synchronous").await, synchronous);
            }
            let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
        }
    }

    #[test]
    fn the_page_cache_pragma_sets_the_documented_size() {
        assert_eq!(
            PAGE_CACHE_PRAGMA,
            format!("PRAGMA cache_size = -{PAGE_CACHE_KIB}")
        );
    }
}
