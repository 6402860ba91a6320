//! The cache API's answers: routes and methods, bad input, the cache switched off, and the
//! policies persona by persona.

use std::path::Path;

use axum::body::Body;
use axum::http::Method;

use super::CacheApp;
use crate::all_databases;
use crate::cache_tests;
use crate::helpers::Backend;
use crate::image_data::sample;

cache_tests!(fn bad_input_gets_glances_answers(app) {
    let unknown = uuid::Uuid::new_v4().to_string();
    let missing = app.app.put(&format!("/v2/cache/{unknown}")).await;
    missing.assert_status(404);
    assert_eq!(missing.error_message(), format!("Image {unknown} not found."));
    app.app.put("/v2/cache/not-an-image").await.assert_status(404);
    let gone = app.app.delete(&format!("/v2/cache/{unknown}")).await;
    gone.assert_status(404);
    assert_eq!(gone.error_message(), format!("Image {unknown} not found."));
    app.app.delete("/v2/cache/..%2F..%2Fetc").await.assert_status(404);
    app.app.get(&format!("/v2/cache/nodes/{unknown}")).await.assert_status(404);

    let queued = app.app.create_raw_image().await;
    let refused = app.app.put(&format!("/v2/cache/{queued}")).await;
    refused.assert_status(400);
    assert_eq!(refused.error_message(), "Only images with status active can be targeted for queueing");

    let both = app.app.request(Method::DELETE, "/v2/cache",
        &[("x-image-cache-clear-target", "both"), ("accept", "application/json")], Body::empty()).await;
    both.assert_status(400);
    assert_eq!(both.error_message(),
        "If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string.");

    // Methods each path does not have: 405 with its Allow list.
    for (method, path, allow) in [
        (Method::POST, "/v2/cache", "GET,DELETE"),
        (Method::GET, "/v2/cache/clean", "POST"),
        (Method::DELETE, "/v2/cache/prune", "POST"),
        (Method::POST, &*format!("/v2/cache/{unknown}"), "PUT,DELETE"),
    ] {
        let response = app.app.request(method.clone(), path, &[], Body::empty()).await;
        response.assert_status(405);
        let mut got: Vec<String> = response.header("allow").unwrap_or_default()
            .split(',').map(|m| m.trim().to_owned()).collect();
        got.sort();
        let mut want: Vec<String> = allow.split(',').map(str::to_owned).collect();
        want.sort();
        assert_eq!(got, want, "{method} {path}");
    }
});

cache_tests!(fn entries_and_the_queue_are_removed_by_the_api(app) {
    let data = sample(10_000);
    let (one, two) = (app.image(&data).await, app.image(&data).await);
    for id in [&one, &two] {
        app.download(id, None).await;
        app.wait_cached(id).await;
    }
    app.app.delete(&format!("/v2/cache/{one}")).await.assert_status(204);
    assert_eq!(app.listed().await, [two.as_str()]);
    assert!(!app.cached_file(&one).exists());
    // A queue entry, as an earlier process left it.
    let waiting = app.image(&data).await;
    std::fs::write(app.dir.path().join("queue").join(&waiting), b"").expect("queues");
    let only_cache = app.app.request(Method::DELETE, "/v2/cache",
        &[("x-image-cache-clear-target", "cache")], Body::empty()).await;
    only_cache.assert_status(204);
    assert!(app.listed().await.is_empty());
    assert_eq!(app.app.get("/v2/cache").await.json()["queued_images"], serde_json::json!([waiting]));
    app.app.request(Method::DELETE, "/v2/cache", &[("x-image-cache-clear-target", "QUEUE")],
        Body::empty()).await.assert_status(204);
    assert_eq!(app.app.get("/v2/cache").await.json()["queued_images"], serde_json::json!([]));
    // Everything.
    app.download(&one, None).await;
    app.wait_cached(&one).await;
    app.app.delete("/v2/cache").await.assert_status(204);
    assert!(app.listed().await.is_empty());
    assert_eq!(crate::helpers::files_in(app.dir.path()), ["incomplete", "invalid", "queue"]);
});

all_databases!(fn without_image_cache_dir_the_api_is_not_there(app) {
    for (method, path) in [
        (Method::GET, "/v2/cache".to_owned()),
        (Method::DELETE, "/v2/cache".to_owned()),
        (Method::POST, "/v2/cache/clean".to_owned()),
        (Method::POST, "/v2/cache/prune".to_owned()),
        (Method::GET, format!("/v2/cache/nodes/{}", uuid::Uuid::new_v4())),
    ] {
        let response = app.request(method, &path, &[("accept", "application/json")], Body::empty()).await;
        response.assert_status(404);
        assert_eq!(response.error_message(), "Caching via API is not supported at this site.");
    }
    let id = app.create_raw_image().await;
    app.upload(&id, b"data".to_vec()).await.assert_status(204);
    let queued = app.put(&format!("/v2/cache/{id}")).await;
    queued.assert_status(404);
    assert_eq!(queued.error_message(), "Caching via API is not supported at this site.");
    let versions = app.get("/versions").await.json();
    assert_eq!(versions["versions"][0]["id"], "v2.15");
});

