//! Downloads through the cache: fill, hit, ranges, single flight, damaged data.

use std::time::Duration;

use super::CacheApp;
use crate::cache_tests;
use crate::helpers::Backend;
use crate::image_data::sample;

/// A metric's value in `/metrics` (0 when absent).
async fn metric(app: &CacheApp, name: &str) -> u64 {
    let text = app.app.get("/metrics").await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

cache_tests!(fn a_download_fills_the_cache_and_the_next_is_served_from_it(app) {
    let data = sample(3 << 20);
    let id = app.image(&data).await;
    assert_eq!(app.reads(), 0);

    let first = app.download(&id, None).await;
    assert_eq!((first.status, first.cut), (200, false));
    assert_eq!(first.data, data);
    assert_eq!(app.reads(), 1);
    app.wait_cached(&id).await;
    assert_eq!(std::fs::read(app.cached_file(&id)).expect("cached file"), data);
    let incomplete = crate::helpers::files_in(&app.dir.path().join("incomplete"));
    assert!(incomplete.is_empty(), "{incomplete:?}");

    // Served from the cache, with the store path's headers.
    let second = app.download(&id, None).await;
    assert_eq!((second.status, second.cut), (200, false));
    assert_eq!(second.data, data);
    assert_eq!(app.reads(), 1, "the store is not read again");
    assert_eq!(second.header("content-length"), Some("3145728"));
    assert_eq!(second.header("content-type"), Some("application/octet-stream"));
    assert_eq!(second.header("content-md5"), first.header("content-md5"));
    assert!(second.header("content-md5").is_some());

    // A range too.
    let part = app.download(&id, Some("bytes=1000-1999")).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.data, &data[1000..2000]);
    assert_eq!(part.header("content-range"), Some("bytes 1000-1999/3145728"));
    assert_eq!(part.header("content-length"), Some("1000"));
    let tail = app.download(&id, Some("bytes=-10")).await;
    assert_eq!(tail.data, &data[data.len() - 10..]);
    let beyond = app.download(&id, Some("bytes=4000000-")).await;
    assert_eq!(beyond.status, 416);
    assert_eq!(app.reads(), 1);

    // Hits counted, last access kept.
    let listed = app.app.get("/v2/cache").await.json();
    let entry = &listed["cached_images"][0];
    assert_eq!(entry["image_id"], id.as_str());
    assert_eq!(entry["hits"], 3);
    assert_eq!(entry["size"], 3 << 20);
    assert_eq!(entry["checksum"], first.header("content-md5").unwrap_or_default());
    assert!(entry["last_accessed"].as_f64().unwrap_or(0.0) >= entry["last_modified"].as_f64().unwrap_or(f64::MAX) - 1.0);
    assert_eq!(listed["queued_images"], serde_json::json!([]));
    assert_eq!(
        app.app.scalar("SELECT node_reference_url FROM node_reference").await,
        crate::cache::NODE
    );

    assert_eq!(metric(&app, "glint_image_cache_hits_total").await, 3);
    assert_eq!(metric(&app, "glint_image_cache_misses_total").await, 1);
    assert_eq!(
        metric(&app, "glint_image_cache_bytes_served_total").await,
        (3 << 20) + 1000 + 10
    );
});

cache_tests!(fn a_range_of_an_uncached_image_reads_the_store_and_caches_nothing(app) {
    let data = sample(100_000);
    let id = app.image(&data).await;
    let part = app.download(&id, Some("bytes=10-19")).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.data, &data[10..20]);
    assert_eq!(app.reads(), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!app.cached_file(&id).exists());
    assert!(app.listed().await.is_empty());
});

