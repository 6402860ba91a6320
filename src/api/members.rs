//! `/v2/images/{id}/members` and `/v2/images/{id}/members/{member}`: parsing Glance's request
//! bodies and rendering memberships; the rules live in `domain::members`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{Ctx, JsonBody, PathParams};
use super::AppState;
use crate::domain::repository::Member;

/// Glance's timestamp format for members, as for images.
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

fn view(member: &Member) -> Value {
    json!({
        "created_at": member.created_at.format(TIME_FORMAT).to_string(),
        "image_id": member.image_id,
        "member_id": member.member_id,
        "schema": "/v2/schemas/member",
        "status": member.status.as_str(),
        "updated_at": member.updated_at.format(TIME_FORMAT).to_string(),
    })
}

pub async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let members = state.images.list_members(&ctx, &id).await?;
    Ok(Json(json!({
        "members": members.iter().map(view).collect::<Vec<_>>(),
        "schema": "/v2/schemas/members",
    })))
}

pub async fn show(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams((id, member)): PathParams<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let member = state.images.show_member(&ctx, &id, &member).await?;
    Ok(Json(view(&member)))
}

/// `{"member": "<project>"}`, with Glance's three refusals.
fn member_in(body: &Value) -> Result<&str, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::bad_request(
            "Expected a member in the form: {\"member\": \"image_id\"}",
        ));
    };
    match object.get("member") {
        None => Err(ApiError::bad_request("Member to be added not specified")),
        Some(Value::String(member)) if !member.is_empty() => Ok(member),
        Some(Value::String(_) | Value::Null) => Err(ApiError::bad_request("Member can't be empty")),
        Some(_) => Err(ApiError::bad_request(
            "Expected a member in the form: {\"member\": \"image_id\"}",
        )),
    }
}

pub async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let member = member_in(&body)?;
    let added = state.images.add_member(&ctx, &id, member).await?;
    state.data.share_data_of(&ctx, &id).await?;
    Ok(Json(view(&added)))
}

pub async fn update(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams((id, member)): PathParams<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::bad_request(
            "Expected a status in the form: {\"status\": \"status\"}",
        ));
    };
    let status = match object.get("status") {
        None => return Err(ApiError::bad_request("Status not specified")),
        Some(Value::String(status)) => status.as_str(),
        Some(_) => "",
    };
    let updated = state
        .images
        .update_member(&ctx, &id, &member, status)
        .await?;
    Ok(Json(view(&updated)))
}

pub async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams((id, member)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.images.remove_member(&ctx, &id, &member).await?;
    state.data.share_data_of(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
