//! `ImageRepo` over sqlx, written once for every database: `DB` is PostgreSQL, MySQL/MariaDB
//! or SQLite, and the only differences come from `Dialect`. Reads use `read`, writes use
//! `write` (the same pool on the servers; SQLite's single-writer pool, see `Database`). The
//! write transactions themselves are in `image_writes.rs`.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::dialect::Dialect;
use super::errors::{map_err, retry_on_conflict, retry_on_lost};
use super::list_sql;
use super::pool::{DbPool, DbTransaction};
use super::rows::{decode_json, image_locations, location_stores, to_db_time, LocationRow};
use super::sql_builder::SqlBuilder;
use crate::domain::image::{Image, ImageId, Visibility};
use crate::domain::listing::{ListQuery, Viewer};
use crate::domain::repository::{
    CountLimits, Created, ImageRepo, Member, MemberAdded, MemberStatus, ProjectCounts, SaveOutcome,
    StoredLocation,
};
use crate::domain::{ImageStatus, RepoError};

#[derive(Debug)]
pub struct SqlRepo<DB: sqlx::Database> {
    pub(super) read: DbPool<DB>,
    pub(super) write: DbPool<DB>,
    /// Whether image reads fetch locations (each image's `stores`, `direct_url` and
    /// `locations`, shown only with several stores or when configured): without them, a show
    /// reads two tables instead of three.
    read_locations: bool,
    /// `image_by_id_sql` and the columns a list selects, made once.
    image_by_id: String,
    list_select: String,
}

impl<DB: Dialect> SqlRepo<DB> {
    pub fn new(read: DbPool<DB>, write: DbPool<DB>, read_locations: bool) -> SqlRepo<DB> {
        let locations = if read_locations {
            DB::LOCATIONS_SELECT
        } else {
            "NULL"
        };
        SqlRepo {
            read,
            write,
            read_locations,
            image_by_id: image_by_id_sql::<DB>(read_locations),
            list_select: format!("{}, {locations}", DB::IMAGE_SELECT),
        }
    }
}

