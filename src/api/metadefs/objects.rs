//! `/v2/metadefs/namespaces/{namespace}/objects[/{object}]`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{list_query, object_view};
use crate::domain::metadefs::MetadefObject;

/// A written object as Glance answers the write: `required` and `properties` only when the
/// body gave them (a later read shows them, empty, either way).
fn written_view(namespace: &str, object: &MetadefObject, body: &Value) -> Value {
    let mut view = object_view(namespace, object);
    if let Some(fields) = view.as_object_mut() {
        for key in ["required", "properties"] {
            if body.get(key).is_none() {
                fields.remove(key);
            }
        }
    }
    view
}
use crate::api::error::ApiError;
use crate::api::extract::{Ctx, JsonBody, PathParams, QueryPairs};
use crate::api::AppState;

pub async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(namespace): PathParams<String>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let objects = state
        .metadefs
        .list_objects(&ctx, &namespace, &list_query(&pairs))
        .await?;
    Ok(Json(json!({
        "objects": objects.iter().map(|o| object_view(&namespace, o)).collect::<Vec<_>>(),
        // Glance's link, without its leading slash.
        "schema": "v2/schemas/metadefs/objects",
    })))
}

pub async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(namespace): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let object = state
        .metadefs
        .create_object(&ctx, &namespace, &body)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(written_view(&namespace, &object, &body)),
    ))
}

pub async fn show(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams((namespace, name)): PathParams<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let object = state.metadefs.show_object(&ctx, &namespace, &name).await?;
    Ok(Json(object_view(&namespace, &object)))
}

pub async fn replace(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams((namespace, name)): PathParams<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let object = state
        .metadefs
        .replace_object(&ctx, &namespace, &name, &body)
        .await?;
    Ok(Json(written_view(&namespace, &object, &body)))
}

pub async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams((namespace, name)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .metadefs
        .delete_object(&ctx, &namespace, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
