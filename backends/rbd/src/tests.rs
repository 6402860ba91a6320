//! The conformance suite and the RBD store's own cases against the lab's single-node Ceph
//! (`scripts/lab-ceph`): each case in a pool of its own, made and removed here as
//! `client.admin`. Without `GLINT_TEST_CEPH_*` these tests fail, never skip.

use std::time::Duration;

use bytes::Bytes;
use glint_store::conformance::{self, Subject};
use glint_store::{Chunk, Location, Store, StoreError};

use super::*;

fn var(name: &str) -> String {
    std::env::var(format!("GLINT_TEST_CEPH_{name}")).unwrap_or_else(|_| {
        panic!("GLINT_TEST_CEPH_{name} is not set: start scripts/lab-ceph and eval its env")
    })
}

fn admin() -> Arc<Cluster> {
    let conf = var("CONF");
    Arc::new(
        Cluster::connect(None, Some(std::path::Path::new(&conf)), Some(30))
            .unwrap_or_else(|e| panic!("connects to the lab's Ceph: {e}")),
    )
}

/// A pool made for one test, removed when dropped.
struct Pool {
    name: String,
    cluster: Arc<Cluster>,
}

impl Pool {
    fn new() -> Pool {
        let name = format!(
            "glint-test-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let cluster = admin();
        cluster
            .create_rbd_pool(&name)
            .unwrap_or_else(|e| panic!("creates pool {name}: {e}"));
        Pool { name, cluster }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = self.cluster.delete_pool(&self.name);
    }
}

fn config(pool: &str) -> RbdConfig {
    RbdConfig {
        name: "rbd".into(),
        pool: pool.into(),
        user: None,
        ceph_conf: Some(var("CONF").into()),
        // Objects of 1 MiB: the suite's images of a few MiB span several.
        chunk_size: 1 << 20,
        connect_timeout: Some(30),
        thin_provisioning: false,
    }
}

async fn subject_with(config_of: impl FnOnce(&str) -> RbdConfig) -> Subject {
    let pool = Pool::new();
    let store = RbdStore::new(config_of(&pool.name)).expect("store builds");
    // Known before `owns` is asked (the store learns it on its first connection).
    store.shared.connection().await.expect("connects");
    let id = conformance::image_id(1);
    let foreign = [
        format!("rbd://0000-other-cluster/{}/{id}/snap", pool.name),
        format!("file:///var/lib/glance/images/{id}"),
        format!("swift+config://ref1/glance/{id}"),
    ]
    .iter()
    .map(|uri| Location::parse(uri).expect("parses"))
    .collect();
    Subject {
        store: Box::new(store),
        foreign,
        keep: Some(Box::new(pool)),
    }
}

mod ceph {
    async fn subject() -> glint_store::conformance::Subject {
        super::subject_with(super::config).await
    }
    glint_store::conformance_tests!(subject);
}

mod ceph_thin {
    async fn subject() -> glint_store::conformance::Subject {
        super::subject_with(|pool| super::RbdConfig {
            thin_provisioning: true,
            ..super::config(pool)
        })
        .await
    }
    glint_store::conformance_tests!(subject);
}

async fn put(store: &RbdStore, id: &str, data: &[u8], announce: bool) -> glint_store::Stored {
    let options = conformance::options(announce.then_some(data.len() as u64));
    let mut writer = store.writer(id, &options).await.expect("writer");
    for piece in data.chunks(300_000) {
        writer
            .write(Chunk::from(Bytes::copy_from_slice(piece)))
            .await
            .expect("writes");
    }
    writer.commit().await.expect("commits")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_snapshotted_protected_and_refuse_deletion_while_cloned() {
    let pool = Pool::new();
    let store = RbdStore::new(config(&pool.name)).expect("store builds");
    let id = conformance::image_id(30);
    let data = conformance::data(3 << 20 | 17, 30);
    let stored = put(&store, &id, &data, false).await;
    let fsid = store.shared.connection().await.expect("connects").fsid;
    assert_eq!(
        stored.location.uri(),
        format!("rbd://{fsid}/{}/{id}/snap", pool.name)
    );
    // Nova and Cinder clone from the protected snapshot.
    let io = pool.cluster.ioctx(&pool.name).expect("ioctx");
    io.clone_image(&id, SNAPSHOT, "a-volume")
        .unwrap_or_else(|e| panic!("clones: {e}"));
    match store.delete(&stored.location).await {
        Err(StoreError::InUse { why, .. }) => assert!(why.contains("cloned"), "{why}"),
        other => panic!("deleting a cloned image: {other:?}"),
    }
    // Nothing was taken away.
    let reader = store.reader(&stored.location, None).await.expect("reader");
    assert!(conformance::read_all(reader).await == data);
    let image = io.open(&id, None, true).expect("opens");
    assert!(image.snap_exists(SNAPSHOT).expect("asks"));
    drop(image);
    io.remove("a-volume").expect("removes the clone");
    store
        .delete(&stored.location)
        .await
        .expect("deletes once the clone is gone");
    assert!(matches!(
        store.size(&stored.location).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_of_unknown_size_end_at_their_data() {
    let pool = Pool::new();
    let store = RbdStore::new(config(&pool.name)).expect("store builds");
    let data = conformance::data(21 << 20 | 5, 31);
    let stored = put(&store, &conformance::image_id(31), &data, false).await;
    assert_eq!(stored.size, data.len() as u64);
    assert_eq!(
        store.size(&stored.location).await.expect("size"),
        data.len() as u64
    );
    let range = ByteRange {
        start: (8 << 20) - 3,
        end: (16 << 20) + 3,
    };
    let reader = store
        .reader(&stored.location, Some(range))
        .await
        .expect("reader");
    assert!(conformance::read_all(reader).await == data[range.start as usize..range.end as usize]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeros_are_not_written_when_thin() {
    let pool = Pool::new();
    let store = RbdStore::new(RbdConfig {
        thin_provisioning: true,
        ..config(&pool.name)
    })
    .expect("store builds");
    let mut data = vec![0u8; 8 << 20];
    data.extend_from_slice(b"tail");
    let stored = put(&store, &conformance::image_id(32), &data, true).await;
    let reader = store.reader(&stored.location, None).await.expect("reader");
    assert!(conformance::read_all(reader).await == data);
    // Only the last object holds data: `rbd du` counts what is allocated.
    let du = std::process::Command::new("rbd")
        .args(["-c", &var("CONF"), "du", "--format", "json"])
        .arg(format!("{}/{}", pool.name, conformance::image_id(32)))
        .output()
        .expect("runs rbd du");
    let report: serde_json::Value = serde_json::from_slice(&du.stdout).expect("rbd du's JSON");
    let used = report["images"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["used_size"].as_u64())
        .max()
        .unwrap_or_else(|| panic!("no sizes in {report}"));
    assert!(used <= 2 << 20, "{used} bytes allocated of {}", data.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_glance_user_writes_in_the_images_pool() {
    // The lab's client.glance has `profile rbd pool=images`, as deployments give Glance.
    let store = RbdStore::new(RbdConfig {
        user: Some(var("USER")),
        pool: var("POOL"),
        ..config("unused")
    })
    .expect("store builds");
    let id = uuid::Uuid::new_v4().to_string();
    let stored = put(&store, &id, b"glance's bytes", true).await;
    let reader = store.reader(&stored.location, None).await.expect("reader");
    assert_eq!(conformance::read_all(reader).await, b"glance's bytes");
    store.delete(&stored.location).await.expect("deletes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_pool_or_unknown_user_is_a_configuration_error() {
    let store = RbdStore::new(config("no-such-pool")).expect("store builds");
    match store
        .writer(&conformance::image_id(33), &conformance::options(Some(1)))
        .await
    {
        Err(StoreError::Misconfigured { why, .. }) => {
            assert!(why.contains("no-such-pool"), "{why}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    let store = RbdStore::new(RbdConfig {
        user: Some("nobody".into()),
        ..config("images")
    })
    .expect("store builds");
    match store
        .writer(&conformance::image_id(33), &conformance::options(Some(1)))
        .await
    {
        Err(StoreError::Misconfigured { why, .. }) => {
            assert!(why.contains("client.nobody"), "{why}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_spares_a_slow_writer_and_removes_a_dead_one() {
    let pool = Pool::new();
    let store = RbdStore::new(config(&pool.name)).expect("store builds");
    let mut live = store
        .writer(&conformance::image_id(34), &conformance::options(None))
        .await
        .expect("writer");
    live.write(Chunk::from(Bytes::from_static(b"slow")))
        .await
        .expect("writes");
    // A temporary image nobody writes: a killed process's, stamped long ago.
    let io = pool.cluster.ioctx(&pool.name).expect("ioctx");
    let dead = format!("{}.glint-000000000000", conformance::image_id(35));
    io.create(&dead, 1 << 20, 20).expect("creates");
    io.open(&dead, None, false)
        .and_then(|image| image.metadata_set("glint.heartbeat", "1000"))
        .expect("stamps");
    assert_eq!(
        store
            .sweep_abandoned(Duration::from_secs(900))
            .await
            .expect("sweeps"),
        1
    );
    let stored = live.commit().await.expect("the live writer finishes");
    let reader = store.reader(&stored.location, None).await.expect("reader");
    assert_eq!(conformance::read_all(reader).await, b"slow");
}
