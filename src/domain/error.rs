//! Domain outcomes that are not success. Each variant carries the message a client sees;
//! `api::error` maps variants to HTTP statuses in one place.

use super::repository::RepoError;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The thing does not exist or the caller may not know it exists (404).
    #[error("{0}")]
    NotFound(String),
    /// The caller may see the thing but not do this to it (403).
    #[error("{0}")]
    Forbidden(String),
    /// The request itself is malformed or invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request conflicts with the image's current state (409).
    #[error("{0}")]
    Conflict(String),
    /// A quota or size limit would be exceeded (413).
    #[error("{0}")]
    OverLimit(String),
    /// The metadata database failed.
    #[error(transparent)]
    Repository(#[from] RepoError),
}

impl DomainError {
    pub fn image_not_found(id: &str) -> DomainError {
        DomainError::NotFound(format!("No image found with ID {id}"))
    }

    pub fn not_authorized(rule: &str) -> DomainError {
        DomainError::Forbidden(format!("You are not authorized to complete {rule} action."))
    }
}

pub type DomainResult<T> = Result<T, DomainError>;
