//! The Swift store's options, named as Glance names them (`swift_store_*`), and the
//! credentials references of `swift_store_config_file`.

use std::path::PathBuf;
use std::time::Duration;

pub use glint_store::Secret;

/// How the store authenticates to Swift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthVersion {
    /// Swift's own auth (tempauth, swauth, Ceph RGW): `GET auth_address` with
    /// `X-Auth-User`/`X-Auth-Key`, answered with a token and the storage URL. Glance 33 has
    /// dropped it; Glint keeps it for clusters without Keystone.
    V1,
    /// Keystone v3: a project-scoped token, the storage URL from its catalog.
    V3,
}

/// The identity Swift knows the store by: one reference of `swift_store_config_file`, or the
/// one Glance makes from `swift_store_auth_address`, `swift_store_user` and `swift_store_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwiftReference {
    /// The section name (`default_swift_reference`, `ref1`), written into locations.
    pub name: String,
    /// `auth_address`: the auth URL (`http://host:8080/auth/v1.0`, `https://keystone/v3`).
    pub auth_address: String,
    pub auth_version: AuthVersion,
    /// `user`: for Keystone `project:user`; for v1 the whole account user (`test:tester`).
    pub user: String,
    pub key: Secret,
    /// `user_domain_id`/`_name`, `project_domain_id`/`_name` (Keystone; default id `default`).
    pub user_domain_id: Option<String>,
    pub user_domain_name: Option<String>,
    pub project_domain_id: Option<String>,
    pub project_domain_name: Option<String>,
    /// `application_credential_id`/`_secret` (Keystone), used instead of user and key.
    pub application_credential: Option<(String, Secret)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwiftConfig {
    /// The operator's name for the store.
    pub name: String,
    /// Every known reference; locations naming another one are not this store's.
    pub references: Vec<SwiftReference>,
    /// `default_swift_reference` (ref1): the identity new data is written with.
    pub default_reference: String,
    /// `swift_store_container` (glance).
    pub container: String,
    /// `swift_store_create_container_on_put` (false).
    pub create_container_on_put: bool,
    /// `swift_store_multiple_containers_seed` (0, at most 32): images spread over containers
    /// named `<container>_<first characters of the image id>`.
    pub multiple_containers_seed: usize,
    /// `swift_store_large_object_size` (5120 "MB" of 1,024,000 bytes, as Glance counts):
    /// images of an announced size below this are one object, larger or unannounced ones go
    /// in segments.
    pub large_object_size: u64,
    /// `swift_store_large_object_chunk_size` (200 "MB"): the size of a segment (larger when a
    /// manifest could not list them all).
    pub large_object_chunk_size: u64,
    /// `swift_store_cacert`: CA bundle for https endpoints (empty: the system's).
    pub cacert: Option<PathBuf>,
    /// `swift_store_auth_insecure` (false): accept any certificate.
    pub insecure: bool,
    /// `swift_store_region`, `swift_store_endpoint_type` (publicURL), `swift_store_service_type`
    /// (object-store): which catalog entry is the storage URL (Keystone).
    pub region: Option<String>,
    pub endpoint_type: String,
    pub service_type: String,
    /// `swift_store_endpoint`: a storage URL (`https://swift/v1/AUTH_x`) used instead of the one
    /// auth gives.
    pub endpoint: Option<String>,
    /// `swift_store_expire_soon_interval` (60 s): a token that runs out sooner is renewed
    /// before a request (each segment of a long upload asks).
    pub expire_soon_interval: Duration,
    /// `swift_store_retry_get_count` (0): a read cut short resumes this often where it stopped.
    pub retry_get_count: u32,
    /// `swift_store_multi_tenant` (false): each image in a container of its own,
    /// `<swift_store_container>_<image id>`, in the account of the project that uploads it,
    /// written and read with the request's token; no credentials of the store's own.
    pub multi_tenant: bool,
    /// `swift_store_admin_tenants`: projects given read and write access to every container
    /// made in multi-tenant mode.
    pub admin_tenants: Vec<String>,
}

/// Glance's "MB" for Swift sizes: 1000 KiB.
pub const SWIFT_MB: u64 = 1000 * 1024;

impl SwiftConfig {
    /// The reference new data is written with.
    pub fn writer_reference(&self) -> Option<&SwiftReference> {
        self.reference(&self.default_reference)
    }

    pub fn reference(&self, name: &str) -> Option<&SwiftReference> {
        self.references.iter().find(|r| r.name == name)
    }

    /// The container image `image_id` goes in: with a seed N, `<container>_` and the image id's
    /// first N characters, the dashes among them not counted (Glance's rule).
    pub fn container_for(&self, image_id: &str) -> String {
        let seed = self.multiple_containers_seed;
        if seed == 0 {
            return self.container.clone();
        }
        let id = image_id.to_ascii_lowercase();
        let dashes = id.chars().take(seed).filter(|c| *c == '-').count();
        let prefix: String = id.chars().take(seed + dashes).collect();
        format!("{}_{prefix}", self.container)
    }

    /// Whether `container` is one this store writes images into.
    pub fn is_own_container(&self, container: &str) -> bool {
        if self.multiple_containers_seed == 0 {
            return container == self.container;
        }
        container
            .strip_prefix(&self.container)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|prefix| !prefix.is_empty())
    }
}

/// Glance's defaults, a container and no reference: the base of the crate's test configs.
#[cfg(test)]
pub(crate) fn defaults_for_tests(container: &str) -> SwiftConfig {
    SwiftConfig {
        name: "swift".into(),
        references: Vec::new(),
        default_reference: "ref1".into(),
        container: container.into(),
        create_container_on_put: true,
        multiple_containers_seed: 0,
        large_object_size: 5120 * SWIFT_MB,
        large_object_chunk_size: 200 * SWIFT_MB,
        cacert: None,
        insecure: false,
        region: None,
        endpoint_type: "publicURL".into(),
        service_type: "object-store".into(),
        endpoint: None,
        expire_soon_interval: Duration::from_secs(60),
        retry_get_count: 0,
        multi_tenant: false,
        admin_tenants: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: usize) -> SwiftConfig {
        SwiftConfig {
            multiple_containers_seed: seed,
            ..defaults_for_tests("glance")
        }
    }
    #[test]
    fn containers_follow_glances_seed_rule() {
        let id = "FDAE39A1-bac5-4eb2-9a65-58d1d6a8e4a5";
        assert_eq!(config(0).container_for(id), "glance");
        assert_eq!(config(3).container_for(id), "glance_fda");
        assert_eq!(config(10).container_for(id), "glance_fdae39a1-ba");
        assert_eq!(config(13).container_for(id), "glance_fdae39a1-bac5-");
        assert!(config(3).is_own_container("glance_fda"));
        assert!(!config(3).is_own_container("glance"));
        assert!(!config(3).is_own_container("glancex_fda"));
        assert!(config(0).is_own_container("glance"));
        assert!(!config(0).is_own_container("glance_fda"));
    }
}
