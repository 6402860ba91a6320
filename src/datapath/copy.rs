//! Copies of an image's data from one store to another (`glint image copy`, `glint migrate`;
//! later the `copy-image` import method): streamed through the data path's digests, verified
//! against the image's recorded `checksum` and multihash before the copy is recorded as a new
//! location, and never recorded twice.
//!
//! ```text
//! source reader → chunks of ~1 MiB (memory budget) → ┬ md5 + multihash workers
//!                                                    └ target writer
//! end → size and digests match the image? → commit → add the location → (retire the source)
//!      mismatch → abort: nothing stays in the target
//! ```
//!
//! A copy interrupted by a killed process leaves either unfinished data (the target's sweep
//! removes it) or finished data no location names yet. The next copy finds the latter
//! (`AlreadyExists` from the writer), reads it back, and records it if it verifies, so no
//! image is copied twice; data that does not verify is removed and copied again.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use glint_store::{Chunk, Location, ReaderBody, Store, StoreError, WriteOptions};

use super::digest::{Digester, Digests};
use super::error::DataError;
use super::inspect;
use super::writer::OpenWriter;
use super::DataService;
use crate::domain::image::{self, Image};
use crate::domain::policy::Action;
use crate::domain::{DomainError, ImageStatus, RequestContext, StoredLocation};

/// Frames are gathered into chunks of about this size.
const CHUNK: usize = 1 << 20;
/// What the copy's own pipeline holds besides a buffering writer: the chunk being gathered
/// and those queued for the two hash workers.
const PIPELINE: u64 = 6 << 20;

/// How a copy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyOutcome {
    /// The data was copied, verified and recorded.
    Copied { bytes: u64 },
    /// The target store holds a recorded copy already.
    AlreadyThere,
    /// Verified data an interrupted copy had left in the target was recorded.
    Recovered { bytes: u64 },
}

/// Where a copy reads from: a store's copy of the data, or the best one (heaviest store).
#[derive(Debug, Clone, Copy)]
pub struct CopyRequest<'a> {
    pub image_id: &'a str,
    pub to: &'a str,
    pub from: Option<&'a str>,
}

impl DataService {
    /// The context copies run in: an operator's command, not a user's request.
    pub(super) fn operator() -> RequestContext {
        RequestContext::unauthenticated_admin("glint-copy".to_owned())
    }

    /// Copies an image's data into store `request.to`; `progress` hears the bytes copied so
    /// far (and again from 0 if the copy starts over).
    pub async fn copy_image(
        &self,
        request: CopyRequest<'_>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<CopyOutcome, DataError> {
        if !self.stores.multi() {
            return Err(DomainError::bad_request(
                "Copies between stores need several stores (enabled_backends).",
            )
            .into());
        }
        let ctx = Self::operator();
        let image = self
            .images
            .get_for(&ctx, request.image_id, Action::GetImage)
            .await?;
        if !matches!(image.status, ImageStatus::Active | ImageStatus::Deactivated) {
            return Err(DomainError::conflict(format!(
                "Image {} has no data to copy (status {}).",
                image.id,
                image.status.as_str()
            ))
            .into());
        }
        let expected = Expected::of(&image)?;
        let target = self
            .stores
            .entries()
            .iter()
            .find(|e| e.id == request.to)
            .ok_or_else(|| DomainError::bad_request(format!("Unknown store {}.", request.to)))?;
        let locations = self.uploads.locations(&image.id).await?;
        // Rows without a store id (written before several stores) count by their URL.
        let in_target = |l: &StoredLocation| match l.store_id() {
            Some(id) => id == request.to,
            None => Location::parse(&l.url).is_ok_and(|uri| target.store.owns(&uri)),
        };
        if locations.iter().any(in_target) {
            return Ok(CopyOutcome::AlreadyThere);
        }
        let source = self.source_of(&locations, request)?;
        let store = target.store.clone();
        let options = WriteOptions {
            size: Some(expected.size),
            max_size: expected.size,
            memory: self.budget.total().saturating_sub(PIPELINE),
        };
        let buffer = store.write_buffer(&options)?;
        let writer = match store.writer(image.id.as_str(), &options).await {
            Ok(writer) => OpenWriter::new(writer, store.name()),
            // The error names the data's location.
            Err(StoreError::AlreadyExists(uri)) => {
                let location = Location::parse(&uri)?;
                return self
                    .recover(&image, &expected, request, &store, location, progress)
                    .await;
            }
            Err(e) => return Err(e.into()),
        };
        // Reserved only now: a copy that finds data already there (and may start over) holds
        // none while it checks it.
        let budget = match buffer {
            0 => self.budget.clone(),
            buffer => self.budget.reserve(PIPELINE + buffer).await?,
        };
        let bytes = self
            .stream_into(&image, &expected, &source, writer, &budget, progress)
            .await?;
        Ok(CopyOutcome::Copied { bytes })
    }

