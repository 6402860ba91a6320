//! Hostile and failing conditions: costly queries, input no database can store, values out of
//! range, concurrent quota races, node restarts, data left without a record, and the header and
//! range edges of the wire protocol. Lost and stalled database servers: `database_outages.rs`.

use std::time::Duration;

use axum::body::Body;
use axum::http::Method;
use serde_json::json;

use crate::all_databases;
use crate::helpers::{Backend, TestApp};
use crate::image_data::{image, sample, start_upload};

fn tags_query(count: usize) -> String {
    (0..count)
        .map(|n| format!("tag=t{n}"))
        .collect::<Vec<_>>()
        .join("&")
}

all_databases!(fn long_filter_lists_are_refused_at_once(app) {
    let started = std::time::Instant::now();
    let response = app.get(&format!("/v2/images?{}", tags_query(1000))).await;
    response.assert_status(400);
    assert!(response.error_message().contains("Too many tag and property filters: 1000"), "{}", response.text());
    let properties: String = (0..999).map(|n| format!("p{n}=v")).collect::<Vec<_>>().join("&");
    app.get(&format!("/v2/images?{properties}")).await.assert_status(400);
    let values: String = (0..1001).map(|n| format!("n{n}")).collect::<Vec<_>>().join(",");
    let response = app.get(&format!("/v2/images?name=in:{values}")).await;
    response.assert_status(400);
    assert!(response.error_message().contains("Too many filter values"), "{}", response.text());
    // Refusals cost nothing: generous bound, not a benchmark.
    assert!(started.elapsed() < Duration::from_secs(10));
});

all_databases!(fn many_tag_and_property_filters_still_filter_exactly(app) {
    let tags: Vec<String> = (0..40).map(|n| format!("t{n}")).collect();
    let mut body = json!({"name": "rich", "tags": tags});
    for n in 0..24 {
        body[format!("p{n}")] = json!(format!("v{n}"));
    }
    let rich = app.create_image(body).await["id"].as_str().unwrap_or_default().to_owned();
    app.create_image(json!({"name": "poor", "tags": ["t0", "t1"], "p0": "v0"})).await;

    let properties: String = (0..24).map(|n| format!("p{n}=v{n}")).collect::<Vec<_>>().join("&");
    let query = format!("/v2/images?{}&{properties}", tags_query(40));
    let response = app.get(&query).await;
    response.assert_status(200);
    let ids: Vec<String> = response.json()["images"].as_array().into_iter().flatten()
        .filter_map(|i| i["id"].as_str().map(str::to_owned)).collect();
    assert_eq!(ids, vec![rich.clone()]);

    // Two tags both images have; a repeated tag counts once.
    let both = app.get("/v2/images?tag=t0&tag=t1&tag=t1").await.json();
    assert_eq!(both["images"].as_array().map(Vec::len), Some(2));
    // One tag missing, or one property different: nothing.
    let none = app.get("/v2/images?tag=t0&tag=absent").await.json();
    assert_eq!(none["images"].as_array().map(Vec::len), Some(0));
    let none = app.get("/v2/images?p0=v0&p1=other").await.json();
    assert_eq!(none["images"].as_array().map(Vec::len), Some(0));
    let one = app.get("/v2/images?p0=v0&p1=v1").await.json();
    assert_eq!(one["images"][0]["id"], rich.as_str());
    // 64 subquery filters is the limit, and is served.
    let response = app.get(&format!("/v2/images?{}", tags_query(64))).await;
    response.assert_status(200);
    app.get(&format!("/v2/images?{}", tags_query(65))).await.assert_status(400);
});

