//! The Swift store: each image's data is an object named by the image id in a container of
//! an OpenStack Swift account (or Ceph RGW's Swift API), addressed as Glance addresses it:
//! `swift+config://<reference>/<container>/<image id>`, the credentials kept in the store's
//! configuration, never in the location. Images of an announced size below
//! `swift_store_large_object_size`, or of no announced size, are written in segments joined
//! by a manifest: a static large object where the cluster has SLO, else a dynamic one.
//!
//! Data streams to Swift as it arrives (chunked transfer within a segment), so an upload
//! holds a few chunks whatever the segment size. Segments of an unfinished upload are named
//! `glint-segments/<image id>/<attempt>/<n>` and recorded by a marker object
//! `glint-uploads/<image id>/<attempt>` refreshed while the upload runs, so the sweep can
//! remove what a killed process left without touching a live upload or a committed image.

mod auth;
mod client;
mod config;
mod listing;
mod reader;
mod tenant;
mod writer;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use glint_store::{
    is_image_id, ByteRange, Caller, Capabilities, ImageReader, ImageWriter, Location, Store,
    StoreError, StoredData, SwiftLocation, WriteOptions,
};
use http::{Method, StatusCode};

use auth::{Auth, Catalog};
use client::{status_error, Answer, Swift, Target};
pub use config::{AuthVersion, Secret, SwiftConfig, SwiftReference, SWIFT_MB};
use writer::{Plan, SwiftWriter};

/// What a cluster's `/info` says about large objects.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClusterInfo {
    /// Static large objects (the `slo` middleware) are available.
    pub(crate) slo: bool,
    /// The most segments a manifest may list (SLO's `max_manifest_segments`; for DLO,
    /// `container_listing_limit`, so that one listing finds them all, as Glance's delete reads
    /// only one page).
    pub(crate) max_segments: u64,
    /// The largest single object (`max_file_size`).
    pub(crate) max_object: u64,
}

impl Default for ClusterInfo {
    /// Swift's defaults, and DLO (which every cluster has).
    fn default() -> ClusterInfo {
        ClusterInfo {
            slo: false,
            max_segments: 10_000,
            max_object: 5 << 30,
        }
    }
}

#[derive(Debug)]
pub struct SwiftStore {
    shared: Arc<Shared>,
}

/// What the store and its writers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: SwiftConfig,
    pub(crate) swift: Arc<Swift>,
    /// One token per identity: references by name, credentials of old locations by address
    /// and user.
    auths: Mutex<HashMap<String, Arc<Auth>>>,
    /// Containers known to exist.
    containers: Mutex<HashSet<String>>,
    info: tokio::sync::OnceCell<ClusterInfo>,
}

impl Shared {
    fn catalog(&self) -> Catalog {
        Catalog {
            endpoint: self.config.endpoint.clone(),
            region: self.config.region.clone(),
            endpoint_type: self.config.endpoint_type.clone(),
            service_type: self.config.service_type.clone(),
        }
    }

    fn auth_for_reference(&self, reference: &SwiftReference) -> Arc<Auth> {
        self.auth(format!("ref:{}", reference.name), || reference.clone())
    }

