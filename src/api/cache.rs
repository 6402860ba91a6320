//! The cache management API (`/v2/cache…`, Glance's `cached_images.py`): each call checks
//! its policy rule first (403 with webob's plain body), then that this node has a cache
//! (404 "Caching via API is not supported at this site."), in Glance's order; queueing and
//! removing an entry look the image up before either.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{Ctx, PathParams};
use super::image_data::header_text;
use super::AppState;
use crate::cache::{CacheError, ImageCache};
use crate::domain::image::Image;
use crate::domain::policy::Action;
use crate::domain::{ImageStatus, RequestContext};

/// Which part `DELETE /v2/cache` empties.
const CLEAR_TARGET: &str = "x-image-cache-clear-target";

/// The policy check and the cache, as Glance's `_enforce` does them.
fn enforce<'a>(
    state: &'a AppState,
    ctx: &RequestContext,
    action: Action,
    image: Option<&Image>,
) -> Result<&'a std::sync::Arc<ImageCache>, ApiError> {
    if !state.images.allows_cache_action(ctx, action, image) {
        return Err(ApiError::plain(StatusCode::FORBIDDEN));
    }
    state.data.cache().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "Caching via API is not supported at this site.",
        )
    })
}

fn cache_failed(e: CacheError) -> ApiError {
    match e {
        CacheError::Repo(e) => crate::domain::DomainError::Repository(e).into(),
        CacheError::Io(e) => ApiError::plain(StatusCode::INTERNAL_SERVER_ERROR).caused_by(e),
    }
}

fn image_not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("Image {id} not found."))
}

/// The image as the caller may see it; `None` when it cannot.
async fn find_image(
    state: &AppState,
    ctx: &RequestContext,
    id: &str,
) -> Result<Option<Image>, ApiError> {
    match state.images.get(ctx, id).await {
        Ok(image) => Ok(Some(image)),
        Err(crate::domain::DomainError::Refused {
            kind: crate::domain::error::Refusal::NotFound,
            ..
        }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `GET /v2/cache`: this node's cached images and its queue.
pub async fn state(State(state): State<AppState>, Ctx(ctx): Ctx) -> Result<Json<Value>, ApiError> {
    let cache = enforce(&state, &ctx, Action::CacheList, None)?;
    let cache_state = cache.state().await.map_err(cache_failed)?;
    let cached: Vec<Value> = cache_state
        .cached
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "image_id": c.image_id,
                "last_accessed": timestamp(c.last_accessed),
                "last_modified": timestamp(c.last_modified),
                "size": c.size,
                "hits": c.hits,
                "checksum": c.checksum,
            })
        })
        .collect();
    Ok(Json(
        json!({"cached_images": cached, "queued_images": cache_state.queued}),
    ))
}

/// Seconds since the epoch, as Python's `datetime.timestamp()` gives them.
fn timestamp(t: chrono::DateTime<chrono::Utc>) -> f64 {
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6
}

/// `DELETE /v2/cache`: the cached files, the queue, or both (`x-image-cache-clear-target`:
/// `cache`, `queue`, or empty).
pub async fn clear(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let cache = enforce(&state, &ctx, Action::CacheDelete, None)?;
    let target = header_text(&headers, CLEAR_TARGET)
        .unwrap_or("")
        .to_ascii_lowercase();
    let (cached, queued) = match target.as_str() {
        "" => (true, true),
        "cache" => (true, false),
        "queue" => (false, true),
        _ => {
            return Err(ApiError::bad_request(
                "If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty \
                 string.",
            ))
        }
    };
    if cached {
        let removed = cache.clear_cached().await.map_err(cache_failed)?;
        tracing::info!(removed, "image cache cleared");
    }
    if queued {
        let removed = cache.clear_queue().map_err(cache_failed)?;
        tracing::info!(removed, "image cache queue cleared");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v2/cache/{image_id}`: queues an active image; this node fetches it in the
/// background (202).
pub async fn queue(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let image = find_image(&state, &ctx, &id)
        .await?
        .ok_or_else(|| image_not_found(&id))?;
    let cache = enforce(&state, &ctx, Action::CacheImage, Some(&image))?;
    if image.status != ImageStatus::Active {
        return Err(ApiError::bad_request(
            "Only images with status active can be targeted for queueing",
        ));
    }
    if cache.queue(&image.id).map_err(cache_failed)? {
        state.data.spawn_prefetch(image.id.to_string());
    }
    Ok(StatusCode::ACCEPTED)
}

/// `DELETE /v2/cache/{image_id}`: the image's cached file and queue entry (204). An image
/// the caller cannot see is still removed when this node holds it, as in Glance.
pub async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let image = find_image(&state, &ctx, &id).await?;
    if image.is_none() && !state.data.cache().is_some_and(|c| c.holds(&id)) {
        // Glance answers this way only when it has a cache (it fails otherwise).
        if state.data.cache().is_some() {
            return Err(image_not_found(&id));
        }
    }
    let cache = enforce(&state, &ctx, Action::CacheDelete, image.as_ref())?;
    cache.delete(&id).await.map_err(cache_failed)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2/cache/nodes/{image_id}`: the nodes caching the image.
pub async fn nodes(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
) -> Result<Json<Vec<String>>, ApiError> {
    let cache = enforce(&state, &ctx, Action::ListCachedNodes, None)?;
    let image = find_image(&state, &ctx, &id)
        .await?
        .ok_or_else(|| image_not_found(&id))?;
    let nodes = cache.nodes(&image.id).await.map_err(cache_failed)?;
    Ok(Json(nodes))
}

/// `POST /v2/cache/clean`: removes failed and stalled files (200, no body).
pub async fn clean(State(state): State<AppState>, Ctx(ctx): Ctx) -> Result<Response, ApiError> {
    let cache = enforce(&state, &ctx, Action::CacheClean, None)?;
    cache.clean().await.map_err(cache_failed)?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /v2/cache/prune`: brings the cache within `image_cache_max_size`.
pub async fn prune(State(state): State<AppState>, Ctx(ctx): Ctx) -> Result<Json<Value>, ApiError> {
    let cache = enforce(&state, &ctx, Action::CachePrune, None)?;
    let pruned = cache.prune().await.map_err(cache_failed)?;
    Ok(Json(json!({
        "total_files_pruned": pruned.files,
        "total_bytes_pruned": pruned.bytes,
    })))
}

/// The versions only a node with an image cache serves (`/v2.14/…`, `/v2.16/…`, `/v2.18/…`),
/// rewritten to `/v2/…` before routing.
pub fn version_alias(mut request: axum::extract::Request, cache: bool) -> axum::extract::Request {
    if !cache {
        return request;
    }
    let path = request.uri().path();
    let rewritten = ["/v2.14/", "/v2.16/", "/v2.18/"]
        .iter()
        .find_map(|prefix| path.strip_prefix(prefix))
        .map(|tail| match request.uri().query() {
            Some(q) => format!("/v2/{tail}?{q}"),
            None => format!("/v2/{tail}"),
        });
    if let Some(uri) = rewritten.and_then(|u| u.parse::<axum::http::Uri>().ok()) {
        *request.uri_mut() = uri;
    }
    request
}
