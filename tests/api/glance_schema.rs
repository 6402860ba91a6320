//! Glance's own schema: what Glint writes is what Glance would have written (soft-deleted
//! properties, tags and memberships; the alembic head), and a database an earlier Glint made
//! is turned into Glance's with every image kept.

use futures_util::future::BoxFuture;
use serde_json::json;

use crate::all_databases;
use crate::helpers::{Backend, TestApp, PATCH_V21};
use crate::image_data::image;

/// `SELECT CAST(COUNT(*) AS TEXT) FROM <rest>`.
async fn count(app: &TestApp, rest: &str) -> String {
    app.scalar(&format!("SELECT CAST(COUNT(*) AS TEXT) FROM {rest}"))
        .await
}

all_databases!(fn a_new_database_is_at_glance_s_alembic_head(app) {
    assert_eq!(app.scalar("SELECT version_num FROM alembic_version").await, "2024_1_contract01");
    for table in ["tasks", "task_info", "metadef_namespaces", "metadef_objects", "metadef_properties",
                  "metadef_tags", "metadef_resource_types", "metadef_namespace_resource_types",
                  "node_reference", "cached_images"] {
        assert_eq!(count(&app, table).await, "0", "{table}");
    }
    let status = app.database.schema_status().await.expect("status");
    assert!(status.is_current(), "{status:?}");
    assert_eq!(status.glance_revision.as_deref(), Some("2024_1_contract01"));
    assert!(!status.made_by_glance());
});

all_databases!(fn removed_properties_and_tags_stay_as_deleted_rows(app) {
    let id = app.create_image(json!({"name": "soft", "tags": ["a", "b"], "os_distro": "debian", "x": "1"})).await["id"]
        .as_str().unwrap_or_default().to_owned();
    let path = format!("/v2/images/{id}");
    app.patch(&path, PATCH_V21, &json!([{"op": "remove", "path": "/os_distro"}])).await.assert_status(200);
    app.delete(&format!("{path}/tags/a")).await.assert_status(204);
    let rows = |table: &str, deleted: &str| format!("{table} WHERE image_id = '{id}' AND deleted = {deleted}");
    assert_eq!(count(&app, &rows("image_properties", "TRUE")).await, "1");
    assert_eq!(count(&app, &rows("image_properties", "FALSE")).await, "1");
    assert_eq!(count(&app, &rows("image_tags", "TRUE")).await, "1");
    assert_eq!(count(&app, &rows("image_tags", "FALSE")).await, "1");
    assert_eq!(count(&app, &format!("image_properties WHERE image_id = '{id}' AND deleted = TRUE AND deleted_at IS NOT NULL")).await, "1");
    let shown = image(&app, &id).await;
    assert!(shown.get("os_distro").is_none(), "{shown}");
    assert_eq!(shown["tags"], json!(["b"]));
    // Filters see live rows only.
    assert_eq!(app.get("/v2/images?os_distro=debian").await.json()["images"], json!([]));
    assert_eq!(app.get("/v2/images?tag=a").await.json()["images"], json!([]));

    // A property comes back in its old row (Glance's key is unique per image and name); a tag
    // comes back as a new row beside the deleted one.
    app.patch(&path, PATCH_V21, &json!([{"op": "add", "path": "/os_distro", "value": "ubuntu"}])).await.assert_status(200);
    app.put(&format!("{path}/tags/a")).await.assert_status(204);
    assert_eq!(count(&app, &format!("image_properties WHERE image_id = '{id}'")).await, "2");
    assert_eq!(count(&app, &rows("image_tags", "FALSE")).await, "2");
    assert_eq!(count(&app, &rows("image_tags", "TRUE")).await, "1");
    let shown = image(&app, &id).await;
    assert_eq!(shown["os_distro"], "ubuntu");
    assert_eq!(shown["tags"], json!(["a", "b"]));
    assert_eq!(app.get("/v2/images?os_distro=ubuntu&tag=a").await.json()["images"].as_array().map(Vec::len), Some(1));
    // Adding a tag it has changes nothing.
    app.put(&format!("{path}/tags/a")).await.assert_status(204);
    assert_eq!(count(&app, &rows("image_tags", "FALSE")).await, "2");

    // Deleting the image marks its properties and tags deleted with it, as Glance does.
    app.delete(&path).await.assert_status(204);
    assert_eq!(count(&app, &rows("image_properties", "FALSE")).await, "0");
    assert_eq!(count(&app, &rows("image_tags", "FALSE")).await, "0");
    assert_eq!(count(&app, &format!("images WHERE id = '{id}' AND deleted = TRUE AND status = 'deleted'")).await, "1");
});

