//! `CacheRepo`: Glance's `node_reference` and `cached_images` tables, as its
//! `centralized_db` cache driver reads and writes them (`glance/db/sqlalchemy/api.py`).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::dialect::Dialect;
use super::errors::{map_err, retry_on_lost};
use super::repo::SqlRepo;
use super::rows::to_db_time;
use super::sql_builder::SqlBuilder;
use crate::domain::cache::{CacheRepo, CachedImage, NewCachedImage};
use crate::domain::RepoError;

const ENTRY_SELECT: &str = "SELECT c.id, c.image_id, c.last_accessed, c.last_modified, c.size, \
    c.hits, c.checksum FROM cached_images c JOIN node_reference n \
    ON n.node_reference_id = c.node_reference_id WHERE n.node_reference_url = $1";

/// The id of the node named by the next placeholder.
const NODE_ID: &str =
    "(SELECT node_reference_id FROM node_reference WHERE node_reference_url = $1)";

#[async_trait]
impl<DB> CacheRepo for SqlRepo<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB> + Default,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> NaiveDateTime: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    async fn register_node(&self, node: &str) -> Result<(), RepoError> {
        retry_on_lost(&self.write, || async move {
            let known = sqlx::query::<DB>(&DB::sql(
                "SELECT node_reference_id FROM node_reference WHERE node_reference_url = $1",
            ))
            .bind(node.to_owned())
            .fetch_optional(&self.write)
            .await
            .map_err(map_err)?;
            if known.is_some() {
                return Ok(());
            }
            match sqlx::query::<DB>(&DB::sql(
                "INSERT INTO node_reference (node_reference_url) VALUES ($1)",
            ))
            .bind(node.to_owned())
            .execute(&self.write)
            .await
            .map_err(map_err)
            {
                // Another process of the same node registered it first.
                Ok(_) | Err(RepoError::Duplicate) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn record(&self, node: &str, image: &NewCachedImage) -> Result<(), RepoError> {
        let now = to_db_time(Utc::now());
        let modified = to_db_time(image.modified);
        retry_on_lost(&self.write, || async move {
            let mut tx = self.begin_write().await?;
            sqlx::query::<DB>(&DB::sql(&format!(
                "DELETE FROM cached_images WHERE node_reference_id = {NODE_ID} AND image_id = $2"
            )))
            .bind(node.to_owned())
            .bind(image.image_id.clone())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            let inserted = sqlx::query::<DB>(&DB::sql(
                "INSERT INTO cached_images (image_id, last_accessed, last_modified, size, hits, \
                 checksum, node_reference_id) SELECT $1, $2, $3, $4, $5, $6, node_reference_id \
                 FROM node_reference WHERE node_reference_url = $7",
            ))
            .bind(image.image_id.clone())
            .bind(now)
            .bind(modified)
            .bind(image.size)
            .bind(0i32)
            .bind(image.checksum.clone())
            .bind(node.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(map_err)
            .map(|r| DB::rows_affected(&r))?;
            if inserted == 0 {
                tx.abandon().await;
                return Err(RepoError::Other(format!(
                    "node {node} is not registered in node_reference"
                )));
            }
            tx.commit().await.map_err(map_err)
        })
        .await
    }

    async fn hit(&self, node: &str, image_id: &str, now: DateTime<Utc>) -> Result<(), RepoError> {
        let now = to_db_time(now);
        let sql = DB::sql(&format!(
            "UPDATE cached_images SET hits = hits + 1, last_accessed = $1 \
             WHERE image_id = $2 AND node_reference_id = {}",
            NODE_ID.replace("$1", "$3")
        ))
        .into_owned();
        // Retried on a lost connection: a hit counted twice is a harmless overcount.
        retry_on_lost(&self.write, || {
            let sql = sql.clone();
            async move {
                sqlx::query::<DB>(&sql)
                    .bind(now)
                    .bind(image_id.to_owned())
                    .bind(node.to_owned())
                    .execute(&self.write)
                    .await
                    .map_err(map_err)
                    .map(|_| ())
            }
        })
        .await
    }

    async fn entries(&self, node: &str) -> Result<Vec<CachedImage>, RepoError> {
        let rows = retry_on_lost(&self.read, || async move {
            sqlx::query::<DB>(&DB::sql(&format!(
                "{ENTRY_SELECT} ORDER BY c.last_accessed, c.id"
            )))
            .bind(node.to_owned())
            .fetch_all(&self.read)
            .await
            .map_err(map_err)
        })
        .await?;
        rows.iter().map(decode_entry::<DB>).collect()
    }

    async fn entry(&self, node: &str, image_id: &str) -> Result<Option<CachedImage>, RepoError> {
        let row = sqlx::query::<DB>(&DB::sql(&format!("{ENTRY_SELECT} AND c.image_id = $2")))
            .bind(node.to_owned())
            .bind(image_id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?;
        row.as_ref().map(decode_entry::<DB>).transpose()
    }

    async fn remove(&self, node: &str, image_id: &str) -> Result<(), RepoError> {
        retry_on_lost(&self.write, || async move {
            sqlx::query::<DB>(&DB::sql(&format!(
                "DELETE FROM cached_images WHERE node_reference_id = {NODE_ID} AND image_id = $2"
            )))
            .bind(node.to_owned())
            .bind(image_id.to_owned())
            .execute(&self.write)
            .await
            .map_err(map_err)
            .map(|_| ())
        })
        .await
    }

    async fn remove_all(&self, node: &str) -> Result<u64, RepoError> {
        retry_on_lost(&self.write, || async move {
            sqlx::query::<DB>(&DB::sql(&format!(
                "DELETE FROM cached_images WHERE node_reference_id = {NODE_ID}"
            )))
            .bind(node.to_owned())
            .execute(&self.write)
            .await
            .map_err(map_err)
            .map(|r| DB::rows_affected(&r))
        })
        .await
    }

    async fn nodes_of(&self, image_id: &str) -> Result<Vec<String>, RepoError> {
        retry_on_lost(&self.read, || async move {
            sqlx::query_scalar::<DB, String>(&DB::sql(
                "SELECT n.node_reference_url FROM node_reference n JOIN cached_images c \
                 ON n.node_reference_id = c.node_reference_id WHERE c.image_id = $1 \
                 ORDER BY n.node_reference_url",
            ))
            .bind(image_id.to_owned())
            .fetch_all(&self.read)
            .await
            .map_err(map_err)
        })
        .await
    }

    async fn not_active(&self, image_ids: &[String]) -> Result<Vec<String>, RepoError> {
        if image_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut active = Vec::new();
        for batch in image_ids.chunks(500) {
            let mut sql =
                SqlBuilder::new("SELECT id FROM images WHERE status = 'active' AND deleted = ");
            sql.push_bind(false).push(" AND id IN (");
            for (i, id) in batch.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.push_bind(id.as_str());
            }
            sql.push(")");
            let rows = sql
                .query::<DB>()
                .fetch_all(&self.read)
                .await
                .map_err(map_err)?;
            for row in rows {
                let id: String = row
                    .try_get(0)
                    .map_err(|e| RepoError::Other(e.to_string()))?;
                active.push(id);
            }
        }
        Ok(image_ids
            .iter()
            .filter(|id| !active.contains(id))
            .cloned()
            .collect())
    }
}

fn decode_entry<DB>(row: &DB::Row) -> Result<CachedImage, RepoError>
where
    DB: Dialect,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Decode<'q, DB> + Type<DB>,
    for<'q> i64: Decode<'q, DB> + Type<DB>,
    for<'q> i32: Decode<'q, DB> + Type<DB>,
    for<'q> NaiveDateTime: Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let get_err = |e: sqlx::Error| RepoError::Other(e.to_string());
    let accessed: NaiveDateTime = row.try_get(2).map_err(get_err)?;
    let modified: NaiveDateTime = row.try_get(3).map_err(get_err)?;
    let hits: i32 = row.try_get(5).map_err(get_err)?;
    Ok(CachedImage {
        id: row.try_get(0).map_err(get_err)?,
        image_id: row.try_get(1).map_err(get_err)?,
        last_accessed: accessed.and_utc(),
        last_modified: modified.and_utc(),
        size: row.try_get(4).map_err(get_err)?,
        hits: i64::from(hits),
        checksum: row.try_get(6).map_err(get_err)?,
    })
}
