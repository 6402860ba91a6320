//! Interoperable import: `PUT /v2/images/{id}/stage`, `POST /v2/images/{id}/import` and
//! `GET /v2/info/import`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

use super::error::ApiError;
use super::extract::{Ctx, JsonBody, PathParams};
use super::image_data::{header_text, upload_request};
use super::AppState;
use crate::import::ImportRequest;

pub async fn stage(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
    request: Request,
) -> Result<StatusCode, ApiError> {
    // As Glance: a site without glance-direct has no stage, whatever the request says.
    state.imports.check_stage_enabled()?;
    state
        .imports
        .stage(&ctx, &id, upload_request(request)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn import(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let store_header = header_text(&headers, "x-image-meta-store").map(str::to_owned);
    state
        .imports
        .start(&ctx, &id, ImportRequest { body, store_header })
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /v2/info/import`: the enabled methods, in Glance's document.
pub async fn info(State(state): State<AppState>, Ctx(_ctx): Ctx) -> Json<serde_json::Value> {
    Json(json!({
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": state.imports.methods(),
        }
    }))
}

/// `POST /v2/images/{id}/locations` (API 2.17): 202 and an empty body, as Glance.
pub async fn add_location(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    state.imports.add_location(&ctx, &id, &body).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /v2/images/{id}/locations` (API 2.17): a bare JSON list.
pub async fn locations(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.imports.locations(&ctx, &id).await?).into_response())
}
