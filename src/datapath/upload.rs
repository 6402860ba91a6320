//! `PUT /v2/images/{id}/file`: the upload pipeline.
//!
//! ```text
//! body frames → batches of ~1 MiB (no copy) → limits → ┬ md5 worker
//!                                                      ├ multihash worker
//!                                                      └ writer task → store
//! end → digests → size checks → commit → image active
//! ```
//! Every consumer sits behind a bounded channel, so a slow store or hash slows the reading of
//! the client's socket instead of filling memory; a process-wide byte budget caps what all
//! uploads together hold. Whatever fails — or if the request is abandoned — the writer is
//! aborted (no byte stays in the store) and the image goes back to `queued`.

use std::time::Duration;

use tracing::Instrument;

use bytes::Bytes;
use futures_util::{FutureExt, Stream};
use std::sync::Arc;

use glint_store::{Location, Store, StoreError, Stored, WriteOptions};

use super::access;
use super::budget::ByteBudget;
use super::claim::ClaimGuard;
use super::digest::Digests;
use super::error::DataError;
use super::inspect::Inspection;
use super::limits::Limits;
use super::pump::Beat;
use super::writer::OpenWriter;
use super::DataService;
use crate::domain::image::{self, Image};
use crate::domain::policy::Action;
use crate::domain::repository::Claimed;
use crate::domain::{
    data_rules, DomainError, RequestContext, SaveOutcome, UploadTarget, UploadedData,
};
use crate::quota::Resource;

/// Frames are gathered into chunks of about this size before they are shared out.
pub(super) const BATCH_BYTES: usize = 1 << 20;
/// Chunks the writer may fall behind by.
pub(super) const WRITER_DEPTH: usize = 4;
/// What an upload's own pipeline (the batch being gathered, the chunks queued for the hashers
/// and the writer) needs to flow, reserved next to a buffering writer's share.
pub(super) const PIPELINE_BYTES: u64 = 4 * BATCH_BYTES as u64;
/// How often a running upload tells the database it is alive.
pub(super) const HEARTBEAT: Duration = Duration::from_secs(30);
/// A client that sends nothing for this long has gone; its upload fails.
pub(super) const BODY_IDLE: Duration = Duration::from_secs(300);

/// What the handler knows about an upload before reading its body.
pub struct UploadRequest<S> {
    pub body: S,
    /// `Content-Length`, absent for chunked bodies.
    pub content_length: Option<u64>,
    /// `X-OpenStack-Image-Size`, the client's statement of the image size.
    pub declared_size: Option<u64>,
    /// `X-Image-Meta-Store`: the store to write to (multi-store only; else ignored, as Glance).
    pub store: Option<String>,
}

/// Delays between attempts to record a committed upload when the database's answer is lost:
/// the write is idempotent, so a repeat tells whether the first one took.
const RECORD_RETRIES: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Whether a failed record left its outcome unknown (the database could not be reached).
fn outcome_unknown(e: &DataError) -> bool {
    matches!(
        e,
        DataError::Domain(crate::domain::DomainError::Repository(
            crate::domain::RepoError::Unavailable(_)
                | crate::domain::RepoError::ConnectionLost(_)
                | crate::domain::RepoError::TimedOut(_)
        ))
    )
}

impl DataService {
    /// The options an upload of unknown size would give each writable store: a store that
    /// cannot work within the memory budget is a start-up error, not a failure of every upload.
    pub fn check_store_buffers(&self) -> Result<(), String> {
        let options = WriteOptions {
            size: None,
            max_size: self.limits.image_size_cap,
            memory: self.budget.total().saturating_sub(PIPELINE_BYTES),
        };
        for store in self.stores.all() {
            if store.capabilities().read_only {
                continue;
            }
            store.write_buffer(&options).map_err(|e| {
                format!("{e} (upload_memory_budget = {} bytes)", self.budget.total())
            })?;
        }
        Ok(())
    }