/// How long the health check waits for the database.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

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
    /// The 18 `IMAGE_COLUMNS` of a row; properties, tags and stores left empty.
    fn decode_columns(row: &DB::Row) -> Result<Image, RepoError> {
        let get_err = |e: sqlx::Error| RepoError::Other(e.to_string());
        let status: String = row.try_get(2).map_err(get_err)?;
        let visibility: String = row.try_get(3).map_err(get_err)?;
        let id: String = row.try_get(0).map_err(get_err)?;
        Ok(Image {
            status: ImageStatus::parse(&status).ok_or_else(|| {
                RepoError::Other(format!("image {id} has unknown status {status}"))
            })?,
            visibility: Visibility::parse(&visibility).ok_or_else(|| {
                RepoError::Other(format!("image {id} has unknown visibility {visibility}"))
            })?,
            id: ImageId::parse(&id)
                .ok_or_else(|| RepoError::Other(format!("malformed image id {id}")))?,
            name: row.try_get(1).map_err(get_err)?,
            protected: row.try_get(4).map_err(get_err)?,
            os_hidden: row.try_get(5).map_err(get_err)?,
            checksum: row.try_get(6).map_err(get_err)?,
            os_hash_algo: row.try_get(7).map_err(get_err)?,
            os_hash_value: row.try_get(8).map_err(get_err)?,
            owner: row.try_get(9).map_err(get_err)?,
            size: row.try_get(10).map_err(get_err)?,
            virtual_size: row.try_get(11).map_err(get_err)?,
            container_format: row.try_get(12).map_err(get_err)?,
            disk_format: row.try_get(13).map_err(get_err)?,
            min_disk: row.try_get(14).map_err(get_err)?,
            min_ram: row.try_get(15).map_err(get_err)?,
            created_at: row
                .try_get::<NaiveDateTime, _>(16)
                .map_err(get_err)?
                .and_utc(),
            updated_at: row
                .try_get::<NaiveDateTime, _>(17)
                .map_err(get_err)?
                .and_utc(),
            properties: Default::default(),
            tags: Vec::new(),
            stores: Vec::new(),
            locations: Vec::new(),
        })
    }

    /// A row of a list: the columns, then properties, tags and location metadata (NULL
    /// when locations are not read) aggregated as JSON.
    fn decode_image(row: &DB::Row) -> Result<Image, RepoError> {
        let get_err = |e: sqlx::Error| RepoError::Other(e.to_string());
        let mut image = Self::decode_columns(row)?;
        let id = image.id.to_string();
        image.properties = decode_json(row.try_get(18).map_err(get_err)?, &id)?;
        image.tags = decode_json(row.try_get(19).map_err(get_err)?, &id)?;
        let locations: Vec<LocationRow> = decode_json(row.try_get(20).map_err(get_err)?, &id)?;
        image.locations = image_locations(locations);
        image.stores = location_stores(&image.locations);
        Ok(tidy_tags(image))
    }

    /// The rows of `image_by_id_sql`, in any order: none with kind `p` means no such image.
    fn decode_image_rows(rows: &[DB::Row]) -> Result<Option<Image>, RepoError> {
        let get_err = |e: sqlx::Error| RepoError::Other(e.to_string());
        let mut image = None;
        let (mut properties, mut tags, mut locations) = (Vec::new(), Vec::new(), Vec::new());
        for row in rows {
            let kind: String = row.try_get(18).map_err(get_err)?;
            let name: Option<String> = row.try_get(19).map_err(get_err)?;
            match (kind.as_str(), name) {
                ("p", name) => {
                    if image.is_none() {
                        image = Some(Self::decode_columns(row)?);
                    }
                    // Without properties the join still gives the image's row, named NULL.
                    if let Some(name) = name {
                        let value: Option<String> = row.try_get(20).map_err(get_err)?;
                        properties.push((name, value.unwrap_or_default()));
                    }
                }
                ("t", tag) => tags.extend(tag),
                ("l", metadata) => {
                    let url: Option<String> = row.try_get(20).map_err(get_err)?;
                    let order: Option<i64> = row.try_get(21).map_err(get_err)?;
                    locations.push((order, LocationRow { url, metadata }));
                }
                (other, _) => {
                    return Err(RepoError::Other(format!(
                        "image row of unknown kind {other}"
                    )));
                }
            }
        }
        let Some(mut image) = image else {
            return Ok(None);
        };
        image.properties = properties.into_iter().collect();
        image.tags = tags;
        locations.sort_by_key(|(order, _)| *order);
        image.locations = image_locations(locations.into_iter().map(|(_, l)| l).collect());
        image.stores = location_stores(&image.locations);
        Ok(Some(tidy_tags(image)))
    }

    /// `UPDATE images SET <set>` (where `$1` is `now`) on an image still `saving` under `claim`.
    /// True if it was.
    pub(super) async fn update_claimed(
        &self,
        set: &str,
        id: &ImageId,
        claim: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let sql = format!(
            "UPDATE images SET {set} WHERE id = $2 AND status IN ('saving', 'uploading') AND deleted = $3 AND upload_claim = $4"
        );
        // Conditional on the claim: repeating it after a lost connection changes nothing more.
        let sql = &sql;
        let updated = retry_on_lost(&self.write, || async move {
            sqlx::query::<DB>(&DB::sql(sql))
                .bind(to_db_time(now))
                .bind(id.to_string())
                .bind(false)
                .bind(claim.to_owned())
                .execute(&self.write)
                .await
                .map_err(map_err)
                .map(|r| DB::rows_affected(&r))
        })
        .await?;
        Ok(updated == 1)
    }

    /// A write transaction; a connection found dead at `BEGIN` is replaced (nothing was done).
    pub(super) async fn begin_write(&self) -> Result<DbTransaction<DB>, RepoError> {
        retry_on_lost(&self.write, || async {
            self.write.begin().await.map_err(map_err)
        })
        .await
    }

    /// A write transaction that counts a project's images and writes by that count: locked
    /// per project (`Dialect::PROJECT_LOCK`) or serializable (`Dialect::COUNTING_BEGIN`).
    pub(super) async fn begin_counting(
        &self,
        project: &str,
    ) -> Result<DbTransaction<DB>, RepoError> {
        let mut tx = retry_on_lost(&self.write, || async {
            self.write
                .begin_with(DB::COUNTING_BEGIN)
                .await
                .map_err(map_err)
        })
        .await?;
        if let Some(lock) = DB::PROJECT_LOCK {
            sqlx::query::<DB>(&DB::sql(lock))
                .bind(project.to_owned())
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        Ok(tx)
    }

    pub(super) async fn image_exists(&self, id: &ImageId) -> Result<bool, RepoError> {
        let row = retry_on_lost(&self.write, || async move {
            sqlx::query::<DB>(&DB::sql(
                "SELECT 1 FROM images WHERE id = $1 AND deleted = $2",
            ))
            .bind(id.to_string())
            .bind(false)
            .fetch_optional(&self.write)
            .await
            .map_err(map_err)
        })
        .await?;
        Ok(row.is_some())
    }
}

