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

use tokio::time::Instant;
use tracing::Instrument;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, Stream, StreamExt};
use std::sync::Arc;

use glint_store::{Chunk, Location, Store, StoreError, Stored, WriteOptions};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::access;
use super::budget::ByteBudget;
use super::claim::ClaimGuard;
use super::digest::{Digester, Digests};
use super::error::DataError;
use super::inspect::{self, Inspection, Inspector};
use super::limits::Limits;
use super::writer::OpenWriter;
use super::DataService;
use crate::domain::image::{self, Image};
use crate::domain::policy::Action;
use crate::domain::repository::Claimed;
use crate::domain::tasks::{props, StagedData};
use crate::domain::{
    data_rules, DomainError, RequestContext, SaveOutcome, UploadTarget, UploadedData,
};
use crate::quota::Resource;

/// Frames are gathered into chunks of about this size before they are shared out.
const BATCH_BYTES: usize = 1 << 20;
/// Chunks the writer may fall behind by.
const WRITER_DEPTH: usize = 4;
/// What an upload's own pipeline (the batch being gathered, the chunks queued for the hashers
/// and the writer) needs to flow, reserved next to a buffering writer's share.
pub(super) const PIPELINE_BYTES: u64 = 4 * BATCH_BYTES as u64;
/// How often a running upload tells the database it is alive.
const HEARTBEAT: Duration = Duration::from_secs(30);
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

/// Frames gathered into the next chunk, with the budget permits that cover them.
#[derive(Default)]
struct Batch {
    frames: Vec<Bytes>,
    len: usize,
    permit: Option<OwnedSemaphorePermit>,
}

impl Batch {
    fn push(&mut self, frame: Bytes, permit: OwnedSemaphorePermit) {
        match self.permit.as_mut() {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        self.len += frame.len();
        self.frames.push(frame);
    }

    /// The gathered frames as a chunk holding their permits; `None` when empty.
    fn take(&mut self) -> Option<Chunk> {
        let batch = std::mem::take(self);
        (!batch.frames.is_empty()).then(|| {
            let guard: Option<Box<dyn std::any::Any + Send + Sync>> =
                batch.permit.map(|p| Box::new(p) as _);
            Chunk::with_guard(batch.frames, guard)
        })
    }
}

enum WriterMessage {
    Data(Chunk),
    Finish,
}

/// Why the writer task stopped without finishing.
enum WriterStop {
    Failed(StoreError),
    /// The pipeline went away without `Finish`: the upload failed elsewhere or was cancelled.
    Cancelled,
}

/// Feeds the store. Aborts the writer itself unless told to finish, so that no path —
/// including cancellation — leaves partial data behind.
async fn write_loop(
    mut writer: OpenWriter,
    mut messages: mpsc::Receiver<WriterMessage>,
) -> Result<OpenWriter, WriterStop> {
    while let Some(message) = messages.recv().await {
        match message {
            WriterMessage::Data(chunk) => {
                if let Err(e) = writer.write(chunk).await {
                    if let Err(abort) = writer.abort().await {
                        tracing::warn!(error = %abort, "aborting a failed store write failed");
                    }
                    return Err(WriterStop::Failed(e));
                }
            }
            WriterMessage::Finish => return Ok(writer),
        }
    }
    if let Err(e) = writer.abort().await {
        tracing::warn!(error = %e, "aborting an abandoned upload failed");
    }
    Err(WriterStop::Cancelled)
}

/// A running transfer's heartbeat, given the bytes received so far: false once the transfer
/// has lost its claim (its image deleted, its job taken over).
pub type Beat =
    Arc<dyn Fn(u64) -> BoxFuture<'static, Result<bool, crate::domain::RepoError>> + Send + Sync>;

/// The outcome of a heartbeat running beside the body; pending when none runs.
async fn finish_touch(
    touching: &mut Option<tokio::task::JoinHandle<Result<bool, crate::domain::RepoError>>>,
) -> Result<bool, DataError> {
    let Some(task) = touching.as_mut() else {
        return std::future::pending().await;
    };
    let outcome = task.await;
    *touching = None;
    match outcome {
        Ok(touched) => Ok(touched?),
        Err(e) => Err(DataError::Internal(format!("upload heartbeat failed: {e}"))),
    }
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

    /// `PUT /v2/images/{id}/stage`: the image's data, into the staging store for an import.
    pub async fn stage<S, E>(
        &self,
        ctx: &RequestContext,
        id: &str,
        request: UploadRequest<S>,
    ) -> Result<(), DataError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        self.receive(ctx, id, request, UploadTarget::Staging).await
    }

