//! The pump every transfer into a store runs: body frames gathered into chunks of ~1 MiB
//! (counted against the memory budget), each shown to the inspector and both hash workers
//! and handed to the writer task; a heartbeat beside the body; the writer aborted on every
//! path that is not success.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};
use glint_store::{Chunk, StoreError};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;
use tracing::Instrument;

use super::budget::ByteBudget;
use super::digest::{Digester, Digests};
use super::error::DataError;
use super::inspect::{self, Inspection, Inspector};
use super::limits::Limits;
use super::upload::{BATCH_BYTES, BODY_IDLE, HEARTBEAT, WRITER_DEPTH};
use super::writer::OpenWriter;
use super::DataService;
use crate::domain::image::Image;
use crate::domain::UploadTarget;

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
    /// The inspector for `image`'s data on its way to `target`: staged data may be
    /// compressed (see `inspect::for_staging`).
    fn inspector(&self, image: &Image, target: UploadTarget) -> Box<dyn Inspector> {
        let (disk_format, container_format) = (
            image.disk_format.as_deref(),
            image.container_format.as_deref(),
        );
        match target {
            UploadTarget::Store => {
                inspect::for_image(disk_format, container_format, &self.config.inspection)
            }
            UploadTarget::Staging => inspect::for_staging(
                disk_format,
                container_format,
                &self.config.inspection,
                self.config.stage_compressed,
            ),
        }
    }

    /// Streams the body through the digests and the inspection for `target` into the
    /// writer. On success the writer is handed back for commit; on failure it has been
    /// aborted.
    #[expect(
        clippy::too_many_arguments,
        reason = "one transfer's settled facts, passed once"
    )]
    pub(super) async fn pump<S, E>(
        &self,
        image: &Image,
        target: UploadTarget,
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
        let mut inspector = self.inspector(image, target);
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
}
