//! `/v2/metadefs/namespaces/{namespace}/properties[/{property}]`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::property_map;
use crate::api::error::ApiError;
use crate::api::extract::{Ctx, JsonBody, PathParams, QueryPairs};
use crate::api::AppState;
use crate::domain::metadefs::named_definition;

pub async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(namespace): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let properties = state.metadefs.list_properties(&ctx, &namespace).await?;
    Ok(Json(json!({"properties": property_map(&properties)})))
}

pub async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(namespace): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let property = state
        .metadefs
        .create_property(&ctx, &namespace, &body)
        .await?;
    Ok((StatusCode::CREATED, Json(named_definition(&property))))
}

pub async fn show(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams((namespace, name)): PathParams<(String, String)>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let resource_type = pairs
        .iter()
        .rev()
        .find(|(k, _)| k == "resource_type")
        .map(|(_, v)| v.as_str());
    let property = state
        .metadefs
        .show_property(&ctx, &namespace, &name, resource_type)
        .await?;
    Ok(Json(named_definition(&property)))
}

pub async fn replace(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams((namespace, name)): PathParams<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let property = state
        .metadefs
        .replace_property(&ctx, &namespace, &name, &body)
        .await?;
    Ok(Json(named_definition(&property)))
}

pub async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams((namespace, name)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .metadefs
        .delete_property(&ctx, &namespace, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
