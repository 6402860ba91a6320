//! Swift's multi-tenant mode (`swift_store_multi_tenant`) on the lab's OpenStack Swift with
//! keystoneauth, Glint validating tokens with the lab Keystone: each image in a container of
//! its own in the uploading project's account, written and read with the request's token,
//! opened to other projects by the container's ACL while the image is public or community.

use axum::body::Body;
use axum::http::Method;
use bytes::Bytes;
use serde_json::json;

use crate::helpers::{Backend, TestApp, PATCH_V21};
use crate::keystone_auth::{as_user, config, env, http_call, user, Token};

/// The lab Swift's address, from its tempauth URL (`http://127.0.0.1:8081/auth/v1.0`).
fn swift_base() -> String {
    let auth = std::env::var("GLINT_TEST_OSWIFT_AUTH_URL")
        .expect("GLINT_TEST_OSWIFT_AUTH_URL is not set: start scripts/lab-swift and eval its env");
    auth.trim_end_matches("/auth/v1.0").to_owned()
}

async fn app(container: &str) -> TestApp {
    let text = format!(
        "{}[DEFAULT]\nenabled_backends = objects:swift\n\
         [glance_store]\ndefault_backend = objects\n\
         [objects]\nswift_store_multi_tenant = true\nswift_store_container = {container}\n\
         swift_store_create_container_on_put = true\n\
         swift_store_large_object_size = 1\nswift_store_large_object_chunk_size = 1\n",
        config(&env("URL"), "")
    );
    TestApp::start(Backend::Sqlite, &text).await
}

async fn upload(app: &TestApp, token: &Token, id: &str, data: &[u8]) -> u16 {
    app.request(
        Method::PUT,
        &format!("/v2/images/{id}/file"),
        &[
            ("x-auth-token", &token.value),
            ("content-type", "application/octet-stream"),
        ],
        Body::from(data.to_vec()),
    )
    .await
    .status
    .as_u16()
}

async fn download(app: &TestApp, token: &Token, id: &str) -> (u16, Vec<u8>) {
    let response = app
        .request(
            Method::GET,
            &format!("/v2/images/{id}/file"),
            &[("x-auth-token", &token.value)],
            Body::empty(),
        )
        .await;
    (response.status.as_u16(), response.body)
}

async fn set_visibility(app: &TestApp, token: &Token, id: &str, visibility: &str) {
    app.request(
        Method::PATCH,
        &format!("/v2/images/{id}"),
        &[("x-auth-token", &token.value), ("content-type", PATCH_V21)],
        Body::from(
            json!([{"op": "replace", "path": "/visibility", "value": visibility}]).to_string(),
        ),
    )
    .await
    .assert_status(200);
}

