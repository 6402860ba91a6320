//! The image cache of one node: complete image files served in place of a store read,
//! filled once per image however many downloads ask at the same time (`fill.rs`), kept
//! within `image_cache_max_size` as it fills (`evict.rs`), recorded in the shared database
//! as Glance's `centralized_db` driver does (`domain::cache::CacheRepo`), and queued for
//! prefetching in `queue/` as Glance queues them.
//!
//! The files are the truth about what this node can serve; the rows are what the cache API
//! lists and what eviction orders by (least recently accessed first). A complete file is
//! served when its size is the image's; when its modification time is later than its record
//! says (or it has no record), its digests are checked again first.

mod evict;
mod files;
mod fill;
mod manage;

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::config::CacheConfig;
use crate::domain::cache::{CacheRepo, NewCachedImage};
use crate::domain::{ImageId, RepoError};
pub use files::CacheDirs;
pub use fill::{Expected, Fill, Progress};
pub use manage::{CacheState, Pruned};

/// What the cache can do for a download.
pub enum Lookup {
    /// A complete, checked file (its size is the image's).
    Complete(File),
    /// A fill in progress to follow.
    Filling(Arc<Fill>),
    /// No file and no fill: the caller holds the right to start one (`start`).
    Start(Arc<Fill>),
    /// Read from the store (a range of an uncached image, no room, a cache fault).
    Bypass,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("image cache directory: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

#[derive(Debug)]
pub struct ImageCache {
    dirs: CacheDirs,
    max_size: u64,
    stall_time: Duration,
    /// `worker_self_reference_url`.
    node: String,
    /// Whether downloads use the cache (a caching paste flavor).
    on_downloads: bool,
    repo: Arc<dyn CacheRepo>,
    registered: tokio::sync::OnceCell<()>,
    fills: Mutex<HashMap<String, Arc<Fill>>>,
    /// Held while deciding to start a fill and making room for it.
    admission: tokio::sync::Mutex<()>,
    /// Prefetches run one at a time, as Glance's cache worker thread runs them.
    pub prefetching: tokio::sync::Semaphore,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl ImageCache {
    /// The cache `config` describes, its directories made; `None` when no
    /// `image_cache_dir` is set. The node is registered in the database on first use
    /// (`register`).
    pub fn new(
        config: &CacheConfig,
        repo: Arc<dyn CacheRepo>,
    ) -> Result<Option<Arc<ImageCache>>, CacheError> {
        let (Some(dir), Some(node)) = (&config.dir, &config.node_url) else {
            return Ok(None);
        };
        let dirs = CacheDirs::create(dir)?;
        Ok(Some(Arc::new(ImageCache {
            dirs,
            max_size: config.max_size,
            stall_time: config.stall_time,
            node: node.clone(),
            on_downloads: config.on_downloads,
            repo,
            registered: tokio::sync::OnceCell::new(),
            fills: Mutex::new(HashMap::new()),
            admission: tokio::sync::Mutex::new(()),
            prefetching: tokio::sync::Semaphore::new(1),
        })))
    }

    /// Records this node in `node_reference` (once per process).
    pub async fn register(&self) -> Result<(), CacheError> {
        self.registered
            .get_or_try_init(|| self.repo.register_node(&self.node))
            .await?;
        Ok(())
    }

    pub fn on_downloads(&self) -> bool {
        self.on_downloads
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn dir(&self) -> &Path {
        &self.dirs.base
    }

    /// What serves a download of `id` (whole when `range` is false).
    pub async fn lookup(&self, id: &ImageId, expected: &Expected, whole: bool) -> Lookup {
        if let Some(fill) = self.fill_of(id.as_str()) {
            let verified = matches!(*fill.progress.borrow(), Progress::Verified);
            if !verified {
                return if whole {
                    Lookup::Filling(fill)
                } else {
                    Lookup::Bypass
                };
            }
            // All written and checked, being committed: the complete file serves (and counts)
            // this download once it is in place.
            let _ = fill.finished().await;
        }
        match self.complete(id, expected).await {
            Ok(Some(file)) => return Lookup::Complete(file),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(image.id = %id, error = %e, "image cache unreadable; reading the store");
                return Lookup::Bypass;
            }
        }
        if !whole {
            return Lookup::Bypass;
        }
        match self.admit(id, expected).await {
            Ok(lookup) => lookup,
            Err(e) => {
                tracing::warn!(image.id = %id, error = %e, "cannot cache the image; reading the store");
                Lookup::Bypass
            }
        }
    }

    fn fill_of(&self, id: &str) -> Option<Arc<Fill>> {
        lock(&self.fills).get(id).cloned()
    }

    /// The complete file of `id` if it is good to serve; a bad one is removed.
    async fn complete(
        &self,
        id: &ImageId,
        expected: &Expected,
    ) -> Result<Option<File>, CacheError> {
        let path = self.dirs.complete(id);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let meta = file.metadata()?;
        if meta.len() != expected.size {
            tracing::warn!(image.id = %id, cached = meta.len(), recorded = expected.size,
                "cached file has the wrong size; removed");
            self.discard(id).await?;
            return Ok(None);
        }
        let modified: DateTime<Utc> = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH).into();
        let record = self.repo.entry(&self.node, id.as_str()).await?;
        // The database keeps whole seconds.
        let unchanged = record
            .as_ref()
            .is_some_and(|r| modified.timestamp() <= r.last_modified.timestamp());
        if !unchanged {
            let checked = file.try_clone()?;
            let expected_now = expected.clone();
            let verdict =
                tokio::task::spawn_blocking(move || evict::verify_file(&checked, &expected_now))
                    .await
                    .map_err(std::io::Error::other)?;
            if let Err(why) = verdict {
                tracing::warn!(image.id = %id, why, "cached file no longer matches the image; removed");
                self.discard(id).await?;
                return Ok(None);
            }
            self.register().await?;
            self.repo
                .record(
                    &self.node,
                    &NewCachedImage {
                        image_id: id.to_string(),
                        size: i64::try_from(expected.size).unwrap_or(i64::MAX),
                        checksum: expected.md5.clone(),
                        modified,
                    },
                )
                .await?;
        }
        if let Err(e) = self.repo.hit(&self.node, id.as_str(), Utc::now()).await {
            tracing::warn!(image.id = %id, error = %e, "cache hit not recorded");
        }
        Ok(Some(file))
    }

    /// Starts a fill of `id` if it fits (making room), else `Bypass`.
    async fn admit(&self, id: &ImageId, expected: &Expected) -> Result<Lookup, CacheError> {
        let _admission = self.admission.lock().await;
        // Decided meanwhile by another request.
        if let Some(fill) = self.fill_of(id.as_str()) {
            return Ok(Lookup::Filling(fill));
        }
        if self.dirs.complete(id).exists() {
            return Ok(Lookup::Bypass);
        }
        if !self.make_room(expected.size).await? {
            tracing::info!(image.id = %id, size = expected.size, max_size = self.max_size,
                "image does not fit the cache; not cached");
            return Ok(Lookup::Bypass);
        }
        let fill = Arc::new(Fill::new(
            id.to_string(),
            expected.clone(),
            self.dirs.incomplete(id),
        )?);
        lock(&self.fills).insert(id.to_string(), fill.clone());
        Ok(Lookup::Start(fill))
    }

    /// Runs an admitted fill from `source` to its end: the file committed and recorded, or
    /// removed. Spawn it: it outlives the download that started it.
    pub async fn run_fill(self: Arc<Self>, fill: Arc<Fill>, source: glint_store::ByteStream) {
        let outcome = match fill.write_all(source).await {
            Ok(()) => {
                // The downloads following the fill get their last bytes whatever follows.
                fill.progress.send_replace(Progress::Verified);
                if fill.is_cancelled() {
                    Err("removed from the cache meanwhile".to_owned())
                } else {
                    self.commit(&fill).await
                }
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                lock(&self.fills).remove(&fill.image_id);
                fill.progress
                    .send_replace(Progress::Finished { cached: true });
            }
            Err(why) => {
                let _ = files::remove(&fill.path);
                lock(&self.fills).remove(&fill.image_id);
                if matches!(*fill.progress.borrow(), Progress::Verified) {
                    // Readers had all they need; only the caching failed.
                    tracing::warn!(image.id = %fill.image_id, why, "image served but not cached");
                    fill.progress
                        .send_replace(Progress::Finished { cached: false });
                } else {
                    tracing::warn!(image.id = %fill.image_id, why, "caching the image failed; nothing cached");
                    fill.progress.send_replace(Progress::Failed(why.into()));
                }
            }
        }
    }

    async fn commit(&self, fill: &Fill) -> Result<(), String> {
        let id = ImageId::parse(&fill.image_id).ok_or("malformed image id")?;
        fill.sync().await?;
        let target = self.dirs.complete(&id);
        std::fs::rename(&fill.path, &target).map_err(|e| format!("committing: {e}"))?;
        let _ = files::remove(&self.dirs.queued(&id));
        let modified: DateTime<Utc> = std::fs::metadata(&target)
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| SystemTime::now())
            .into();
        if let Err(e) = self.register().await {
            tracing::warn!(error = %e, "cannot register this node's image cache");
        }
        let recorded = self
            .repo
            .record(
                &self.node,
                &NewCachedImage {
                    image_id: fill.image_id.clone(),
                    size: i64::try_from(fill.expected.size).unwrap_or(i64::MAX),
                    checksum: fill.expected.md5.clone(),
                    modified,
                },
            )
            .await;
        if let Err(e) = recorded {
            // The file is served anyway; the next hit finds it unrecorded, checks and records it.
            tracing::warn!(image.id = %fill.image_id, error = %e, "cached image not recorded");
        }
        if fill.is_cancelled() {
            let _ = self.discard(&id).await;
        }
        Ok(())
    }

    /// Gives up an admitted fill whose store could not be read; its followers are cut.
    pub fn abandon(&self, fill: &Arc<Fill>) {
        lock(&self.fills).remove(&fill.image_id);
        let _ = files::remove(&fill.path);
        fill.progress.send_replace(Progress::Failed(
            "the image's store could not be read".into(),
        ));
    }

    /// Removes this node's file and record of `id`.
    async fn discard(&self, id: &ImageId) -> Result<bool, CacheError> {
        let removed = files::remove(&self.dirs.complete(id))?;
        self.repo.remove(&self.node, id.as_str()).await?;
        Ok(removed)
    }

    /// Drops everything this node caches or queues of `id` (deleted or deactivated image); a
    /// fill in progress is not kept.
    pub async fn forget(&self, id: &str) -> Result<(), CacheError> {
        let Some(id) = ImageId::parse(id) else {
            return Ok(());
        };
        if let Some(fill) = self.fill_of(id.as_str()) {
            fill.cancel();
        }
        files::remove(&self.dirs.queued(&id))?;
        self.discard(&id).await?;
        Ok(())
    }
}
