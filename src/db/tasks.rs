//! `TaskRepo` over sqlx: Glance's `tasks` / `task_info` rows, Glint's import jobs and staged
//! data, and the image writes an import makes under its lock (`os_glance_import_task`).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::dialect::Dialect;
use super::errors::{map_err, retry_on_lost};
use super::repo::SqlRepo;
use super::rows::to_db_time;
use super::sql_builder::SqlBuilder;
use crate::domain::image::ImageId;
use crate::domain::tasks::{
    ClaimedJob, ImportBegun, ImportEnd, ImportStart, ImportedCopy, LocationWrite, LocationsWritten,
    Task, TaskQuery, TaskRepo, TaskStatus,
};
use crate::domain::RepoError;

/// A task's columns, `task_info` joined (`decode_task` reads them in this order).
pub(super) const TASK_SELECT: &str =
    "SELECT t.id, t.type, t.status, t.owner, t.expires_at, t.created_at, \
    t.updated_at, t.image_id, t.request_id, t.user_id, ti.input, ti.result, ti.message \
    FROM tasks t LEFT JOIN task_info ti ON ti.task_id = t.id";

fn text_or_empty(value: Option<String>) -> String {
    value.unwrap_or_default()
}

fn parse_json(text: Option<String>) -> Option<serde_json::Value> {
    text.filter(|t| !t.is_empty())
        .and_then(|t| serde_json::from_str(&t).ok())
        .filter(|v: &serde_json::Value| !v.is_null())
}

