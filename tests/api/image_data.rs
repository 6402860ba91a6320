//! Upload and download of image data through the filesystem store.

use std::time::Duration;

use axum::body::Body;
use axum::http::Method;
use bytes::Bytes;
use futures_util::stream;
use openssl::hash::{hash, MessageDigest};
use serde_json::json;
use tokio::sync::mpsc;

use crate::all_databases;
use crate::helpers::{TestApp, TestResponse};

pub(crate) fn sample(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn md5(data: &[u8]) -> String {
    hex(&hash(MessageDigest::md5(), data).expect("md5"))
}

fn sha512(data: &[u8]) -> String {
    hex(&hash(MessageDigest::sha512(), data).expect("sha512"))
}

/// A body that sends the given frames, then fails (a cut connection).
pub(crate) fn cut_body(frames: Vec<Vec<u8>>) -> Body {
    let items: Vec<Result<Bytes, std::io::Error>> = frames
        .into_iter()
        .map(|f| Ok(Bytes::from(f)))
        .chain([Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        ))])
        .collect();
    Body::from_stream(stream::iter(items))
}

/// A body whose frames the test sends one by one (None ends it).
pub(crate) fn channel_body() -> (mpsc::Sender<Vec<u8>>, Body) {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(4);
    let frames = stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|frame| (Ok::<_, std::io::Error>(Bytes::from(frame)), rx))
    });
    (tx, Body::from_stream(frames))
}

