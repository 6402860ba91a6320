//! An image deleted while its import runs: the job ends at once with Glance's message, and
//! the copy it was writing is removed.

use std::time::Duration;

use super::{image, import, sample, Remote, LAB};
use crate::all_databases;
use crate::helpers::{files_in, TestApp};
use serde_json::{json, Value};

async fn task(app: &TestApp, task_id: &str) -> Value {
    app.get(&format!("/v2/tasks/{task_id}")).await.json()
}

all_databases!(fn an_image_deleted_mid_import_ends_its_task_at_once(app, LAB) {
    let remote = Remote::start(sample(2 << 20, 5)).await;
    let id = app.create_raw_image().await;
    import(&app, &id, json!({"method": {"name": "web-download", "uri": remote.url("/slow")}}))
        .await
        .assert_status(202);
    let task_id = image(&app, &id).await["os_glance_import_task"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for _ in 0..100 {
        if task(&app, &task_id).await["status"] == "processing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.delete(&format!("/v2/images/{id}")).await.assert_status(204);
    // The download takes 2 s; the task ends soon after, not at another node's takeover.
    let mut ended = Value::Null;
    for _ in 0..100 {
        ended = task(&app, &task_id).await;
        if ended["status"] == "failure" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ended["status"], "failure", "{ended}");
    assert_eq!(ended["message"], "Image has been deleted, aborting import.");
    assert!(files_in(&app.data_dir().join("images")).is_empty());
});
