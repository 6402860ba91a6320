//! A database server that drops connections, stops answering, or rolls a transaction back to
//! break a deadlock, on PostgreSQL and MySQL/MariaDB (SQLite is a file: it has none of these
//! failures). Each test reaches the server from the side, as an operator's restart, a
//! long-running lock or a concurrent writer would.

use std::time::Duration;

use axum::body::Body;
use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::image_data::{image, sample, start_upload};

/// Runs `$name(backend)` as one test per database server.
macro_rules! on_database_servers {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name(crate::helpers::Backend::Postgres).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() { super::$name(crate::helpers::Backend::MySql).await }
        })*
    };
}

on_database_servers!(
    dead_pooled_connections_cost_no_client_an_error,
    a_database_lost_at_the_final_save_leaves_no_byte_after_delete_and_scrub,
    a_database_back_before_the_retries_end_records_the_upload,
    a_write_chosen_as_a_deadlock_victim_is_run_again,
);

async fn dead_pooled_connections_cost_no_client_an_error(backend: Backend) {
    let app = TestApp::start(backend, "").await;
    let id = app.create_raw_image().await;
    for round in 0..3 {
        // Fill the pool with idle connections, then kill every one of them.
        let mut warm = Vec::new();
        for _ in 0..6 {
            let router = app.router.clone();
            warm.push(tokio::spawn(async move {
                let request = axum::http::Request::get("/v2/images")
                    .body(Body::empty())
                    .expect("request");
                tower::ServiceExt::oneshot(router, request)
                    .await
                    .map(|r| r.status().as_u16())
            }));
        }
        for task in warm {
            assert_eq!(task.await.expect("task").ok(), Some(200));
        }
        let killed = kill_connections(&app).await;
        assert!(killed > 0, "round {round}: no connection to kill");
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..10 {
            app.get(&format!("/v2/images/{id}"))
                .await
                .assert_status(200);
            app.get("/v2/images").await.assert_status(200);
        }
        app.patch(
            &format!("/v2/images/{id}"),
            crate::helpers::PATCH_V21,
            &json!([{"op": "add", "path": format!("/round{round}"), "value": "v"}]),
        )
        .await
        .assert_status(200);
    }
}

async fn a_database_lost_at_the_final_save_leaves_no_byte_after_delete_and_scrub(backend: Backend) {
    let app = TestApp::start(backend, "[database]\nstatement_timeout = 1\n").await;
    let id = app.create_raw_image().await;
    let (frames, upload) = start_upload(&app, &id, sample(1 << 20)).await;
    // Every byte is in; the database stops answering before the upload is recorded.
    let release = lock_images(&app).await;
    drop(frames);
    let response = upload.await.expect("upload task");
    assert_eq!(response.status().as_u16(), 503);
    // The committed data waits, unrecorded, for the database to come back.
    assert_eq!(app.stored_files(), vec![id.clone()]);
    drop(release);
    // The reset to queued is retried in the background until the database answers.
    for _ in 0..150 {
        if image(&app, &id).await["status"] == "queued" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(image(&app, &id).await["status"], "queued");
    app.delete(&format!("/v2/images/{id}"))
        .await
        .assert_status(204);
    let report = app.services.data.scrub().await.expect("scrubs");
    assert_eq!(report.orphans, 1, "{report:?}");
    assert!(app.stored_files().is_empty(), "{:?}", app.stored_files());
}

async fn a_database_back_before_the_retries_end_records_the_upload(backend: Backend) {
    let app = TestApp::start(backend, "[database]\nstatement_timeout = 1\n").await;
    let id = app.create_raw_image().await;
    let (frames, upload) = start_upload(&app, &id, sample(1 << 20)).await;
    let release = lock_images(&app).await;
    drop(frames);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    drop(release);
    let response = upload.await.expect("upload task");
    assert_eq!(response.status().as_u16(), 204);
    let shown = image(&app, &id).await;
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["size"], 1 << 20);
}

