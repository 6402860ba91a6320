//! `ApiError` and the only code that renders error bodies. Handlers return `ApiError` (usually
//! converted from `DomainError`); it becomes a response carrying an `ErrorExplanation`
//! extension, and `render_error_bodies` (which can see the request's `Accept`) writes the
//! body in webob's three forms: JSON, HTML or plain text.

use std::borrow::Cow;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::domain::{DomainError, RepoError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub explanation: Cow<'static, str>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, explanation: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError {
            status,
            explanation: explanation.into(),
            headers: Vec::new(),
        }
    }

    pub fn bad_request(explanation: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, explanation)
    }

    pub fn with_header(mut self, name: HeaderName, value: &'static str) -> ApiError {
        self.headers.push((name, HeaderValue::from_static(value)));
        self
    }
}

/// The explanation of an error response, rendered into a body by `render_error_bodies`.
#[derive(Debug, Clone)]
pub struct ErrorExplanation(pub Cow<'static, str>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
            .extensions_mut()
            .insert(ErrorExplanation(self.explanation));
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> ApiError {
        let status = match &error {
            DomainError::NotFound(_) => StatusCode::NOT_FOUND,
            DomainError::Forbidden(_) => StatusCode::FORBIDDEN,
            DomainError::BadRequest(_) => StatusCode::BAD_REQUEST,
            DomainError::Conflict(_) => StatusCode::CONFLICT,
            DomainError::OverLimit(_) => StatusCode::PAYLOAD_TOO_LARGE,
            DomainError::Repository(RepoError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            DomainError::Repository(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let explanation = match error {
            DomainError::Repository(e) => {
                // The detail goes to the log only; clients get an operator-level summary.
                tracing::error!(error = %e, "metadata database failure");
                match e {
                    RepoError::Unavailable(_) => {
                        "The metadata database is unavailable; retry later.".into()
                    }
                    _ => "The server failed to read or write image metadata.".into(),
                }
            }
            DomainError::NotFound(m)
            | DomainError::Forbidden(m)
            | DomainError::BadRequest(m)
            | DomainError::Conflict(m)
            | DomainError::OverLimit(m) => m,
        };
        ApiError::new(status, Cow::Owned(explanation))
    }
}

/// webob's title for a status (the reason phrase it uses).
pub fn title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        413 => "Request Entity Too Large",
        416 => "Requested Range Not Satisfiable",
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
        405 => "The method is not allowed for this resource.",
        409 => "There was a conflict when trying to complete your request.",
        413 => "The request is larger than the server is willing or able to process.",
        415 => "The request media type is not supported by this server.",
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
}

/// Renders the body and its content type, as webob's `WSGIHTTPException` does with an
/// explanation and no detail or comment.
pub fn render_body(
    status: StatusCode,
    explanation: &str,
    form: BodyForm,
) -> (&'static str, String) {
    let code = format!("{} {}", status.as_u16(), title(status));
    match form {
        BodyForm::Json => {
            let body = serde_json::json!({
                "message": format!("{explanation}<br /><br />\n\n\n"),
                "code": code,
                "title": title(status),
            });
            ("application/json", body.to_string())
        }
        BodyForm::Html => (
            "text/html; charset=UTF-8",
            format!(
                "<html>\n <head>\n  <title>{code}</title>\n </head>\n <body>\n  <h1>{code}</h1>\n  {}<br /><br />\n\n\n\n </body>\n</html>",
                escape_html(explanation)
            ),
        ),
        BodyForm::Plain => ("text/plain; charset=UTF-8", format!("{code}\n\n{explanation}\n\n   ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn json_body_keeps_webob_separators() {
        let (ctype, body) = render_body(StatusCode::CONFLICT, "Nope", BodyForm::Json);
        assert_eq!(ctype, "application/json");
        let value: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(value["message"], "Nope<br /><br />\n\n\n");
        assert_eq!(value["code"], "409 Conflict");
        assert_eq!(value["title"], "Conflict");
        let (_, plain) = render_body(StatusCode::PAYLOAD_TOO_LARGE, "Big", BodyForm::Plain);
        assert!(plain.starts_with("413 Request Entity Too Large\n\nBig"));
    }
}
