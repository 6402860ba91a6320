//! The 2.17 locations API and the http store: a web server's image registered with and
//! without validation data, read, hashed and inspected before the image is active, then
//! served through the http store (ranges too); Glance's refusals for status, role, store and
//! hash; and the URL filter a user's location must pass.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::all_databases;
use crate::helpers::TestApp;

const HTTP_STORE: &str = "[glance_store]\nstores = file, http\n\
    [import_filtering_opts]\nallowed_hosts = 127.0.0.1\nallowed_ports =\n";

fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 241) as u8).collect()
}

fn sha512(data: &[u8]) -> String {
    openssl::sha::sha512(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A web server on loopback serving `data` at `/disk.raw` (with `Range`).
async fn web_server(data: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let data = data.clone();
            tokio::spawn(async move {
                let Some(head) = crate::helpers::read_request_head(&mut socket).await else {
                    return;
                };
                let head_only = head.starts_with("HEAD");
                let range = head.lines().find_map(|l| {
                    let line = l.to_ascii_lowercase();
                    let (a, b) = line.strip_prefix("range: bytes=")?.split_once('-')?;
                    Some((
                        a.trim().parse::<usize>().ok()?,
                        b.trim().parse::<usize>().ok()?,
                    ))
                });
                let (status, extra, body) = if !head.contains(" /disk.raw ") {
                    ("404 Not Found", String::new(), Vec::new())
                } else if let Some((a, b)) = range {
                    (
                        "206 Partial Content",
                        format!("Content-Range: bytes {a}-{b}/{}\r\n", data.len()),
                        data[a..=b].to_vec(),
                    )
                } else {
                    ("200 OK", String::new(), data.clone())
                };
                let mut out = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
                    body.len()
                )
                .into_bytes();
                if !head_only {
                    out.extend_from_slice(&body);
                }
                let _ = socket.write_all(&out).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{address}/disk.raw")
}

/// The image's task for location `url`, once it has ended.
async fn task_for(app: &TestApp, id: &str, url: &str) -> Value {
    task_seen_by(app, &[("accept", "application/json")], id, url).await
}

/// `task_for`, asked with `headers`.
async fn task_seen_by(app: &TestApp, headers: &[(&str, &str)], id: &str, url: &str) -> Value {
    for _ in 0..300 {
        let tasks = app
            .request(
                axum::http::Method::GET,
                &format!("/v2/images/{id}/tasks"),
                headers,
                axum::body::Body::empty(),
            )
            .await
            .json();
        let task = tasks["tasks"]
            .as_array()
            .and_then(|tasks| tasks.iter().find(|t| t["input"]["loc_url"] == url));
        if let Some(task) = task {
            if matches!(task["status"].as_str(), Some("success" | "failure")) {
                return task.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the location import of {id} did not end");
}

all_databases!(fn a_registered_web_image_is_verified_and_served(app, HTTP_STORE) {
    let data = sample(400_000);
    let url = web_server(data.clone()).await;
    let id = app.create_raw_image().await;
    let added = app
        .post(&format!("/v2/images/{id}/locations"), &json!({
            "url": url, "validation_data": {"os_hash_algo": "sha512", "os_hash_value": sha512(&data)}}))
        .await;
    added.assert_status(202);
    assert!(added.body.is_empty());
    let task = task_for(&app, &id, &url).await;
    assert_eq!(task["type"], "location_import");
    assert_eq!(task["status"], "success", "{task}");
    assert_eq!(task["input"]["loc_url"], url.as_str());
    let image: Value = app.get(&format!("/v2/images/{id}")).await.json();
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], data.len());
    assert_eq!(image["os_hash_value"], sha512(&data));
    assert!(image["checksum"].is_string());
    assert!(image.get("os_glance_import_task").is_none());
    // Served through the http store, whole and in part.
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == data);
    let part = app.request(axum::http::Method::GET, &format!("/v2/images/{id}/file"), &[("range", "bytes=100-199")], axum::body::Body::empty()).await;
    part.assert_status(206);
    assert!(part.body == data[100..200]);
    let listed = app.get(&format!("/v2/images/{id}/locations")).await;
    listed.assert_status(200);
    assert_eq!(listed.json(), json!([{"url": url, "metadata": {}}]));
    // Only a queued image takes a location.
    let again = app.post(&format!("/v2/images/{id}/locations"), &json!({"url": url})).await;
    again.assert_status(409);
    assert_eq!(again.error_message(), "It's not allowed to add locations if image status is active.");
});

all_databases!(fn a_location_whose_data_does_not_match_is_not_recorded(app, HTTP_STORE) {
    let data = sample(10_000);
    let url = web_server(data).await;
    let id = app.create_raw_image().await;
    let wrong = "0".repeat(128);
    app.post(&format!("/v2/images/{id}/locations"), &json!({
        "url": url, "validation_data": {"os_hash_algo": "sha512", "os_hash_value": wrong}}))
        .await
        .assert_status(202);
    let task = task_for(&app, &id, &url).await;
    assert_eq!(task["status"], "failure");
    assert!(task["message"].as_str().unwrap_or_default().starts_with(&format!("os_hash_value: ({wrong}) not matched")), "{task}");
    let image: Value = app.get(&format!("/v2/images/{id}")).await.json();
    assert_eq!(image["status"], "queued");
    assert_eq!(image["size"], Value::Null);
    assert_eq!(app.get(&format!("/v2/images/{id}/locations")).await.json(), json!([]));
    // A location that is not there fails the same way, the image untouched.
    let missing = url.replace("/disk.raw", "/other.raw");
    app.post(&format!("/v2/images/{id}/locations"), &json!({"url": missing})).await.assert_status(202);
    let task = task_for(&app, &id, &missing).await;
    assert_eq!(task["status"], "failure");
    assert!(task["message"].as_str().unwrap_or_default().starts_with("Invalid location"), "{task}");
});

all_databases!(fn users_register_only_web_locations_the_filter_passes(app, HTTP_STORE) {
    let id = app.create_raw_image().await;
    for (body, status, message) in [
        (json!({}), 400, "Provided object does not match schema 'location': 'url' is a required property"),
        (json!({"url": "file:///etc/passwd"}), 403, "http store must be enabled to use location API by normal user."),
        (json!({"url": "http://169.254.169.254/latest/meta-data/"}), 400, "URI for add location does not pass filtering: http://169.254.169.254/latest/meta-data/"),
        (json!({"url": "http://127.0.0.1/x", "validation_data": {"os_hash_algo": "sha512"}}), 400, "Provided object does not match schema 'location': 'os_hash_value' is a dependency of 'os_hash_algo'"),
    ] {
        let response = app.post(&format!("/v2/images/{id}/locations"), &body).await;
        response.assert_status(status);
        assert_eq!(response.error_message(), message, "{body}");
    }
    assert_eq!(app.get(&format!("/v2/images/{id}/tasks")).await.json(), json!({"tasks": []}));
});

all_databases!(fn without_an_http_store_users_register_nothing(app) {
    let id = app.create_raw_image().await;
    let response = app.post(&format!("/v2/images/{id}/locations"), &json!({"url": "http://example.com/x.raw"})).await;
    response.assert_status(403);
    assert_eq!(response.error_message(), "http store must be enabled to use location API by normal user.");
});

const SHOWN: &str = "[DEFAULT]\nshow_multiple_locations = true\nimage_location_quota = 2\n\
    [glance_store]\nstores = file, http\n\
    [import_filtering_opts]\nallowed_hosts = 127.0.0.1\nallowed_ports =\n";

async fn patch(app: &TestApp, id: &str, body: Value) -> crate::helpers::TestResponse {
    app.patch(
        &format!("/v2/images/{id}"),
        "application/openstack-images-v2.1-json-patch",
        &body,
    )
    .await
}

all_databases!(fn json_patch_adds_replaces_and_removes_locations(app, SHOWN) {
    let data = sample(70_000);
    let url = web_server(data.clone()).await;
    let id = app.create_raw_image().await;
    let md5: String = openssl::hash::hash(openssl::hash::MessageDigest::md5(), &data)
        .expect("md5").iter().map(|b| format!("{b:02x}")).collect();
    let added = patch(&app, &id, json!([{"op": "add", "path": "/locations/-", "value": {
        "url": url, "metadata": {"note": "web"},
        "validation_data": {"checksum": md5, "os_hash_algo": "sha512", "os_hash_value": sha512(&data)}}}])).await;
    added.assert_status(200);
    let image = added.json();
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], data.len());
    assert_eq!(image["checksum"], md5.as_str());
    assert_eq!(image["locations"], json!([{"url": url, "metadata": {"note": "web"}}]));
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == data);
    for (body, status, message) in [
        (json!([{"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {"note": "web"}}}]), 400, format!("The location {url} already exists")),
        (json!([{"op": "add", "path": "/locations/x", "value": {"url": url, "metadata": {}}}]), 400, "Invalid position for adding a location.".to_owned()),
        (json!([{"op": "add", "path": "/locations/-", "value": {"url": "file:///etc/passwd", "metadata": {}}}]), 400, "Invalid location".to_owned()),
        (json!([{"op": "add", "path": "/locations/-", "value": {"url": "http://169.254.169.254/latest/meta-data/", "metadata": {}}}]), 400, "Invalid location".to_owned()),
        (json!([{"op": "add", "path": "/locations", "value": {"url": url, "metadata": {}}}]), 400, "Invalid JSON pointer for this resource: '/locations'".to_owned()),
        (json!([{"op": "remove", "path": "/locations/0"}]), 403, "Cannot remove last location in the image.".to_owned()),
        (json!([{"op": "replace", "path": "/locations", "value": []}]), 403, "Cannot set locations to empty list.".to_owned()),
        (json!([{"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {"n": 2},
            "validation_data": {"os_hash_algo": "sha512", "os_hash_value": "0".repeat(128)}}}]), 409, "os_hash_value is already set with a different value".to_owned()),
    ] {
        let response = patch(&app, &id, body.clone()).await;
        response.assert_status(status);
        assert_eq!(response.error_message(), message, "{body}");
    }
    // The same URL with other metadata is another location; the quota (2) stops a third.
    patch(&app, &id, json!([{"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {"n": 2}}}])).await.assert_status(200);
    let over = patch(&app, &id, json!([{"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {"n": 3}}}])).await;
    over.assert_status(413);
    assert_eq!(over.error_message(), "The limit has been exceeded on the number of allowed image locations. Attempted: 3, Maximum: 2");
    // Replace may only reorder or re-describe the same locations.
    let other = url.replace("disk.raw", "other.raw");
    let refused = patch(&app, &id, json!([{"op": "replace", "path": "/locations", "value": [{"url": other, "metadata": {}}]}])).await;
    refused.assert_status(400);
    assert!(refused.error_message().starts_with("Original locations is not empty: "));
    let replaced = patch(&app, &id, json!([{"op": "replace", "path": "/locations", "value": [
        {"url": url, "metadata": {"note": "first"}}, {"url": url, "metadata": {"note": "second"}}]}])).await;
    replaced.assert_status(200);
    let removed = patch(&app, &id, json!([{"op": "remove", "path": "/locations/1"}])).await;
    removed.assert_status(200);
    assert_eq!(removed.json()["locations"].as_array().map(Vec::len), Some(1));
    // The web server's data is untouched by the removal: the image still reads.
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == data);
});

all_databases!(fn a_queued_image_takes_its_first_location_by_replace(app, SHOWN) {
    let data = sample(5_000);
    let url = web_server(data.clone()).await;
    let id = app.create_raw_image().await;
    let replaced = patch(&app, &id, json!([{"op": "replace", "path": "/locations", "value": [{"url": url, "metadata": {}}]}])).await;
    replaced.assert_status(200);
    assert_eq!(replaced.json()["status"], "active");
    assert_eq!(replaced.json()["size"], data.len());
    let bare = app.create_image(json!({"disk_format": "raw"})).await;
    let refused = patch(&app, bare["id"].as_str().unwrap_or_default(), json!([{"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {}}}])).await;
    refused.assert_status(400);
    assert_eq!(refused.error_message(), "Properties disk_format, container_format must be set prior to saving data.");
});

all_databases!(fn invisible_locations_cannot_be_patched(app) {
    let id = app.create_raw_image().await;
    for (op, path, verb) in [("add", "/locations/-", "add"), ("remove", "/locations/0", "remove"), ("replace", "/locations", "update")] {
        let response = patch(&app, &id, json!([{"op": op, "path": path, "value": [{"url": "http://example.com/x", "metadata": {}}]}])).await;
        response.assert_status(403);
        assert_eq!(response.error_message(), format!("It's not allowed to {verb} locations if locations are invisible."));
    }
});

const TRUSTED_HTTP_STORE: &str = "[paste_deploy]\nflavor = trusted-auth\n\
    [glance_store]\nstores = file, http\n\
    [import_filtering_opts]\nallowed_hosts = 127.0.0.1\nallowed_ports =\n";

/// Trusted identity headers for `project` with `roles`, and `service_roles` as
/// keystonemiddleware passes a service token's.
fn identity<'a>(
    project: &'a str,
    roles: &'a str,
    service_roles: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("x-identity-status", "Confirmed"),
        ("x-user-id", "u"),
        ("x-project-id", project),
        ("x-roles", roles),
        ("content-type", "application/json"),
        ("accept", "application/json"),
    ];
    if !service_roles.is_empty() {
        headers.push(("x-service-roles", service_roles));
    }
    headers
}

async fn create_as(app: &TestApp, headers: &[(&str, &str)], visibility: &str) -> String {
    let created = app
        .request(
            axum::http::Method::POST,
            "/v2/images",
            headers,
            axum::body::Body::from(
                json!({"disk_format": "raw", "container_format": "bare", "visibility": visibility})
                    .to_string(),
            ),
        )
        .await;
    created.assert_status(201);
    created.json()["id"].as_str().expect("id").to_owned()
}

async fn add_location_as(
    app: &TestApp,
    headers: &[(&str, &str)],
    id: &str,
    url: &str,
) -> crate::helpers::TestResponse {
    app.request(
        axum::http::Method::POST,
        &format!("/v2/images/{id}/locations"),
        headers,
        axum::body::Body::from(json!({"url": url}).to_string()),
    )
    .await
}

all_databases!(fn a_service_token_lets_a_user_register_any_store_and_services_only_their_own(app, TRUSTED_HTTP_STORE) {
    let alice = identity("p-alpha", "member,reader", "");
    let alice_via_nova = identity("p-alpha", "member,reader", "service");
    let nova = identity("p-service", "service", "");
    let admin = identity("p-admin", "admin,member,reader", "");
    // A user alone may register only web locations; with a service's token beside hers, any.
    let id = create_as(&app, &alice, "private").await;
    let rbd = "rbd://fsid/images/0123/snap";
    let refused = add_location_as(&app, &alice, &id, rbd).await;
    refused.assert_status(403);
    assert_eq!(refused.error_message(), "http store must be enabled to use location API by normal user.");
    add_location_as(&app, &alice_via_nova, &id, rbd).await.assert_status(202);
    let task = task_seen_by(&app, &admin, &id, rbd).await;
    assert_eq!(task["status"], "failure", "{task}");
    // The URL filter applies to services too.
    let id = create_as(&app, &alice, "private").await;
    let metadata = "http://169.254.169.254/latest/meta-data/";
    let filtered = add_location_as(&app, &alice_via_nova, &id, metadata).await;
    filtered.assert_status(400);
    assert_eq!(filtered.error_message(), format!("URI for add location does not pass filtering: {metadata}"));
    // A service that does not own a public image is let in, and its task refuses it, as the
    // caller's own context refuses Glance's task: the image stays queued, unread.
    let data = sample(10_000);
    let url = web_server(data).await;
    let public = create_as(&app, &admin, "public").await;
    add_location_as(&app, &nova, &public, &url).await.assert_status(202);
    let task = task_seen_by(&app, &admin, &public, &url).await;
    assert_eq!(task["status"], "failure", "{task}");
    assert_eq!(task["message"], "You do not own this image");
    let image = app.request(axum::http::Method::GET, &format!("/v2/images/{public}"), &admin, axum::body::Body::empty()).await.json();
    assert_eq!(image["status"], "queued");
    // The image's owner, through Nova, succeeds.
    let id = create_as(&app, &alice, "private").await;
    add_location_as(&app, &alice_via_nova, &id, &url).await.assert_status(202);
    assert_eq!(task_seen_by(&app, &admin, &id, &url).await["status"], "success");
    // An admin of the system scope hears the status of an image that is not queued (Glance
    // checks it before the policy), and not found otherwise.
    let system = [("x-identity-status", "Confirmed"), ("x-user-id", "s"), ("openstack-system-scope", "all"),
        ("x-roles", "admin,member,reader"), ("content-type", "application/json")];
    add_location_as(&app, &system, &id, &url).await.assert_status(409);
    let queued = create_as(&app, &alice, "private").await;
    add_location_as(&app, &system, &queued, &url).await.assert_status(404);
});
