//! Downloads through the image cache, and prefetching into it.
//!
//! A whole download of an active image is served from this node's complete cached file, or
//! follows the fill in progress, or starts the fill: the store is read once, into the cache
//! file, and every download of the image reads that file behind the writer. A range is
//! served from a complete file, else from the store. Deactivated images never touch the
//! cache (administrators still read them from the store, as from Glance).

use std::sync::Arc;

use futures_util::TryStreamExt as _;
use glint_store::ByteRange;

use super::download::{file_stream, DataStream, Download};
use super::error::DataError;
use super::DataService;
use crate::cache::{Expected, ImageCache, Lookup};
use crate::domain::image::Image;
use crate::domain::{ImageId, ImageStatus, RequestContext, StoredLocation};
use crate::metrics;

impl DataService {
    /// This service with the node's image cache.
    pub fn with_cache(mut self, cache: Option<Arc<ImageCache>>) -> DataService {
        self.cache = cache;
        self
    }

    pub fn cache(&self) -> Option<&Arc<ImageCache>> {
        self.cache.as_ref()
    }

    /// The download served by the cache, or `None` to read the store.
    pub(super) async fn download_cached(
        &self,
        ctx: &RequestContext,
        image: &Image,
        locations: &[StoredLocation],
        size: u64,
        range: Option<ByteRange>,
    ) -> Result<Option<Download>, DataError> {
        let Some(cache) = self.cache.as_ref().filter(|c| c.on_downloads()) else {
            return Ok(None);
        };
        if image.status != ImageStatus::Active || size == 0 {
            return Ok(None);
        }
        let counters = metrics::global();
        let served = range.unwrap_or(ByteRange {
            start: 0,
            end: size,
        });
        let body = match cache
            .lookup(&image.id, &expected(image, size), range.is_none())
            .await
        {
            Lookup::Complete(file) => {
                counters.cache_hits.add(1);
                from_cache(file_stream(file, served, image.id.to_string()))
            }
            Lookup::Filling(fill) => {
                counters.cache_hits.add(1);
                from_cache(fill.reader(served))
            }
            Lookup::Start(fill) => {
                counters.cache_misses.add(1);
                let source = match self.open_stores(ctx, image, locations, size, None).await {
                    Ok(source) => source,
                    Err(e) => {
                        cache.abandon(&fill);
                        return Err(e);
                    }
                };
                tokio::spawn(cache.clone().run_fill(fill.clone(), source));
                fill.reader(served)
            }
            Lookup::Bypass => {
                counters.cache_misses.add(1);
                return Ok(None);
            }
        };
        Ok(Some(Download {
            size,
            range,
            content_length: served.len(),
            checksum: image.checksum.clone(),
            body,
        }))
    }

    /// Fetches a queued image into the cache (the cache worker's job): false when it is not
    /// an active image (it leaves the queue) or is cached already.
    pub async fn prefetch(&self, id: &str) -> Result<bool, DataError> {
        let Some(cache) = self.cache.clone() else {
            return Ok(false);
        };
        let Some(image_id) = ImageId::parse(id) else {
            return Ok(false);
        };
        let _turn = cache.prefetching.acquire().await;
        let ctx = RequestContext::unauthenticated_admin(format!("req-{}", uuid::Uuid::new_v4()));
        let image = match self.images.get_visible(&ctx, id).await {
            Ok(image) if image.status == ImageStatus::Active => image,
            Ok(_)
            | Err(crate::domain::DomainError::Refused {
                kind: crate::domain::error::Refusal::NotFound,
                ..
            }) => {
                tracing::warn!(image.id = id, "queued image is not active; not cached");
                cache.dequeue(&image_id).map_err(internal)?;
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        };
        let Some(size) = image.size.and_then(|s| u64::try_from(s).ok()) else {
            cache.dequeue(&image_id).map_err(internal)?;
            return Ok(false);
        };
        // A fill followed may end without keeping its data (the entry was removed while it
        // ran): then this image, queued again meanwhile, is fetched once more.
        for _ in 0..3 {
            let fill = match cache.lookup(&image.id, &expected(&image, size), true).await {
                Lookup::Start(fill) => {
                    let locations = self.uploads.locations(&image.id).await?;
                    let source = match self.open_stores(&ctx, &image, &locations, size, None).await
                    {
                        Ok(source) => source,
                        Err(e) => {
                            cache.abandon(&fill);
                            return Err(e);
                        }
                    };
                    tokio::spawn(cache.clone().run_fill(fill.clone(), source));
                    fill
                }
                Lookup::Filling(fill) => fill,
                Lookup::Complete(_) => {
                    cache.dequeue(&image_id).map_err(internal)?;
                    return Ok(false);
                }
                Lookup::Bypass => {
                    tracing::warn!(image.id = id, size, "queued image cannot be cached here (larger than image_cache_max_size?); taken off the queue");
                    cache.dequeue(&image_id).map_err(internal)?;
                    return Ok(false);
                }
            };
            if fill.finished().await.map_err(DataError::Internal)? {
                return Ok(true);
            }
            if !cache.is_queued(&image_id) {
                return Ok(false);
            }
        }
        Ok(false)
    }

    /// Prefetches `id` in the background, logging the outcome.
    pub fn spawn_prefetch(&self, id: String) {
        let data = self.clone();
        tokio::spawn(async move {
            match data.prefetch(&id).await {
                Ok(true) => tracing::info!(image.id = id, "queued image cached"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(image.id = id, error = %e, "prefetching a queued image failed; it stays queued")
                }
            }
        });
    }

    /// Removes this node's cached copy of an image that is deleted or deactivated.
    pub async fn forget_cached(&self, id: &str) {
        if let Some(cache) = &self.cache {
            if let Err(e) = cache.forget(id).await {
                tracing::warn!(image.id = id, error = %e, "cannot remove the image from the cache");
            }
        }
    }
}

fn expected(image: &Image, size: u64) -> Expected {
    Expected {
        size,
        md5: image.checksum.clone(),
        multihash: image.os_hash_algo.clone().zip(image.os_hash_value.clone()),
    }
}

/// Counts the bytes a download takes from the cache.
fn from_cache(body: DataStream) -> DataStream {
    let served = &metrics::global().cache_bytes_served;
    Box::pin(body.inspect_ok(move |block| served.add(block.len() as u64)))
}

fn internal(e: crate::cache::CacheError) -> DataError {
    DataError::Internal(e.to_string())
}