#[async_trait]
impl<DB> ImageRepo for SqlRepo<DB>
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
    async fn health(&self) -> Result<(), RepoError> {
        let answered = tokio::time::timeout(
            HEALTH_TIMEOUT,
            sqlx::query::<DB>("SELECT 1").fetch_one(&self.read),
        )
        .await;
        match answered {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(map_err(e)),
            Err(_) => Err(RepoError::Unavailable(format!(
                "no answer within {} s (no free connection, or the database is stuck)",
                HEALTH_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn create(
        &self,
        image: &Image,
        count_limit: Option<(&str, i64)>,
    ) -> Result<Created, RepoError> {
        retry_on_conflict(|| self.create_once(image, count_limit)).await
    }

    async fn get(&self, id: &ImageId) -> Result<Option<Image>, RepoError> {
        let rows = retry_on_lost(&self.read, || async move {
            let query = sqlx::query::<DB>(&self.image_by_id)
                .bind(id.to_string())
                .bind(id.to_string());
            let query = if self.read_locations {
                query.bind(id.to_string())
            } else {
                query
            };
            query.fetch_all(&self.read).await.map_err(map_err)
        })
        .await?;
        Self::decode_image_rows(&rows)
    }

    async fn list(
        &self,
        query: &ListQuery,
        viewer: &Viewer,
        marker: Option<&Image>,
    ) -> Result<Vec<Image>, RepoError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let mut select = SqlBuilder::default();
        list_sql::build(&mut select, &self.list_select, query, viewer, marker);
        let select = &select;
        let rows = retry_on_lost(&self.read, || async move {
            select
                .query::<DB>()
                .fetch_all(&self.read)
                .await
                .map_err(map_err)
        })
        .await?;
        rows.iter().map(Self::decode_image).collect()
    }

    async fn is_member(&self, id: &ImageId, project: &str) -> Result<bool, RepoError> {
        let row = retry_on_lost(&self.read, || async move {
            sqlx::query::<DB>(&DB::sql(
                "SELECT 1 FROM image_members WHERE image_id = $1 AND member = $2 AND deleted = FALSE",
            ))
            .bind(id.to_string())
            .bind(project.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)
        })
        .await?;
        Ok(row.is_some())
    }

    async fn save(
        &self,
        before: &Image,
        after: &Image,
        limits: CountLimits,
    ) -> Result<SaveOutcome, RepoError> {
        retry_on_conflict(|| self.save_once(before, after, limits)).await
    }

    async fn add_tag(
        &self,
        id: &ImageId,
        tag: &str,
        tag_quota: Option<usize>,
        now: DateTime<Utc>,
    ) -> Result<SaveOutcome, RepoError> {
        retry_on_conflict(|| self.add_tag_once(id, tag, tag_quota, now)).await
    }

    async fn remove_tag(
        &self,
        id: &ImageId,
        tag: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        retry_on_conflict(|| self.remove_tag_once(id, tag, now)).await
    }

    async fn delete(
        &self,
        id: &ImageId,
        now: DateTime<Utc>,
        delayed: bool,
    ) -> Result<Option<Vec<StoredLocation>>, RepoError> {
        retry_on_conflict(|| self.delete_once(id, now, delayed)).await
    }

    async fn project_counts(&self, owner: &str) -> Result<ProjectCounts, RepoError> {
        let sql = DB::sql(&format!(
            "SELECT \
               (SELECT COUNT(*) FROM images WHERE owner = $1 AND deleted = $2 \
                  AND status NOT IN ('killed', 'pending_delete', 'deleted')), \
               (SELECT COUNT(*) FROM images WHERE owner = $3 AND deleted = $4 \
                  AND status IN ('saving', 'uploading', 'importing')), \
               (SELECT CAST(COALESCE(SUM(size), 0) AS {bigint}) FROM images WHERE owner = $5 \
                  AND deleted = $6 AND size > 0 AND status IN ('uploading', 'importing')), \
               (SELECT CAST(COALESCE(SUM(i.size), 0) AS {bigint}) FROM images i \
                  JOIN image_locations l ON l.image_id = i.id AND l.deleted = $7 \
                  AND l.status = 'active' WHERE i.owner = $8 AND i.deleted = $9)",
            bigint = DB::BIGINT
        ))
        .into_owned();
        let sql = &sql;
        let row = retry_on_lost(&self.read, || async move {
            sqlx::query::<DB>(sql)
                .bind(owner.to_owned())
                .bind(false)
                .bind(owner.to_owned())
                .bind(false)
                .bind(owner.to_owned())
                .bind(false)
                .bind(false)
                .bind(owner.to_owned())
                .bind(false)
                .fetch_one(&self.read)
                .await
                .map_err(map_err)
        })
        .await?;
        let get = |i: usize| -> Result<u64, RepoError> {
            let value: i64 = row
                .try_get(i)
                .map_err(|e| RepoError::Other(e.to_string()))?;
            Ok(u64::try_from(value).unwrap_or(0))
        };
        Ok(ProjectCounts {
            images: get(0)?,
            uploading: get(1)?,
            staged_bytes: get(2)?,
            stored_bytes: get(3)?,
        })
    }

    async fn members(&self, id: &ImageId, only: Option<&str>) -> Result<Vec<Member>, RepoError> {
        self.read_members(id, only).await
    }

    async fn add_member(
        &self,
        id: &ImageId,
        member: &str,
        quota: Option<usize>,
        now: DateTime<Utc>,
    ) -> Result<MemberAdded, RepoError> {
        retry_on_conflict(|| self.add_member_once(id, member, quota, now)).await
    }

    async fn set_member_status(
        &self,
        id: &ImageId,
        member: &str,
        status: MemberStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Member>, RepoError> {
        retry_on_conflict(|| self.set_member_status_once(id, member, status, now)).await
    }

    async fn remove_member(
        &self,
        id: &ImageId,
        member: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        retry_on_conflict(|| self.remove_member_once(id, member, now)).await
    }
}

/// One image with its properties, tags and (if `locations`) active locations in one
/// statement: the image's columns joined with its properties (kind `p`, one row per property,
/// or one row with NULLs when it has none), then its tags (`t`) and locations (`l`: metadata
/// and URI,
/// ordered by the last column, typed in the first branch: PostgreSQL types a union from its
/// first branches). No aggregation: MariaDB runs a subquery with an aggregate several times
/// slower than a join, and a join of all three would multiply their rows.
fn image_by_id_sql<DB: Dialect>(locations: bool) -> String {
    let nulls = ["NULL"; 18].join(", ");
    let mut sql = format!(
        "SELECT {columns}, 'p', p.name, p.value, CAST(NULL AS {bigint}) FROM images i \
         LEFT JOIN image_properties p ON p.image_id = i.id AND p.deleted = FALSE \
         WHERE i.id = $1 AND i.deleted = FALSE \
         UNION ALL SELECT {nulls}, 't', t.value, NULL, NULL FROM image_tags t \
         WHERE t.image_id = $2 AND t.deleted = FALSE",
        columns = DB::IMAGE_COLUMNS,
        bigint = DB::BIGINT,
    );
    if locations {
        sql.push_str(&format!(
            " UNION ALL SELECT {nulls}, 'l', l.meta_data, l.value, CAST(l.id AS {bigint}) \
             FROM image_locations l \
             WHERE l.image_id = $3 AND l.deleted = FALSE AND l.status = 'active'",
            bigint = DB::BIGINT,
        ));
    }
    DB::sql(&sql).into_owned()
}

/// Tags sorted, each once: Glance may have recorded a tag twice (its rows have no unique key).
fn tidy_tags(mut image: Image) -> Image {
    image.tags.sort();
    image.tags.dedup();
    image
}
