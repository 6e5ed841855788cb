//! [`KeyStore`] on SQLite: the vault's tables in the log's own file, written through the log's
//! single writer connection. The file runs with `secure_delete`, so an erased key's bytes are
//! overwritten in the database pages, and erasure truncates the WAL so no copy stays there.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite};

use super::keys::{KeyStore, Rewrap, StoredDataKey, version_of};
use super::sqlite::SqliteStore;
use super::{StoreError, to_i64};

pub(super) const KEY_COLUMNS: &str = "key_id, subject, kek_version, wrapped, created_at, erased_at";

pub(super) fn decode_key(row: &SqliteRow) -> Result<StoredDataKey, StoreError> {
    Ok(StoredDataKey {
        key_id: row.try_get(0)?,
        subject: row.try_get(1)?,
        kek_version: version_of(row.try_get(2)?)?,
        wrapped: row.try_get(3)?,
        created_at: row.try_get(4)?,
        erased_at: row.try_get(5)?,
    })
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn insert_data_key(&self, key: &StoredDataKey) -> Result<StoredDataKey, StoreError> {
        sqlx::query(
            "INSERT INTO data_keys (key_id, subject, kek_version, wrapped, created_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (subject) DO NOTHING",
        )
        .bind(&key.key_id)
        .bind(&key.subject)
        .bind(key.kek_version.map(i64::from))
        .bind(key.wrapped.as_deref())
        .bind(&key.created_at)
        .execute(&self.writer)
        .await?;
        let sql = format!("SELECT {KEY_COLUMNS} FROM data_keys WHERE subject = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(&key.subject)
            .fetch_one(&self.writer)
            .await?;
        decode_key(&row)
    }

    async fn data_keys(&self, key_ids: &[String]) -> Result<Vec<StoredDataKey>, StoreError> {
        let mut found = Vec::with_capacity(key_ids.len());
        for chunk in key_ids.chunks(500) {
            let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
                "SELECT {KEY_COLUMNS} FROM data_keys WHERE key_id IN ("
            ));
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(id);
            }
            query.push(")");
            for row in query.build().fetch_all(&self.readers).await? {
                found.push(decode_key(&row)?);
            }
        }
        Ok(found)
    }

    async fn subject_key(&self, subject: &str) -> Result<Option<StoredDataKey>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM data_keys WHERE subject = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(subject)
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(decode_key).transpose()
    }

    async fn keys_wrapped_below(
        &self,
        version: u32,
        after_key_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredDataKey>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM data_keys \
             WHERE kek_version < ? AND key_id > ? ORDER BY key_id LIMIT ?"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(i64::from(version))
            .bind(after_key_id)
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(decode_key).collect()
    }

    async fn rewrap(&self, rewraps: &[Rewrap]) -> Result<u64, StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut applied = 0;
        for rewrap in rewraps {
            applied += sqlx::query(
                "UPDATE data_keys SET kek_version = ?, wrapped = ? \
                 WHERE key_id = ? AND kek_version = ?",
            )
            .bind(i64::from(rewrap.to_version))
            .bind(&rewrap.wrapped)
            .bind(&rewrap.key_id)
            .bind(i64::from(rewrap.from_version))
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        }
        transaction.commit().await?;
        Ok(applied)
    }

    async fn erase_subject_key(&self, subject: &str, erased_at: &str) -> Result<bool, StoreError> {
        // IMMEDIATE: this transaction reads before it writes, and a deferred one would fail
        // (SQLITE_BUSY_SNAPSHOT, no retry) if another process wrote in between.
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let key_id: Option<String> = sqlx::query_scalar(
            "SELECT key_id FROM data_keys WHERE subject = ? AND erased_at IS NULL",
        )
        .bind(subject)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(key_id) = key_id else {
            return Ok(false);
        };
        sqlx::query(
            "UPDATE data_keys SET wrapped = NULL, kek_version = NULL, erased_at = ? \
             WHERE key_id = ?",
        )
        .bind(erased_at)
        .bind(&key_id)
        .execute(&mut *transaction)
        .await?;
        sqlx::query("DELETE FROM document_contents WHERE key_id = ?")
            .bind(&key_id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;

        // The old page images are in the WAL until it is checkpointed: copy them back (where
        // secure_delete has zeroed the key) and truncate the WAL. The checkpoint waits (busy
        // timeout) for readers of older snapshots; if they outlast it the copy stays in the WAL
        // until a later checkpoint, which an operator should know.
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&self.writer)
            .await?;
        if busy != 0 {
            tracing::warn!(
                "the WAL could not be truncated after an erasure: the erased key's old page \
                 stays in it until the next checkpoint"
            );
        }
        Ok(true)
    }

    async fn kek_usage(&self) -> Result<Vec<(u32, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT kek_version, COUNT(*) FROM data_keys WHERE kek_version IS NOT NULL \
             GROUP BY kek_version ORDER BY kek_version",
        )
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                let version = version_of(row.try_get(0)?)?.unwrap_or_default();
                let count: i64 = row.try_get(1)?;
                Ok((version, u64::try_from(count).unwrap_or_default()))
            })
            .collect()
    }

    async fn put_sealed_content(
        &self,
        key_id: &str,
        content_hash: &str,
        size: u64,
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO document_contents (key_id, content_hash, size, sealed, stored_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (key_id, content_hash) DO NOTHING",
        )
        .bind(key_id)
        .bind(content_hash)
        .bind(to_i64(size))
        .bind(sealed)
        .bind(crate::log::time::now_timestamp())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn sealed_content(
        &self,
        key_id: &str,
        content_hash: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT sealed FROM document_contents WHERE key_id = ? AND content_hash = ?",
        )
        .bind(key_id)
        .bind(content_hash)
        .fetch_optional(&self.readers)
        .await?)
    }
}
