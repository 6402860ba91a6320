//! The versions document (`GET /` → 300, `GET /versions` → 200, unknown versions → 300).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

/// Versions in the order Glance 33 lists them; multi-store adds 2.8 and 2.10–2.13 after
/// 2.15, and an image cache (`image_cache_dir`) makes 2.18 current, with 2.14–2.17.
pub fn versions(multi_store: bool, cache: bool) -> Vec<(&'static str, &'static str)> {
    let mut versions = if cache {
        vec![
            ("v2.18", "CURRENT"),
            ("v2.17", "SUPPORTED"),
            ("v2.16", "SUPPORTED"),
            ("v2.15", "SUPPORTED"),
            ("v2.14", "SUPPORTED"),
        ]
    } else {
        vec![("v2.15", "SUPPORTED")]
    };
    if multi_store {
        versions
            .extend(["v2.13", "v2.12", "v2.11", "v2.10", "v2.9", "v2.8"].map(|v| (v, "SUPPORTED")));
    } else {
        versions.push(("v2.9", "SUPPORTED"));
    }
    if !cache {
        versions.push(("v2.17", "CURRENT"));
    }
    versions.extend(
        [
            "v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0",
        ]
        .map(|v| (v, "SUPPORTED")),
    );
    versions
}

/// The document with links made absolute from the request's `Host`, as Glance does.
fn document(headers: &HeaderMap, multi_store: bool, cache: bool) -> Value {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let href = format!("http://{host}/v2/");
    let versions: Vec<Value> = versions(multi_store, cache)
        .iter()
        .map(|(id, status)| json!({"id": id, "status": status, "links": [{"rel": "self", "href": href}]}))
        .collect();
    json!({ "versions": versions })
}

pub async fn multiple_choices(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let multi = state.data.stores().multi();
    let cache = state.data.cache().is_some();
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(document(&headers, multi, cache)),
    )
        .into_response()
}

/// What a path outside the API gets: the versions document, 300, without `Location`.
pub async fn unknown_version(state: State<AppState>, headers: HeaderMap) -> Response {
    let mut response = multiple_choices(state, headers).await;
    response.headers_mut().remove(header::LOCATION);
    response
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    Json(document(
        &headers,
        state.data.stores().multi(),
        state.data.cache().is_some(),
    ))
}
