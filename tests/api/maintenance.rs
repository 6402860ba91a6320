//! The maintenance task of a serving node: reconciling abandoned uploads, and scrubbing when
//! `scrub_in_serve` is set.

use std::time::Duration;

use crate::all_databases;
use crate::helpers::TestApp;
use crate::image_data::sample;

/// An image whose upload was abandoned by a node that stopped long ago.
async fn abandoned_upload(app: &TestApp) -> String {
    let id = app.create_raw_image().await;
    app.execute(&format!(
        "UPDATE images SET status = 'saving', upload_heartbeat = '2000-01-01 00:00:00' WHERE id = '{id}'"
    ))
    .await;
    id
}

/// A deleted image whose data waits for the scrubber (`delayed_delete`).
async fn data_waiting_for_the_scrubber(app: &TestApp) -> String {
    let id = app.create_raw_image().await;
    app.upload(&id, sample(1000)).await.assert_status(204);
    app.delete(&format!("/v2/images/{id}"))
        .await
        .assert_status(204);
    assert_eq!(app.stored_files(), [id.as_str()]);
    id
}

async fn status_of(app: &TestApp, id: &str) -> String {
    app.scalar(&format!("SELECT status FROM images WHERE id = '{id}'"))
        .await
}

/// Waits up to 10 s for `done`.
async fn eventually(mut done: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..100 {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

all_databases!(fn maintenance_reconciles_and_scrubs_at_once_when_scrubbing_in_serve(app, "[DEFAULT]\ndelayed_delete = true\nscrub_in_serve = true\n") {
    let abandoned = abandoned_upload(&app).await;
    let deleted = data_waiting_for_the_scrubber(&app).await;
    let task = tokio::spawn(glint::maintenance::run(app.services.data.clone(), app.services.imports.clone(), app.config.datapath.clone()));
    assert!(eventually(async || status_of(&app, &abandoned).await == "queued").await);
    assert!(eventually(async || app.stored_files().is_empty()).await, "{:?}", app.stored_files());
    assert_eq!(status_of(&app, &deleted).await, "deleted");
    task.abort();
});

all_databases!(fn maintenance_leaves_deleted_data_alone_without_scrub_in_serve(app, "[DEFAULT]\ndelayed_delete = true\n") {
    let abandoned = abandoned_upload(&app).await;
    let deleted = data_waiting_for_the_scrubber(&app).await;
    let task = tokio::spawn(glint::maintenance::run(app.services.data.clone(), app.services.imports.clone(), app.config.datapath.clone()));
    assert!(eventually(async || status_of(&app, &abandoned).await == "queued").await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.stored_files(), [deleted.as_str()]);
    assert_eq!(status_of(&app, &deleted).await, "pending_delete");
    task.abort();
});

all_databases!(fn recovery_at_start_resets_stale_uploads(app) {
    let abandoned = abandoned_upload(&app).await;
    glint::maintenance::recover(&app.services.data).await.expect("recovers");
    assert_eq!(status_of(&app, &abandoned).await, "queued");
});