all_databases!(fn nul_characters_are_refused_naming_the_field(app) {
    let refused = |response: crate::helpers::TestResponse, field: &str| {
        response.assert_status(400);
        let message = response.error_message();
        assert!(message.contains(&format!("'{field}'")) && message.contains("NUL"), "{message}");
    };
    refused(app.post("/v2/images", &json!({"name": "a\u{0}b"})).await, "name");
    refused(app.post("/v2/images", &json!({"os_distro": "x\u{0}"})).await, "os_distro");
    refused(app.post("/v2/images", &json!({"tags": ["ok", "t\u{0}"]})).await, "tags");
    refused(app.post("/v2/images", &json!({"bad\u{0}key": "v"})).await, "property name");
    let id = app.create_raw_image().await;
    refused(
        app.patch(&format!("/v2/images/{id}"), crate::helpers::PATCH_V21,
            &json!([{"op": "add", "path": "/os_distro", "value": "a\u{0}"}])).await,
        "os_distro",
    );
    refused(app.put(&format!("/v2/images/{id}/tags/a%00b")).await, "tag");
    // A property name longer than its column is refused as on create, not failed in the write.
    let long = "k".repeat(256);
    let response = app
        .patch(&format!("/v2/images/{id}"), crate::helpers::PATCH_V21,
            &json!([{"op": "add", "path": format!("/{long}"), "value": "v"}]))
        .await;
    response.assert_status(400);
    assert!(response.error_message().contains("255"), "{}", response.text());
    refused(app.get("/v2/images?name=a%00b").await, "name");
    refused(app.get("/v2/images?os_distro=%00").await, "os_distro");
    refused(app.get("/v2/images?tag=%00").await, "tag");
    // Nothing was stored on the way.
    let listed = app.get("/v2/images").await.json();
    assert_eq!(listed["images"].as_array().map(Vec::len), Some(1));
    assert!(app.get(&format!("/v2/images/{id}")).await.json()["tags"].as_array().is_some_and(Vec::is_empty));
});

all_databases!(fn boot_minimums_beyond_the_column_are_refused_never_zeroed(app) {
    for value in ["9223372036854775808", "18446744073709551615", "1e30", "2147483648"] {
        let body = format!(r#"{{"name": "big", "min_disk": {value}}}"#);
        let response = app.request(Method::POST, "/v2/images",
            &[("content-type", "application/json"), ("accept", "application/json")],
            Body::from(body)).await;
        response.assert_status(400);
        // Past 64 bits: Glance's range message; an exponent: the schema's integer check.
        let text = response.text();
        assert!(text.contains("out of range") || text.contains("is not of type 'integer'"), "{value}: {text}");
        let body = format!(r#"[{{"op": "replace", "path": "/min_ram", "value": {value}}}]"#);
        let id = app.create_raw_image().await;
        let response = app.request(Method::PATCH, &format!("/v2/images/{id}"),
            &[("content-type", crate::helpers::PATCH_V21), ("accept", "application/json")],
            Body::from(body)).await;
        response.assert_status(400);
        assert_eq!(image(&app, &id).await["min_ram"], 0);
    }
    let listed = app.get("/v2/images?name=big").await.json();
    assert_eq!(listed["images"].as_array().map(Vec::len), Some(0));
});

all_databases!(fn count_quotas_hold_under_concurrent_writes(app, "[DEFAULT]\nimage_tag_quota = 10\nimage_property_quota = 10\n") {
    let tags: Vec<String> = (0..8).map(|n| format!("t{n}")).collect();
    let mut body = json!({"tags": tags});
    for n in 0..8 {
        body[format!("p{n}")] = json!("v");
    }
    let id = app.create_image(body).await["id"].as_str().unwrap_or_default().to_owned();
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for n in 0..12 {
        let (tag_app, tag_id) = (app.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            tag_app.put(&format!("/v2/images/{tag_id}/tags/new{n}")).await.status.as_u16()
        }));
        let (app, id) = (app.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            app.patch(&format!("/v2/images/{id}"), crate::helpers::PATCH_V21,
                &json!([{"op": "add", "path": format!("/new{n}"), "value": "v"}])).await.status.as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("request task"));
    }
    assert!(statuses.iter().all(|s| matches!(s, 200 | 204 | 409 | 413 | 503)), "{statuses:?}");
    assert!(statuses.contains(&413), "{statuses:?}");
    let shown = image(&app, &id).await;
    let tag_count = shown["tags"].as_array().map(Vec::len).unwrap_or(0);
    let extra = |k: &str| {
        let digits = k.strip_prefix("new").or_else(|| k.strip_prefix('p'));
        digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    };
    let property_count = shown.as_object().map(|o| o.keys().filter(|k| extra(k)).count()).unwrap_or(0);
    assert!(tag_count <= 10, "{tag_count} tags");
    assert!(property_count <= 10, "{property_count} properties: {shown}");
    assert_eq!(tag_count, 10, "the quota fills up");
});

all_databases!(fn a_restarted_node_resets_its_own_uploads_at_once(app, "[DEFAULT]\nnode_id = node-a:9292\n") {
    let own = app.create_raw_image().await;
    let other = app.create_raw_image().await;
    let now = "2099-01-01 00:00:00";
    app.execute(&format!("UPDATE images SET status = 'saving', upload_claim = 'node-a:9292/1', upload_heartbeat = '{now}' WHERE id = '{own}'")).await;
    app.execute(&format!("UPDATE images SET status = 'saving', upload_claim = 'node-a:92920/1', upload_heartbeat = '{now}' WHERE id = '{other}'")).await;
    assert_eq!(app.services.data.reset_own_uploads().await.expect("resets"), 1);
    assert_eq!(image(&app, &own).await["status"], "queued");
    // Another node's live upload (however similar its name) is left alone.
    assert_eq!(image(&app, &other).await["status"], "saving");
    app.upload(&own, b"after restart".to_vec()).await.assert_status(204);
});

