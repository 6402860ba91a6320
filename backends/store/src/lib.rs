//! The store driver interface: how Glint moves image bytes into and out of a backend.
//!
//! A driver moves bytes and nothing else. Hashing, size limits, quotas, image status, the
//! memory budget and the cleanup policy live once in Glint's data path, which drives a writer
//! through `write* → commit | abort`: nothing a writer wrote is visible under a location until
//! `commit` returns, and `abort` removes every byte written. A writer dropped without either
//! (a killed task) may leave data behind that only `sweep_abandoned` removes; the data path
//! never does that on purpose.

mod chunk;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod location;
#[cfg(feature = "net")]
pub mod net;

use std::fmt::Debug;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;

pub use chunk::Chunk;
pub use error::StoreError;
pub use location::{
    strip_userinfo, CinderLocation, Credentials, FileLocation, HttpLocation, Location, RbdLocation,
    S3Location, SwiftLocation, VsphereLocation,
};

/// A secret (a key, a password) that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The identity a request acts with, for stores that keep data in the caller's own account
/// (Swift's multi-tenant mode): its Keystone token, project and service catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub token: Secret,
    pub project_id: String,
    pub catalog: Vec<CatalogEndpoint>,
}

/// One endpoint of a Keystone service catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEndpoint {
    /// `object-store`, `image`, …
    pub service_type: String,
    /// `public`, `internal` or `admin`.
    pub interface: String,
    pub region: Option<String>,
    pub url: String,
}

impl Caller {
    /// The URL of the first endpoint of `service_type` on `interface` (in `region`, if one is
    /// given).
    pub fn endpoint(
        &self,
        service_type: &str,
        interface: &str,
        region: Option<&str>,
    ) -> Option<&str> {
        self.catalog
            .iter()
            .find(|e| {
                e.service_type == service_type
                    && e.interface == interface
                    && region.is_none_or(|r| e.region.as_deref() == Some(r))
            })
            .map(|e| e.url.as_str())
    }
}

/// Who may read an image's data besides its owner, for stores with per-image access control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readers {
    /// Public and community images.
    Everyone,
    /// A private or shared image: these member projects.
    Projects(Vec<String>),
}

/// What a store can do; the data path and the tests are selected by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// No writes: `writer` always fails (Glance's http store).
    pub read_only: bool,
    /// Byte ranges can be read without reading from the start.
    pub ranged_read: bool,
    /// Runs of zeros are stored as holes rather than written.
    pub thin_provisioning: bool,
    /// Data lives in the callers' own accounts (Swift's multi-tenant mode): the store works
    /// only through `for_caller`, and access to the data follows the image (`set_readers`).
    pub caller_accounts: bool,
}

/// A byte range `[start, end)` of an image's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// What the data path knows about an upload when it asks for a writer: enough for a driver to
/// size its parts and its buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// The size the client announced, if it did (`X-OpenStack-Image-Size`, `Content-Length`).
    pub size: Option<u64>,
    /// The most the data may grow to (`image_size_cap`, or what the quota leaves): with no
    /// announced size, parts must be large enough for this many bytes.
    pub max_size: u64,
    /// The most image bytes the writer may hold in memory at once. The data path reserves
    /// `Store::write_buffer` of it before the upload starts.
    pub memory: u64,
}

/// The result of a committed write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub location: Location,
    /// Bytes written, as the store counted them.
    pub size: u64,
}

/// Committed data found in a store, for the sweep of data no location names.
#[derive(Debug, Clone)]
pub struct StoredData {
    /// The image the data was written for (drivers name data after the image id).
    pub image_id: String,
    pub location: Location,
    /// Other spellings of `location` that rows may hold for the same data (Glance wrote a
    /// data directory as configured, Glint writes it resolved).
    pub aliases: Vec<Location>,
    pub modified: SystemTime,
}

/// Whether `name` has the form of an image id (a UUID, as Glance and Glint make them): the
/// names drivers give data, and the only data their sweeps consider theirs.
pub fn is_image_id(name: &str) -> bool {
    name.len() == 36
        && name.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// An opened image: the bytes of `range`, and what the store holds in all.
#[derive(Debug)]
pub struct ImageReader {
    /// Bytes stored at the location, whatever the range; the data path compares it with the
    /// image's recorded size before serving a byte.
    pub stored_size: u64,
    /// The range `body` yields, clamped to the data.
    pub range: ByteRange,
    pub body: ReaderBody,
}

/// How a reader's bytes come.
pub enum ReaderBody {
    /// A local file, read at `range` by the data path.
    File(std::fs::File),
    /// Any other store: a stream of exactly the bytes of `range`.
    Stream(ByteStream),
}

impl Debug for ReaderBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReaderBody::File(_) => f.write_str("File"),
            ReaderBody::Stream(_) => f.write_str("Stream"),
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

    /// This store acting for a request's `caller`. A store that keeps data in the caller's
    /// own account (Swift's multi-tenant mode) answers one bound to the caller's token, and
    /// fails without a caller; the others answer `None`: the store itself serves everyone.
    fn for_caller(&self, caller: Option<&Caller>) -> Result<Option<Arc<dyn Store>>, StoreError> {
        let _ = caller;
        Ok(None)
    }

    /// Lets `readers` read the data at `location` (Swift multi-tenant container ACLs); stores
    /// whose data only Glint reads have nothing to do.
    async fn set_readers(&self, location: &Location, readers: &Readers) -> Result<(), StoreError> {
        let _ = (location, readers);
        Ok(())
    }

    /// Image bytes a writer opened with `options` holds at most (parts being filled or in
    /// flight). Must not exceed `options.memory`; `Err` when the store cannot work within it.
    fn write_buffer(&self, options: &WriteOptions) -> Result<u64, StoreError> {
        let _ = options;
        Ok(0)
    }

    /// Starts writing the data of image `image_id`. A store may refuse at once
    /// (`StorageFull`) when it cannot hold the announced size.
    async fn writer(
        &self,
        image_id: &str,
        options: &WriteOptions,
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

    /// Removes what writers that never finished left behind (a killed process): temporary
    /// files, unfinished multipart uploads; only Glint's own, and only those untouched for
    /// `older_than`. Returns how many were removed.
    async fn sweep_abandoned(&self, older_than: Duration) -> Result<usize, StoreError>;

    /// Every piece of committed data in the store that Glint wrote, for the sweep of data no
    /// location names. A store that cannot list (or holds data it did not write) returns none.
    async fn committed_data(&self) -> Result<Vec<StoredData>, StoreError> {
        Ok(Vec::new())
    }
}

/// One image's data on its way into a store.
#[async_trait]
pub trait ImageWriter: Send {
    /// Appends `chunk`. Returns once the store has taken it (its back-pressure).
    async fn write(&mut self, chunk: Chunk) -> Result<(), StoreError>;

    /// Makes the data visible under its location: the only step that does.
    async fn commit(self: Box<Self>) -> Result<Stored, StoreError>;

    /// Removes everything written.
    async fn abort(self: Box<Self>) -> Result<(), StoreError>;
}
