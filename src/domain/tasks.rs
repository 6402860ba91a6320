//! Tasks (Glance's `tasks` and `task_info` rows: what clients see of an import) and the
//! import jobs behind them (Glint's: what a node claims and runs), with the port `db/`
//! implements for both.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::error::RepoError;
use super::image::ImageId;
use super::repository::UploadedData;

/// Glance's task statuses: `pending → processing → success | failure`, `pending → failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Pending,
    Processing,
    Success,
    Failure,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 4] = [
        TaskStatus::Pending,
        TaskStatus::Processing,
        TaskStatus::Success,
        TaskStatus::Failure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Processing => "processing",
            TaskStatus::Success => "success",
            TaskStatus::Failure => "failure",
        }
    }

    pub fn parse(text: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_final(self) -> bool {
        matches!(self, TaskStatus::Success | TaskStatus::Failure)
    }
}

/// Glance's task types.
pub const TASK_TYPES: [&str; 3] = ["import", "api_image_import", "location_import"];

/// A task as Glance stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: String,
    pub task_type: String,
    pub status: TaskStatus,
    /// The project that asked for it.
    pub owner: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub image_id: Option<String>,
    pub request_id: Option<String>,
    pub user_id: Option<String>,
    pub input: Option<Value>,
    pub result: Option<Value>,
    pub message: String,
}

/// A `GET /v2/tasks` query, parsed and checked.
#[derive(Debug, Clone)]
pub struct TaskQuery {
    /// Only tasks of this project (`None`: an administrator sees all).
    pub owner: Option<String>,
    pub status: Option<TaskStatus>,
    pub task_type: Option<String>,
    /// A `tasks` column.
    pub sort_key: String,
    pub ascending: bool,
    pub limit: u32,
    pub marker: Option<Task>,
}

/// The columns `GET /v2/tasks` may sort by (Glance's `Task` model attributes that sort).
pub const TASK_SORT_KEYS: [&str; 11] = [
    "id",
    "type",
    "status",
    "owner",
    "expires_at",
    "created_at",
    "updated_at",
    "image_id",
    "request_id",
    "user_id",
    "deleted",
];

/// Image properties an import keeps (Glance's names; users cannot set `os_glance*`).
pub mod props {
    /// The import lock: the id of the task that holds it.
    pub const IMPORT_TASK: &str = "os_glance_import_task";
    /// Stores an import still has to write, sorted and comma-joined.
    pub const IMPORTING_TO: &str = "os_glance_importing_to_stores";
    /// Stores an import failed to write.
    pub const FAILED_IMPORT: &str = "os_glance_failed_import";
    /// Where the data was staged (the staging node's URL).
    pub const STAGE_HOST: &str = "os_glance_stage_host";
}

/// A store list property in Glance's form (a sorted set, comma-joined, no blanks), with
/// `add` added and `remove` removed.
pub fn merge_store_list(current: Option<&str>, add: &[&str], remove: &[&str]) -> String {
    let mut stores: Vec<&str> = current
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .chain(add.iter().copied())
        .filter(|s| !s.is_empty() && !remove.contains(s))
        .collect();
    stores.sort_unstable();
    stores.dedup();
    stores.join(",")
}

/// What starting an import writes, in one transaction with the lock: the task, its job, and
/// the image's new status and properties.
#[derive(Debug, Clone)]
pub struct ImportStart {
    pub task: Task,
    /// The job's own description of the work (`ImportSpec`, as JSON).
    pub spec: String,
    /// The only node that may run the job (data staged on its local disk), if any.
    pub node: Option<String>,
    /// The statuses the image must still have.
    pub from_status: &'static str,
    /// Its status once the import starts (`None`: unchanged, as for copy-image).
    pub to_status: Option<&'static str>,
    /// Properties set (the lock among them).
    pub set: Vec<(String, String)>,
    /// Properties removed.
    pub remove: Vec<String>,
    /// A lock whose task has not been updated since this is broken.
    pub stale_before: DateTime<Utc>,
}