/// Ends every connection the app holds to its database, as a server restart does; returns how
/// many there were.
async fn kill_connections(app: &TestApp) -> usize {
    let name = app.schema().expect("a database server");
    match app.backend {
        Backend::Postgres => {
            let admin = sqlx::PgPool::connect(&crate::helpers::postgres_url())
                .await
                .expect("connects");
            // Each PostgreSQL test app names its connections after its schema.
            let killed: i64 = sqlx::query_scalar(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = $1",
            )
            .bind(name)
            .fetch_one(&admin)
            .await
            .expect("terminates");
            admin.close().await;
            usize::try_from(killed).unwrap_or(0)
        }
        Backend::MySql => {
            let admin = sqlx::MySqlPool::connect(&crate::helpers::mysql_url())
                .await
                .expect("connects");
            // Each MySQL test app has a database of its own.
            let ids: Vec<u64> = sqlx::query_scalar(
                "SELECT CAST(id AS UNSIGNED) FROM information_schema.processlist WHERE db = ?",
            )
            .bind(name)
            .fetch_all(&admin)
            .await
            .expect("lists connections");
            for id in &ids {
                // A connection may end on its own meanwhile.
                let _ = sqlx::query(&format!("KILL CONNECTION {id}"))
                    .execute(&admin)
                    .await;
            }
            admin.close().await;
            ids.len()
        }
        Backend::Sqlite => unreachable!("SQLite has no connections to kill"),
    }
}

/// Holds a write lock on the app's `images` table from another connection, so that the app's
/// statements wait and time out, until the returned sender is dropped.
async fn lock_images(app: &TestApp) -> tokio::sync::oneshot::Sender<()> {
    use sqlx::Connection as _;
    let name = app.schema().expect("a database server").to_owned();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let (locked, is_locked) = tokio::sync::oneshot::channel::<()>();
    match app.backend {
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(&crate::helpers::postgres_url())
                .await
                .expect("connects");
            tokio::spawn(async move {
                let mut tx = connection.begin().await.expect("begins");
                sqlx::query(&format!(
                    "LOCK TABLE {name}.images IN ACCESS EXCLUSIVE MODE"
                ))
                .execute(&mut *tx)
                .await
                .expect("locks");
                let _ = locked.send(());
                let _ = released.await;
                let _ = tx.rollback().await;
            });
        }
        Backend::MySql => {
            let mut connection = sqlx::MySqlConnection::connect(&crate::helpers::mysql_url())
                .await
                .expect("connects");
            tokio::spawn(async move {
                sqlx::query(&format!("LOCK TABLES {name}.images WRITE"))
                    .execute(&mut connection)
                    .await
                    .expect("locks");
                let _ = locked.send(());
                let _ = released.await;
                let _ = sqlx::query("UNLOCK TABLES").execute(&mut connection).await;
                let _ = connection.close().await;
            });
        }
        Backend::Sqlite => unreachable!("SQLite's lock is the app's own"),
    }
    is_locked.await.expect("the lock is taken");
    release
}

/// Deadlocks detected so far by the whole server (other tests may add to it, never take away).
async fn deadlocks_so_far(backend: Backend) -> i64 {
    match backend {
        Backend::Postgres => {
            let admin = sqlx::PgPool::connect(&crate::helpers::postgres_url())
                .await
                .expect("connects");
            let count: i64 = sqlx::query_scalar(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
            )
            .fetch_one(&admin)
            .await
            .expect("reads statistics");
            admin.close().await;
            count
        }
        Backend::MySql => {
            let admin = sqlx::MySqlPool::connect(&crate::helpers::mysql_url())
                .await
                .expect("connects");
            let (_, count): (String, String) =
                sqlx::query_as("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")
                    .fetch_one(&admin)
                    .await
                    .expect("reads status");
            admin.close().await;
            count.parse().expect("a number")
        }
        Backend::Sqlite => unreachable!("SQLite has one writer"),
    }
}

