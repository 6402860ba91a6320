//! `/v2/images` and `/v2/images/{id}`: parse, call `ImageService`, render.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::error::ApiError;
use super::extract::{Ctx, JsonBody, PathParams, QueryPairs};
use super::AppState;
use crate::domain::image::{Image, ImageLocation};
use crate::domain::patch::{parse_patch, PatchDialect};

/// Glance's timestamp format for image resources.
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Which of an image's optional attributes this server shows, and how.
#[derive(Debug, Clone, Default)]
pub struct Shown {
    /// Several stores: `stores`, ordered by weight.
    pub multi_store: bool,
    /// `show_image_direct_url`: `direct_url`, the first active location, when there is one.
    pub direct_url: bool,
    /// `show_multiple_locations`: `locations`, every active location (an empty list when none).
    pub locations: bool,
    /// Store weights (multi-store): locations of heavier stores come first, as in Glance.
    pub weights: Vec<(String, i64)>,
}

impl Shown {
    /// Whether image reads must fetch locations.
    pub fn needs_locations(&self) -> bool {
        self.multi_store || self.direct_url || self.locations
    }

    fn weight(&self, store: Option<&str>) -> i64 {
        store
            .and_then(|id| self.weights.iter().find(|(s, _)| s == id))
            .map_or(0, |(_, w)| *w)
    }
}

/// A location as clients see it: no credentials in the URL.
struct LocationView<'a>(&'a ImageLocation);

impl LocationView<'_> {
    fn url(&self) -> String {
        match glint_store::Location::parse(&self.0.url) {
            Ok(location) => location.without_credentials(),
            Err(_) => glint_store::strip_userinfo(&self.0.url),
        }
    }
}

impl Serialize for LocationView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("url", &self.url())?;
        map.serialize_entry("metadata", &self.0.metadata)?;
        map.end()
    }
}

/// Serialises an image as Glance does: extra properties first, then the core attributes
/// (all present, `null` when unset), the locations when configured, tags and links. Written
/// straight to the output, with no intermediate JSON tree, because lists of 1000 images are
/// common. `stores` is shown only with several stores, as Glance.
pub struct ImageView<'a> {
    pub image: &'a Image,
    pub shown: &'a Shown,
}

impl Serialize for ImageView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let image = self.image;
        let shown = self.shown;
        let mut map = serializer.serialize_map(Some(image.properties.len() + 24))?;
        // Where the data was staged names an API node: Glance never shows it.
        for (key, value) in image
            .properties
            .iter()
            .filter(|(key, _)| key.as_str() != crate::domain::tasks::props::STAGE_HOST)
        {
            map.serialize_entry(key, value)?;
        }
        let id = image.id.as_str();
        map.serialize_entry("name", &image.name)?;
        map.serialize_entry("disk_format", &image.disk_format)?;
        map.serialize_entry("container_format", &image.container_format)?;
        map.serialize_entry("visibility", image.visibility.as_str())?;
        map.serialize_entry("size", &image.size)?;
        map.serialize_entry("virtual_size", &image.virtual_size)?;
        map.serialize_entry("status", image.status.as_str())?;
        map.serialize_entry("checksum", &image.checksum)?;
        map.serialize_entry("protected", &image.protected)?;
        map.serialize_entry("min_ram", &image.min_ram)?;
        map.serialize_entry("min_disk", &image.min_disk)?;
        map.serialize_entry("owner", &image.owner)?;
        map.serialize_entry("os_hidden", &image.os_hidden)?;
        map.serialize_entry("os_hash_algo", &image.os_hash_algo)?;
        map.serialize_entry("os_hash_value", &image.os_hash_value)?;
        map.serialize_entry("id", id)?;
        map.serialize_entry(
            "created_at",
            &image.created_at.format(TIME_FORMAT).to_string(),
        )?;
        map.serialize_entry(
            "updated_at",
            &image.updated_at.format(TIME_FORMAT).to_string(),
        )?;
        if shown.direct_url || shown.locations {
            // Heavier stores first, in the order added among equals (a stable sort).
            let mut locations: Vec<&ImageLocation> = image.locations.iter().collect();
            if shown.multi_store {
                locations.sort_by_key(|l| std::cmp::Reverse(shown.weight(l.store())));
            }
            if shown.locations {
                let views: Vec<LocationView<'_>> =
                    locations.iter().map(|l| LocationView(l)).collect();
                map.serialize_entry("locations", &views)?;
            }
            if let Some(first) = locations.first().filter(|_| shown.direct_url) {
                map.serialize_entry("direct_url", &LocationView(first).url())?;
            }
        }
        map.serialize_entry("tags", &image.tags)?;
        if shown.multi_store && !image.stores.is_empty() {
            map.serialize_entry("stores", &image.stores.join(","))?;
        }
        map.serialize_entry("self", &format!("/v2/images/{id}"))?;
        map.serialize_entry("file", &format!("/v2/images/{id}/file"))?;
        map.serialize_entry("schema", "/v2/schemas/image")?;
        map.end()
    }
}

