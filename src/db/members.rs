//! `image_members`: who an image is shared with. Writes lock the image's row first (as every
//! image write does), so a duplicate check or a quota count and the insert that follows see
//! every concurrent membership.

use chrono::{NaiveDateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::dialect::Dialect;
use super::errors::{map_err, retry_on_lost};
use super::repo::SqlRepo;
use super::rows::to_db_time;
use crate::domain::image::ImageId;
use crate::domain::repository::{Member, MemberAdded, MemberStatus};
use crate::domain::RepoError;

/// Live memberships of `$1`, and only member `$2` if `one`.
fn members_sql<DB: Dialect>(one: bool) -> String {
    let (member, deleted) = if one {
        ("AND member = $2 ", "$3")
    } else {
        ("", "$2")
    };
    DB::sql(&format!(
        "SELECT image_id, member, status, created_at, updated_at FROM image_members \
         WHERE image_id = $1 {member}AND deleted = {deleted} ORDER BY id"
    ))
    .into_owned()
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
    fn decode_member(row: &DB::Row) -> Result<Member, RepoError> {
        let get_err = |e: sqlx::Error| RepoError::Other(e.to_string());
        let status: String = row.try_get(2).map_err(get_err)?;
        let created: NaiveDateTime = row.try_get(3).map_err(get_err)?;
        let updated: NaiveDateTime = row.try_get(4).map_err(get_err)?;
        Ok(Member {
            image_id: row.try_get(0).map_err(get_err)?,
            member_id: row.try_get(1).map_err(get_err)?,
            // Glance writes only these three; anything else reads as pending.
            status: MemberStatus::parse(&status).unwrap_or(MemberStatus::Pending),
            created_at: created.and_utc(),
            updated_at: updated.and_utc(),
        })
    }

    /// The image's live memberships (or `only`'s), read within a write transaction.
    async fn members_of(
        conn: &mut DB::Connection,
        id: &ImageId,
        only: Option<&str>,
    ) -> Result<Vec<Member>, RepoError> {
        let sql = members_sql::<DB>(only.is_some());
        let mut query = sqlx::query::<DB>(&sql).bind(id.to_string());
        if let Some(member) = only {
            query = query.bind(member.to_owned());
        }
        let rows = query.bind(false).fetch_all(conn).await.map_err(map_err)?;
        rows.iter().map(Self::decode_member).collect()
    }

    /// The same, on the read pool.
    pub(super) async fn read_members(
        &self,
        id: &ImageId,
        only: Option<&str>,
    ) -> Result<Vec<Member>, RepoError> {
        let sql = members_sql::<DB>(only.is_some());
        let rows = retry_on_lost(&self.read, || {
            let mut query = sqlx::query::<DB>(&sql).bind(id.to_string());
            if let Some(member) = only {
                query = query.bind(member.to_owned());
            }
            async move {
                query
                    .bind(false)
                    .fetch_all(&self.read)
                    .await
                    .map_err(map_err)
            }
        })
        .await?;
        rows.iter().map(Self::decode_member).collect()
    }

    /// Locks the live image's row; false if there is no such image.
    async fn lock_image(conn: &mut DB::Connection, id: &ImageId) -> Result<bool, RepoError> {
        let row = sqlx::query::<DB>(&DB::sql(&format!(
            "SELECT 1 FROM images WHERE id = $1 AND deleted = $2{}",
            DB::FOR_UPDATE
        )))
        .bind(id.to_string())
        .bind(false)
        .fetch_optional(conn)
        .await
        .map_err(map_err)?;
        Ok(row.is_some())
    }

    pub(super) async fn add_member_once(
        &self,
        id: &ImageId,
        member: &str,
        quota: Option<usize>,
        now: chrono::DateTime<Utc>,
    ) -> Result<MemberAdded, RepoError> {
        let at = to_db_time(now);
        let mut tx = self.begin_write().await?;
        if !Self::lock_image(&mut *tx, id).await? {
            tx.abandon().await;
            return Ok(MemberAdded::Gone);
        }
        let existing = Self::members_of(&mut *tx, id, None).await?;
        if existing.iter().any(|m| m.member_id == member) {
            tx.abandon().await;
            return Ok(MemberAdded::Duplicate);
        }
        if let Some(quota) = quota.filter(|q| existing.len() >= *q) {
            tx.abandon().await;
            return Ok(MemberAdded::OverQuota { count: quota });
        }
        sqlx::query::<DB>(&DB::sql(
            "INSERT INTO image_members (image_id, member, can_share, status, created_at, \
             updated_at, deleted) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        ))
        .bind(id.to_string())
        .bind(member.to_owned())
        .bind(false)
        .bind(MemberStatus::Pending.as_str().to_owned())
        .bind(at)
        .bind(at)
        .bind(false)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(MemberAdded::Added(Member {
            image_id: id.to_string(),
            member_id: member.to_owned(),
            status: MemberStatus::Pending,
            created_at: at.and_utc(),
            updated_at: at.and_utc(),
        }))
    }

    pub(super) async fn set_member_status_once(
        &self,
        id: &ImageId,
        member: &str,
        status: MemberStatus,
        now: chrono::DateTime<Utc>,
    ) -> Result<Option<Member>, RepoError> {
        let at = to_db_time(now);
        let mut tx = self.begin_write().await?;
        if !Self::lock_image(&mut *tx, id).await? {
            tx.abandon().await;
            return Ok(None);
        }
        let changed = sqlx::query::<DB>(&DB::sql(
            "UPDATE image_members SET status = $1, updated_at = $2 \
             WHERE image_id = $3 AND member = $4 AND deleted = $5",
        ))
        .bind(status.as_str().to_owned())
        .bind(at)
        .bind(id.to_string())
        .bind(member.to_owned())
        .bind(false)
        .execute(&mut *tx)
        .await
        .map_err(map_err)
        .map(|r| DB::rows_affected(&r))?;
        if changed == 0 {
            tx.abandon().await;
            return Ok(None);
        }
        let found = Self::members_of(&mut *tx, id, Some(member)).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(found.into_iter().next())
    }

    pub(super) async fn remove_member_once(
        &self,
        id: &ImageId,
        member: &str,
        now: chrono::DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let at = to_db_time(now);
        let mut tx = self.begin_write().await?;
        if !Self::lock_image(&mut *tx, id).await? {
            tx.abandon().await;
            return Ok(false);
        }
        let removed = sqlx::query::<DB>(&DB::sql(
            "UPDATE image_members SET deleted = $1, deleted_at = $2, updated_at = $3 \
             WHERE image_id = $4 AND member = $5 AND deleted = $6",
        ))
        .bind(true)
        .bind(at)
        .bind(at)
        .bind(id.to_string())
        .bind(member.to_owned())
        .bind(false)
        .execute(&mut *tx)
        .await
        .map_err(map_err)
        .map(|r| DB::rows_affected(&r))?;
        tx.commit().await.map_err(map_err)?;
        Ok(removed > 0)
    }
}
