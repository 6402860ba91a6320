//! One fill of the cache: the data of an image read once from its store into
//! `incomplete/<id>`, hashed as it is written, while any number of downloads read the same
//! file behind the writer (single flight: concurrent first downloads of an image cost one
//! backend read).
//!
//! Readers are told how far the file is written through a `watch` channel. They never
//! receive the last byte before the fill has checked the size and both digests against the
//! image's, so a transfer of bad data is cut short, never delivered as complete. A reader
//! that goes away leaves the fill running: the image still ends up cached.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{stream, StreamExt};
use glint_store::{ByteRange, ByteStream, Chunk};
use openssl::hash::{Hasher, MessageDigest};

use crate::datapath::digest::{to_hex, Digester};
use tokio::sync::watch;

/// Bytes a reader takes from the file per step.
const READ_BLOCK: u64 = 1 << 20;
/// Bytes of the store's blocks gathered before they are written and hashed.
const WRITE_BATCH: u64 = 1 << 20;

/// What the data must be.
#[derive(Debug, Clone)]
pub struct Expected {
    pub size: u64,
    /// md5, hex (`checksum`).
    pub md5: Option<String>,
    /// `os_hash_algo` and `os_hash_value`.
    pub multihash: Option<(String, String)>,
}

/// How far a fill is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Bytes written to the file so far.
    Writing(u64),
    /// Every byte written and checked: readers may finish.
    Verified,
    /// The file is in place and recorded (or could not be: it is gone).
    Finished { cached: bool },
    /// The data could not be read or was not the image's: readers are cut.
    Failed(Arc<str>),
}

#[derive(Debug)]
pub struct Fill {
    pub image_id: String,
    pub expected: Expected,
    pub(super) path: PathBuf,
    /// The file being written, shared by the readers (positional reads need no cursor).
    pub(super) file: Arc<File>,
    pub(super) progress: watch::Sender<Progress>,
    /// Set when the image is deleted or deactivated meanwhile: the data is not kept.
    pub(super) cancelled: AtomicBool,
}

impl Fill {
    pub(super) fn new(image_id: String, expected: Expected, path: PathBuf) -> io::Result<Fill> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        Ok(Fill {
            image_id,
            expected,
            path,
            file: Arc::new(file),
            progress: watch::channel(Progress::Writing(0)).0,
            cancelled: AtomicBool::new(false),
        })
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Waits for the fill's end: whether the data is now cached.
    pub async fn finished(&self) -> Result<bool, String> {
        let mut progress = self.progress.subscribe();
        loop {
            match &*progress.borrow_and_update() {
                Progress::Finished { cached } => return Ok(*cached),
                Progress::Failed(why) => return Err(why.to_string()),
                _ => {}
            }
            if progress.changed().await.is_err() {
                return Err("the fill stopped".to_owned());
            }
        }
    }

