//! Pruning, cleaning and prefetching.

use std::time::{Duration, SystemTime};

use crate::cache_tests;
use crate::image_data::sample;

fn age(path: &std::path::Path, by: Duration) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("opens");
    file.set_modified(SystemTime::now() - by)
        .expect("sets mtime");
}

cache_tests!(fn prune_brings_the_cache_back_within_its_maximum(app, "image_cache_max_size = 1500000") {
    let data = sample(1_000_000);
    let id = app.image(&data).await;
    app.download(&id, None).await;
    app.wait_cached(&id).await;
    // Within the maximum: nothing to do.
    let nothing = app.app.post("/v2/cache/prune", &serde_json::json!(null)).await;
    nothing.assert_status(200);
    assert_eq!(nothing.json(), serde_json::json!({"total_files_pruned": 0, "total_bytes_pruned": 0}));
    // A file left by an earlier configuration puts it over; it was never used here, so it goes first.
    let stray = uuid::Uuid::new_v4().to_string();
    std::fs::write(app.dir.path().join(&stray), vec![1u8; 800_000]).expect("writes");
    let pruned = app.app.post("/v2/cache/prune", &serde_json::json!(null)).await;
    pruned.assert_status(200);
    assert_eq!(pruned.json(), serde_json::json!({"total_files_pruned": 1, "total_bytes_pruned": 800_000}));
    assert!(!app.dir.path().join(&stray).exists());
    assert!(app.cached_file(&id).exists());
    assert_eq!(app.listed().await, [id.as_str()]);
});

cache_tests!(fn clean_removes_failed_and_stalled_files_only(app, "image_cache_stall_time = 3600") {
    let invalid = app.dir.path().join("invalid").join(uuid::Uuid::new_v4().to_string());
    let stalled = app.dir.path().join("incomplete").join(uuid::Uuid::new_v4().to_string());
    let fresh = app.dir.path().join("incomplete").join(uuid::Uuid::new_v4().to_string());
    for path in [&invalid, &stalled, &fresh] {
        std::fs::write(path, b"partial").expect("writes");
    }
    age(&stalled, Duration::from_secs(7200));
    age(&invalid, Duration::from_secs(10));
    let response = app.app.post("/v2/cache/clean", &serde_json::json!(null)).await;
    response.assert_status(200);
    assert!(response.body.is_empty());
    assert!(!invalid.exists() && !stalled.exists());
    assert!(fresh.exists(), "younger than image_cache_stall_time");
});

cache_tests!(fn a_queued_image_is_fetched_in_the_background(app) {
    let data = sample(700_000);
    let id = app.image(&data).await;
    app.app.put(&format!("/v2/cache/{id}")).await.assert_status(202);
    app.wait_cached(&id).await;
    assert_eq!(app.reads(), 1);
    let state = app.app.get("/v2/cache").await.json();
    assert_eq!(state["queued_images"], serde_json::json!([]));
    assert_eq!(state["cached_images"][0]["hits"], 0);
    // Queued again while cached: accepted, nothing fetched.
    app.app.put(&format!("/v2/cache/{id}")).await.assert_status(202);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.reads(), 1);
    // Served from the cache.
    assert_eq!(app.download(&id, None).await.data, data);
    assert_eq!(app.reads(), 1);
    // The cached nodes.
    let nodes = app.app.get(&format!("/v2/cache/nodes/{id}")).await;
    nodes.assert_status(200);
    assert_eq!(nodes.json(), serde_json::json!([crate::cache::NODE]));
});
