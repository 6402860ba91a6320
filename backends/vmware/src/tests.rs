//! The conformance suite and the VMware store's own cases against VMware's vCenter simulator
//! (`scripts/lab-vcsim`): the lab's instance for the suite, each case in an image folder of its
//! own, and private instances (their own port and datastores) for the cases that need a short
//! session lifetime, a chosen free space, or a server that stops and starts again. Without the
//! lab's variables these tests fail, never skip.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use glint_store::conformance::{self, Subject};
use glint_store::{Chunk, Location, Store, StoreError, Stored};

use super::*;
use crate::lab::{var, Simulator};

fn folder() -> String {
    format!("glint-test-{}", uuid::Uuid::new_v4().simple())
}

/// A store on the server at `host`, with both datastores of DC0 at the given weights.
fn config_for(host: &str, folder: &str, weights: [i64; 2]) -> VmwareConfig {
    let datastores = ["LocalDS_0", "LocalDS_1"]
        .iter()
        .zip(weights)
        .map(|(name, weight)| DatastoreSpec {
            datacenter: var("VMWARE_DATACENTER"),
            datastore: (*name).to_owned(),
            weight,
        })
        .collect();
    VmwareConfig {
        image_dir: format!("/{folder}"),
        ca_file: Some(PathBuf::from(var("VMWARE_CA_FILE"))),
        task_poll_interval: Duration::from_secs(1),
        ..VmwareConfig::new(
            "vmware",
            host,
            &var("VMWARE_USER"),
            &var("VMWARE_PASSWORD"),
            datastores,
        )
    }
}

fn lab_config(folder: &str) -> VmwareConfig {
    config_for(&var("VMWARE_HOST"), folder, [0, 0])
}

async fn subject() -> Subject {
    let host = var("VMWARE_HOST");
    let id = conformance::image_id(1);
    let foreign = [
        format!(
            "vsphere://vcenter.example/folder/openstack_glance/{id}?dsName=LocalDS_0&dcPath=DC0"
        ),
        format!("file:///var/lib/glance/images/{id}"),
        format!("s3://{host}/bucket/{id}"),
        format!("https://{host}/folder/openstack_glance/{id}?dsName=LocalDS_0&dcPath=DC0"),
    ]
    .iter()
    .map(|uri| Location::parse(uri).expect("parses"))
    .collect();
    Subject {
        store: Box::new(VmwareStore::new(lab_config(&folder())).expect("store builds")),
        foreign,
        keep: None,
    }
}

glint_store::conformance_tests!(subject);

/// The file the datastore keeps for `location`, read from the simulator's datastore folder.
fn datastore_file(root: impl AsRef<std::path::Path>, location: &Location) -> PathBuf {
    let Location::Vsphere(l) = location else {
        panic!("{location} is not a vsphere location")
    };
    root.as_ref().join(l.datastore()).join(l.path())
}

async fn read(store: &dyn Store, location: &Location) -> Vec<u8> {
    conformance::read_all(store.reader(location, None).await.expect("reader")).await
}

#[tokio::test]
async fn uploads_are_the_datastore_files_and_deletion_removes_them() {
    let folder = folder();
    let store = VmwareStore::new(lab_config(&folder)).expect("store builds");
    let bytes = conformance::data(3 << 20 | 5, 40);
    let id = conformance::image_id(40);
    let stored = conformance::put(&store, &id, &bytes, false).await;
    let uri = stored.location.uri();
    assert!(
        uri.starts_with(&format!(
            "vsphere://{}/folder/{folder}/{id}?dsName=LocalDS_",
            var("VMWARE_HOST")
        )),
        "{uri}"
    );
    assert!(uri.ends_with("&dcPath=DC0"), "{uri}");
    let file = datastore_file(var("VMWARE_DATASTORE_DIR"), &stored.location);
    assert!(std::fs::read(&file).expect("the datastore has the file") == bytes);
    // Nothing else is left in the folder: the temporary file was moved into place.
    let names: Vec<_> = std::fs::read_dir(file.parent().expect("folder"))
        .expect("folder lists")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from(&id)]);
    store.delete(&stored.location).await.expect("delete");
    assert!(!file.exists(), "deletion removed {}", file.display());
}