all_databases!(fn rows_glance_wrote_read_as_glance_reads_them(app) {
    // What Glance (or an operator) may leave that Glint never writes: a tag recorded twice, a
    // NULL updated_at, a NULL property value, NULL location metadata.
    let id = app.create_raw_image().await;
    app.execute(&format!("UPDATE images SET updated_at = NULL WHERE id = '{id}'")).await;
    for value in ["twice", "twice"] {
        app.execute(&format!("INSERT INTO image_tags (image_id, value, created_at, updated_at, deleted) \
                              VALUES ('{id}', '{value}', '2026-01-01 00:00:00', NULL, FALSE)")).await;
    }
    app.execute(&format!("INSERT INTO image_properties (image_id, name, value, created_at, deleted) \
                          VALUES ('{id}', 'empty', NULL, '2026-01-01 00:00:00', FALSE)")).await;
    let shown = image(&app, &id).await;
    assert_eq!(shown["tags"], json!(["twice"]));
    assert_eq!(shown["empty"], "");
    assert_eq!(shown["updated_at"], shown["created_at"]);
    assert_eq!(app.get("/v2/images?tag=twice").await.json()["images"].as_array().map(Vec::len), Some(1));
    app.delete(&format!("/v2/images/{id}/tags/twice")).await.assert_status(204);
    assert_eq!(image(&app, &id).await["tags"], json!([]));
});

/// Applies the migrations of Glint before Glance's schema (1 to 4), then writes rows as that
/// Glint did: an image with properties, tags, a member and a location.
fn as_an_earlier_glint_left_it(database: &glint::db::Database) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let rows = [
            "INSERT INTO images (id, name, status, visibility, protected, os_hidden, min_disk, min_ram, \
             size, checksum, created_at, updated_at, deleted) VALUES ('11111111-2222-3333-4444-555555555555', \
             'old', 'active', 'shared', FALSE, FALSE, 1, 2, 4, 'd41d8cd98f00b204e9800998ecf8427e', \
             '2026-01-01 00:00:00', '2026-01-02 00:00:00', FALSE)",
            "INSERT INTO image_properties (image_id, name, value, created_at, updated_at) VALUES \
             ('11111111-2222-3333-4444-555555555555', 'os_distro', 'debian', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
            "INSERT INTO image_tags (image_id, value, created_at, updated_at) VALUES \
             ('11111111-2222-3333-4444-555555555555', 'kept', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
            "INSERT INTO image_members (image_id, member, status, created_at, updated_at) VALUES \
             ('11111111-2222-3333-4444-555555555555', 'bob', 'accepted', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
            "INSERT INTO image_locations (image_id, value, meta_data, status, created_at, updated_at, deleted) VALUES \
             ('11111111-2222-3333-4444-555555555555', 'file:///nowhere/old', '{}', 'active', '2026-01-01 00:00:00', \
             '2026-01-01 00:00:00', FALSE)",
        ];
        let before_glance = |m: &sqlx::migrate::Migration| m.version < 20261203000005;
        match database {
            glint::db::Database::Postgres(pool) => {
                let mut migrator = sqlx::migrate!("./migrations/postgres");
                migrator.migrations = migrator
                    .migrations
                    .iter()
                    .filter(|m| before_glance(m))
                    .cloned()
                    .collect();
                let mut connection = pool.acquire().await.expect("connects");
                migrator
                    .run_direct(&mut *connection)
                    .await
                    .expect("earlier migrations apply");
                connection.release();
                for row in rows {
                    sqlx::query(row).execute(pool).await.expect("row written");
                }
            }
            glint::db::Database::Sqlite { write, .. } => {
                let mut migrator = sqlx::migrate!("./migrations/sqlite");
                migrator.migrations = migrator
                    .migrations
                    .iter()
                    .filter(|m| before_glance(m))
                    .cloned()
                    .collect();
                let mut connection = write.acquire().await.expect("connects");
                migrator
                    .run_direct(&mut *connection)
                    .await
                    .expect("earlier migrations apply");
                connection.release();
                for row in rows {
                    sqlx::query(row).execute(write).await.expect("row written");
                }
            }
            glint::db::Database::MySql(_) => unreachable!("no earlier Glint ran on MySQL"),
        }
    })
}

