//! glance-download: another region's image (a second Glint on loopback) found through the
//! caller's catalog, its metadata and data read with the caller's token.

use axum::body::Body;
use axum::http::Method;
use serde_json::{json, Value};

use super::{finished_task, image, sample};
use crate::all_databases;
use crate::helpers::{TestApp, TestResponse};

/// Another region's image service: a second Glint (no authentication) serving on loopback.
async fn remote_region(app_config: &str) -> (TestApp, String, tokio::task::JoinHandle<()>) {
    let remote = TestApp::start(crate::helpers::Backend::Sqlite, app_config).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let router = remote.router.clone();
    let limits = remote.config.server.connections;
    let task = tokio::spawn(async move {
        let _ = glint::server::serve(listener, router, &limits, std::future::pending()).await;
    });
    (remote, url, task)
}

const TRUSTED_LAB: &str = "[paste_deploy]\nflavor = trusted-auth\n\
    [DEFAULT]\nenabled_import_methods = [glance-direct, web-download, copy-image, glance-download]\n\
    [import_filtering_opts]\nallowed_hosts = 127.0.0.1\nallowed_ports =\n";

fn caller_headers(catalog: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-identity-status", "Confirmed".to_owned()),
        ("x-project-id", "p1".to_owned()),
        ("x-user-id", "u1".to_owned()),
        ("x-roles", "member".to_owned()),
        ("x-auth-token", "the-callers-token".to_owned()),
        ("x-service-catalog", catalog.to_owned()),
        ("content-type", "application/json".to_owned()),
        ("accept", "application/json".to_owned()),
    ]
}

async fn as_caller(
    app: &TestApp,
    method: Method,
    path: &str,
    catalog: &str,
    body: Value,
) -> TestResponse {
    let headers = caller_headers(catalog);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.request(method, path, &headers, Body::from(body.to_string()))
        .await
}

all_databases!(fn glance_download_copies_another_regions_image(app, TRUSTED_LAB) {
    let mut app = app;
    let (remote, remote_url, _server) = remote_region("").await;
    let data = sample(600_000, 4);
    let source = remote
        .create_image(json!({"name": "far", "disk_format": "raw", "container_format": "bare",
                             "hw_disk_bus": "scsi", "os_distro": "debian", "color": "blue"}))
        .await;
    let source_id = source["id"].as_str().unwrap_or_default().to_owned();
    remote.upload(&source_id, data.clone()).await.assert_status(204);
    let catalog = json!([{"type": "image", "name": "glance", "endpoints": [
        {"region": "RegionTwo", "publicURL": remote_url}]}]).to_string();
    // Every request of this test is the caller's.
    for (name, value) in caller_headers(&catalog) {
        if !name.starts_with("content-") && name != "accept" {
            app.default_headers.insert(name, value.parse().expect("header value"));
        }
    }
    // Glance wants formats set before any import, though the remote image's replace them.
    let created = as_caller(&app, Method::POST, "/v2/images", &catalog,
        json!({"name": "near", "disk_format": "qcow2", "container_format": "ovf"})).await;
    created.assert_status(201);
    let id = created.json()["id"].as_str().unwrap_or_default().to_owned();
    for (method, status, message) in [
        (json!({"name": "glance-download", "glance_image_id": source_id}), 400, "'glance_region' needs to be set for glance-download import method".to_owned()),
        (json!({"name": "glance-download", "glance_region": "RegionTwo"}), 400, "'glance_image_id' needs to be set for glance-download import method".to_owned()),
        (json!({"name": "glance-download", "glance_region": "RegionTwo", "glance_image_id": "x"}), 400, "Remote image id does not look like a UUID: x".to_owned()),
    ] {
        let response = as_caller(&app, Method::POST, &format!("/v2/images/{id}/import"), &catalog, json!({"method": method})).await;
        response.assert_status(status);
        assert_eq!(response.error_message(), message);
    }
    let nowhere = as_caller(&app, Method::POST, &format!("/v2/images/{id}/import"), &catalog,
        json!({"method": {"name": "glance-download", "glance_region": "RegionThree", "glance_image_id": source_id}})).await;
    nowhere.assert_status(400);
    assert_eq!(nowhere.error_message(), "public glance endpoint not found for region RegionThree");
    let started = as_caller(&app, Method::POST, &format!("/v2/images/{id}/import"), &catalog,
        json!({"method": {"name": "glance-download", "glance_region": "regiontwo", "glance_image_id": source_id}})).await;
    started.assert_status(202);
    let task = finished_task(&app, &id).await;
    assert_eq!(task["status"], "success", "{task}");
    assert_eq!(task["input"]["import_req"]["method"]["glance_service_interface"], "public");
    let imported = image(&app, &id).await;
    assert_eq!(imported["status"], "active");
    // The remote image's formats and the properties [glance_download_properties] names.
    assert_eq!(imported["disk_format"], "raw");
    assert_eq!(imported["container_format"], "bare");
    assert_eq!(imported["hw_disk_bus"], "scsi");
    assert_eq!(imported["os_distro"], "debian");
    assert!(imported.get("color").is_none());
    assert_eq!(imported["os_hash_value"], source_hash(&remote, &source_id).await);
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == data);
    // A remote image that is not active fails the task; the image goes back to queued.
    let empty = remote.create_raw_image().await;
    let other = as_caller(&app, Method::POST, "/v2/images", &catalog,
        json!({"name": "near2", "disk_format": "raw", "container_format": "bare"})).await.json()["id"]
        .as_str().unwrap_or_default().to_owned();
    as_caller(&app, Method::POST, &format!("/v2/images/{other}/import"), &catalog,
        json!({"method": {"name": "glance-download", "glance_region": "RegionTwo", "glance_image_id": empty}}))
        .await
        .assert_status(202);
    let task = finished_task(&app, &other).await;
    assert_eq!(task["status"], "failure");
    assert_eq!(task["message"], "Source image status should be active instead of queued");
    assert_eq!(image(&app, &other).await["status"], "queued");
});

async fn source_hash(remote: &TestApp, id: &str) -> Value {
    remote.get(&format!("/v2/images/{id}")).await.json()["os_hash_value"].clone()
}
