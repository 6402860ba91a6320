//! The persistence port: what the image service needs from a metadata database. `db/`
//! implements it for PostgreSQL and SQLite; both run the same conformance tests.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::image::{Image, ImageId};
use super::listing::{ListQuery, Viewer};

/// Why the database could not answer.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A row with this key exists already (also among soft-deleted rows).
    #[error("duplicate key")]
    Duplicate,
    /// The database cannot be reached or is overloaded; the request may be retried.
    #[error("metadata database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a schema problem. Logged with detail, shown as a plain 500.
    #[error("metadata database error: {0}")]
    Other(String),
}

/// What happened to a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    Saved,
    /// The image is gone (deleted meanwhile).
    Gone,
    /// The image's status changed since it was read; re-read and decide again.
    StatusChanged,
}

#[async_trait]
pub trait ImageRepo: Send + Sync + std::fmt::Debug + 'static {
    /// Inserts a new image with its properties and tags; `Duplicate` if the id was ever used.
    async fn create(&self, image: &Image) -> Result<(), RepoError>;

    /// A live (not soft-deleted) image, whatever its visibility.
    async fn get(&self, id: &ImageId) -> Result<Option<Image>, RepoError>;

    /// One page of the images `viewer` may list, filtered and sorted as `query` says, starting
    /// after `marker` (an image the caller was allowed to see).
    async fn list(
        &self,
        query: &ListQuery,
        viewer: &Viewer,
        marker: Option<&Image>,
    ) -> Result<Vec<Image>, RepoError>;

    /// Whether `project` is a member of the image (in any member status).
    async fn is_member(&self, id: &ImageId, project: &str) -> Result<bool, RepoError>;

    /// Writes what differs between `before` and `after`, provided the stored status still is
    /// `before.status` (so a status decision is never made on stale data).
    async fn save(&self, before: &Image, after: &Image) -> Result<SaveOutcome, RepoError>;

    /// Adds a tag (idempotent) and touches `updated_at`. False if the image is gone.
    async fn add_tag(&self, id: &ImageId, tag: &str, now: DateTime<Utc>)
        -> Result<bool, RepoError>;

    /// Removes a tag. False if the image had no such tag.
    async fn remove_tag(
        &self,
        id: &ImageId,
        tag: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// Soft-deletes the image (the row keeps `deleted_at` and its id stays taken).
    /// False if it was already gone.
    async fn delete(&self, id: &ImageId, now: DateTime<Utc>) -> Result<bool, RepoError>;
}
