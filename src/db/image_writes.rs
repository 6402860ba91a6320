//! The image writes of `ImageRepo`: each is one transaction, written so that it can run again
//! whole when the database rolls it back to break a conflict (`retry_on_conflict` in
//! `repo.rs`), as Glance retries its image writes on deadlock.

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::dialect::Dialect;
use super::errors::map_err;
use super::repo::SqlRepo;
use super::rows::{decode_location, to_db_time};
use super::sql_builder::SqlBuilder;
use crate::domain::image::{Image, ImageId};
use crate::domain::repository::{CountLimits, Counted, Created, SaveOutcome, StoredLocation};
use crate::domain::RepoError;

/// Rows per multi-row INSERT: well under PostgreSQL's 65535 bind parameters and SQLite's
/// 32766, whatever the number of properties an operator allows.
const ROWS_PER_INSERT: usize = 1000;

/// `($1, $2), ($3, $4)` for `rows` rows of `columns` placeholders.
fn value_rows(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * columns + column + 1));
        }
        sql.push(')');
    }
    sql
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
    pub(super) async fn create_once(
        &self,
        image: &Image,
        count_limit: Option<(&str, i64)>,
    ) -> Result<Created, RepoError> {
        let mut tx = match count_limit {
            Some((project, _)) => self.begin_counting(project).await?,
            None => self.begin_write().await?,
        };
        if let Some((project, limit)) = count_limit {
            let count: i64 = sqlx::query_scalar::<DB, i64>(&DB::sql(
                "SELECT COUNT(*) FROM images WHERE owner = $1 AND deleted = $2 \
                 AND status NOT IN ('killed', 'pending_delete', 'deleted')",
            ))
            .bind(project.to_owned())
            .bind(false)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
            if count + 1 > limit {
                tx.abandon().await;
                return Ok(Created::OverLimit { count });
            }
        }
        let created = to_db_time(image.created_at);
        let updated = to_db_time(image.updated_at);
        // Visibility is written as a literal of its closed set: on PostgreSQL the column has
        // Glance's enum type, which a text parameter does not convert to.
        let insert = format!(
            "INSERT INTO images (id, name, status, visibility, protected, os_hidden, checksum, \
             os_hash_algo, os_hash_value, owner, size, virtual_size, container_format, disk_format, \
             min_disk, min_ram, created_at, updated_at, deleted) \
             VALUES ($1, $2, $3, '{}', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
            image.visibility.as_str()
        );
        sqlx::query::<DB>(&DB::sql(&insert))
            .bind(image.id.to_string())
            .bind(image.name.clone())
            .bind(image.status.as_str().to_owned())
            .bind(image.protected)
            .bind(image.os_hidden)
            .bind(image.checksum.clone())
            .bind(image.os_hash_algo.clone())
            .bind(image.os_hash_value.clone())
            .bind(image.owner.clone())
            .bind(image.size)
            .bind(image.virtual_size)
            .bind(image.container_format.clone())
            .bind(image.disk_format.clone())
            .bind(image.min_disk)
            .bind(image.min_ram)
            .bind(created)
            .bind(updated)
            .bind(false)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        Self::upsert_properties(&mut *tx, &image.id, image.properties.iter(), updated).await?;
        Self::insert_tags(&mut *tx, &image.id, image.tags.iter(), updated).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(Created::Created)
    }

    pub(super) async fn save_once(
        &self,
        before: &Image,
        after: &Image,
        limits: CountLimits,
    ) -> Result<SaveOutcome, RepoError> {
        let now = to_db_time(after.updated_at);
        let mut tx = self.begin_write().await?;
        let mut update = SqlBuilder::new("UPDATE images SET updated_at = ");
        update.push_bind(now);
        Self::push_changed_columns(&mut update, before, after);
        update.push(" WHERE id = ").push_bind(after.id.to_string());
        update.push(" AND deleted = ").push_bind(false);
        update
            .push(" AND status = ")
            .push_bind(before.status.as_str().to_owned());
        let updated = update
            .query::<DB>()
            .execute(&mut *tx)
            .await
            .map_err(map_err)
            .map(|r| DB::rows_affected(&r))?;
        if updated == 0 {
            tx.abandon().await;
            return Ok(if self.image_exists(&after.id).await? {
                SaveOutcome::StatusChanged
            } else {
                SaveOutcome::Gone
            });
        }

        let removed: Vec<&String> = before
            .properties
            .keys()
            .filter(|k| !after.properties.contains_key(*k))
            .collect();
        for key in removed {
            // Soft-deleted, as Glance does: the row stays, marked.
            sqlx::query::<DB>(&DB::sql(
                "UPDATE image_properties SET deleted = $1, deleted_at = $2, updated_at = $3 \
                 WHERE image_id = $4 AND name = $5 AND deleted = $6",
            ))
            .bind(true)
            .bind(now)
            .bind(now)
            .bind(after.id.to_string())
            .bind(key.clone())
            .bind(false)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        let changed = after
            .properties
            .iter()
            .filter(|(k, v)| before.properties.get(*k) != Some(*v));
        Self::upsert_properties(&mut *tx, &after.id, changed, now).await?;

        for tag in before.tags.iter().filter(|t| !after.tags.contains(t)) {
            Self::soft_delete_tag(&mut *tx, &after.id, tag, now).await?;
        }
        let added = after.tags.iter().filter(|t| !before.tags.contains(t));
        Self::insert_tags(&mut *tx, &after.id, added, now).await?;
        // Counted after the writes, under the image row's lock (the UPDATE above holds it on
        // PostgreSQL; SQLite has one writer): concurrent requests see each other's rows.
        if after.properties.len() > before.properties.len() {
            if let Some(over) =
                Self::over_quota(&mut *tx, &after.id, Counted::Properties, limits.properties)
                    .await?
            {
                tx.abandon().await;
                return Ok(over);
            }
        }
        if after.tags.len() > before.tags.len() {
            if let Some(over) =
                Self::over_quota(&mut *tx, &after.id, Counted::Tags, limits.tags).await?
            {
                tx.abandon().await;
                return Ok(over);
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(SaveOutcome::Saved)
    }

    pub(super) async fn add_tag_once(
        &self,
        id: &ImageId,
        tag: &str,
        tag_quota: Option<usize>,
        now: DateTime<Utc>,
    ) -> Result<SaveOutcome, RepoError> {
        let now = to_db_time(now);
        let mut tx = self.begin_write().await?;
        // The touch locks the image row first, so the count below sees every concurrent tag.
        if !Self::touch(&mut *tx, id, now).await? {
            tx.abandon().await;
            return Ok(SaveOutcome::Gone);
        }
        Self::insert_tags(&mut *tx, id, std::iter::once(&tag.to_owned()), now).await?;
        if let Some(over) = Self::over_quota(&mut *tx, id, Counted::Tags, tag_quota).await? {
            tx.abandon().await;
            return Ok(over);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(SaveOutcome::Saved)
    }

    pub(super) async fn remove_tag_once(
        &self,
        id: &ImageId,
        tag: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let now = to_db_time(now);
        let mut tx = self.begin_write().await?;
        // The image row first, as every image write locks it: no two writes wait on each
        // other in opposite orders.
        if !Self::touch(&mut *tx, id, now).await?
            || Self::soft_delete_tag(&mut *tx, id, tag, now).await? == 0
        {
            tx.abandon().await;
            return Ok(false);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    pub(super) async fn delete_once(
        &self,
        id: &ImageId,
        now: DateTime<Utc>,
        delayed: bool,
    ) -> Result<Option<Vec<StoredLocation>>, RepoError> {
        let now = to_db_time(now);
        let mut tx = self.begin_write().await?;
        // The image row first: from here on no upload can record a location for it, so the
        // locations read next are all there will ever be.
        let deleted = sqlx::query::<DB>(&DB::sql(
            "UPDATE images SET deleted = $1, deleted_at = $2, updated_at = $3, status = CASE \
               WHEN $4 AND EXISTS (SELECT 1 FROM image_locations l WHERE l.image_id = images.id \
                                   AND l.deleted = $5 AND l.status = 'active') THEN 'pending_delete' \
               ELSE 'deleted' END \
             WHERE id = $6 AND deleted = $7",
        ))
        .bind(true)
        .bind(now)
        .bind(now)
        .bind(delayed)
        .bind(false)
        .bind(id.to_string())
        .bind(false)
        .execute(&mut *tx)
        .await
        .map_err(map_err)
        .map(|r| DB::rows_affected(&r))?;
        if deleted == 0 {
            tx.abandon().await;
            return Ok(None);
        }
        // The image's properties, tags and memberships go with it, as Glance's image_destroy
        // marks them (the rows stay until `glint db purge`).
        for table in ["image_properties", "image_tags", "image_members"] {
            sqlx::query::<DB>(&DB::sql(&format!(
                "UPDATE {table} SET deleted = $1, deleted_at = $2 WHERE image_id = $3 AND deleted = $4"
            )))
            .bind(true)
            .bind(now)
            .bind(id.to_string())
            .bind(false)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        // Read, then marked: MySQL has no UPDATE … RETURNING. The image row written above
        // keeps the set from changing in between (uploads and copy removals write it first).
        let rows = sqlx::query::<DB>(&DB::sql(
            "SELECT id, image_id, value, meta_data FROM image_locations \
             WHERE image_id = $1 AND deleted = $2 AND status = 'active'",
        ))
        .bind(id.to_string())
        .bind(false)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query::<DB>(&DB::sql(
            "UPDATE image_locations SET status = 'pending_delete', updated_at = $1 \
             WHERE image_id = $2 AND deleted = $3 AND status = 'active'",
        ))
        .bind(now)
        .bind(id.to_string())
        .bind(false)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let mut locations = rows
            .iter()
            .map(decode_location::<DB>)
            .collect::<Result<Vec<_>, _>>()?;
        locations.sort_by_key(|l| l.id);
        tx.commit().await.map_err(map_err)?;
        Ok(Some(locations))
    }

    /// Appends `, column = value` for every core attribute that differs.
    fn push_changed_columns(update: &mut SqlBuilder, before: &Image, after: &Image) {
        macro_rules! changed {
            ($($field:ident),*) => {$(
                if before.$field != after.$field {
                    update.push(concat!(", ", stringify!($field), " = ")).push_bind(after.$field.clone());
                }
            )*};
        }
        changed!(
            name,
            owner,
            container_format,
            disk_format,
            checksum,
            os_hash_algo,
            os_hash_value
        );
        changed!(size, virtual_size, min_disk, min_ram, protected, os_hidden);
        if before.status != after.status {
            update
                .push(", status = ")
                .push_bind(after.status.as_str().to_owned());
        }
        if before.visibility != after.visibility {
            // A literal of the closed set: see `create_once`.
            update.push(format_args!(
                ", visibility = '{}'",
                after.visibility.as_str()
            ));
        }
    }

    /// `OverQuota` if the image now has more rows of `what` than `quota` allows (the caller
    /// then drops its transaction).
    async fn over_quota(
        conn: &mut DB::Connection,
        id: &ImageId,
        what: Counted,
        quota: Option<usize>,
    ) -> Result<Option<SaveOutcome>, RepoError> {
        let Some(quota) = quota else {
            return Ok(None);
        };
        let sql = match what {
            Counted::Properties => {
                "SELECT COUNT(*) FROM image_properties WHERE image_id = $1 AND deleted = $2"
            }
            Counted::Tags => "SELECT COUNT(*) FROM image_tags WHERE image_id = $1 AND deleted = $2",
        };
        let count: i64 = sqlx::query_scalar::<DB, i64>(&DB::sql(sql))
            .bind(id.to_string())
            .bind(false)
            .fetch_one(conn)
            .await
            .map_err(map_err)?;
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        Ok((count > quota).then_some(SaveOutcome::OverQuota { what, count }))
    }

    /// Sets `updated_at`; false if the image is gone.
    async fn touch(
        conn: &mut DB::Connection,
        id: &ImageId,
        now: NaiveDateTime,
    ) -> Result<bool, RepoError> {
        let touched = sqlx::query::<DB>(&DB::sql(
            "UPDATE images SET updated_at = $1 WHERE id = $2 AND deleted = $3",
        ))
        .bind(now)
        .bind(id.to_string())
        .bind(false)
        .execute(conn)
        .await
        .map_err(map_err)
        .map(|r| DB::rows_affected(&r))?;
        Ok(touched == 1)
    }

    /// Marks the image's live `tag` rows deleted, as Glance does (the rows stay); how many.
    async fn soft_delete_tag(
        conn: &mut DB::Connection,
        id: &ImageId,
        tag: &str,
        now: NaiveDateTime,
    ) -> Result<u64, RepoError> {
        sqlx::query::<DB>(&DB::sql(
            "UPDATE image_tags SET deleted = $1, deleted_at = $2, updated_at = $3 \
             WHERE image_id = $4 AND value = $5 AND deleted = $6",
        ))
        .bind(true)
        .bind(now)
        .bind(now)
        .bind(id.to_string())
        .bind(tag.to_owned())
        .bind(false)
        .execute(conn)
        .await
        .map_err(map_err)
        .map(|r| DB::rows_affected(&r))
    }

    /// Inserts or replaces properties, `ROWS_PER_INSERT` rows per statement. A property
    /// removed before comes back in its old row (Glance's unique key is `(image_id, name)`,
    /// deleted rows included), live again.
    pub(super) async fn upsert_properties<'a>(
        conn: &mut DB::Connection,
        id: &ImageId,
        properties: impl Iterator<Item = (&'a String, &'a String)>,
        now: NaiveDateTime,
    ) -> Result<(), RepoError> {
        let rows: Vec<(&String, &String)> = properties.collect();
        for batch in rows.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO image_properties (image_id, name, value, created_at, updated_at, deleted) \
                 VALUES {}{}",
                value_rows(batch.len(), 6),
                DB::UPSERT_PROPERTY
            );
            let sql = DB::sql(&sql);
            let mut insert = sqlx::query::<DB>(&sql);
            for (name, value) in batch {
                insert = insert
                    .bind(id.to_string())
                    .bind((*name).clone())
                    .bind((*value).clone())
                    .bind(now)
                    .bind(now)
                    .bind(false);
            }
            insert.execute(&mut *conn).await.map_err(map_err)?;
        }
        Ok(())
    }

    /// Inserts tags, skipping those the image has already. Glance's tag rows have no unique
    /// key (removed tags stay as deleted rows), so the live ones are read first; the caller
    /// holds the image row's lock, so no concurrent write adds one in between.
    async fn insert_tags<'a>(
        conn: &mut DB::Connection,
        id: &ImageId,
        tags: impl Iterator<Item = &'a String>,
        now: NaiveDateTime,
    ) -> Result<(), RepoError> {
        let mut tags: Vec<&String> = tags.collect();
        if tags.is_empty() {
            return Ok(());
        }
        let live: Vec<String> = sqlx::query_scalar::<DB, String>(&DB::sql(
            "SELECT value FROM image_tags WHERE image_id = $1 AND deleted = $2",
        ))
        .bind(id.to_string())
        .bind(false)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
        tags.retain(|tag| !live.contains(tag));
        tags.sort();
        tags.dedup();
        for batch in tags.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO image_tags (image_id, value, created_at, updated_at, deleted) VALUES {}",
                value_rows(batch.len(), 5),
            );
            let sql = DB::sql(&sql);
            let mut insert = sqlx::query::<DB>(&sql);
            for tag in batch {
                insert = insert
                    .bind(id.to_string())
                    .bind((*tag).clone())
                    .bind(now)
                    .bind(now)
                    .bind(false);
            }
            insert.execute(&mut *conn).await.map_err(map_err)?;
        }
        Ok(())
    }
}
