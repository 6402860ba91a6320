//! The Image API over the RBD store, against the lab's single-node Ceph (`scripts/lab-ceph`,
//! `GLINT_TEST_CEPH_*`; built with `--features rbd`). Every test gets a pool of its own, made
//! and removed with Ceph's own command-line tools as `client.admin`. Without the cluster
//! these tests fail; they never skip.

use std::process::Command;
use std::time::Duration;

use axum::body::Body;
use axum::http::Method;

use crate::helpers::{Backend, TestApp};
use crate::image_data::{cut_body, image, put_file, sample, upload_announced_or_chunked};

fn conf() -> String {
    std::env::var("GLINT_TEST_CEPH_CONF")
        .expect("GLINT_TEST_CEPH_CONF is not set: start scripts/lab-ceph and eval its env")
}

/// Runs a Ceph command-line tool against the lab as `client.admin`; panics on failure.
fn ceph(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool)
        .arg("-c")
        .arg(conf())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("runs {tool}: {e}"));
    assert!(
        output.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A pool made for one test, removed when dropped.
struct Pool(String);

impl Pool {
    fn new() -> Pool {
        let name = format!(
            "glint-api-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        ceph("ceph", &["osd", "pool", "create", &name, "8"]);
        ceph("rbd", &["pool", "init", &name]);
        Pool(name)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = Command::new("ceph")
            .arg("-c")
            .arg(conf())
            .args([
                "osd",
                "pool",
                "rm",
                &self.0,
                &self.0,
                "--yes-i-really-really-mean-it",
            ])
            .output();
    }
}

async fn app(backend: Backend, extra: &str) -> (TestApp, Pool) {
    let pool = Pool::new();
    let text = format!(
        "[DEFAULT]\nenabled_backends = ceph:rbd, local:file\n{extra}\n\
         [glance_store]\ndefault_backend = ceph\n\
         [ceph]\nrbd_store_pool = {}\nrbd_store_ceph_conf = {}\nrbd_store_chunk_size = 1\n",
        pool.0,
        conf()
    );
    (TestApp::start(backend, &text).await, pool)
}

/// The RBD images in the pool.
fn images(pool: &Pool) -> Vec<String> {
    ceph("rbd", &["ls", &pool.0])
        .lines()
        .map(str::to_owned)
        .collect()
}

macro_rules! rbd_databases {
    (fn $name:ident($app:ident, $pool:ident) $body:block) => {
        mod $name {
            use super::*;
            async fn run(($app, $pool): (TestApp, Pool)) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { run(app(Backend::Sqlite, "").await).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { run(app(Backend::Postgres, "").await).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() { run(app(Backend::MySql, "").await).await }
        }
    };
}

rbd_databases!(fn images_go_to_rbd_and_come_back_whole_and_by_range(app, pool) {
    for (len, announced) in [(100usize, true), (3 << 20 | 321, true), (2 << 20 | 5, false), (0, true)] {
        let id = app.create_raw_image().await;
        let data = sample(len);
        upload_announced_or_chunked(&app, &id, &data, announced).await.assert_status(204);
        assert_eq!(image(&app, &id).await["status"], "active");
        let got = app.get(&format!("/v2/images/{id}/file")).await;
        got.assert_status(200);
        assert!(got.body == data, "{len} bytes read back");
        if len > 20 {
            // Glance answers 400 to any range on RBD; Glint serves it.
            let ranged = app.request(Method::GET, &format!("/v2/images/{id}/file"),
                &[("range", "bytes=10-19")], Body::empty()).await;
            ranged.assert_status(206);
            assert_eq!(ranged.body, data[10..20]);
        }
        let location = app.scalar(&format!("SELECT value FROM image_locations WHERE image_id = '{id}'")).await;
        assert!(location.starts_with("rbd://") && location.ends_with(&format!("/{}/{id}/snap", pool.0)), "{location}");
        // The snapshot is protected, as Nova and Cinder need to clone it.
        let info = ceph("rbd", &["snap", "ls", "--format", "json", &format!("{}/{id}", pool.0)]);
        assert!(info.contains("\"name\":\"snap\"") && info.contains("\"protected\":\"true\""), "{info}");
    }
    assert_eq!(images(&pool).len(), 4);
    let ids = images(&pool);
    for id in &ids {
        app.delete(&format!("/v2/images/{id}")).await.assert_status(204);
    }
    assert!(images(&pool).is_empty());
});

rbd_databases!(fn a_cloned_image_cannot_be_deleted_and_stays_as_it_was(app, pool) {
    let id = app.create_raw_image().await;
    app.upload(&id, sample(2 << 20)).await.assert_status(204);
    // A volume or instance disk cloned from it, as Cinder or Nova make one.
    let volume = format!("{}/volume-{}", pool.0, &id[..8]);
    ceph("rbd", &["clone", &format!("{}/{id}@snap", pool.0), &volume]);
    let refused = app.delete(&format!("/v2/images/{id}")).await;
    refused.assert_status(409);
    assert!(String::from_utf8_lossy(&refused.body).contains("in use"), "{}", String::from_utf8_lossy(&refused.body));
    assert_eq!(image(&app, &id).await["status"], "active");
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == sample(2 << 20));
    ceph("rbd", &["rm", &volume]);
    app.delete(&format!("/v2/images/{id}")).await.assert_status(204);
    assert!(images(&pool).is_empty());
});

rbd_databases!(fn failed_uploads_leave_no_rbd_image(app, pool) {
    let cut = app.create_raw_image().await;
    put_file(&app, &cut, &[], cut_body(vec![sample(3 << 20), sample(1 << 20)])).await.assert_status(400);
    assert_eq!(image(&app, &cut).await["status"], "queued");
    let short = app.create_raw_image().await;
    put_file(&app, &short, &[("x-openstack-image-size", "3000000")], Body::from(sample(2_000_000)))
        .await
        .assert_status(400);
    let mut left = images(&pool);
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = images(&pool);
    }
    assert!(left.is_empty(), "{left:?}");
    app.upload(&cut, sample(1000)).await.assert_status(204);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_detail_shows_the_rbd_store() {
    let (app, pool) = app(Backend::Sqlite, "").await;
    let detail = app.get("/v2/info/stores/detail").await.json();
    let rbd = detail["stores"]
        .as_array()
        .and_then(|stores| stores.iter().find(|s| s["id"] == "ceph"))
        .cloned()
        .expect("the rbd store is listed");
    assert_eq!(rbd["type"], "rbd");
    assert_eq!(rbd["properties"]["pool"], pool.0);
    assert_eq!(rbd["properties"]["chunk_size"], 1 << 20);
}