/// Starts an upload whose body the test feeds frame by frame, and waits until the image is
/// `saving`. Dropping the sender ends the body.
pub(crate) async fn start_upload(
    app: &TestApp,
    id: &str,
    first_frame: Vec<u8>,
) -> (
    mpsc::Sender<Vec<u8>>,
    tokio::task::JoinHandle<axum::response::Response>,
) {
    let (frames, body) = channel_body();
    let router = app.router.clone();
    let request = axum::http::Request::builder()
        .method(Method::PUT)
        .uri(format!("/v2/images/{id}/file"))
        .header("content-type", "application/octet-stream")
        .header("accept", "application/json")
        .body(body)
        .expect("request");
    let upload = tokio::spawn(async move {
        match tower::ServiceExt::oneshot(router, request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    });
    frames.send(first_frame).await.expect("sends");
    for _ in 0..100 {
        if image(app, id).await["status"] == "saving" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(image(app, id).await["status"], "saving");
    (frames, upload)
}

pub(crate) async fn put_file(
    app: &TestApp,
    id: &str,
    headers: &[(&str, &str)],
    body: Body,
) -> TestResponse {
    let mut all = vec![
        ("content-type", "application/octet-stream"),
        ("accept", "application/json"),
    ];
    all.extend_from_slice(headers);
    app.request(Method::PUT, &format!("/v2/images/{id}/file"), &all, body)
        .await
}

/// Uploads `data` with its length announced (`Content-Length`), or else in 256 KiB frames of a
/// body of unknown length (chunked, as a client streaming from a pipe sends it).
pub(crate) async fn upload_announced_or_chunked(
    app: &TestApp,
    id: &str,
    data: &[u8],
    announced: bool,
) -> TestResponse {
    if announced {
        return app.upload(id, data.to_vec()).await;
    }
    let frames: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(256 << 10)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    put_file(app, id, &[], Body::from_stream(stream::iter(frames))).await
}

pub(crate) async fn image(app: &TestApp, id: &str) -> serde_json::Value {
    app.get(&format!("/v2/images/{id}")).await.json()
}

/// Waits for background clean-up (spawned when a request is abandoned) to put the image back.
pub(crate) async fn eventually_queued(app: &TestApp, id: &str) {
    for _ in 0..100 {
        if image(app, id).await["status"] == "queued" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("image {id} never went back to queued");
}

all_databases!(fn upload_records_size_and_digests_computed_on_the_fly(app) {
    let id = app.create_raw_image().await;
    let data = sample(3 * 1024 * 1024 + 17);
    let response = app.upload(&id, data.clone()).await;
    response.assert_status(204);
    let shown = image(&app, &id).await;
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["size"], data.len());
    assert_eq!(shown["virtual_size"], data.len());
    assert_eq!(shown["checksum"], md5(&data));
    assert_eq!(shown["os_hash_algo"], "sha512");
    assert_eq!(shown["os_hash_value"], sha512(&data));
    assert_eq!(app.stored_files(), [id.as_str()]);

    let download = app.request(Method::GET, &format!("/v2/images/{id}/file"), &[], Body::empty()).await;
    download.assert_status(200);
    assert_eq!(download.header("content-type"), Some("application/octet-stream"));
    assert_eq!(download.header("content-length"), Some(data.len().to_string().as_str()));
    assert_eq!(download.header("content-md5"), Some(md5(&data).as_str()));
    assert!(download.body == data, "downloaded bytes differ");
});

all_databases!(fn chunked_uploads_and_other_hash_algorithms(app, "[DEFAULT]\nhashing_algorithm = sha256\n") {
    let id = app.create_image(json!({"disk_format": "raw", "container_format": "bare"})).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let data = sample(2_500_000);
    let frames: Vec<Result<Bytes, std::io::Error>> = data.chunks(65_536).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let response = put_file(&app, &id, &[], Body::from_stream(stream::iter(frames))).await;
    response.assert_status(204);
    let shown = image(&app, &id).await;
    assert_eq!(shown["os_hash_algo"], "sha256");
    assert_eq!(shown["os_hash_value"], hex(&hash(MessageDigest::sha256(), &data).expect("sha256")));
    assert_eq!(shown["checksum"], md5(&data));
    // Raw data: its size is the disk's.
    assert_eq!(shown["virtual_size"], data.len());
});

all_databases!(fn empty_images_are_valid(app) {
    let id = app.create_raw_image().await;
    app.upload(&id, Vec::new()).await.assert_status(204);
    let shown = image(&app, &id).await;
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["size"], 0);
    assert_eq!(shown["checksum"], "d41d8cd98f00b204e9800998ecf8427e");
    let download = app.get(&format!("/v2/images/{id}/file")).await;
    download.assert_status(200);
    assert!(download.body.is_empty());
});

all_databases!(fn uploads_are_refused_in_the_wrong_state_or_form(app) {
    let id = app.create_raw_image().await;
    let wrong_type = app
        .request(Method::PUT, &format!("/v2/images/{id}/file"), &[("content-type", "application/json"), ("accept", "application/json")], Body::from("{}"))
        .await;
    wrong_type.assert_status(415);
    let bad_size = put_file(&app, &id, &[("x-openstack-image-size", "many")], Body::from("x")).await;
    bad_size.assert_status(400);
    assert_eq!(bad_size.error_message(), "Invalid or missing image size in request headers.");

    let no_formats = app.create_image(json!({})).await["id"].as_str().unwrap_or_default().to_owned();
    let response = app.upload(&no_formats, b"data".to_vec()).await;
    response.assert_status(400);
    assert!(response.error_message().contains("disk_format, container_format"));

    app.upload(&id, b"first".to_vec()).await.assert_status(204);
    let again = app.upload(&id, b"second".to_vec()).await;
    again.assert_status(409);
    assert_eq!(again.error_message(), "Image status transition from active to saving is not allowed");
    app.post(&format!("/v2/images/{id}/actions/deactivate"), &json!(null)).await.assert_status(204);
    app.upload(&id, b"third".to_vec()).await.assert_status(409);
    app.upload("00000000-0000-0000-0000-000000000000", b"x".to_vec()).await.assert_status(404);
    // Nothing but the first upload's data is stored.
    assert_eq!(app.stored_files(), [id.as_str()]);
    let download = app.get(&format!("/v2/images/{id}/file")).await;
    assert_eq!(download.body, b"first");
});

all_databases!(fn a_cut_connection_leaves_the_image_queued_and_no_data(app) {
    let id = app.create_raw_image().await;
    let response = put_file(&app, &id, &[], cut_body(vec![sample(2 << 20), sample(1 << 20)])).await;
    response.assert_status(400);
    let shown = image(&app, &id).await;
    assert_eq!(shown["status"], "queued");
    assert!(shown["size"].is_null() && shown["checksum"].is_null());
    assert!(app.stored_files().is_empty(), "partial data left: {:?}", app.stored_files());
    // The image can be uploaded again.
    app.upload(&id, b"retry".to_vec()).await.assert_status(204);
});

all_databases!(fn an_abandoned_request_is_cleaned_up(app) {
    let id = app.create_raw_image().await;
    let (frames, upload) = start_upload(&app, &id, sample(3 << 20)).await;
    // The server drops the request (as hyper does when the client disconnects).
    upload.abort();
    let _ = upload.await;
    drop(frames);
    eventually_queued(&app, &id).await;
    for _ in 0..100 {
        if app.stored_files().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(app.stored_files().is_empty(), "partial data left: {:?}", app.stored_files());
});

all_databases!(fn a_second_concurrent_upload_conflicts(app) {
    let id = app.create_raw_image().await;
    let (frames, first) = start_upload(&app, &id, sample(1 << 20)).await;
    let second = app.upload(&id, b"intruder".to_vec()).await;
    second.assert_status(409);
    assert_eq!(second.error_message(), "Image status transition from saving to saving is not allowed");
    frames.send(b"tail".to_vec()).await.expect("sends");
    drop(frames);
    let response = first.await.expect("joins");
    assert_eq!(response.status(), 204);
    let shown = image(&app, &id).await;
    assert_eq!(shown["size"], (1 << 20) + 4);
});

all_databases!(fn an_image_deleted_during_upload_ends_deleted_without_data(app) {
    let id = app.create_raw_image().await;
    let (frames, upload) = start_upload(&app, &id, sample(1 << 20)).await;
    app.delete(&format!("/v2/images/{id}")).await.assert_status(204);
    frames.send(sample(1 << 20)).await.expect("sends");
    drop(frames);
    let response = upload.await.expect("joins");
    assert_eq!(response.status(), 410);
    app.get(&format!("/v2/images/{id}")).await.assert_status(404);
    assert!(app.stored_files().is_empty(), "data left: {:?}", app.stored_files());
});

all_databases!(fn the_size_cap_is_enforced_before_and_during_the_body(app, "[DEFAULT]\nimage_size_cap = 1000000\n") {
    let id = app.create_raw_image().await;
    let announced = app.upload(&id, sample(1_000_001)).await;
    announced.assert_status(413);
    assert_eq!(image(&app, &id).await["status"], "queued");
    // Chunked: the cap is found mid-stream.
    let frames: Vec<Result<Bytes, std::io::Error>> = (0..20).map(|_| Ok(Bytes::from(sample(100_000)))).collect();
    let streamed = put_file(&app, &id, &[], Body::from_stream(stream::iter(frames))).await;
    streamed.assert_status(413);
    assert!(streamed.error_message().contains("too large"));
    assert_eq!(image(&app, &id).await["status"], "queued");
    assert!(app.stored_files().is_empty());
    app.upload(&id, sample(1_000_000)).await.assert_status(204);
});

all_databases!(fn the_storage_quota_counts_existing_data(app, "[DEFAULT]\nuser_storage_quota = 3MB\n") {
    let first = app.create_raw_image().await;
    app.upload(&first, sample(2 << 20)).await.assert_status(204);
    let second = app.create_raw_image().await;
    let over = app.upload(&second, sample(2 << 20)).await;
    over.assert_status(413);
    assert!(over.error_message().starts_with("Image exceeds the storage quota"), "{}", over.error_message());
    assert_eq!(image(&app, &second).await["status"], "queued");
    app.upload(&second, sample(1 << 20)).await.assert_status(204);
});

all_databases!(fn a_declared_size_that_lies_is_refused(app) {
    let id = app.create_raw_image().await;
    let response = put_file(&app, &id, &[("x-openstack-image-size", "10")], Body::from(vec![1u8; 20])).await;
    response.assert_status(400);
    assert_eq!(image(&app, &id).await["status"], "queued");
    assert!(app.stored_files().is_empty());
});

all_databases!(fn ranges_are_served_and_checked(app) {
    let id = app.create_raw_image().await;
    let data = sample(1000);
    app.upload(&id, data.clone()).await.assert_status(204);
    let path = format!("/v2/images/{id}/file");
    let get = |range: &'static str| {
        let (app, path) = (&app, path.clone());
        async move { app.request(Method::GET, &path, &[("range", range), ("accept", "application/json")], Body::empty()).await }
    };
    let part = get("bytes=10-19").await;
    part.assert_status(206);
    assert_eq!(part.header("content-range"), Some("bytes 10-19/1000"));
    assert_eq!(part.body, &data[10..20]);
    let tail = get("bytes=-5").await;
    tail.assert_status(206);
    assert_eq!(tail.body, &data[995..]);
    let open = get("bytes=990-").await;
    assert_eq!(open.body, &data[990..]);
    let beyond = get("bytes=1000-").await;
    beyond.assert_status(416);
    assert_eq!(beyond.header("content-range"), Some("bytes */1000"));
    get("bytes=0-1,5-6").await.assert_status(400);
    let legacy = app.request(Method::GET, &path, &[("content-range", "bytes 1-2/1000")], Body::empty()).await;
    legacy.assert_status(206);
    assert_eq!(legacy.body, &data[1..3]);
});

all_databases!(fn images_without_data_answer_204(app) {
    let id = app.create_raw_image().await;
    let response = app.get(&format!("/v2/images/{id}/file")).await;
    response.assert_status(204);
    assert!(response.body.is_empty());
    app.get("/v2/images/00000000-0000-0000-0000-000000000000/file").await.assert_status(404);
});

all_databases!(fn damaged_data_is_never_served_as_good(app, "[glance_store]\nverify_download_checksum = true\n") {
    let id = app.create_raw_image().await;
    let data = sample(3 << 20);
    app.upload(&id, data.clone()).await.assert_status(204);
    let file = app.images_dir.join(&id);
    // Same size, one byte changed: the checksum check cuts the transfer.
    let mut damaged = data.clone();
    damaged[100] ^= 0xff;
    std::fs::write(&file, &damaged).expect("damage the file");
    let request = axum::http::Request::builder().uri(format!("/v2/images/{id}/file")).body(Body::empty()).expect("request");
    let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.expect("infallible");
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body()).await;
    assert!(body.is_err(), "a damaged body must not complete");
    // Truncated: refused before anything is sent.
    std::fs::write(&file, &data[..1000]).expect("truncate the file");
    let response = app.get(&format!("/v2/images/{id}/file")).await;
    response.assert_status(500);
    assert!(response.error_message().contains("damaged"));
    // Ranges are still checked for size.
    app.request(Method::GET, &format!("/v2/images/{id}/file"), &[("range", "bytes=0-9")], Body::empty()).await.assert_status(500);
    // Missing altogether: an active image without its data is damaged, not "not found".
    std::fs::remove_file(&file).expect("remove the file");
    let missing = app.get(&format!("/v2/images/{id}/file")).await;
    missing.assert_status(500);
    assert!(missing.error_message().contains("missing"), "{}", missing.error_message());
    assert!(!missing.text().contains(app.images_dir.to_string_lossy().as_ref()), "no paths in error bodies");
});

