//! What the cache API, `glint cache` and the maintenance round do with the cache: list it,
//! queue images for prefetching, remove entries, clean failed and stalled files, and drop
//! what no active image needs any more.

use std::time::SystemTime;

use super::files;
use super::{CacheError, ImageCache};
use crate::domain::cache::CachedImage;
use crate::domain::ImageId;

/// `GET /v2/cache`: this node's records and its queue (oldest first).
#[derive(Debug, Clone, Default)]
pub struct CacheState {
    pub cached: Vec<CachedImage>,
    pub queued: Vec<String>,
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub files: u64,
    pub bytes: u64,
}

impl ImageCache {
    pub async fn state(&self) -> Result<CacheState, CacheError> {
        let mut cached = self.repo.entries(&self.node).await?;
        cached.sort_by(|a, b| a.image_id.cmp(&b.image_id));
        Ok(CacheState {
            cached,
            queued: self.queued(),
        })
    }

    /// The nodes caching `id` (`GET /v2/cache/nodes/{id}`).
    pub async fn nodes(&self, id: &ImageId) -> Result<Vec<String>, CacheError> {
        Ok(self.repo.nodes_of(id.as_str()).await?)
    }

    /// Queued image ids, by the time they were queued.
    pub fn queued(&self) -> Vec<String> {
        let mut queue = files::list(&self.dirs.queue);
        queue.sort_by(|a, b| (a.modified, &a.name).cmp(&(b.modified, &b.name)));
        queue.into_iter().map(|f| f.name).collect()
    }

    /// Whether this node has `id` cached or queued.
    pub fn holds(&self, id: &str) -> bool {
        ImageId::parse(id)
            .is_some_and(|id| self.dirs.complete(&id).exists() || self.dirs.queued(&id).exists())
    }

    /// Queues `id` for prefetching; false when it is cached, being cached or queued already.
    pub fn queue(&self, id: &ImageId) -> Result<bool, CacheError> {
        // A fill whose result will not be kept (the entry was removed meanwhile) does not count.
        let filling = self
            .fill_of(id.as_str())
            .is_some_and(|fill| !fill.is_cancelled());
        if self.dirs.complete(id).exists() || filling || self.dirs.queued(id).exists() {
            return Ok(false);
        }
        std::fs::File::create(self.dirs.queued(id))?;
        Ok(true)
    }

    /// Whether `id` is still queued.
    pub fn is_queued(&self, id: &ImageId) -> bool {
        self.dirs.queued(id).exists()
    }

    /// Takes `id` off the queue (it cannot be fetched: unknown or not active).
    pub fn dequeue(&self, id: &ImageId) -> Result<(), CacheError> {
        files::remove(&self.dirs.queued(id))?;
        Ok(())
    }

    /// `DELETE /v2/cache/{id}`: the cached file and the queue entry.
    pub async fn delete(&self, id: &str) -> Result<(), CacheError> {
        self.forget(id).await
    }

    /// Removes every complete file and this node's records; the number of files removed.
    pub async fn clear_cached(&self) -> Result<u64, CacheError> {
        let _admission = self.admission.lock().await;
        let mut removed = 0;
        for file in files::list(&self.dirs.base) {
            if files::remove(&self.dirs.base.join(&file.name))? {
                removed += 1;
            }
        }
        self.repo.remove_all(&self.node).await?;
        Ok(removed)
    }

    /// Empties the queue; the number of images taken off.
    pub fn clear_queue(&self) -> Result<u64, CacheError> {
        let mut removed = 0;
        for file in files::list(&self.dirs.queue) {
            if files::remove(&self.dirs.queue.join(&file.name))? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// `POST /v2/cache/clean`: removes failed files, incomplete files untouched for
    /// `image_cache_stall_time` (not those of a live fill), and records whose file is gone.
    pub async fn clean(&self) -> Result<(), CacheError> {
        for file in files::list(&self.dirs.invalid) {
            files::remove(&self.dirs.invalid.join(&file.name))?;
            tracing::info!(file = file.name, "removed invalid cache file");
        }
        let now = SystemTime::now();
        for file in files::list(&self.dirs.incomplete) {
            let age = now.duration_since(file.modified).unwrap_or_default();
            if age < self.stall_time || self.fill_of(&file.name).is_some() {
                continue;
            }
            files::remove(&self.dirs.incomplete.join(&file.name))?;
            tracing::info!(file = file.name, "removed stalled cache file");
        }
        for record in self.repo.entries(&self.node).await? {
            if !self.dirs.base.join(&record.image_id).exists()
                && self.fill_of(&record.image_id).is_none()
            {
                self.repo.remove(&self.node, &record.image_id).await?;
            }
        }
        Ok(())
    }

    /// Drops the files, records and queue entries of images that are no longer active
    /// (deleted or deactivated, perhaps through another node); how many images.
    pub async fn sweep(&self) -> Result<usize, CacheError> {
        let mut ids: Vec<String> = files::list(&self.dirs.base)
            .into_iter()
            .chain(files::list(&self.dirs.queue))
            .map(|f| f.name)
            .filter(|name| ImageId::parse(name).is_some())
            .collect();
        ids.extend(
            self.repo
                .entries(&self.node)
                .await?
                .into_iter()
                .map(|r| r.image_id),
        );
        ids.sort();
        ids.dedup();
        let gone = self.repo.not_active(&ids).await?;
        for id in &gone {
            self.forget(id).await?;
        }
        Ok(gone.len())
    }
}
