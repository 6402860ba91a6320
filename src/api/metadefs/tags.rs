//! `/v2/metadefs/namespaces/{namespace}/tags[/{tag}]`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use super::{list_query, tag_names, tag_view};
use crate::api::error::ApiError;
use crate::api::extract::{Ctx, JsonBody, PathParams, QueryPairs};
use crate::api::AppState;

/// oslo.utils' `bool_from_string`, as Glance reads `X-Openstack-Append`.
fn truthy(headers: &HeaderMap) -> bool {
    headers
        .get("x-openstack-append")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| matches!(v.as_str(), "1" | "t" | "true" | "on" | "y" | "yes"))
}

pub async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(namespace): PathParams<String>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let tags = state
        .metadefs
        .list_tags(&ctx, &namespace, &list_query(&pairs))
        .await?;
    Ok(Json(json!({"tags": tag_names(&tags)})))
}

pub async fn create_many(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(namespace): PathParams<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tags = state
        .metadefs
        .create_tags(&ctx, &namespace, &body, truthy(&headers))
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"tags": tag_names(&tags)}))))
}

pub async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams((namespace, name)): PathParams<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tag = state.metadefs.create_tag(&ctx, &namespace, &name).await?;
    Ok((StatusCode::CREATED, Json(tag_view(&tag))))
}

pub async fn show(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams((namespace, name)): PathParams<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tag = state.metadefs.show_tag(&ctx, &namespace, &name).await?;
    Ok(Json(tag_view(&tag)))
}

pub async fn rename(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams((namespace, name)): PathParams<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let tag = state
        .metadefs
        .rename_tag(&ctx, &namespace, &name, &body)
        .await?;
    Ok(Json(tag_view(&tag)))
}

pub async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams((namespace, name)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.metadefs.delete_tag(&ctx, &namespace, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
