//! `/v2/images/{id}/tags/{tag}`.

use axum::extract::State;
use axum::http::StatusCode;

use super::error::ApiError;
use super::extract::{Ctx, PathParams};
use super::AppState;

pub async fn add(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams((id, tag)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.images.add_tag(&ctx, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams((id, tag)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.images.remove_tag(&ctx, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}
