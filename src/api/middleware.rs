//! Request-wide layers: request ids and the request's log span, URL normalisation (version
//! aliases, HEAD), identity, and turning error explanations into webob-style bodies.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::body::Body;
use axum::body::HttpBody as _;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::field;

use crate::telemetry::Untrusted;
use tracing::Instrument as _;

use super::error::{ApiError, ErrorMessage, ErrorSource};
use super::error_body::{body_form, render_body, RequestFacts};
use super::AppState;
use crate::auth::Presented;
use crate::domain::error::Message;

pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";
/// Glance's `max_request_id_length`.
const MAX_REQUEST_ID_LENGTH: usize = 64;

/// Where `record_route` leaves the matched route for `request_id`, which runs before
/// routing and so cannot see `MatchedPath` itself. A slot rather than a response extension:
/// a handler that panics still has its route counted.
#[derive(Debug, Clone, Default)]
struct RouteSlot(Arc<OnceLock<MatchedPath>>);

/// The id of the current request, `req-<uuid>` unless the client sent its own.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn request_id_from(request: &Request) -> String {
    let inbound = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_REQUEST_ID_LENGTH
                && v.bytes().all(|b| b.is_ascii_graphic())
        });
    match inbound {
        Some(id) if id.starts_with("req-") => id.to_owned(),
        Some(id) => format!("req-{id}"),
        None => format!("req-{}", uuid::Uuid::new_v4()),
    }
}

/// Assigns the request id, echoes it on every response, and logs one line per request. The
/// request runs inside a span carrying its id, method and (once routed) route, so every line
/// logged while it runs names the request; an error's internal source (`ErrorSource`) is
/// logged here, once, on the request's own line.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request_id_from(&request);
    let path = request.uri().path().to_owned();
    // At error level so that the span is enabled whenever any event is: a warning logged
    // inside a request names it even under `RUST_LOG=warn`.
    let span = tracing::error_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        route = field::Empty,
    );
    request.extensions_mut().insert(RequestId(id.clone()));
    let route = RouteSlot::default();
    request.extensions_mut().insert(route.clone());
    let method = request.method().clone();
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let elapsed = started.elapsed();
    crate::metrics::global().record_request(
        route
            .0
            .get()
            .map_or(crate::metrics::UNMATCHED, MatchedPath::as_str),
        method.as_str(),
        response.status().as_u16(),
        elapsed,
    );
    let millis = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| log_request(&response, &path, millis));
    response
}

/// The request's line: `request` (info), `request refused` (4xx: info, or warn when
/// something failed inside), `request failed` (5xx with an error: error level). `error` is the
/// message sent to the client, `source` what failed inside.
fn log_request(response: &Response, path: &str, millis: f64) {
    let status = response.status().as_u16();
    let why = response
        .extensions()
        .get::<ErrorMessage>()
        .map(|m| m.0.text());
    let source = response
        .extensions()
        .get::<ErrorSource>()
        .map(ErrorSource::text);
    let error = why.map(|text| field::debug(Untrusted(text)));
    let source = source.as_deref().map(|text| field::debug(Untrusted(text)));
    match (error.is_some() || source.is_some(), status) {
        (true, 500..) => {
            tracing::error!(path = %path, status, millis, error, source, "request failed")
        }
        (true, _) if source.is_some() => {
            tracing::warn!(path = %path, status, millis, error, source, "request refused")
        }
        (true, _) => tracing::info!(path = %path, status, millis, error, "request refused"),
        (false, _) => tracing::info!(path = %path, status, millis, "request"),
    }
}

/// Names the matched route (`/v2/images/{image_id}`) in the request's span and for its
/// metrics.
pub async fn record_route(request: Request, next: Next) -> Response {
    if let Some(route) = request.extensions().get::<MatchedPath>() {
        tracing::Span::current().record("route", field::display(route.as_str()));
        if let Some(slot) = request.extensions().get::<RouteSlot>() {
            let _ = slot.0.set(route.clone());
        }
    }
    next.run(request).await
}