#[tokio::test]
async fn files_glance_wrote_are_read_and_deleted() {
    let folder = folder();
    let store = VmwareStore::new(lab_config(&folder)).expect("store builds");
    let id = conformance::image_id(41);
    let bytes = conformance::data(100_000, 41);
    let dir = PathBuf::from(var("VMWARE_DATASTORE_DIR"))
        .join("LocalDS_1")
        .join(&folder);
    std::fs::create_dir_all(&dir).expect("folder");
    std::fs::write(dir.join(&id), &bytes).expect("file");
    // Glance's form: dsName first, dcPath second.
    let location = Location::parse(&format!(
        "vsphere://{}/folder/{folder}/{id}?dsName=LocalDS_1&dcPath=DC0",
        var("VMWARE_HOST")
    ))
    .expect("parses");
    assert!(store.owns(&location));
    assert!(read(&store, &location).await == bytes);
    assert_eq!(store.size(&location).await.expect("size"), 100_000);
    let committed = store.committed_data().await.expect("lists");
    assert!(committed
        .iter()
        .any(|d| d.image_id == id && d.location == location));
    store.delete(&location).await.expect("delete");
    assert!(!dir.join(&id).exists());
    assert!(matches!(
        store.delete(&location).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_writer_names_data_already_there_on_any_datastore() {
    let folder = folder();
    let store = VmwareStore::new(lab_config(&folder)).expect("store builds");
    let id = conformance::image_id(48);
    // Left by an interrupted write on the datastore new data does not go to.
    let dir = PathBuf::from(var("VMWARE_DATASTORE_DIR"))
        .join("LocalDS_1")
        .join(&folder);
    std::fs::create_dir_all(&dir).expect("folder");
    std::fs::write(dir.join(&id), b"left").expect("file");
    let refused = store
        .writer(&id, &conformance::options(None))
        .await
        .map(drop);
    let Err(StoreError::AlreadyExists(uri)) = refused else {
        panic!("{refused:?}")
    };
    let location = Location::parse(&uri).expect("the error names a location");
    assert!(uri.contains("dsName=LocalDS_1"), "{uri}");
    assert_eq!(read(&store, &location).await, b"left");
    store.delete(&location).await.expect("delete");
}

async fn write_and_commit(
    store: &dyn Store,
    id: &str,
    parts: &[&[u8]],
    pause: Duration,
) -> Result<Stored, StoreError> {
    let mut writer = store.writer(id, &conformance::options(None)).await?;
    for (n, part) in parts.iter().enumerate() {
        if n > 0 {
            tokio::time::sleep(pause).await;
        }
        writer
            .write(Chunk::from(Bytes::copy_from_slice(part)))
            .await?;
    }
    writer.commit().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_renewed_mid_upload_and_between_calls() {
    let server = Simulator::start(&["-idle", "1s"]).await;
    let config = VmwareConfig {
        api_retry_count: 3,
        ..config_for(server.host(), &folder(), [0, 0])
    };
    let store = VmwareStore::new(config).expect("store builds");
    let idle = Duration::from_millis(2_500);
    // The session ends while the data streams: the upload goes on, and the move at commit
    // logs in again.
    let first = conformance::data(1 << 20, 42);
    let second = conformance::data(1 << 20, 43);
    let id = conformance::image_id(42);
    let stored = write_and_commit(&store, &id, &[&first, &second], idle)
        .await
        .expect("the upload outlives its session");
    let whole = [first, second].concat();
    assert!(
        std::fs::read(datastore_file(server.datastores(), &stored.location)).expect("file")
            == whole
    );
    // Idle past the session's end before each call: a read (the file interface answers 401),
    // a size, a ranged read, a new upload, a delete (SOAP answers NotAuthenticated).
    tokio::time::sleep(idle).await;
    assert!(read(&store, &stored.location).await == whole);
    tokio::time::sleep(idle).await;
    assert_eq!(store.size(&stored.location).await.expect("size"), 2 << 20);
    tokio::time::sleep(idle).await;
    let range = ByteRange { start: 10, end: 20 };
    let reader = store
        .reader(&stored.location, Some(range))
        .await
        .expect("ranged reader");
    assert!(conformance::read_all(reader).await == whole[10..20]);
    tokio::time::sleep(idle).await;
    conformance::put(&store, &conformance::image_id(43), b"after", true).await;
    tokio::time::sleep(idle).await;
    store.delete(&stored.location).await.expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_going_away_and_coming_back() {
    let mut server = Simulator::start(&[]).await;
    let config = VmwareConfig {
        api_retry_count: 2,
        ..config_for(server.host(), &folder(), [0, 0])
    };
    let store = VmwareStore::new(config).expect("store builds");
    let bytes = conformance::data(1 << 20, 44);
    let stored = conformance::put(&store, &conformance::image_id(44), &bytes, true).await;

    // An upload under way when the server goes: it fails, and leaves no image.
    let mut writer = store
        .writer(&conformance::image_id(45), &conformance::options(None))
        .await
        .expect("writer");
    writer
        .write(Chunk::from(Bytes::from(conformance::data(1 << 20, 45))))
        .await
        .expect("write");
    server.stop().await;
    let cut = async {
        writer
            .write(Chunk::from(Bytes::from(conformance::data(1 << 20, 46))))
            .await?;
        writer.commit().await
    }
    .await;
    assert!(
        matches!(
            cut,
            Err(StoreError::Unavailable { .. } | StoreError::Backend { .. })
        ),
        "{cut:?}"
    );

    // Down: every call says so, as an error worth retrying.
    for result in [
        store.reader(&stored.location, None).await.map(drop),
        store.size(&stored.location).await.map(drop),
        store.delete(&stored.location).await,
        store
            .writer(&conformance::image_id(47), &conformance::options(None))
            .await
            .map(drop),
    ] {
        assert!(
            matches!(
                result,
                Err(StoreError::Unavailable {
                    retryable: true,
                    ..
                })
            ),
            "{result:?}"
        );
    }

    // Back on the same port and datastores, with new sessions and new object references.
    server.run().await;
    assert!(read(&store, &stored.location).await == bytes);
    let ids: Vec<_> = store
        .committed_data()
        .await
        .expect("lists")
        .into_iter()
        .map(|d| d.image_id)
        .collect();
    assert_eq!(
        ids,
        [conformance::image_id(44)],
        "the cut upload left no image"
    );
    assert_eq!(
        store.sweep_abandoned(Duration::ZERO).await.expect("sweeps"),
        1,
        "its temporary file is swept"
    );
    conformance::put(&store, &conformance::image_id(47), b"again", true).await;
    store.delete(&stored.location).await.expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datastores_are_chosen_by_weight_then_free_space() {
    // LocalDS_0 reports 4 MiB free, LocalDS_1 1 MiB.
    let server = Simulator::start(&["-free", "LocalDS_0=4194304,LocalDS_1=1048576"]).await;
    let placed = |stored: &Stored| match &stored.location {
        Location::Vsphere(l) => l.datastore().to_owned(),
        other => panic!("{other}"),
    };
    // Equal weights: the most free space.
    let store = VmwareStore::new(config_for(server.host(), &folder(), [0, 0])).expect("store");
    let stored = conformance::put(&store, &conformance::image_id(50), b"small", true).await;
    assert_eq!(placed(&stored), "LocalDS_0");
    // The heavier datastore while it has room, the next weight when it has not.
    let store = VmwareStore::new(config_for(server.host(), &folder(), [0, 10])).expect("store");
    let stored = conformance::put(&store, &conformance::image_id(51), b"small", true).await;
    assert_eq!(placed(&stored), "LocalDS_1");
    let stored = conformance::put(
        &store,
        &conformance::image_id(52),
        &conformance::data(2 << 20, 52),
        true,
    )
    .await;
    assert_eq!(placed(&stored), "LocalDS_0");
    // Room nowhere: refused before a byte is sent.
    let refused = store
        .writer(
            &conformance::image_id(53),
            &conformance::options(Some(5 << 20)),
        )
        .await
        .map(drop);
    assert!(
        matches!(refused, Err(StoreError::StorageFull { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn misconfiguration_is_reported() {
    let expect_misconfigured = |result: Result<(), StoreError>, what: &str| {
        assert!(
            matches!(result, Err(StoreError::Misconfigured { .. })),
            "{what}: {result:?}"
        );
    };
    let wrong_password = VmwareConfig {
        password: Secret("wrong".to_owned()),
        ..lab_config(&folder())
    };
    let store = VmwareStore::new(wrong_password).expect("builds");
    let result = store
        .writer(&conformance::image_id(60), &conformance::options(None))
        .await
        .map(drop);
    expect_misconfigured(result, "wrong password");

    let mut no_such_datastore = lab_config(&folder());
    no_such_datastore.datastores[1].datastore = "NoSuchDS".to_owned();
    let store = VmwareStore::new(no_such_datastore).expect("builds");
    let result = store
        .writer(&conformance::image_id(61), &conformance::options(None))
        .await
        .map(drop);
    expect_misconfigured(result, "unknown datastore");

    let mut no_such_datacenter = lab_config(&folder());
    no_such_datacenter.datastores[0].datacenter = "DC9".to_owned();
    let store = VmwareStore::new(no_such_datacenter).expect("builds");
    let result = store
        .writer(&conformance::image_id(62), &conformance::options(None))
        .await
        .map(drop);
    expect_misconfigured(result, "unknown datacenter");

    // The lab's certificate is not trusted without its CA.
    let untrusted = VmwareConfig {
        ca_file: None,
        ..lab_config(&folder())
    };
    let store = VmwareStore::new(untrusted).expect("builds");
    let result = store
        .writer(&conformance::image_id(63), &conformance::options(None))
        .await
        .map(drop);
    assert!(
        matches!(&result, Err(StoreError::Unavailable { source, .. }) if source.to_string().contains("certificate")),
        "{result:?}"
    );

    for bad in [
        VmwareConfig {
            datastores: Vec::new(),
            ..lab_config("x")
        },
        VmwareConfig {
            api_retry_count: 0,
            ..lab_config("x")
        },
        VmwareConfig {
            task_poll_interval: Duration::ZERO,
            ..lab_config("x")
        },
        VmwareConfig {
            server_host: String::new(),
            ..lab_config("x")
        },
        VmwareConfig {
            server_host: "user@host".to_owned(),
            ..lab_config("x")
        },
        VmwareConfig {
            image_dir: "/a?b".to_owned(),
            ..lab_config("x")
        },
    ] {
        assert!(
            matches!(
                VmwareStore::new(bad.clone()),
                Err(StoreError::Misconfigured { .. })
            ),
            "{bad:?}"
        );
    }
}
