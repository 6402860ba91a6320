//! Data staged for imports (`glint_staged_data`): the staged-data half of `UploadRepo`.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::dialect::Dialect;
use super::errors::{map_err, retry_on_lost};
use super::repo::SqlRepo;
use super::rows::to_db_time;
use super::sql_builder::SqlBuilder;
use crate::domain::image::ImageId;
use crate::domain::tasks::{StagedData, StagingRepo};
use crate::domain::RepoError;

const STAGED_SELECT: &str = "SELECT image_id, location, size, checksum, os_hash_value, node, \
    created_at FROM glint_staged_data";

#[async_trait]
impl<DB> StagingRepo for SqlRepo<DB>
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
    async fn record_staged(
        &self,
        claim: &str,
        staged: &StagedData,
        set: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let now = to_db_time(now);
        retry_on_lost(&self.write, || async move {
            let mut tx = self.begin_write().await?;
            let updated = sqlx::query::<DB>(&DB::sql(
                "UPDATE images SET size = $1, updated_at = $2, upload_claim = NULL, \
                 upload_heartbeat = NULL \
                 WHERE id = $3 AND status = 'uploading' AND deleted = $4 AND upload_claim = $5",
            ))
            .bind(staged.size)
            .bind(now)
            .bind(staged.image_id.clone())
            .bind(false)
            .bind(claim.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(map_err)
            .map(|r| DB::rows_affected(&r))?;
            if updated == 0 {
                tx.abandon().await;
                return Ok(false);
            }
            Self::replace_staged(&mut tx, staged, now).await?;
            let id = ImageId::parse(&staged.image_id)
                .ok_or_else(|| RepoError::Other("malformed image id".to_owned()))?;
            Self::upsert_properties(&mut tx, &id, set.iter().map(|(k, v)| (k, v)), now).await?;
            tx.commit().await.map_err(map_err)?;
            Ok(true)
        })
        .await
    }

    async fn put_staged(&self, staged: &StagedData) -> Result<(), RepoError> {
        let now = to_db_time(staged.created_at);
        retry_on_lost(&self.write, || async move {
            let mut tx = self.begin_write().await?;
            Self::replace_staged(&mut tx, staged, now).await?;
            tx.commit().await.map_err(map_err)
        })
        .await
    }

    async fn staged(&self, image_id: &str) -> Result<Option<StagedData>, RepoError> {
        let row = sqlx::query::<DB>(&DB::sql(&format!("{STAGED_SELECT} WHERE image_id = $1")))
            .bind(image_id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?;
        row.as_ref().map(Self::decode_staged).transpose()
    }

    async fn staged_unneeded(&self, node: Option<&str>) -> Result<Vec<StagedData>, RepoError> {
        let mut sql = SqlBuilder::new(STAGED_SELECT);
        sql.push(
            " s WHERE NOT EXISTS (SELECT 1 FROM images i WHERE i.id = s.image_id \
             AND i.status IN ('uploading', 'importing') AND i.deleted = ",
        )
        .push_bind(false)
        .push(") AND NOT EXISTS (SELECT 1 FROM glint_import_jobs j WHERE j.image_id = s.image_id)");
        match node {
            Some(node) => sql.push(" AND s.node = ").push_bind(node),
            None => sql.push(" AND s.node IS NULL"),
        };
        let rows = sql
            .query::<DB>()
            .fetch_all(&self.read)
            .await
            .map_err(map_err)?;
        rows.iter().map(Self::decode_staged).collect()
    }

    async fn remove_staged(&self, image_id: &str, location: &str) -> Result<(), RepoError> {
        retry_on_lost(&self.write, || async move {
            sqlx::query::<DB>(&DB::sql(
                "DELETE FROM glint_staged_data WHERE image_id = $1 AND location = $2",
            ))
            .bind(image_id.to_owned())
            .bind(location.to_owned())
            .execute(&self.write)
            .await
            .map_err(map_err)
            .map(|_| ())
        })
        .await
    }
}

impl<DB> SqlRepo<DB>
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
    fn decode_staged(row: &DB::Row) -> Result<StagedData, RepoError> {
        let get_err = |e: sqlx::Error| RepoError::Other(e.to_string());
        let created: NaiveDateTime = row.try_get(6).map_err(get_err)?;
        Ok(StagedData {
            image_id: row.try_get(0).map_err(get_err)?,
            location: row.try_get(1).map_err(get_err)?,
            size: row.try_get(2).map_err(get_err)?,
            checksum: row.try_get(3).map_err(get_err)?,
            os_hash_value: row.try_get(4).map_err(get_err)?,
            node: row.try_get(5).map_err(get_err)?,
            created_at: created.and_utc(),
        })
    }

    /// Replaces the image's staged-data record (an earlier stage's, whose import failed).
    async fn replace_staged(
        conn: &mut DB::Connection,
        staged: &StagedData,
        now: NaiveDateTime,
    ) -> Result<(), RepoError> {
        // Data an earlier stage of the image left (its import failed) is replaced.
        sqlx::query::<DB>(&DB::sql(
            "DELETE FROM glint_staged_data WHERE image_id = $1",
        ))
        .bind(staged.image_id.clone())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        sqlx::query::<DB>(&DB::sql(
            "INSERT INTO glint_staged_data (image_id, location, size, checksum, \
                 os_hash_value, node, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        ))
        .bind(staged.image_id.clone())
        .bind(staged.location.clone())
        .bind(staged.size)
        .bind(staged.checksum.clone())
        .bind(staged.os_hash_value.clone())
        .bind(staged.node.clone())
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}
