//! `StoreError`: what went wrong, shaped by what the caller should do about it.

use std::error::Error as StdError;

type Source = Box<dyn StdError + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No data at the location.
    #[error("no image data at {0}")]
    NotFound(String),
    /// Data for this image already exists in the store.
    #[error("image data already exists at {0}")]
    AlreadyExists(String),
    /// The data cannot be removed while something uses it (an RBD snapshot with clones).
    /// Retrying will not help until the user goes away.
    #[error("image data at {location} is in use: {why}")]
    InUse { location: String, why: String },
    /// The store has no room for the data.
    #[error("store {store} is full")]
    StorageFull { store: String },
    /// The store refuses writes (permissions, read-only filesystem).
    #[error("store {store} refuses writes: {source}")]
    WriteDenied { store: String, source: Source },
    /// The store takes no writes at all (Glance's http store).
    #[error("store {store} is read-only")]
    ReadOnly { store: String },
    /// The credentials of the request were refused (a user's token expired mid-upload).
    #[error("store {store} refused the request's credentials: {source}")]
    Unauthenticated { store: String, source: Source },
    /// The store refuses the request's identity this operation (a Swift container ACL that
    /// does not name the caller's project).
    #[error("store {store} refused the request: {source}")]
    Forbidden { store: String, source: Source },
    /// The store's configuration cannot work (its own credentials refused, no such bucket or
    /// pool, bad option values): an operator must fix it.
    #[error("store {store} is misconfigured: {why}")]
    Misconfigured { store: String, why: String },
    /// The store cannot be reached now; `retryable` says whether trying again may help.
    #[error("store {store} unavailable: {source}")]
    Unavailable {
        store: String,
        retryable: bool,
        source: Source,
    },
    /// The store does not do this (ranges where unsupported).
    #[error("store {store} does not support {what}")]
    Unsupported { store: String, what: &'static str },
    /// The location does not name data in this store.
    #[error("invalid location {0}")]
    InvalidLocation(String),
    /// Anything else the backend reported.
    #[error("store {store} failed: {source}")]
    Backend { store: String, source: Source },
}