    /// The location a copy reads: the one in `request.from`, or the first of the heaviest
    /// store.
    fn source_of(
        &self,
        locations: &[StoredLocation],
        request: CopyRequest<'_>,
    ) -> Result<StoredLocation, DataError> {
        let mut candidates: Vec<&StoredLocation> = locations
            .iter()
            .filter(|l| request.from.is_none() || l.store_id().as_deref() == request.from)
            .collect();
        candidates.sort_by_key(|l| std::cmp::Reverse(self.stores.weight(l.store_id().as_deref())));
        candidates.first().map(|l| (*l).clone()).ok_or_else(|| {
            DomainError::not_found(match request.from {
                Some(from) => format!("Image {} is not stored in store {from}.", request.image_id),
                None => format!("Image {} has no data.", request.image_id),
            })
            .into()
        })
    }

    /// Streams `source` into `writer` through the digests, verifies, commits and records.
    async fn stream_into(
        &self,
        image: &Image,
        expected: &Expected,
        source: &StoredLocation,
        mut writer: OpenWriter,
        budget: &super::budget::ByteBudget,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, DataError> {
        let digests = async {
            let (store, location) = self.store_for(source)?;
            let digester = Digester::start(&expected.algorithm)?;
            // Data stored before inspection existed (or by Glance) is checked on its way to
            // a new store: an unsafe image is not spread further.
            let mut inspector = inspect::for_image(
                image.disk_format.as_deref(),
                image.container_format.as_deref(),
                &self.config.inspection,
            );
            let mut chunks = Chunks::open(&store, &location, budget).await?;
            while let Some(chunk) = chunks.next().await? {
                inspector.inspect(&chunk)?;
                digester.feed(&chunk).await?;
                writer.write(chunk).await?;
                progress(chunks.total);
            }
            inspector.finish(chunks.total)?;
            let digests = digester.finish().await?;
            Ok::<_, DataError>((chunks.total, digests))
        }
        .await;
        let (copied, digests) = match digests {
            Ok(done) => done,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(e);
            }
        };
        if let Err(why) = expected.check(copied, &digests) {
            // Nothing unverified is kept, let alone recorded.
            let _ = writer.abort().await;
            return Err(DataError::Corrupt {
                image: image.id.to_string(),
                why: format!("the copy read from {} {why}", source.url),
            });
        }
        let stored = writer.commit().await?;
        self.record(image, &stored.location, copied).await
    }