/// Version prefixes that Glance (without cache) serves as `/v2`; multi-store adds more.
const VERSION_ALIASES: [&str; 11] = [
    "v2.0", "v2.1", "v2.2", "v2.3", "v2.4", "v2.5", "v2.6", "v2.7", "v2.9", "v2.15", "v2.17",
];
const MULTI_STORE_ALIASES: [&str; 5] = ["v2.8", "v2.10", "v2.11", "v2.12", "v2.13"];

/// Rewrites what must be decided before routing: `/v2.N/…` aliases become `/v2/…`, and `HEAD`
/// on the API (which Glance does not serve) becomes a method no route has, so that routing
/// answers 405 with the path's `Allow` list.
pub fn normalize(mut request: Request, multi_store: bool) -> Request {
    let path = request.uri().path();
    let rewritten = path.strip_prefix('/').and_then(|rest| {
        let (prefix, tail) = rest.split_once('/').unwrap_or((rest, ""));
        (VERSION_ALIASES.contains(&prefix)
            || (multi_store && MULTI_STORE_ALIASES.contains(&prefix)))
        .then(|| format!("/v2/{tail}"))
    });
    if let Some(new_path) = rewritten {
        let path_and_query = match request.uri().query() {
            Some(q) => format!("{new_path}?{q}"),
            None => new_path,
        };
        if let Ok(uri) = path_and_query.parse::<Uri>() {
            *request.uri_mut() = uri;
        }
    }
    if request.method() == Method::HEAD && request.uri().path().starts_with("/v2/") {
        if let Ok(method) = Method::from_bytes(b"HEAD-NOT-SERVED") {
            *request.method_mut() = method;
        }
    }
    request
}

/// Builds the `RequestContext` for `/v2` requests according to `[paste_deploy] flavor`.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| format!("req-{}", uuid::Uuid::new_v4()));
    let presented = Presented {
        headers: request.headers(),
        method: request.method(),
        path: request.uri().path(),
    };
    match state.auth.identify(presented, request_id).await {
        Ok(mut context) => {
            context.is_admin = state.images.is_admin(&context);
            request.extensions_mut().insert(context);
            next.run(request).await
        }
        Err(failure) => ApiError::from(failure).into_response(),
    }
}

/// Writes the body of every error response, in the form the request's `Accept` asks for.
pub async fn render_error_bodies(request: Request, next: Next) -> Response {
    let form = body_form(request.headers());
    let had_body = has_body(&request);
    let facts = RequestFacts {
        method: request.method().to_string(),
        content_type: request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("None")
            .to_owned(),
    };
    let mut response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // A refusal may come before the body was read (a 415 or 409 upload): the rest of it is
    // still on the connection, so say that it closes instead of leaving the client to find out.
    if had_body {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let message = match response.extensions_mut().remove::<ErrorMessage>() {
        Some(ErrorMessage(message)) => message,
        // Errors produced by routing (404, 405) carry no message and an empty body.
        None if response.body().size_hint().exact() == Some(0) => Message::Default,
        None => return response,
    };
    if status == StatusCode::METHOD_NOT_ALLOWED {
        tidy_allow_header(&mut response);
    }
    let (content_type, body) = render_body(status, &message, &facts, form);
    // Keep the message for the access log.
    response.extensions_mut().insert(ErrorMessage(message));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().remove(header::CONTENT_LENGTH);
    *response.body_mut() = Body::from(body);
    response
}

/// Rejects a body on requests that take none (Glance's `body_reject` routes): GET and DELETE
/// of single resources and schemas, and the image actions.
pub async fn reject_unexpected_body(request: Request, next: Next) -> Response {
    let has_body = has_body(&request);
    let path = request.uri().path();
    let takes_none = match *request.method() {
        Method::GET | Method::DELETE => path != "/v2/images",
        Method::POST => path.contains("/actions/"),
        _ => false,
    };
    if has_body && takes_none {
        return ApiError::bad_request("A body is not expected with this request.").into_response();
    }
    next.run(request).await
}

/// Whether the request announces a body (a length above zero, or chunked).
fn has_body(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > 0)
        || request.headers().contains_key(header::TRANSFER_ENCODING)
}

