//! What can go wrong moving image data; `api::error` maps each to Glance's status.

use glint_store::StoreError;

use crate::domain::{DomainError, RepoError};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Visibility, policy, state: the image rules said no.
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// More data than `image_size_cap` allows (413).
    #[error("The incoming image is too large: the limit is {cap} bytes.")]
    SizeCapExceeded { cap: u64 },
    /// More data than the owner's `user_storage_quota` has left (413).
    #[error("Image exceeds the storage quota: The size of the data {size} will exceed the limit. {remaining} bytes remaining.")]
    QuotaExceeded { size: u64, remaining: u64 },
    /// The data is not its declared disk format, or fails a safety check of the format it
    /// is (415, as Glance's InvalidImageData).
    #[error("{0}")]
    ImageFormat(String),
    /// The upload's declared size and the data disagree (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request body ended early or the connection broke.
    #[error("the client stopped sending image data: {0}")]
    ClientGone(String),
    /// The image was deleted while its data was being uploaded (410).
    #[error("Image {0} could not be found after upload. The image may have been deleted during the upload.")]
    DeletedDuringUpload(String),
    /// The image changed status while its data was being uploaded (409).
    #[error("{0}")]
    Conflict(String),
    /// The requested range is outside the data (416).
    #[error("Requested range not satisfiable")]
    RangeNotSatisfiable { size: u64 },
    /// The stored data does not match what the image records (500, never served as good).
    #[error("The stored data of image {image} is damaged: {why}")]
    Corrupt { image: String, why: String },
    /// A bug or an unexpected failure inside the data path (500).
    #[error("{0}")]
    Internal(String),
}

impl From<RepoError> for DataError {
    fn from(e: RepoError) -> DataError {
        DataError::Domain(DomainError::Repository(e))
    }
}
