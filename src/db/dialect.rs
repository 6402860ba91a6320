//! The few places where the SQL of PostgreSQL, MySQL/MariaDB and SQLite differs, and the
//! migrations of each. Statements are written once with numbered placeholders (`$1`, `$2`, …
//! each used once, in order); `Dialect::sql` turns them into MySQL's `?`.

use std::borrow::Cow;

use sqlx::migrate::Migrator;
use sqlx::{MySql, Postgres, Sqlite};

/// A database Glint can store metadata in.
pub trait Dialect: sqlx::Database {
    /// For logs and `glint db version`.
    const LABEL: &'static str;

    /// The embedded migrations for this database.
    fn migrator() -> &'static Migrator;

    /// The `images` columns every list selects (table alias `i`), in the order
    /// `SqlRepo::decode_image` reads them, ending with the image's properties as a JSON
    /// object and its tags as a JSON array, so that one query returns whole images.
    const IMAGE_SELECT: &'static str;

    /// The column after `IMAGE_SELECT` when locations are read: the image's active locations
    /// as a JSON array of `{"url", "metadata"}` (the metadata as its stored text), in the
    /// order they were added.
    const LOCATIONS_SELECT: &'static str;

    /// The `images` columns alone, as the first 18 of `IMAGE_SELECT`.
    const IMAGE_COLUMNS: &'static str;

    /// A query returning one row if the table named by `$1` exists (in the schema in use).
    const TABLE_EXISTS: &'static str;

    /// Rows changed by an INSERT, UPDATE or DELETE.
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// The end of `INSERT INTO image_properties (image_id, name, value, created_at,
    /// updated_at, deleted) VALUES …` that revives or updates a row present already.
    const UPSERT_PROPERTY: &'static str = " ON CONFLICT (image_id, name) DO UPDATE SET \
        value = excluded.value, updated_at = excluded.updated_at, deleted = excluded.deleted, \
        deleted_at = NULL";

    /// The type a `CAST` to a 64-bit integer names.
    const BIGINT: &'static str = "BIGINT";
    /// Serializes transactions that count a project's images (`$1`, the project) until they
    /// end; `None` where the transaction alone does (SQLite's single writer) or
    /// `COUNTING_BEGIN` does.
    const PROJECT_LOCK: Option<&'static str> = None;
    /// Opens a transaction that counts and then writes by the count, where the usual
    /// isolation would let two of them miss each other's rows.
    const COUNTING_BEGIN: Option<&'static str> = None;
    /// Appended to a SELECT that must lock the rows it reads until the transaction ends
    /// (SQLite has one writer: the transaction is the lock).
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    /// Appended to a SELECT that claims one row of a queue: rows other transactions hold are
    /// passed over rather than waited for.
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

    /// `sql` as this database's driver takes it.
    fn sql(sql: &str) -> Cow<'_, str> {
        Cow::Borrowed(sql)
    }
}

/// `$1 … $N` (each once, in order) as `?`. Text in quotes is left alone, so a literal such
/// as `'$5'` stays what it is.
fn positional(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut quoted = false;
    let mut expected = 1u32;
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c != '$' || quoted || !chars.peek().is_some_and(char::is_ascii_digit) {
            out.push(c);
            continue;
        }
        let mut n = 0u32;
        while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
            n = n * 10 + d;
            chars.next();
        }
        // A placeholder out of order would bind the wrong value on MySQL: a bug in Glint's
        // own SQL, caught by the MySQL test run.
        debug_assert_eq!(n, expected, "placeholders out of order in: {sql}");
        expected += 1;
        out.push('?');
    }
    Cow::Owned(out)
}

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/mysql");

/// The core columns, shared by every dialect but for `visibility`, an enum type on
/// PostgreSQL (Glance's `image_visibility`) that sqlx reads only as text. `updated_at` is
/// nullable in Glance's schema: a row without one was last updated when it was created.
macro_rules! core_columns {
    ($visibility:literal) => {
        concat!(
            "i.id, i.name, i.status, ",
            $visibility,
            ", i.protected, i.os_hidden, i.checksum, \
             i.os_hash_algo, i.os_hash_value, i.owner, i.size, i.virtual_size, i.container_format, \
             i.disk_format, i.min_disk, i.min_ram, i.created_at, COALESCE(i.updated_at, i.created_at)"
        )
    };
}

