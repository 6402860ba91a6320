//! Interoperable import through the API: stage + glance-direct, web-download from a real
//! local HTTP server (redirects, refusals, a remote that stalls or lies about its length),
//! copy-image between stores, Glance's checks and words, the tasks that report it all, and a
//! job whose node died taken over.

use std::time::Duration;

use axum::body::Body;
use axum::http::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::all_databases;
use crate::helpers::{files_in, TestApp, TestResponse};

mod decompression;
mod glance_download;
mod jobs;

/// Web-download may reach the test's own server on loopback (any port).
const LAB: &str = "[import_filtering_opts]\nallowed_hosts = 127.0.0.1\nallowed_ports =\n\
    [DEFAULT]\nweb_download_timeout = 2\n";

const TWO_STORES: &str = "[DEFAULT]\nenabled_backends = fast:file, cheap:file\n\
    [glance_store]\ndefault_backend = cheap\n";

fn sample(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

async fn stage(app: &TestApp, id: &str, data: Vec<u8>) -> TestResponse {
    let length = data.len().to_string();
    app.request(
        Method::PUT,
        &format!("/v2/images/{id}/stage"),
        &[
            ("content-type", "application/octet-stream"),
            ("content-length", &length),
            ("accept", "application/json"),
        ],
        Body::from(data),
    )
    .await
}

async fn import(app: &TestApp, id: &str, body: Value) -> TestResponse {
    app.post(&format!("/v2/images/{id}/import"), &body).await
}

/// The image's last task once it has ended.
async fn finished_task(app: &TestApp, id: &str) -> Value {
    finished_task_after(app, id, &[]).await
}

/// The image's task that is not one of `earlier`, once it has ended (MySQL keeps whole
/// seconds: tasks of the same second have no order).
async fn finished_task_after(app: &TestApp, id: &str, earlier: &[Value]) -> Value {
    for _ in 0..300 {
        let tasks = app.get(&format!("/v2/images/{id}/tasks")).await.json();
        let task = tasks["tasks"].as_array().and_then(|t| {
            t.iter()
                .rev()
                .find(|t| !earlier.iter().any(|e| e["id"] == t["id"]))
        });
        if let Some(task) = task {
            if matches!(task["status"].as_str(), Some("success" | "failure")) {
                return task.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the import of {id} did not end");
}

async fn image(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/v2/images/{id}")).await.json()
}

/// A real HTTP/1.1 server on loopback, one behaviour per path.
struct Remote {
    port: u16,
    _task: tokio::task::JoinHandle<()>,
}

impl Remote {
    async fn start(data: Vec<u8>) -> Remote {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let port = listener.local_addr().expect("address").port();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let data = data.clone();
                tokio::spawn(async move {
                    let Some(head) = crate::helpers::read_request_head(&mut socket).await else {
                        return;
                    };
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let header = |status: &str, extra: &str, length: usize| {
                        format!("HTTP/1.1 {status}\r\nContent-Length: {length}\r\nConnection: close\r\n{extra}\r\n")
                    };
                    let reply = match path.as_str() {
                        "/image" => [header("200 OK", "", data.len()).into_bytes(), data].concat(),
                        "/redirect" => header("302 Found", "Location: /image\r\n", 0).into_bytes(),
                        "/redirect-away" => header(
                            "302 Found",
                            &format!("Location: http://127.0.0.2:{port}/image\r\n"),
                            0,
                        )
                        .into_bytes(),
                        "/redirect-metadata" => header(
                            "301 Moved Permanently",
                            "Location: http://169.254.169.254/latest/meta-data/\r\n",
                            0,
                        )
                        .into_bytes(),
                        "/short" => {
                            [header("200 OK", "", data.len() + 100).into_bytes(), data].concat()
                        }
                        // A twentieth of the data every 100 ms: a download that takes 2 s.
                        "/slow" => {
                            let _ = socket
                                .write_all(header("200 OK", "", data.len()).as_bytes())
                                .await;
                            for piece in data.chunks(data.len() / 20 + 1) {
                                let _ = socket.write_all(piece).await;
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                            let _ = socket.shutdown().await;
                            return;
                        }
                        "/stall" => {
                            let _ = socket
                                .write_all(header("200 OK", "", data.len()).as_bytes())
                                .await;
                            let _ = socket.write_all(&data[..data.len() / 2]).await;
                            tokio::time::sleep(Duration::from_secs(600)).await;
                            return;
                        }
                        _ => header("404 Not Found", "", 0).into_bytes(),
                    };
                    let _ = socket.write_all(&reply).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Remote { port, _task: task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

all_databases!(fn discovery_names_the_enabled_methods(app) {
    let info = app.get("/v2/info/import").await;
    info.assert_status(200);
    assert_eq!(info.json(), json!({"import-methods": {
        "description": "Import methods available.", "type": "array",
        "value": ["glance-direct", "web-download", "copy-image"]}}));
    let created = app.post("/v2/images", &json!({"name": "x"})).await;
    created.assert_status(201);
    assert_eq!(created.header("openstack-image-import-methods"), Some("glance-direct,web-download,copy-image"));
});

all_databases!(fn a_staged_image_is_imported_by_glance_direct(app) {
    let id = app.create_raw_image().await;
    let data = sample((3 << 20) + 5, 7);
    stage(&app, &id, data.clone()).await.assert_status(204);
    let staged = image(&app, &id).await;
    assert_eq!(staged["status"], "uploading");
    assert_eq!(staged["size"], data.len());
    assert_eq!(staged["checksum"], Value::Null);
    // Staged again: refused, the image is no longer queued.
    let again = stage(&app, &id, data.clone()).await;
    again.assert_status(409);
    assert_eq!(again.error_message(), "Image status transition from uploading to uploading is not allowed");
    // An image that is not staged cannot take glance-direct; this one can.
    let other = app.create_raw_image().await;
    let refused = import(&app, &other, json!({"method": {"name": "glance-direct"}})).await;
    refused.assert_status(409);
    assert_eq!(refused.error_message(), "Image needs to be staged before 'glance-direct' method can be used");
    let accepted = import(&app, &id, json!({"method": {"name": "glance-direct"}})).await;
    accepted.assert_status(202);
    assert!(accepted.body.is_empty());
    let task = finished_task(&app, &id).await;
    assert_eq!(task["status"], "success", "{task}");
    assert_eq!(task["type"], "api_image_import");
    assert_eq!(task["result"], json!({"image_id": id}));
    assert_eq!(task["input"]["import_req"]["method"]["name"], "glance-direct");
    assert!(task["message"].as_str().unwrap_or_default().starts_with("Copied "), "{task}");
    let imported = image(&app, &id).await;
    assert_eq!(imported["status"], "active");
    assert_eq!(imported["size"], data.len());
    assert_eq!(imported["os_hash_algo"], "sha512");
    assert_eq!(imported["os_glance_importing_to_stores"], "");
    assert_eq!(imported["os_glance_failed_import"], "");
    assert!(imported.get("os_glance_import_task").is_none(), "{imported}");
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == data);
    // The staged copy is gone once the import used it.
    assert!(files_in(&app.data_dir().join("staging")).is_empty());
    // Imported once: the image is active now.
    let twice = import(&app, &id, json!({"method": {"name": "glance-direct"}})).await;
    twice.assert_status(409);
    assert_eq!(twice.error_message(), "Image with status active cannot be target for import");
});

all_databases!(fn import_requests_are_checked_as_glance_checks_them(app) {
    let id = app.create_raw_image().await;
    let cases = [
        (json!({}), 400, "Import request requires a 'method' field."),
        (json!({"method": {}}), 400, "Import request requires a 'name' field."),
        (json!({"method": {"name": "ftp"}}), 400, "Unknown import method name 'ftp'."),
        (json!({"method": {"name": "glance-direct"}, "all_stores": "yes"}), 400, "'all_stores' must be boolean value only"),
        (json!({"method": {"name": "glance-direct"}, "all_stores_must_succeed": 1}), 400, "'all_stores_must_succeed' must be boolean value only"),
        (json!({"method": {"name": "copy-image"}}), 409, "Only images with status active can be targeted for copying"),
        (json!({"method": {"name": "web-download", "uri": "http://169.254.169.254/latest/"}}), 400, "URI for web-download does not pass filtering: http://169.254.169.254/latest/"),
        (json!({"method": {"name": "web-download", "uri": "file:///etc/passwd"}}), 400, "URI for web-download does not pass filtering: file:///etc/passwd"),
        (json!({"method": {"name": "web-download"}}), 400, "URI for web-download does not pass filtering: None"),
        (json!({"method": {"name": "web-download", "uri": "http://example.com/x"}, "all_stores_must_succeed": false}), 400, "All_stores_must_succeed can only be set with enabled_backends http://example.com/x"),
    ];
    for (body, status, message) in cases {
        let response = import(&app, &id, body.clone()).await;
        response.assert_status(status);
        assert_eq!(response.error_message(), message, "{body}");
    }
    let bare = app.create_image(json!({"disk_format": "raw"})).await;
    let response = import(&app, bare["id"].as_str().unwrap_or_default(), json!({"method": {"name": "web-download", "uri": "http://example.com/x"}})).await;
    response.assert_status(409);
    assert_eq!(response.error_message(), "'container_format' needs to be set before import");
    let missing = import(&app, "7c1ea0d6-7d0b-4d8e-9d5a-3f1d7f0e1a2b", json!({"method": {"name": "glance-direct"}})).await;
    missing.assert_status(404);
    // No task was made by any of these.
    assert_eq!(app.get(&format!("/v2/images/{id}/tasks")).await.json(), json!({"tasks": []}));
});

all_databases!(fn staging_needs_glance_direct_and_octet_streams(app, "[DEFAULT]\nenabled_import_methods = [web-download]\n") {
    let id = app.create_raw_image().await;
    let response = stage(&app, &id, vec![1, 2, 3]).await;
    response.assert_status(404);
    assert_eq!(response.error_message(), "'glance-direct' method is not available at this site.");
    assert_eq!(app.get("/v2/info/import").await.json()["import-methods"]["value"], json!(["web-download"]));
});

all_databases!(fn stage_refuses_other_media_types(app) {
    let id = app.create_raw_image().await;
    let response = app
        .request(Method::PUT, &format!("/v2/images/{id}/stage"), &[("content-type", "application/json"), ("accept", "application/json")], Body::from("{}"))
        .await;
    response.assert_status(415);
    assert_eq!(image(&app, &id).await["status"], "queued");
});

all_databases!(fn web_download_streams_a_remote_image_in(app, LAB) {
    let data = sample((2 << 20) + 11, 3);
    let remote = Remote::start(data.clone()).await;
    let id = app.create_raw_image().await;
    import(&app, &id, json!({"method": {"name": "web-download", "uri": remote.url("/redirect")}}))
        .await
        .assert_status(202);
    let task = finished_task(&app, &id).await;
    assert_eq!(task["status"], "success", "{task}");
    let imported = image(&app, &id).await;
    assert_eq!(imported["status"], "active");
    assert_eq!(imported["size"], data.len());
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == data);
    // Nothing was staged on the way: one store, streamed straight in.
    assert!(files_in(&app.data_dir().join("staging")).is_empty());
});

all_databases!(fn web_download_failures_leave_the_image_queued(app, LAB) {
    let data = sample(300_000, 9);
    let remote = Remote::start(data.clone()).await;
    for (path, reason) in [
        ("/redirect-away", "Redirect to disallowed URL: http://127.0.0.2:"),
        ("/redirect-metadata", "Redirect to disallowed URL: http://169.254.169.254/latest/meta-data/"),
        ("/missing", "answered 404 Not Found"),
        ("/stall", "sent nothing for 2 seconds"),
        ("/short", "end of file before message length reached"),
    ] {
        let id = app.create_raw_image().await;
        import(&app, &id, json!({"method": {"name": "web-download", "uri": remote.url(path)}}))
            .await
            .assert_status(202);
        let task = finished_task(&app, &id).await;
        assert_eq!(task["status"], "failure", "{path}: {task}");
        let message = task["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{path}: {message}");
        let after = image(&app, &id).await;
        assert_eq!(after["status"], "queued", "{path}");
        assert_eq!(after["size"], Value::Null, "{path}");
        assert!(after.get("os_glance_import_task").is_none(), "{path}");
        // The image can be imported again.
        assert!(app.stored_files().is_empty(), "{path}: {:?}", app.stored_files());
    }
});

all_databases!(fn copy_image_adds_stores_to_an_active_image(app, TWO_STORES) {
    let id = app.create_raw_image().await;
    let data = sample(1 << 20, 5);
    app.upload(&id, data.clone()).await.assert_status(204);
    assert_eq!(image(&app, &id).await["stores"], "cheap");
    let present = import(&app, &id, json!({"method": {"name": "copy-image"}, "stores": ["cheap"]})).await;
    present.assert_status(400);
    assert_eq!(present.error_message(), "Image is already present at store 'cheap'");
    let unknown = import(&app, &id, json!({"method": {"name": "copy-image"}, "stores": ["nowhere"]})).await;
    unknown.assert_status(409);
    assert_eq!(unknown.error_message(), "Store for identifier nowhere not found");
    import(&app, &id, json!({"method": {"name": "copy-image"}, "stores": ["fast"]})).await.assert_status(202);
    let task = finished_task(&app, &id).await;
    assert_eq!(task["status"], "success", "{task}");
    let copied = image(&app, &id).await;
    assert_eq!(copied["status"], "active");
    assert_eq!(copied["stores"], "cheap,fast");
    assert_eq!(copied["os_glance_importing_to_stores"], "");
    assert_eq!(std::fs::read(app.data_dir().join("fast").join(&id)).expect("copy"), data);
    // Every store has it now: all_stores has nothing left to do, and says so with a 202.
    import(&app, &id, json!({"method": {"name": "copy-image"}, "all_stores": true})).await.assert_status(202);
    assert_eq!(app.get(&format!("/v2/images/{id}/tasks")).await.json()["tasks"].as_array().map(Vec::len), Some(1));
});

all_databases!(fn glance_direct_writes_every_store_asked(app, TWO_STORES) {
    let id = app.create_raw_image().await;
    let data = sample(700_000, 1);
    stage(&app, &id, data.clone()).await.assert_status(204);
    import(&app, &id, json!({"method": {"name": "glance-direct"}, "stores": ["fast", "cheap"]})).await.assert_status(202);
    let task = finished_task(&app, &id).await;
    assert_eq!(task["status"], "success", "{task}");
    assert_eq!(task["input"]["backend"], json!(["fast", "cheap"]));
    let imported = image(&app, &id).await;
    assert_eq!(imported["stores"], "fast,cheap");
    for store in ["fast", "cheap"] {
        assert_eq!(std::fs::read(app.data_dir().join(store).join(&id)).expect("copy"), data);
    }
});

all_databases!(fn tasks_are_listed_shown_and_never_deleted(app) {
    let id = app.create_raw_image().await;
    stage(&app, &id, sample(1000, 2)).await.assert_status(204);
    import(&app, &id, json!({"method": {"name": "glance-direct"}})).await.assert_status(202);
    let raw = finished_task(&app, &id).await;
    let task_id = raw["id"].as_str().unwrap_or_default().to_owned();
    let shown = app.get(&format!("/v2/tasks/{task_id}")).await;
    shown.assert_status(200);
    let shown = shown.json();
    assert_eq!(shown["self"], format!("/v2/tasks/{task_id}"));
    assert_eq!(shown["schema"], "/v2/schemas/task");
    assert_eq!(shown["image_id"], id.as_str());
    assert!(shown["expires_at"].as_str().unwrap_or_default().ends_with('Z'));
    let listed = app.get("/v2/tasks?sort_dir=asc&limit=10").await.json();
    assert_eq!(listed["tasks"][0]["id"], task_id.as_str());
    assert!(listed["tasks"][0].get("input").is_none());
    assert_eq!(listed["first"], "/v2/tasks?sort_dir=asc&limit=10");
    assert_eq!(listed["schema"], "/v2/schemas/tasks");
    let paged = app.get("/v2/tasks?limit=1").await.json();
    assert_eq!(paged["next"], format!("/v2/tasks?limit=1&marker={task_id}"));
    let after = app.get(&format!("/v2/tasks?limit=1&marker={task_id}")).await.json();
    assert_eq!(after["tasks"], json!([]));
    for (query, message) in [
        ("limit=x", "limit param must be an integer"),
        ("limit=-1", "limit param must be positive"),
        ("marker=nope", "Invalid marker format"),
        ("sort_dir=up", "Invalid sort direction: up"),
        ("status=done", "Invalid status value: done"),
        ("type=api_image_import", "Invalid type value: api_image_import"),
        ("sort_key=colour", "Sort key supplied was not valid."),
    ] {
        let response = app.get(&format!("/v2/tasks?{query}")).await;
        response.assert_status(400);
        assert_eq!(response.error_message(), message, "{query}");
    }
    let deleted = app.delete(&format!("/v2/tasks/{task_id}")).await;
    deleted.assert_status(405);
    assert_eq!(deleted.header("allow"), Some("GET"));
    app.get("/v2/tasks/9d4a7e7c-7a9e-4c39-8d0e-1a2b3c4d5e6f").await.assert_status(404);
    let schema = app.get("/v2/schemas/task").await.json();
    assert_eq!(schema["name"], "task");
    assert!(schema["properties"]["message"].is_object());
    let schemas = app.get("/v2/schemas/tasks").await.json();
    assert!(schemas["properties"]["tasks"]["items"]["properties"].get("input").is_none());
});

all_databases!(fn legacy_import_tasks_create_and_fill_an_image(app, LAB) {
    let data = sample(50_000, 4);
    let remote = Remote::start(data.clone()).await;
    for (input, message) in [
        (json!({"import_from": "file:///etc/passwd"}), "File based imports are not allowed. Please use a non-local source of image data."),
        (json!({"import_from": "swift://x/y"}), "The given uri is not valid. Please specify a valid uri from the following list of supported uri ['http']"),
        (json!({}), "Invalid location: None"),
    ] {
        let response = app.post("/v2/tasks", &json!({"type": "import", "input": input})).await;
        response.assert_status(400);
        assert_eq!(response.error_message(), message);
    }
    app.post("/v2/tasks", &json!({"input": {}})).await.assert_status(400);
    let created = app
        .post("/v2/tasks", &json!({"type": "import", "input": {
            "import_from": remote.url("/image"), "import_from_format": "raw",
            "image_properties": {"name": "legacy", "disk_format": "raw", "container_format": "bare"}}}))
        .await;
    created.assert_status(201);
    let task = created.json();
    assert_eq!(created.header("location"), Some(format!("/v2/tasks/{}", task["id"].as_str().unwrap_or_default()).as_str()));
    assert_eq!(task["type"], "import");
    let id = task["image_id"].as_str().unwrap_or_default().to_owned();
    let ended = finished_task(&app, &id).await;
    assert_eq!(ended["status"], "success", "{ended}");
    let imported = image(&app, &id).await;
    assert_eq!(imported["name"], "legacy");
    assert_eq!(imported["status"], "active");
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == data);
});

fn crafted(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/formats")
            .join(name),
    )
    .expect("crafted image")
}

all_databases!(fn unsafe_data_is_refused_at_stage_and_at_import(app, LAB) {
    let data = crafted("qcow2-backing-file.qcow2");
    // Declared qcow2: the stage itself refuses it at the header.
    let image = app.create_image(json!({"disk_format": "qcow2", "container_format": "bare"})).await;
    let id = image["id"].as_str().unwrap_or_default().to_owned();
    let refused = stage(&app, &id, data.clone()).await;
    refused.assert_status(415);
    assert_eq!(refused.error_detail(), "Image failed safety checks");
    assert_eq!(self::image(&app, &id).await["status"], "queued");
    assert!(files_in(&app.data_dir().join("staging")).is_empty());
    // Fetched from a remote: the task fails with the same words, nothing stays anywhere.
    let remote = Remote::start(data).await;
    import(&app, &id, json!({"method": {"name": "web-download", "uri": remote.url("/image")}})).await.assert_status(202);
    let task = finished_task(&app, &id).await;
    assert_eq!(task["status"], "failure");
    assert_eq!(task["message"], "Image failed safety checks");
    assert_eq!(self::image(&app, &id).await["status"], "queued");
    assert!(app.stored_files().is_empty());
});

all_databases!(fn a_failed_glance_direct_import_stays_importing_as_in_glance(app, TWO_STORES) {
    // The data turns out unsafe only once the formats are known: staged as raw, the image is
    // then changed to qcow2 while uploading, and the import refuses it.
    let id = app.create_image(json!({"disk_format": "raw", "container_format": "bare"})).await["id"]
        .as_str().unwrap_or_default().to_owned();
    stage(&app, &id, crafted("qcow2-backing-file.qcow2")).await.assert_status(415);
    let data = sample(10_000, 3);
    stage(&app, &id, data).await.assert_status(204);
    app.execute(&format!("UPDATE images SET disk_format = 'qcow2' WHERE id = '{id}'")).await;
    import(&app, &id, json!({"method": {"name": "glance-direct"}, "stores": ["fast", "cheap"]})).await.assert_status(202);
    let task = finished_task(&app, &id).await;
    assert_eq!(task["status"], "failure");
    assert_eq!(task["message"], "Image disk_format qcow2 does not match stream data raw");
    let after = self::image(&app, &id).await;
    // Glance leaves it importing, its data staged, the store that failed listed.
    assert_eq!(after["status"], "importing");
    assert_eq!(after["os_glance_failed_import"], "fast");
    assert_eq!(after["os_glance_importing_to_stores"], "");
    assert!(after.get("os_glance_import_task").is_none());
    assert_eq!(files_in(&app.data_dir().join("staging")).len(), 1);
    assert!(files_in(&app.data_dir().join("fast")).is_empty());
});

all_databases!(fn staged_data_of_deleted_images_is_swept(app) {
    let id = app.create_raw_image().await;
    stage(&app, &id, sample(4000, 6)).await.assert_status(204);
    assert_eq!(files_in(&app.data_dir().join("staging")).len(), 1);
    assert!(app.get(&format!("/v2/images/{id}")).await.json().get("os_glance_stage_host").is_none());
    app.delete(&format!("/v2/images/{id}")).await.assert_status(204);
    assert_eq!(app.services.imports.sweep().await.expect("sweeps"), 1);
    assert!(files_in(&app.data_dir().join("staging")).is_empty());
    assert_eq!(app.services.imports.sweep().await.expect("sweeps"), 0);
});

const PLUGINS: &str = "[image_import_opts]\nimage_import_plugins = [image_conversion, inject_image_metadata]\n\
    [inject_metadata_properties]\ninject = cloud:glint, os_glance_x:refused\nignore_user_roles = service\n\
    [image_format]\ndisk_formats = raw,qcow2,vmdk,iso\n";

/// A qcow2 image of `virtual_mib` MiB whose first MiB holds a pattern.
fn qcow2_with_data(dir: &std::path::Path, virtual_mib: u64) -> (Vec<u8>, Vec<u8>) {
    let raw = dir.join("disk.raw");
    let mut content = vec![0u8; (virtual_mib << 20) as usize];
    for (i, byte) in content.iter_mut().take(1 << 20).enumerate() {
        *byte = (i % 253) as u8 + 1;
    }
    std::fs::write(&raw, &content).expect("raw written");
    let qcow2 = dir.join("disk.qcow2");
    let status = std::process::Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&qcow2)
        .status()
        .expect("qemu-img runs");
    assert!(status.success());
    (std::fs::read(&qcow2).expect("qcow2 read"), content)
}

all_databases!(fn image_conversion_turns_a_staged_qcow2_into_raw(app, PLUGINS) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (qcow2, raw) = qcow2_with_data(dir.path(), 8);
    let id = app.create_image(json!({"disk_format": "qcow2", "container_format": "bare"})).await["id"]
        .as_str().unwrap_or_default().to_owned();
    stage(&app, &id, qcow2).await.assert_status(204);
    import(&app, &id, json!({"method": {"name": "glance-direct"}})).await.assert_status(202);
    let task = finished_task(&app, &id).await;
    assert_eq!(task["status"], "success", "{task}");
    let imported = image(&app, &id).await;
    assert_eq!(imported["disk_format"], "raw");
    assert_eq!(imported["container_format"], "bare");
    assert_eq!(imported["size"], raw.len());
    assert_eq!(imported["virtual_size"], raw.len());
    // inject_image_metadata: the operator's property, never an os_glance one.
    assert_eq!(imported["cloud"], "glint");
    assert!(imported.get("os_glance_x").is_none());
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == raw);
    assert!(files_in(&app.data_dir().join("staging")).is_empty());
    assert!(files_in(&app.data_dir().join("work")).is_empty());
});

all_databases!(fn data_already_in_the_output_format_is_left_as_it_is(app, PLUGINS) {
    let id = app.create_raw_image().await;
    let data = sample(300_000, 2);
    stage(&app, &id, data.clone()).await.assert_status(204);
    import(&app, &id, json!({"method": {"name": "glance-direct"}})).await.assert_status(202);
    let task = finished_task(&app, &id).await;
    assert_eq!(task["status"], "success", "{task}");
    assert_eq!(image(&app, &id).await["disk_format"], "raw");
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == data);
    // An iso declared for raw bytes is refused at the stage, before any conversion.
    let iso = app.create_image(json!({"disk_format": "iso", "container_format": "bare"})).await["id"]
        .as_str().unwrap_or_default().to_owned();
    stage(&app, &iso, sample(1 << 20, 1)).await.assert_status(415);
    assert_eq!(image(&app, &iso).await["status"], "queued");
});
