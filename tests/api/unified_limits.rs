//! Keystone's unified limits (`use_keystone_limits`, `[oslo_limit]`) on the lab Keystone: a
//! project of the test's own with its limits, enforced on create and upload, shown by
//! `GET /v2/info/usage`, and a Keystone that cannot be asked refusing rather than letting
//! requests through.

use axum::body::Body;
use axum::http::Method;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};
use crate::keystone_auth::{as_user, config, env, keystone, password, sign_in, Token};

/// A system administrator's token, to manage limits and accounts.
async fn system_admin() -> Token {
    sign_in(
        password("admin", &env("ADMIN_PASSWORD")),
        Some(json!({"system": {"all": true}})),
    )
    .await
}

async fn admin_call(admin: &Token, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, _, answer) = keystone(method, path, &[("x-auth-token", &admin.value)], body).await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

/// The lab's image service id.
async fn image_service(admin: &Token) -> String {
    let services = admin_call(admin, Method::GET, "/services?type=image", None).await;
    services["services"][0]["id"]
        .as_str()
        .expect("an image service")
        .to_owned()
}

/// Defaults generous enough for every project (made once; later runs find them).
async fn ensure_registered_limits(admin: &Token, service: &str) {
    let existing = admin_call(
        admin,
        Method::GET,
        &format!("/registered_limits?service_id={service}"),
        None,
    )
    .await;
    let have: Vec<&str> = existing["registered_limits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["resource_name"].as_str())
        .collect();
    let wanted: Vec<Value> = [
        ("image_size_total", 1000),
        ("image_stage_total", 1000),
        ("image_count_total", 100),
        ("image_count_uploading", 10),
    ]
    .iter()
    .filter(|(name, _)| !have.contains(name))
    .map(|(name, limit)| {
        json!({"service_id": service, "region_id": "RegionOne", "resource_name": name,
               "default_limit": limit})
    })
    .collect();
    if !wanted.is_empty() {
        // Another test may have made them meanwhile: a conflict is as good.
        let (status, _, answer) = keystone(
            Method::POST,
            "/registered_limits",
            &[("x-auth-token", &admin.value)],
            Some(json!({ "registered_limits": wanted })),
        )
        .await;
        assert!(
            status == 201 || status == 409,
            "registered limits: {status} {answer}"
        );
    }
}

/// A project of this test's own, a member user in it, and its limits.
async fn limited_project(limits: &[(&str, i64)]) -> Token {
    let admin = system_admin().await;
    let service = image_service(&admin).await;
    ensure_registered_limits(&admin, &service).await;
    let name = format!("limits-{}", uuid::Uuid::new_v4().simple());
    let project = admin_call(
        &admin,
        Method::POST,
        "/projects",
        Some(json!({"project": {"name": name, "domain_id": "default"}})),
    )
    .await["project"]["id"]
        .as_str()
        .expect("project id")
        .to_owned();
    let user = admin_call(
        &admin,
        Method::POST,
        "/users",
        Some(json!({"user": {"name": name, "domain_id": "default", "password": "pw-limits"}})),
    )
    .await["user"]["id"]
        .as_str()
        .expect("user id")
        .to_owned();
    let roles = admin_call(&admin, Method::GET, "/roles?name=member", None).await;
    let member = roles["roles"][0]["id"].as_str().expect("member role");
    admin_call(
        &admin,
        Method::PUT,
        &format!("/projects/{project}/users/{user}/roles/{member}"),
        None,
    )
    .await;
    let entries: Vec<Value> = limits
        .iter()
        .map(|(resource, limit)| {
            json!({"service_id": service, "region_id": "RegionOne", "project_id": project,
                   "resource_name": resource, "resource_limit": limit})
        })
        .collect();
    admin_call(
        &admin,
        Method::POST,
        "/limits",
        Some(json!({ "limits": entries })),
    )
    .await;
    sign_in(
        password(&name, "pw-limits"),
        Some(json!({"project": {"id": project}})),
    )
    .await
}

fn limits_config(auth_url: &str) -> String {
    config(
        &env("URL"),
        &format!(
            "[DEFAULT]\nuse_keystone_limits = true\n[oslo_limit]\nauth_url = {auth_url}\n\
             auth_type = password\nusername = admin\npassword = {}\nuser_domain_id = default\n\
             system_scope = all\nendpoint_service_type = image\nendpoint_region_name = RegionOne\n",
            env("ADMIN_PASSWORD")
        ),
    )
}

async fn create(app: &TestApp, token: &Token) -> (u16, Value) {
    let response = as_user(
        app,
        token,
        Method::POST,
        "/v2/images",
        Some(json!({
        "name": "limited", "disk_format": "raw", "container_format": "bare"})),
    )
    .await;
    (response.status.as_u16(), response.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_sizes_stop_at_the_projects_limits() {
    let app = TestApp::start(Backend::Sqlite, &limits_config(&env("URL"))).await;
    let user = limited_project(&[("image_count_total", 2), ("image_size_total", 1)]).await;
    let (first, image) = create(&app, &user).await;
    assert_eq!(first, 201);
    let id = image["id"].as_str().expect("id").to_owned();
    assert_eq!(create(&app, &user).await.0, 201);
    let third = as_user(
        &app,
        &user,
        Method::POST,
        "/v2/images",
        Some(json!({"name": "x"})),
    )
    .await;
    third.assert_status(413);
    assert!(
        third.text().contains("image_count_total"),
        "{}",
        third.text()
    );

    let usage = as_user(&app, &user, Method::GET, "/v2/info/usage", None).await;
    usage.assert_status(200);
    let usage = usage.json();
    assert_eq!(
        usage["usage"]["image_count_total"],
        json!({"limit": 2, "usage": 2})
    );
    assert_eq!(
        usage["usage"]["image_size_total"],
        json!({"limit": 1, "usage": 0})
    );
    assert_eq!(usage["usage"]["image_count_uploading"]["limit"], 10);

    // 2 MiB announced against a limit of 1 MiB: refused before a byte is read.
    let upload = |bytes: usize| {
        let app = &app;
        let user = &user;
        let id = id.clone();
        async move {
            let len = bytes.to_string();
            app.request(
                Method::PUT,
                &format!("/v2/images/{id}/file"),
                &[
                    ("x-auth-token", user.value.as_str()),
                    ("content-type", "application/octet-stream"),
                    ("content-length", len.as_str()),
                ],
                Body::from(vec![7u8; bytes]),
            )
            .await
        }
    };
    let big = upload(2 << 20).await;
    big.assert_status(413);
    assert!(big.text().contains("image_size_total"), "{}", big.text());
    let shown = as_user(&app, &user, Method::GET, &format!("/v2/images/{id}"), None).await;
    assert_eq!(shown.json()["status"], "queued");
    upload(512 << 10).await.assert_status(204);

    // Room again once an image is gone.
    as_user(
        &app,
        &user,
        Method::DELETE,
        &format!("/v2/images/{id}"),
        None,
    )
    .await
    .assert_status(204);
    assert_eq!(create(&app, &user).await.0, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_that_cannot_be_read_refuse_and_usage_is_empty_without_them() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let app = TestApp::start(
        Backend::Sqlite,
        &limits_config(&format!("http://127.0.0.1:{closed}/v3")),
    )
    .await;
    let user = limited_project(&[("image_count_total", 5)]).await;
    let refused = as_user(
        &app,
        &user,
        Method::POST,
        "/v2/images",
        Some(json!({"name": "x"})),
    )
    .await;
    refused.assert_status(503);

    let plain = TestApp::start(Backend::Sqlite, &config(&env("URL"), "")).await;
    let usage = as_user(&plain, &user, Method::GET, "/v2/info/usage", None).await;
    usage.assert_status(200);
    assert_eq!(usage.json(), json!({"usage": {}}));
}

/// Eight creates at once against a limit of three, on each database: exactly three images.
async fn concurrent_creates_stop_at_the_limit(backend: Backend) {
    let app = TestApp::start(backend, &limits_config(&env("URL"))).await;
    let user = limited_project(&[("image_count_total", 3)]).await;
    let attempts = (0..8).map(|_| create(&app, &user));
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 413),
        "{statuses:?}"
    );
    let usage = as_user(&app, &user, Method::GET, "/v2/info/usage", None).await;
    assert_eq!(
        usage.json()["usage"]["image_count_total"],
        json!({"limit": 3, "usage": 3})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_cannot_overshoot_the_count_limit_sqlite() {
    concurrent_creates_stop_at_the_limit(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_cannot_overshoot_the_count_limit_postgres() {
    concurrent_creates_stop_at_the_limit(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_cannot_overshoot_the_count_limit_mysql() {
    concurrent_creates_stop_at_the_limit(Backend::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_stop_at_the_uploading_limit() {
    let app = TestApp::start(Backend::Sqlite, &limits_config(&env("URL"))).await;
    let user = limited_project(&[("image_count_uploading", 0)]).await;
    let (status, image) = create(&app, &user).await;
    assert_eq!(status, 201);
    let id = image["id"].as_str().expect("id").to_owned();
    let refused = app
        .request(
            Method::PUT,
            &format!("/v2/images/{id}/file"),
            &[
                ("x-auth-token", user.value.as_str()),
                ("content-type", "application/octet-stream"),
            ],
            Body::from(vec![1u8; 1024]),
        )
        .await;
    refused.assert_status(413);
    assert!(
        refused.text().contains("image_count_uploading"),
        "{}",
        refused.text()
    );
    let shown = as_user(&app, &user, Method::GET, &format!("/v2/images/{id}"), None).await;
    assert_eq!(shown.json()["status"], "queued");
}
