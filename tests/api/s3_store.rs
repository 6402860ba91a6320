//! The Image API over the S3 store, against real S3 servers: s3s-fs (`scripts/lab-s3s`) and
//! Ceph RGW (`scripts/lab-ceph`), named by `GLINT_TEST_S3_*` and `GLINT_TEST_RGW_*`. Every
//! test gets a bucket of its own. Without the servers these tests fail; they never skip.

use std::time::Duration;

use crate::helpers::{Backend, Relay, TestApp};
use crate::image_data::{
    cut_body, eventually_queued, image, put_file, sample, start_upload, upload_announced_or_chunked,
};
use axum::body::Body;
use axum::http::Method;

fn var(prefix: &str, name: &str) -> String {
    std::env::var(format!("GLINT_TEST_{prefix}_{name}")).unwrap_or_else(|_| {
        panic!("GLINT_TEST_{prefix}_{name} is not set: start scripts/lab-s3s and scripts/lab-ceph and eval their env")
    })
}

/// A multi-store configuration whose default store is S3 on `endpoint`, in a fresh bucket.
fn config(prefix: &str, endpoint: &str, secret: &str, extra: &str) -> String {
    let bucket = format!("glint-api-{}", uuid::Uuid::new_v4().simple());
    format!(
        "[DEFAULT]\nenabled_backends = objects:s3, local:file\n{extra}\n\
         [glance_store]\ndefault_backend = objects\n\
         [objects]\ns3_store_host = {endpoint}\ns3_store_access_key = {}\ns3_store_secret_key = {secret}\n\
         s3_store_bucket = {bucket}\ns3_store_create_bucket_on_put = true\ns3_store_region_name = {}\n\
         s3_store_large_object_size = 1\ns3_store_large_object_chunk_size = 5\ns3_store_thread_pools = 2\n",
        var(prefix, "ACCESS_KEY"),
        var(prefix, "REGION"),
    )
}

async fn app(prefix: &str, backend: Backend, extra: &str) -> TestApp {
    let text = config(
        prefix,
        &var(prefix, "ENDPOINT"),
        &var(prefix, "SECRET_KEY"),
        extra,
    );
    TestApp::start(backend, &text).await
}

/// What the S3 store holds: committed images, and unfinished multipart uploads (their markers,
/// removed by a sweep that spares nothing).
async fn leftovers(app: &TestApp) -> (Vec<String>, usize) {
    let store = app.services.data.stores().default_store().clone();
    let objects = store
        .committed_data()
        .await
        .expect("lists")
        .into_iter()
        .map(|d| d.image_id)
        .collect();
    let unfinished = store.sweep_abandoned(Duration::ZERO).await.expect("sweeps");
    (objects, unfinished)
}

/// One test on each server and each database.
macro_rules! s3_servers {
    (fn $name:ident($app:ident, $prefix:ident $(, $extra:expr)?) $body:block) => {
        mod $name {
            use super::*;
            async fn run($app: TestApp, $prefix: &'static str) {
                let _ = $prefix;
                $body
            }
            fn extra() -> &'static str { "" $(; $extra)? }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn s3s_sqlite() { run(app("S3", Backend::Sqlite, extra()).await, "S3").await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn s3s_postgres() { run(app("S3", Backend::Postgres, extra()).await, "S3").await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn s3s_mysql() { run(app("S3", Backend::MySql, extra()).await, "S3").await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rgw_sqlite() { run(app("RGW", Backend::Sqlite, extra()).await, "RGW").await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rgw_postgres() { run(app("RGW", Backend::Postgres, extra()).await, "RGW").await }
        }
    };
}

s3_servers!(fn images_go_to_s3_and_come_back_whole_and_by_range(app, prefix) {
    for (len, announced) in [(100usize, true), (12 << 20 | 321, true), (7 << 20 | 5, false), (0, true)] {
        let id = app.create_raw_image().await;
        let data = sample(len);
        upload_announced_or_chunked(&app, &id, &data, announced).await.assert_status(204);
        let shown = image(&app, &id).await;
        assert_eq!(shown["status"], "active");
        assert_eq!(shown["stores"], "objects");
        assert_eq!(shown["size"], len);
        let got = app.get(&format!("/v2/images/{id}/file")).await;
        if len == 0 {
            got.assert_status(200);
            assert!(got.body.is_empty());
            continue;
        }
        got.assert_status(200);
        assert!(got.body == data, "{len} bytes read back");
        let ranged = app.request(Method::GET, &format!("/v2/images/{id}/file"), &[("range", "bytes=10-19")], Body::empty()).await;
        ranged.assert_status(206);
        assert_eq!(ranged.body, data[10..20]);
        // New locations hold no credentials.
        let location = app.scalar(&format!("SELECT value FROM image_locations WHERE image_id = '{id}'")).await;
        assert!(location.starts_with("s3://") && !location.contains('@'), "{location}");
    }
    let (objects, unfinished) = leftovers(&app).await;
    assert_eq!((objects.len(), unfinished), (4, 0));
    // Delete removes the object.
    let ids = objects.clone();
    for id in &ids {
        app.delete(&format!("/v2/images/{id}")).await.assert_status(204);
    }
    assert_eq!(leftovers(&app).await, (Vec::new(), 0));
});