all_databases!(fn data_no_location_names_is_swept_by_the_scrubber(app) {
    // An upload that completed normally keeps its data.
    let kept = app.create_raw_image().await;
    app.upload(&kept, sample(1000)).await.assert_status(204);
    // Data an upload committed but never recorded, for an image that was then deleted.
    let deleted = app.create_raw_image().await;
    std::fs::write(app.images_dir.join(&deleted), b"orphan").expect("writes");
    app.delete(&format!("/v2/images/{deleted}")).await.assert_status(204);
    // Unrecorded data of a queued image: recent data stays (an upload may be recording it),
    // old data goes.
    let recent = app.create_raw_image().await;
    std::fs::write(app.images_dir.join(&recent), b"recent").expect("writes");
    let old = app.create_raw_image().await;
    let path = app.images_dir.join(&old);
    std::fs::write(&path, b"old").expect("writes");
    let file = std::fs::File::options().write(true).open(&path).expect("opens");
    file.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600)).expect("sets mtime");
    // Data of an image being uploaded stays, whatever its age.
    let uploading = app.create_raw_image().await;
    let (frames, upload) = start_upload(&app, &uploading, sample(1000)).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    std::fs::write(app.images_dir.join(&unknown), b"no image").expect("writes");

    let report = app.services.data.scrub().await.expect("scrubs");
    assert_eq!(report.orphans, 3, "{report:?}");
    let files = app.stored_files();
    assert!(files.contains(&kept) && files.contains(&recent), "{files:?}");
    assert!(!files.contains(&deleted) && !files.contains(&old) && !files.contains(&unknown), "{files:?}");
    let data = app.get(&format!("/v2/images/{kept}/file")).await;
    data.assert_status(200);
    assert_eq!(data.body, sample(1000));
    drop(frames);
    let _ = upload.await;
});

all_databases!(fn the_orphan_sweep_keeps_data_waiting_for_glance_s_scrubber_and_foreign_files(app, "[DEFAULT]\nscrub_time = 86400\n") {
    // Glance's delayed delete marks the image and its location both `deleted` and
    // `pending_delete`; the data must wait for `scrub_time`, not go with the orphans.
    let pending = app.create_raw_image().await;
    app.upload(&pending, sample(1000)).await.assert_status(204);
    app.execute(&format!("UPDATE images SET status = 'pending_delete', deleted = true, deleted_at = '2026-01-01 00:00:00' WHERE id = '{pending}'")).await;
    app.execute(&format!("UPDATE image_locations SET status = 'pending_delete', deleted = true, deleted_at = '2026-01-01 00:00:00' WHERE image_id = '{pending}'")).await;
    // Files the operator put in the directory are not Glint's to remove.
    std::fs::write(app.images_dir.join("README"), b"operator notes").expect("writes");
    let report = app.services.data.scrub().await.expect("scrubs");
    assert_eq!((report.removed, report.orphans), (0, 0), "{report:?}");
    let files = app.stored_files();
    assert!(files.contains(&pending), "{files:?}");
    assert!(app.images_dir.join("README").exists());
});

all_databases!(fn health_check_reports_an_exhausted_pool(app, "[database]\nmax_pool_size = 1\n") {
    app.request(Method::GET, "/healthcheck", &[], Body::empty()).await.assert_status(200);
    // Hold the only read connection, as a long query would.
    let held = match &app.database {
        glint::db::Database::Postgres(pool) => HeldConnection::Postgres(pool.acquire().await.expect("acquires")),
        glint::db::Database::MySql(pool) => HeldConnection::MySql(pool.acquire().await.expect("acquires")),
        glint::db::Database::Sqlite { read, .. } => HeldConnection::Sqlite(read.acquire().await.expect("acquires")),
    };
    let response = app.request(Method::GET, "/healthcheck", &[], Body::empty()).await;
    response.assert_status(503);
    assert!(response.text().contains("degraded"), "{}", response.text());
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.request(Method::GET, "/healthcheck", &[], Body::empty()).await.assert_status(200);
});

