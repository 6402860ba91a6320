//! The few places where PostgreSQL and SQLite SQL differ, and the migrations of each.

use sqlx::migrate::Migrator;
use sqlx::{Postgres, Sqlite};

/// A database Glint can store metadata in.
pub trait Dialect: sqlx::Database {
    /// For logs and `glint db version`.
    const LABEL: &'static str;

    /// The embedded migrations for this database.
    fn migrator() -> &'static Migrator;

    /// A sub-select yielding the strings of a JSON array bound as parameter `param`.
    fn json_strings(param: &str) -> String;

    /// A query returning one row if the migrations bookkeeping table exists.
    const MIGRATIONS_TABLE_EXISTS: &'static str;

    /// Rows changed by an INSERT, UPDATE or DELETE.
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

impl Dialect for Postgres {
    const LABEL: &'static str = "postgresql";
    const MIGRATIONS_TABLE_EXISTS: &'static str =
        "SELECT 1 FROM pg_catalog.pg_tables WHERE tablename = '_sqlx_migrations' AND schemaname = current_schema()";

    fn migrator() -> &'static Migrator {
        &POSTGRES_MIGRATIONS
    }

    fn json_strings(param: &str) -> String {
        format!("SELECT json_array_elements_text({param}::json)")
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

impl Dialect for Sqlite {
    const LABEL: &'static str = "sqlite";
    const MIGRATIONS_TABLE_EXISTS: &'static str =
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'";

    fn migrator() -> &'static Migrator {
        &SQLITE_MIGRATIONS
    }

    fn json_strings(param: &str) -> String {
        format!("SELECT value FROM json_each({param})")
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}
