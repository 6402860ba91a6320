//! The conformance suite against real S3 servers: s3s-fs (`scripts/lab-s3s`) and Ceph RGW
//! (`scripts/lab-ceph`), each case on a bucket of its own. The server is named by
//! `GLINT_TEST_S3_*` (and `GLINT_TEST_RGW_*`); without them these tests fail, never skip.

use glint_store::conformance::Subject;
use glint_store::Location;

use super::*;

/// The server's address and keys, from `scripts/lab-s3s env` (or `lab-ceph env` with `RGW`).
fn server(prefix: &str) -> (String, String, String, String) {
    let var = |name: &str| {
        std::env::var(format!("GLINT_TEST_{prefix}_{name}")).unwrap_or_else(|_| {
            panic!("GLINT_TEST_{prefix}_{name} is not set: start the lab (scripts/lab-s3s or scripts/lab-ceph) and eval its env")
        })
    };
    (
        var("ENDPOINT"),
        var("ACCESS_KEY"),
        var("SECRET_KEY"),
        var("REGION"),
    )
}

pub(crate) fn config_for(prefix: &str, bucket: &str) -> S3Config {
    let (endpoint, access_key, secret_key, region) = server(prefix);
    S3Config {
        name: "s3".into(),
        host: endpoint,
        region: Some(region),
        access_key,
        secret_key: Secret(secret_key),
        bucket: bucket.into(),
        create_bucket_on_put: true,
        url_format: UrlFormat::Path,
        large_object_size: 2 << 20,
        large_object_chunk_size: 5 << 20,
        thread_pools: 3,
        cacert: None,
    }
}

async fn subject_on(prefix: &str) -> Subject {
    let bucket = format!("glint-test-{}", uuid::Uuid::new_v4().simple());
    subject_with(config_for(prefix, &bucket)).await
}

/// RGW over TLS, its certificate from the lab's own CA (`s3_store_cacert`).
async fn tls_subject() -> Subject {
    let bucket = format!("glint-test-{}", uuid::Uuid::new_v4().simple());
    let var = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} is not set: eval \"$(scripts/lab-ceph env)\""))
    };
    let config = S3Config {
        host: var("GLINT_TEST_RGW_TLS_ENDPOINT"),
        cacert: Some(var("GLINT_TEST_RGW_CACERT").into()),
        ..config_for("RGW", &bucket)
    };
    assert!(config.is_https());
    subject_with(config).await
}

async fn subject_with(config: S3Config) -> Subject {
    let bucket = config.bucket.clone();
    let host = config.location_host();
    let store = S3Store::new(config).expect("store builds");
    store.shared.ensure_bucket().await.expect("bucket created");
    // The same bucket under the other scheme is another store's.
    let other_scheme = if store.config().is_https() {
        "s3"
    } else {
        "s3+https"
    };
    let scheme = if store.config().is_https() {
        "s3+https"
    } else {
        "s3"
    };
    let foreign = [
        format!("{scheme}://{host}/another-bucket/00000000-0000-4000-8000-000000000001"),
        format!("{scheme}://elsewhere.example.com/{bucket}/00000000-0000-4000-8000-000000000001"),
        format!("{other_scheme}://{host}/{bucket}/00000000-0000-4000-8000-000000000001"),
        "file:///var/lib/glance/images/00000000-0000-4000-8000-000000000001".to_owned(),
    ]
    .iter()
    .map(|uri| Location::parse(uri).expect("parses"))
    .collect();
    Subject {
        store: Box::new(store),
        foreign,
        keep: None,
    }
}

mod s3s {
    async fn subject() -> glint_store::conformance::Subject {
        super::subject_on("S3").await
    }
    glint_store::conformance_tests!(subject);
}

mod rgw_tls {
    async fn subject() -> glint_store::conformance::Subject {
        super::tls_subject().await
    }
    glint_store::conformance_tests!(subject);
}

#[tokio::test]
async fn a_server_whose_certificate_the_store_does_not_trust_is_a_configuration_error() {
    let host =
        std::env::var("GLINT_TEST_RGW_TLS_ENDPOINT").expect("GLINT_TEST_RGW_TLS_ENDPOINT is set");
    let config = S3Config {
        host,
        cacert: None,
        ..config_for("RGW", "glint-test-untrusted")
    };
    let store = S3Store::new(config).expect("store builds");
    let refused = store
        .writer(
            "00000000-0000-4000-8000-000000000001",
            &glint_store::conformance::options(Some(10)),
        )
        .await;
    match refused {
        Err(StoreError::Misconfigured { why, .. }) => {
            assert!(why.contains("s3_store_cacert"), "{why}")
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("an untrusted certificate was accepted"),
    }
}

mod rgw {
    async fn subject() -> glint_store::conformance::Subject {
        super::subject_on("RGW").await
    }
    glint_store::conformance_tests!(subject);
}