#[async_trait]
impl<DB> TaskRepo for SqlRepo<DB>
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
    async fn task(&self, id: &str) -> Result<Option<Task>, RepoError> {
        let row = sqlx::query::<DB>(&DB::sql(&format!(
            "{TASK_SELECT} WHERE t.id = $1 AND t.deleted = $2"
        )))
        .bind(id.to_owned())
        .bind(false)
        .fetch_optional(&self.read)
        .await
        .map_err(map_err)?;
        row.as_ref().map(Self::decode_task).transpose()
    }

    async fn tasks(&self, query: &TaskQuery) -> Result<Vec<Task>, RepoError> {
        let mut sql = SqlBuilder::new(TASK_SELECT);
        sql.push(" WHERE t.deleted = ").push_bind(false);
        if let Some(owner) = &query.owner {
            sql.push(" AND t.owner = ").push_bind(owner.as_str());
        }
        if let Some(status) = query.status {
            sql.push(" AND t.status = ").push_bind(status.as_str());
        }
        if let Some(kind) = &query.task_type {
            sql.push(" AND t.type = ").push_bind(kind.as_str());
        }
        let key = sort_column(&query.sort_key);
        let (cmp, dir) = if query.ascending {
            (">", "ASC")
        } else {
            ("<", "DESC")
        };
        if let Some(marker) = &query.marker {
            // Keyset on (key, created_at, id), NULLs as the lowest value.
            let key_value = marker_value(marker, &query.sort_key);
            let created = to_db_time(marker.created_at);
            sql.push(format!(" AND ({key} {cmp} "))
                .push_bind(key_value.clone())
                .push(format!(" OR ({key} = "))
                .push_bind(key_value)
                .push(format!(" AND (t.created_at {cmp} "))
                .push_bind(created)
                .push(" OR (t.created_at = ")
                .push_bind(created)
                .push(format!(" AND t.id {cmp} "))
                .push_bind(marker.id.as_str())
                .push("))))");
        }
        sql.push(format!(
            " ORDER BY {key} {dir}, t.created_at {dir}, t.id {dir} LIMIT {}",
            query.limit
        ));
        let rows = sql
            .query::<DB>()
            .fetch_all(&self.read)
            .await
            .map_err(map_err)?;
        rows.iter().map(Self::decode_task).collect()
    }

    async fn image_tasks(
        &self,
        image_id: &str,
        owner: Option<&str>,
    ) -> Result<Vec<Task>, RepoError> {
        let mut sql = SqlBuilder::new(TASK_SELECT);
        sql.push(" WHERE t.image_id = ")
            .push_bind(image_id)
            .push(" AND t.deleted = ")
            .push_bind(false)
            .push(" AND (t.expires_at IS NULL OR t.expires_at >= ")
            .push_bind(to_db_time(crate::domain::image::now()))
            .push(")");
        if let Some(owner) = owner {
            sql.push(" AND t.owner = ").push_bind(owner);
        }
        sql.push(" ORDER BY t.created_at, t.id");
        let rows = sql
            .query::<DB>()
            .fetch_all(&self.read)
            .await
            .map_err(map_err)?;
        rows.iter().map(Self::decode_task).collect()
    }

    async fn add_task(&self, task: &Task) -> Result<(), RepoError> {
        retry_on_lost(&self.write, || async {
            let mut tx = self.begin_write().await?;
            Self::insert_task(&mut tx, task).await?;
            tx.commit().await.map_err(map_err)
        })
        .await
    }

    async fn expire_tasks(&self, now: DateTime<Utc>) -> Result<u64, RepoError> {
        let now = to_db_time(now);
        retry_on_lost(&self.write, || async move {
            sqlx::query::<DB>(&DB::sql(
                "UPDATE tasks SET deleted = $1, deleted_at = $2 \
                 WHERE deleted = $3 AND expires_at IS NOT NULL AND expires_at <= $4",
            ))
            .bind(true)
            .bind(now)
            .bind(false)
            .bind(now)
            .execute(&self.write)
            .await
            .map_err(map_err)
            .map(|r| DB::rows_affected(&r))
        })
        .await
    }

    async fn begin_import(
        &self,
        image_id: &ImageId,
        start: &ImportStart,
    ) -> Result<ImportBegun, RepoError> {
        retry_on_lost(&self.write, || self.begin_import_once(image_id, start)).await
    }

    async fn lock_held(
        &self,
        task_id: &str,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let mut connection = self.read.acquire().await.map_err(map_err)?;
        Self::lock_holds(&mut connection, task_id, to_db_time(stale_before)).await
    }

    async fn claim_job(
        &self,
        node: &str,
        claim: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<Option<ClaimedJob>, RepoError> {
        let (now, stale) = (to_db_time(now), to_db_time(stale_before));
        retry_on_lost(&self.write, || self.claim_job_once(node, claim, now, stale)).await
    }

    async fn write_locations(
        &self,
        image_id: &ImageId,
        status: &str,
        write: &LocationWrite,
        now: DateTime<Utc>,
    ) -> Result<LocationsWritten, RepoError> {
        let now = to_db_time(now);
        retry_on_lost(&self.write, || {
            self.write_locations_once(image_id, status, write, now)
        })
        .await
    }

    async fn release_jobs_claimed_by(&self, prefix: &str) -> Result<u64, RepoError> {
        let length = i32::try_from(prefix.len()).unwrap_or(i32::MAX);
        retry_on_lost(&self.write, || async move {
            sqlx::query::<DB>(&DB::sql(
                "UPDATE glint_import_jobs SET claim = NULL, heartbeat = NULL \
                 WHERE SUBSTR(claim, 1, $1) = $2",
            ))
            .bind(length)
            .bind(prefix.to_owned())
            .execute(&self.write)
            .await
            .map_err(map_err)
            .map(|r| DB::rows_affected(&r))
        })
        .await
    }

    async fn touch_job(
        &self,
        task_id: &str,
        claim: &str,
        message: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let now = to_db_time(now);
        retry_on_lost(&self.write, || async move {
            let mut tx = self.begin_write().await?;
            let touched = sqlx::query::<DB>(&DB::sql(
                "UPDATE glint_import_jobs SET heartbeat = $1 WHERE task_id = $2 AND claim = $3",
            ))
            .bind(now)
            .bind(task_id.to_owned())
            .bind(claim.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(map_err)
            .map(|r| DB::rows_affected(&r))?;
            if touched == 0 {
                tx.abandon().await;
                return Ok(false);
            }
            // The task moves too, so that Glance's own lock rule (a task idle for an hour)
            // never finds a running import idle.
            sqlx::query::<DB>(&DB::sql("UPDATE tasks SET updated_at = $1 WHERE id = $2"))
                .bind(now)
                .bind(task_id.to_owned())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            if let Some(message) = message {
                sqlx::query::<DB>(&DB::sql(
                    "UPDATE task_info SET message = $1 WHERE task_id = $2",
                ))
                .bind(message.to_owned())
                .bind(task_id.to_owned())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            }
            tx.commit().await.map_err(map_err)?;
            Ok(true)
        })
        .await
    }

    async fn record_import(
        &self,
        task_id: &str,
        claim: &str,
        image_id: &ImageId,
        copy: &ImportedCopy,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let now = to_db_time(now);
        retry_on_lost(&self.write, || {
            self.record_import_once(task_id, claim, image_id, copy, now)
        })
        .await
    }

    async fn finish_job(
        &self,
        task_id: &str,
        claim: &str,
        image_id: &ImageId,
        end: &ImportEnd,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let now = to_db_time(now);
        retry_on_lost(&self.write, || {
            self.finish_job_once(task_id, claim, image_id, end, now)
        })
        .await
    }
}

/// The column a sort key names (checked against `TASK_SORT_KEYS` by the caller); NULLs read
/// as the lowest value so that keyset paging sees every row.
fn sort_column(key: &str) -> String {
    match key {
        "expires_at" | "updated_at" => format!("COALESCE(t.{key}, t.created_at)"),
        "image_id" | "request_id" | "user_id" => format!("COALESCE(t.{key}, '')"),
        "id" | "type" | "status" | "owner" | "created_at" | "deleted" => format!("t.{key}"),
        _ => "t.created_at".to_owned(),
    }
}

/// The marker's value of `sort_column(key)`.
fn marker_value(marker: &Task, key: &str) -> super::sql_builder::Bind {
    use super::sql_builder::Bind;
    let time = |t: Option<DateTime<Utc>>| Bind::Time(to_db_time(t.unwrap_or(marker.created_at)));
    match key {
        "expires_at" => time(marker.expires_at),
        "updated_at" => time(Some(marker.updated_at)),
        "created_at" => time(Some(marker.created_at)),
        "image_id" => Bind::Text(Some(text_or_empty(marker.image_id.clone()))),
        "request_id" => Bind::Text(Some(text_or_empty(marker.request_id.clone()))),
        "user_id" => Bind::Text(Some(text_or_empty(marker.user_id.clone()))),
        "type" => Bind::Text(Some(marker.task_type.clone())),
        "status" => Bind::Text(Some(marker.status.as_str().to_owned())),
        "owner" => Bind::Text(Some(marker.owner.clone())),
        "deleted" => Bind::Bool(false),
        _ => Bind::Text(Some(marker.id.clone())),
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
    for<'q> Option<NaiveDateTime>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    pub(super) fn decode_task(row: &DB::Row) -> Result<Task, RepoError> {
        let get_err = |e: sqlx::Error| RepoError::Other(e.to_string());
        let status: String = row.try_get(2).map_err(get_err)?;
        let created: NaiveDateTime = row.try_get(5).map_err(get_err)?;
        let updated: Option<NaiveDateTime> = row.try_get(6).map_err(get_err)?;
        let expires: Option<NaiveDateTime> = row.try_get(4).map_err(get_err)?;
        Ok(Task {
            id: row.try_get(0).map_err(get_err)?,
            task_type: row.try_get(1).map_err(get_err)?,
            status: TaskStatus::parse(&status)
                .ok_or_else(|| RepoError::Other(format!("task with unknown status {status}")))?,
            owner: row.try_get(3).map_err(get_err)?,
            expires_at: expires.map(|t| t.and_utc()),
            created_at: created.and_utc(),
            updated_at: updated.unwrap_or(created).and_utc(),
            image_id: row.try_get(7).map_err(get_err)?,
            request_id: row.try_get(8).map_err(get_err)?,
            user_id: row.try_get(9).map_err(get_err)?,
            input: parse_json(row.try_get(10).map_err(get_err)?),
            result: parse_json(row.try_get(11).map_err(get_err)?),
            message: text_or_empty(row.try_get(12).map_err(get_err)?),
        })
    }

    pub(super) async fn insert_task(
        conn: &mut DB::Connection,
        task: &Task,
    ) -> Result<(), RepoError> {
        let json = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
        sqlx::query::<DB>(&DB::sql(
            "INSERT INTO tasks (id, type, status, owner, expires_at, created_at, updated_at, \
             deleted, image_id, request_id, user_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        ))
        .bind(task.id.clone())
        .bind(task.task_type.clone())
        .bind(task.status.as_str().to_owned())
        .bind(task.owner.clone())
        .bind(task.expires_at.map(to_db_time))
        .bind(to_db_time(task.created_at))
        .bind(to_db_time(task.updated_at))
        .bind(false)
        .bind(task.image_id.clone())
        .bind(task.request_id.clone())
        .bind(task.user_id.clone())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        sqlx::query::<DB>(&DB::sql(
            "INSERT INTO task_info (task_id, input, result, message) VALUES ($1, $2, $3, $4)",
        ))
        .bind(task.id.clone())
        .bind(json(&task.input))
        .bind(json(&task.result))
        .bind(task.message.clone())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}