const TRUSTED: &str = "[paste_deploy]\nflavor = trusted-auth\n";

fn trusted(dir: &Path) -> String {
    format!(
        "[DEFAULT]\nimage_cache_dir = {}\nworker_self_reference_url = {}\n{TRUSTED}",
        dir.display(),
        super::NODE
    )
}

fn persona(project: &'static str, roles: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("x-identity-status", "Confirmed"),
        ("x-project-id", project),
        ("x-user-id", "user"),
        ("x-roles", roles),
        ("accept", "application/json"),
    ]
}

async fn personas(backend: Backend) {
    let app = CacheApp::start_with(backend, trusted, std::time::Duration::ZERO).await;
    let admin = persona("p1", "admin,member,reader");
    let member = persona("p1", "member,reader");
    let reader = persona("p1", "reader");
    let created = app
        .app
        .request(
            Method::POST,
            "/v2/images",
            &[admin.as_slice(), &[("content-type", "application/json")]].concat(),
            Body::from(r#"{"disk_format":"raw","container_format":"bare"}"#),
        )
        .await;
    created.assert_status(201);
    let id = created.json()["id"].as_str().unwrap_or_default().to_owned();
    app.app
        .request(
            Method::PUT,
            &format!("/v2/images/{id}/file"),
            &[
                admin.as_slice(),
                &[("content-type", "application/octet-stream")],
            ]
            .concat(),
            Body::from(vec![5u8; 4096]),
        )
        .await
        .assert_status(204);
    let routes = [
        (Method::GET, "/v2/cache".to_owned(), 200),
        (Method::PUT, format!("/v2/cache/{id}"), 202),
        (Method::GET, format!("/v2/cache/nodes/{id}"), 200),
        (Method::POST, "/v2/cache/clean".to_owned(), 200),
        (Method::POST, "/v2/cache/prune".to_owned(), 200),
        (Method::DELETE, format!("/v2/cache/{id}"), 204),
        (Method::DELETE, "/v2/cache".to_owned(), 204),
    ];
    for headers in [&member, &reader] {
        for (method, path, _) in &routes {
            let response = app
                .app
                .request(method.clone(), path, headers, Body::empty())
                .await;
            response.assert_status(403);
        }
    }
    for (method, path, status) in &routes {
        let response = app
            .app
            .request(method.clone(), path, &admin, Body::empty())
            .await;
        response.assert_status(*status);
    }
    // Without a caching flavor, downloads do not use the cache; queued images still fill it.
    app.app
        .request(
            Method::PUT,
            &format!("/v2/cache/{id}"),
            &admin,
            Body::empty(),
        )
        .await
        .assert_status(202);
    for _ in 0..200 {
        if app.cached_file(&id).exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(app.cached_file(&id).exists());
    let reads = app.reads();
    let download = app
        .app
        .request(
            Method::GET,
            &format!("/v2/images/{id}/file"),
            &member,
            Body::empty(),
        )
        .await;
    download.assert_status(200);
    assert_eq!(app.reads(), reads + 1, "read from the store");
    let versions = app.app.get("/versions").await.json();
    assert_eq!(
        versions["versions"][0],
        serde_json::json!({"id": "v2.18", "status": "CURRENT",
        "links": [{"rel": "self", "href": "http://glint.test:9292/v2/"}]})
    );
    app.app
        .request(Method::GET, "/v2.18/cache", &admin, Body::empty())
        .await
        .assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_api_is_for_administrators_sqlite() {
    personas(Backend::Sqlite).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_api_is_for_administrators_postgres() {
    personas(Backend::Postgres).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_api_is_for_administrators_mysql() {
    personas(Backend::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caching_flavor_without_what_it_needs_does_not_start() {
    for (text, option) in [
        ("[paste_deploy]\nflavor = caching\n", "image_cache_dir"),
        (
            "[DEFAULT]\nimage_cache_dir = /tmp/x\n",
            "worker_self_reference_url",
        ),
        (
            "[DEFAULT]\nimage_cache_driver = xattr\n",
            "image_cache_driver",
        ),
    ] {
        let ini = glint::config::ini::Ini::parse(text).expect("parses");
        let err = glint::config::Config::from_ini(&ini, Path::new("/d")).expect_err("refused");
        assert!(err.to_string().contains(option), "{err}");
    }
}