/// Glance lists a path's methods as `GET, PATCH, DELETE`; routing adds HEAD for GET routes,
/// which this API does not serve.
fn tidy_allow_header(response: &mut Response) {
    let Some(allow) = response
        .headers()
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    let methods: Vec<&str> = allow
        .split(',')
        .map(str::trim)
        .filter(|m| *m != "HEAD" && !m.is_empty())
        .collect();
    if let Ok(value) = HeaderValue::from_str(&methods.join(", ")) {
        response.headers_mut().insert(header::ALLOW, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_aliases_and_head_are_normalised() {
        let req = |method: Method, uri: &str| {
            normalize(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(Body::empty())
                    .expect("request"),
                false,
            )
        };
        assert_eq!(
            req(Method::GET, "/v2.1/images?limit=1").uri(),
            "/v2/images?limit=1"
        );
        assert_eq!(
            req(Method::GET, "/v2.17/schemas/image").uri(),
            "/v2/schemas/image"
        );
        assert_eq!(req(Method::GET, "/v2.8/images").uri(), "/v2.8/images");
        assert_eq!(
            req(Method::HEAD, "/v2/images").method().as_str(),
            "HEAD-NOT-SERVED"
        );
        assert_eq!(req(Method::HEAD, "/healthcheck").method(), Method::HEAD);
    }

    /// Collects what the log subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut buffer) = self.0.lock() {
                buffer.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Runs `work` on a current-thread runtime with a subscriber that captures every line.
    fn logged<F: std::future::Future>(work: impl FnOnce() -> F) -> (String, F::Output) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let output = tracing::subscriber::with_default(subscriber, || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime")
                .block_on(work())
        });
        let log = String::from_utf8(captured.0.lock().expect("log").clone()).expect("UTF-8");
        (log, output)
    }

    #[test]
    fn client_text_cannot_forge_log_lines() {
        use tower::ServiceExt as _;
        let (log, ()) = logged(|| async {
            let app = axum::Router::new()
                .route(
                    "/x",
                    axum::routing::get(|| async {
                        ApiError::bad_request(
                            "No image found with ID x\n2026-01-01T00:00:00Z ERROR fake\0",
                        )
                    }),
                )
                .layer(axum::middleware::from_fn(request_id));
            let request = Request::get("/x").body(Body::empty()).expect("request");
            let response = app.oneshot(request).await.expect("infallible");
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        });
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(!log.contains('\0'), "{log}");
        assert!(log.contains(r"ID x\n2026"), "{log}");
    }

    #[test]
    fn every_line_of_a_request_names_it_and_an_internal_failure_is_logged_once() {
        use tower::ServiceExt as _;
        let (log, body) = logged(|| async {
            let app = axum::Router::new()
                .route(
                    "/images/{id}",
                    axum::routing::get(|| async {
                        tracing::warn!("a warning on the way");
                        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "The server failed.")
                            .caused_by(std::io::Error::other(
                                "relation \"secret_table\" does not exist",
                            ))
                    }),
                )
                .route_layer(axum::middleware::from_fn(record_route))
                .layer(axum::middleware::from_fn(render_error_bodies))
                .layer(axum::middleware::from_fn(request_id));
            let request = Request::get("/images/abc")
                .header(REQUEST_ID_HEADER, "req-test-42")
                .header(header::ACCEPT, "application/json")
                .body(Body::empty())
                .expect("request");
            let response = app.oneshot(request).await.expect("infallible");
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let body = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .expect("body");
            String::from_utf8(body.to_vec()).expect("UTF-8")
        });
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2, "{log}");
        for line in &lines {
            assert!(line.contains("request_id=req-test-42"), "{line}");
            assert!(line.contains("method=GET"), "{line}");
            assert!(line.contains("route=/images/{id}"), "{line}");
        }
        assert!(
            lines[1].contains("ERROR") && lines[1].contains("request failed"),
            "{log}"
        );
        assert_eq!(log.matches("secret_table").count(), 1, "{log}");
        assert!(body.contains("The server failed."), "{body}");
        assert!(!body.contains("secret_table"), "{body}");
    }
}
