//! The store driver interface: how Glint moves image bytes into and out of a backend.
//!
//! A driver moves bytes and nothing else. Hashing, size limits, quotas, image status and the
//! cleanup policy live once in Glint's data path, which drives a writer through
//! `write* → commit | abort`: nothing a writer wrote is visible under a location until
//! `commit` succeeds, and `abort` (or dropping the writer) removes every byte written.

mod chunk;
mod error;
mod location;

use std::fmt::Debug;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;

pub use chunk::Chunk;
pub use error::StoreError;
pub use location::Location;

/// What a store can do; the data path and the tests are selected by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// No writes: `writer` always fails (Glance's http store).
    pub read_only: bool,
    /// Byte ranges can be read without reading from the start.
    pub ranged_read: bool,
    /// Runs of zeros are stored as holes rather than written.
    pub thin_provisioning: bool,
}

/// A byte range `[start, end)` of an image's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// The result of a committed write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub location: Location,
    /// Bytes written, as the store counted them.
    pub size: u64,
}

/// How image data comes back from a store.
pub enum ImageReader {
    /// A local file and the byte range to serve from it; lets the server use the cheapest
    /// copy path the kernel offers.
    File {
        file: std::fs::File,
        range: ByteRange,
    },
    /// Any other store: a stream of the requested bytes.
    Stream(Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>),
}

impl Debug for ImageReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageReader::File { range, .. } => {
                f.debug_struct("File").field("range", range).finish()
            }
            ImageReader::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// A backend holding image data.
#[async_trait]
pub trait Store: Send + Sync + Debug + 'static {
    /// The operator's name for this store (`enabled_backends` id, or the scheme).
    fn name(&self) -> &str;

    fn capabilities(&self) -> Capabilities;

    /// Whether `location` belongs to this store.
    fn owns(&self, location: &Location) -> bool;

    /// Starts writing the data of image `image_id`. `size_hint` is the announced size, if
    /// any: a store may refuse at once (`StorageFull`) when it cannot hold it.
    async fn writer(
        &self,
        image_id: &str,
        size_hint: Option<u64>,
    ) -> Result<Box<dyn ImageWriter>, StoreError>;

    /// Opens `location` for reading, whole or one range (clamped to the data).
    async fn reader(
        &self,
        location: &Location,
        range: Option<ByteRange>,
    ) -> Result<ImageReader, StoreError>;

    /// The size of the data at `location`.
    async fn size(&self, location: &Location) -> Result<u64, StoreError>;

    /// Removes the data at `location`; `NotFound` if it is already gone.
    async fn delete(&self, location: &Location) -> Result<(), StoreError>;
}

/// One image's data on its way into a store.
#[async_trait]
pub trait ImageWriter: Send {
    /// Appends `chunk`. Returns once the store has taken it (its back-pressure).
    async fn write(&mut self, chunk: Chunk) -> Result<(), StoreError>;

    /// Makes the data visible under its location: the only step that does.
    async fn commit(self: Box<Self>) -> Result<Stored, StoreError>;

    /// Removes everything written. Dropping a writer without `commit` must do the same.
    async fn abort(self: Box<Self>) -> Result<(), StoreError>;
}
