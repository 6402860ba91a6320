//! Locations changed by a JSON-patch of `/locations`: added or their metadata rewritten, the
//! image's quota of locations counted and duplicates refused under the image row's lock.

use chrono::NaiveDateTime;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::dialect::Dialect;
use super::errors::map_err;
use super::repo::SqlRepo;
use crate::domain::image::ImageId;
use crate::domain::tasks::{LocationWrite, LocationsWritten};
use crate::domain::RepoError;

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
    pub(super) async fn write_locations_once(
        &self,
        image_id: &ImageId,
        status: &str,
        write: &LocationWrite,
        now: NaiveDateTime,
    ) -> Result<LocationsWritten, RepoError> {
        let mut tx = self.begin_write().await?;
        let current = sqlx::query_scalar::<DB, String>(&DB::sql(&format!(
            "SELECT status FROM images WHERE id = $1 AND deleted = $2{}",
            DB::FOR_UPDATE
        )))
        .bind(image_id.to_string())
        .bind(false)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some(current) = current else {
            tx.abandon().await;
            return Ok(LocationsWritten::Gone);
        };
        if current != status {
            tx.abandon().await;
            return Ok(LocationsWritten::StatusChanged);
        }
        let rows = sqlx::query::<DB>(&DB::sql(
            "SELECT value, meta_data FROM image_locations WHERE image_id = $1 AND deleted = $2 \
             AND status = 'active'",
        ))
        .bind(image_id.to_string())
        .bind(false)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let get_err = |e: sqlx::Error| RepoError::Other(e.to_string());
        let mut existing: Vec<(String, serde_json::Value)> = Vec::new();
        for row in &rows {
            let url: String = row.try_get(0).map_err(get_err)?;
            let metadata: Option<String> = row.try_get(1).map_err(get_err)?;
            let metadata = metadata
                .and_then(|m| serde_json::from_str(&m).ok())
                .unwrap_or(serde_json::Value::Null);
            existing.push((url, metadata));
        }
        for (url, metadata) in &write.add {
            let metadata: serde_json::Value =
                serde_json::from_str(metadata).unwrap_or(serde_json::Value::Null);
            if existing.iter().any(|(u, m)| u == url && *m == metadata) {
                tx.abandon().await;
                return Ok(LocationsWritten::Duplicate(url.clone()));
            }
        }
        if let Some(quota) = write.max_locations {
            let count = existing.len() + write.add.len();
            if count > quota {
                tx.abandon().await;
                return Ok(LocationsWritten::OverQuota { count, quota });
            }
        }
        for (url, metadata) in &write.add {
            sqlx::query::<DB>(&DB::sql(
                "INSERT INTO image_locations (image_id, value, meta_data, status, created_at, \
                 updated_at, deleted) VALUES ($1, $2, $3, 'active', $4, $5, $6)",
            ))
            .bind(image_id.to_string())
            .bind(url.clone())
            .bind(metadata.clone())
            .bind(now)
            .bind(now)
            .bind(false)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        for (url, metadata) in &write.metadata_only {
            sqlx::query::<DB>(&DB::sql(
                "UPDATE image_locations SET meta_data = $1, updated_at = $2 \
                 WHERE image_id = $3 AND value = $4 AND deleted = $5",
            ))
            .bind(metadata.clone())
            .bind(now)
            .bind(image_id.to_string())
            .bind(url.clone())
            .bind(false)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        let [checksum, algo, value] = write.hashes.clone().unwrap_or_default();
        let to = if status == "queued" { "active" } else { status };
        sqlx::query::<DB>(&DB::sql(
            "UPDATE images SET status = $1, size = COALESCE(size, $2), \
             checksum = COALESCE(checksum, $3), os_hash_algo = COALESCE(os_hash_algo, $4), \
             os_hash_value = COALESCE(os_hash_value, $5), updated_at = $6 WHERE id = $7",
        ))
        .bind(to.to_owned())
        .bind(write.size)
        .bind(checksum)
        .bind(algo)
        .bind(value)
        .bind(now)
        .bind(image_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(LocationsWritten::Written)
    }
}
