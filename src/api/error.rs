//! `ApiError` and the only code that renders error bodies. Handlers return `ApiError` (usually
//! converted from `DomainError`); it becomes a response carrying an `ErrorMessage` extension,
//! and `render_error_bodies` (which can see the request's `Accept`) writes the body in webob's
//! three forms: JSON, HTML or plain text.
//!
//! What failed inside (a driver's or the database's message, a join error) never reaches the
//! body: it travels as the `ErrorSource` extension to `middleware::request_id`, which logs it
//! once, on the request's line. 5xx bodies say what failed in operator terms only.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use glint_store::StoreError;

use crate::datapath::DataError;
use crate::domain::error::{Message, Refusal};
use crate::domain::{DomainError, RepoError};

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
                RepoError::Unavailable(_) | RepoError::ConnectionLost(_) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The metadata database is unavailable; retry later.",
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

/// webob's title for a status (the reason phrase it uses).
pub fn title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        413 => "Request Entity Too Large",
        416 => "Request Range Not Satisfiable",
        _ => status.canonical_reason().unwrap_or("Error"),
    }
}

/// webob's default explanation, for errors raised without one (404 from routing, 405).
pub fn default_explanation(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The server could not comply with the request since it is either malformed or otherwise incorrect.",
        401 => "This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.",
        403 => "Access was denied to this resource.",
        404 => "The resource could not be found.",
        409 => "There was a conflict when trying to complete your request.",
        410 => "This resource is no longer available. No forwarding address is given.",
        413 => "The body of your request was too large for this server.",
        416 => "The Range requested is not available.",
        500 => "The server has either erred or is incapable of performing the requested operation.",
        503 => "The server is currently unavailable. Please try again at a later time.",
        _ => "",
    }
}

/// The three body forms webob chooses between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyForm {
    Json,
    Html,
    Plain,
}

