//! The persistence port: what the image service needs from a metadata database. `db/`
//! implements it for PostgreSQL, MySQL/MariaDB and SQLite; all run the same API tests.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::error::RepoError;
use super::image::{Image, ImageId};
use super::listing::{ListQuery, Viewer};
use super::tasks::StagingRepo;

/// The outcome of `UploadRepo::claim_upload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    Claimed,
    /// Not queued any more (another upload, or a status change, came first).
    Taken,
    Gone,
    /// The project has `count` uploads in progress, as many as its limit allows.
    OverLimit {
        count: i64,
    },
}

/// The outcome of `ImageRepo::create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    /// The project has `count` images already, and its limit allows no more.
    OverLimit {
        count: i64,
    },
}

/// A project's images as the unified limits count them (Glance's queries).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectCounts {
    /// Images not deleted, killed or pending delete (`image_count_total`).
    pub images: u64,
    /// Images saving, uploading or importing (`image_count_uploading`).
    pub uploading: u64,
    /// Bytes of images uploading or importing, staged (`image_stage_total`).
    pub staged_bytes: u64,
    /// Bytes of image data stored, once per active location (`image_size_total`).
    pub stored_bytes: u64,
}

/// A project an image is shared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub image_id: String,
    pub member_id: String,
    pub status: MemberStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where a member stands on a shared image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    Pending,
    Accepted,
    Rejected,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Pending => "pending",
            MemberStatus::Accepted => "accepted",
            MemberStatus::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<MemberStatus> {
        match text {
            "pending" => Some(MemberStatus::Pending),
            "accepted" => Some(MemberStatus::Accepted),
            "rejected" => Some(MemberStatus::Rejected),
            _ => None,
        }
    }
}

/// The outcome of `add_member`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberAdded {
    Added(Member),
    Duplicate,
    /// The image has `count` members already, the quota.
    OverQuota {
        count: usize,
    },
    /// The image is gone.
    Gone,
}

/// What happened to a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    Saved,
    /// The image is gone (deleted meanwhile).
    Gone,
    /// The image's status changed since it was read; re-read and decide again.
    StatusChanged,
    /// The write would take the image past a count quota (counted inside the write, so
    /// concurrent requests cannot overshoot it); nothing was written.
    OverQuota {
        what: Counted,
        count: usize,
    },
}

/// What a count quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Properties,
    Tags,
}

/// `image_property_quota` and `image_tag_quota` (`None`: unlimited), enforced by the writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountLimits {
    pub properties: Option<usize>,
    pub tags: Option<usize>,
}

