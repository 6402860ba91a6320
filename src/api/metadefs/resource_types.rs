//! `/v2/metadefs/resource_types` and a namespace's
//! `/v2/metadefs/namespaces/{namespace}/resource_types[/{name}]`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use super::{association_view, insert_time};
use crate::api::error::ApiError;
use crate::api::extract::{Ctx, JsonBody, PathParams};
use crate::api::AppState;

pub async fn list(State(state): State<AppState>, Ctx(ctx): Ctx) -> Result<Json<Value>, ApiError> {
    let types = state.metadefs.list_resource_types(&ctx).await?;
    let shown: Vec<Value> = types
        .iter()
        .map(|t| {
            let mut view = Map::new();
            view.insert("name".to_owned(), json!(t.name));
            insert_time(&mut view, "created_at", Some(t.created_at));
            insert_time(&mut view, "updated_at", t.updated_at);
            Value::Object(view)
        })
        .collect();
    Ok(Json(json!({"resource_types": shown})))
}

pub async fn associations(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(namespace): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let found = state.metadefs.list_associations(&ctx, &namespace).await?;
    let shown: Vec<Value> = found.iter().map(|a| association_view(a, true)).collect();
    Ok(Json(json!({"resource_type_associations": shown})))
}

pub async fn associate(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(namespace): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let created = state
        .metadefs
        .create_association(&ctx, &namespace, &body)
        .await?;
    Ok((StatusCode::CREATED, Json(association_view(&created, true))))
}

pub async fn dissociate(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams((namespace, name)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .metadefs
        .delete_association(&ctx, &namespace, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