all_databases!(fn deleting_an_image_removes_its_data(app) {
    let id = app.create_raw_image().await;
    app.upload(&id, sample(10_000)).await.assert_status(204);
    assert_eq!(app.stored_files(), [id.as_str()]);
    app.delete(&format!("/v2/images/{id}")).await.assert_status(204);
    assert!(app.stored_files().is_empty());
    app.get(&format!("/v2/images/{id}/file")).await.assert_status(404);
});

all_databases!(fn delayed_delete_leaves_data_to_the_scrubber(app, "[DEFAULT]\ndelayed_delete = true\n") {
    let id = app.create_raw_image().await;
    app.upload(&id, sample(10_000)).await.assert_status(204);
    app.delete(&format!("/v2/images/{id}")).await.assert_status(204);
    app.get(&format!("/v2/images/{id}")).await.assert_status(404);
    assert_eq!(app.stored_files(), [id.as_str()], "data waits for the scrubber");
    assert_eq!(app.scalar(&format!("SELECT status FROM images WHERE id = '{id}'")).await, "pending_delete");
    let report = app.services.data.scrub().await.expect("scrub runs");
    assert_eq!((report.removed, report.failed), (1, 0));
    assert!(app.stored_files().is_empty());
    assert_eq!(app.scalar(&format!("SELECT status FROM images WHERE id = '{id}'")).await, "deleted");
    // A queued image has no data: deleted at once.
    let empty = app.create_raw_image().await;
    app.delete(&format!("/v2/images/{empty}")).await.assert_status(204);
    assert_eq!(app.scalar(&format!("SELECT status FROM images WHERE id = '{empty}'")).await, "deleted");
});