    /// Records `location` (just written to store `to`) as a copy of the image; if the image
    /// went away meanwhile, removes the data again.
    async fn record(
        &self,
        image: &Image,
        location: &Location,
        bytes: u64,
    ) -> Result<u64, DataError> {
        let Some(entry) = self
            .stores
            .entries()
            .iter()
            .find(|e| e.store.owns(location))
        else {
            return Err(DataError::Internal(format!("no store owns {location}")));
        };
        let metadata = if self.stores.multi() {
            serde_json::json!({ "store": entry.id }).to_string()
        } else {
            "{}".to_owned()
        };
        let added = self
            .uploads
            .add_copy(&image.id, &location.uri(), &metadata, image::now())
            .await;
        match added {
            Ok(true) => Ok(bytes),
            // Recorded already (a repeat, or a row of the same URL): the data is named.
            Ok(false) if self.is_named(image, location).await? => Ok(bytes),
            Ok(false) => {
                let _ = entry.store.delete(location).await;
                Err(DataError::Conflict(format!(
                    "Image {} was deleted or changed while its data was copied.",
                    image.id
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The target already holds data for the image that no location names: an interrupted
    /// copy's (or anything else's). Recorded if it verifies; else removed and copied again.
    async fn recover(
        &self,
        image: &Image,
        expected: &Expected,
        request: CopyRequest<'_>,
        store: &Arc<dyn Store>,
        location: Location,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<CopyOutcome, DataError> {
        let read = async {
            let digester = Digester::start(&expected.algorithm)?;
            let mut chunks = Chunks::open(store, &location, &self.budget).await?;
            while let Some(chunk) = chunks.next().await? {
                digester.feed(&chunk).await?;
            }
            Ok::<_, DataError>((chunks.total, digester.finish().await?))
        }
        .await;
        match read {
            Ok((bytes, digests)) if expected.check(bytes, &digests).is_ok() => {
                tracing::info!(image.id = %image.id, store.name = request.to,
                    "recording verified data an interrupted copy left");
                progress(bytes);
                self.record(image, &location, bytes).await?;
                Ok(CopyOutcome::Recovered { bytes })
            }
            outcome => {
                if self.is_named(image, &location).await? {
                    // A location names it: it is never removed here, only reported.
                    return Err(DataError::Corrupt {
                        image: image.id.to_string(),
                        why: format!("{location}, which a location names, does not verify"),
                    });
                }
                let why = match outcome {
                    Ok(_) => "it does not match the image's size and checksums".to_owned(),
                    Err(e) => e.to_string(),
                };
                tracing::warn!(image.id = %image.id, store.name = request.to, reason = %why,
                    "removing unrecorded data in the target, to copy again");
                match store.delete(&location).await {
                    Ok(()) | Err(StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                Box::pin(self.copy_image(request, progress)).await
            }
        }
    }

    /// Whether a live location of the image names `location`.
    async fn is_named(&self, image: &Image, location: &Location) -> Result<bool, DataError> {
        Ok(self
            .uploads
            .locations(&image.id)
            .await?
            .iter()
            .any(|l| Location::parse(&l.url).is_ok_and(|uri| &uri == location)))
    }

    fn store_for(
        &self,
        location: &StoredLocation,
    ) -> Result<(Arc<dyn Store>, Location), DataError> {
        let uri = Location::parse(&location.url)?;
        let entry = self
            .stores
            .for_location(&uri, location.store_id().as_deref())
            .ok_or_else(|| DataError::Internal(format!("no configured store serves {uri}")))?;
        Ok((entry.store.clone(), uri))
    }
}

/// What the copied data must be: the image's recorded size and digests.
struct Expected {
    size: u64,
    checksum: Option<String>,
    algorithm: String,
    hash: Option<String>,
}

impl Expected {
    fn of(image: &Image) -> Result<Expected, DataError> {
        let size = image.size.and_then(|s| u64::try_from(s).ok());
        let (Some(size), true) = (
            size,
            image.checksum.is_some() || image.os_hash_value.is_some(),
        ) else {
            return Err(DomainError::conflict(format!(
                "Image {} records no size or checksum: its copy could not be verified.",
                image.id
            ))
            .into());
        };
        Ok(Expected {
            size,
            checksum: image.checksum.clone(),
            // Images from before multihash have an md5 only; the algorithm then is moot.
            algorithm: image
                .os_hash_algo
                .clone()
                .unwrap_or_else(|| "sha512".to_owned()),
            hash: image.os_hash_value.clone(),
        })
    }

    fn check(&self, bytes: u64, digests: &Digests) -> Result<(), String> {
        if bytes != self.size {
            return Err(format!("holds {bytes} bytes, the image {}", self.size));
        }
        if let Some(checksum) = &self.checksum {
            if !checksum.eq_ignore_ascii_case(&digests.md5) {
                return Err(format!("has md5 {}, the image {checksum}", digests.md5));
            }
        }
        if let Some(hash) = &self.hash {
            if !hash.eq_ignore_ascii_case(&digests.value) {
                return Err(format!(
                    "has {} {}, the image {hash}",
                    self.algorithm, digests.value
                ));
            }
        }
        Ok(())
    }
}

/// A stored copy read whole, in chunks of ~1 MiB drawn on the memory budget.
pub(super) struct Chunks {
    body: glint_store::ByteStream,
    location: String,
    budget: super::budget::ByteBudget,
    /// Bytes read so far.
    pub(super) total: u64,
    done: bool,
}

impl Chunks {
    pub(super) async fn open(
        store: &Arc<dyn Store>,
        location: &Location,
        budget: &super::budget::ByteBudget,
    ) -> Result<Chunks, DataError> {
        let reader = store.reader(location, None).await?;
        let body = match reader.body {
            ReaderBody::Stream(stream) => stream,
            ReaderBody::File(file) => {
                super::download::file_stream(file, reader.range, location.to_string())
            }
        };
        let body = super::download::counted(body, store.name());
        Ok(Chunks {
            body,
            location: location.to_string(),
            budget: budget.clone(),
            total: 0,
            done: false,
        })
    }

    /// The next chunk; `None` at the end of the data.
    pub(super) async fn next(&mut self) -> Result<Option<Chunk>, DataError> {
        let mut frames: Vec<Bytes> = Vec::new();
        let mut gathered = 0usize;
        let mut permit: Option<tokio::sync::OwnedSemaphorePermit> = None;
        while !self.done && gathered < CHUNK {
            match self.body.next().await {
                Some(Ok(frame)) => {
                    let more = self.budget.acquire(frame.len()).await?;
                    match permit.as_mut() {
                        Some(held) => held.merge(more),
                        None => permit = Some(more),
                    }
                    gathered += frame.len();
                    self.total += frame.len() as u64;
                    frames.push(frame);
                }
                Some(Err(e)) => {
                    return Err(DataError::Internal(format!(
                        "reading {}: {e}",
                        self.location
                    )))
                }
                None => self.done = true,
            }
        }
        if frames.is_empty() {
            return Ok(None);
        }
        let guard = permit.map(|p| Box::new(p) as Box<dyn std::any::Any + Send + Sync>);
        Ok(Some(Chunk::with_guard(frames, guard)))
    }
}