#[async_trait]
pub trait ImageRepo: Send + Sync + std::fmt::Debug + 'static {
    /// Whether the database answers a trivial query within a few seconds (for `/healthcheck`).
    async fn health(&self) -> Result<(), RepoError>;

    /// Inserts a new image with its properties and tags; `Duplicate` if the id was ever used.
    /// With `count_limit` (a project and its `image_count_total`), the project's images are
    /// counted under a lock on the project within the same transaction, and nothing is
    /// written if one more would pass the limit: concurrent creates cannot overshoot it.
    async fn create(
        &self,
        image: &Image,
        count_limit: Option<(&str, i64)>,
    ) -> Result<Created, RepoError>;

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
    /// `before.status` (so a status decision is never made on stale data), and that a count
    /// this write makes grow stays within `limits`.
    async fn save(
        &self,
        before: &Image,
        after: &Image,
        limits: CountLimits,
    ) -> Result<SaveOutcome, RepoError>;

    /// Adds a tag (idempotent) and touches `updated_at`, within `tag_quota`. `Gone` if the
    /// image is gone.
    async fn add_tag(
        &self,
        id: &ImageId,
        tag: &str,
        tag_quota: Option<usize>,
        now: DateTime<Utc>,
    ) -> Result<SaveOutcome, RepoError>;

    /// Removes a tag. False if the image had no such tag.
    async fn remove_tag(
        &self,
        id: &ImageId,
        tag: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// What `owner`'s images count against Keystone's unified limits.
    async fn project_counts(&self, owner: &str) -> Result<ProjectCounts, RepoError>;

    /// The image's live members, or only `only`'s membership.
    async fn members(&self, id: &ImageId, only: Option<&str>) -> Result<Vec<Member>, RepoError>;

    /// Adds `member` (status pending) unless it is a member already or the image would pass
    /// `quota` members; the check and the insert are one transaction under the image's row
    /// lock, so concurrent adds cannot overshoot the quota or add a member twice.
    async fn add_member(
        &self,
        id: &ImageId,
        member: &str,
        quota: Option<usize>,
        now: DateTime<Utc>,
    ) -> Result<MemberAdded, RepoError>;

    /// Sets a member's status; the updated membership, or `None` if there is no such member.
    async fn set_member_status(
        &self,
        id: &ImageId,
        member: &str,
        status: MemberStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Member>, RepoError>;

    /// Soft-deletes a membership; false if there was none.
    async fn remove_member(
        &self,
        id: &ImageId,
        member: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// Soft-deletes the image (the row keeps `deleted_at` and its id stays taken) and marks its
    /// locations `pending_delete`, returning them: their data is the caller's to remove
    /// (`location_removed` then), or the scrubber's later. With `delayed` and data present the
    /// image ends `pending_delete`, else `deleted`. `None` if the image was already gone.
    async fn delete(
        &self,
        id: &ImageId,
        now: DateTime<Utc>,
        delayed: bool,
    ) -> Result<Option<Vec<StoredLocation>>, RepoError>;
}

/// What the data path needs from the metadata database: upload claims, locations, and the
/// bookkeeping of data removal. Implemented by the same repositories as `ImageRepo`.
/// Where an upload's data goes, which decides the status its claim gives the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadTarget {
    /// `PUT /file`: `queued → saving`.
    Store,
    /// `PUT /stage`: `queued → uploading`.
    Staging,
}

impl UploadTarget {
    pub fn status(self) -> &'static str {
        match self {
            UploadTarget::Store => "saving",
            UploadTarget::Staging => "uploading",
        }
    }
}