impl Dialect for Postgres {
    const LABEL: &'static str = "postgresql";
    const PROJECT_LOCK: Option<&'static str> =
        Some("SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtext('glint-project:' || $1))) l");
    const IMAGE_COLUMNS: &'static str = core_columns!("i.visibility::text");
    const IMAGE_SELECT: &'static str = concat!(
        core_columns!("i.visibility::text"),
        ", (SELECT json_object_agg(p.name, COALESCE(p.value, ''))::text FROM image_properties p \
           WHERE p.image_id = i.id AND p.deleted = false)",
        ", (SELECT json_agg(t.value)::text FROM image_tags t WHERE t.image_id = i.id AND t.deleted = false)");
    const LOCATIONS_SELECT: &'static str =
        "(SELECT json_agg(json_build_object('url', l.value, 'metadata', l.meta_data) ORDER BY l.id)::text \
         FROM image_locations l \
         WHERE l.image_id = i.id AND l.deleted = false AND l.status = 'active')";
    const TABLE_EXISTS: &'static str =
        "SELECT 1 FROM pg_catalog.pg_tables WHERE tablename = $1 AND schemaname = current_schema()";

    fn migrator() -> &'static Migrator {
        &POSTGRES_MIGRATIONS
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

impl Dialect for Sqlite {
    const LABEL: &'static str = "sqlite";
    const FOR_UPDATE: &'static str = "";
    const SKIP_LOCKED: &'static str = "";
    const IMAGE_COLUMNS: &'static str = core_columns!("i.visibility");
    const IMAGE_SELECT: &'static str = concat!(
        core_columns!("i.visibility"),
        ", (SELECT json_group_object(p.name, COALESCE(p.value, '')) FROM image_properties p \
           WHERE p.image_id = i.id AND p.deleted = 0)",
        ", (SELECT json_group_array(t.value) FROM image_tags t WHERE t.image_id = i.id AND t.deleted = 0)");
    const LOCATIONS_SELECT: &'static str =
        "(SELECT json_group_array(json_object('url', value, 'metadata', meta_data)) \
         FROM (SELECT l.value, l.meta_data FROM image_locations l \
         WHERE l.image_id = i.id AND l.deleted = 0 AND l.status = 'active' ORDER BY l.id))";
    const TABLE_EXISTS: &'static str =
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1";

    fn migrator() -> &'static Migrator {
        &SQLITE_MIGRATIONS
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

impl Dialect for MySql {
    const LABEL: &'static str = "mysql";
    /// Connections run READ COMMITTED, which takes no gap locks: a counting transaction is
    /// SERIALIZABLE instead, its count locking the project's index range, so a concurrent
    /// insert for the project waits, or deadlocks and is retried.
    const COUNTING_BEGIN: Option<&'static str> =
        Some("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; BEGIN");
    const IMAGE_COLUMNS: &'static str = core_columns!("i.visibility");
    // MariaDB's JSON functions return text (MySQL's a JSON value): the casts make both text.
    const IMAGE_SELECT: &'static str = concat!(
        core_columns!("i.visibility"),
        ", (SELECT CAST(JSON_OBJECTAGG(p.name, COALESCE(p.value, '')) AS CHAR) FROM image_properties p \
           WHERE p.image_id = i.id AND p.deleted = 0)",
        ", (SELECT CAST(JSON_ARRAYAGG(t.value) AS CHAR) FROM image_tags t WHERE t.image_id = i.id AND t.deleted = 0)");
    const LOCATIONS_SELECT: &'static str =
        "(SELECT CAST(JSON_ARRAYAGG(JSON_OBJECT('url', l.value, 'metadata', l.meta_data) ORDER BY l.id) AS CHAR) \
         FROM image_locations l \
         WHERE l.image_id = i.id AND l.deleted = 0 AND l.status = 'active')";
    const TABLE_EXISTS: &'static str = "SELECT 1 FROM information_schema.tables \
        WHERE table_schema = DATABASE() AND table_name = $1";
    const UPSERT_PROPERTY: &'static str = " ON DUPLICATE KEY UPDATE \
        value = VALUES(value), updated_at = VALUES(updated_at), deleted = VALUES(deleted), \
        deleted_at = NULL";
    const BIGINT: &'static str = "SIGNED";

    fn migrator() -> &'static Migrator {
        &MYSQL_MIGRATIONS
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }

    /// Also drops `NULLS FIRST` after `ASC` and `NULLS LAST` after `DESC`, which MySQL does
    /// not parse: it sorts NULL lowest, which is what they ask for.
    fn sql(sql: &str) -> Cow<'_, str> {
        match positional(sql) {
            Cow::Owned(text) if text.contains(" NULLS ") => Cow::Owned(
                text.replace(" ASC NULLS FIRST", " ASC")
                    .replace(" DESC NULLS LAST", " DESC"),
            ),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::positional;

    #[test]
    fn numbered_placeholders_become_positional() {
        assert_eq!(
            positional("UPDATE t SET a = $1, b = '$2' WHERE c = $2 AND d IN ($3, $4)"),
            "UPDATE t SET a = ?, b = '$2' WHERE c = ? AND d IN (?, ?)"
        );
        assert_eq!(positional("SELECT 1"), "SELECT 1");
    }
}