/// A concurrent transaction holds what the app's tag write needs next and then asks for the
/// image row the app holds: the database breaks the deadlock by rolling one side back. The
/// other side has changed more rows, so the victim is the app's, which must run again and
/// succeed once the other side is done.
async fn a_write_chosen_as_a_deadlock_victim_is_run_again(backend: Backend) {
    use sqlx::Connection as _;
    let app = TestApp::start(backend, "").await;
    let id = app.create_raw_image().await;
    let mut others = Vec::new();
    for _ in 0..20 {
        others.push(app.create_raw_image().await);
    }
    let name = app.schema().expect("a database server").to_owned();
    let before = deadlocks_so_far(backend).await;
    let add_tag = |app: &TestApp| {
        let router = app.router.clone();
        let path = format!("/v2/images/{id}/tags/contended");
        tokio::spawn(async move {
            let request = axum::http::Request::put(path)
                .body(Body::empty())
                .expect("request");
            tower::ServiceExt::oneshot(router, request)
                .await
                .map(|r| r.status().as_u16())
        })
    };
    // Weight first (rows this side changed), then the lock the app's tag insert will wait on.
    // One row at a time, by primary key: a scan (which the planner may pick for a long `IN`
    // list) would also lock the app's image row under REPEATABLE READ, and the app would only
    // wait, never deadlock.
    let weight: Vec<String> = others
        .iter()
        .map(|o| format!("UPDATE {name}.images SET min_ram = min_ram + 1 WHERE id = '{o}'"))
        .collect();
    let contended = format!("UPDATE {name}.images SET min_ram = min_ram WHERE id = '{id}'");
    let response = match backend {
        Backend::Postgres => {
            let mut other = sqlx::PgConnection::connect(&crate::helpers::postgres_url())
                .await
                .expect("connects");
            let mut tx = other.begin().await.expect("begins");
            for update in &weight {
                sqlx::query(update)
                    .execute(&mut *tx)
                    .await
                    .expect("updates");
            }
            sqlx::query(&format!("LOCK TABLE {name}.image_tags IN SHARE MODE"))
                .execute(&mut *tx)
                .await
                .expect("locks");
            let write = add_tag(&app);
            tokio::time::sleep(Duration::from_millis(500)).await;
            // PostgreSQL's deadlock check runs in the side that has waited `deadlock_timeout`
            // (1 s) first: the app's.
            sqlx::query(&contended)
                .execute(&mut *tx)
                .await
                .expect("the other side goes on");
            tx.rollback().await.expect("rolls back");
            write.await.expect("task")
        }
        Backend::MySql => {
            let mut other = sqlx::MySqlConnection::connect(&crate::helpers::mysql_url())
                .await
                .expect("connects");
            // REPEATABLE READ: the locking read below also locks the gap the app inserts into.
            sqlx::query("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut other)
                .await
                .expect("sets isolation");
            let mut tx = other.begin().await.expect("begins");
            for update in &weight {
                sqlx::query(update)
                    .execute(&mut *tx)
                    .await
                    .expect("updates");
            }
            sqlx::query(&format!(
                "SELECT id FROM {name}.image_tags WHERE image_id = '{id}' FOR UPDATE"
            ))
            .fetch_all(&mut *tx)
            .await
            .expect("locks");
            let write = add_tag(&app);
            tokio::time::sleep(Duration::from_millis(500)).await;
            // InnoDB rolls back the side that changed fewer rows: the app's.
            sqlx::query(&contended)
                .execute(&mut *tx)
                .await
                .expect("the other side goes on");
            tx.rollback().await.expect("rolls back");
            write.await.expect("task")
        }
        Backend::Sqlite => unreachable!("SQLite has one writer"),
    };
    assert_eq!(response.ok(), Some(204));
    assert!(
        deadlocks_so_far(backend).await > before,
        "no deadlock happened"
    );
    assert_eq!(image(&app, &id).await["tags"], json!(["contended"]));
    assert_eq!(image(&app, &others[0]).await["min_ram"], 0);
}
