//! The configured stores: which one new uploads go to, and which one serves a location.

use std::sync::Arc;

use glint_store::{Location, Store, StoreError};
use glint_store_file::FileStore;

use crate::config::StoresConfig;

#[derive(Debug, Clone)]
pub struct StoreRegistry {
    /// New image data goes here.
    default: Arc<dyn Store>,
    all: Vec<Arc<dyn Store>>,
}

impl StoreRegistry {
    /// Builds every configured store; a store that cannot start is a start-up error.
    pub fn from_config(config: &StoresConfig) -> Result<StoreRegistry, StoreError> {
        let default: Arc<dyn Store> = Arc::new(FileStore::new(config.file.clone())?);
        Ok(StoreRegistry {
            default: default.clone(),
            all: vec![default],
        })
    }

    pub fn default_store(&self) -> &Arc<dyn Store> {
        &self.default
    }

    /// The store holding `location`, if it is one of ours.
    pub fn for_location(&self, location: &Location) -> Option<&Arc<dyn Store>> {
        self.all.iter().find(|s| s.owns(location))
    }

    /// Every configured store.
    pub fn all(&self) -> &[Arc<dyn Store>] {
        &self.all
    }
}