/// How starting an import went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportBegun {
    Started {
        /// The task whose stale lock was broken, if any.
        preempted: Option<String>,
    },
    /// Another import holds the lock.
    Locked,
    /// The image's status is no longer `from_status`.
    StatusChanged,
    Gone,
}

/// A job a node has claimed.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub task: Task,
    pub image_id: ImageId,
    pub spec: String,
    /// Including this one.
    pub attempts: i32,
}

/// Data staged for an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedData {
    pub image_id: String,
    /// The staging store's location of it.
    pub location: String,
    pub size: i64,
    pub checksum: Option<String>,
    pub os_hash_value: Option<String>,
    /// The node whose local disk holds it (`None`: a store every node reaches).
    pub node: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Data an import wrote (or a location it registered), recorded on the image while its job
/// holds the lock. Attributes left `None` keep their value.
#[derive(Debug, Clone, Default)]
pub struct ImportedCopy {
    pub location: String,
    /// The location's metadata, as stored (`{"store": id}` with several stores).
    pub metadata: String,
    pub size: Option<i64>,
    pub virtual_size: Option<i64>,
    pub checksum: Option<String>,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    /// The store's id, taken off `os_glance_importing_to_stores`.
    pub store: Option<String>,
    /// Whether the image becomes `active` with this copy.
    pub activate: bool,
    /// The formats of converted data (`image_conversion`), or of a remote image
    /// (glance-download).
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    /// Properties set with the copy (a remote image's, glance-download).
    pub properties: Vec<(String, String)>,
}

impl ImportedCopy {
    /// A copy the data path wrote, whose digests it computed.
    pub fn written(data: &UploadedData, store: Option<String>, activate: bool) -> ImportedCopy {
        ImportedCopy {
            location: data.location.clone(),
            metadata: data.metadata.clone(),
            size: Some(data.size),
            virtual_size: data.virtual_size,
            checksum: Some(data.checksum.clone()),
            os_hash_algo: Some(data.os_hash_algo.clone()),
            os_hash_value: Some(data.os_hash_value.clone()),
            store,
            activate,
            disk_format: None,
            container_format: None,
            properties: Vec::new(),
        }
    }
}

/// A change of an image's locations by JSON-patch: locations added (URL, metadata JSON), or
/// the same locations' metadata rewritten; the image becomes `active` if it was `queued`.
#[derive(Debug, Clone, Default)]
pub struct LocationWrite {
    pub add: Vec<(String, String)>,
    pub metadata_only: Vec<(String, String)>,
    /// The image's size, when it had none.
    pub size: Option<i64>,
    /// New `checksum`, `os_hash_algo`, `os_hash_value` from `validation_data`.
    pub hashes: Option<[Option<String>; 3]>,
    /// `image_location_quota`, counted under the image's lock.
    pub max_locations: Option<usize>,
}

/// How a location write went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationsWritten {
    Written,
    Gone,
    StatusChanged,
    /// A location with this URL and the same metadata exists.
    Duplicate(String),
    OverQuota {
        count: usize,
        quota: usize,
    },
}

/// How an import job ends: the task's final state, and what happens to the image.
#[derive(Debug, Clone)]
pub struct ImportEnd {
    pub status: TaskStatus,
    pub message: String,
    pub result: Option<Value>,
    pub expires_at: DateTime<Utc>,
    /// The image goes back to this status (from `importing`), if any: size and virtual size
    /// cleared when it is `queued`.
    pub revert_to: Option<&'static str>,
    /// Properties set and removed on the image.
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
    /// Locations the job recorded and gives up (its stores all had to succeed); the image's
    /// checksums and size are cleared when no location is left.
    pub drop_locations: Vec<String>,
}

