//! The tasks API and an image's tasks.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};

use super::error::ApiError;
use super::extract::{Ctx, JsonBody, PathParams, QueryPairs};
use super::AppState;
use crate::import::tasks::task_view;

pub async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let page = state.images.page_limits();
    let tasks = state.imports.list_tasks(&ctx, &pairs, page).await?;
    Ok(Json(tasks).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.imports.task(&ctx, &id).await?).into_response())
}

pub async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let task = state.imports.create_task(&ctx, &body).await?;
    let mut response = (StatusCode::CREATED, Json(task_view(&task))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v2/tasks/{}", task.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Tasks are never deleted through the API: they expire.
pub async fn delete(State(state): State<AppState>, Ctx(ctx): Ctx) -> Result<Response, ApiError> {
    state.imports.delete_task(&ctx)?;
    let mut error = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "This operation is currently not permitted on Glance Tasks. They are auto deleted after reaching the time based on their expires_at property.",
    );
    error
        .headers
        .push((header::ALLOW, HeaderValue::from_static("GET")));
    Err(error)
}

pub async fn image_tasks(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.imports.image_tasks(&ctx, &id).await?).into_response())
}