    async fn receive<S, E>(
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
                Ok(())
            }
            Err(e) => {
                claim.release().await;
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

    /// Streams the body through the digests into the writer. On success the writer is handed
    /// back for commit; on failure it has been aborted.
    pub(super) async fn pump<S, E>(
        &self,
        image: &Image,
        beat: &Beat,
        writer: OpenWriter,
        mut body: S,
        limits: &Limits,
        budget: &ByteBudget,
    ) -> Result<(OpenWriter, Digests, Inspection, u64), DataError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        let digester = Digester::start(&self.config.hashing_algorithm)?;
        let mut inspector = inspect::for_image(
            image.disk_format.as_deref(),
            image.container_format.as_deref(),
            &self.config.inspection,
        );
        let (to_writer, from_pump) = mpsc::channel(WRITER_DEPTH);
        let write_task =
            tokio::spawn(write_loop(writer, from_pump).instrument(tracing::Span::current()));
        let mut received = 0u64;
        // The heartbeat runs on a timer, not per frame, so a slow client keeps its claim; a
        // client that sends nothing for `BODY_IDLE` loses it.
        let mut heartbeat = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
        let mut touching: Option<tokio::task::JoinHandle<Result<bool, crate::domain::RepoError>>> =
            None;
        let mut idle_deadline = Instant::now() + BODY_IDLE;
        let streamed: Result<(), DataError> = async {
            // Every frame is counted against the byte budget as it arrives, so no upload holds
            // memory the budget does not know about.
            let mut batch = Batch::default();
            loop {
                let frame = tokio::select! {
                    next = body.next() => match next {
                        Some(Ok(frame)) => frame,
                        Some(Err(e)) => return Err(DataError::ClientGone(e.to_string())),
                        None => break,
                    },
                    // The database write runs beside the body, so its time never counts as
                    // the client's (the serving loop holds clients to a minimum rate).
                    _ = heartbeat.tick(), if touching.is_none() => {
                        touching = Some(tokio::spawn(beat(received)));
                        continue;
                    }
                    touched = finish_touch(&mut touching), if touching.is_some() => {
                        if !touched? {
                            return Err(DataError::DeletedDuringUpload(image.id.to_string()));
                        }
                        continue;
                    }
                    _ = tokio::time::sleep_until(idle_deadline) => {
                        return Err(DataError::ClientGone(format!(
                            "no image data received for {} seconds",
                            BODY_IDLE.as_secs()
                        )));
                    }
                };
                idle_deadline = Instant::now() + BODY_IDLE;
                received += frame.len() as u64;
                limits.check(received)?;
                let permit = match budget.try_acquire(frame.len()) {
                    Some(permit) => permit,
                    None => {
                        // The budget is spent: pass on what this upload holds before waiting,
                        // so uploads never wait on each other's half-filled batches.
                        if let Some(chunk) = batch.take() {
                            self.send_chunk(chunk, &digester, inspector.as_mut(), &to_writer)
                                .await?;
                        }
                        budget.acquire(frame.len()).await?
                    }
                };
                batch.push(frame, permit);
                if batch.len >= BATCH_BYTES {
                    if let Some(chunk) = batch.take() {
                        self.send_chunk(chunk, &digester, inspector.as_mut(), &to_writer)
                            .await?;
                    }
                }
            }
            if let Some(chunk) = batch.take() {
                self.send_chunk(chunk, &digester, inspector.as_mut(), &to_writer)
                    .await?;
            }
            Ok(())
        }
        .await;

        let finished = streamed.is_ok() && to_writer.send(WriterMessage::Finish).await.is_ok();
        drop(to_writer);
        let written = write_task
            .await
            .map_err(|e| DataError::Internal(format!("store writer task failed: {e}")))?;
        match (streamed, written) {
            (Ok(()), Ok(writer)) if finished => {
                // Refused only now (a format decided by its end): the writer is aborted before
                // the refusal is answered, so that nothing of the data is left when it is.
                let judged = match inspector.finish(received) {
                    Ok(inspection) => digester.finish().await.map(|d| (d, inspection)),
                    Err(e) => Err(e),
                };
                match judged {
                    Ok((digests, inspection)) => Ok((writer, digests, inspection, received)),
                    Err(e) => {
                        if let Err(abort) = writer.abort().await {
                            tracing::warn!(error = %abort, "aborting a refused upload failed");
                        }
                        Err(e)
                    }
                }
            }
            // A store failure explains a stalled pipeline better than the pipeline's own error.
            (_, Err(WriterStop::Failed(e))) => Err(e.into()),
            (Err(e), _) => Err(e),
            (Ok(()), _) => Err(DataError::Internal(
                "the store writer stopped early".to_owned(),
            )),
        }
    }

    /// Hands a chunk to the inspector, both hash workers and the writer. The chunk holds its
    /// budget permit until every consumer is done with it.
    async fn send_chunk(
        &self,
        chunk: Chunk,
        digester: &Digester,
        inspector: &mut dyn Inspector,
        to_writer: &mpsc::Sender<WriterMessage>,
    ) -> Result<(), DataError> {
        inspector.inspect(&chunk)?;
        digester.feed(&chunk).await?;
        // A closed channel means the writer failed; `pump` reports its error.
        to_writer
            .send(WriterMessage::Data(chunk))
            .await
            .map_err(|_| DataError::Internal("the store writer stopped".to_owned()))
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

impl DataService {
    /// Records staged data: the image keeps `uploading`, now with the staged size (as Glance:
    /// no checksum yet; the import computes the image's digests as it writes each store), and
    /// `os_glance_stage_host` names this node where it has a URL.
    async fn record_stage(
        &self,
        image: &Image,
        claim: &str,
        stored: &Stored,
        digests: &Digests,
        size: i64,
    ) -> Result<(), DataError> {
        let staged = StagedData {
            image_id: image.id.to_string(),
            location: stored.location.uri(),
            size,
            checksum: Some(digests.md5.clone()),
            os_hash_value: Some(digests.value.clone()),
            node: (!self.stores.staging_shared()).then(|| self.node_id.to_string()),
            created_at: image::now(),
        };
        let set: Vec<(String, String)> = self
            .config
            .stage_host
            .iter()
            .map(|host| (props::STAGE_HOST.to_owned(), host.clone()))
            .collect();
        if self
            .uploads
            .record_staged(claim, &staged, &set, image::now())
            .await?
        {
            Ok(())
        } else {
            let still_there = self
                .images
                .get_for(&Self::operator(), image.id.as_str(), Action::GetImage)
                .await
                .is_ok();
            Err(if still_there {
                DataError::Conflict(format!(
                    "Image {} changed status during the upload.",
                    image.id
                ))
            } else {
                DataError::DeletedDuringUpload(image.id.to_string())
            })
        }
    }
}
