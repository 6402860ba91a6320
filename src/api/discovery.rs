//! `GET /v2/info/stores` and `/v2/info/stores/detail`: the stores a multi-store deployment
//! offers, and `DELETE /v2/stores/{store}/{image}`, removing one store's copy. Without
//! `enabled_backends` all are 404, as in Glance.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{Ctx, PathParams};
use super::AppState;
use crate::domain::policy::Action;

fn not_multi_store() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "Multi backend is not supported at this site.",
    )
}

pub async fn stores(
    State(state): State<AppState>,
    Ctx(_ctx): Ctx,
) -> Result<Json<Value>, ApiError> {
    let stores = state.data.stores();
    if !stores.multi() {
        return Err(not_multi_store());
    }
    Ok(Json(stores.info(false)))
}

/// Types, weights and driver options: for administrators and services only (Glance's
/// `stores_info_detail` rule).
pub async fn stores_detail(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<Value>, ApiError> {
    let stores = state.data.stores();
    if !stores.multi() {
        return Err(not_multi_store());
    }
    state
        .images
        .authorize_global(&ctx, Action::StoresInfoDetail)?;
    Ok(Json(stores.info(true)))
}

/// `GET /v2/info/usage`: the caller's project's unified limits and usage (an empty map
/// without `use_keystone_limits`), as Glance shows them.
pub async fn usage(State(state): State<AppState>, Ctx(ctx): Ctx) -> Result<Json<Value>, ApiError> {
    let usage: serde_json::Map<String, Value> = state
        .images
        .usage(&ctx)
        .await?
        .into_iter()
        .map(|(resource, limit, usage)| {
            (
                resource.name().to_owned(),
                json!({"limit": limit, "usage": usage}),
            )
        })
        .collect();
    Ok(Json(json!({ "usage": usage })))
}

pub async fn delete_from_store(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams((store_id, image_id)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .data
        .delete_from_store(&ctx, &store_id, &image_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
