//! `/metrics`: the Prometheus text exposition of `crate::metrics`, without authentication
//! (like `/healthcheck`, for a scraper that holds no token); 404 when
//! `[DEFAULT] metrics_enabled` is off.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AppState;

pub async fn expose(State(state): State<AppState>) -> Response {
    let Some(database) = &state.metrics else {
        return ApiError::plain(StatusCode::NOT_FOUND).into_response();
    };
    let text = crate::metrics::global().render(&database.pool_connections());
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}
