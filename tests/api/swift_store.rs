//! The Image API over the Swift store, against real servers: OpenStack Swift
//! (`scripts/lab-swift`, `GLINT_TEST_OSWIFT_*`) and Ceph RGW's Swift API (`scripts/lab-ceph`,
//! `GLINT_TEST_SWIFT_*`). Every test gets a container of its own. Without the servers these
//! tests fail; they never skip.

use std::time::Duration;

use axum::body::Body;
use axum::http::Method;

use crate::helpers::{Backend, Relay, TestApp};
use crate::image_data::{
    cut_body, eventually_queued, image, put_file, sample, start_upload, upload_announced_or_chunked,
};

fn var(prefix: &str, name: &str) -> String {
    std::env::var(format!("GLINT_TEST_{prefix}_{name}")).unwrap_or_else(|_| {
        panic!("GLINT_TEST_{prefix}_{name} is not set: start scripts/lab-swift and scripts/lab-ceph and eval their env")
    })
}

/// A multi-store configuration whose default store is Swift, in a fresh container, its
/// credentials in a `swift_store_config_file` as operators keep them; objects of 1 "MB"
/// (1,024,000 bytes) and more go in segments of that size.
struct Setup {
    text: String,
    _dir: tempfile::TempDir,
}

fn setup(prefix: &str, auth_url: &str, key: &str, extra: &str, store_extra: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("glance-swift.conf");
    std::fs::write(
        &file,
        format!(
            "[ref1]\nauth_address = {auth_url}\nuser = {}\nkey = {key}\nauth_version = 1\n",
            var(prefix, "USER")
        ),
    )
    .expect("writes");
    let container = format!("glint-api-{}", uuid::Uuid::new_v4().simple());
    let text = format!(
        "[DEFAULT]\nenabled_backends = objects:swift, local:file\n{extra}\n\
         [glance_store]\ndefault_backend = objects\n\
         [objects]\nswift_store_config_file = {}\ndefault_swift_reference = ref1\n\
         swift_store_container = {container}\nswift_store_create_container_on_put = true\n\
         swift_store_large_object_size = 1\nswift_store_large_object_chunk_size = 1\n{store_extra}\n",
        file.display()
    );
    Setup { text, _dir: dir }
}

async fn app(prefix: &str, backend: Backend, extra: &str) -> (TestApp, Setup) {
    let setup = setup(
        prefix,
        &var(prefix, "AUTH_URL"),
        &var(prefix, "KEY"),
        extra,
        "",
    );
    (TestApp::start(backend, &setup.text).await, setup)
}

/// What the Swift store holds: committed images, and uploads a sweep that spares nothing
/// still finds (segments or markers).
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
macro_rules! swift_servers {
    (fn $name:ident($app:ident, $prefix:ident $(, $extra:expr)?) $body:block) => {
        mod $name {
            use super::*;
            async fn run(($app, _setup): (TestApp, Setup), $prefix: &'static str) {
                let _ = $prefix;
                $body
            }
            fn extra() -> &'static str { "" $(; $extra)? }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn swift_sqlite() { run(app("OSWIFT", Backend::Sqlite, extra()).await, "OSWIFT").await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn swift_postgres() { run(app("OSWIFT", Backend::Postgres, extra()).await, "OSWIFT").await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn swift_mysql() { run(app("OSWIFT", Backend::MySql, extra()).await, "OSWIFT").await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rgw_sqlite() { run(app("SWIFT", Backend::Sqlite, extra()).await, "SWIFT").await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rgw_postgres() { run(app("SWIFT", Backend::Postgres, extra()).await, "SWIFT").await }
        }
    };
}

swift_servers!(fn images_go_to_swift_and_come_back_whole_and_by_range(app, prefix) {
    for (len, announced) in [(100usize, true), (3 << 20 | 321, true), (2 << 20 | 5, false), (0, true), (0, false)] {
        let id = app.create_raw_image().await;
        let data = sample(len);
        upload_announced_or_chunked(&app, &id, &data, announced).await.assert_status(204);
        let shown = image(&app, &id).await;
        assert_eq!(shown["status"], "active");
        assert_eq!(shown["stores"], "objects");
        assert_eq!(shown["size"], len);
        let got = app.get(&format!("/v2/images/{id}/file")).await;
        got.assert_status(200);
        assert!(got.body == data, "{len} bytes read back");
        if len > 0 {
            // Across the first segment's end.
            let ranged = app.request(Method::GET, &format!("/v2/images/{id}/file"),
                &[("range", "bytes=1023990-1024009")], Body::empty()).await;
            if len > 1_024_010 {
                ranged.assert_status(206);
                assert_eq!(ranged.body, data[1_023_990..1_024_010]);
            }
        }
        let location = app.scalar(&format!("SELECT value FROM image_locations WHERE image_id = '{id}'")).await;
        assert!(location.starts_with("swift+config://ref1/glint-api-"), "{location}");
    }
    let (objects, unfinished) = leftovers(&app).await;
    assert_eq!((objects.len(), unfinished), (5, 0));
    for id in &objects {
        app.delete(&format!("/v2/images/{id}")).await.assert_status(204);
    }
    assert_eq!(leftovers(&app).await, (Vec::new(), 0));
});

