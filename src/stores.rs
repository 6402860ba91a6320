//! The configured stores: which one new uploads go to, which one serves a location, and what
//! `/v2/info/stores` says of them.

use std::sync::Arc;

use glint_store::{Location, Store, StoreError};
use glint_store_file::FileStore;
use glint_store_http::HttpStore;
#[cfg(feature = "rbd")]
use glint_store_rbd::RbdStore;
use glint_store_s3::S3Store;
use glint_store_swift::SwiftStore;
use glint_store_vmware::VmwareStore;
use serde_json::{json, Value};

use crate::config::stores::{BackendConfig, DriverConfig};
use crate::config::StoresConfig;
use crate::domain::RequestContext;

/// A store and what the operator said of it.
#[derive(Debug, Clone)]
pub struct StoreEntry {
    pub id: String,
    pub store: Arc<dyn Store>,
    pub description: Option<String>,
    pub weight: i64,
    config: DriverConfig,
}

impl StoreEntry {
    /// The store acting for the request `ctx` (see `Store::for_caller`): itself, unless it
    /// keeps data in the caller's own account.
    pub fn for_request(&self, ctx: &RequestContext) -> Result<Arc<dyn Store>, StoreError> {
        Ok(self
            .store
            .for_caller(ctx.caller().as_ref())?
            .unwrap_or_else(|| self.store.clone()))
    }

