//! [`ArchiveStore`] on SQLite: pages through the log file's own tables; writes go through the
//! log's single writer connection.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row};

use super::archive::{ArchiveStore, SealedContent, StoredBlob};
use super::keys::StoredDataKey;
use super::keys_sqlite::{KEY_COLUMNS, decode_key};
use super::plan::IdempotencyRecord;
use super::rows::decode_idempotency;
use super::sqlite::SqliteStore;
use super::{StoreError, to_i64, to_u64};

fn size_of(value: i64) -> Result<u64, StoreError> {
    to_u64(value).ok_or_else(|| StoreError::Database {
        detail: "a stored size is negative".into(),
    })
}

#[async_trait]
impl ArchiveStore for SqliteStore {
    async fn data_keys_page(
        &self,
        after_key_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredDataKey>, StoreError> {
        let sql =
            format!("SELECT {KEY_COLUMNS} FROM data_keys WHERE key_id > ? ORDER BY key_id LIMIT ?");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(after_key_id)
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(decode_key).collect()
    }

    async fn restore_data_key(&self, key: &StoredDataKey) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO data_keys (key_id, subject, kek_version, wrapped, created_at, erased_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.key_id)
        .bind(&key.subject)
        .bind(key.kek_version.map(i64::from))
        .bind(key.wrapped.as_deref())
        .bind(&key.created_at)
        .bind(key.erased_at.as_deref())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn sealed_contents_page(
        &self,
        after: (&str, &str),
        limit: u32,
    ) -> Result<Vec<SealedContent>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id, content_hash, size, sealed, stored_at FROM document_contents \
             WHERE key_id > ? OR (key_id = ? AND content_hash > ?) \
             ORDER BY key_id, content_hash LIMIT ?",
        )
        .bind(after.0)
        .bind(after.0)
        .bind(after.1)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SealedContent {
                    key_id: row.try_get(0)?,
                    content_hash: row.try_get(1)?,
                    size: size_of(row.try_get(2)?)?,
                    sealed: row.try_get(3)?,
                    stored_at: row.try_get(4)?,
                })
            })
            .collect()
    }

    async fn restore_sealed_content(&self, content: &SealedContent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO document_contents (key_id, content_hash, size, sealed, stored_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&content.key_id)
        .bind(&content.content_hash)
        .bind(to_i64(content.size))
        .bind(&content.sealed)
        .bind(&content.stored_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn blobs_page(
        &self,
        after_hash: &str,
        limit: u32,
    ) -> Result<Vec<StoredBlob>, StoreError> {
        let rows = sqlx::query(
            "SELECT content_hash, size, content, stored_at FROM document_blobs \
             WHERE content_hash > ? ORDER BY content_hash LIMIT ?",
        )
        .bind(after_hash)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredBlob {
                    content_hash: row.try_get(0)?,
                    size: size_of(row.try_get(1)?)?,
                    content: row.try_get(2)?,
                    stored_at: row.try_get(3)?,
                })
            })
            .collect()
    }

    async fn restore_blob(&self, blob: &StoredBlob) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO document_blobs (content_hash, size, content, stored_at) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(&blob.content_hash)
        .bind(to_i64(blob.size))
        .bind(&blob.content)
        .bind(&blob.stored_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn idempotency_page(
        &self,
        after_key: &str,
        limit: u32,
    ) -> Result<Vec<IdempotencyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, request_digest, stream_id, first_position, last_position, \
             first_version, last_version FROM idempotency_keys WHERE key > ? ORDER BY key LIMIT ?",
        )
        .bind(after_key)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(decode_idempotency).collect()
    }
}