    /// Writes `source` into the file and checks it (size, md5, multihash); the error to
    /// report. The store's blocks are gathered into ~1 MiB batches; each batch is hashed
    /// (md5 and the multihash side by side, `datapath::digest`) while it is written, and the
    /// next batch is read from the store while the previous one is written.
    pub(super) async fn write_all(&self, mut source: ByteStream) -> Result<(), String> {
        // The data path's digester: each batch hashed on the blocking pool by two workers, no
        // thread held while they wait. An image without a multihash still gets one computed
        // (sha512), which nothing checks.
        let algorithm = self
            .expected
            .multihash
            .as_ref()
            .map_or("sha512", |(algorithm, _)| algorithm.as_str());
        let digester = Digester::start(algorithm).map_err(|e| e.to_string())?;
        let mut batch: Vec<Bytes> = Vec::new();
        let mut batch_len = 0u64;
        let mut received = 0u64;
        let mut written = 0u64;
        let mut writing: Option<tokio::task::JoinHandle<io::Result<u64>>> = None;
        // A stream is not polled again once it has ended.
        let mut ended = false;
        loop {
            if !ended {
                match source.next().await {
                    Some(block) => {
                        let block = block.map_err(|e| format!("reading the store failed: {e}"))?;
                        received += block.len() as u64;
                        if received > self.expected.size {
                            return Err("the store returned more data than recorded".to_owned());
                        }
                        batch_len += block.len() as u64;
                        batch.push(block);
                        if batch_len < WRITE_BATCH {
                            continue;
                        }
                    }
                    None => ended = true,
                }
            }
            let done = ended && batch.is_empty();
            if !done {
                digester
                    .feed(&Chunk::new(batch.clone()))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            // One write in flight: the previous batch's ends before the next starts.
            if let Some(previous) = writing.take() {
                written += previous
                    .await
                    .map_err(|e| format!("cache writer failed: {e}"))?
                    .map_err(|e| format!("writing the cache file failed: {e}"))?;
                self.progress.send_replace(Progress::Writing(written));
            }
            if done {
                break;
            }
            let file = self.file.clone();
            let offset = received - batch_len;
            let blocks = std::mem::take(&mut batch);
            batch_len = 0;
            writing = Some(tokio::task::spawn_blocking(move || {
                let mut position = offset;
                for block in &blocks {
                    file.write_all_at(block, position)?;
                    position += block.len() as u64;
                }
                Ok(position - offset)
            }));
        }
        if written != self.expected.size {
            return Err(format!(
                "the store returned {written} bytes, {} recorded",
                self.expected.size
            ));
        }
        let digests = digester.finish().await.map_err(|e| e.to_string())?;
        check_digests(&self.expected, &digests.md5, &digests.value)
    }

    /// Makes the written data durable (before the file is committed).
    pub(super) async fn sync(&self) -> Result<(), String> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|e| format!("cache writer failed: {e}"))?
            .map_err(|e| format!("writing the cache file failed: {e}"))
    }

    /// The bytes of `range`, read from the file as the fill writes it.
    pub fn reader(self: &Arc<Self>, range: ByteRange) -> ByteStream {
        let state = Reading {
            fill: self.clone(),
            progress: self.progress.subscribe(),
            position: range.start,
            end: range.end,
        };
        Box::pin(stream::unfold(Some(state), |state| async move {
            let mut state = state?;
            match state.next_block().await {
                Ok(Some(block)) => Some((Ok(block), Some(state))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        }))
    }
}

struct Reading {
    fill: Arc<Fill>,
    progress: watch::Receiver<Progress>,
    position: u64,
    end: u64,
}

impl Reading {
    async fn next_block(&mut self) -> io::Result<Option<Bytes>> {
        if self.position >= self.end {
            return Ok(None);
        }
        let size = self.fill.expected.size;
        let available = loop {
            let available = match &*self.progress.borrow_and_update() {
                // The last byte waits for the digests.
                Progress::Writing(n) => (*n).min(size.saturating_sub(1)),
                Progress::Verified | Progress::Finished { .. } => size,
                Progress::Failed(why) => {
                    return Err(io::Error::other(format!("caching the image failed: {why}")))
                }
            };
            if available > self.position {
                break available;
            }
            if self.progress.changed().await.is_err() {
                return Err(io::Error::other("the cache fill stopped"));
            }
        };
        let want = (available.min(self.end) - self.position).min(READ_BLOCK);
        let file = self.fill.file.clone();
        let position = self.position;
        let block = tokio::task::spawn_blocking(move || read_at(&file, position, want))
            .await
            .map_err(io::Error::other)??;
        self.position += want;
        Ok(Some(block))
    }
}

/// Exactly `len` bytes of `file` at `offset`.
pub(super) fn read_at(file: &File, offset: u64, len: u64) -> io::Result<Bytes> {
    let len = usize::try_from(len).map_err(io::Error::other)?;
    let mut buffer = BytesMut::zeroed(len);
    file.read_exact_at(&mut buffer, offset)?;
    Ok(buffer.freeze())
}

/// md5 and the image's multihash, computed as data passes.
pub(super) struct Hashing {
    md5: Hasher,
    multihash: Option<Hasher>,
}

impl Hashing {
    pub(super) fn new(expected: &Expected) -> Result<Hashing, String> {
        let md5 = Hasher::new(MessageDigest::md5()).map_err(|e| e.to_string())?;
        let multihash = match &expected.multihash {
            Some((algorithm, _)) => {
                let digest = MessageDigest::from_name(algorithm)
                    .ok_or_else(|| format!("unknown os_hash_algo {algorithm}"))?;
                Some(Hasher::new(digest).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        Ok(Hashing { md5, multihash })
    }

    pub(super) fn update(&mut self, data: &[u8]) -> Result<(), String> {
        self.md5.update(data).map_err(|e| e.to_string())?;
        if let Some(h) = self.multihash.as_mut() {
            h.update(data).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Whether the digests are the image's; the error says which is not.
    pub(super) fn check(mut self, expected: &Expected) -> Result<(), String> {
        let md5 = to_hex(&self.md5.finish().map_err(|e| e.to_string())?);
        let multihash = match self.multihash.as_mut() {
            Some(h) => to_hex(&h.finish().map_err(|e| e.to_string())?),
            None => String::new(),
        };
        check_digests(expected, &md5, &multihash)
    }
}

/// Whether `md5` and `multihash` (hex) are the image's; the error says which is not.
fn check_digests(expected: &Expected, md5: &str, multihash: &str) -> Result<(), String> {
    if let Some(want) = &expected.md5 {
        if !want.eq_ignore_ascii_case(md5) {
            return Err(format!("checksum mismatch (expected {want}, read {md5})"));
        }
    }
    if let Some((algorithm, want)) = &expected.multihash {
        if !want.eq_ignore_ascii_case(multihash) {
            return Err(format!("{algorithm} mismatch"));
        }
    }
    Ok(())
}
