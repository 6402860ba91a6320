//! `/v2/images/{id}/file`: upload and download of image data.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::{Ctx, PathParams};
use super::AppState;
use crate::datapath::UploadRequest;

/// Glance's header for the client's statement of the image size.
const IMAGE_SIZE_HEADER: &str = "x-openstack-image-size";

pub(super) fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

pub async fn upload(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
    request: Request,
) -> Result<StatusCode, ApiError> {
    state
        .data
        .upload(&ctx, &id, upload_request(request)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An image body as `PUT /file` and `PUT /stage` take it: `application/octet-stream` only
/// (415 otherwise), with the client's statement of its size.
pub(super) fn upload_request(
    request: Request,
) -> Result<UploadRequest<axum::body::BodyDataStream>, ApiError> {
    let headers = request.headers();
    let content_type = header_text(headers, header::CONTENT_TYPE).unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/octet-stream") {
        return Err(ApiError::with_detail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Invalid content type {content_type}"),
        ));
    }
    let declared_size = match header_text(headers, IMAGE_SIZE_HEADER) {
        None | Some("") => None,
        Some(value) => Some(value.parse::<u64>().map_err(|_| {
            ApiError::bad_request("Invalid or missing image size in request headers.")
        })?),
    };
    let content_length =
        header_text(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    let store = header_text(headers, "x-image-meta-store").map(str::to_owned);
    Ok(UploadRequest {
        body: request.into_body().into_data_stream(),
        content_length,
        declared_size,
        store,
    })
}

pub async fn download(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Glance also honours a `Content-Range` request header as a range (legacy clients).
    let range = header_text(&headers, header::RANGE)
        .map(str::to_owned)
        .or_else(|| {
            header_text(&headers, header::CONTENT_RANGE).map(|v| {
                v.replacen("bytes ", "bytes=", 1)
                    .split('/')
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
        });
    let Some(download) = state.data.download(&ctx, &id, range.as_deref()).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let status = if download.range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response = (status, Body::from_stream(download.body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(download.content_length),
    );
    if let Some(md5) = download
        .checksum
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        headers.insert("content-md5", md5);
    }
    if let Some(range) = download.range {
        let value = format!(
            "bytes {}-{}/{}",
            range.start,
            range.end.saturating_sub(1),
            download.size
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
    Ok(response)
}
