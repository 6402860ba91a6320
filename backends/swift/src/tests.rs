//! The conformance suite and the Swift store's own cases against real servers: OpenStack
//! Swift (`scripts/lab-swift`, tempauth, SLO and DLO) and Ceph RGW's Swift API
//! (`scripts/lab-ceph`), each case in a container of its own. Without the servers' variables
//! these tests fail, never skip.

use std::time::Duration;

use bytes::Bytes;
use glint_store::conformance::{self, Subject};
use glint_store::{Chunk, Location, Store, StoreError};

use super::*;

/// Which lab: `OSWIFT` (OpenStack Swift) or `SWIFT` (Ceph RGW).
fn var(prefix: &str, name: &str) -> String {
    std::env::var(format!("GLINT_TEST_{prefix}_{name}")).unwrap_or_else(|_| {
        panic!("GLINT_TEST_{prefix}_{name} is not set: start the lab (scripts/lab-swift or scripts/lab-ceph) and eval its env")
    })
}

fn reference(prefix: &str, name: &str) -> SwiftReference {
    SwiftReference {
        name: name.into(),
        auth_address: var(prefix, "AUTH_URL"),
        auth_version: AuthVersion::V1,
        user: var(prefix, "USER"),
        key: Secret(var(prefix, "KEY")),
        user_domain_id: None,
        user_domain_name: None,
        project_domain_id: None,
        project_domain_name: None,
        application_credential: None,
    }
}

/// Segments of 1 MiB from 2 MiB on, so that the suite's images of a few MiB are segmented.
pub(crate) fn config_for(prefix: &str, container: &str) -> SwiftConfig {
    SwiftConfig {
        references: vec![reference(prefix, "ref1")],
        large_object_size: 2 << 20,
        large_object_chunk_size: 1 << 20,
        ..config::defaults_for_tests(container)
    }
}

fn container() -> String {
    format!("glint-test-{}", uuid::Uuid::new_v4().simple())
}

fn subject_with(config: SwiftConfig) -> Subject {
    let container = config.container.clone();
    let id = conformance::image_id(1);
    let foreign = [
        format!("swift+config://ref1/another-container/{id}"),
        format!("swift+config://ref2/{container}/{id}"),
        format!("swift+https://some-endpoint/v1/AUTH_x/{container}/{id}"),
        format!("file:///var/lib/glance/images/{id}"),
        format!("s3://host/{container}/{id}"),
    ]
    .iter()
    .map(|uri| Location::parse(uri).expect("parses"))
    .collect();
    Subject {
        store: Box::new(SwiftStore::new(config).expect("store builds")),
        foreign,
        keep: None,
    }
}

mod openstack_swift {
    async fn subject() -> glint_store::conformance::Subject {
        super::subject_with(super::config_for("OSWIFT", &super::container()))
    }
    glint_store::conformance_tests!(subject);
}

mod rgw {
    async fn subject() -> glint_store::conformance::Subject {
        super::subject_with(super::config_for("SWIFT", &super::container()))
    }
    glint_store::conformance_tests!(subject);
}

/// The lab Keystone's `glint` user (member of project `glint`), Keystone v3, the storage URL
/// from the catalog: OpenStack Swift's `KEY_<project>` account through keystoneauth.
fn keystone_config(container: &str) -> SwiftConfig {
    let var = |name: &str| {
        std::env::var(format!("GLINT_TEST_KEYSTONE_{name}")).unwrap_or_else(|_| {
            panic!("GLINT_TEST_KEYSTONE_{name} is not set: start scripts/lab-keystone (and lab-swift with GLINT_LAB_SWIFT_KEYSTONE) and eval its env")
        })
    };
    SwiftConfig {
        references: vec![SwiftReference {
            name: "ref1".into(),
            auth_address: var("URL"),
            auth_version: AuthVersion::V3,
            user: var("USER"),
            key: Secret(var("KEY")),
            user_domain_id: None,
            user_domain_name: Some("Default".into()),
            project_domain_id: Some("default".into()),
            project_domain_name: None,
            application_credential: None,
        }],
        region: Some("RegionOne".into()),
        ..config_for("OSWIFT", container)
    }
}

