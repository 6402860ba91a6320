//! `ApiError`, and every error's HTTP status in one place. Handlers return `ApiError` (usually
//! converted from `DomainError`); it becomes a response carrying an `ErrorMessage` extension,
//! and `render_error_bodies` (which can see the request's `Accept`) has `error_body` write the
//! body in webob's three forms: JSON, HTML or plain text.
//!
//! What failed inside (a driver's or the database's message, a join error) never reaches the
//! body: it travels as the `ErrorSource` extension to `middleware::request_id`, which logs it
//! once, on the request's line. 5xx bodies say what failed in operator terms only.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use glint_store::StoreError;

use crate::auth::AuthFailure;
use crate::datapath::DataError;
use crate::domain::error::{Message, Refusal};
use crate::domain::{DomainError, RepoError};
use crate::quota::QuotaError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: Message,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// What failed inside, for the log only.
    pub source: Option<ErrorSource>,
}

impl ApiError {
    /// An error whose message replaces the status's default explanation.
    pub fn new(status: StatusCode, explanation: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: Message::Explanation(explanation.into()),
            headers: Vec::new(),
            source: None,
        }
    }

    /// An error whose message follows the status's default explanation.
    pub fn with_detail(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: Message::Detail(detail.into()),
            headers: Vec::new(),
            source: None,
        }
    }

    /// An error with only the status's default explanation.
    pub fn plain(status: StatusCode) -> ApiError {
        ApiError {
            status,
            message: Message::Default,
            headers: Vec::new(),
            source: None,
        }
    }

    pub fn bad_request(explanation: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, explanation)
    }

    pub fn with_header(mut self, name: HeaderName, value: &'static str) -> ApiError {
        self.headers.push((name, HeaderValue::from_static(value)));
        self
    }

    /// Attaches what failed inside: logged with the request, never shown to the client.
    pub fn caused_by(mut self, source: impl StdError + Send + Sync + 'static) -> ApiError {
        self.source = Some(ErrorSource(Arc::new(source)));
        self
    }
}

/// The internal cause of an error response, carried as a response extension to the request
/// log line (`middleware::request_id`); never rendered into a body.
#[derive(Debug, Clone)]
pub struct ErrorSource(pub Arc<dyn StdError + Send + Sync>);

impl ErrorSource {
    /// The error and its chain of sources, `outer: inner: …`; a source whose text its
    /// parent already includes is not repeated.
    pub fn text(&self) -> String {
        let mut text = self.0.to_string();
        let mut next = self.0.source();
        while let Some(source) = next {
            let part = source.to_string();
            if !text.contains(&part) {
                let _ = write!(text, ": {part}");
            }
            next = source.source();
        }
        text
    }
}

/// A panic caught on a request path, as an error to log.
#[derive(Debug, thiserror::Error)]
#[error("panicked: {0}")]
pub struct Panic(pub String);

impl Panic {
    /// The panic's message, when it has one (`panic!` with a string or a format).
    pub fn from_payload(payload: &(dyn std::any::Any + Send)) -> Panic {
        let message = payload
            .downcast_ref::<&str>()
            .map(|m| (*m).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        Panic(message)
    }
}

/// The message of an error response, rendered into a body by `render_error_bodies`.
#[derive(Debug, Clone)]
pub struct ErrorMessage(pub Message);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response.extensions_mut().insert(ErrorMessage(self.message));
        if let Some(source) = self.source {
            response.extensions_mut().insert(source);
        }
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> ApiError {
        match error {
            DomainError::Refused { kind, message } => {
                let status = match kind {
                    Refusal::NotFound => StatusCode::NOT_FOUND,
                    Refusal::Forbidden => StatusCode::FORBIDDEN,
                    Refusal::BadRequest => StatusCode::BAD_REQUEST,
                    Refusal::Conflict => StatusCode::CONFLICT,
                    Refusal::OverLimit => StatusCode::PAYLOAD_TOO_LARGE,
                };
                ApiError {
                    status,
                    message,
                    headers: Vec::new(),
                    source: None,
                }
            }
            // The detail goes to the log only; clients get an operator-level summary.
            DomainError::Repository(e) => match e {
                RepoError::Unavailable(_)
                | RepoError::ConnectionLost(_)
                | RepoError::Conflict(_) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The metadata database is unavailable; retry later.",
                ),
                RepoError::Unstorable(ref column) => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Invalid value for {column}: this database stores text in utf8mb3, which has \
                         no room for characters beyond U+FFFF (emoji, for one)."
                    ),
                ),
                RepoError::TimedOut(_) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The metadata query took too long and was cancelled; retry later or narrow the request.",
                ),
                _ => ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The server failed to read or write image metadata.",
                ),
            }
            .caused_by(e),
            // Glance's LimitExceeded, with oslo.limit's text as its body.
            DomainError::Quota(QuotaError::OverLimit(detail)) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "The request returned a 413 Request Entity Too Large. This generally means \
                     that rate limiting or a quota threshold was breached.\n\nThe response \
                     body:\n{detail}"
                ),
            ),
            DomainError::Quota(e @ QuotaError::Unavailable(_)) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The quota limits cannot be read from Keystone now; retry later.",
            )
            .caused_by(e),
        }
    }
}

