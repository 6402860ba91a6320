//! Domain outcomes that are not success. Each refusal carries its kind (which `api::error`
//! maps to an HTTP status, in one place) and the message a client sees; `RepoError` is why the
//! metadata database could not answer. This module depends on nothing else in `domain/`.

use std::fmt;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The thing does not exist or the caller may not know it exists (404).
    NotFound,
    /// The caller may see the thing but not do this to it (403).
    Forbidden,
    /// The request itself is malformed or invalid (400).
    BadRequest,
    /// The request conflicts with the image's current state (409).
    Conflict,
    /// A quota or size limit would be exceeded (413).
    OverLimit,
}

/// A client-facing message, in one of the two places Glance's error bodies put it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Replaces the status's default explanation.
    Explanation(String),
    /// Follows the status's default explanation (Glance raises some errors this way, and
    /// clients that match on the body see both sentences).
    Detail(String),
    /// Only the status's default explanation.
    Default,
}

impl Message {
    pub fn text(&self) -> &str {
        match self {
            Message::Explanation(text) | Message::Detail(text) => text,
            Message::Default => "",
        }
    }
}

/// Why the database could not answer.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A row with this key exists already (also among soft-deleted rows).
    #[error("duplicate key")]
    Duplicate,
    /// The database cannot be reached or is overloaded; the request may be retried.
    #[error("metadata database unavailable: {0}")]
    Unavailable(String),
    /// The connection broke under the query (database restarted, connection killed). Reads
    /// and conditional writes have been retried on a fresh connection already.
    #[error("metadata database connection lost: {0}")]
    ConnectionLost(String),
    /// The database rolled the transaction back to break a conflict with another (deadlock,
    /// serialization failure, Galera certification failure): nothing of it was applied, and
    /// operations written to be repeated have been retried already.
    #[error("metadata transaction rolled back by a conflict: {0}")]
    Conflict(String),
    /// Text the database's column cannot hold: 4-byte UTF-8 (emoji, say) in a MySQL table of
    /// Glance's, which are utf8mb3. Names the column.
    #[error("text that column {0} of the database cannot store")]
    Unstorable(String),
    /// The query ran past `[database] statement_timeout` and was cancelled by the database.
    #[error("metadata query cancelled after the statement timeout: {0}")]
    TimedOut(String),
    /// Anything else: a bug or a schema problem. Logged with detail, shown as a plain 500.
    #[error("metadata database error: {0}")]
    Other(String),
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{}", message.text())]
    Refused { kind: Refusal, message: Message },
    /// The metadata database failed.
    #[error(transparent)]
    Repository(#[from] RepoError),
    /// A unified limit refused, or could not be read.
    #[error(transparent)]
    Quota(#[from] crate::quota::QuotaError),
}

impl DomainError {
    pub(crate) fn refused(kind: Refusal, message: impl Into<String>) -> DomainError {
        DomainError::Refused {
            kind,
            message: Message::Explanation(message.into()),
        }
    }

    pub fn not_found(message: impl Into<String>) -> DomainError {
        DomainError::refused(Refusal::NotFound, message)
    }

    pub fn forbidden(message: impl Into<String>) -> DomainError {
        DomainError::refused(Refusal::Forbidden, message)
    }

    pub fn bad_request(message: impl Into<String>) -> DomainError {
        DomainError::refused(Refusal::BadRequest, message)
    }

    pub fn conflict(message: impl Into<String>) -> DomainError {
        DomainError::refused(Refusal::Conflict, message)
    }

    pub fn over_limit(message: impl Into<String>) -> DomainError {
        DomainError::refused(Refusal::OverLimit, message)
    }

    /// A refusal whose message follows the status's default explanation.
    pub fn with_detail(kind: Refusal, detail: impl Into<String>) -> DomainError {
        DomainError::Refused {
            kind,
            message: Message::Detail(detail.into()),
        }
    }

    /// A refusal with only the status's default explanation.
    pub fn plain(kind: Refusal) -> DomainError {
        DomainError::Refused {
            kind,
            message: Message::Default,
        }
    }

    pub fn image_not_found(id: &str) -> DomainError {
        DomainError::not_found(format!("No image found with ID {id}"))
    }

    pub fn not_authorized(rule: &str) -> DomainError {
        DomainError::forbidden(format!("You are not authorized to complete {rule} action."))
    }

    /// The refusal kind, if this is a refusal.
    pub fn kind(&self) -> Option<Refusal> {
        match self {
            DomainError::Refused { kind, .. } => Some(*kind),
            DomainError::Repository(_) => None,
            DomainError::Quota(crate::quota::QuotaError::OverLimit(_)) => Some(Refusal::OverLimit),
            DomainError::Quota(crate::quota::QuotaError::Unavailable(_)) => None,
        }
    }

    /// The same refusal with another kind (e.g. a missing marker is a bad request).
    pub fn into_kind(self, new: Refusal) -> DomainError {
        match self {
            DomainError::Refused { message, .. } => DomainError::Refused { kind: new, message },
            other => other,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

pub type DomainResult<T> = Result<T, DomainError>;