async fn an_earlier_glint_s_database_becomes_glance_s_with_every_row(backend: Backend) {
    let app = TestApp::start_prepared(backend, "", as_an_earlier_glint_left_it).await;
    let id = "11111111-2222-3333-4444-555555555555";
    let shown = image(&app, id).await;
    assert_eq!(shown["name"], "old");
    assert_eq!(shown["os_distro"], "debian");
    assert_eq!(shown["tags"], json!(["kept"]));
    assert_eq!(
        (
            shown["min_disk"].clone(),
            shown["min_ram"].clone(),
            shown["size"].clone()
        ),
        (json!(1), json!(2), json!(4))
    );
    assert_eq!(shown["updated_at"], "2026-01-02T00:00:00Z");
    assert_eq!(
        app.scalar("SELECT version_num FROM alembic_version").await,
        "2024_1_contract01"
    );
    for table in [
        "image_properties",
        "image_tags",
        "image_members",
        "image_locations",
    ] {
        assert_eq!(
            count(&app, &format!("{table} WHERE deleted = FALSE")).await,
            "1",
            "{table}"
        );
    }
    // And it is written as Glance's from now on.
    app.delete(&format!("/v2/images/{id}/tags/kept"))
        .await
        .assert_status(204);
    assert_eq!(count(&app, "image_tags WHERE deleted = TRUE").await, "1");
    app.put(&format!("/v2/images/{id}/tags/new"))
        .await
        .assert_status(204);
    assert_eq!(image(&app, id).await["tags"], json!(["new"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_glint_s_sqlite_database_becomes_glance_s() {
    an_earlier_glint_s_database_becomes_glance_s_with_every_row(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_glint_s_postgres_database_becomes_glance_s() {
    an_earlier_glint_s_database_becomes_glance_s_with_every_row(Backend::Postgres).await;
}

all_databases!(fn purge_removes_old_soft_deleted_rows_only(app) {
    let keep = app.create_image(json!({"name": "keep", "tags": ["t"], "p": "1", "q": "2"})).await["id"]
        .as_str().unwrap_or_default().to_owned();
    let gone = app.create_image(json!({"name": "gone", "tags": ["u"], "r": "3"})).await["id"]
        .as_str().unwrap_or_default().to_owned();
    let path = format!("/v2/images/{keep}");
    // Removed then added again: live, but with Glance's stale deleted_at set here on purpose.
    app.patch(&path, PATCH_V21, &json!([{"op": "remove", "path": "/p"}, {"op": "remove", "path": "/q"}])).await.assert_status(200);
    app.patch(&path, PATCH_V21, &json!([{"op": "add", "path": "/p", "value": "again"}])).await.assert_status(200);
    app.execute(&format!("UPDATE image_properties SET deleted_at = '2020-01-01 00:00:00' WHERE image_id = '{keep}'")).await;
    app.delete(&format!("/v2/images/{gone}")).await.assert_status(204);
    let month_ago = chrono::Utc::now() - chrono::Duration::days(30);
    // Nothing is old enough yet but the marks set above.
    let purged = app.database.purge(month_ago, None, false).await.expect("purges");
    let rows = |table: &str| purged.iter().find(|(t, _)| *t == table).map(|(_, n)| *n);
    assert_eq!(rows("image_properties"), Some(1), "only the removed /q: {purged:?}");
    assert_eq!(rows("image_tags"), Some(0), "{purged:?}");
    assert_eq!(image(&app, &keep).await["p"], "again");

    // Made old: the deleted image's children go, one row per table and run at most.
    for table in ["image_tags", "image_properties"] {
        app.execute(&format!("UPDATE {table} SET deleted_at = '2020-01-01 00:00:00' WHERE image_id = '{gone}'")).await;
    }
    app.execute(&format!("UPDATE images SET deleted_at = '2020-01-01 00:00:00' WHERE id = '{gone}'")).await;
    let refused = app.database.purge(month_ago, Some(0), true).await.expect("purges");
    assert_eq!(refused, vec![("images", 0)]);
    // The image row stays while its children do.
    assert_eq!(app.database.purge(month_ago, None, true).await.expect("purges"), vec![("images", 0)]);
    app.database.purge(month_ago, Some(1), false).await.expect("purges");
    assert_eq!(count(&app, &format!("image_tags WHERE image_id = '{gone}'")).await, "0");
    assert_eq!(count(&app, &format!("image_properties WHERE image_id = '{gone}'")).await, "0");
    assert_eq!(count(&app, &format!("images WHERE id = '{gone}'")).await, "1", "images are purged apart");
    assert_eq!(app.database.purge(month_ago, None, true).await.expect("purges"), vec![("images", 1)]);
    assert_eq!(count(&app, &format!("images WHERE id = '{gone}'")).await, "0");
    // Live rows all stay.
    let shown = image(&app, &keep).await;
    assert_eq!((shown["tags"].clone(), shown["p"].clone()), (json!(["t"]), json!("again")));
});

/// A MySQL database Glance made keeps text in utf8mb3: 4-byte characters are refused with a
/// 400 naming the field, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_a_utf8mb3_table_cannot_hold_is_a_400() {
    let app = TestApp::start(Backend::MySql, "").await;
    // The columns as Glance's tables have them (the ids stay: foreign keys pin their type).
    app.execute("ALTER TABLE images MODIFY name VARCHAR(255) CHARACTER SET utf8mb3")
        .await;
    app.execute("ALTER TABLE image_tags MODIFY value VARCHAR(255) CHARACTER SET utf8mb3 NOT NULL")
        .await;
    let response = app
        .post("/v2/images", &json!({"name": "smile \u{1F600}"}))
        .await;
    response.assert_status(400);
    assert!(
        response.error_message().contains("Invalid value for name"),
        "{}",
        response.text()
    );
    assert_eq!(count(&app, "images").await, "0");
    let id = app.create_raw_image().await;
    let response = app.put(&format!("/v2/images/{id}/tags/\u{1F600}")).await;
    response.assert_status(400);
    assert!(
        response.error_message().contains("value"),
        "{}",
        response.text()
    );
    // Text of three bytes or fewer per character is stored as before.
    app.put(&format!("/v2/images/{id}/tags/caf\u{e9}"))
        .await
        .assert_status(204);
    assert_eq!(image(&app, &id).await["tags"], json!(["caf\u{e9}"]));
}

/// A database Glance left at a revision other than the one Glint serves (older, or from a
/// later Glance) is refused by `glint db sync` with the way forward, and left untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glance_database_at_another_revision_is_refused_untouched() {
    for revision in ["2023_1_contract01", "2025_2_contract01"] {
        let dir = tempfile::tempdir().expect("temporary directory");
        let text = format!(
            "[database]\nconnection = sqlite:///{}\n",
            dir.path().join("glance.db").display()
        );
        let ini = glint::config::ini::Ini::parse(&text).expect("config parses");
        let config = glint::config::Config::from_ini(&ini, dir.path()).expect("config loads");
        let database = glint::db::Database::connect(&config.database)
            .await
            .expect("database opens");
        let glint::db::Database::Sqlite { write, .. } = &database else {
            unreachable!("a sqlite:// URL opens SQLite")
        };
        for sql in [
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
            &format!("INSERT INTO alembic_version VALUES ('{revision}')"),
        ] {
            sqlx::query(sql)
                .execute(write)
                .await
                .expect("Glance's table");
        }
        let refused = database
            .sync()
            .await
            .expect_err("another revision is refused");
        let message = refused.to_string();
        assert!(
            message.contains(revision)
                && message.contains("2024_1_contract01")
                && message.contains("with Glance first"),
            "{message}"
        );
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(write)
        .await
        .expect("tables listed");
        assert_eq!(tables, vec!["alembic_version".to_owned()], "{revision}");
    }
}