#[allow(dead_code)]
enum HeldConnection {
    Postgres(glint::db::PooledConnection<sqlx::Postgres>),
    MySql(glint::db::PooledConnection<sqlx::MySql>),
    Sqlite(glint::db::PooledConnection<sqlx::Sqlite>),
}

all_databases!(fn refusals_before_the_body_is_read_close_the_connection(app) {
    let id = app.create_raw_image().await;
    let response = app.request(Method::PUT, &format!("/v2/images/{id}/file"),
        &[("content-type", "text/plain"), ("content-length", "5")], Body::from("hello")).await;
    response.assert_status(415);
    assert_eq!(response.header("connection"), Some("close"));
    app.upload(&id, b"data".to_vec()).await.assert_status(204);
    let response = app.upload(&id, b"again".to_vec()).await;
    response.assert_status(409);
    assert_eq!(response.header("connection"), Some("close"));
    // A refusal of a request without a body keeps the connection.
    let response = app.get("/v2/images/00000000-0000-0000-0000-000000000000").await;
    response.assert_status(404);
    assert_eq!(response.header("connection"), None);
});

all_databases!(fn ranges_follow_rfc_9110(app) {
    let id = app.create_raw_image().await;
    app.upload(&id, sample(100)).await.assert_status(204);
    let get = |range: &'static str| {
        let app = &app;
        let id = id.clone();
        async move {
            app.request(Method::GET, &format!("/v2/images/{id}/file"), &[("range", range)], Body::empty()).await
        }
    };
    let trimmed = get("bytes=90-999999999999999999999").await;
    trimmed.assert_status(206);
    assert_eq!(trimmed.header("content-range"), Some("bytes 90-99/100"));
    assert_eq!(trimmed.body, sample(100)[90..].to_vec());
    for ignored in ["bytes=junk", "bytes=5-1", "items=0-1", "bytes=-"] {
        let whole = get(ignored).await;
        whole.assert_status(200);
        assert_eq!(whole.body.len(), 100, "{ignored}");
    }
    get("bytes=100-").await.assert_status(416);
    get("bytes=-0").await.assert_status(416);
    get("bytes=0-1,5-6").await.assert_status(400);
});

/// On a real keep-alive connection, a refused upload tells the client that the connection
/// closes, and it does close (the unread body is never parsed as a next request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_on_a_keep_alive_connection_says_close() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::start(Backend::Sqlite, "").await;
    let id = app.create_raw_image().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let address = listener.local_addr().expect("address");
    let router = app.router.clone();
    let limits = glint::server::ConnectionLimits::default();
    tokio::spawn(async move {
        glint::server::serve(listener, router, &limits, std::future::pending()).await
    });
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connects");
    let head = format!(
        "PUT /v2/images/{id}/file HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\n\
         Content-Length: 16\r\n\r\nGET / HTTP/1.1\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("writes");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .expect("reads");
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 415"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert_eq!(answer.matches("http/1.1").count(), 1, "{answer}");
}

all_databases!(fn a_repeated_record_finds_the_first_even_after_the_image_changed(app) {
    // The answer to the final save was lost and the save is repeated; meanwhile the image was
    // deactivated. The repeat must report the upload as recorded (its data is named), never
    // as failed — which would remove data a location names.
    let id = app.create_raw_image().await;
    app.upload(&id, sample(100)).await.assert_status(204);
    let location = app.scalar(&format!("SELECT value FROM image_locations WHERE image_id = '{id}'")).await;
    app.post(&format!("/v2/images/{id}/actions/deactivate"), &json!({})).await.assert_status(204);
    let data = glint::domain::UploadedData {
        size: 100,
        virtual_size: Some(100),
        checksum: String::new(),
        os_hash_algo: "sha512".into(),
        os_hash_value: String::new(),
        location,
        metadata: "{}".into(),
    };
    let image_id = glint::domain::ImageId::parse(&id).expect("id");
    let outcome = app
        .database
        .upload_repo()
        .finish_upload(&image_id, "node/claim", &data, glint::domain::image::now())
        .await
        .expect("answers");
    assert_eq!(outcome, glint::domain::SaveOutcome::Saved);
    // A location that was never recorded is not mistaken for one.
    let other = glint::domain::UploadedData { location: "file:///elsewhere".into(), ..data };
    let outcome = app
        .database
        .upload_repo()
        .finish_upload(&image_id, "node/claim", &other, glint::domain::image::now())
        .await
        .expect("answers");
    assert_eq!(outcome, glint::domain::SaveOutcome::StatusChanged);
});
