//! The bookkeeping of data removal over sqlx: a location whose data is gone, a delete the
//! store refused (the data is in use), and the scrubber's deferred retries. The `UploadRepo`
//! methods in `uploads.rs` call these, each inside `retry_on_lost`.

use chrono::NaiveDateTime;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::dialect::Dialect;
use super::errors::map_err;
use super::repo::SqlRepo;
use crate::domain::RepoError;

impl<DB> SqlRepo<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB> + Default,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> NaiveDateTime: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// One attempt of `location_removed` (both updates are idempotent).
    pub(super) async fn location_removed_once(
        &self,
        location_id: i64,
        now: NaiveDateTime,
    ) -> Result<(), RepoError> {
        let mut tx = self.write.begin().await.map_err(map_err)?;
        sqlx::query::<DB>(&DB::sql(
            "DELETE FROM glint_scrub_deferrals WHERE location_id = $1",
        ))
        .bind(location_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query::<DB>(&DB::sql(
            "UPDATE image_locations SET status = 'deleted', deleted = $1, deleted_at = $2, updated_at = $3 WHERE id = $4",
        ))
        .bind(true)
        .bind(now)
        .bind(now)
        .bind(location_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query::<DB>(&DB::sql(
            "UPDATE images SET status = 'deleted', updated_at = $1 \
             WHERE id = (SELECT image_id FROM image_locations WHERE id = $2) AND status = 'pending_delete' \
             AND NOT EXISTS (SELECT 1 FROM image_locations l WHERE l.image_id = images.id \
                             AND l.status = 'pending_delete')",
        ))
        .bind(now)
        .bind(location_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    /// One attempt of `delete_refused`. Only an image still deleted is restored, and only
    /// locations still waiting for removal come back, so a repeat changes nothing.
    pub(super) async fn delete_refused_once(
        &self,
        image_id: &str,
        status: &str,
        location_ids: &[i64],
        now: NaiveDateTime,
    ) -> Result<bool, RepoError> {
        let mut tx = self.write.begin().await.map_err(map_err)?;
        let restored = sqlx::query::<DB>(&DB::sql(
            "UPDATE images SET deleted = $1, deleted_at = NULL, status = $2, updated_at = $3 \
             WHERE id = $4 AND deleted = $5",
        ))
        .bind(false)
        .bind(status.to_owned())
        .bind(now)
        .bind(image_id.to_owned())
        .bind(true)
        .execute(&mut *tx)
        .await
        .map_err(map_err)
        .map(|r| DB::rows_affected(&r))?;
        if restored == 0 {
            tx.abandon().await;
            return Ok(false);
        }
        for &id in location_ids {
            sqlx::query::<DB>(&DB::sql(
                "UPDATE image_locations SET status = 'active', updated_at = $1 \
                 WHERE id = $2 AND image_id = $3 AND status = 'pending_delete' AND deleted = $4",
            ))
            .bind(now)
            .bind(id)
            .bind(image_id.to_owned())
            .bind(false)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            sqlx::query::<DB>(&DB::sql(
                "DELETE FROM glint_scrub_deferrals WHERE location_id = $1",
            ))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    /// One attempt of `defer_removal`: counts the attempt and records when the next may run.
    pub(super) async fn defer_removal_once(
        &self,
        location_id: i64,
        now: NaiveDateTime,
        delay: fn(u32) -> std::time::Duration,
        reason: &str,
    ) -> Result<(u32, NaiveDateTime), RepoError> {
        let mut tx = self.write.begin().await.map_err(map_err)?;
        let previous: Option<i32> = sqlx::query_scalar::<DB, i32>(&DB::sql(
            "SELECT attempts FROM glint_scrub_deferrals WHERE location_id = $1",
        ))
        .bind(location_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let attempts = previous.map_or(1, |n| u32::try_from(n).unwrap_or(0).saturating_add(1));
        let retry_at =
            now + chrono::Duration::from_std(delay(attempts)).unwrap_or(chrono::Duration::days(1));
        let sql = if previous.is_some() {
            "UPDATE glint_scrub_deferrals SET attempts = $1, retry_at = $2, reason = $3 \
             WHERE location_id = $4"
        } else {
            "INSERT INTO glint_scrub_deferrals (attempts, retry_at, reason, location_id) \
             VALUES ($1, $2, $3, $4)"
        };
        sqlx::query::<DB>(&DB::sql(sql))
            .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
            .bind(retry_at)
            .bind(reason.to_owned())
            .bind(location_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok((attempts, retry_at))
    }
}
