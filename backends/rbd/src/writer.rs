//! Writing an image: a temporary image, written by a blocking thread fed through a queue of
//! two chunks, then resized to what was written (when the size was not announced),
//! snapshotted, protected, and renamed to the image id at `commit`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use glint_store::{Chunk, ImageWriter, StoreError, Stored, WriteOptions};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::store_error;
use crate::rados::{AioOp, Errno, Image, IoCtx};
use crate::{remove_image, RbdConfig, Shared, SNAPSHOT};

/// Temporary images are named `<image id>` followed by this and an attempt id.
const TEMPORARY: &str = ".glint-";
/// The image metadata key a live writer stamps (seconds since the epoch).
const HEARTBEAT_KEY: &str = "glint.heartbeat";
/// How often a live writer stamps its temporary image, data or not.
const HEARTBEAT: Duration = Duration::from_secs(60);
/// Chunks queued for the writing thread.
const QUEUE: usize = 2;
/// The largest write: a whole object, at most 4 MiB.
const MAX_WRITE: u64 = 4 << 20;
/// Writes in flight at once: librbd sends them to the OSDs while the next is gathered, so
/// the upload is not held up by each write's round trip.
const IN_FLIGHT: usize = 3;
/// An image of unknown size grows by steps that double from the object size up to this.
const MAX_GROWTH: u64 = 8 << 30;

fn write_size(config: &RbdConfig) -> u64 {
    (1u64 << config.order()).min(MAX_WRITE)
}

/// Image bytes a writer holds: the writes in flight, the one being gathered, and the queued
/// chunks (~1 MiB each).
pub(crate) fn buffer(config: &RbdConfig) -> u64 {
    write_size(config) * (IN_FLIGHT as u64 + 1) + ((QUEUE as u64 + 1) << 20)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

enum Command {
    Data(Chunk),
    Commit(oneshot::Sender<Result<u64, StoreError>>),
}

pub(crate) struct RbdWriter {
    shared: Arc<Shared>,
    image_id: String,
    fsid: String,
    feed: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<Result<(), StoreError>>>,
}

impl RbdWriter {
    pub(crate) async fn start(
        shared: Arc<Shared>,
        image_id: &str,
        options: &WriteOptions,
    ) -> Result<RbdWriter, StoreError> {
        let connection = shared.connection().await?;
        let (feed, commands) = mpsc::channel(QUEUE);
        let temporary = format!(
            "{image_id}{TEMPORARY}{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let job = Job {
            store: shared.config.name.clone(),
            id: image_id.to_owned(),
            temporary,
            announced: options.size,
            write_size: write_size(&shared.config),
            order: shared.config.order(),
            thin: shared.config.thin_provisioning,
            growth: 1 << shared.config.order(),
            location: shared.location(&connection.fsid, image_id)?.uri(),
        };
        let io = crate::ioctx(&shared.config.name, &connection, &shared.config.pool)?;
        // The image is created (and an existing one refused) before the writer is handed out.
        let (ready, started) = oneshot::channel();
        let runtime = tokio::runtime::Handle::current();
        let thread = tokio::task::spawn_blocking(move || job.run(&io, &runtime, commands, ready));
        match started.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.await;
                return Err(e);
            }
            Err(_) => {
                let outcome = thread.await.map_err(|e| shared.joined(e))?;
                return Err(outcome.err().unwrap_or_else(|| StoreError::Backend {
                    store: shared.config.name.clone(),
                    source: "the writing thread ended before it started".into(),
                }));
            }
        }
        Ok(RbdWriter {
            shared,
            image_id: image_id.to_owned(),
            fsid: connection.fsid,
            feed: Some(feed),
            thread: Some(thread),
        })
    }

    /// The thread's own error, once it has stopped taking data.
    async fn failure(&mut self) -> StoreError {
        let outcome = match self.thread.take() {
            Some(thread) => thread.await.map_err(|e| self.shared.joined(e)),
            None => Ok(Ok(())),
        };
        match outcome {
            Ok(Err(e)) | Err(e) => e,
            Ok(Ok(())) => StoreError::Backend {
                store: self.shared.config.name.clone(),
                source: "the writing thread stopped".into(),
            },
        }
    }
}