async fn eight_at_once(backend: Backend) {
    let app = CacheApp::start_with(
        backend,
        |dir| super::caching(dir, ""),
        Duration::from_millis(300),
    )
    .await;
    let data = sample(5 << 20);
    let id = app.image(&data).await;
    let downloads = futures_util::future::join_all((0..8).map(|_| app.download(&id, None))).await;
    for download in &downloads {
        assert_eq!((download.status, download.cut), (200, false));
        assert!(download.data == data, "every download gets the image");
    }
    assert_eq!(app.reads(), 1, "eight first downloads read the store once");
    app.wait_cached(&id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_first_downloads_read_the_store_once_sqlite() {
    eight_at_once(Backend::Sqlite).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_first_downloads_read_the_store_once_postgres() {
    eight_at_once(Backend::Postgres).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_first_downloads_read_the_store_once_mysql() {
    eight_at_once(Backend::MySql).await;
}

cache_tests!(fn data_that_does_not_match_the_image_is_never_cached_nor_served_whole(app) {
    let data = sample(2 << 20);
    let id = app.image(&data).await;
    // The store's copy damaged behind Glint's back: same size, other bytes.
    let stored = app.app.images_dir.join(&id);
    let mut damaged = data.clone();
    damaged[12345] ^= 0xff;
    std::fs::write(&stored, &damaged).expect("damages");
    let download = app.download(&id, None).await;
    assert_eq!(download.status, 200);
    assert!(download.cut, "the transfer is cut");
    assert!(download.data.len() < data.len(), "never the whole image");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!app.cached_file(&id).exists());
    assert!(app.listed().await.is_empty());
    assert!(crate::helpers::files_in(&app.dir.path().join("incomplete")).is_empty());
    // Repaired, it caches.
    std::fs::write(&stored, &data).expect("repairs");
    assert_eq!(app.download(&id, None).await.data, data);
    app.wait_cached(&id).await;
});

cache_tests!(fn a_cached_file_changed_on_disk_is_checked_and_replaced(app) {
    let data = sample(1 << 20);
    let id = app.image(&data).await;
    app.download(&id, None).await;
    app.wait_cached(&id).await;
    // Changed after it was recorded (a later modification time): checked before serving.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut damaged = data.clone();
    damaged[7] ^= 1;
    std::fs::write(app.cached_file(&id), &damaged).expect("damages");
    let download = app.download(&id, None).await;
    assert_eq!((download.status, download.cut), (200, false));
    assert_eq!(download.data, data, "the store's data, not the damaged file");
    assert_eq!(app.reads(), 2);
    app.wait_cached(&id).await;
    assert_eq!(std::fs::read(app.cached_file(&id)).expect("refilled"), data);
    // A file of the wrong size is dropped at once.
    std::fs::write(app.cached_file(&id), b"short").expect("truncates");
    assert_eq!(app.download(&id, None).await.data, data);
    assert_eq!(app.reads(), 3);
});

cache_tests!(fn the_cache_keeps_within_its_maximum_as_it_fills(app, "image_cache_max_size = 2500000") {
    let (a, b, c) = (sample(1_000_000), sample(1_000_001), sample(999_999));
    let (ia, ib, ic) = (app.image(&a).await, app.image(&b).await, app.image(&c).await);
    app.download(&ia, None).await;
    app.wait_cached(&ia).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.download(&ib, None).await;
    app.wait_cached(&ib).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // A is used again: B is now the least recently used.
    assert_eq!(app.download(&ia, None).await.data, a);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.download(&ic, None).await.data, c);
    app.wait_cached(&ic).await;
    let mut listed = app.listed().await;
    listed.sort();
    let mut expected = vec![ia.clone(), ic.clone()];
    expected.sort();
    assert_eq!(listed, expected, "B evicted");
    assert!(!app.cached_file(&ib).exists());
    let total: u64 = crate::helpers::files_in(app.dir.path())
        .iter()
        .filter_map(|f| std::fs::metadata(app.dir.path().join(f)).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    assert!(total <= 2_500_000, "{total}");
    // Larger than the whole cache: served, never cached, nothing evicted.
    let big = sample(2_600_000);
    let id = app.image(&big).await;
    assert_eq!(app.download(&id, None).await.data, big);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!app.cached_file(&id).exists());
    assert_eq!(app.listed().await.len(), 2);
});

cache_tests!(fn a_deactivated_image_is_not_served_from_the_cache_and_leaves_it(app) {
    let data = sample(300_000);
    let id = app.image(&data).await;
    app.download(&id, None).await;
    app.wait_cached(&id).await;
    let actions = format!("/v2/images/{id}/actions");
    app.app.post(&format!("{actions}/deactivate"), &serde_json::json!(null)).await.assert_status(204);
    assert!(!app.cached_file(&id).exists());
    assert!(app.listed().await.is_empty());
    // The administrator still reads it, from the store, and nothing is cached.
    let reads = app.reads();
    assert_eq!(app.download(&id, None).await.data, data);
    assert_eq!(app.reads(), reads + 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!app.cached_file(&id).exists());
    app.app.post(&format!("{actions}/reactivate"), &serde_json::json!(null)).await.assert_status(204);
    assert_eq!(app.download(&id, None).await.data, data);
    app.wait_cached(&id).await;
});

cache_tests!(fn deleting_an_image_removes_it_from_the_cache(app) {
    let data = sample(300_000);
    let id = app.image(&data).await;
    app.download(&id, None).await;
    app.wait_cached(&id).await;
    app.app.delete(&format!("/v2/images/{id}")).await.assert_status(204);
    assert!(!app.cached_file(&id).exists());
    assert!(app.listed().await.is_empty());
    assert_eq!(app.download(&id, None).await.status, 404);
});

cache_tests!(fn images_deleted_or_deactivated_elsewhere_are_swept(app) {
    let (one, two) = (app.image(&sample(1000)).await, app.image(&sample(2000)).await);
    for id in [&one, &two] {
        app.download(id, None).await;
        app.wait_cached(id).await;
    }
    // Another node deleted one and deactivated the other: only the database says so.
    app.app.execute(&format!("UPDATE images SET status = 'deleted', deleted = {} WHERE id = '{one}'",
        if app.app.backend == Backend::Postgres { "true" } else { "1" })).await;
    app.app.force_status(&two, "deactivated").await;
    let cache = app.app.services.data.cache().expect("a cache").clone();
    assert_eq!(cache.sweep().await.expect("sweeps"), 2);
    assert!(app.listed().await.is_empty());
    assert!(!app.cached_file(&one).exists() && !app.cached_file(&two).exists());
});