/// The image list page: `{"images": […], "first": …, "schema": …, "next"?: …}`.
struct ImageListView<'a> {
    images: &'a [Image],
    shown: &'a Shown,
    first: String,
    next: Option<String>,
}

impl Serialize for ImageListView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let images: Vec<ImageView<'_>> = self
            .images
            .iter()
            .map(|image| ImageView {
                image,
                shown: self.shown,
            })
            .collect();
        map.serialize_entry("images", &images)?;
        map.serialize_entry("first", &self.first)?;
        map.serialize_entry("schema", "/v2/schemas/images")?;
        if let Some(next) = &self.next {
            map.serialize_entry("next", next)?;
        }
        map.end()
    }
}

/// `/v2/images` with `params` (without any marker) and then `marker` if given.
fn list_link(params: &[(String, String)], marker: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in params.iter().filter(|(k, _)| k != "marker") {
        query.append_pair(key, value);
    }
    if let Some(marker) = marker {
        query.append_pair("marker", marker);
    }
    let query = query.finish();
    if query.is_empty() {
        "/v2/images".to_owned()
    } else {
        format!("/v2/images?{query}")
    }
}

pub async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    QueryPairs(params): QueryPairs,
) -> Result<Response, ApiError> {
    let page = state.images.list(&ctx, &params).await?;
    let view = ImageListView {
        images: &page.images,
        shown: &state.shown,
        first: list_link(&params, None),
        next: page
            .next_marker
            .as_deref()
            .map(|m| list_link(&params, Some(m))),
    };
    Ok(Json(view).into_response())
}

pub async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let Value::Object(body) = body else {
        return Err(ApiError::bad_request(
            "Body must be a JSON object describing the image.",
        ));
    };
    let image = state.images.create(&ctx, &body).await?;
    let mut response = (StatusCode::CREATED, Json(state.view(&image))).into_response();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or(&state.advertised_host);
    if let Ok(location) = HeaderValue::from_str(&format!("http://{host}/v2/images/{}", image.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    let methods = state.imports.methods();
    if !methods.is_empty() {
        if let Ok(methods) = HeaderValue::from_str(&methods.join(",")) {
            response.headers_mut().insert(
                HeaderName::from_static("openstack-image-import-methods"),
                methods,
            );
        }
    }
    let stores = state.data.stores();
    if stores.multi() {
        let ids: Vec<&str> = stores.entries().iter().map(|e| e.id.as_str()).collect();
        if let Ok(ids) = HeaderValue::from_str(&ids.join(",")) {
            response
                .headers_mut()
                .insert(HeaderName::from_static("openstack-image-store-ids"), ids);
        }
    }
    Ok(response)
}

pub async fn show(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let image = state.images.show(&ctx, &id).await?;
    Ok(Json(state.view(&image)).into_response())
}

pub async fn update(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let dialect = PatchDialect::from_content_type(content_type).ok_or_else(|| {
        ApiError::with_detail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Image PATCH expects Content-Type one of: {ACCEPT_PATCH}"),
        )
        .with_header(HeaderName::from_static("accept-patch"), ACCEPT_PATCH)
    })?;
    let changes = parse_patch(&body, dialect).map_err(ApiError::from)?;
    // Locations are rows of their own, checked with their stores: changed after the rest.
    let (locations, attributes): (Vec<_>, Vec<_>) = changes
        .into_iter()
        .partition(|c| c.path.first().map(String::as_str) == Some("locations"));
    let mut image = state.images.update(&ctx, &id, dialect, &attributes).await?;
    if !locations.is_empty() {
        state
            .imports
            .patch_locations(&ctx, &id, &locations, state.shown.locations)
            .await?;
        image = state.images.show(&ctx, &id).await?;
    }
    state.data.share_data(&ctx, &image).await?;
    Ok(Json(state.view(&image)).into_response())
}

/// `Accept-Patch` on a 415: both media types, in Glance's order (a test keeps it in step with the
/// constants in `domain::patch`).
const ACCEPT_PATCH: &str =
    "application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch";

pub async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.data.delete_image(&ctx, &id).await?;
    // Other nodes drop their copies in their maintenance round.
    state.data.forget_cached(&id).await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn deactivate(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.images.set_active(&ctx, &id, false).await?;
    state.data.forget_cached(&id).await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn reactivate(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.images.set_active(&ctx, &id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::patch::{MEDIA_TYPE_V2_0, MEDIA_TYPE_V2_1};

    #[test]
    fn accept_patch_lists_both_media_types() {
        assert_eq!(
            ACCEPT_PATCH,
            format!("{MEDIA_TYPE_V2_0}, {MEDIA_TYPE_V2_1}")
        );
    }

    #[test]
    fn list_links_keep_the_query_and_replace_the_marker() {
        let params = vec![
            ("limit".to_owned(), "2".to_owned()),
            ("marker".to_owned(), "old".to_owned()),
        ];
        assert_eq!(list_link(&params, None), "/v2/images?limit=2");
        assert_eq!(
            list_link(&params, Some("new")),
            "/v2/images?limit=2&marker=new"
        );
        assert_eq!(list_link(&[], None), "/v2/images");
    }
}
