//! [`TreeStore`] on PostgreSQL: the tree and checkpoint tables in the log's database, shared by
//! every process. Two processes extending the tree at once are ordered by the `tree_state` row:
//! the second finds the size moved and writes nothing.

use async_trait::async_trait;
use sqlx::Row;

use super::postgres::PostgresStore;
use super::tree::{LeafData, StoredCheckpoint, TreeStore, hash_of};
use super::{StoreError, to_i64, to_u64};
use crate::log::merkle::{NodeId, TreeHash};

/// Nodes per INSERT (sent as three arrays).
const NODES_PER_INSERT: usize = 10_000;

const CHECKPOINT_COLUMNS: &str = "tree_size, root, key_id, note, signed_at";

fn decode_checkpoint(row: &sqlx::postgres::PgRow) -> Result<StoredCheckpoint, StoreError> {
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
impl TreeStore for PostgresStore {
    async fn tree_size(&self) -> Result<u64, StoreError> {
        let size: i64 = sqlx::query_scalar("SELECT size FROM tree_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        to_u64(size).ok_or_else(|| corrupt("tree size"))
    }

    async fn leaf_data(&self, from_position: u64, limit: u32) -> Result<Vec<LeafData>, StoreError> {
        let rows = sqlx::query(
            "SELECT position, hash, prev_hash FROM events WHERE position >= $1 \
             ORDER BY position LIMIT $2",
        )
        .bind(to_i64(from_position))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query("UPDATE tree_state SET size = $1 WHERE id = 1 AND size = $2")
            .bind(to_i64(to_size))
            .bind(to_i64(from_size))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if moved != 1 {
            return Ok(false);
        }
        for chunk in nodes.chunks(NODES_PER_INSERT) {
            let levels: Vec<i16> = chunk.iter().map(|(id, _)| i16::from(id.level)).collect();
            let indexes: Vec<i64> = chunk.iter().map(|(id, _)| to_i64(id.index)).collect();
            let hashes: Vec<Vec<u8>> = chunk.iter().map(|(_, hash)| hash.to_vec()).collect();
            sqlx::query(
                "INSERT INTO tree_nodes (level, node_index, hash) \
                 SELECT * FROM UNNEST($1::smallint[], $2::bigint[], $3::bytea[]) \
                 ON CONFLICT (level, node_index) DO NOTHING",
            )
            .bind(levels)
            .bind(indexes)
            .bind(hashes)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await.map_err(StoreError::from_commit)?;
        Ok(true)
    }

    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<TreeHash>>, StoreError> {
        let levels: Vec<i16> = ids.iter().map(|id| i16::from(id.level)).collect();
        let indexes: Vec<i64> = ids.iter().map(|id| to_i64(id.index)).collect();
        let rows = sqlx::query(
            "SELECT n.level, n.node_index, n.hash FROM tree_nodes n \
             JOIN UNNEST($1::smallint[], $2::bigint[]) AS k(level, node_index) \
             ON n.level = k.level AND n.node_index = k.node_index",
        )
        .bind(levels)
        .bind(indexes)
        .fetch_all(&self.pool)
        .await?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            let level: i16 = row.try_get(0)?;
            let index: i64 = row.try_get(1)?;
            let id = NodeId {
                level: u8::try_from(level).map_err(|_| corrupt("tree level"))?,
                index: to_u64(index).ok_or_else(|| corrupt("node index"))?,
            };
            found.insert(id, hash_of(row.try_get(2)?, "tree node")?);
        }
        Ok(ids.iter().map(|id| found.get(id).copied()).collect())
    }

    async fn insert_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO checkpoints (tree_size, root, key_id, note, signed_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tree_size) DO NOTHING",
        )
        .bind(to_i64(checkpoint.tree_size))
        .bind(checkpoint.root.to_vec())
        .bind(&checkpoint.key_id)
        .bind(&checkpoint.note)
        .bind(&checkpoint.signed_at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    async fn update_checkpoint_note(&self, tree_size: u64, note: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE checkpoints SET note = $1 WHERE tree_size = $2")
            .bind(note)
            .bind(to_i64(tree_size))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn checkpoint(&self, tree_size: u64) -> Result<Option<StoredCheckpoint>, StoreError> {
        let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE tree_size = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_i64(tree_size))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_checkpoint).transpose()
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let sql =
            format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY tree_size DESC LIMIT 1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_checkpoint).transpose()
    }

    async fn checkpoint_covering(
        &self,
        tree_size: u64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let sql = format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE tree_size >= $1 \
             ORDER BY tree_size LIMIT 1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_i64(tree_size))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_checkpoint).transpose()
    }

    async fn checkpoints(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let sql = format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE tree_size < $1 \
             ORDER BY tree_size DESC LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(before.map_or(i64::MAX, to_i64))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_checkpoint).collect()
    }
}