mod keystone {
    async fn subject() -> glint_store::conformance::Subject {
        super::subject_with(super::keystone_config(&super::container()))
    }
    glint_store::conformance_tests!(subject);
}

#[tokio::test]
async fn keystone_tokens_are_renewed_between_segments_and_the_catalog_gives_the_account() {
    // Tokens last an hour: with an interval of two, every segment asks Keystone for a new one.
    let container = container();
    let config = SwiftConfig {
        expire_soon_interval: Duration::from_secs(7200),
        ..keystone_config(&container)
    };
    let store = SwiftStore::new(config).expect("store builds");
    let data = conformance::data(3 << 20, 48);
    let stored = put_chunks(&store, &conformance::image_id(48), &data, true).await;
    let reader = store.reader(&stored.location, None).await.expect("reader");
    assert!(conformance::read_all(reader).await == data);
    let auth = store.shared.writer_auth().expect("auth");
    let token = auth
        .token(&store.shared.swift.unpooled)
        .await
        .expect("token");
    assert!(
        token.storage_url.contains("/v1/KEY_"),
        "{}",
        token.storage_url
    );
}

#[tokio::test]
async fn a_wrong_keystone_password_is_a_configuration_error() {
    let mut config = keystone_config(&container());
    config.references[0].key = Secret("not-the-password".into());
    let store = SwiftStore::new(config).expect("store builds");
    match store
        .writer(&conformance::image_id(49), &conformance::options(Some(1)))
        .await
    {
        Err(StoreError::Misconfigured { why, .. }) => {
            assert!(why.contains("refused the store's credentials"), "{why}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// The objects of `container` now (markers and segments included).
async fn objects(store: &SwiftStore, container: &str) -> Vec<String> {
    let auth = store.shared.writer_auth().expect("auth");
    listing::list(&store.shared, &auth, container, "")
        .await
        .expect("lists")
        .into_iter()
        .map(|o| o.name)
        .collect()
}

/// Options for writes of a few MiB: segments of the configured size (with no size announced,
/// segments are sized for the cap).
fn small(size: Option<u64>) -> glint_store::WriteOptions {
    glint_store::WriteOptions {
        max_size: 16 << 20,
        ..conformance::options(size)
    }
}

async fn put_chunks(
    store: &SwiftStore,
    id: &str,
    data: &[u8],
    announce: bool,
) -> glint_store::Stored {
    let options = small(announce.then_some(data.len() as u64));
    let mut writer = store.writer(id, &options).await.expect("writer");
    for piece in data.chunks(300_000) {
        writer
            .write(Chunk::from(Bytes::copy_from_slice(piece)))
            .await
            .expect("writes");
    }
    writer.commit().await.expect("commits")
}

async fn large_objects_land_as_segments(prefix: &str, slo: bool) {
    let container = container();
    let store = SwiftStore::new(config_for(prefix, &container)).expect("store builds");
    let auth = store.shared.writer_auth().expect("auth");
    let info = listing::cluster_info(&store.shared.swift, &auth)
        .await
        .expect("the cluster says what it has");
    assert!(info.slo, "the labs have SLO");
    store
        .shared
        .info
        .set(ClusterInfo { slo, ..info })
        .expect("set before first use");
    let id = conformance::image_id(40);
    let data = conformance::data(3 << 20 | 5, 40);
    let stored = put_chunks(&store, &id, &data, false).await;
    let names = objects(&store, &container).await;
    let segments: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("glint-segments/"))
        .collect();
    assert_eq!(segments.len(), 4, "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("glint-uploads/")),
        "marker removed: {names:?}"
    );
    let head = store
        .shared
        .head(&auth, &container, &id)
        .await
        .expect("head");
    if slo {
        assert_eq!(head.header("x-static-large-object"), Some("True"));
    } else {
        assert!(
            head.header("x-object-manifest").is_some(),
            "{:?}",
            head.headers
        );
    }
    let reader = store.reader(&stored.location, None).await.expect("reader");
    assert!(conformance::read_all(reader).await == data);
    // A range across a segment boundary.
    let range = ByteRange {
        start: (1 << 20) - 10,
        end: (2 << 20) + 10,
    };
    let reader = store
        .reader(&stored.location, Some(range))
        .await
        .expect("reader");
    assert!(conformance::read_all(reader).await == data[range.start as usize..range.end as usize]);
    store.delete(&stored.location).await.expect("deletes");
    assert!(
        objects(&store, &container).await.is_empty(),
        "every segment removed"
    );
}

#[tokio::test]
async fn large_objects_land_as_static_segments_on_openstack_swift() {
    large_objects_land_as_segments("OSWIFT", true).await;
}

#[tokio::test]
async fn large_objects_land_as_dynamic_segments_on_openstack_swift() {
    large_objects_land_as_segments("OSWIFT", false).await;
}

#[tokio::test]
async fn large_objects_land_as_segments_on_rgw() {
    large_objects_land_as_segments("SWIFT", true).await;
    large_objects_land_as_segments("SWIFT", false).await;
}

#[tokio::test]
async fn a_cut_upload_leaves_no_segment() {
    let container = container();
    let store = SwiftStore::new(config_for("OSWIFT", &container)).expect("store builds");
    let id = conformance::image_id(41);
    let mut writer = store.writer(&id, &small(None)).await.expect("writer");
    // Segments stored (the first two are known to be: their answers were awaited when the
    // fourth closed) and a fifth half sent when the client goes away.
    writer
        .write(Chunk::from(Bytes::from(conformance::data(9 << 19, 41))))
        .await
        .expect("writes");
    assert!(objects(&store, &container)
        .await
        .iter()
        .any(|n| n.starts_with("glint-segments/")));
    writer.abort().await.expect("aborts");
    assert!(objects(&store, &container).await.is_empty());
}

/// Glance writes large objects as `<id>-00001`… beside a manifest naming them by prefix.
#[tokio::test]
async fn glances_dynamic_large_objects_are_read_and_deleted_whole() {
    let container = container();
    let store = SwiftStore::new(config_for("OSWIFT", &container)).expect("store builds");
    let auth = store.shared.writer_auth().expect("auth");
    store
        .shared
        .ensure_container(&auth, &container)
        .await
        .expect("container");
    let id = conformance::image_id(42);
    let put = |object: String, headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let store = &store;
        let auth = auth.clone();
        let container = container.clone();
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let answer = store
                .shared
                .swift
                .call(
                    &auth,
                    Method::PUT,
                    Target::object(&container, &object),
                    &headers,
                    Bytes::from(body),
                )
                .await
                .expect("puts");
            assert!(answer.status.is_success(), "{answer:?}");
        }
    };
    let data = conformance::data(2500, 42);
    put(format!("{id}-00001"), vec![], data[..1000].to_vec()).await;
    put(format!("{id}-00002"), vec![], data[1000..2000].to_vec()).await;
    put(format!("{id}-00003"), vec![], data[2000..].to_vec()).await;
    put(
        id.clone(),
        vec![("x-object-manifest", format!("{container}/{id}-"))],
        Vec::new(),
    )
    .await;
    let location =
        Location::parse(&format!("swift+config://ref1/{container}/{id}")).expect("parses");
    assert_eq!(store.size(&location).await.expect("size"), 2500);
    let reader = store.reader(&location, None).await.expect("reader");
    assert!(conformance::read_all(reader).await == data);
    store.delete(&location).await.expect("deletes");
    assert!(objects(&store, &container).await.is_empty());
}

/// Old Glance locations carry the user and key; they are read with them.
#[tokio::test]
async fn locations_with_credentials_are_read_with_them() {
    let container = container();
    let store = SwiftStore::new(config_for("OSWIFT", &container)).expect("store builds");
    let stored = put_chunks(&store, &conformance::image_id(43), b"old data", true).await;
    let auth_url = var("OSWIFT", "AUTH_URL");
    let address = auth_url.trim_start_matches("http://");
    let user = var("OSWIFT", "USER").replace(':', "%3A");
    let uri = format!(
        "swift+http://{user}:{}@{address}/{container}/{}",
        var("OSWIFT", "KEY"),
        conformance::image_id(43)
    );
    let old = Location::parse(&uri).expect("parses");
    assert!(store.owns(&old));
    let reader = store.reader(&old, None).await.expect("reader");
    assert_eq!(conformance::read_all(reader).await, b"old data");
    assert!(
        !format!("{old} {old:?}").contains(&var("OSWIFT", "KEY")),
        "no key shown"
    );
    store.delete(&stored.location).await.expect("deletes");
}

#[tokio::test]
async fn tokens_are_renewed_between_segments() {
    // Every token runs out "soon" (the lab's live an hour): each segment asks for a new one.
    let container = container();
    let config = SwiftConfig {
        expire_soon_interval: Duration::from_secs(7200),
        ..config_for("OSWIFT", &container)
    };
    let store = SwiftStore::new(config).expect("store builds");
    let data = conformance::data(3 << 20, 44);
    let stored = put_chunks(&store, &conformance::image_id(44), &data, true).await;
    let reader = store.reader(&stored.location, None).await.expect("reader");
    assert!(conformance::read_all(reader).await == data);
}

#[tokio::test]
async fn a_missing_container_is_a_configuration_error_unless_created() {
    let config = SwiftConfig {
        create_container_on_put: false,
        ..config_for("OSWIFT", &container())
    };
    let store = SwiftStore::new(config).expect("store builds");
    match store
        .writer(&conformance::image_id(45), &conformance::options(Some(1)))
        .await
    {
        Err(StoreError::Misconfigured { why, .. }) => {
            assert!(why.contains("swift_store_create_container_on_put"), "{why}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn refused_credentials_are_a_configuration_error() {
    let mut config = config_for("OSWIFT", &container());
    config.references[0].key = Secret("wrong".into());
    let store = SwiftStore::new(config).expect("store builds");
    match store
        .writer(&conformance::image_id(46), &conformance::options(Some(1)))
        .await
    {
        Err(StoreError::Misconfigured { why, .. }) => {
            assert!(why.contains("refused the store's credentials"), "{why}");
            assert!(!why.contains("wrong"), "no key in the message: {why}");
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_user_without_write_access_is_refused() {
    // The lab's reader has no role in the account: Swift answers 403.
    let container = container();
    let mut config = config_for("OSWIFT", &container);
    config.references[0].user = var("OSWIFT", "READER");
    config.references[0].key = Secret(var("OSWIFT", "READER_KEY"));
    let store = SwiftStore::new(config).expect("store builds");
    let refused = store
        .writer(&conformance::image_id(47), &conformance::options(Some(1)))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Misconfigured { .. })),
        "{:?}",
        refused.map(|_| ())
    );
}

#[tokio::test]
async fn images_spread_over_seeded_containers() {
    let base = container();
    let config = SwiftConfig {
        multiple_containers_seed: 3,
        ..config_for("OSWIFT", &base)
    };
    let store = SwiftStore::new(config).expect("store builds");
    let id = "abc45678-0000-4000-8000-000000000001";
    let stored = put_chunks(&store, id, b"seeded", true).await;
    assert_eq!(
        stored.location.uri(),
        format!("swift+config://ref1/{base}_abc/{id}")
    );
    let committed = store.committed_data().await.expect("lists");
    assert_eq!(committed.len(), 1);
    assert_eq!(committed[0].image_id, id);
    store.delete(&stored.location).await.expect("deletes");
}
