//! Notifications on the real RabbitMQ (127.0.0.1:5672, guest): each test gives Glint its own
//! exchange and topic, binds its own queue to them, makes API calls and reads what arrives
//! with an AMQP client, checking oslo.messaging's envelope and Glance's payloads.
//! The broker outage test runs a private node (`scripts/lab-rabbitmq`) and stops it mid-run.
//! Notifications do not depend on the database, so these run on SQLite only.

mod broker;
mod outage;

use std::time::Duration;

use axum::body::Body;
use axum::http::Method;
use bytes::Bytes;
use futures_util::stream;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp, PATCH_V21};
use broker::{
    assert_image_payload, assert_oslo_envelope, is_isotime, keys, Listener, Received, BROKER_PORT,
};
async fn download(app: &TestApp, id: &str, range: Option<&str>) -> Vec<u8> {
    let mut headers = vec![];
    if let Some(range) = range {
        headers.push(("range", range));
    }
    let answer = app
        .request(
            Method::GET,
            &format!("/v2/images/{id}/file"),
            &headers,
            Body::empty(),
        )
        .await;
    assert!(answer.status.is_success(), "{}", answer.text());
    answer.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_images_life_is_told_in_glances_notifications() {
    let listener = Listener::new(BROKER_PORT).await;
    let app = TestApp::start(Backend::Sqlite, &listener.config("messagingv2", "")).await;

    let created = app
        .create_image(
            json!({"name": "first", "disk_format": "raw", "container_format": "bare",
            "tags": ["t1"], "hw_cpu_cores": "2"}),
        )
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    let event = listener.expect("image.create").await;
    assert_oslo_envelope(&event, &listener, "INFO");
    assert_image_payload(&event, &id, "queued");
    let payload = event.payload();
    assert_eq!(payload["name"], "first");
    assert_eq!(payload["properties"], json!({"hw_cpu_cores": "2"}));
    assert_eq!(payload["tags"], json!(["t1"]));
    assert_eq!(payload["visibility"], "shared");
    assert_eq!(payload["is_public"], false);
    assert_eq!(payload["deleted"], false);
    assert_eq!(payload["deleted_at"], Value::Null);
    assert_eq!(payload["size"], Value::Null);
    assert_eq!(payload["min_disk"], 0);
    assert_eq!(payload["protected"], false);

    app.patch(
        &format!("/v2/images/{id}"),
        PATCH_V21,
        &json!([{"op": "replace", "path": "/name", "value": "second"}]),
    )
    .await
    .assert_status(200);
    let event = listener.expect("image.update").await;
    assert_image_payload(&event, &id, "queued");
    assert_eq!(event.payload()["name"], "second");

    app.put(&format!("/v2/images/{id}/tags/t2"))
        .await
        .assert_status(204);
    let event = listener.expect("image.update").await;
    assert_eq!(event.payload()["tags"], json!(["t1", "t2"]));
    app.delete(&format!("/v2/images/{id}/tags/t1"))
        .await
        .assert_status(204);
    let event = listener.expect("image.update").await;
    assert_eq!(event.payload()["tags"], json!(["t2"]));

    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    app.upload(&id, data.clone()).await.assert_status(204);
    let saving = listener.expect("image.update").await;
    assert_image_payload(&saving, &id, "saving");
    let prepare = listener.expect("image.prepare").await;
    assert_oslo_envelope(&prepare, &listener, "INFO");
    assert_image_payload(&prepare, &id, "saving");
    assert_eq!(
        prepare.payload()["os_glance_importing_to_stores"],
        json!([])
    );
    assert_eq!(prepare.payload()["os_glance_failed_import"], json!([]));
    assert!(
        prepare.payload().get("backend").is_none(),
        "one store: no backend"
    );
    let upload = listener.expect("image.upload").await;
    assert_image_payload(&upload, &id, "active");
    assert_eq!(upload.payload()["size"], 1000);
    assert_eq!(upload.payload()["checksum"], format!("{:x}", md5_of(&data)));
    let activate = listener.expect("image.activate").await;
    assert_image_payload(&activate, &id, "active");
    let update = listener.expect("image.update").await;
    assert_image_payload(&update, &id, "active");

    assert_eq!(download(&app, &id, None).await, data);
    let send = listener.expect("image.send").await;
    assert_oslo_envelope(&send, &listener, "INFO");
    assert_eq!(
        send.payload(),
        &json!({"bytes_sent": 1000, "image_id": id, "owner_id": null,
            "receiver_tenant_id": null, "receiver_user_id": null})
    );
    assert_eq!(download(&app, &id, Some("bytes=0-99")).await.len(), 100);
    let send = listener.expect("image.send").await;
    assert_eq!(send.payload()["bytes_sent"], 100);
    assert_eq!(send.message["priority"], "INFO");

    app.post(&format!("/v2/images/{id}/actions/deactivate"), &json!({}))
        .await
        .assert_status(204);
    let event = listener.expect("image.update").await;
    assert_image_payload(&event, &id, "deactivated");
    app.post(&format!("/v2/images/{id}/actions/reactivate"), &json!({}))
        .await
        .assert_status(204);
    assert_image_payload(&listener.expect("image.update").await, &id, "active");

    app.delete(&format!("/v2/images/{id}"))
        .await
        .assert_status(204);
    let event = listener.expect("image.delete").await;
    assert_oslo_envelope(&event, &listener, "INFO");
    assert_image_payload(&event, &id, "deleted");
    assert_eq!(event.payload()["deleted"], true);
    assert!(
        is_isotime(&event.payload()["deleted_at"]),
        "{}",
        event.payload()
    );

    assert!(listener
        .next_within(Duration::from_millis(300))
        .await
        .is_none());
    listener.clean_up().await;
}

fn md5_of(data: &[u8]) -> impl std::fmt::LowerHex {
    let digest = openssl::hash::hash(openssl::hash::MessageDigest::md5(), data).expect("md5");
    u128::from_be_bytes(digest.as_ref().try_into().expect("16 bytes"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upload_is_an_error_notice_and_the_image_back_in_queued() {
    let listener = Listener::new(BROKER_PORT).await;
    let config = listener.config("messagingv2", "image_size_cap = 1000000");
    let app = TestApp::start(Backend::Sqlite, &config).await;
    let id = app.create_raw_image().await;
    listener.expect("image.create").await;
    // Chunked: the cap is found mid-stream, after the image was claimed.
    let frames: Vec<Result<Bytes, std::io::Error>> = (0..20)
        .map(|_| Ok(Bytes::from(vec![7u8; 100_000])))
        .collect();
    let answer = app
        .request(
            Method::PUT,
            &format!("/v2/images/{id}/file"),
            &[("content-type", "application/octet-stream")],
            Body::from_stream(stream::iter(frames)),
        )
        .await;
    answer.assert_status(413);
    assert_image_payload(&listener.expect("image.update").await, &id, "saving");
    listener.expect("image.prepare").await;
    let error = listener.expect("image.upload").await;
    assert_oslo_envelope(&error, &listener, "ERROR");
    let message = error.payload().as_str().expect("a plain message");
    assert!(
        message.starts_with(&format!(
            "Failed to upload image data for image {id} due to internal error: The incoming image is too large"
        )),
        "{message}"
    );
    assert_image_payload(&listener.expect("image.update").await, &id, "queued");
    listener.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_are_member_notifications() {
    let listener = Listener::new(BROKER_PORT).await;
    let app = TestApp::start(Backend::Sqlite, &listener.config("messagingv2", "")).await;
    let created = app
        .create_image(json!({"name": "shared", "visibility": "shared"}))
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    listener.expect("image.create").await;
    let member_keys = [
        "created_at",
        "deleted",
        "deleted_at",
        "image_id",
        "member_id",
        "status",
        "updated_at",
    ];

    app.post(
        &format!("/v2/images/{id}/members"),
        &json!({"member": "project-b"}),
    )
    .await
    .assert_status(200);
    let event = listener.expect("image.member.create").await;
    assert_oslo_envelope(&event, &listener, "INFO");
    assert_eq!(keys(event.payload()), member_keys);
    assert_eq!(event.payload()["image_id"], id.as_str());
    assert_eq!(event.payload()["member_id"], "project-b");
    assert_eq!(event.payload()["status"], "pending");
    assert!(is_isotime(&event.payload()["created_at"]));

    app.request(
        Method::PUT,
        &format!("/v2/images/{id}/members/project-b"),
        &[("content-type", "application/json")],
        Body::from(json!({"status": "accepted"}).to_string()),
    )
    .await
    .assert_status(200);
    let event = listener.expect("image.member.update").await;
    assert_eq!(event.payload()["status"], "accepted");
    assert_eq!(event.payload()["deleted"], false);

    app.delete(&format!("/v2/images/{id}/members/project-b"))
        .await
        .assert_status(204);
    let event = listener.expect("image.member.delete").await;
    assert_eq!(keys(event.payload()), member_keys);
    assert_eq!(event.payload()["deleted"], true);
    assert!(is_isotime(&event.payload()["deleted_at"]));
    listener.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_tells_its_task_from_creation_to_run() {
    let listener = Listener::new(BROKER_PORT).await;
    let app = TestApp::start(Backend::Sqlite, &listener.config("messagingv2", "")).await;
    let id = app.create_raw_image().await;
    listener.expect("image.create").await;
    let data = vec![3u8; 5000];
    app.request(
        Method::PUT,
        &format!("/v2/images/{id}/stage"),
        &[
            ("content-type", "application/octet-stream"),
            ("content-length", "5000"),
        ],
        Body::from(data),
    )
    .await
    .assert_status(204);
    assert_image_payload(&listener.expect("image.update").await, &id, "uploading");
    assert_image_payload(&listener.expect("image.update").await, &id, "uploading");
    app.post(
        &format!("/v2/images/{id}/import"),
        &json!({"method": {"name": "glance-direct"}}),
    )
    .await
    .assert_status(202);
    let mut tasks = Vec::new();
    let mut images = Vec::new();
    while let Some(event) = listener.next_within(Duration::from_secs(20)).await {
        let done = event.event_type() == "task.run";
        if event.event_type().starts_with("task.") {
            tasks.push(event);
        } else {
            images.push(event);
        }
        if done {
            break;
        }
    }
    // The import flow writes through Glance's set_data: prepare, upload, activate, update.
    let image_events: Vec<(&str, &Value)> = images
        .iter()
        .map(|e| (e.event_type(), &e.payload()["status"]))
        .collect();
    assert_eq!(
        image_events,
        [
            ("image.update", &json!("importing")),
            ("image.prepare", &json!("importing")),
            ("image.upload", &json!("active")),
            ("image.activate", &json!("active")),
            ("image.update", &json!("active"))
        ]
    );
    assert_eq!(
        images[0].payload()["properties"]["os_glance_importing_to_stores"],
        ""
    );
    assert_image_payload(&images[2], &id, "active");
    assert_eq!(images[2].payload()["size"], 5000);
    let types: Vec<&str> = tasks.iter().map(Received::event_type).collect();
    assert_eq!(
        types,
        ["task.create", "task.processing", "task.success", "task.run"]
    );
    let statuses: Vec<&Value> = tasks.iter().map(|t| &t.payload()["status"]).collect();
    assert_eq!(statuses, ["pending", "processing", "success", "success"]);
    for task in &tasks {
        assert_oslo_envelope(task, &listener, "INFO");
        let payload = task.payload();
        assert_eq!(
            keys(payload),
            [
                "created_at",
                "deleted",
                "deleted_at",
                "expires_at",
                "id",
                "message",
                "owner",
                "result",
                "status",
                "type",
                "updated_at"
            ]
        );
        assert_eq!(payload["type"], "api_image_import");
        // Never the task's input or result: they may hold credentials.
        assert_eq!(payload["result"], Value::Null);
        assert_eq!(payload["message"], Value::Null);
        assert!(is_isotime(&payload["expires_at"]));
        assert_eq!(payload["id"], tasks[0].payload()["id"]);
    }
    listener.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_notifications_are_not_sent_by_type_or_group() {
    let listener = Listener::new(BROKER_PORT).await;
    let config = listener.config("messagingv2", "disabled_notifications = image.update, task");
    let app = TestApp::start(Backend::Sqlite, &config).await;
    let id = app.create_raw_image().await;
    listener.expect("image.create").await;
    app.patch(
        &format!("/v2/images/{id}"),
        PATCH_V21,
        &json!([{"op": "replace", "path": "/name", "value": "quiet"}]),
    )
    .await
    .assert_status(200);
    app.put(&format!("/v2/images/{id}/tags/x"))
        .await
        .assert_status(204);
    app.delete(&format!("/v2/images/{id}"))
        .await
        .assert_status(204);
    // Sent in order: had an update gone out, it would come before the delete.
    listener.expect("image.delete").await;
    assert!(listener
        .next_within(Duration::from_millis(300))
        .await
        .is_none());
    listener.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_noop_driver_sends_nothing() {
    let listener = Listener::new(BROKER_PORT).await;
    let app = TestApp::start(Backend::Sqlite, &listener.config("noop", "")).await;
    assert!(!app.services.images.events().enabled("image.create"));
    let id = app.create_raw_image().await;
    app.delete(&format!("/v2/images/{id}"))
        .await
        .assert_status(204);
    assert!(listener.next_within(Duration::from_secs(1)).await.is_none());
    listener.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_messaging_driver_sends_the_unwrapped_message_to_every_topic() {
    let first = Listener::new(BROKER_PORT).await;
    // A second topic on the same exchange.
    let second_topic = format!("{}-b", first.topic);
    let second = Listener::bind(BROKER_PORT, first.exchange.clone(), second_topic.clone()).await;
    let config = first
        .config("messaging", "default_publisher_id = image.node-7")
        .replace(
            &format!("topics = {}", first.topic),
            &format!("topics = {}, {second_topic}", first.topic),
        );
    let app = TestApp::start(Backend::Sqlite, &config).await;
    let id = app.create_raw_image().await;
    for listener in [&first, &second] {
        let event = listener.expect("image.create").await;
        assert_eq!(event.routing_key, format!("{}.info", listener.topic));
        assert!(
            event.body.get("oslo.version").is_none(),
            "1.0 has no envelope"
        );
        assert_eq!(
            keys(&event.body),
            [
                "_unique_id",
                "event_type",
                "message_id",
                "payload",
                "priority",
                "publisher_id",
                "timestamp"
            ]
        );
        assert_eq!(event.body["publisher_id"], "image.node-7");
        assert_eq!(event.payload()["id"], id.as_str());
    }
    second.clean_up().await;
    first.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_store_upload_names_its_backend_in_image_prepare() {
    let listener = Listener::new(BROKER_PORT).await;
    let config = listener.config("messagingv2", "enabled_backends = fast:file, cheap:file")
        + "[glance_store]\ndefault_backend = fast\n[fast]\nweight = 100\n[cheap]\nweight = 10\n";
    let app = TestApp::start(Backend::Sqlite, &config).await;
    let id = app.create_raw_image().await;
    listener.expect("image.create").await;
    app.request(
        Method::PUT,
        &format!("/v2/images/{id}/file"),
        &[
            ("content-type", "application/octet-stream"),
            ("content-length", "10"),
            ("x-image-meta-store", "cheap"),
        ],
        Body::from(vec![1u8; 10]),
    )
    .await
    .assert_status(204);
    listener.expect("image.update").await;
    let prepare = listener.expect("image.prepare").await;
    assert_eq!(prepare.payload()["backend"], "cheap");
    let upload = listener.expect("image.upload").await;
    assert!(
        upload.payload().get("backend").is_none(),
        "{}",
        upload.payload()
    );
    assert_eq!(upload.payload()["size"], 10);
    listener.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadef_changes_reach_the_broker() {
    let listener = Listener::new(BROKER_PORT).await;
    let config = listener.config("messagingv2", "disabled_notifications = metadef_object");
    let app = TestApp::start(Backend::Sqlite, &config).await;
    app.post(
        "/v2/metadefs/namespaces",
        &json!({"namespace": "OS::Glint::Told", "visibility": "public"}),
    )
    .await
    .assert_status(201);
    let event = listener.expect("metadef_namespace.create").await;
    assert_oslo_envelope(&event, &listener, "INFO");
    assert_eq!(event.payload()["namespace"], "OS::Glint::Told");
    assert_eq!(event.payload()["visibility"], "public");

    let ns = "/v2/metadefs/namespaces/OS::Glint::Told";
    app.post(&format!("{ns}/objects"), &json!({"name": "quiet"}))
        .await
        .assert_status(201);
    app.post(&format!("{ns}/tags/told"), &json!({}))
        .await
        .assert_status(201);
    // The object's event is disabled: the tag's comes next.
    let event = listener.expect("metadef_tag.create").await;
    assert_eq!(event.payload()["namespace"], "OS::Glint::Told");
    assert_eq!(event.payload()["name"], "told");
    app.delete(ns).await.assert_status(204);
    let event = listener.expect("metadef_namespace.delete").await;
    assert_eq!(event.payload()["namespace"], "OS::Glint::Told");
    listener.clean_up().await;
}
