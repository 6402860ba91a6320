//! The data path: image bodies into and out of stores, with digests computed on the way,
//! limits enforced as bytes arrive, and the image status kept truthful whatever fails.
//! Store drivers (in `backends/`) only move bytes; everything else lives here, once.

mod access;
mod budget;
mod cached;
mod claim;
mod copy;
pub mod digest;
mod download;
mod error;
mod import_data;
pub mod inspect;
mod limits;
mod pump;
pub mod range;
mod scrub;
mod sent;
mod stage;
mod upload;
mod upload_notices;
mod verify;
mod writer;

use std::sync::Arc;
use std::time::Duration;

pub use budget::ByteBudget;
pub use copy::{CopyOutcome, CopyRequest};
pub use download::{DataStream, Download};
pub use error::DataError;
pub use import_data::ImportedData;
pub use pump::Beat;
pub use scrub::ScrubReport;
pub use upload::UploadRequest;

use crate::config::DataPathConfig;
use crate::domain::{ImageService, UploadRepo};
use crate::stores::StoreRegistry;

/// An upload whose heartbeat is older than this is considered abandoned by its node. Nodes'
/// clocks must agree to well within it (NTP).
pub const STALE_UPLOAD: Duration = Duration::from_secs(300);

/// A store's temporary file untouched for this long belongs to no live upload: live uploads
/// write at least every `upload::BODY_IDLE` (shorter), or fail.
const PARTIAL_FILE_AGE: Duration = Duration::from_secs(900);

/// Size limits on uploaded data, from `[DEFAULT]`.
#[derive(Debug, Clone, Copy)]
pub struct DataLimits {
    pub image_size_cap: u64,
    /// 0 = no quota.
    pub user_storage_quota: u64,
}

#[derive(Debug, Clone)]
pub struct DataService {
    images: ImageService,
    uploads: Arc<dyn UploadRepo>,
    stores: Arc<StoreRegistry>,
    config: DataPathConfig,
    limits: DataLimits,
    budget: ByteBudget,
    /// This node's id, the prefix of its upload claims.
    node_id: Arc<str>,
    /// The image cache (`image_cache_dir`), if any.
    cache: Option<Arc<crate::cache::ImageCache>>,
}

impl DataService {
    pub fn new(
        images: ImageService,
        uploads: Arc<dyn UploadRepo>,
        stores: Arc<StoreRegistry>,
        config: DataPathConfig,
        limits: DataLimits,
        budget: ByteBudget,
        node_id: &str,
    ) -> DataService {
        DataService {
            images,
            uploads,
            stores,
            config,
            limits,
            budget,
            node_id: node_id.into(),
            cache: None,
        }
    }

    /// The configured stores.
    pub fn stores(&self) -> &StoreRegistry {
        &self.stores
    }

    /// An image as `ctx` may see it (the copy and migration commands name their images).
    pub async fn image(
        &self,
        ctx: &crate::domain::RequestContext,
        id: &str,
    ) -> Result<crate::domain::image::Image, DataError> {
        Ok(self
            .images
            .get_for(ctx, id, crate::domain::policy::Action::GetImage)
            .await?)
    }

    /// Active locations of images with data, ids above `after`, for a migration's walk.
    pub async fn locations_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<crate::domain::StoredLocation>, DataError> {
        Ok(self.uploads.locations_after(after, limit).await?)
    }

    /// The start of every upload claim this node makes: `<node id>/`.
    fn claim_prefix(&self) -> String {
        format!("{}/", self.node_id)
    }
}
