//! [`TreeStore`] on SQLite: the tree and checkpoint tables in the log's own file, written through
//! the log's single writer connection.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::sqlite::SqliteStore;
use super::tree::{LeafData, StoredCheckpoint, TreeStore, hash_of};
use super::{StoreError, to_i64, to_u64};
use crate::log::merkle::{NodeId, TreeHash};

/// Rows per multi-row INSERT: 3 columns x 2,000 rows stays under SQLite's parameter limit.
const NODES_PER_INSERT: usize = 2_000;
/// Nodes looked up per SELECT: more than any proof of a tree of 2^32 events needs.
const NODES_PER_SELECT: usize = 64;

const CHECKPOINT_COLUMNS: &str = "tree_size, root, key_id, note, signed_at";

fn decode_checkpoint(row: &sqlx::sqlite::SqliteRow) -> Result<StoredCheckpoint, StoreError> {
    let size: i64 = row.try_get(0)?;
    Ok(StoredCheckpoint {
        tree_size: to_u64(size).ok_or_else(|| corrupt("checkpoint size"))?,
        root: hash_of(row.try_get(1)?, "checkpoint root")?,
        key_id: row.try_get(2)?,
        note: row.try_get(3)?,
        signed_at: row.try_get(4)?,
    })
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Database {
        detail: format!("a stored {what} is negative"),
    }
}

#[async_trait]
impl TreeStore for SqliteStore {
    async fn tree_size(&self) -> Result<u64, StoreError> {
        let size: i64 = sqlx::query_scalar("SELECT size FROM tree_state WHERE id = 1")
            .fetch_one(&self.readers)
            .await?;
        to_u64(size).ok_or_else(|| corrupt("tree size"))
    }

    async fn leaf_data(&self, from_position: u64, limit: u32) -> Result<Vec<LeafData>, StoreError> {
        let rows = sqlx::query(
            "SELECT position, hash, prev_hash FROM events WHERE position >= ? \
             ORDER BY position LIMIT ?",
        )
        .bind(to_i64(from_position))
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                let position: i64 = row.try_get(0)?;
                let prev: Option<Vec<u8>> = row.try_get(2)?;
                Ok(LeafData {
                    position: to_u64(position).ok_or_else(|| corrupt("position"))?,
                    hash: hash_of(row.try_get(1)?, "event hash")?,
                    prev_hash: prev.map(|bytes| hash_of(bytes, "event hash")).transpose()?,
                })
            })
            .collect()
    }

    async fn extend_tree(
        &self,
        from_size: u64,
        to_size: u64,
        nodes: &[(NodeId, TreeHash)],
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let moved = sqlx::query("UPDATE tree_state SET size = ? WHERE id = 1 AND size = ?")
            .bind(to_i64(to_size))
            .bind(to_i64(from_size))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if moved != 1 {
            return Ok(false);
        }
        for chunk in nodes.chunks(NODES_PER_INSERT) {
            let mut insert: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO tree_nodes (level, node_index, hash) ");
            insert.push_values(chunk, |mut row, (id, hash)| {
                row.push_bind(i64::from(id.level))
                    .push_bind(to_i64(id.index))
                    .push_bind(hash.to_vec());
            });
            insert.push(" ON CONFLICT (level, node_index) DO NOTHING");
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await.map_err(StoreError::from_commit)?;
        Ok(true)
    }

    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<TreeHash>>, StoreError> {
        // One statement of a fixed shape, padded with pairs that match nothing, so that SQLite
        // prepares it once per connection.
        static SELECT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let pairs = vec!["(?, ?)"; NODES_PER_SELECT].join(", ");
            format!(
                "SELECT level, node_index, hash FROM tree_nodes \
                 WHERE (level, node_index) IN ({pairs})"
            )
        });
        let mut found = std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(NODES_PER_SELECT) {
            let mut select = sqlx::query(sqlx::AssertSqlSafe(SELECT.as_str()));
            for slot in 0..NODES_PER_SELECT {
                select = match chunk.get(slot) {
                    Some(id) => select.bind(i64::from(id.level)).bind(to_i64(id.index)),
                    None => select.bind(-1i64).bind(-1i64),
                };
            }
            for row in select.fetch_all(&self.readers).await? {
                let level: i64 = row.try_get(0)?;
                let index: i64 = row.try_get(1)?;
                let id = NodeId {
                    level: u8::try_from(level).map_err(|_| corrupt("tree level"))?,
                    index: to_u64(index).ok_or_else(|| corrupt("node index"))?,
                };
                found.insert(id, hash_of(row.try_get(2)?, "tree node")?);
            }
        }
        Ok(ids.iter().map(|id| found.get(id).copied()).collect())
    }

    async fn insert_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO checkpoints (tree_size, root, key_id, note, signed_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (tree_size) DO NOTHING",
        )
        .bind(to_i64(checkpoint.tree_size))
        .bind(checkpoint.root.to_vec())
        .bind(&checkpoint.key_id)
        .bind(&checkpoint.note)
        .bind(&checkpoint.signed_at)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    async fn update_checkpoint_note(&self, tree_size: u64, note: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE checkpoints SET note = ? WHERE tree_size = ?")
            .bind(note)
            .bind(to_i64(tree_size))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn checkpoint(&self, tree_size: u64) -> Result<Option<StoredCheckpoint>, StoreError> {
        let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE tree_size = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_i64(tree_size))
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(decode_checkpoint).transpose()
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let sql =
            format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY tree_size DESC LIMIT 1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(decode_checkpoint).transpose()
    }

    async fn checkpoint_covering(
        &self,
        tree_size: u64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let sql = format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE tree_size >= ? \
             ORDER BY tree_size LIMIT 1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_i64(tree_size))
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(decode_checkpoint).transpose()
    }

    async fn checkpoints(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let sql = format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE tree_size < ? \
             ORDER BY tree_size DESC LIMIT ?"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(before.map_or(i64::MAX, to_i64))
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(decode_checkpoint).collect()
    }
}