    /// The identity cached under `key`, made from `reference()` the first time.
    fn auth(&self, key: String, reference: impl FnOnce() -> SwiftReference) -> Arc<Auth> {
        let mut auths = self.auths.lock().unwrap_or_else(|e| e.into_inner());
        auths
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Auth::new(
                    &self.config.name,
                    reference(),
                    self.catalog(),
                    self.config.expire_soon_interval,
                ))
            })
            .clone()
    }

    /// The identity new data is written with.
    pub(crate) fn writer_auth(&self) -> Result<Arc<Auth>, StoreError> {
        let reference =
            self.config
                .writer_reference()
                .ok_or_else(|| StoreError::Misconfigured {
                    store: self.config.name.clone(),
                    why: format!(
                        "default_swift_reference {} names no reference",
                        self.config.default_reference
                    ),
                })?;
        Ok(self.auth_for_reference(reference))
    }

    /// The identity that reads a location of this store, and its container and object.
    fn resolve<'a>(
        &self,
        location: &'a Location,
    ) -> Result<(Arc<Auth>, &'a str, &'a str), StoreError> {
        let invalid = || StoreError::InvalidLocation(location.to_string());
        let Location::Swift(swift) = location else {
            return Err(invalid());
        };
        if !self.config.is_own_container(swift.container()) || swift.object().is_empty() {
            return Err(invalid());
        }
        let auth = if let Some(name) = swift.config_ref() {
            // A path between the reference and the container is not a form Glint writes.
            if !swift.auth_address().is_empty() {
                return Err(invalid());
            }
            self.auth_for_reference(self.config.reference(name).ok_or_else(invalid)?)
        } else if let (Some(credentials), Some(url)) = (swift.credentials(), swift.auth_url()) {
            // Glance wrote the user and key into locations before references existed.
            let key = format!("inline:{url}|{}", credentials.user());
            let version = self
                .config
                .writer_reference()
                .map_or(AuthVersion::V3, |r| r.auth_version.clone());
            let reference = SwiftReference {
                name: String::new(),
                auth_address: url,
                auth_version: version,
                user: credentials.user().to_owned(),
                key: Secret(credentials.secret().to_owned()),
                user_domain_id: None,
                user_domain_name: None,
                project_domain_id: None,
                project_domain_name: None,
                application_credential: None,
            };
            self.auth(key, || reference)
        } else {
            // No credentials: a multi-tenant location, read with the user's own token.
            return Err(invalid());
        };
        Ok((auth, swift.container(), swift.object()))
    }

    /// The location of image `image_id`'s data, as this store writes it.
    pub(crate) fn location(&self, image_id: &str) -> Result<Location, StoreError> {
        Ok(SwiftLocation::with_config_ref(
            &self.config.default_reference,
            &self.config.container_for(image_id),
            image_id,
        )?
        .into())
    }

    /// `/info` of the cluster, read once; a cluster that does not answer it gets Swift's
    /// defaults and dynamic large objects.
    pub(crate) async fn info(&self, auth: &Auth) -> ClusterInfo {
        *self
            .info
            .get_or_init(|| async {
                match listing::cluster_info(&self.swift, auth).await {
                    Ok(info) => info,
                    Err(why) => {
                        tracing::warn!(store.name = %self.config.name, error = %why,
                            "cannot read the cluster's /info; writing dynamic large objects");
                        ClusterInfo::default()
                    }
                }
            })
            .await
    }

    /// Makes sure `container` exists, creating it if `swift_store_create_container_on_put`.
    pub(crate) async fn ensure_container(
        &self,
        auth: &Auth,
        container: &str,
    ) -> Result<(), StoreError> {
        if self
            .containers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(container)
        {
            return Ok(());
        }
        let target = Target::container(container);
        let head = self
            .swift
            .call(auth, Method::HEAD, target, &[], Bytes::new())
            .await?;
        match head.status {
            status if status.is_success() => {}
            StatusCode::NOT_FOUND if self.config.create_container_on_put => {
                let made = self
                    .swift
                    .call(auth, Method::PUT, target, &[], Bytes::new())
                    .await?;
                if !made.status.is_success() {
                    return Err(status_error(&self.config.name, container, &made));
                }
            }
            StatusCode::NOT_FOUND => {
                return Err(StoreError::Misconfigured {
                    store: self.config.name.clone(),
                    why: format!(
                        "the container {container} does not exist in Swift; create it, or set \
                         swift_store_create_container_on_put"
                    ),
                })
            }
            _ => return Err(status_error(&self.config.name, container, &head)),
        }
        self.containers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(container.to_owned());
        Ok(())
    }

    /// Forgets that `container` exists (it was removed).
    pub(crate) fn forget_container(&self, container: &str) {
        self.containers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(container);
    }

    pub(crate) async fn head(
        &self,
        auth: &Auth,
        container: &str,
        object: &str,
    ) -> Result<Answer, StoreError> {
        self.swift
            .call(
                auth,
                Method::HEAD,
                Target::object(container, object),
                &[],
                Bytes::new(),
            )
            .await
    }

    /// Removes an image's data: a static manifest with its segments, or a dynamic manifest's
    /// segments then the manifest, or the object.
    pub(crate) async fn delete_data(
        &self,
        auth: &Auth,
        container: &str,
        object: &str,
        shown: &str,
    ) -> Result<(), StoreError> {
        let shared = self;
        let head = shared.head(auth, container, object).await?;
        if !head.status.is_success() {
            return Err(status_error(&shared.config.name, shown, &head));
        }
        if head
            .header("x-static-large-object")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            // The manifest and every segment it lists, in one request.
            let answer = shared
                .swift
                .call(
                    auth,
                    Method::DELETE,
                    Target::object(container, object).with_query("multipart-manifest=delete"),
                    &[("accept", "application/json")],
                    Bytes::new(),
                )
                .await?;
            if !answer.status.is_success() {
                return Err(status_error(&shared.config.name, shown, &answer));
            }
            let report: serde_json::Value =
                serde_json::from_slice(&answer.body).unwrap_or_default();
            if report["Errors"].as_array().is_some_and(|e| !e.is_empty()) {
                tracing::warn!(store.name = %shared.config.name, location = %shown,
                    errors = %report["Errors"], "some segments were not removed; the sweep will");
            }
            return Ok(());
        }
        // A dynamic manifest's segments first, then the manifest, as Glance does: a delete cut
        // short leaves the manifest, and the next attempt finds and finishes the rest.
        if let Some((segment_container, prefix)) = head
            .header("x-object-manifest")
            .and_then(|m| m.split_once('/'))
        {
            let segment_container = client::decode_path(segment_container);
            let prefix = client::decode_path(prefix);
            if !prefix.is_empty() {
                shared
                    .delete_prefix(auth, &segment_container, &prefix)
                    .await?;
            }
        }
        shared
            .delete_object(auth, container, object)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => StoreError::NotFound(shown.to_owned()),
                other => other,
            })
    }

    /// Why a multi-tenant store cannot act without a request's token.
    pub(crate) fn needs_caller(&self) -> StoreError {
        StoreError::Misconfigured {
            store: self.config.name.clone(),
            why: "swift_store_multi_tenant keeps each image in its project's account, reached \
                  only with the request's Keystone token: use flavor = keystone (background \
                  work such as the scrubber cannot reach those accounts)"
                .into(),
        }
    }

    /// Starts writing image `image_id` into `container`, to be found at `location`.
    pub(crate) async fn open_writer(
        shared: &Arc<Shared>,
        auth: Arc<Auth>,
        image_id: &str,
        container: String,
        location: Location,
        options: &WriteOptions,
    ) -> Result<Box<dyn ImageWriter>, StoreError> {
        shared.ensure_container(&auth, &container).await?;
        let existing = shared.head(&auth, &container, image_id).await?;
        match existing.status {
            StatusCode::NOT_FOUND => {}
            status if status.is_success() => return Err(StoreError::AlreadyExists(location.uri())),
            _ => return Err(status_error(&shared.config.name, image_id, &existing)),
        }
        let info = shared.info(&auth).await;
        let plan = Plan::new(&shared.config, &info, options)?;
        Ok(Box::new(
            SwiftWriter::start(shared.clone(), auth, image_id, container, location, plan).await?,
        ))
    }

    /// The size of the object `container/object`.
    pub(crate) async fn size_at(
        &self,
        auth: &Auth,
        container: &str,
        object: &str,
        shown: &str,
    ) -> Result<u64, StoreError> {
        let head = self.head(auth, container, object).await?;
        if !head.status.is_success() {
            return Err(status_error(&self.config.name, shown, &head));
        }
        Ok(head
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Deletes one object; `NotFound` if it was not there.
    pub(crate) async fn delete_object(
        &self,
        auth: &Auth,
        container: &str,
        object: &str,
    ) -> Result<(), StoreError> {
        let answer = self
            .swift
            .call(
                auth,
                Method::DELETE,
                Target::object(container, object),
                &[],
                Bytes::new(),
            )
            .await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(status_error(&self.config.name, object, &answer))
        }
    }

    /// Deletes every object under `prefix` in `container`, all of them tried; the first
    /// failure is returned (what stays is found again by the next attempt or the sweep).
    pub(crate) async fn delete_prefix(
        &self,
        auth: &Auth,
        container: &str,
        prefix: &str,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        let mut failed = None;
        for object in listing::list(self, auth, container, prefix).await? {
            match self.delete_object(auth, container, &object.name).await {
                Ok(()) | Err(StoreError::NotFound(_)) => removed += 1,
                Err(e) => {
                    tracing::warn!(store.name = %self.config.name, object = %object.name, error = %e,
                        "cannot remove a segment");
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    }
}

impl SwiftStore {
    /// Builds the client; no request is made until the first use, so a cluster that is down
    /// at start-up only makes requests fail (503) until it is back.
    pub fn new(config: SwiftConfig) -> Result<SwiftStore, StoreError> {
        let misconfigured = |why: String| StoreError::Misconfigured {
            store: config.name.clone(),
            why,
        };
        if config.writer_reference().is_none() && !config.multi_tenant {
            return Err(misconfigured(format!(
                "no credentials: set swift_store_auth_address, swift_store_user and \
                 swift_store_key, or a [{}] section in swift_store_config_file",
                config.default_reference
            )));
        }
        if config.container.is_empty() || config.container.contains('/') {
            return Err(misconfigured(format!(
                "swift_store_container {:?} is not a container name",
                config.container
            )));
        }
        let connector =
            glint_store::net::https_connector(config.cacert.as_deref(), config.insecure)
                .map_err(|e| misconfigured(format!("swift_store_cacert: {e}")))?;
        Ok(SwiftStore {
            shared: Arc::new(Shared {
                swift: Arc::new(Swift {
                    store: config.name.clone(),
                    http: glint_store::net::client(connector.clone()),
                    unpooled: glint_store::net::unpooled_client(connector),
                }),
                config,
                auths: Mutex::new(HashMap::new()),
                containers: Mutex::new(HashSet::new()),
                info: tokio::sync::OnceCell::new(),
            }),
        })
    }

    pub fn config(&self) -> &SwiftConfig {
        &self.shared.config
    }

    /// The identity that reads a location of this store; in multi-tenant mode only the
    /// caller's (through `for_caller`).
    fn resolve<'a>(
        &self,
        location: &'a Location,
    ) -> Result<(Arc<Auth>, &'a str, &'a str), StoreError> {
        if self.shared.config.multi_tenant {
            return Err(self.shared.needs_caller());
        }
        self.shared.resolve(location)
    }
}

#[async_trait]
impl Store for SwiftStore {
    fn name(&self) -> &str {
        &self.shared.config.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            read_only: false,
            ranged_read: true,
            thin_provisioning: false,
            caller_accounts: self.shared.config.multi_tenant,
        }
    }

    fn owns(&self, location: &Location) -> bool {
        if self.shared.config.multi_tenant {
            tenant::is_tenant_location(&self.shared.config, location)
        } else {
            self.shared.resolve(location).is_ok()
        }
    }

    fn for_caller(&self, caller: Option<&Caller>) -> Result<Option<Arc<dyn Store>>, StoreError> {
        match caller {
            Some(caller) if self.shared.config.multi_tenant => Ok(Some(Arc::new(
                tenant::TenantStore::new(self.shared.clone(), caller.clone()),
            ))),
            _ => Ok(None),
        }
    }

    fn write_buffer(&self, options: &WriteOptions) -> Result<u64, StoreError> {
        Ok(writer::BUFFER.min(options.memory))
    }

    async fn writer(
        &self,
        image_id: &str,
        options: &WriteOptions,
    ) -> Result<Box<dyn ImageWriter>, StoreError> {
        if !is_image_id(image_id) {
            return Err(StoreError::InvalidLocation(image_id.to_owned()));
        }
        if self.shared.config.multi_tenant {
            return Err(self.shared.needs_caller());
        }
        let auth = self.shared.writer_auth()?;
        let container = self.shared.config.container_for(image_id);
        let location = self.shared.location(image_id)?;
        Shared::open_writer(&self.shared, auth, image_id, container, location, options).await
    }

    async fn reader(
        &self,
        location: &Location,
        range: Option<ByteRange>,
    ) -> Result<ImageReader, StoreError> {
        let (auth, container, object) = self.resolve(location)?;
        reader::open(&self.shared, auth, container, object, location, range).await
    }

    async fn size(&self, location: &Location) -> Result<u64, StoreError> {
        let (auth, container, object) = self.resolve(location)?;
        self.shared
            .size_at(&auth, container, object, &location.to_string())
            .await
    }

    async fn delete(&self, location: &Location) -> Result<(), StoreError> {
        let (auth, container, object) = self.resolve(location)?;
        self.shared
            .delete_data(&auth, container, object, &location.to_string())
            .await
    }

    /// In multi-tenant mode the data lies in the projects' accounts, which the store cannot
    /// list: nothing is swept.
    async fn sweep_abandoned(&self, older_than: Duration) -> Result<usize, StoreError> {
        if self.shared.config.multi_tenant {
            return Ok(0);
        }
        listing::sweep(&self.shared, older_than).await
    }

    async fn committed_data(&self) -> Result<Vec<StoredData>, StoreError> {
        if self.shared.config.multi_tenant {
            return Ok(Vec::new());
        }
        listing::committed(&self.shared).await
    }
}

#[cfg(test)]
mod tests;