#[async_trait]
pub trait UploadRepo: StagingRepo + Send + Sync + std::fmt::Debug + 'static {
    /// Claims a queued image for an upload (`queued → saving`, or `uploading` for a stage),
    /// recording `claim`, a token
    /// only that upload knows. `Taken` if another upload (or anything else) was first. With
    /// `uploading_limit` (a project and its `image_count_uploading`), the project's uploads
    /// in progress are counted under a lock on the project in the claim's transaction, and
    /// the claim fails with `OverLimit` if it would pass the limit.
    async fn claim_upload(
        &self,
        id: &ImageId,
        claim: &str,
        now: DateTime<Utc>,
        uploading_limit: Option<(&str, i64)>,
        target: UploadTarget,
    ) -> Result<Claimed, RepoError>;

    /// Records a finished upload: `saving → active` with the data's size and digests and its
    /// new location, provided `claim` still holds the image and it is not deleted.
    async fn finish_upload(
        &self,
        id: &ImageId,
        claim: &str,
        data: &UploadedData,
        now: DateTime<Utc>,
    ) -> Result<SaveOutcome, RepoError>;

    /// A failed upload: `saving → queued`, size cleared, if `claim` still holds the image.
    async fn abandon_upload(
        &self,
        id: &ImageId,
        claim: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// The heartbeat of a running upload, so that other nodes can tell a live upload from one
    /// whose node died. False if `claim` no longer holds the image (deleted, or reset).
    async fn touch_upload(
        &self,
        id: &ImageId,
        claim: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// Puts back to `queued` every upload whose heartbeat stopped before `cutoff` (its node
    /// died). Returns how many.
    async fn reset_stale_uploads(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, RepoError>;

    /// Puts back to `queued` every upload whose claim starts with `claim_prefix`: at start-up,
    /// the uploads this node ran before it stopped, whose heartbeat may still look fresh.
    async fn reset_uploads_claimed_by(
        &self,
        claim_prefix: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, RepoError>;

    /// What the metadata says of store data found for image `image_id` at any of `urls` (the
    /// spellings of one location), so that a sweep can tell data that nothing will ever name
    /// (an orphan) from data in use.
    async fn data_reference(
        &self,
        image_id: &str,
        urls: &[String],
    ) -> Result<DataReference, RepoError>;

    /// The active locations of a live image, oldest first.
    async fn locations(&self, id: &ImageId) -> Result<Vec<StoredLocation>, RepoError>;

    /// Bytes of image data held for `owner` (size × active locations), for `user_storage_quota`.
    async fn storage_used(&self, owner: Option<&str>) -> Result<u64, RepoError>;

    /// Locations waiting for their data to be removed since before `cutoff`, with ids above
    /// `after` (so a pass can page past locations it cannot remove yet), leaving out those
    /// whose deferred retry (`defer_removal`) is not due by `now`.
    async fn pending_deletions(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredLocation>, RepoError>;

    /// Puts off the next removal of a location's data because the store says it is in use:
    /// counts the attempt and skips the location until `now + delay(attempts)`. Returns the
    /// attempts so far and when the next is due.
    async fn defer_removal(
        &self,
        location_id: i64,
        now: DateTime<Utc>,
        delay: fn(u32) -> std::time::Duration,
        reason: &str,
    ) -> Result<(u32, DateTime<Utc>), RepoError>;

    /// The store refused to remove a just-deleted image's data (in use): the image comes
    /// back with `status`, and `location_ids` (the data still there) become active again.
    /// False if the image was not deleted any more.
    async fn delete_refused(
        &self,
        image_id: &str,
        status: &str,
        location_ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// The data of a `pending_delete` location is gone: the location is marked deleted, and a
    /// `pending_delete` image with no data left becomes `deleted`.
    async fn location_removed(&self, location_id: i64, now: DateTime<Utc>)
        -> Result<(), RepoError>;

    /// Retires (`active → pending_delete`) one of an image's copies, unless it is the last
    /// active one; false if it is, or if it is not active.
    async fn retire_copy(
        &self,
        image_id: &str,
        location_id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// Records a copy of an image's data (`url` in the store `metadata` names) as a new active
    /// location, if the image still has data to copy (active or deactivated, not deleted) and
    /// no live location has that URL yet. False otherwise.
    async fn add_copy(
        &self,
        id: &ImageId,
        url: &str,
        metadata: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// Active locations of images with data (active or deactivated), with ids above `after`,
    /// in id order: the pages a migration walks.
    async fn locations_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredLocation>, RepoError>;

    /// Moves a location from status `from` to `to` (`active` ↔ `pending_delete`); false if
    /// it was not in `from` (another request got there first).
    async fn set_location_status(
        &self,
        location_id: i64,
        from: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;
}

/// How the metadata relates to a piece of store data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataReference {
    /// A location that is not deleted names it (in use, or `pending_delete` for the scrubber),
    /// or its image has such a location under another spelling of the path.
    Named,
    /// No location names it and its image is being uploaded: it may be about to be recorded.
    Uploading,
    /// No location names it; its image exists, has no location and is not uploading.
    Unnamed,
    /// No location names it and its image is deleted or unknown: nothing ever will.
    NoImage,
}

/// One row of `image_locations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLocation {
    pub id: i64,
    pub image_id: String,
    /// The location URI (`file:///…`).
    pub url: String,
    /// The location's metadata, a JSON object (`{"store": "…"}` with several stores).
    pub metadata: String,
}

impl StoredLocation {
    /// The store id its metadata names (multi-store Glance and Glint write one).
    pub fn store_id(&self) -> Option<String> {
        serde_json::from_str::<serde_json::Value>(&self.metadata)
            .ok()?
            .get("store")?
            .as_str()
            .map(str::to_owned)
    }
}

/// What a finished upload records on the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedData {
    pub size: i64,
    /// From the format inspector; `None` when the format does not tell.
    pub virtual_size: Option<i64>,
    pub checksum: String,
    pub os_hash_algo: String,
    pub os_hash_value: String,
    pub location: String,
    pub metadata: String,
}
