//! Keeping the cache within `image_cache_max_size`: before a fill starts, the least recently
//! accessed complete files go until the new image fits with the fills in progress (an image
//! larger than the whole cache is not cached at all); the pruner (`prune`) brings a cache
//! over its size (a lowered maximum, files from before) back under it the same way.

use std::fs::File;

use super::files::{self, CacheFile};
use super::fill::{read_at, Expected, Hashing};
use super::{lock, CacheError, ImageCache};
use crate::domain::ImageId;

/// Bytes hashed per step when a file is checked again.
const VERIFY_BLOCK: u64 = 4 << 20;

impl ImageCache {
    /// Bytes held by complete files.
    pub(super) fn complete_size(&self) -> u64 {
        files::list(&self.dirs.base).iter().map(|f| f.size).sum()
    }

    /// Bytes promised to the fills in progress.
    fn filling_size(&self) -> u64 {
        lock(&self.fills).values().map(|f| f.expected.size).sum()
    }

    /// Evicts until `incoming` more bytes fit; false (nothing evicted) when they cannot.
    pub(super) async fn make_room(&self, incoming: u64) -> Result<bool, CacheError> {
        if incoming > self.max_size {
            return Ok(false);
        }
        let budget = self.max_size - incoming;
        let used = self.complete_size() + self.filling_size();
        if used <= budget {
            return Ok(true);
        }
        let victims = self.least_recent_first().await?;
        let evictable: u64 = victims.iter().map(|f| f.size).sum();
        if used.saturating_sub(evictable) > budget {
            return Ok(false);
        }
        self.evict_down_to(victims, used, budget).await?;
        Ok(true)
    }

    /// `POST /v2/cache/prune`: complete files go, least recently accessed first, until the
    /// cache holds at most `image_cache_max_size`.
    pub async fn prune(&self) -> Result<super::Pruned, CacheError> {
        let _admission = self.admission.lock().await;
        let used = self.complete_size();
        if used <= self.max_size {
            return Ok(super::Pruned::default());
        }
        let victims = self.least_recent_first().await?;
        self.evict_down_to(victims, used, self.max_size).await
    }

    async fn evict_down_to(
        &self,
        victims: Vec<CacheFile>,
        mut used: u64,
        budget: u64,
    ) -> Result<super::Pruned, CacheError> {
        let mut pruned = super::Pruned::default();
        for victim in victims {
            if used <= budget {
                break;
            }
            let Some(id) = ImageId::parse(&victim.name) else {
                continue;
            };
            tracing::info!(image.id = %id, size = victim.size, "evicting a cached image");
            self.discard(&id).await?;
            used = used.saturating_sub(victim.size);
            pruned.files += 1;
            pruned.bytes += victim.size;
        }
        Ok(pruned)
    }

    /// Complete files in eviction order: unrecorded ones (oldest first), then by the
    /// records' last access.
    async fn least_recent_first(&self) -> Result<Vec<CacheFile>, CacheError> {
        let mut on_disk = files::list(&self.dirs.base);
        on_disk.retain(|f| ImageId::parse(&f.name).is_some());
        let records = self.repo.entries(&self.node).await?;
        let mut unrecorded: Vec<CacheFile> = on_disk
            .iter()
            .filter(|f| !records.iter().any(|r| r.image_id == f.name))
            .cloned()
            .collect();
        unrecorded.sort_by_key(|f| f.modified);
        let recorded = records
            .iter()
            .filter_map(|r| on_disk.iter().find(|f| f.name == r.image_id).cloned());
        unrecorded.extend(recorded);
        Ok(unrecorded)
    }
}

/// Reads `file` whole and checks it against `expected` (size and digests).
pub(super) fn verify_file(file: &File, expected: &Expected) -> Result<(), String> {
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    if size != expected.size {
        return Err(format!("{size} bytes, {} recorded", expected.size));
    }
    let mut hashing = Hashing::new(expected)?;
    let mut position = 0;
    while position < size {
        let len = (size - position).min(VERIFY_BLOCK);
        let block = read_at(file, position, len).map_err(|e| e.to_string())?;
        hashing.update(&block)?;
        position += len;
    }
    hashing.check(expected)
}