#[async_trait]
impl ImageWriter for RbdWriter {
    async fn write(&mut self, chunk: Chunk) -> Result<(), StoreError> {
        let Some(feed) = &self.feed else {
            return Err(self.failure().await);
        };
        if feed.send(Command::Data(chunk)).await.is_err() {
            return Err(self.failure().await);
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<Stored, StoreError> {
        let (reply, answer) = oneshot::channel();
        let sent = match &self.feed {
            Some(feed) => feed.send(Command::Commit(reply)).await.is_ok(),
            None => false,
        };
        if !sent {
            return Err(self.failure().await);
        }
        let size = match answer.await {
            Ok(Ok(size)) => size,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(self.failure().await),
        };
        if let Some(thread) = self.thread.take() {
            let _ = thread.await;
        }
        Ok(Stored {
            location: self.shared.location(&self.fsid, &self.image_id)?,
            size,
        })
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        // A closed queue without `Commit` makes the thread remove its temporary image.
        self.feed = None;
        if let Some(thread) = self.thread.take() {
            thread.await.map_err(|e| self.shared.joined(e))??;
        }
        Ok(())
    }
}

/// What the writing thread needs.
struct Job {
    store: String,
    id: String,
    temporary: String,
    announced: Option<u64>,
    write_size: u64,
    order: u64,
    thin: bool,
    /// The next growth step of an image of unknown size (doubling).
    growth: u64,
    /// For messages.
    location: String,
}

/// The image being written.
struct Progress {
    /// Writes in flight, oldest first; dropped (waited for) before the image is closed.
    in_flight: std::collections::VecDeque<AioOp>,
    image: Image,
    /// Bytes received (the next write's offset once `pending` is written).
    offset: u64,
    /// The image's current size.
    size: u64,
    /// Bytes gathered for the next write, at `offset - pending.len()`.
    pending: Vec<u8>,
    /// Buffers of finished writes, used again: one upload allocates a handful, not one per
    /// write (allocations this large, freed on other threads, would grow the process).
    spare: Vec<Vec<u8>>,
    stamped: Instant,
}

impl Job {
    fn error(&self, errno: Errno) -> StoreError {
        store_error(&self.store, &self.location, errno)
    }

    fn run(
        mut self,
        io: &Arc<IoCtx>,
        runtime: &tokio::runtime::Handle,
        mut commands: mpsc::Receiver<Command>,
        ready: oneshot::Sender<Result<(), StoreError>>,
    ) -> Result<(), StoreError> {
        let mut progress = match self.create(io) {
            Ok(progress) => {
                let _ = ready.send(Ok(()));
                progress
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return Ok(());
            }
        };
        loop {
            let next = runtime.block_on(tokio::time::timeout(HEARTBEAT, commands.recv()));
            let step = match next {
                Err(_) => self.stamp(&mut progress),
                Ok(Some(Command::Data(chunk))) => self
                    .take(&mut progress, &chunk)
                    .and_then(|()| self.stamp_if_due(&mut progress)),
                Ok(Some(Command::Commit(reply))) => {
                    let result = self.finish(io, progress);
                    if result.is_err() {
                        if let Err(cleanup) = self.discard(io) {
                            tracing::warn!(store.name = %self.store, error = %cleanup,
                                "cannot remove a failed upload's image; the sweep will");
                        }
                    }
                    let _ = reply.send(result);
                    return Ok(());
                }
                // The writer was aborted or dropped.
                Ok(None) => {
                    drop(progress);
                    return self.discard(io);
                }
            };
            if let Err(e) = step {
                drop(progress);
                if let Err(cleanup) = self.discard(io) {
                    tracing::warn!(store.name = %self.store, error = %cleanup,
                        "cannot remove a failed upload's image; the sweep will");
                }
                return Err(e);
            }
        }
    }

    /// Refuses data already there, then creates and opens the temporary image.
    fn create(&self, io: &Arc<IoCtx>) -> Result<Progress, StoreError> {
        match io.open(&self.id, None, true) {
            Ok(_) => return Err(StoreError::AlreadyExists(self.location.clone())),
            Err(Errno(libc::ENOENT)) => {}
            Err(e) => return Err(self.error(e)),
        }
        let size = self.announced.unwrap_or(0);
        io.create(&self.temporary, size, self.order)
            .map_err(|e| self.error(e))?;
        let image = match io.open(&self.temporary, None, false) {
            Ok(image) => image,
            Err(e) => {
                let _ = io.remove(&self.temporary);
                return Err(self.error(e));
            }
        };
        let mut progress = Progress {
            in_flight: std::collections::VecDeque::new(),
            image,
            offset: 0,
            size,
            pending: Vec::with_capacity(self.write_size as usize),
            spare: Vec::new(),
            stamped: Instant::now(),
        };
        if let Err(e) = self.stamp(&mut progress) {
            drop(progress);
            let _ = io.remove(&self.temporary);
            return Err(e);
        }
        Ok(progress)
    }

    fn stamp(&self, progress: &mut Progress) -> Result<(), StoreError> {
        progress
            .image
            .metadata_set(HEARTBEAT_KEY, &now_secs().to_string())
            .map_err(|e| self.error(e))?;
        progress.stamped = Instant::now();
        Ok(())
    }

    fn stamp_if_due(&self, progress: &mut Progress) -> Result<(), StoreError> {
        if progress.stamped.elapsed() >= HEARTBEAT {
            self.stamp(progress)?;
        }
        Ok(())
    }

    /// Gathers `chunk` into writes of `write_size`, aligned to it.
    fn take(&mut self, progress: &mut Progress, chunk: &Chunk) -> Result<(), StoreError> {
        let received = progress.offset + chunk.len() as u64;
        if self.announced.is_some_and(|size| received > size) {
            return Err(StoreError::Backend {
                store: self.store.clone(),
                source: "more data than the announced size".into(),
            });
        }
        for frame in chunk.frames() {
            let mut rest: &[u8] = frame;
            while !rest.is_empty() {
                let room = (self.write_size as usize) - progress.pending.len();
                let take = room.min(rest.len());
                progress.pending.extend_from_slice(&rest[..take]);
                progress.offset += take as u64;
                rest = &rest[take..];
                if progress.pending.len() as u64 == self.write_size {
                    self.flush_pending(progress)?;
                }
            }
        }
        Ok(())
    }

    fn flush_pending(&mut self, progress: &mut Progress) -> Result<(), StoreError> {
        if progress.pending.is_empty() {
            return Ok(());
        }
        let at = progress.offset - progress.pending.len() as u64;
        let end = progress.offset;
        if end > progress.size {
            // Unknown size: grow by a doubling step, once per write at most, the writes in
            // flight done first.
            self.drain(progress)?;
            let mut size = progress.size;
            while size < end {
                self.growth = (self.growth * 2).min(MAX_GROWTH);
                size += self.growth;
            }
            progress.image.resize(size).map_err(|e| self.error(e))?;
            progress.size = size;
        }
        // A new or grown image reads as zeros where nothing was written.
        if self.thin && progress.pending.iter().all(|b| *b == 0) {
            progress.pending.clear();
            return Ok(());
        }
        let next = match progress.spare.pop() {
            Some(mut buffer) => {
                buffer.clear();
                buffer
            }
            None => Vec::with_capacity(self.write_size as usize),
        };
        let data = std::mem::replace(&mut progress.pending, next);
        let write = progress
            .image
            .write_async(at, data)
            .map_err(|e| self.error(e))?;
        progress.in_flight.push_back(write);
        while progress.in_flight.len() > IN_FLIGHT {
            if let Some(oldest) = progress.in_flight.pop_front() {
                let buffer = oldest.wait_written().map_err(|e| self.error(e))?;
                progress.spare.push(buffer);
            }
        }
        Ok(())
    }

    /// Waits for every write in flight.
    fn drain(&self, progress: &mut Progress) -> Result<(), StoreError> {
        while let Some(write) = progress.in_flight.pop_front() {
            let buffer = write.wait_written().map_err(|e| self.error(e))?;
            progress.spare.push(buffer);
        }
        Ok(())
    }

    /// Writes what is left, sizes the image to the data, snapshots and protects it, and
    /// renames it to the image id (never over an existing image).
    fn finish(&mut self, io: &Arc<IoCtx>, mut progress: Progress) -> Result<u64, StoreError> {
        self.flush_pending(&mut progress)?;
        self.drain(&mut progress)?;
        let written = progress.offset;
        if let Some(size) = self.announced {
            if written != size {
                return Err(StoreError::Backend {
                    store: self.store.clone(),
                    source: format!("{written} bytes written of {size} announced").into(),
                });
            }
        } else if progress.size != written {
            progress.image.resize(written).map_err(|e| self.error(e))?;
        }
        let image = &progress.image;
        image.flush().map_err(|e| self.error(e))?;
        image.snap_create(SNAPSHOT).map_err(|e| self.error(e))?;
        image.snap_protect(SNAPSHOT).map_err(|e| self.error(e))?;
        drop(progress);
        match io.rename(&self.temporary, &self.id) {
            Ok(()) => Ok(written),
            Err(Errno(libc::EEXIST)) => Err(StoreError::AlreadyExists(self.location.clone())),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Removes the temporary image (its snapshot too, if `finish` got that far). A sweep
    /// looking at it at that moment holds it open for an instant (busy): try again shortly.
    fn discard(&self, io: &Arc<IoCtx>) -> Result<(), StoreError> {
        let mut tries = 0;
        loop {
            let removed = remove_image(
                &self.store,
                io,
                &self.temporary,
                Some(SNAPSHOT),
                &self.location,
            );
            match removed {
                Ok(()) | Err(StoreError::NotFound(_)) => return Ok(()),
                Err(StoreError::InUse { .. }) if tries < 20 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Removes the temporary images whose writer has not stamped them for `older_than`. Returns
/// how many.
pub(crate) fn sweep(
    store: &str,
    io: &Arc<IoCtx>,
    older_than: Duration,
) -> Result<usize, StoreError> {
    let cutoff = now_secs().saturating_sub(older_than.as_secs());
    let error = |what: &str, errno| store_error(store, what, errno);
    let mut removed = 0;
    for name in io.list().map_err(|e| error("the pool", e))? {
        let Some((id, _attempt)) = name.split_once(TEMPORARY) else {
            continue;
        };
        if !glint_store::is_image_id(id) {
            continue;
        }
        // An image its writer is removing right now may vanish or be busy under the sweep.
        let gone = |errno: Errno| matches!(errno.0, libc::ENOENT | libc::ESTALE | libc::EBUSY);
        let stamped = match io.open(&name, None, true).and_then(|image| {
            Ok(image
                .metadata_get(HEARTBEAT_KEY)?
                .and_then(|v| v.parse::<u64>().ok())
                .or_else(|| image.created().ok().and_then(|t| u64::try_from(t).ok()))
                .unwrap_or(0))
        }) {
            Ok(stamped) => stamped,
            Err(e) if gone(e) => continue,
            Err(e) => return Err(error(&name, e)),
        };
        // A stamp in this very second counts as live only when the sweep spares any age.
        if stamped > cutoff || (stamped == cutoff && !older_than.is_zero()) {
            continue;
        }
        // Open elsewhere: a writer that stopped stamping may be closing it right now (an
        // abort in progress); give it a moment before leaving it to the next sweep.
        let mut tries = 0;
        loop {
            match remove_image(store, io, &name, Some(SNAPSHOT), &name) {
                Ok(()) => removed += 1,
                Err(StoreError::InUse { .. }) if tries < 20 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                // Gone meanwhile (its writer removed it), or still open (alive after all).
                Err(StoreError::NotFound(_) | StoreError::InUse { .. }) => {}
                Err(StoreError::Backend { .. }) if io.open(&name, None, true).is_err() => {}
                Err(e) => return Err(e),
            }
            break;
        }
    }
    Ok(removed)
}
