//! Multi-tenant mode (`swift_store_multi_tenant`), as Glance lays it out: each image in a
//! container of its own, `<swift_store_container>_<image id>`, in the Swift account of the
//! project that uploads it (the object-store endpoint of the request's catalog, or
//! `swift_store_endpoint`), written, read and removed with the request's own token, and
//! opened to other projects by container ACLs. Locations name the account's storage URL and
//! carry no credentials: `swift+https://swift.example/v1/AUTH_<project>/glance_<id>/<id>`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use glint_store::{
    is_image_id, ByteRange, Caller, Capabilities, ImageReader, ImageWriter, Location, Readers,
    Store, StoreError, SwiftLocation, WriteOptions,
};
use http::{Method, StatusCode};

use crate::auth::Auth;
use crate::client::{status_error, Target};
use crate::config::SwiftConfig;
use crate::{reader, writer, Shared};

/// Whether `location` has the form multi-tenant mode writes: no credentials, and the
/// container the image's own.
pub(crate) fn is_tenant_location(config: &SwiftConfig, location: &Location) -> bool {
    let Location::Swift(swift) = location else {
        return false;
    };
    swift.credentials().is_none()
        && swift.config_ref().is_none()
        && is_image_id(swift.object())
        && swift.container() == container_of(config, swift.object())
}

fn container_of(config: &SwiftConfig, image_id: &str) -> String {
    format!("{}_{image_id}", config.container)
}

/// The store acting for one request.
#[derive(Debug)]
pub(crate) struct TenantStore {
    shared: Arc<Shared>,
    caller: Caller,
}

impl TenantStore {
    pub(crate) fn new(shared: Arc<Shared>, caller: Caller) -> TenantStore {
        TenantStore { shared, caller }
    }

    fn config(&self) -> &SwiftConfig {
        &self.shared.config
    }

    /// The caller's account: `swift_store_endpoint`, or the catalog's endpoint of
    /// `swift_store_service_type` for `swift_store_endpoint_type` (and `swift_store_region`).
    fn storage_url(&self) -> Result<String, StoreError> {
        let config = self.config();
        if let Some(endpoint) = &config.endpoint {
            return Ok(endpoint.clone());
        }
        let interface = config
            .endpoint_type
            .strip_suffix("URL")
            .unwrap_or(&config.endpoint_type);
        self.caller
            .endpoint(&config.service_type, interface, config.region.as_deref())
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Misconfigured {
                store: config.name.clone(),
                why: format!(
                    "the request's service catalog has no {} endpoint ({}{}) for project {}; \
                     set swift_store_endpoint, or the region and endpoint type",
                    config.service_type,
                    config.endpoint_type,
                    config
                        .region
                        .as_deref()
                        .map(|r| format!(", region {r}"))
                        .unwrap_or_default(),
                    self.caller.project_id
                ),
            })
    }

    /// The caller's token for the account a location names, and its container and object.
    fn resolve<'a>(
        &self,
        location: &'a Location,
    ) -> Result<(Arc<Auth>, &'a str, &'a str), StoreError> {
        let invalid = || StoreError::InvalidLocation(location.to_string());
        let Location::Swift(swift) = location else {
            return Err(invalid());
        };
        if !is_tenant_location(self.config(), location) {
            return Err(invalid());
        }
        let storage_url = swift.auth_url().ok_or_else(invalid)?;
        Ok((
            Arc::new(Auth::caller(&self.caller.token.0, &storage_url)),
            swift.container(),
            swift.object(),
        ))
    }
}

#[async_trait]
impl Store for TenantStore {
    fn name(&self) -> &str {
        &self.config().name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            read_only: false,
            ranged_read: true,
            thin_provisioning: false,
            caller_accounts: true,
        }
    }

    fn owns(&self, location: &Location) -> bool {
        is_tenant_location(self.config(), location)
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
        let storage_url = self.storage_url()?;
        let (https, address) = match storage_url.split_once("://") {
            Some(("https", rest)) => (true, rest),
            Some(("http", rest)) => (false, rest),
            _ => {
                return Err(StoreError::Misconfigured {
                    store: self.config().name.clone(),
                    why: format!("the storage URL {storage_url:?} is not http(s)"),
                })
            }
        };
        let container = container_of(self.config(), image_id);
        let location = SwiftLocation::new(https, address, &container, image_id)?.into();
        let auth = Arc::new(Auth::caller(&self.caller.token.0, &storage_url));
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

    /// The data, then the image's container, as Glance removes them.
    async fn delete(&self, location: &Location) -> Result<(), StoreError> {
        let (auth, container, object) = self.resolve(location)?;
        self.shared
            .delete_data(&auth, container, object, &location.to_string())
            .await?;
        let answer = self
            .shared
            .swift
            .call(
                &auth,
                Method::DELETE,
                Target::container(container),
                &[],
                Bytes::new(),
            )
            .await?;
        self.shared.forget_container(container);
        match answer.status {
            // Gone already, or something else still in it (segments a cut upload left).
            status if status.is_success() => Ok(()),
            StatusCode::NOT_FOUND | StatusCode::CONFLICT => Ok(()),
            _ => Err(status_error(&self.config().name, container, &answer)),
        }
    }

    /// Glance's ACLs: public and community images readable by every project (`*:*`), others
    /// by their members; `swift_store_admin_tenants` may read and write every one.
    async fn set_readers(&self, location: &Location, readers: &Readers) -> Result<(), StoreError> {
        let (auth, container, _) = self.resolve(location)?;
        let grant = |projects: &[String]| {
            projects
                .iter()
                .map(|p| format!("{p}:*"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let read = match readers {
            Readers::Everyone => "*:*".to_owned(),
            Readers::Projects(projects) => grant(projects),
        };
        let write = grant(&self.config().admin_tenants);
        let answer = self
            .shared
            .swift
            .call(
                &auth,
                Method::POST,
                Target::container(container),
                &[("x-container-read", &read), ("x-container-write", &write)],
                Bytes::new(),
            )
            .await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(status_error(&self.config().name, container, &answer))
        }
    }

    /// The accounts are the projects': nothing here to sweep.
    async fn sweep_abandoned(&self, _older_than: Duration) -> Result<usize, StoreError> {
        Ok(0)
    }
}