impl From<DataError> for ApiError {
    fn from(error: DataError) -> ApiError {
        let text = error.to_string();
        match error {
            DataError::Domain(e) => e.into(),
            DataError::Store(e) => e.into(),
            DataError::SizeCapExceeded { .. } | DataError::QuotaExceeded { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, text)
            }
            DataError::BadRequest(_) | DataError::ClientGone(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, text)
            }
            DataError::ImageFormat(_) => {
                ApiError::with_detail(StatusCode::UNSUPPORTED_MEDIA_TYPE, text)
            }
            DataError::DeletedDuringUpload(_) => ApiError::new(StatusCode::GONE, text),
            DataError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, text),
            DataError::RangeNotSatisfiable { size } => {
                let mut error = ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, text);
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    error.headers.push((header::CONTENT_RANGE, value));
                }
                error
            }
            // Says which image and what is wrong with its data, nothing internal.
            DataError::Corrupt { .. } => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, text),
            // A join error, a stopped worker, an I/O error: the client gets webob's default.
            DataError::Internal(_) => {
                ApiError::plain(StatusCode::INTERNAL_SERVER_ERROR).caused_by(error)
            }
        }
    }
}

impl From<AuthFailure> for ApiError {
    /// keystonemiddleware's answers: 401 naming where to authenticate, or 503 while Keystone
    /// cannot be asked (never a token accepted unchecked).
    fn from(failure: AuthFailure) -> ApiError {
        match &failure {
            AuthFailure::Unauthenticated {
                www_authenticate, ..
            } => {
                let mut error = ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "The request you have made requires authentication.",
                );
                if let Some(value) = www_authenticate
                    .as_deref()
                    .and_then(|v| HeaderValue::from_str(v).ok())
                {
                    error.headers.push((header::WWW_AUTHENTICATE, value));
                }
                error.caused_by(failure)
            }
            AuthFailure::IdentityUnavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The Keystone service is temporarily unavailable.",
            )
            .caused_by(failure),
        }
    }
}

impl From<StoreError> for ApiError {
    /// Clients get the outcome in operator terms; locations (paths, URLs) and backend detail
    /// go to the log only.
    fn from(error: StoreError) -> ApiError {
        let (status, message) = match &error {
            StoreError::StorageFull { store } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Image storage media is full: store {store} is full"),
            ),
            StoreError::WriteDenied { store, .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "Insufficient permissions on image storage media: store {store} refuses writes"
                ),
            ),
            StoreError::Unavailable { store, .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("Image store {store} is unavailable; retry later."),
            ),
            StoreError::AlreadyExists(_) => (
                StatusCode::CONFLICT,
                "Data for this image already exists in the store.".to_owned(),
            ),
            StoreError::NotFound(_) => (StatusCode::NOT_FOUND, "Image data not found.".to_owned()),
            StoreError::InUse { .. } => (
                StatusCode::CONFLICT,
                "Image data is in use by the store and cannot be removed.".to_owned(),
            ),
            // Glance's answer to a write into its read-only http store (StoreAddDisabled).
            StoreError::ReadOnly { .. } => (
                StatusCode::GONE,
                "Error in store configuration. Adding images to store is disabled.".to_owned(),
            ),
            StoreError::Unauthenticated { .. } => (
                StatusCode::UNAUTHORIZED,
                "The image store refused the request's credentials.".to_owned(),
            ),
            StoreError::Forbidden { .. } => (
                StatusCode::FORBIDDEN,
                "The image store does not let this project access the image data.".to_owned(),
            ),
            StoreError::Misconfigured { store, .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("Image store {store} is misconfigured; an operator must fix it."),
            ),
            StoreError::Unsupported { store, what } => (
                StatusCode::BAD_REQUEST,
                format!("Store {store} does not support {what}."),
            ),
            StoreError::InvalidLocation(_) | StoreError::Backend { .. } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The image store failed.".to_owned(),
            ),
        };
        ApiError::new(status, message).caused_by(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("store fast failed: {source}")]
    struct Outer {
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("commit failed")]
    struct Wrapper(#[source] Outer);

    #[test]
    fn store_outcomes_get_glance_s_statuses() {
        let cases = [
            (
                StoreError::ReadOnly {
                    store: "web".into(),
                },
                410,
            ),
            (
                StoreError::InUse {
                    location: "rbd://f/p/i/snap".into(),
                    why: "has clones".into(),
                },
                409,
            ),
            (
                StoreError::Unauthenticated {
                    store: "swift".into(),
                    source: "token expired".into(),
                },
                401,
            ),
            (
                StoreError::Misconfigured {
                    store: "s3".into(),
                    why: "keys refused".into(),
                },
                503,
            ),
            (
                StoreError::Unsupported {
                    store: "web".into(),
                    what: "ranged reads",
                },
                400,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(ApiError::from(error).status.as_u16(), status);
        }
    }

    #[test]
    fn a_source_is_logged_with_its_chain_once() {
        let source = ErrorSource(Arc::new(Wrapper(Outer {
            source: std::io::Error::other("disk on fire"),
        })));
        assert_eq!(
            source.text(),
            "commit failed: store fast failed: disk on fire"
        );
        let panic = Panic::from_payload(&"index out of bounds");
        assert_eq!(panic.to_string(), "panicked: index out of bounds");
    }

    #[test]
    fn internal_failures_keep_their_text_out_of_the_body() {
        let error = ApiError::from(DataError::Internal(
            "store writer task failed: task 7 panicked".to_owned(),
        ));
        assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.message, Message::Default);
        let source = error.source.as_ref().map(ErrorSource::text);
        assert_eq!(
            source.as_deref(),
            Some("store writer task failed: task 7 panicked")
        );
        let error = ApiError::from(DomainError::Repository(RepoError::Other(
            "no such table: image_tags".to_owned(),
        )));
        assert!(!error.message.text().contains("image_tags"));
        assert!(error.source.is_some());
    }
}
