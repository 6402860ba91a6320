//! Imports as jobs: a job whose node died is taken over, one interrupted again and again
//! is failed, and an image deleted while its import runs ends its task at once with Glance's
//! message, the copy it was writing removed.

use std::time::Duration;

use serde_json::{json, Value};

use super::{
    finished_task, finished_task_after, image, import, sample, stage, Remote, LAB, TWO_STORES,
};
use crate::all_databases;
use crate::helpers::{files_in, TestApp};

/// The tests below start their node without its runner, to stand in for nodes that died.
async fn stalled_app(backend: crate::helpers::Backend, config: &str) -> TestApp {
    TestApp::start_idle(backend, config).await
}

async fn a_job_whose_node_died_is_taken_over(backend: crate::helpers::Backend) {
    let app = stalled_app(backend, "").await;
    let id = app.create_raw_image().await;
    let data = sample(100_000, 8);
    stage(&app, &id, data.clone()).await.assert_status(204);
    import(&app, &id, json!({"method": {"name": "glance-direct"}}))
        .await
        .assert_status(202);
    // Another import of the same image is refused while this one holds the lock.
    let image = super::image(&app, &id).await;
    assert_eq!(image["status"], "importing");
    let task_id = image["os_glance_import_task"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let pending = app.get(&format!("/v2/tasks/{task_id}")).await.json();
    assert_eq!(pending["status"], "pending");
    // The data is staged on this node's disk: only this node (restarted) may run the job.
    let tasks = app.database.task_repo();
    let then = glint::domain::image::now() - chrono::Duration::minutes(10);
    assert!(tasks
        .claim_job("other-node", "other-node/1", then, then)
        .await
        .expect("claims")
        .is_none());
    // The node claims the job and dies: its claim's last heartbeat is ten minutes old.
    let claimed = tasks
        .claim_job(
            &app.config.node_id,
            "dead-node/1",
            then,
            then - chrono::Duration::seconds(1),
        )
        .await
        .expect("claims")
        .expect("a job");
    assert_eq!(claimed.task.id, task_id);
    assert_eq!(
        app.get(&format!("/v2/tasks/{task_id}")).await.json()["status"],
        "processing"
    );
    app.run_jobs();
    let task = finished_task(&app, &id).await;
    assert_eq!(task["status"], "success", "{task}");
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == data);
    // The dead node's claim is worth nothing now.
    assert!(!tasks
        .touch_job(&task_id, "dead-node/1", None, glint::domain::image::now())
        .await
        .expect("touch"));
}

async fn a_job_interrupted_again_and_again_is_failed(backend: crate::helpers::Backend) {
    let app = stalled_app(backend, TWO_STORES).await;
    let id = app.create_raw_image().await;
    app.upload(&id, sample(5000, 1)).await.assert_status(204);
    import(
        &app,
        &id,
        json!({"method": {"name": "copy-image"}, "stores": ["fast"]}),
    )
    .await
    .assert_status(202);
    let locked = import(
        &app,
        &id,
        json!({"method": {"name": "copy-image"}, "stores": ["fast"]}),
    )
    .await;
    locked.assert_status(409);
    assert_eq!(locked.error_message(), "Image has active task");
    // The lock is looked at before the stores, as in Glance.
    let unknown = import(
        &app,
        &id,
        json!({"method": {"name": "copy-image"}, "stores": ["nowhere"]}),
    )
    .await;
    unknown.assert_status(409);
    assert_eq!(unknown.error_message(), "Image has active task");
    let tasks = app.database.task_repo();
    for attempt in 0..3 {
        let then = glint::domain::image::now() - chrono::Duration::minutes(10 - attempt);
        tasks
            .claim_job("dead-node", &format!("dead-node/{attempt}"), then, then)
            .await
            .expect("claims")
            .expect("a job");
    }
    app.run_jobs();
    let task = finished_task(&app, &id).await;
    assert_eq!(task["status"], "failure");
    assert_eq!(
        task["message"],
        "The import was interrupted 3 times (its node stopped); it is not tried again."
    );
    let image = super::image(&app, &id).await;
    assert_eq!(image["status"], "active");
    assert_eq!(image["stores"], "cheap");
    assert!(image.get("os_glance_import_task").is_none());
    // The lock is free again: the copy can be asked for once more, and works.
    let failed = task;
    import(
        &app,
        &id,
        json!({"method": {"name": "copy-image"}, "stores": ["fast"]}),
    )
    .await
    .assert_status(202);
    let task = finished_task_after(&app, &id, &[failed]).await;
    assert_eq!(task["status"], "success", "{task}");
    assert_eq!(super::image(&app, &id).await["stores"], "cheap,fast");
}

mod takeover {
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::a_job_whose_node_died_is_taken_over(Backend::Sqlite).await;
        super::a_job_interrupted_again_and_again_is_failed(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::a_job_whose_node_died_is_taken_over(Backend::Postgres).await;
        super::a_job_interrupted_again_and_again_is_failed(Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mysql() {
        super::a_job_whose_node_died_is_taken_over(Backend::MySql).await;
        super::a_job_interrupted_again_and_again_is_failed(Backend::MySql).await;
    }
}

async fn task(app: &TestApp, task_id: &str) -> Value {
    app.get(&format!("/v2/tasks/{task_id}")).await.json()
}

all_databases!(fn an_image_deleted_mid_import_ends_its_task_at_once(app, LAB) {
    let remote = Remote::start(sample(2 << 20, 5)).await;
    let id = app.create_raw_image().await;
    import(&app, &id, json!({"method": {"name": "web-download", "uri": remote.url("/slow")}}))
        .await
        .assert_status(202);
    let task_id = super::image(&app, &id).await["os_glance_import_task"]
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
