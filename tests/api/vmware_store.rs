//! The Image API over the VMware store, against VMware's vCenter simulator
//! (`scripts/lab-vcsim`, `GLINT_TEST_VMWARE_*`): the lab's instance, each test in an image folder
//! of its own, and private instances for a session that expires and a server that goes away
//! and comes back. Without the lab these tests fail; they never skip.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::Method;
use glint_store::{Location, ReaderBody, Store};
use glint_store_vmware::lab::{var, Simulator};
use glint_store_vmware::{DatastoreSpec, VmwareConfig, VmwareStore};

use crate::helpers::{Backend, TestApp};
use crate::image_data::{cut_body, image, put_file, sample, upload_announced_or_chunked};

fn folder() -> String {
    format!(
        "glint-api-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A server whose default store is the VMware store on `host`, images in `folder`.
async fn app_on(backend: Backend, host: &str, folder: &str, extra: &str) -> TestApp {
    let text = format!(
        "[DEFAULT]\nenabled_backends = vcenter:vmware, local:file\n\
         [glance_store]\ndefault_backend = vcenter\n\
         [vcenter]\nvmware_server_host = {host}\nvmware_server_username = {}\n\
         vmware_server_password = {}\nvmware_ca_file = {}\n\
         vmware_datastores = {dc}:LocalDS_0:10\nvmware_datastores = {dc}:LocalDS_1:10\n\
         vmware_store_image_dir = /{folder}\nvmware_task_poll_interval = 1\n{extra}",
        var("VMWARE_USER"),
        var("VMWARE_PASSWORD"),
        var("VMWARE_CA_FILE"),
        dc = var("VMWARE_DATACENTER"),
    );
    TestApp::start(backend, &text).await
}

async fn app(backend: Backend) -> (TestApp, String) {
    let folder = folder();
    (
        app_on(backend, &var("VMWARE_HOST"), &folder, "").await,
        folder,
    )
}

/// The files of the image folder on both datastores.
fn files(root: &Path, folder: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for datastore in ["LocalDS_0", "LocalDS_1"] {
        if let Ok(entries) = std::fs::read_dir(root.join(datastore).join(folder)) {
            out.extend(entries.map(|e| e.expect("entry").path()));
        }
    }
    out.sort();
    out
}

/// A VMware store of its own (its own session) on the lab, to read what Glint wrote through
/// the datastore file interface.
fn outside_reader(folder: &str) -> VmwareStore {
    let datastores = ["LocalDS_0", "LocalDS_1"]
        .iter()
        .map(|ds| {
            DatastoreSpec::parse(&format!("{}:{ds}", var("VMWARE_DATACENTER"))).expect("valid")
        })
        .collect();
    let config = VmwareConfig {
        image_dir: format!("/{folder}"),
        ca_file: Some(PathBuf::from(var("VMWARE_CA_FILE"))),
        ..VmwareConfig::new(
            "outside",
            &var("VMWARE_HOST"),
            &var("VMWARE_USER"),
            &var("VMWARE_PASSWORD"),
            datastores,
        )
    };
    VmwareStore::new(config).expect("store builds")
}

fn lab_root() -> PathBuf {
    PathBuf::from(var("VMWARE_DATASTORE_DIR"))
}

async fn location_of(app: &TestApp, id: &str) -> String {
    app.scalar(&format!(
        "SELECT value FROM image_locations WHERE image_id = '{id}'"
    ))
    .await
}

/// The datastore file a `vsphere://` location names, in the simulator's datastore folders.
fn file_of(root: &Path, location: &str) -> PathBuf {
    let (path, query) = location.split_once('?').expect("a query");
    let path = path.split_once("/folder/").expect("a /folder/ path").1;
    let datastore = query
        .split('&')
        .find_map(|p| p.strip_prefix("dsName="))
        .expect("dsName");
    root.join(datastore).join(path)
}

macro_rules! vmware_databases {
    (fn $name:ident($app:ident, $folder:ident) $body:block) => {
        mod $name {
            use super::*;
            async fn run(($app, $folder): (TestApp, String)) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { run(app(Backend::Sqlite).await).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { run(app(Backend::Postgres).await).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() { run(app(Backend::MySql).await).await }
        }
    };
}

vmware_databases!(fn images_are_datastore_files_read_whole_and_by_range(app, folder) {
    let root = lab_root();
    for (len, announced) in [(100usize, true), (3 << 20 | 321, true), (2 << 20 | 5, false), (0, true)] {
        let id = app.create_raw_image().await;
        let data = sample(len);
        upload_announced_or_chunked(&app, &id, &data, announced).await.assert_status(204);
        let shown = image(&app, &id).await;
        assert_eq!(shown["status"], "active");
        assert_eq!(shown["stores"], "vcenter");
        let got = app.get(&format!("/v2/images/{id}/file")).await;
        got.assert_status(200);
        assert!(got.body == data, "{len} bytes read back");
        if len > 20 {
            let ranged = app.request(Method::GET, &format!("/v2/images/{id}/file"),
                &[("range", "bytes=10-19")], Body::empty()).await;
            ranged.assert_status(206);
            assert_eq!(ranged.body, data[10..20]);
        }
        // Glance's location form, and the very bytes in the datastore's file.
        let location = location_of(&app, &id).await;
        let prefix = format!("vsphere://{}/folder/{folder}/{id}?dsName=LocalDS_", var("VMWARE_HOST"));
        assert!(location.starts_with(&prefix) && location.ends_with("&dcPath=DC0"), "{location}");
        assert!(std::fs::read(file_of(&root, &location)).expect("the datastore file") == data);
        // And through the datastore file interface, on a session of its own.
        let through_interface = outside_reader(&folder)
            .reader(&Location::parse(&location).expect("parses"), None)
            .await
            .expect("the file interface serves it");
        let ReaderBody::Stream(mut stream) = through_interface.body else {
            panic!("a stream")
        };
        let mut read = Vec::new();
        while let Some(frame) = futures_util::StreamExt::next(&mut stream).await {
            read.extend_from_slice(&frame.expect("reads"));
        }
        assert!(read == data, "the file interface serves the bytes uploaded");
    }
    assert_eq!(files(&root, &folder).len(), 4, "one file per image, nothing else");
    let listed = app.get("/v2/images").await.json();
    for shown in listed["images"].as_array().expect("images") {
        let id = shown["id"].as_str().expect("id");
        app.delete(&format!("/v2/images/{id}")).await.assert_status(204);
    }
    assert!(files(&root, &folder).is_empty(), "deletion removed every file");
});

vmware_databases!(fn failed_uploads_leave_no_file(app, folder) {
    let root = lab_root();
    let cut = app.create_raw_image().await;
    put_file(&app, &cut, &[], cut_body(vec![sample(3 << 20), sample(1 << 20)])).await.assert_status(400);
    assert_eq!(image(&app, &cut).await["status"], "queued");
    let short = app.create_raw_image().await;
    put_file(&app, &short, &[("x-openstack-image-size", "3000000")], Body::from(sample(2_000_000)))
        .await
        .assert_status(400);
    let mut left = files(&root, &folder);
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        left = files(&root, &folder);
    }
    assert!(left.is_empty(), "{left:?}");
    app.upload(&cut, sample(1000)).await.assert_status(204);
    assert_eq!(files(&root, &folder).len(), 1);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_detail_shows_the_vmware_store_without_credentials() {
    let (app, folder) = app(Backend::Sqlite).await;
    let detail = app.get("/v2/info/stores/detail").await;
    let text = String::from_utf8_lossy(&detail.body).into_owned();
    assert!(!text.contains(&var("VMWARE_PASSWORD")), "{text}");
    let vmware = detail.json()["stores"]
        .as_array()
        .and_then(|stores| stores.iter().find(|s| s["id"] == "vcenter"))
        .cloned()
        .expect("the vmware store is listed");
    assert_eq!(vmware["type"], "vmware");
    assert_eq!(vmware["default"], "true");
    assert_eq!(
        vmware["properties"]["vmware_store_image_dir"],
        format!("/{folder}")
    );
    assert_eq!(
        vmware["properties"]["vmware_datastores"],
        serde_json::json!(["DC0:LocalDS_0:10", "DC0:LocalDS_1:10"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_that_expire_and_a_server_that_goes_away() {
    let mut server = Simulator::start(&["-idle", "1s"]).await;
    let folder = folder();
    let app = app_on(
        Backend::Sqlite,
        server.host(),
        &folder,
        "vmware_api_retry_count = 2\n",
    )
    .await;
    let idle = std::time::Duration::from_millis(2_500);
    let id = app.create_raw_image().await;
    let data = sample(2 << 20 | 7);
    app.upload(&id, data.clone()).await.assert_status(204);
    // The session expires between calls: each logs in again.
    tokio::time::sleep(idle).await;
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == data);
    tokio::time::sleep(idle).await;
    let second = app.create_raw_image().await;
    app.upload(&second, sample(1000)).await.assert_status(204);

    // The server goes away: reads and uploads answer 503, and the image stays as it was.
    server.stop().await;
    app.get(&format!("/v2/images/{id}/file"))
        .await
        .assert_status(503);
    let third = app.create_raw_image().await;
    app.upload(&third, sample(1000)).await.assert_status(503);
    assert_eq!(image(&app, &id).await["status"], "active");
    assert_eq!(image(&app, &third).await["status"], "queued");

    // It comes back (new sessions, new object references): everything works again.
    server.run().await;
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == data);
    app.upload(&third, sample(1000)).await.assert_status(204);
    app.delete(&format!("/v2/images/{id}"))
        .await
        .assert_status(204);
    let location = file_of(
        server.datastores(),
        &format!("vsphere://x/folder/{folder}/{id}?dsName=LocalDS_0"),
    );
    let other = file_of(
        server.datastores(),
        &format!("vsphere://x/folder/{folder}/{id}?dsName=LocalDS_1"),
    );
    assert!(
        !location.exists() && !other.exists(),
        "deleted after the restart"
    );
}
