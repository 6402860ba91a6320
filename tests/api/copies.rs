//! Copies of image data between stores (`glint image copy`, `glint migrate`): verified against
//! the image's checksums before they are recorded, never recorded twice, nothing unverified
//! kept, and an interrupted run finished without copying again.

use glint::datapath::{CopyOutcome, CopyRequest};
use serde_json::Value;

use crate::all_databases;
use crate::helpers::{files_in, TestApp};

const TWO_STORES: &str = "[DEFAULT]\nenabled_backends = fast:file, cheap:file\n\
    [glance_store]\ndefault_backend = cheap\n[fast]\nweight = 100\n[cheap]\nweight = 10\n";

async fn copy(app: &TestApp, id: &str, to: &str) -> Result<CopyOutcome, String> {
    app.services
        .data
        .copy_image(
            CopyRequest {
                image_id: id,
                to,
                from: None,
            },
            &|_| {},
        )
        .await
        .map_err(|e| e.to_string())
}

/// The stores holding the image's data, as the API shows them.
async fn locations(app: &TestApp, id: &str) -> Vec<String> {
    let shown: Value = app.get(&format!("/v2/images/{id}")).await.json();
    shown["stores"]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn sample(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

all_databases!(fn a_copy_is_verified_recorded_and_served(app, TWO_STORES) {
    let id = app.create_raw_image().await;
    let data = sample(3 << 20 | 7, 1);
    app.upload(&id, data.clone()).await.assert_status(204);
    assert_eq!(copy(&app, &id, "fast").await, Ok(CopyOutcome::Copied { bytes: data.len() as u64 }));
    assert_eq!(locations(&app, &id).await.len(), 2);
    let fast = app.data_dir().join("fast");
    assert_eq!(files_in(&fast), std::slice::from_ref(&id));
    assert!(std::fs::read(fast.join(&id)).expect("copy") == data);
    // Downloads read the heavier store now; both copies agree.
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == data);
    // Never copied twice.
    assert_eq!(copy(&app, &id, "fast").await, Ok(CopyOutcome::AlreadyThere));
    assert_eq!(locations(&app, &id).await.len(), 2);
});

all_databases!(fn a_source_that_does_not_verify_leaves_nothing_in_the_target(app, TWO_STORES) {
    let id = app.create_raw_image().await;
    app.upload(&id, sample(2 << 20, 2)).await.assert_status(204);
    // The stored data changed under Glint (bit rot, a hand edit): same size, other bytes.
    let source = app.data_dir().join("cheap").join(&id);
    let mut damaged = std::fs::read(&source).expect("reads");
    damaged[1000] ^= 0xff;
    std::fs::write(&source, damaged).expect("writes");
    let refused = copy(&app, &id, "fast").await;
    assert!(refused.as_ref().is_err_and(|e| e.contains("damaged") && e.contains("md5")), "{refused:?}");
    assert!(files_in(&app.data_dir().join("fast")).is_empty(), "nothing unverified kept");
    assert_eq!(locations(&app, &id).await.len(), 1);
});

all_databases!(fn data_an_interrupted_copy_left_is_recorded_if_it_verifies(app, TWO_STORES) {
    let fast = app.data_dir().join("fast");
    std::fs::create_dir_all(&fast).expect("store directory");
    // Verified data a killed copy had committed but not recorded: recorded, not copied again.
    let good = app.create_raw_image().await;
    let data = sample(1 << 20, 3);
    app.upload(&good, data.clone()).await.assert_status(204);
    std::fs::write(fast.join(&good), &data).expect("writes");
    assert_eq!(copy(&app, &good, "fast").await, Ok(CopyOutcome::Recovered { bytes: data.len() as u64 }));
    assert_eq!(locations(&app, &good).await.len(), 2);
    // Data that does not verify: removed, and the image copied again.
    let bad = app.create_raw_image().await;
    let data = sample(1 << 20, 4);
    app.upload(&bad, data.clone()).await.assert_status(204);
    std::fs::write(fast.join(&bad), b"half a copy").expect("writes");
    assert_eq!(copy(&app, &bad, "fast").await, Ok(CopyOutcome::Copied { bytes: data.len() as u64 }));
    assert!(std::fs::read(fast.join(&bad)).expect("copy") == data);
});

all_databases!(fn copies_need_several_stores_and_data(app) {
    let id = app.create_raw_image().await;
    let refused = copy(&app, &id, "file").await;
    assert!(refused.is_err_and(|e| e.contains("several stores")));
});

all_databases!(fn a_migration_moves_every_image_and_a_second_run_copies_nothing(app, TWO_STORES) {
    let mut ids = Vec::new();
    for n in 0..5u8 {
        let id = app.create_raw_image().await;
        app.upload(&id, sample(300_000 + usize::from(n), n)).await.assert_status(204);
        ids.push(id);
    }
    // An image with nothing to move, and one in the target already.
    let queued = app.create_raw_image().await;
    assert_eq!(copy(&app, &ids[0], "fast").await, Ok(CopyOutcome::Copied { bytes: 300_000 }));
    let options = glint::cli::MigrateOptions {
        from: "cheap".into(),
        to: "fast".into(),
        delete_source: true,
        parallel: 3,
        dry_run: false,
    };
    glint::cli::migrate(&app.config, &options).await.expect("migrates");
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(files_in(&app.data_dir().join("fast")), expected);
    assert!(files_in(&app.data_dir().join("cheap")).is_empty(), "sources removed");
    for (n, id) in ids.iter().enumerate() {
        let image: Value = app.get(&format!("/v2/images/{id}")).await.json();
        assert_eq!(image["stores"], "fast");
        assert!(app.get(&format!("/v2/images/{id}/file")).await.body == sample(300_000 + n, n as u8));
    }
    assert_eq!(app.get(&format!("/v2/images/{queued}")).await.json()["status"], "queued");
    // Nothing left to do.
    glint::cli::migrate(&app.config, &options).await.expect("migrates again");
    assert_eq!(files_in(&app.data_dir().join("fast")).len(), 5);
});
