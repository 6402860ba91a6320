//! The versions document (`GET /` → 300, `GET /versions` → 200, unknown versions → 300) and
//! the health check.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

/// Versions in the order Glance 33 lists them without image cache or multiple stores.
const VERSIONS: [(&str, &str); 11] = [
    ("v2.15", "SUPPORTED"),
    ("v2.9", "SUPPORTED"),
    ("v2.17", "CURRENT"),
    ("v2.7", "SUPPORTED"),
    ("v2.6", "SUPPORTED"),
    ("v2.5", "SUPPORTED"),
    ("v2.4", "SUPPORTED"),
    ("v2.3", "SUPPORTED"),
    ("v2.2", "SUPPORTED"),
    ("v2.1", "SUPPORTED"),
    ("v2.0", "SUPPORTED"),
];

/// The document with links made absolute from the request's `Host`, as Glance does.
fn document(headers: &HeaderMap) -> Value {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let href = format!("http://{host}/v2/");
    let versions: Vec<Value> = VERSIONS
        .iter()
        .map(|(id, status)| json!({"id": id, "status": status, "links": [{"rel": "self", "href": href}]}))
        .collect();
    json!({ "versions": versions })
}

pub async fn multiple_choices(headers: HeaderMap) -> Response {
    (StatusCode::MULTIPLE_CHOICES, Json(document(&headers))).into_response()
}

pub async fn list(headers: HeaderMap) -> Json<Value> {
    Json(document(&headers))
}

/// oslo.middleware's health check: `OK`, no authentication. A node whose metadata database
/// does not answer (down, or every pooled connection busy) reports itself degraded with a 503,
/// so that a load balancer stops sending it requests it could only refuse.
pub async fn healthcheck(State(state): State<AppState>) -> Response {
    match state.images.health().await {
        Ok(()) => (StatusCode::OK, "OK").into_response(),
        Err(e) => {
            tracing::warn!(error = ?e.to_string(), "health check: degraded");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "degraded: the metadata database does not answer",
            )
                .into_response()
        }
    }
}