    /// `PUT /v2/images/{id}/file`: the image's data, into a store.
    pub async fn upload<S, E>(
        &self,
        ctx: &RequestContext,
        id: &str,
        request: UploadRequest<S>,
    ) -> Result<(), DataError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        self.receive(ctx, id, request, UploadTarget::Store).await
    }

    pub(super) async fn receive<S, E>(
        &self,
        ctx: &RequestContext,
        id: &str,
        request: UploadRequest<S>,
        target: UploadTarget,
    ) -> Result<(), DataError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        let (entry, image) = match target {
            UploadTarget::Store => {
                // As Glance: an unknown store is refused before the image is even looked at.
                let requested = if self.stores.multi() {
                    request.store.as_deref()
                } else {
                    None
                };
                let entry = self
                    .stores
                    .for_upload(requested)
                    .map_err(|e| DataError::BadRequest(e.to_string()))?;
                let image = self.images.get_for(ctx, id, Action::UploadImage).await?;
                data_rules::check_upload(&image)?;
                (entry, image)
            }
            UploadTarget::Staging => {
                let image = self.images.get_for(ctx, id, Action::ModifyImage).await?;
                data_rules::check_stage(&image)?;
                (self.stores.staging(), image)
            }
        };
        let (store, store_id) = (entry.for_request(ctx)?, entry.id.clone());
        // Refuse what cannot fit before reading a byte (and before `100 Continue` goes out).
        let mut limits = self.limits_for(&image).await?;
        limits.declared = request.declared_size;
        let expected = request.declared_size.or(request.content_length);
        if let Some(size) = expected {
            limits.check(size)?;
        }
        if store.capabilities().read_only {
            return Err(StoreError::ReadOnly { store: store_id }.into());
        }
        // Keystone's unified limits: the announced size against image_size_total (staged
        // data: image_stage_total).
        let announced_mib =
            expected.map_or(0, |size| i64::try_from(size >> 20).unwrap_or(i64::MAX));
        let resource = match target {
            UploadTarget::Store => Resource::ImageSizeTotal,
            UploadTarget::Staging => Resource::ImageStageTotal,
        };
        self.images
            .enforce_unified_limits(ctx, &[(resource, announced_mib)])
            .await?;
        let options = WriteOptions {
            size: expected,
            max_size: limits.max_size(),
            memory: self.budget.total().saturating_sub(PIPELINE_BYTES),
        };
        // A writer that buffers draws on a reservation of its own (see `budget`); one that
        // does not shares the whole budget with every other upload, frame by frame. The wait
        // for a reservation comes before the claim, so an upload waiting its turn never holds
        // an image in `saving` without a heartbeat.
        let budget = match store.write_buffer(&options)? {
            0 => self.budget.clone(),
            buffer => self.budget.reserve(PIPELINE_BYTES + buffer).await?,
        };

        // Claim the image: only one upload wins `queued → saving`.
        // Prefixed with this node's id, so that after a restart the node resets its own
        // earlier uploads at once instead of waiting for their heartbeat to go stale.
        let claim_token = format!("{}{}", self.claim_prefix(), uuid::Uuid::new_v4());
        // image_count_uploading: read here, counted by the claim's own transaction.
        let uploading_limit = self
            .images
            .unified_limit(ctx, Resource::ImageCountUploading)
            .await?;
        let uploading = uploading_limit
            .as_ref()
            .map(|(project, limit)| (project.as_str(), *limit));
        match self
            .uploads
            .claim_upload(&image.id, &claim_token, image::now(), uploading, target)
            .await?
        {
            Claimed::Claimed => {}
            Claimed::Gone => return Err(DataError::DeletedDuringUpload(id.to_owned())),
            Claimed::Taken => {
                return Err(DataError::Conflict(format!(
                    "Image status transition from {0} to {0} is not allowed",
                    target.status()
                )))
            }
            Claimed::OverLimit { count } => {
                let (project, limit) = uploading.unwrap_or_default();
                return Err(DomainError::from(crate::quota::over_limit(
                    project,
                    &[(Resource::ImageCountUploading, limit, count, 1)],
                ))
                .into());
            }
        }
        // Glance's notices of an upload: the image saved as `saving`, then `image.prepare`.
        // (Staging: the image saved as `uploading`.)
        let backend = self.stores.multi().then_some(store_id.as_str());
        let saving = super::upload_notices::claimed(&self.images, ctx, &image, target, backend);
        // Dropped with this future: an abandoned upload stops counting too.
        let _receiving = crate::metrics::global().uploads_in_flight.enter();
        let mut claim = ClaimGuard {
            repo: self.uploads.clone(),
            image_id: Some(image.id.clone()),
            claim: claim_token.clone(),
        };
        match self
            .store_data(
                &image,
                &claim_token,
                &store,
                &options,
                request,
                &limits,
                &budget,
                target,
            )
            .await
        {
            Ok(received) => {
                claim.disarm();
                tracing::info!(image.id = %image.id, store.name = store.name(), bytes = received, "image data stored");
                super::upload_notices::stored(&self.images, ctx, &image.id, target).await;
                Ok(())
            }
            Err(e) => {
                claim.release().await;
                super::upload_notices::failed(&self.images, ctx, saving, target, &e);
                Err(e)
            }
        }
    }

    /// Streams, commits and records the data of a claimed image; returns the bytes stored.
    #[allow(
        clippy::too_many_arguments,
        reason = "one upload's settled facts, passed once"
    )]
    async fn store_data<S, E>(
        &self,
        image: &Image,
        claim: &str,
        store: &Arc<dyn Store>,
        options: &WriteOptions,
        request: UploadRequest<S>,
        limits: &Limits,
        budget: &ByteBudget,
        target: UploadTarget,
    ) -> Result<u64, DataError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        // A store that cannot hold the announced size says so here, before the body is read.
        let writer = self.open_writer(image, store, options).await?;
        let (writer, digests, inspection, received) = self
            .pump(
                image,
                target,
                &self.upload_beat(image, claim),
                writer,
                request.body,
                limits,
                budget,
            )
            .await?;
        if let Some(declared) = request.declared_size {
            if declared != received {
                writer.abort().await?;
                return Err(DataError::BadRequest(format!(
                    "Size of the uploaded data ({received} bytes) differs from the declared size ({declared} bytes)."
                )));
            }
        }
        // All the data is here: commit and record it in a task of its own, so that a client
        // hanging up now cannot leave committed data that no image points at.
        let service = self.clone();
        let (image, store, claim) = (image.clone(), store.clone(), claim.to_owned());
        tokio::spawn(async move {
            let stored = writer.commit().await?;
            let mut recorded = service
                .record_upload(target, &image, &claim, store.name(), &stored, &digests, &inspection, received)
                .await;
            for delay in RECORD_RETRIES {
                match &recorded {
                    Err(e) if outcome_unknown(e) => {
                        tracing::warn!(image.id = %image.id, error = %e, "recording the upload failed; retrying");
                        tokio::time::sleep(delay).await;
                        recorded = service
                            .record_upload(target, &image, &claim, store.name(), &stored, &digests, &inspection, received)
                            .await;
                    }
                    _ => break,
                }
            }
            match recorded {
                Ok(()) => {
                    // The data is recorded; an ACL that could not be set is set again by the
                    // image's next update.
                    if store.capabilities().caller_accounts {
                        let readers = access::readers_of(&service, &image).await;
                        if let Err(e) = match readers {
                            Ok(readers) => store.set_readers(&stored.location, &readers).await.map_err(DataError::from),
                            Err(e) => Err(e),
                        } {
                            tracing::warn!(image.id = %image.id, error = %e,
                                "cannot set who may read the image's data");
                        }
                    }
                    Ok(received)
                }
                // The database answered and the image does not point at the data: remove it.
                // Unless a newer upload of the image (this one's claim was reset) has recorded
                // the same location since: the data is then that upload's.
                Err(e @ (DataError::DeletedDuringUpload(_) | DataError::Conflict(_) | DataError::Internal(_))) => {
                    let uri = stored.location.uri();
                    let named = match service.uploads.locations(&image.id).await {
                        Ok(locations) => locations.iter().any(|l| l.url == uri),
                        Err(_) => true,
                    };
                    if named {
                        tracing::warn!(image.id = %image.id, location = %stored.location,
                            "a newer upload of the image recorded this location; its data stays");
                    } else if let Err(delete) = store.delete(&stored.location).await {
                        tracing::error!(image.id = %image.id, location = %stored.location, error = %delete,
                            "cannot remove the data of a failed upload");
                    }
                    Err(e)
                }
                // Still unknown (the database stays unreachable): the data stays, since it may
                // be recorded. If it is not, the next upload finds it orphaned and replaces it,
                // and the scrubber's sweep removes it once the image is deleted.
                Err(e) => {
                    tracing::error!(image.id = %image.id, location = %stored.location, error = %e,
                        "upload committed but not recorded; its data is left to the orphan sweep");
                    Err(e)
                }
            }
        }.instrument(tracing::Span::current()))
        .await
        .map_err(|e| DataError::Internal(format!("finishing the upload failed: {e}")))?
    }

    /// An upload's heartbeat: its claim on the image, touched.
    fn upload_beat(&self, image: &Image, claim: &str) -> Beat {
        let (repo, id, claim) = (self.uploads.clone(), image.id.clone(), claim.to_owned());
        Arc::new(move |_received| {
            let (repo, id, claim) = (repo.clone(), id.clone(), claim.clone());
            async move { repo.touch_upload(&id, &claim, image::now()).await }.boxed()
        })
    }

    /// A writer for the image's data. Data already under the image's name can only be the
    /// remains of an upload whose node stopped after committing and before recording it (the
    /// image is claimed, so no upload is running, and it has no location): it is removed.
    pub(super) async fn open_writer(
        &self,
        image: &Image,
        store: &Arc<dyn Store>,
        options: &WriteOptions,
    ) -> Result<OpenWriter, DataError> {
        let writer = match store.writer(image.id.as_str(), options).await {
            Err(StoreError::AlreadyExists(location)) => {
                let recorded = self.uploads.locations(&image.id).await?;
                if recorded.iter().any(|l| l.url == location) {
                    return Err(StoreError::AlreadyExists(location).into());
                }
                tracing::warn!(image.id = %image.id, %location, "removing orphaned data left by an interrupted upload");
                store.delete(&Location::parse(&location)?).await?;
                store.writer(image.id.as_str(), options).await?
            }
            other => other?,
        };
        Ok(OpenWriter::new(writer, store.name()))
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one upload's results, recorded together"
    )]
    async fn record_upload(
        &self,
        target: UploadTarget,
        image: &Image,
        claim: &str,
        store: &str,
        stored: &Stored,
        digests: &Digests,
        inspection: &Inspection,
        received: u64,
    ) -> Result<(), DataError> {
        if stored.size != received {
            return Err(DataError::Internal(format!(
                "store wrote {} bytes of {received}",
                stored.size
            )));
        }
        let size = i64::try_from(received).map_err(|_| DataError::SizeCapExceeded {
            cap: i64::MAX as u64,
        })?;
        if target == UploadTarget::Staging {
            return self.record_stage(image, claim, stored, digests, size).await;
        }
        let data = UploadedData {
            size,
            virtual_size: inspection.virtual_size.and_then(|v| i64::try_from(v).ok()),
            checksum: digests.md5.clone(),
            os_hash_algo: digests.algorithm.clone(),
            os_hash_value: digests.value.clone(),
            location: stored.location.uri(),
            // Multi-store Glance names the store in every location's metadata.
            metadata: if self.stores.multi() {
                serde_json::json!({ "store": store }).to_string()
            } else {
                "{}".to_owned()
            },
        };
        match self
            .uploads
            .finish_upload(&image.id, claim, &data, image::now())
            .await?
        {
            SaveOutcome::Saved => Ok(()),
            SaveOutcome::Gone => Err(DataError::DeletedDuringUpload(image.id.to_string())),
            SaveOutcome::StatusChanged | SaveOutcome::OverQuota { .. } => Err(DataError::Conflict(
                format!("Image {} changed status during the upload.", image.id),
            )),
        }
    }
}