/// webob's choice: the best of `text/html` and `application/json` by `Accept` quality (HTML
/// first on ties, so `*/*` gets HTML), else plain text; no `Accept` header means plain text.
pub fn body_form(headers: &HeaderMap) -> BodyForm {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return BodyForm::Plain;
    };
    let quality = |offer: &str| -> f32 {
        let (kind, _) = offer.split_once('/').unwrap_or((offer, ""));
        let mut best: Option<(u8, f32)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let specificity = if media == offer {
                3
            } else if media == format!("{kind}/*") {
                2
            } else if media == "*/*" {
                1
            } else {
                continue;
            };
            if best.is_none_or(|(s, _)| specificity > s) {
                best = Some((specificity, q));
            }
        }
        best.map(|(_, q)| q).unwrap_or(0.0)
    };
    let html = quality("text/html");
    let json = quality("application/json");
    if html > 0.0 && html >= json {
        BodyForm::Html
    } else if json > 0.0 {
        BodyForm::Json
    } else {
        BodyForm::Plain
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

/// webob's `strip_tags`: newlines become spaces, `<br />` becomes a newline, other tags go.
fn strip_tags(text: &str) -> String {
    let text = text.replace('\n', " ").replace('\r', "");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let tag = &rest[start..start + end + 1];
        if tag.to_ascii_lowercase().starts_with("<br") {
            out.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// What of the request the body templates mention.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    pub method: String,
    pub content_type: String,
}

/// Fills webob's body template for `status`: `explanation<br /><br />\ndetail\n\n`, or
/// the 405/415 templates that name the request's method or media type.
fn fill_template(
    status: StatusCode,
    message: &Message,
    facts: &RequestFacts,
    escape: fn(&str) -> String,
) -> String {
    let detail = match message {
        Message::Detail(detail) => escape(detail),
        _ => String::new(),
    };
    match status.as_u16() {
        405 => format!(
            "The method {} is not allowed for this resource. <br /><br />\n{detail}",
            escape(&facts.method)
        ),
        415 => format!(
            "The request media type {} is not supported by this server.\n<br /><br />\n{detail}",
            escape(&facts.content_type)
        ),
        _ => {
            let explanation = match message {
                Message::Explanation(text) => escape(text),
                _ => escape(default_explanation(status)),
            };
            format!("{explanation}<br /><br />\n{detail}\n\n")
        }
    }
}

/// Renders the body and its content type, as webob's `WSGIHTTPException` does.
pub fn render_body(
    status: StatusCode,
    message: &Message,
    facts: &RequestFacts,
    form: BodyForm,
) -> (&'static str, String) {
    let code = format!("{} {}", status.as_u16(), title(status));
    match form {
        BodyForm::Json => {
            let body = serde_json::json!({
                "message": fill_template(status, message, facts, str::to_owned),
                "code": code,
                "title": title(status),
            });
            ("application/json", body.to_string())
        }
        BodyForm::Html => (
            "text/html; charset=UTF-8",
            format!(
                "<html>\n <head>\n  <title>{code}</title>\n </head>\n <body>\n  <h1>{code}</h1>\n  {}\n </body>\n</html>",
                fill_template(status, message, facts, escape_html)
            ),
        ),
        BodyForm::Plain => (
            "text/plain; charset=UTF-8",
            format!("{code}\n\n{}", strip_tags(&fill_template(status, message, facts, str::to_owned))),
        ),
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

    fn form(accept: Option<&str>) -> BodyForm {
        let mut headers = HeaderMap::new();
        if let Some(a) = accept {
            headers.insert(
                header::ACCEPT,
                HeaderValue::from_str(a).expect("valid header"),
            );
        }
        body_form(&headers)
    }

    #[test]
    fn accept_selects_the_body_form_like_webob() {
        assert_eq!(form(None), BodyForm::Plain);
        assert_eq!(form(Some("*/*")), BodyForm::Html);
        assert_eq!(form(Some("application/json")), BodyForm::Json);
        assert_eq!(form(Some("application/json, */*;q=0.5")), BodyForm::Json);
        assert_eq!(form(Some("text/plain")), BodyForm::Plain);
        assert_eq!(form(Some("text/html;q=0, application/*")), BodyForm::Json);
    }

    fn render(status: StatusCode, message: Message, form: BodyForm) -> String {
        let facts = RequestFacts {
            method: "PUT".into(),
            content_type: "application/json".into(),
        };
        render_body(status, &message, &facts, form).1
    }

    #[test]
    fn bodies_match_webob_byte_for_byte() {
        let json: serde_json::Value = serde_json::from_str(&render(
            StatusCode::CONFLICT,
            Message::Explanation("Nope".into()),
            BodyForm::Json,
        ))
        .expect("json");
        assert_eq!(json["message"], "Nope<br /><br />\n\n\n");
        assert_eq!(json["code"], "409 Conflict");
        assert_eq!(json["title"], "Conflict");
        assert_eq!(
            render(
                StatusCode::NOT_FOUND,
                Message::Explanation("No image found with ID abc".into()),
                BodyForm::Plain
            ),
            "404 Not Found\n\nNo image found with ID abc\n\n   "
        );
        assert_eq!(
            render(StatusCode::FORBIDDEN, Message::Detail("Property foo may not be removed.".into()), BodyForm::Plain),
            "403 Forbidden\n\nAccess was denied to this resource.\n\n Property foo may not be removed.  "
        );
        let json: serde_json::Value = serde_json::from_str(&render(
            StatusCode::METHOD_NOT_ALLOWED,
            Message::Default,
            BodyForm::Json,
        ))
        .expect("json");
        assert_eq!(
            json["message"],
            "The method PUT is not allowed for this resource. <br /><br />\n"
        );
        assert_eq!(
            render(
                StatusCode::METHOD_NOT_ALLOWED,
                Message::Default,
                BodyForm::Plain
            ),
            "405 Method Not Allowed\n\nThe method PUT is not allowed for this resource. \n\n "
        );
        let json: serde_json::Value = serde_json::from_str(&render(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Message::Detail("Use X.".into()),
            BodyForm::Json,
        ))
        .expect("json");
        assert_eq!(
            json["message"],
            "The request media type application/json is not supported by this server.\n<br /><br />\nUse X."
        );
        assert!(render(
            StatusCode::FORBIDDEN,
            Message::Explanation("it's <b>".into()),
            BodyForm::Html
        )
        .contains("<h1>403 Forbidden</h1>\n  it&#x27;s &lt;b&gt;<br /><br />"));
    }
}
