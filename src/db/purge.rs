//! `glint db purge` and `glint db purge-images-table`, as `glance-manage db purge` and
//! `purge_images_table`: rows soft-deleted before a cutoff are removed for good, at most
//! `max_rows` per table and run, oldest first.
//!
//! Unlike Glance, a row must be marked `deleted` as well as old: Glance leaves `deleted_at` set
//! on a property it revives, and would purge the live row. Image rows are removed by their own
//! command only (an image id must not be reused: OSSN-0075) and only once nothing refers to
//! them any more, so that a location still waiting for the scrubber keeps its image.

use chrono::NaiveDateTime;
use sqlx::{Executor, IntoArguments};

use super::dialect::Dialect;
use super::pool::DbPool;
use super::DbError;

/// Soft-deleted tables in the order their rows may go (children before parents). `task_info`
/// has no `deleted` of its own: its rows go with their task's.
const TABLES: &[&str] = &[
    "image_tags",
    "image_properties",
    "image_members",
    "image_locations",
    "tasks",
];

/// The rows one table gave up.
pub type Purged = Vec<(&'static str, u64)>;

/// `DELETE … WHERE key IN (<oldest matching rows>)`. The inner query is wrapped once more so
/// that MySQL, which can neither LIMIT an `IN` subquery nor read the table it deletes from,
/// takes it.
fn delete_oldest(table: &str, key: &str, condition: &str, max_rows: Option<u64>) -> String {
    let limit = max_rows.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    format!(
        "DELETE FROM {table} WHERE {key} IN (SELECT victim FROM (SELECT {key} AS victim FROM {table} \
         WHERE {condition} ORDER BY deleted_at{limit}) AS victims)"
    )
}

pub(super) async fn purge<DB>(
    pool: &DbPool<DB>,
    cutoff: NaiveDateTime,
    max_rows: Option<u64>,
    images_table: bool,
) -> Result<Purged, DbError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> NaiveDateTime: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let old = "deleted = TRUE AND deleted_at < $1";
    let mut purged = Purged::new();
    let run = |sql: String| async move {
        let result = sqlx::query::<DB>(&DB::sql(&sql))
            .bind(cutoff)
            .execute(pool)
            .await?;
        Ok::<u64, DbError>(DB::rows_affected(&result))
    };
    if images_table {
        let unreferenced = format!(
            "{old} AND NOT EXISTS (SELECT 1 FROM image_locations c WHERE c.image_id = images.id) \
             AND NOT EXISTS (SELECT 1 FROM image_properties c WHERE c.image_id = images.id) \
             AND NOT EXISTS (SELECT 1 FROM image_tags c WHERE c.image_id = images.id) \
             AND NOT EXISTS (SELECT 1 FROM image_members c WHERE c.image_id = images.id)"
        );
        purged.push((
            "images",
            run(delete_oldest("images", "id", &unreferenced, max_rows)).await?,
        ));
        return Ok(purged);
    }
    // A deleted task's info first, as Glance does (its foreign key points at the task).
    let task_info = format!(
        "DELETE FROM task_info WHERE task_id IN (SELECT victim FROM (SELECT t.id AS victim FROM tasks t \
         WHERE t.deleted = TRUE AND t.deleted_at < $1 ORDER BY t.deleted_at{}) AS victims)",
        max_rows.map(|n| format!(" LIMIT {n}")).unwrap_or_default()
    );
    purged.push(("task_info", run(task_info).await?));
    for table in TABLES {
        purged.push((table, run(delete_oldest(table, "id", old, max_rows)).await?));
    }
    // Deferrals whose location no longer exists (purged above, or by Glance).
    let orphans = "DELETE FROM glint_scrub_deferrals WHERE NOT EXISTS \
        (SELECT 1 FROM image_locations l WHERE l.id = glint_scrub_deferrals.location_id AND l.deleted = FALSE)"
        .to_owned();
    let result = sqlx::query::<DB>(&DB::sql(&orphans)).execute(pool).await?;
    purged.push(("glint_scrub_deferrals", DB::rows_affected(&result)));
    Ok(purged)
}
