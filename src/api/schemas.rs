//! `/v2/schemas/…`: the documents built at start-up by `domain::schema`.

use axum::extract::State;
use axum::Json;
use serde_json::Value;

use super::AppState;

pub async fn image(State(state): State<AppState>) -> Json<Value> {
    Json(state.images.schemas().image.schema().clone())
}

pub async fn images(State(state): State<AppState>) -> Json<Value> {
    Json(state.images.schemas().images.clone())
}

pub async fn member(State(state): State<AppState>) -> Json<Value> {
    Json(state.images.schemas().member.clone())
}

pub async fn members(State(state): State<AppState>) -> Json<Value> {
    Json(state.images.schemas().members.clone())
}

pub async fn task() -> Json<Value> {
    Json(crate::import::tasks::task_schema())
}

pub async fn tasks() -> Json<Value> {
    Json(crate::import::tasks::tasks_schema())
}
