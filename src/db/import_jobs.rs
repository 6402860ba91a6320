//! The writes of an import under its image's lock (`os_glance_import_task`): starting it
//! (task, job and image together), claiming its job, recording each store's copy, ending it.

use chrono::NaiveDateTime;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::dialect::Dialect;
use super::errors::map_err;
use super::repo::SqlRepo;
use super::rows::to_db_time;
use super::sql_builder::SqlBuilder;
use super::tasks::TASK_SELECT;
use crate::domain::image::ImageId;
use crate::domain::tasks::{
    merge_store_list, props, ClaimedJob, ImportBegun, ImportEnd, ImportStart, ImportedCopy,
    TaskStatus,
};
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
    for<'q> Option<NaiveDateTime>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// The image's live value of property `name`.
    async fn property(
        conn: &mut DB::Connection,
        id: &ImageId,
        name: &str,
    ) -> Result<Option<String>, RepoError> {
        sqlx::query_scalar::<DB, Option<String>>(&DB::sql(
            "SELECT value FROM image_properties WHERE image_id = $1 AND name = $2 AND deleted = $3",
        ))
        .bind(id.to_string())
        .bind(name.to_owned())
        .bind(false)
        .fetch_optional(conn)
        .await
        .map_err(map_err)
        .map(Option::flatten)
    }

    /// Soft-deletes the image's properties named in `names`.
    async fn remove_properties(
        conn: &mut DB::Connection,
        id: &ImageId,
        names: &[String],
        now: NaiveDateTime,
    ) -> Result<(), RepoError> {
        if names.is_empty() {
            return Ok(());
        }
        let mut sql = SqlBuilder::new("UPDATE image_properties SET deleted = ");
        sql.push_bind(true)
            .push(", deleted_at = ")
            .push_bind(now)
            .push(" WHERE image_id = ")
            .push_bind(id.to_string())
            .push(" AND deleted = ")
            .push_bind(false)
            .push(" AND name IN (");
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push_bind(name.as_str());
        }
        sql.push(")");
        sql.query::<DB>()
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// Locks the image row and reads its status; `None` when the image is gone.
    async fn lock_status(
        conn: &mut DB::Connection,
        id: &ImageId,
    ) -> Result<Option<String>, RepoError> {
        sqlx::query_scalar::<DB, String>(&DB::sql(&format!(
            "SELECT status FROM images WHERE id = $1 AND deleted = $2{}",
            DB::FOR_UPDATE
        )))
        .bind(id.to_string())
        .bind(false)
        .fetch_optional(conn)
        .await
        .map_err(map_err)
    }

    /// Whether the lock held by `task_id` still holds: its job runs (or waits to), or —
    /// a lock Glance took — its task is unfinished and has moved since `stale_before`.
    pub(super) async fn lock_holds(
        conn: &mut DB::Connection,
        task_id: &str,
        stale_before: NaiveDateTime,
    ) -> Result<bool, RepoError> {
        let job = sqlx::query::<DB>(&DB::sql(
            "SELECT 1 FROM glint_import_jobs WHERE task_id = $1 \
             AND (heartbeat >= $2 OR (heartbeat IS NULL AND created_at >= $3))",
        ))
        .bind(task_id.to_owned())
        .bind(stale_before)
        .bind(stale_before)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        if job.is_some() {
            return Ok(true);
        }
        let task = sqlx::query::<DB>(&DB::sql(
            "SELECT 1 FROM tasks WHERE id = $1 AND deleted = $2 \
             AND status IN ('pending', 'processing') AND updated_at >= $3 \
             AND NOT EXISTS (SELECT 1 FROM glint_import_jobs j WHERE j.task_id = tasks.id)",
        ))
        .bind(task_id.to_owned())
        .bind(false)
        .bind(stale_before)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        Ok(task.is_some())
    }

    /// Ends a task: final status, message, result, expiry.
    async fn end_task(
        conn: &mut DB::Connection,
        task_id: &str,
        end: &ImportEnd,
        now: NaiveDateTime,
    ) -> Result<(), RepoError> {
        sqlx::query::<DB>(&DB::sql(
            "UPDATE tasks SET status = $1, expires_at = $2, updated_at = $3 \
             WHERE id = $4 AND status IN ('pending', 'processing')",
        ))
        .bind(end.status.as_str().to_owned())
        .bind(to_db_time(end.expires_at))
        .bind(now)
        .bind(task_id.to_owned())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        sqlx::query::<DB>(&DB::sql(
            "UPDATE task_info SET message = $1, result = $2 WHERE task_id = $3",
        ))
        .bind(end.message.clone())
        .bind(end.result.as_ref().map(|r| r.to_string()))
        .bind(task_id.to_owned())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    pub(super) async fn begin_import_once(
        &self,
        image_id: &ImageId,
        start: &ImportStart,
    ) -> Result<ImportBegun, RepoError> {
        let now = to_db_time(start.task.created_at);
        let mut tx = self.begin_write().await?;
        let Some(status) = Self::lock_status(&mut tx, image_id).await? else {
            tx.abandon().await;
            return Ok(ImportBegun::Gone);
        };
        let mut preempted = None;
        if let Some(holder) = Self::property(&mut tx, image_id, props::IMPORT_TASK).await? {
            if Self::lock_holds(&mut tx, &holder, to_db_time(start.stale_before)).await? {
                tx.abandon().await;
                return Ok(ImportBegun::Locked);
            }
            // Broken: the holder's task fails, its job (if any) goes.
            Self::end_task(
                &mut tx,
                &holder,
                &ImportEnd {
                    status: TaskStatus::Failure,
                    message: "Expired lock preempted".to_owned(),
                    result: None,
                    expires_at: start.task.created_at,
                    revert_to: None,
                    set: Vec::new(),
                    remove: Vec::new(),
                    drop_locations: Vec::new(),
                },
                now,
            )
            .await?;
            sqlx::query::<DB>(&DB::sql("DELETE FROM glint_import_jobs WHERE task_id = $1"))
                .bind(holder.clone())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            preempted = Some(holder);
        }
        if status != start.from_status {
            tx.abandon().await;
            return Ok(ImportBegun::StatusChanged);
        }
        Self::insert_task(&mut tx, &start.task).await?;
        sqlx::query::<DB>(&DB::sql(
            "INSERT INTO glint_import_jobs (task_id, image_id, spec, node, claim, heartbeat, \
             attempts, created_at) VALUES ($1, $2, $3, $4, NULL, NULL, $5, $6)",
        ))
        .bind(start.task.id.clone())
        .bind(image_id.to_string())
        .bind(start.spec.clone())
        .bind(start.node.clone())
        .bind(0i32)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let to_status = start.to_status.unwrap_or(start.from_status);
        sqlx::query::<DB>(&DB::sql(
            "UPDATE images SET status = $1, updated_at = $2 WHERE id = $3",
        ))
        .bind(to_status.to_owned())
        .bind(now)
        .bind(image_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        Self::remove_properties(&mut tx, image_id, &start.remove, now).await?;
        Self::upsert_properties(
            &mut tx,
            image_id,
            start.set.iter().map(|(k, v)| (k, v)),
            now,
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(ImportBegun::Started { preempted })
    }

    pub(super) async fn claim_job_once(
        &self,
        node: &str,
        claim: &str,
        now: NaiveDateTime,
        stale: NaiveDateTime,
    ) -> Result<Option<ClaimedJob>, RepoError> {
        let mut tx = self.begin_write().await?;
        let found = sqlx::query::<DB>(&DB::sql(&format!(
            "SELECT task_id, image_id, spec, attempts FROM glint_import_jobs \
             WHERE (node IS NULL OR node = $1) AND (claim IS NULL OR heartbeat < $2) \
             ORDER BY created_at LIMIT 1{}",
            DB::SKIP_LOCKED
        )))
        .bind(node.to_owned())
        .bind(stale)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some(row) = found else {
            tx.abandon().await;
            return Ok(None);
        };
        let get_err = |e: sqlx::Error| RepoError::Other(e.to_string());
        let task_id: String = row.try_get(0).map_err(get_err)?;
        let image_id: String = row.try_get(1).map_err(get_err)?;
        let spec: String = row.try_get(2).map_err(get_err)?;
        let attempts: i32 = row.try_get::<i32, _>(3).map_err(get_err)? + 1;
        sqlx::query::<DB>(&DB::sql(
            "UPDATE glint_import_jobs SET claim = $1, heartbeat = $2, attempts = $3 \
             WHERE task_id = $4",
        ))
        .bind(claim.to_owned())
        .bind(now)
        .bind(attempts)
        .bind(task_id.clone())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query::<DB>(&DB::sql(
            "UPDATE tasks SET status = 'processing', updated_at = $1 \
             WHERE id = $2 AND status = 'pending'",
        ))
        .bind(now)
        .bind(task_id.clone())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let task = sqlx::query::<DB>(&DB::sql(&format!("{TASK_SELECT} WHERE t.id = $1")))
            .bind(task_id.clone())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let image_id = ImageId::parse(&image_id)
            .ok_or_else(|| RepoError::Other(format!("job {task_id} names a malformed image")))?;
        let Some(task) = task.as_ref().map(Self::decode_task).transpose()? else {
            // A job whose task is gone (purged) has nothing to report to: dropped.
            sqlx::query::<DB>(&DB::sql("DELETE FROM glint_import_jobs WHERE task_id = $1"))
                .bind(task_id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            return Ok(None);
        };
        tx.commit().await.map_err(map_err)?;
        Ok(Some(ClaimedJob {
            task,
            image_id,
            spec,
            attempts,
        }))
    }

    /// Locks the job under `claim` and the image, and checks that the job's task holds the
    /// image's lock; the image's status when all hold.
    async fn lock_for_job(
        conn: &mut DB::Connection,
        task_id: &str,
        claim: &str,
        image_id: &ImageId,
    ) -> Result<Option<String>, RepoError> {
        let job = sqlx::query::<DB>(&DB::sql(&format!(
            "SELECT 1 FROM glint_import_jobs WHERE task_id = $1 AND claim = $2{}",
            DB::FOR_UPDATE
        )))
        .bind(task_id.to_owned())
        .bind(claim.to_owned())
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        if job.is_none() {
            return Ok(None);
        }
        let Some(status) = Self::lock_status(&mut *conn, image_id).await? else {
            return Ok(None);
        };
        let holder = Self::property(&mut *conn, image_id, props::IMPORT_TASK).await?;
        Ok((holder.as_deref() == Some(task_id)).then_some(status))
    }

    pub(super) async fn record_import_once(
        &self,
        task_id: &str,
        claim: &str,
        image_id: &ImageId,
        copy: &ImportedCopy,
        now: NaiveDateTime,
    ) -> Result<bool, RepoError> {
        let mut tx = self.begin_write().await?;
        let Some(status) = Self::lock_for_job(&mut tx, task_id, claim, image_id).await? else {
            tx.abandon().await;
            return Ok(false);
        };
        // A repeat after a lost answer finds its location there already.
        let present = sqlx::query::<DB>(&DB::sql(
            "SELECT 1 FROM image_locations WHERE image_id = $1 AND value = $2 AND deleted = $3",
        ))
        .bind(image_id.to_string())
        .bind(copy.location.clone())
        .bind(false)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if present.is_none() {
            sqlx::query::<DB>(&DB::sql(
                "INSERT INTO image_locations (image_id, value, meta_data, status, created_at, \
                 updated_at, deleted) VALUES ($1, $2, $3, 'active', $4, $5, $6)",
            ))
            .bind(image_id.to_string())
            .bind(copy.location.clone())
            .bind(copy.metadata.clone())
            .bind(now)
            .bind(now)
            .bind(false)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        let status = if copy.activate && matches!(status.as_str(), "importing" | "queued") {
            "active".to_owned()
        } else {
            status
        };
        sqlx::query::<DB>(&DB::sql(
            "UPDATE images SET status = $1, size = COALESCE($2, size), \
             virtual_size = COALESCE($3, virtual_size), checksum = COALESCE($4, checksum), \
             os_hash_algo = COALESCE($5, os_hash_algo), os_hash_value = COALESCE($6, os_hash_value), \
             disk_format = COALESCE($7, disk_format), \
             container_format = COALESCE($8, container_format), updated_at = $9 WHERE id = $10",
        ))
        .bind(status)
        .bind(copy.size)
        .bind(copy.virtual_size)
        .bind(copy.checksum.clone())
        .bind(copy.os_hash_algo.clone())
        .bind(copy.os_hash_value.clone())
        .bind(copy.disk_format.clone())
        .bind(copy.container_format.clone())
        .bind(now)
        .bind(image_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        Self::upsert_properties(
            &mut tx,
            image_id,
            copy.properties.iter().map(|(k, v)| (k, v)),
            now,
        )
        .await?;
        if let Some(store) = &copy.store {
            let importing = Self::property(&mut tx, image_id, props::IMPORTING_TO).await?;
            let left = merge_store_list(importing.as_deref(), &[], &[store]);
            Self::upsert_properties(
                &mut tx,
                image_id,
                std::iter::once((&props::IMPORTING_TO.to_owned(), &left)),
                now,
            )
            .await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    pub(super) async fn finish_job_once(
        &self,
        task_id: &str,
        claim: &str,
        image_id: &ImageId,
        end: &ImportEnd,
        now: NaiveDateTime,
    ) -> Result<bool, RepoError> {
        let mut tx = self.begin_write().await?;
        let owns = sqlx::query::<DB>(&DB::sql(&format!(
            "SELECT 1 FROM glint_import_jobs WHERE task_id = $1 AND claim = $2{}",
            DB::FOR_UPDATE
        )))
        .bind(task_id.to_owned())
        .bind(claim.to_owned())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if owns.is_none() {
            tx.abandon().await;
            return Ok(false);
        }
        Self::end_task(&mut tx, task_id, end, now).await?;
        sqlx::query::<DB>(&DB::sql("DELETE FROM glint_import_jobs WHERE task_id = $1"))
            .bind(task_id.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        // The image changes only while this task holds its lock (it may be deleted, or its
        // lock broken, meanwhile).
        if let Some(status) = Self::lock_status(&mut tx, image_id).await? {
            let holder = Self::property(&mut tx, image_id, props::IMPORT_TASK).await?;
            if holder.as_deref() == Some(task_id) {
                if let Some(to) = end.revert_to.filter(|_| status == "importing") {
                    let clear = if to == "queued" {
                        ", size = NULL, virtual_size = NULL"
                    } else {
                        ""
                    };
                    sqlx::query::<DB>(&DB::sql(&format!(
                        "UPDATE images SET status = $1, updated_at = $2{clear} WHERE id = $3"
                    )))
                    .bind(to.to_owned())
                    .bind(now)
                    .bind(image_id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                Self::drop_locations(&mut tx, image_id, &end.drop_locations, now).await?;
                let mut remove = end.remove.clone();
                remove.push(props::IMPORT_TASK.to_owned());
                Self::remove_properties(&mut tx, image_id, &remove, now).await?;
                Self::upsert_properties(
                    &mut tx,
                    image_id,
                    end.set.iter().map(|(k, v)| (k, v)),
                    now,
                )
                .await?;
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    /// Marks the image's locations at `urls` deleted; with none left, the image's digests and
    /// size go too (Glance's revert of a store's import).
    async fn drop_locations(
        conn: &mut DB::Connection,
        image_id: &ImageId,
        urls: &[String],
        now: NaiveDateTime,
    ) -> Result<(), RepoError> {
        if urls.is_empty() {
            return Ok(());
        }
        for url in urls {
            sqlx::query::<DB>(&DB::sql(
                "UPDATE image_locations SET deleted = $1, deleted_at = $2, status = 'deleted' \
                 WHERE image_id = $3 AND value = $4 AND deleted = $5",
            ))
            .bind(true)
            .bind(now)
            .bind(image_id.to_string())
            .bind(url.clone())
            .bind(false)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
        }
        sqlx::query::<DB>(&DB::sql(
            "UPDATE images SET checksum = NULL, os_hash_algo = NULL, os_hash_value = NULL, \
             size = NULL, virtual_size = NULL WHERE id = $1 AND NOT EXISTS \
             (SELECT 1 FROM image_locations l WHERE l.image_id = $2 AND l.deleted = $3)",
        ))
        .bind(image_id.to_string())
        .bind(image_id.to_string())
        .bind(false)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}
