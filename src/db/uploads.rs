//! `UploadRepo` over sqlx: upload claims, locations and data-removal bookkeeping, for both
//! databases (see `repo.rs` for the shape of the generic code).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::dialect::Dialect;
use super::errors::{map_err, retry_on_conflict, retry_on_lost};
use super::repo::SqlRepo;
use super::rows::{decode_location, to_db_time};
use crate::domain::image::ImageId;
use crate::domain::repository::{
    Claimed, DataReference, SaveOutcome, StoredLocation, UploadRepo, UploadTarget, UploadedData,
};
use crate::domain::RepoError;

/// `queued → saving` (or `uploading`, for a stage) under `claim` (also matching the image this
/// claim holds already).
const CLAIM: &str = "UPDATE images SET status = $1, upload_claim = $2, upload_heartbeat = $3, \
     updated_at = $4 WHERE id = $5 AND deleted = $6 \
     AND (status = 'queued' OR (status = $7 AND upload_claim = $8))";

/// Images an upload or a stage holds (a staged image keeps `uploading` without a claim).
const CLAIMED: &str = "(status = 'saving' OR (status = 'uploading' AND upload_claim IS NOT NULL))";

#[async_trait]
impl<DB> UploadRepo for SqlRepo<DB>
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
    async fn claim_upload(
        &self,
        id: &ImageId,
        claim: &str,
        now: DateTime<Utc>,
        uploading_limit: Option<(&str, i64)>,
        target: UploadTarget,
    ) -> Result<Claimed, RepoError> {
        let now = to_db_time(now);
        let claimed = match uploading_limit {
            Some((project, limit)) => {
                match retry_on_conflict(|| {
                    self.claim_counted(id, claim, now, project, limit, target)
                })
                .await?
                {
                    Ok(claimed) => claimed,
                    Err(count) => return Ok(Claimed::OverLimit { count }),
                }
            }
            // Also true of an image this claim holds already, so that a repeat after a lost
            // connection (whose first attempt may have committed) finds its own claim.
            None => {
                retry_on_lost(&self.write, || async move {
                    sqlx::query::<DB>(&DB::sql(CLAIM))
                        .bind(target.status().to_owned())
                        .bind(claim.to_owned())
                        .bind(now)
                        .bind(now)
                        .bind(id.to_string())
                        .bind(false)
                        .bind(target.status().to_owned())
                        .bind(claim.to_owned())
                        .execute(&self.write)
                        .await
                        .map_err(map_err)
                        .map(|r| DB::rows_affected(&r))
                })
                .await?
            }
        };
        if claimed == 1 {
            return Ok(Claimed::Claimed);
        }
        Ok(if self.image_exists(id).await? {
            Claimed::Taken
        } else {
            Claimed::Gone
        })
    }

    async fn finish_upload(
        &self,
        id: &ImageId,
        claim: &str,
        data: &UploadedData,
        now: DateTime<Utc>,
    ) -> Result<SaveOutcome, RepoError> {
        let now = to_db_time(now);
        retry_on_lost(&self.write, || {
            self.finish_upload_once(id, claim, data, now)
        })
        .await
    }

    async fn abandon_upload(
        &self,
        id: &ImageId,
        claim: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        self.update_claimed(
            "status = 'queued', size = NULL, virtual_size = NULL, updated_at = $1, \
             upload_claim = NULL, upload_heartbeat = NULL",
            id,
            claim,
            now,
        )
        .await
    }

    async fn touch_upload(
        &self,
        id: &ImageId,
        claim: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        self.update_claimed("upload_heartbeat = $1", id, claim, now)
            .await
    }

    async fn reset_stale_uploads(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, RepoError> {
        retry_on_lost(&self.write, || async move {
            sqlx::query::<DB>(&DB::sql(&format!(
                "UPDATE images SET status = 'queued', size = NULL, virtual_size = NULL, updated_at = $1, \
                 upload_claim = NULL, upload_heartbeat = NULL \
                 WHERE {CLAIMED} AND deleted = $2 AND (upload_heartbeat IS NULL OR upload_heartbeat < $3)")
            ))
            .bind(to_db_time(now))
            .bind(false)
            .bind(to_db_time(cutoff))
            .execute(&self.write)
            .await
            .map_err(map_err)
            .map(|r| DB::rows_affected(&r))
        })
        .await
    }

    async fn reset_uploads_claimed_by(
        &self,
        claim_prefix: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, RepoError> {
        let length = i32::try_from(claim_prefix.len()).unwrap_or(i32::MAX);
        retry_on_lost(&self.write, || async move {
            sqlx::query::<DB>(&DB::sql(&format!(
                "UPDATE images SET status = 'queued', size = NULL, virtual_size = NULL, updated_at = $1, \
                 upload_claim = NULL, upload_heartbeat = NULL \
                 WHERE {CLAIMED} AND deleted = $2 AND SUBSTR(upload_claim, 1, $3) = $4")
            ))
            .bind(to_db_time(now))
            .bind(false)
            .bind(length)
            .bind(claim_prefix.to_owned())
            .execute(&self.write)
            .await
            .map_err(map_err)
            .map(|r| DB::rows_affected(&r))
        })
        .await
    }

    async fn data_reference(
        &self,
        image_id: &str,
        urls: &[String],
    ) -> Result<DataReference, RepoError> {
        // Data stays while any row may still need it: a live location, or one waiting for the
        // scrubber (Glance marks those `deleted` as well as `pending_delete`).
        let (image, named, image_has_data) = retry_on_lost(&self.read, || async move {
            let image =
                sqlx::query::<DB>(&DB::sql("SELECT status, deleted FROM images WHERE id = $1"))
                    .bind(image_id.to_owned())
                    .fetch_optional(&self.read)
                    .await
                    .map_err(map_err)?;
            let mut named = false;
            for url in urls {
                named |= sqlx::query::<DB>(&DB::sql(
                    "SELECT 1 FROM image_locations WHERE value = $1 \
                     AND (deleted = $2 OR status = 'pending_delete') LIMIT 1",
                ))
                .bind(url.clone())
                .bind(false)
                .fetch_optional(&self.read)
                .await
                .map_err(map_err)?
                .is_some();
            }
            // A location spelled differently (another spelling of the data directory) may
            // still mean this very data.
            let image_has_data = sqlx::query::<DB>(&DB::sql(
                "SELECT 1 FROM image_locations WHERE image_id = $1 \
                 AND (deleted = $2 OR status = 'pending_delete') LIMIT 1",
            ))
            .bind(image_id.to_owned())
            .bind(false)
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?;
            Ok((image, named, image_has_data.is_some()))
        })
        .await?;
        if named || image_has_data {
            return Ok(DataReference::Named);
        }
        let get_err = |e: sqlx::Error| RepoError::Other(e.to_string());
        Ok(match image {
            None => DataReference::NoImage,
            Some(row) if row.try_get::<bool, _>(1).map_err(get_err)? => DataReference::NoImage,
            Some(row) => {
                let status: String = row.try_get(0).map_err(get_err)?;
                if status == "saving" {
                    DataReference::Uploading
                } else {
                    DataReference::Unnamed
                }
            }
        })
    }

    async fn locations(&self, id: &ImageId) -> Result<Vec<StoredLocation>, RepoError> {
        let rows = retry_on_lost(&self.read, || async move {
            sqlx::query::<DB>(&DB::sql(
                "SELECT id, image_id, value, meta_data FROM image_locations \
                 WHERE image_id = $1 AND deleted = $2 AND status = 'active' ORDER BY id",
            ))
            .bind(id.to_string())
            .bind(false)
            .fetch_all(&self.read)
            .await
            .map_err(map_err)
        })
        .await?;
        rows.iter().map(decode_location::<DB>).collect()
    }

    async fn add_copy(
        &self,
        id: &ImageId,
        url: &str,
        metadata: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let now = to_db_time(now);
        // Conditional on the URL not being there yet: a repeat after a lost answer adds none.
        let added = retry_on_lost(&self.write, || async move {
            sqlx::query::<DB>(&DB::sql(
                "INSERT INTO image_locations (image_id, value, meta_data, status, created_at, updated_at, deleted) \
                 SELECT i.id, $1, $2, 'active', $3, $4, $5 FROM images i \
                 WHERE i.id = $6 AND i.deleted = $7 AND i.status IN ('active', 'deactivated') \
                 AND NOT EXISTS (SELECT 1 FROM image_locations l \
                 WHERE l.image_id = i.id AND l.value = $8 AND l.deleted = $9)",
            ))
            .bind(url.to_owned())
            .bind(metadata.to_owned())
            .bind(now)
            .bind(now)
            .bind(false)
            .bind(id.to_string())
            .bind(false)
            .bind(url.to_owned())
            .bind(false)
            .execute(&self.write)
            .await
            .map_err(map_err)
            .map(|r| DB::rows_affected(&r))
        })
        .await?;
        Ok(added == 1)
    }

    async fn locations_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredLocation>, RepoError> {
        let rows = retry_on_lost(&self.read, || async move {
            sqlx::query::<DB>(&DB::sql(&format!(
                "SELECT l.id, l.image_id, l.value, l.meta_data FROM image_locations l \
                 JOIN images i ON i.id = l.image_id \
                 WHERE l.id > $1 AND l.deleted = $2 AND l.status = 'active' AND i.deleted = $3 \
                 AND i.status IN ('active', 'deactivated') ORDER BY l.id LIMIT {limit}"
            )))
            .bind(after)
            .bind(false)
            .bind(false)
            .fetch_all(&self.read)
            .await
            .map_err(map_err)
        })
        .await?;
        rows.iter().map(decode_location::<DB>).collect()
    }

    async fn storage_used(&self, owner: Option<&str>) -> Result<u64, RepoError> {
        let owner_matches = if owner.is_some() {
            "i.owner = $3"
        } else {
            "i.owner IS NULL"
        };
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(i.size), 0) AS {}) FROM images i \
             JOIN image_locations l ON l.image_id = i.id AND l.deleted = $1 AND l.status = 'active' \
             WHERE i.deleted = $2 AND {owner_matches}",
            DB::BIGINT
        );
        let sql = &sql;
        let used: i64 = retry_on_lost(&self.read, || async move {
            let sql = DB::sql(sql);
            let query = sqlx::query_scalar::<DB, i64>(&sql).bind(false).bind(false);
            match owner {
                Some(owner) => query.bind(owner.to_owned()),
                None => query,
            }
            .fetch_one(&self.read)
            .await
            .map_err(map_err)
        })
        .await?;
        Ok(u64::try_from(used).unwrap_or(0))
    }

    async fn pending_deletions(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredLocation>, RepoError> {
        let rows = retry_on_lost(&self.read, || async move {
            sqlx::query::<DB>(&DB::sql(
                "SELECT l.id, l.image_id, l.value, l.meta_data FROM image_locations l \
                 LEFT JOIN glint_scrub_deferrals d ON d.location_id = l.id \
                 WHERE l.status = 'pending_delete' AND l.updated_at <= $1 \
                 AND (d.retry_at IS NULL OR d.retry_at <= $2) AND l.id > $3 \
                 ORDER BY l.id LIMIT $4",
            ))
            .bind(to_db_time(cutoff))
            .bind(to_db_time(now))
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await
            .map_err(map_err)
        })
        .await?;
        rows.iter().map(decode_location::<DB>).collect()
    }

    async fn location_removed(
        &self,
        location_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let now = to_db_time(now);
        retry_on_lost(&self.write, || self.location_removed_once(location_id, now)).await
    }

    async fn defer_removal(
        &self,
        location_id: i64,
        now: DateTime<Utc>,
        delay: fn(u32) -> std::time::Duration,
        reason: &str,
    ) -> Result<(u32, DateTime<Utc>), RepoError> {
        let now = to_db_time(now);
        let (attempts, retry_at) = retry_on_lost(&self.write, || {
            self.defer_removal_once(location_id, now, delay, reason)
        })
        .await?;
        Ok((attempts, retry_at.and_utc()))
    }

    async fn delete_refused(
        &self,
        image_id: &str,
        status: &str,
        location_ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let now = to_db_time(now);
        retry_on_lost(&self.write, || {
            self.delete_refused_once(image_id, status, location_ids, now)
        })
        .await
    }

    async fn retire_copy(
        &self,
        image_id: &str,
        location_id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let now = to_db_time(now);
        retry_on_lost(&self.write, || {
            self.retire_copy_once(image_id, location_id, now)
        })
        .await
    }

    async fn set_location_status(
        &self,
        location_id: i64,
        from: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        // Conditional on `from`, so a repeat after a lost answer changes nothing.
        retry_on_lost(&self.write, || async move {
            sqlx::query::<DB>(&DB::sql(
                "UPDATE image_locations SET status = $1, updated_at = $2 \
                 WHERE id = $3 AND status = $4 AND deleted = $5",
            ))
            .bind(to.to_owned())
            .bind(to_db_time(now))
            .bind(location_id)
            .bind(from.to_owned())
            .bind(false)
            .execute(&self.write)
            .await
            .map_err(map_err)
            .map(|r| DB::rows_affected(&r) > 0)
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
    /// One attempt of a claim counted against `image_count_uploading`: the project's
    /// uploads in progress (other than this claim's own) are counted under the project's lock,
    /// then the claim is made in the same transaction. `Err(count)` when the limit is reached;
    /// else the rows the claim changed.
    async fn claim_counted(
        &self,
        id: &ImageId,
        claim: &str,
        now: NaiveDateTime,
        project: &str,
        limit: i64,
        target: UploadTarget,
    ) -> Result<Result<u64, i64>, RepoError> {
        let mut tx = self.begin_counting(project).await?;
        let count: i64 = sqlx::query_scalar::<DB, i64>(&DB::sql(
            "SELECT COUNT(*) FROM images WHERE owner = $1 AND deleted = $2 \
             AND status IN ('saving', 'uploading', 'importing') \
             AND NOT (id = $3 AND upload_claim = $4)",
        ))
        .bind(project.to_owned())
        .bind(false)
        .bind(id.to_string())
        .bind(claim.to_owned())
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        if count + 1 > limit {
            tx.abandon().await;
            return Ok(Err(count));
        }
        let claimed = sqlx::query::<DB>(&DB::sql(CLAIM))
            .bind(target.status().to_owned())
            .bind(claim.to_owned())
            .bind(now)
            .bind(now)
            .bind(id.to_string())
            .bind(false)
            .bind(target.status().to_owned())
            .bind(claim.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(map_err)
            .map(|r| DB::rows_affected(&r))?;
        tx.commit().await.map_err(map_err)?;
        Ok(Ok(claimed))
    }

    /// One attempt of `retire_copy`: the image row is written first, which serialises the
    /// retirements of one image's copies (a row lock on PostgreSQL, the single writer on
    /// SQLite), so two of them can never both see a second copy left.
    async fn retire_copy_once(
        &self,
        image_id: &str,
        location_id: i64,
        now: NaiveDateTime,
    ) -> Result<bool, RepoError> {
        let mut tx = self.write.begin().await.map_err(map_err)?;
        sqlx::query::<DB>(&DB::sql("UPDATE images SET updated_at = $1 WHERE id = $2"))
            .bind(now)
            .bind(image_id.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let active: i64 = sqlx::query_scalar::<DB, i64>(&DB::sql(
            "SELECT COUNT(*) FROM image_locations WHERE image_id = $1 AND status = 'active' AND deleted = $2",
        ))
        .bind(image_id.to_owned())
        .bind(false)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        if active < 2 {
            tx.abandon().await;
            return Ok(false);
        }
        let retired = sqlx::query::<DB>(&DB::sql(
            "UPDATE image_locations SET status = 'pending_delete', updated_at = $1 \
             WHERE id = $2 AND image_id = $3 AND status = 'active' AND deleted = $4",
        ))
        .bind(now)
        .bind(location_id)
        .bind(image_id.to_owned())
        .bind(false)
        .execute(&mut *tx)
        .await
        .map_err(map_err)
        .map(|r| DB::rows_affected(&r))?;
        tx.commit().await.map_err(map_err)?;
        Ok(retired == 1)
    }

    /// One attempt of `finish_upload`. Idempotent: an image already active with this very
    /// location is the outcome of an earlier attempt whose answer was lost.
    async fn finish_upload_once(
        &self,
        id: &ImageId,
        claim: &str,
        data: &UploadedData,
        now: NaiveDateTime,
    ) -> Result<SaveOutcome, RepoError> {
        let mut tx = self.write.begin().await.map_err(map_err)?;
        let updated = sqlx::query::<DB>(&DB::sql(
            "UPDATE images SET status = 'active', size = $1, virtual_size = $2, checksum = $3, \
             os_hash_algo = $4, os_hash_value = $5, updated_at = $6, upload_claim = NULL, upload_heartbeat = NULL \
             WHERE id = $7 AND status = 'saving' AND deleted = $8 AND upload_claim = $9",
        ))
        .bind(data.size)
        .bind(data.virtual_size)
        .bind(data.checksum.clone())
        .bind(data.os_hash_algo.clone())
        .bind(data.os_hash_value.clone())
        .bind(now)
        .bind(id.to_string())
        .bind(false)
        .bind(claim.to_owned())
        .execute(&mut *tx)
        .await
        .map_err(map_err)
        .map(|r| DB::rows_affected(&r))?;
        if updated == 0 {
            tx.abandon().await;
            // A repeat after a lost answer: the first attempt took if its location is there,
            // whatever happened to the image since (deactivated, or deleted with the data left
            // for the scrubber) — the data is then named and must stay.
            let recorded = sqlx::query::<DB>(&DB::sql(
                "SELECT 1 FROM image_locations l WHERE l.image_id = $1 AND l.value = $2 \
                 AND (l.deleted = $3 OR l.status = 'pending_delete')",
            ))
            .bind(id.to_string())
            .bind(data.location.clone())
            .bind(false)
            .fetch_optional(&self.write)
            .await
            .map_err(map_err)?;
            if recorded.is_some() {
                return Ok(SaveOutcome::Saved);
            }
            return Ok(if self.image_exists(id).await? {
                SaveOutcome::StatusChanged
            } else {
                SaveOutcome::Gone
            });
        }
        sqlx::query::<DB>(&DB::sql(
            "INSERT INTO image_locations (image_id, value, meta_data, status, created_at, updated_at, deleted) \
             VALUES ($1, $2, $3, 'active', $4, $5, $6)",
        ))
        .bind(id.to_string())
        .bind(data.location.clone())
        .bind(data.metadata.clone())
        .bind(now)
        .bind(now)
        .bind(false)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(SaveOutcome::Saved)
    }
}