/// Swift's answer to `method` on `path` of `account`'s storage URL, with `token`.
async fn swift(method: Method, account: &str, path: &str, token: &Token) -> u16 {
    let url = format!("{}/v1/KEY_{account}/{path}", swift_base());
    http_call(
        method,
        &url,
        &[("x-auth-token", &token.value)],
        Bytes::new(),
    )
    .await
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_live_in_their_projects_account_and_follow_their_visibility() {
    let container = format!("glint-mt-{}", uuid::Uuid::new_v4().simple());
    let app = app(&container).await;
    let alice = user("alice", "alpha").await;
    let bob = user("bob", "beta").await;
    let created = as_user(
        &app,
        &alice,
        Method::POST,
        "/v2/images",
        Some(json!({"name": "mt", "disk_format": "raw", "container_format": "bare"})),
    )
    .await;
    created.assert_status(201);
    let id = created.json()["id"].as_str().expect("id").to_owned();
    // Larger than a segment: a manifest and its segments, all in the image's container.
    let data: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(upload(&app, &alice, &id, &data).await, 204);

    let image_container = format!("{container}_{id}");
    let object = format!("{image_container}/{id}");
    let alpha = alice.project_id().to_owned();
    assert_eq!(swift(Method::HEAD, &alpha, &object, &alice).await, 200);
    assert_eq!(download(&app, &alice, &id).await, (200, data.clone()));

    // Private: another project learns nothing from Glint, and Swift lets it read nothing.
    assert_eq!(download(&app, &bob, &id).await.0, 404);
    assert_eq!(swift(Method::GET, &alpha, &object, &bob).await, 403);

    // Community: readable by every project, through Glint with its own token.
    set_visibility(&app, &alice, &id, "community").await;
    assert_eq!(download(&app, &bob, &id).await, (200, data.clone()));
    assert_eq!(swift(Method::GET, &alpha, &object, &bob).await, 200);

    // Private again: the ACL is withdrawn.
    set_visibility(&app, &alice, &id, "private").await;
    assert_eq!(swift(Method::GET, &alpha, &object, &bob).await, 403);

    // Shared with bob's project: his token may read it, until the membership ends.
    set_visibility(&app, &alice, &id, "shared").await;
    let members = format!("/v2/images/{id}/members");
    let member = bob.project_id().to_owned();
    as_user(
        &app,
        &alice,
        Method::POST,
        &members,
        Some(json!({"member": member})),
    )
    .await
    .assert_status(200);
    assert_eq!(swift(Method::GET, &alpha, &object, &bob).await, 200);
    assert_eq!(download(&app, &bob, &id).await, (200, data.clone()));
    as_user(
        &app,
        &alice,
        Method::DELETE,
        &format!("{members}/{member}"),
        None,
    )
    .await
    .assert_status(204);
    assert_eq!(swift(Method::GET, &alpha, &object, &bob).await, 403);

    // Deleting the image removes the object, its segments and the container.
    as_user(
        &app,
        &alice,
        Method::DELETE,
        &format!("/v2/images/{id}"),
        None,
    )
    .await
    .assert_status(204);
    assert_eq!(
        swift(Method::HEAD, &alpha, &image_container, &alice).await,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_object_store_in_the_catalog_or_a_token_nothing_is_written() {
    let container = format!("glint-mt-{}", uuid::Uuid::new_v4().simple());
    let raw = json!({"name": "mt", "disk_format": "raw", "container_format": "bare"});
    // The catalog's object-store endpoints are all in RegionOne.
    let elsewhere = TestApp::start(
        Backend::Sqlite,
        &format!(
            "{}[DEFAULT]\nenabled_backends = objects:swift\n[glance_store]\n\
             default_backend = objects\n[objects]\nswift_store_multi_tenant = true\n\
             swift_store_container = {container}\nswift_store_create_container_on_put = true\n\
             swift_store_region = Atlantis\n",
            config(&env("URL"), "")
        ),
    )
    .await;
    let alice = user("alice", "alpha").await;
    let created = as_user(
        &elsewhere,
        &alice,
        Method::POST,
        "/v2/images",
        Some(raw.clone()),
    )
    .await;
    created.assert_status(201);
    let id = created.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(upload(&elsewhere, &alice, &id, b"data").await, 503);
    let image = as_user(
        &elsewhere,
        &alice,
        Method::GET,
        &format!("/v2/images/{id}"),
        None,
    )
    .await;
    assert_eq!(image.json()["status"], "queued");

    // No Keystone in front: the store has no token to act with.
    let noauth = TestApp::start(
        Backend::Sqlite,
        &format!(
            "[DEFAULT]\nenabled_backends = objects:swift\n[glance_store]\n\
             default_backend = objects\n[objects]\nswift_store_multi_tenant = true\n\
             swift_store_container = {container}\n"
        ),
    )
    .await;
    let created = noauth
        .request(
            Method::POST,
            "/v2/images",
            &[("content-type", "application/json")],
            Body::from(raw.to_string()),
        )
        .await;
    created.assert_status(201);
    let id = created.json()["id"].as_str().expect("id").to_owned();
    let response = noauth
        .request(
            Method::PUT,
            &format!("/v2/images/{id}/file"),
            &[("content-type", "application/octet-stream")],
            Body::from("data"),
        )
        .await;
    response.assert_status(503);
    assert!(
        response.text().contains("misconfigured"),
        "{}",
        response.text()
    );
    let image = noauth.get(&format!("/v2/images/{id}")).await;
    assert_eq!(image.json()["status"], "queued");
}