s3_servers!(fn failed_uploads_leave_no_object_and_no_multipart_upload(app, prefix, "image_size_cap = 8388608") {
    // A client that goes away mid-upload (parts already sent).
    let cut = app.create_raw_image().await;
    put_file(&app, &cut, &[], cut_body(vec![sample(6 << 20), sample(1 << 20)])).await.assert_status(400);
    assert_eq!(image(&app, &cut).await["status"], "queued");
    // Over the size cap as the bytes arrive (no size announced).
    let big = app.create_raw_image().await;
    let frames: Vec<Result<bytes::Bytes, std::io::Error>> =
        (0..10).map(|_| Ok(bytes::Bytes::from(sample(1 << 20)))).collect();
    put_file(&app, &big, &[], Body::from_stream(futures_util::stream::iter(frames))).await.assert_status(413);
    assert_eq!(image(&app, &big).await["status"], "queued");
    // A request the server drops (the client disconnected).
    let dropped = app.create_raw_image().await;
    let (frames, upload) = start_upload(&app, &dropped, sample(6 << 20)).await;
    upload.abort();
    let _ = upload.await;
    drop(frames);
    eventually_queued(&app, &dropped).await;
    // The aborts run as the failures happen; give the dropped one a moment.
    let mut state = leftovers(&app).await;
    for _ in 0..50 {
        if state == (Vec::new(), 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        state = leftovers(&app).await;
    }
    assert_eq!(state, (Vec::new(), 0), "objects or unfinished uploads left");
    // Each image can be uploaded again.
    app.upload(&cut, sample(1000)).await.assert_status(204);
});

s3_servers!(fn locations_glance_wrote_with_credentials_are_read_and_never_shown(app, prefix) {
    let id = app.create_raw_image().await;
    app.upload(&id, sample(5000)).await.assert_status(204);
    // The form Glance writes: the store's keys inside the URI.
    let secret = var(prefix, "SECRET_KEY");
    let value = app.scalar(&format!("SELECT value FROM image_locations WHERE image_id = '{id}'")).await;
    let with_keys = value.replacen("s3://", &format!("s3://{}:{secret}@", var(prefix, "ACCESS_KEY")), 1);
    app.execute(&format!("UPDATE image_locations SET value = '{with_keys}' WHERE image_id = '{id}'")).await;
    let got = app.get(&format!("/v2/images/{id}/file")).await;
    got.assert_status(200);
    assert!(got.body == sample(5000));
    for path in [format!("/v2/images/{id}"), "/v2/images".to_owned(), "/v2/info/stores/detail".to_owned()] {
        let shown = app.get(&path).await;
        assert!(!String::from_utf8_lossy(&shown.body).contains(&secret), "{path} shows the secret");
    }
});

s3_servers!(fn refused_credentials_give_a_clear_503_and_keep_the_image_queued(app, prefix) {
    let _ = &app;
    let text = config(prefix, &var(prefix, "ENDPOINT"), "not-the-secret", "");
    let app = TestApp::start(Backend::Sqlite, &text).await;
    let id = app.create_raw_image().await;
    let refused = app.upload(&id, sample(1000)).await;
    refused.assert_status(503);
    let body = String::from_utf8_lossy(&refused.body).into_owned();
    assert!(body.contains("misconfigured"), "{body}");
    assert!(!body.contains("not-the-secret"));
    assert_eq!(image(&app, &id).await["status"], "queued");
});

s3_servers!(fn a_server_that_goes_away_gives_503_and_uploads_work_again_when_it_returns(app, prefix) {
    let _ = &app;
    let upstream = var(prefix, "ENDPOINT").trim_start_matches("http://").to_owned();
    let mut relay = Relay::start(&upstream).await;
    let text = config(prefix, &format!("http://{}", relay.address), &var(prefix, "SECRET_KEY"), "");
    let app = TestApp::start(Backend::Sqlite, &text).await;
    let before = app.create_raw_image().await;
    app.upload(&before, sample(3000)).await.assert_status(204);
    relay.cut().await;
    let id = app.create_raw_image().await;
    let down = app.upload(&id, sample(3000)).await;
    down.assert_status(503);
    assert_eq!(image(&app, &id).await["status"], "queued");
    let unreadable = app.get(&format!("/v2/images/{before}/file")).await;
    unreadable.assert_status(503);
    relay.restore().await;
    app.upload(&id, sample(3000)).await.assert_status(204);
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == sample(3000));
    assert!(app.get(&format!("/v2/images/{before}/file")).await.body == sample(3000));

    // The server goes away in the middle of a multipart upload: 503, the image queued, and
    // the upload it could not abort then is aborted by the sweep once the server is back.
    let cut = app.create_raw_image().await;
    let (frames, upload) = start_upload(&app, &cut, sample(6 << 20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.cut().await;
    let _ = frames.send(sample(6 << 20)).await;
    drop(frames);
    let response = upload.await.expect("upload task");
    assert_eq!(response.status().as_u16(), 503);
    eventually_queued(&app, &cut).await;
    relay.restore().await;
    let store = app.services.data.stores().default_store().clone();
    store.sweep_abandoned(Duration::ZERO).await.expect("sweeps");
    assert_eq!(store.sweep_abandoned(Duration::ZERO).await.expect("sweeps"), 0);
    let objects: Vec<String> = store.committed_data().await.expect("lists").into_iter().map(|d| d.image_id).collect();
    assert!(!objects.contains(&cut), "{objects:?}");
    app.upload(&cut, sample(1000)).await.assert_status(204);
});

s3_servers!(fn many_uploads_through_a_small_budget_all_finish(app, prefix, "upload_memory_budget = 25165824\nimage_size_cap = 67108864") {
    // Each S3 upload reserves its parts (two of 5 MiB: one filling, one in flight) and a
    // pipeline's worth (4 MiB) out of 24 MiB: one runs at a time, the others wait their turn
    // holding nothing, and none waits on another's half-filled part.
    let app = std::sync::Arc::new(app);
    let mut uploads = tokio::task::JoinSet::new();
    for n in 0..8usize {
        let app = app.clone();
        uploads.spawn(async move {
            let id = app.create_raw_image().await;
            let data = sample((6 << 20) + n * 1000);
            let frames: Vec<Result<bytes::Bytes, std::io::Error>> =
                data.chunks(64 << 10).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
            let response = put_file(&app, &id, &[], Body::from_stream(futures_util::stream::iter(frames))).await;
            (id, response.status.as_u16(), data)
        });
    }
    let finished = tokio::time::timeout(Duration::from_secs(120), async {
        let mut done = Vec::new();
        while let Some(result) = uploads.join_next().await {
            done.push(result.expect("joins"));
        }
        done
    })
    .await
    .expect("uploads stuck on the memory budget");
    for (id, status, data) in finished {
        assert_eq!(status, 204);
        assert!(app.get(&format!("/v2/images/{id}/file")).await.body == data);
    }
    assert_eq!(leftovers(&app).await.1, 0);
});

#[tokio::test]
async fn a_budget_too_small_for_s3_parts_is_refused_at_start_up() {
    let text = config(
        "S3",
        &var("S3", "ENDPOINT"),
        &var("S3", "SECRET_KEY"),
        "upload_memory_budget = 8388608",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{text}\n[database]\nconnection = sqlite:///{}/glint.db\n",
        dir.path().display()
    );
    let ini = glint::config::ini::Ini::parse(&text).expect("parses");
    let config = glint::config::Config::from_ini(&ini, dir.path()).expect("loads");
    let database = glint::db::Database::connect(&config.database)
        .await
        .expect("opens");
    database.sync().await.expect("migrates");
    let refused = glint::services(&config, &database).expect_err("refused");
    assert!(refused.contains("upload_memory_budget"), "{refused}");
}

s3_servers!(fn more_data_than_announced_is_refused_as_it_arrives(app, prefix) {
    // The writer was sized (one PUT, held in memory) for the announced 1000 bytes.
    let id = app.create_raw_image().await;
    let response = tokio::time::timeout(
        Duration::from_secs(30),
        put_file(&app, &id, &[("x-openstack-image-size", "1000")], Body::from(sample(10 << 20))),
    )
    .await
    .expect("answered, not stuck on the memory budget");
    response.assert_status(400);
    assert_eq!(image(&app, &id).await["status"], "queued");
    assert_eq!(leftovers(&app).await, (Vec::new(), 0));
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_go_to_s3_over_tls_with_the_operator_s_ca() {
    let text = format!(
        "{}\ns3_store_cacert = {}\n",
        config(
            "RGW",
            &var("RGW", "TLS_ENDPOINT"),
            &var("RGW", "SECRET_KEY"),
            ""
        ),
        var("RGW", "CACERT")
    );
    let app = TestApp::start(Backend::Sqlite, &text).await;
    let id = app.create_raw_image().await;
    app.upload(&id, sample(6 << 20)).await.assert_status(204);
    let location = app
        .scalar(&format!(
            "SELECT value FROM image_locations WHERE image_id = '{id}'"
        ))
        .await;
    assert!(location.starts_with("s3+https://127.0.0.1:"), "{location}");
    let got = app.get(&format!("/v2/images/{id}/file")).await;
    got.assert_status(200);
    assert!(got.body == sample(6 << 20));
    app.delete(&format!("/v2/images/{id}"))
        .await
        .assert_status(204);
    assert_eq!(leftovers(&app).await, (Vec::new(), 0));
}