all_databases!(fn uploads_abandoned_by_a_dead_node_are_reconciled(app) {
    let id = app.create_raw_image().await;
    app.execute(&format!("UPDATE images SET status = 'saving', upload_heartbeat = '2000-01-01 00:00:00' WHERE id = '{id}'")).await;
    let live = app.create_raw_image().await;
    app.execute(&format!("UPDATE images SET status = 'saving', upload_heartbeat = '2999-01-01 00:00:00' WHERE id = '{live}'")).await;
    let reset = app.services.data.reconcile(Duration::from_secs(300)).await.expect("reconciles");
    assert_eq!(reset, 1);
    assert_eq!(image(&app, &id).await["status"], "queued");
    // A recent upload (another node's, alive) is left alone.
    assert_eq!(image(&app, &live).await["status"], "saving");
});

all_databases!(fn deactivated_images_are_downloadable_by_admins_only(app, "[paste_deploy]\nflavor = trusted-auth\n") {
    let owner = [("x-identity-status", "Confirmed"), ("x-project-id", "p1"), ("x-roles", "member"), ("accept", "application/json")];
    let admin = [("x-identity-status", "Confirmed"), ("x-project-id", "ops"), ("x-roles", "admin"), ("accept", "application/json")];
    let created = app
        .request(Method::POST, "/v2/images", &owner, Body::from(json!({"disk_format": "raw", "container_format": "bare"}).to_string()))
        .await;
    let id = created.json()["id"].as_str().unwrap_or_default().to_owned();
    let mut upload_headers = owner.to_vec();
    upload_headers.push(("content-type", "application/octet-stream"));
    app.request(Method::PUT, &format!("/v2/images/{id}/file"), &upload_headers, Body::from("payload")).await.assert_status(204);
    app.request(Method::POST, &format!("/v2/images/{id}/actions/deactivate"), &owner, Body::empty()).await.assert_status(204);
    let refused = app.request(Method::GET, &format!("/v2/images/{id}/file"), &owner, Body::empty()).await;
    refused.assert_status(403);
    assert_eq!(refused.error_message(), "The requested image has been deactivated. Image data download is prohibited.");
    let served = app.request(Method::GET, &format!("/v2/images/{id}/file"), &admin, Body::empty()).await;
    served.assert_status(200);
    assert_eq!(served.body, b"payload");
    let stranger = [("x-identity-status", "Confirmed"), ("x-project-id", "p2"), ("x-roles", "member"), ("accept", "application/json")];
    app.request(Method::GET, &format!("/v2/images/{id}/file"), &stranger, Body::empty()).await.assert_status(404);
    let mut stranger_upload = stranger.to_vec();
    stranger_upload.push(("content-type", "application/octet-stream"));
    app.request(Method::PUT, &format!("/v2/images/{id}/file"), &stranger_upload, Body::from("x")).await.assert_status(404);
});

