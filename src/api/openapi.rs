//! `/openapi.json`: the OpenAPI 3.1 description of every route, kept in the repository as
//! `docs/openapi.json` and compiled in, so the served document is always the reviewed one.
//! Unauthenticated, like the versions document: it describes the API, not its data.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as committed.
pub const DOCUMENT: &str = include_str!("../../docs/openapi.json");

pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