    pub fn type_name(&self) -> &'static str {
        self.config.type_name()
    }

    pub fn read_only(&self) -> bool {
        self.store.capabilities().read_only
    }

    /// The driver's options `/v2/info/stores/detail` shows (never credentials).
    fn properties(&self) -> Value {
        match &self.config {
            DriverConfig::File(file) => json!({
                "data_dir": file.datadirs.first().map(|d| d.path.display().to_string()),
                "chunk_size": 65536,
                "thin_provisioning": file.thin_provisioning,
            }),
            DriverConfig::Http(_) => json!({}),
            DriverConfig::S3(s3) => json!({
                "s3_store_large_object_size": s3.large_object_size >> 20,
                "s3_store_large_object_chunk_size": s3.large_object_chunk_size >> 20,
                "s3_store_thread_pools": s3.thread_pools,
            }),
            // Glance shows the sizes in bytes here.
            #[cfg(feature = "rbd")]
            DriverConfig::Rbd(rbd) => json!({
                "chunk_size": rbd.chunk_size,
                "pool": rbd.pool,
                "thin_provisioning": rbd.thin_provisioning,
            }),
            DriverConfig::Swift(swift) => json!({
                "container": swift.container,
                "large_object_size": swift.large_object_size,
                "large_object_chunk_size": swift.large_object_chunk_size,
            }),
            // Glance has no properties for this store (its detail view fails on one); these
            // are its options, the credentials left out.
            DriverConfig::Vmware(vmware) => json!({
                "vmware_server_host": vmware.server_host,
                "vmware_store_image_dir": vmware.image_dir,
                "vmware_datastores": vmware.datastores.iter().map(|d| {
                    format!("{}:{}:{}", d.datacenter, d.datastore, d.weight)
                }).collect::<Vec<_>>(),
            }),
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreRegistry {
    /// In `enabled_backends` order, as `/v2/info/stores` lists them.
    entries: Vec<StoreEntry>,
    default: usize,
    multi: bool,
    /// Where imports stage data (`os_glance_staging_store`, or `node_staging_uri`'s directory).
    staging: StoreEntry,
}

/// Why a request cannot use the store it named.
#[derive(Debug, thiserror::Error)]
pub enum StoreChoiceError {
    /// Glance's `UnknownScheme` text, which clients show.
    #[error("Unknown scheme '{0}' found in URI")]
    Unknown(String),
}

impl StoreRegistry {
    /// Builds every configured store; a store that cannot start is a start-up error.
    pub fn from_config(config: &StoresConfig) -> Result<StoreRegistry, StoreError> {
        let entries = config
            .backends
            .iter()
            .map(build)
            .collect::<Result<Vec<_>, _>>()?;
        let default = entries
            .iter()
            .position(|e| e.id == config.default_backend)
            .ok_or_else(|| StoreError::Misconfigured {
                store: config.default_backend.clone(),
                why: "the default store is not configured".to_owned(),
            })?;
        Ok(StoreRegistry {
            entries,
            default,
            multi: config.multi,
            staging: build(&config.staging)?,
        })
    }

    /// Replaces each store by what `wrap` makes of it (a layer around the driver, such as
    /// instrumentation), keeping its id, weight and options.
    pub fn wrap_stores(mut self, mut wrap: impl FnMut(Arc<dyn Store>) -> Arc<dyn Store>) -> Self {
        for entry in &mut self.entries {
            entry.store = wrap(entry.store.clone());
        }
        self.staging.store = wrap(self.staging.store.clone());
        self
    }

    /// Multi-store mode (`enabled_backends`): stores are named in the API.
    pub fn multi(&self) -> bool {
        self.multi
    }

    pub fn default_entry(&self) -> &StoreEntry {
        &self.entries[self.default]
    }

    pub fn default_store(&self) -> &Arc<dyn Store> {
        &self.default_entry().store
    }

    /// The store a request names (`X-Image-Meta-Store`), or the default.
    pub fn for_upload(&self, requested: Option<&str>) -> Result<&StoreEntry, StoreChoiceError> {
        match requested {
            None => Ok(self.default_entry()),
            Some(id) => self
                .entries
                .iter()
                .find(|e| e.id == id)
                .ok_or_else(|| StoreChoiceError::Unknown(id.to_owned())),
        }
    }

    /// The store imports stage data in.
    pub fn staging(&self) -> &StoreEntry {
        &self.staging
    }

    /// Whether every node reaches the staging store: any store but a local directory.
    pub fn staging_shared(&self) -> bool {
        !matches!(self.staging.config, DriverConfig::File(_))
    }

    /// The store holding `location`: the one its metadata names when that store owns it,
    /// else the first that owns it.
    pub fn for_location(&self, location: &Location, named: Option<&str>) -> Option<&StoreEntry> {
        named
            .and_then(|id| {
                self.entries
                    .iter()
                    .find(|e| e.id == id && e.store.owns(location))
            })
            .or_else(|| self.entries.iter().find(|e| e.store.owns(location)))
    }

    /// The weight of the store with this id (0 if unknown), for ordering reads.
    pub fn weight(&self, id: Option<&str>) -> i64 {
        id.and_then(|id| self.entries.iter().find(|e| e.id == id))
            .map_or(0, |e| e.weight)
    }

    /// Every configured store.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Store>> {
        self.entries.iter().map(|e| &e.store)
    }

    pub fn entries(&self) -> &[StoreEntry] {
        &self.entries
    }

    /// `GET /v2/info/stores`; `detail` adds what admins see.
    pub fn info(&self, detail: bool) -> Value {
        let stores: Vec<Value> = self
            .entries
            .iter()
            .map(|entry| {
                let mut store = serde_json::Map::new();
                store.insert("id".into(), json!(entry.id));
                if let Some(description) = &entry.description {
                    store.insert("description".into(), json!(description));
                }
                if entry.id == self.default_entry().id {
                    store.insert("default".into(), json!("true"));
                }
                if entry.read_only() {
                    store.insert("read-only".into(), json!("true"));
                }
                if detail {
                    store.insert("type".into(), json!(entry.type_name()));
                    store.insert("weight".into(), json!(entry.weight));
                    store.insert("properties".into(), entry.properties());
                }
                Value::Object(store)
            })
            .collect();
        json!({ "stores": stores })
    }
}

/// One configured store, built as `StoreRegistry::from_config` builds each (for checks that
/// report every store on its own, such as `glint doctor`).
pub fn build(config: &BackendConfig) -> Result<StoreEntry, StoreError> {
    let store: Arc<dyn Store> = match &config.driver {
        DriverConfig::File(file) => Arc::new(FileStore::new(file.clone())?),
        DriverConfig::Http(http) => Arc::new(HttpStore::new(http.clone())?),
        DriverConfig::S3(s3) => Arc::new(S3Store::new(s3.clone())?),
        DriverConfig::Swift(swift) => Arc::new(SwiftStore::new(swift.clone())?),
        DriverConfig::Vmware(vmware) => Arc::new(VmwareStore::new(vmware.clone())?),
        #[cfg(feature = "rbd")]
        DriverConfig::Rbd(rbd) => Arc::new(RbdStore::new(rbd.clone())?),
    };
    Ok(StoreEntry {
        id: config.id.clone(),
        store,
        description: config.description.clone(),
        weight: config.weight,
        config: config.driver.clone(),
    })
}