#[async_trait]
pub trait TaskRepo: Send + Sync + std::fmt::Debug + 'static {
    /// A task by id (expired or not, as Glance's `task_get`); deleted ones are not found.
    async fn task(&self, id: &str) -> Result<Option<Task>, RepoError>;

    /// Tasks as `GET /v2/tasks` lists them.
    async fn tasks(&self, query: &TaskQuery) -> Result<Vec<Task>, RepoError>;

    /// The unexpired tasks of an image (owner `None`: every project's).
    async fn image_tasks(
        &self,
        image_id: &str,
        owner: Option<&str>,
    ) -> Result<Vec<Task>, RepoError>;

    /// Adds a task with no job (the legacy tasks API).
    async fn add_task(&self, task: &Task) -> Result<(), RepoError>;

    /// Marks tasks whose `expires_at` has passed deleted (Glance removes them from lists).
    async fn expire_tasks(&self, now: DateTime<Utc>) -> Result<u64, RepoError>;

    /// Takes the image's import lock and writes the task, its job and the image's changes
    /// together; nothing is written unless all are.
    async fn begin_import(
        &self,
        image_id: &ImageId,
        start: &ImportStart,
    ) -> Result<ImportBegun, RepoError>;

    /// Whether the import lock `task_id` holds still holds (its job runs or waits, or a task
    /// Glance started has moved since `stale_before`): what `begin_import` will find, read
    /// early to refuse as Glance does before the stores are looked at.
    async fn lock_held(
        &self,
        task_id: &str,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// Claims the oldest job this node may run that is unclaimed or whose claim's heartbeat
    /// is older than `stale_before`, moving its task to `processing`.
    async fn claim_job(
        &self,
        node: &str,
        claim: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<Option<ClaimedJob>, RepoError>;

    /// Changes the image's locations as a JSON-patch of `/locations` asks, while its status is
    /// still `status`.
    async fn write_locations(
        &self,
        image_id: &ImageId,
        status: &str,
        write: &LocationWrite,
        now: DateTime<Utc>,
    ) -> Result<LocationsWritten, RepoError>;

    /// Lets go of the claims whose token starts with `prefix` (a restarted node's own).
    async fn release_jobs_claimed_by(&self, prefix: &str) -> Result<u64, RepoError>;

    /// The job's heartbeat, with its task's progress message; false once the claim is lost
    /// (taken over, or the task ended).
    async fn touch_job(
        &self,
        task_id: &str,
        claim: &str,
        message: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// Records a store's copy while the claim holds the image's lock; false if it does not.
    async fn record_import(
        &self,
        task_id: &str,
        claim: &str,
        image_id: &ImageId,
        copy: &ImportedCopy,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// Ends the job: task final, lock released, the image changed as `end` says, the job row
    /// removed. False if the claim was lost.
    async fn finish_job(
        &self,
        task_id: &str,
        claim: &str,
        image_id: &ImageId,
        end: &ImportEnd,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;
}

/// Data staged for imports (part of every `UploadRepo`).
#[async_trait]
pub trait StagingRepo: Send + Sync + std::fmt::Debug + 'static {
    /// Records data staged for an image whose stage upload holds `claim`: the image keeps
    /// `uploading` with the staged size, and `set` properties.
    async fn record_staged(
        &self,
        claim: &str,
        staged: &StagedData,
        set: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// Records data an import staged itself (replacing any earlier record of the image's).
    async fn put_staged(&self, staged: &StagedData) -> Result<(), RepoError>;

    async fn staged(&self, image_id: &str) -> Result<Option<StagedData>, RepoError>;

    /// Staged data of images that no longer need it (not `uploading` or `importing`, or gone)
    /// and that no job will read, on `node`'s disk or (node `None`) in the shared store.
    async fn staged_unneeded(&self, node: Option<&str>) -> Result<Vec<StagedData>, RepoError>;

    /// Forgets staged data once it is removed from the staging store.
    async fn remove_staged(&self, image_id: &str, location: &str) -> Result<(), RepoError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_lists_are_sorted_sets() {
        assert_eq!(merge_store_list(Some("b,a"), &["c", "a"], &[]), "a,b,c");
        assert_eq!(merge_store_list(Some("b, a"), &[], &["a"]), "b");
        assert_eq!(merge_store_list(None, &[], &[]), "");
    }
}
