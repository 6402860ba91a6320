//! The cache in front of a real remote store: S3 on Ceph RGW (`scripts/lab-ceph`, named by
//! `GLINT_TEST_RGW_*`; without it these tests fail, they never skip): fill, hit, single fill,
//! the size limit, pruning and invalidation. Backend bytes are read
//! from `/metrics` (`glint_store_bytes_read_total`).

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::Method;

use super::{caching, CacheApp};
use crate::helpers::Backend;
use crate::image_data::sample;

fn var(name: &str) -> String {
    std::env::var(format!("GLINT_TEST_RGW_{name}")).unwrap_or_else(|_| {
        panic!("GLINT_TEST_RGW_{name} is not set: start scripts/lab-ceph and eval its env")
    })
}

/// S3 on RGW as the default store, in a fresh bucket, behind a cache in `dir`.
fn config(dir: &Path) -> String {
    config_with(dir, "")
}

/// `config` with `extra` `[DEFAULT]` options for the cache.
fn config_with(dir: &Path, extra: &str) -> String {
    let bucket = format!("glint-cache-{}", uuid::Uuid::new_v4().simple());
    format!(
        "{}[DEFAULT]\nenabled_backends = objects:s3, local:file\n\
         [glance_store]\ndefault_backend = objects\n\
         [objects]\ns3_store_host = {}\ns3_store_access_key = {}\ns3_store_secret_key = {}\n\
         s3_store_bucket = {bucket}\ns3_store_create_bucket_on_put = true\ns3_store_region_name = {}\n",
        caching(dir, extra),
        var("ENDPOINT"),
        var("ACCESS_KEY"),
        var("SECRET_KEY"),
        var("REGION"),
    )
}

async fn backend_bytes(app: &CacheApp) -> u64 {
    let text = app.app.get("/metrics").await.text();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("glint_store_bytes_read_total{store=\"objects\"} ")?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

async fn fill_hit_and_single_flight(backend: Backend) {
    let app = CacheApp::start_with(backend, config, Duration::from_millis(300)).await;
    let data = sample(6 << 20);
    let id = app.image(&data).await;
    assert_eq!(backend_bytes(&app).await, 0);

    // Eight first downloads at once: one read of the bucket.
    let downloads = futures_util::future::join_all((0..8).map(|_| app.download(&id, None))).await;
    for download in &downloads {
        assert_eq!((download.status, download.cut), (200, false));
        assert!(download.data == data);
    }
    assert_eq!(app.reads(), 1);
    assert_eq!(backend_bytes(&app).await, data.len() as u64);
    app.wait_cached(&id).await;

    // Hits, whole and ranged: nothing more from RGW.
    assert_eq!(app.download(&id, None).await.data, data);
    let part = app.download(&id, Some("bytes=5000000-5000099")).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.data, &data[5_000_000..5_000_100]);
    assert_eq!(backend_bytes(&app).await, data.len() as u64);
    assert_eq!(app.reads(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rgw_fill_hit_and_single_flight_sqlite() {
    fill_hit_and_single_flight(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rgw_fill_hit_and_single_flight_postgres() {
    fill_hit_and_single_flight(Backend::Postgres).await;
}

/// The size limit, the pruner and invalidation with the data in RGW: an evicted image is read
/// from the bucket again, a deactivated or deleted one leaves the cache at once.
async fn limits_and_invalidation(backend: Backend) {
    // Room for one of the two 6 MiB images, not both.
    let app = CacheApp::start_with(
        backend,
        |dir| config_with(dir, "image_cache_max_size = 10485760"),
        Duration::ZERO,
    )
    .await;
    let first_data = sample(6 << 20);
    let second_data = sample((6 << 20) + 1);
    let first = app.image(&first_data).await;
    let second = app.image(&second_data).await;

    assert_eq!(app.download(&first, None).await.data, first_data);
    app.wait_cached(&first).await;
    // Caching the second evicts the first, least recently used.
    assert_eq!(app.download(&second, None).await.data, second_data);
    app.wait_cached(&second).await;
    assert_eq!(app.listed().await, std::slice::from_ref(&second));
    assert!(!app.cached_file(&first).exists());
    let read = backend_bytes(&app).await;
    assert_eq!(read, (first_data.len() + second_data.len()) as u64);
    // The evicted one comes from the bucket again.
    assert_eq!(app.download(&first, None).await.data, first_data);
    assert_eq!(backend_bytes(&app).await, read + first_data.len() as u64);
    app.wait_cached(&first).await;

    // Within its size, pruning removes nothing.
    let pruned = app
        .app
        .post("/v2/cache/prune", &serde_json::json!({}))
        .await;
    pruned.assert_status(200);
    assert_eq!(pruned.json()["total_files_pruned"], 0);

    // Deactivation drops the entry; an administrator (who alone may still download it, as
    // in Glance) gets it from the bucket, and it is not cached again.
    let deactivate = format!("/v2/images/{first}/actions/deactivate");
    app.app
        .request(Method::POST, &deactivate, &[], Body::empty())
        .await
        .assert_status(204);
    assert!(!app.listed().await.contains(&first));
    assert!(!app.cached_file(&first).exists());
    let read = backend_bytes(&app).await;
    assert_eq!(app.download(&first, None).await.data, first_data);
    assert_eq!(backend_bytes(&app).await, read + first_data.len() as u64);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!app.listed().await.contains(&first));

    // Deletion too. The second image was evicted when the first came back: cache it again.
    assert_eq!(app.download(&second, None).await.data, second_data);
    app.wait_cached(&second).await;
    app.app
        .delete(&format!("/v2/images/{second}"))
        .await
        .assert_status(204);
    assert!(!app.listed().await.contains(&second));
    assert!(!app.cached_file(&second).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rgw_limits_and_invalidation_sqlite() {
    limits_and_invalidation(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rgw_limits_and_invalidation_mysql() {
    limits_and_invalidation(Backend::MySql).await;
}
