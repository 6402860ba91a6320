//! Where the schema stands, and how `glint db sync` makes it current: Glint's migrations on a
//! database Glint created (or an empty one), and adoption of a database Glance created.
//!
//! Glint's tables are Glance's. Two migrations create or convert Glance's own tables
//! (`GLANCE_SCHEMA_MIGRATIONS`); the others add what is Glint's alone (nullable columns, glint_*
//! tables). A database Glance created has an `alembic_version` and no `_sqlx_migrations`: Glint
//! records those two as applied without running them, then applies only its additions, so
//! that Glance's rows are never rewritten and Glance can serve the database again.

use sqlx::migrate::Migrate;
use sqlx::Executor;

use super::dialect::Dialect;
use super::pool::DbPool;
use super::DbError;

/// Alembic revisions of Glance's schema that Glint serves in place: the head of Glance 2024.1
/// to 33 (`glance-manage db_sync` stores the contract branch's head alone).
pub const GLANCE_REVISIONS: &[&str] = &["2024_1_contract01"];

/// The migrations that create Glance's tables (an empty database) or turn the tables of
/// earlier Glint versions into them; on a database Glance created they are recorded, not run.
const GLANCE_SCHEMA_MIGRATIONS: &[i64] = &[20261125000001, 20261203000005];

/// Where the schema stands compared with the migrations this binary carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchemaStatus {
    /// The newest applied migration, `None` for an empty database or one only Glance used.
    pub applied: Option<i64>,
    /// The newest migration this binary knows.
    pub latest: i64,
    /// Migrations this binary knows that are not applied.
    pub pending: Vec<i64>,
    /// Applied migrations this binary does not know (a newer Glint ran here).
    pub unknown: Vec<i64>,
    /// Glance's alembic revision, when the database has Glance's `alembic_version` table.
    pub glance_revision: Option<String>,
}

impl SchemaStatus {
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty()
    }

    /// Made by Glance and never synced by Glint: `glint db sync` adopts it.
    pub fn made_by_glance(&self) -> bool {
        self.glance_revision.is_some() && self.applied.is_none()
    }

    /// What `glint db sync` would run here: every pending migration, except, on a database
    /// Glance made, the ones that create Glance's tables.
    pub fn to_run(&self) -> Vec<i64> {
        let glance_made = self.made_by_glance();
        self.pending
            .iter()
            .copied()
            .filter(|v| !(glance_made && GLANCE_SCHEMA_MIGRATIONS.contains(v)))
            .collect()
    }
}

async fn table_exists<DB>(pool: &DbPool<DB>, table: &str) -> Result<bool, DbError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    Ok(sqlx::query::<DB>(&DB::sql(DB::TABLE_EXISTS))
        .bind(table.to_owned())
        .fetch_optional(pool)
        .await?
        .is_some())
}

pub(super) async fn status<DB>(pool: &DbPool<DB>) -> Result<SchemaStatus, DbError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let known: Vec<i64> = DB::migrator().iter().map(|m| m.version).collect();
    let latest = known.iter().copied().max().unwrap_or(0);
    let applied: Vec<i64> = if table_exists(pool, "_sqlx_migrations").await? {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await?
    } else {
        Vec::new()
    };
    let glance_revision = if table_exists(pool, "alembic_version").await? {
        sqlx::query_scalar::<DB, String>("SELECT version_num FROM alembic_version")
            .fetch_optional(pool)
            .await?
    } else {
        None
    };
    Ok(SchemaStatus {
        applied: applied.iter().copied().max(),
        latest,
        pending: known
            .iter()
            .copied()
            .filter(|v| !applied.contains(v))
            .collect(),
        unknown: applied
            .iter()
            .copied()
            .filter(|v| !known.contains(v))
            .collect(),
        glance_revision,
    })
}

/// `glint db sync`: adopts a database Glance made, then applies every pending migration.
pub(super) async fn sync<DB>(pool: &DbPool<DB>) -> Result<(), DbError>
where
    DB: Dialect,
    DB::Connection: Migrate,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'r> i64: sqlx::Encode<'r, DB> + sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let found = status(pool).await?;
    if found.made_by_glance() {
        let revision = found.glance_revision.clone().unwrap_or_default();
        if !GLANCE_REVISIONS.contains(&revision.as_str()) {
            return Err(DbError::GlanceRevision { found: revision });
        }
        adopt(pool).await?;
        tracing::info!(revision = %revision, "adopted a database made by Glance; Glance's tables are left as they are");
    }
    let mut connection = pool.acquire().await?;
    DB::migrator().run_direct(&mut *connection).await?;
    connection.release();
    Ok(())
}

/// Records the migrations that create Glance's tables as applied, in one transaction.
async fn adopt<DB>(pool: &DbPool<DB>) -> Result<(), DbError>
where
    DB: Dialect,
    DB::Connection: Migrate,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'r> i64: sqlx::Encode<'r, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut connection = pool.acquire().await?;
    connection.ensure_migrations_table().await?;
    let mut tx = sqlx::Connection::begin(&mut *connection).await?;
    for migration in DB::migrator()
        .iter()
        .filter(|m| GLANCE_SCHEMA_MIGRATIONS.contains(&m.version))
    {
        sqlx::query::<DB>(&DB::sql(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, 0)",
        ))
        .bind(migration.version)
        .bind(migration.description.to_string())
        .bind(migration.checksum.to_vec())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    connection.release();
    Ok(())
}