swift_servers!(fn failed_uploads_leave_no_object_and_no_segment(app, prefix, "image_size_cap = 4194304") {
    // A client that goes away mid-upload (segments already stored).
    let cut = app.create_raw_image().await;
    put_file(&app, &cut, &[], cut_body(vec![sample(3 << 20), sample(1 << 20)])).await.assert_status(400);
    assert_eq!(image(&app, &cut).await["status"], "queued");
    // Over the size cap as the bytes arrive (no size announced).
    let big = app.create_raw_image().await;
    let frames: Vec<Result<bytes::Bytes, std::io::Error>> =
        (0..6).map(|_| Ok(bytes::Bytes::from(sample(1 << 20)))).collect();
    put_file(&app, &big, &[], Body::from_stream(futures_util::stream::iter(frames))).await.assert_status(413);
    assert_eq!(image(&app, &big).await["status"], "queued");
    // Less data than announced.
    let short = app.create_raw_image().await;
    put_file(&app, &short, &[("x-openstack-image-size", "3000000")], Body::from(sample(2_000_000)))
        .await
        .assert_status(400);
    // A request the server drops (the client disconnected).
    let dropped = app.create_raw_image().await;
    let (frames, upload) = start_upload(&app, &dropped, sample(3 << 20)).await;
    upload.abort();
    let _ = upload.await;
    drop(frames);
    eventually_queued(&app, &dropped).await;
    let mut state = leftovers(&app).await;
    for _ in 0..50 {
        if state == (Vec::new(), 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        state = leftovers(&app).await;
    }
    assert_eq!(state, (Vec::new(), 0), "objects or segments left");
    app.upload(&cut, sample(1000)).await.assert_status(204);
});

swift_servers!(fn refused_credentials_give_a_clear_503_and_keep_the_image_queued(app, prefix) {
    let _ = &app;
    let setup = setup(prefix, &var(prefix, "AUTH_URL"), "not-the-key", "", "");
    let app = TestApp::start(Backend::Sqlite, &setup.text).await;
    let id = app.create_raw_image().await;
    let refused = app.upload(&id, sample(1000)).await;
    refused.assert_status(503);
    let body = String::from_utf8_lossy(&refused.body).into_owned();
    assert!(body.contains("misconfigured"), "{body}");
    assert!(!body.contains("not-the-key"));
    assert_eq!(image(&app, &id).await["status"], "queued");
    let detail = app.get("/v2/info/stores/detail").await;
    assert!(!String::from_utf8_lossy(&detail.body).contains("not-the-key"));
});

swift_servers!(fn a_server_that_goes_away_gives_503_and_uploads_work_again_when_it_returns(app, prefix) {
    let _ = &app;
    let auth = var(prefix, "AUTH_URL");
    let upstream = auth.trim_start_matches("http://").split('/').next().expect("host").to_owned();
    let mut relay = Relay::start(&upstream).await;
    // Auth and storage both through the relay (the storage URL auth gives names the server).
    let storage_path = if prefix == "SWIFT" { "/swift/v1" } else { "/v1/AUTH_test" };
    let setup = setup(
        prefix,
        &auth.replace(&upstream, &relay.address),
        &var(prefix, "KEY"),
        "",
        &format!("swift_store_endpoint = http://{}{storage_path}", relay.address),
    );
    let app = TestApp::start(Backend::Sqlite, &setup.text).await;
    let before = app.create_raw_image().await;
    app.upload(&before, sample(3000)).await.assert_status(204);
    relay.cut().await;
    let id = app.create_raw_image().await;
    app.upload(&id, sample(3000)).await.assert_status(503);
    assert_eq!(image(&app, &id).await["status"], "queued");
    app.get(&format!("/v2/images/{before}/file")).await.assert_status(503);
    relay.restore().await;
    app.upload(&id, sample(3000)).await.assert_status(204);
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == sample(3000));

    // The server goes away in the middle of a segmented upload: 503, the image queued, and
    // the segments it could not remove then are removed by the sweep once it is back.
    let cut = app.create_raw_image().await;
    let (frames, upload) = start_upload(&app, &cut, sample(3 << 20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.cut().await;
    let _ = frames.send(sample(1 << 20)).await;
    drop(frames);
    let response = upload.await.expect("upload task");
    assert_eq!(response.status().as_u16(), 503);
    eventually_queued(&app, &cut).await;
    relay.restore().await;
    let store = app.services.data.stores().default_store().clone();
    store.sweep_abandoned(Duration::ZERO).await.expect("sweeps");
    assert_eq!(store.sweep_abandoned(Duration::ZERO).await.expect("sweeps"), 0);
    app.upload(&cut, sample(1000)).await.assert_status(204);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_detail_shows_the_swift_store_without_credentials() {
    let (app, _setup) = app("OSWIFT", Backend::Sqlite, "").await;
    let detail = app.get("/v2/info/stores/detail").await.json();
    let swift = detail["stores"]
        .as_array()
        .and_then(|stores| stores.iter().find(|s| s["id"] == "objects"))
        .cloned()
        .expect("the swift store is listed");
    assert_eq!(swift["type"], "swift");
    assert_eq!(swift["properties"]["large_object_size"], 1_024_000);
    assert!(swift["properties"]["container"]
        .as_str()
        .is_some_and(|c| c.starts_with("glint-api-")));
    assert!(!detail.to_string().contains(&var("OSWIFT", "KEY")));
}
