//! The image cache's records in the shared database (Glance's `centralized_db` driver): each
//! node registered in `node_reference` by its `worker_self_reference_url`, each complete
//! cached file of a node a `cached_images` row with its size, hits and last access.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::image::Image;
use super::policy::{Action, Target};
use super::{ImageService, RepoError, RequestContext};

impl ImageService {
    /// Whether a cache API rule allows `ctx`, checked as Glance's `CacheImageAPIPolicy`
    /// checks it: against the image when the call names one, else against nothing.
    pub fn allows_cache_action(
        &self,
        ctx: &RequestContext,
        action: Action,
        image: Option<&Image>,
    ) -> bool {
        let target = Target {
            owner: image.and_then(|i| i.owner.as_deref()),
            visibility: image.map(|i| i.visibility),
            member: None,
        };
        self.policy().allows(ctx, action, &target)
    }
}

/// One `cached_images` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedImage {
    /// The row's id.
    pub id: i64,
    pub image_id: String,
    pub last_accessed: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
    pub size: i64,
    pub hits: i64,
    pub checksum: Option<String>,
}

/// A complete file to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCachedImage {
    pub image_id: String,
    pub size: i64,
    pub checksum: Option<String>,
    /// When the file was committed (its modification time).
    pub modified: DateTime<Utc>,
}

#[async_trait]
pub trait CacheRepo: Send + Sync + std::fmt::Debug {
    /// Records `node` in `node_reference` unless it is there already.
    async fn register_node(&self, node: &str) -> Result<(), RepoError>;

    /// Records a complete file of `node` (a row present already is replaced).
    async fn record(&self, node: &str, image: &NewCachedImage) -> Result<(), RepoError>;

    /// One more hit on `node`'s entry, accessed now.
    async fn hit(&self, node: &str, image_id: &str, now: DateTime<Utc>) -> Result<(), RepoError>;

    /// `node`'s entries, least recently accessed first.
    async fn entries(&self, node: &str) -> Result<Vec<CachedImage>, RepoError>;

    /// `node`'s entry of one image.
    async fn entry(&self, node: &str, image_id: &str) -> Result<Option<CachedImage>, RepoError>;

    /// Removes `node`'s entry of one image.
    async fn remove(&self, node: &str, image_id: &str) -> Result<(), RepoError>;

    /// Removes all of `node`'s entries.
    async fn remove_all(&self, node: &str) -> Result<u64, RepoError>;

    /// The nodes caching `image_id`.
    async fn nodes_of(&self, image_id: &str) -> Result<Vec<String>, RepoError>;

    /// Which of `image_ids` name no active image (unknown, deleted, deactivated, …): their
    /// cached data must not stay.
    async fn not_active(&self, image_ids: &[String]) -> Result<Vec<String>, RepoError>;
}
