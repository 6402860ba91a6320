//! The cache in front of a real remote store: S3 on Ceph RGW (`scripts/lab-ceph`, named by
//! `GLINT_TEST_RGW_*`; without it these tests fail, they never skip). Backend bytes are read
//! from `/metrics` (`glint_store_bytes_read_total`).

use std::path::Path;
use std::time::Duration;

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
    let bucket = format!("glint-cache-{}", uuid::Uuid::new_v4().simple());
    format!(
        "{}[DEFAULT]\nenabled_backends = objects:s3, local:file\n\
         [glance_store]\ndefault_backend = objects\n\
         [objects]\ns3_store_host = {}\ns3_store_access_key = {}\ns3_store_secret_key = {}\n\
         s3_store_bucket = {bucket}\ns3_store_create_bucket_on_put = true\ns3_store_region_name = {}\n",
        caching(dir, ""),
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
