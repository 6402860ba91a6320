//! The schema gate: `serve` and `scrub` run only on the schema this binary's migrations
//! describe — never on an older one (columns missing) nor a newer one (written by a later
//! Glint). The one exception: `serve` creates a brand-new embedded SQLite database, so that a
//! bare `glint serve` works with no setup.

use crate::config::Config;
use crate::db::{Database, SchemaStatus};

/// What a command does about the schema it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Current,
    /// An empty SQLite database: nothing to upgrade, so `serve` may create the schema.
    CreateEmbedded,
    /// Upgrading is the operator's decision (`glint db sync`), or this Glint is too old.
    Refuse,
}

fn verdict(status: &SchemaStatus, backend: &str) -> Verdict {
    if status.is_current() {
        Verdict::Current
    } else if status.applied.is_none() && status.glance_revision.is_none() && backend == "sqlite" {
        Verdict::CreateEmbedded
    } else {
        Verdict::Refuse
    }
}

/// The gate at `glint serve` start-up.
pub(super) async fn ready_to_serve(database: &Database, config: &Config) -> Result<(), String> {
    let status = database
        .schema_status()
        .await
        .map_err(|e| format!("cannot read the database schema: {e}"))?;
    match verdict(&status, database.backend()) {
        Verdict::Current => Ok(()),
        Verdict::CreateEmbedded => {
            database.sync().await.map_err(|e| e.to_string())?;
            tracing::info!(database = %config.database.url.redacted(), "created a new SQLite database");
            Ok(())
        }
        Verdict::Refuse => Err(format!(
            "the database schema is not the one this glint expects ({}). Run `glint db sync{}` first.",
            describe(&status),
            config_hint()
        )),
    }
}

/// The gate of `glint scrub`, which never creates a schema.
pub(super) async fn ready_to_scrub(database: &Database) -> Result<(), String> {
    let status = database.schema_status().await.map_err(|e| e.to_string())?;
    if !status.is_current() {
        return Err(format!(
            "the database schema is not current ({}); run `glint db sync`",
            describe(&status)
        ));
    }
    Ok(())
}

/// The state of the schema in the operator's terms, with what to do about it.
pub(super) fn describe(status: &SchemaStatus) -> String {
    if !status.unknown.is_empty() {
        format!(
            "written by a newer glint (unknown migrations {:?}); upgrade glint",
            status.unknown
        )
    } else if status.pending.is_empty() {
        "up to date".to_owned()
    } else if status.made_by_glance() {
        format!(
            "made by Glance (alembic revision {}); run `glint db sync` to add Glint's {} \
             migration(s) beside Glance's tables, which stay as they are",
            status.glance_revision.as_deref().unwrap_or_default(),
            status.to_run().len()
        )
    } else {
        format!(
            "{} migration(s) pending; run `glint db sync`",
            status.pending.len()
        )
    }
}

/// `db sync` must read the same file as `serve`: say so unless `GLINT_CONFIG` names it.
fn config_hint() -> &'static str {
    if std::env::var_os("GLINT_CONFIG").is_some() {
        ""
    } else {
        " --config <same file>"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ini::Ini;

    fn status(applied: Option<i64>, pending: &[i64], unknown: &[i64]) -> SchemaStatus {
        SchemaStatus {
            applied,
            latest: 3,
            pending: pending.to_vec(),
            unknown: unknown.to_vec(),
            glance_revision: None,
        }
    }

    #[test]
    fn only_an_empty_sqlite_database_is_created_by_serve() {
        let current = status(Some(3), &[], &[]);
        let empty = status(None, &[1, 2, 3], &[]);
        let behind = status(Some(2), &[3], &[]);
        let ahead = status(Some(4), &[], &[4]);
        assert_eq!(verdict(&current, "sqlite"), Verdict::Current);
        assert_eq!(verdict(&current, "postgres"), Verdict::Current);
        assert_eq!(verdict(&empty, "sqlite"), Verdict::CreateEmbedded);
        assert_eq!(verdict(&empty, "postgres"), Verdict::Refuse);
        assert_eq!(verdict(&behind, "sqlite"), Verdict::Refuse);
        assert_eq!(verdict(&ahead, "sqlite"), Verdict::Refuse);
        // A SQLite file Glance made is adopted by `glint db sync` only, never by `serve`.
        let glance = SchemaStatus {
            glance_revision: Some("2024_1_contract01".into()),
            ..empty
        };
        assert_eq!(verdict(&glance, "sqlite"), Verdict::Refuse);
        assert!(
            describe(&glance).contains("made by Glance"),
            "{}",
            describe(&glance)
        );
    }

    #[test]
    fn the_schema_state_says_what_to_do() {
        assert_eq!(describe(&status(Some(3), &[], &[])), "up to date");
        assert_eq!(
            describe(&status(Some(1), &[2, 3], &[])),
            "2 migration(s) pending; run `glint db sync`"
        );
        assert_eq!(
            describe(&status(Some(9), &[], &[9])),
            "written by a newer glint (unknown migrations [9]); upgrade glint"
        );
    }

    async fn sqlite_in(dir: &std::path::Path) -> (Config, Database) {
        let text = format!(
            "[database]\nconnection = sqlite:///{}\n",
            dir.join("glint.db").display()
        );
        let ini = Ini::parse(&text).expect("config parses");
        let config = Config::from_ini(&ini, dir).expect("config loads");
        let database = Database::connect(&config.database)
            .await
            .expect("database opens");
        (config, database)
    }

    #[tokio::test]
    async fn serve_creates_a_new_sqlite_database_and_scrub_does_not() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (config, database) = sqlite_in(dir.path()).await;
        let refused = ready_to_scrub(&database).await.expect_err("empty schema");
        assert!(
            refused.contains("pending; run `glint db sync`"),
            "{refused}"
        );
        ready_to_serve(&database, &config).await.expect("created");
        assert!(database.schema_status().await.expect("status").is_current());
        ready_to_scrub(&database).await.expect("current now");
        database.close().await;
    }

    #[tokio::test]
    async fn a_schema_from_a_newer_glint_is_refused() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (config, database) = sqlite_in(dir.path()).await;
        database.sync().await.expect("migrations apply");
        let Database::Sqlite { write, .. } = &database else {
            unreachable!("a SQLite URL opens SQLite")
        };
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990101000000, 'from the future', 1, x'00', 0)",
        )
        .execute(write)
        .await
        .expect("inserts");
        let refused = ready_to_serve(&database, &config)
            .await
            .expect_err("newer schema");
        assert!(refused.contains("written by a newer glint"), "{refused}");
        assert!(refused.contains("glint db sync"), "{refused}");
        database.close().await;
    }
}
