//! The few places where PostgreSQL and SQLite SQL differ, and the migrations of each.

use sqlx::migrate::Migrator;
use sqlx::{Postgres, Sqlite};

/// A database Glint can store metadata in.
pub trait Dialect: sqlx::Database {
    /// For logs and `glint db version`.
    const LABEL: &'static str;

    /// The embedded migrations for this database.
    fn migrator() -> &'static Migrator;

    /// The `images` columns every read selects (table alias `i`), in the order
    /// `SqlRepo::decode_image` reads them, ending with the image's properties as a JSON
    /// object and its tags as a JSON array, so that one query returns whole images.
    const IMAGE_SELECT: &'static str;

    /// A query returning one row if the migrations bookkeeping table exists.
    const MIGRATIONS_TABLE_EXISTS: &'static str;

    /// Rows changed by an INSERT, UPDATE or DELETE.
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The core columns, shared by both dialects.
macro_rules! core_columns {
    () => {
        "i.id, i.name, i.status, i.visibility, i.protected, i.os_hidden, i.checksum, \
         i.os_hash_algo, i.os_hash_value, i.owner, i.size, i.virtual_size, i.container_format, \
         i.disk_format, i.min_disk, i.min_ram, i.created_at, i.updated_at"
    };
}

impl Dialect for Postgres {
    const LABEL: &'static str = "postgresql";
    const IMAGE_SELECT: &'static str = concat!(
        core_columns!(),
        ", (SELECT json_object_agg(p.name, p.value)::text FROM image_properties p WHERE p.image_id = i.id)",
        ", (SELECT json_agg(t.value)::text FROM image_tags t WHERE t.image_id = i.id)",
        ", (SELECT json_agg(l.meta_data ORDER BY l.id)::text FROM image_locations l \
           WHERE l.image_id = i.id AND l.deleted = false AND l.status = 'active')"
    );
    const MIGRATIONS_TABLE_EXISTS: &'static str =
        "SELECT 1 FROM pg_catalog.pg_tables WHERE tablename = '_sqlx_migrations' AND schemaname = current_schema()";

    fn migrator() -> &'static Migrator {
        &POSTGRES_MIGRATIONS
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

impl Dialect for Sqlite {
    const LABEL: &'static str = "sqlite";
    const IMAGE_SELECT: &'static str = concat!(
        core_columns!(),
        ", (SELECT json_group_object(p.name, p.value) FROM image_properties p WHERE p.image_id = i.id)",
        ", (SELECT json_group_array(t.value) FROM image_tags t WHERE t.image_id = i.id)",
        ", (SELECT json_group_array(meta_data) FROM (SELECT l.meta_data FROM image_locations l \
           WHERE l.image_id = i.id AND l.deleted = 0 AND l.status = 'active' ORDER BY l.id))"
    );
    const MIGRATIONS_TABLE_EXISTS: &'static str =
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'";

    fn migrator() -> &'static Migrator {
        &SQLITE_MIGRATIONS
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}