all_databases!(fn data_orphaned_by_a_crash_is_replaced_by_the_next_upload(app) {
    let id = app.create_raw_image().await;
    // What a node that stopped between committing and recording would leave behind.
    std::fs::write(app.images_dir.join(&id), b"orphaned bytes").expect("plant an orphan");
    app.upload(&id, b"fresh".to_vec()).await.assert_status(204);
    assert_eq!(app.get(&format!("/v2/images/{id}/file")).await.body, b"fresh");
    assert_eq!(image(&app, &id).await["size"], 5);
});

all_databases!(fn an_upload_reset_by_another_node_cannot_overwrite_a_newer_one(app) {
    let id = app.create_raw_image().await;
    let (frames, first) = start_upload(&app, &id, b"old-".to_vec()).await;
    // Another node decides that the first upload's node died, and a new upload wins.
    app.execute(&format!("UPDATE images SET upload_heartbeat = '2000-01-01 00:00:00' WHERE id = '{id}'")).await;
    assert_eq!(app.services.data.reconcile(Duration::from_secs(300)).await.expect("reconciles"), 1);
    app.upload(&id, b"new".to_vec()).await.assert_status(204);
    // The first upload was only slow: it finishes, and must not touch the new data.
    frames.send(b"data".to_vec()).await.expect("sends");
    drop(frames);
    let response = first.await.expect("joins");
    assert_eq!(response.status(), 409);
    assert_eq!(image(&app, &id).await["status"], "active");
    assert_eq!(app.get(&format!("/v2/images/{id}/file")).await.body, b"new");
    assert_eq!(app.stored_files(), [id.as_str()]);
});

all_databases!(fn many_uploads_share_a_small_memory_budget_without_deadlock(app, "[DEFAULT]\nupload_memory_budget = 1048576\n") {
    let app = std::sync::Arc::new(app);
    let mut uploads = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let app = app.clone();
        uploads.spawn(async move {
            let id = app.create_raw_image().await;
            let data = sample(3 << 20);
            let frames: Vec<Result<Bytes, std::io::Error>> =
                data.chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
            let response = put_file(&app, &id, &[], Body::from_stream(stream::iter(frames))).await;
            (response.status.as_u16(), image(&app, &id).await["checksum"].clone(), md5(&data))
        });
    }
    let finished = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(result) = uploads.join_next().await {
            let (status, checksum, expected) = result.expect("joins");
            assert_eq!(status, 204);
            assert_eq!(checksum, expected);
        }
    })
    .await;
    assert!(finished.is_ok(), "uploads deadlocked on the memory budget");
});
