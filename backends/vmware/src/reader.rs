//! Reading a datastore file, whole or one range, and its size, through the datastore file
//! interface; a session the server no longer knows is renewed and the request sent again.

use std::sync::Arc;

use std::time::Duration;

use futures_util::stream;
use glint_store::net::body::UploadBody;
use glint_store::net::{content_length, content_range, error_chain, ranged_body};
use glint_store::{ByteRange, ImageReader, ReaderBody, StoreError, VsphereLocation};
use http::{header, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::vim::{backoff, Session, SESSION_COOKIE};
use crate::Shared;

/// The longest a download waits for the datastore's next bytes.
const READ_IDLE: Duration = Duration::from_secs(120);

/// The file's URL on the server the store talks to.
pub(crate) fn url(shared: &Shared, location: &VsphereLocation) -> String {
    format!("{}{}", shared.inventory.vim.base, location.request_target())
}

pub(crate) fn cookie(session: &Session) -> String {
    format!("{SESSION_COOKIE}={}", session.cookie)
}

/// Sends a body-less request for `location`, logging in again on a 401 and trying again on a
/// dropped connection, up to `vmware_api_retry_count` times.
async fn send(
    shared: &Shared,
    method: Method,
    location: &VsphereLocation,
    range: Option<ByteRange>,
) -> Result<Response<Incoming>, StoreError> {
    let vim = &shared.inventory.vim;
    let mut session = vim.session().await?;
    let mut attempt = 1;
    loop {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(url(shared, location))
            .header(header::COOKIE, cookie(&session));
        if let Some(r) = range {
            request = request.header(header::RANGE, format!("bytes={}-{}", r.start, r.end - 1));
        }
        let request = request
            .body(UploadBody::empty())
            .map_err(|e| StoreError::Backend {
                store: shared.name().to_owned(),
                source: e.to_string().into(),
            })?;
        let failure = match shared.http.request(request).await {
            Ok(response) if response.status() == StatusCode::UNAUTHORIZED => None,
            Ok(response) => return Ok(response),
            Err(e) => Some(StoreError::Unavailable {
                store: shared.name().to_owned(),
                retryable: true,
                source: error_chain(&e).into(),
            }),
        };
        if attempt >= vim.attempts() {
            return Err(failure.unwrap_or_else(|| StoreError::Unavailable {
                store: shared.name().to_owned(),
                retryable: true,
                source: "the datastore refused every new session (401)".into(),
            }));
        }
        match failure {
            // A dropped connection: the same session again, after a pause.
            Some(_) => tokio::time::sleep(backoff(attempt)).await,
            // A 401: the session has ended.
            None => session = vim.renew(&session).await?,
        }
        attempt += 1;
    }
}

fn status_error(shared: &Shared, location: &VsphereLocation, status: StatusCode) -> StoreError {
    let shown = glint_store::Location::Vsphere(location.clone()).to_string();
    match status {
        StatusCode::NOT_FOUND => StoreError::NotFound(shown),
        StatusCode::FORBIDDEN => StoreError::Forbidden {
            store: shared.name().to_owned(),
            source: format!("the datastore refused access to {shown}").into(),
        },
        s if s.is_server_error() => StoreError::Unavailable {
            store: shared.name().to_owned(),
            retryable: true,
            source: format!("the datastore answered {s} for {shown}").into(),
        },
        s => StoreError::Backend {
            store: shared.name().to_owned(),
            source: format!("the datastore answered {s} for {shown}").into(),
        },
    }
}

/// The size of the file at `location`.
pub(crate) async fn size(shared: &Shared, location: &VsphereLocation) -> Result<u64, StoreError> {
    let response = send(shared, Method::HEAD, location, None).await?;
    if !response.status().is_success() {
        return Err(status_error(shared, location, response.status()));
    }
    content_length(response.headers()).ok_or_else(|| StoreError::Backend {
        store: shared.name().to_owned(),
        source: "the datastore gave no Content-Length".into(),
    })
}

/// Opens the file at `location` at `range` (clamped to the data).
pub(crate) async fn open(
    shared: &Arc<Shared>,
    location: &VsphereLocation,
    range: Option<ByteRange>,
) -> Result<ImageReader, StoreError> {
    let empty_at = |stored_size: u64, start: u64| {
        let at = start.min(stored_size);
        ImageReader {
            stored_size,
            range: ByteRange { start: at, end: at },
            body: ReaderBody::Stream(Box::pin(stream::empty())),
        }
    };
    if let Some(r) = range.filter(ByteRange::is_empty) {
        return Ok(empty_at(size(shared, location).await?, r.start));
    }
    let response = send(shared, Method::GET, location, range).await?;
    let (stored_size, served) = match response.status() {
        StatusCode::OK => {
            let size = match content_length(response.headers()) {
                Some(size) => size,
                None => size(shared, location).await?,
            };
            (
                size,
                ByteRange {
                    start: 0,
                    end: size,
                },
            )
        }
        StatusCode::PARTIAL_CONTENT => {
            let (start, end, total) =
                content_range(response.headers()).ok_or_else(|| StoreError::Backend {
                    store: shared.name().to_owned(),
                    source: "no usable Content-Range in the datastore's answer".into(),
                })?;
            (total, ByteRange { start, end })
        }
        // A range starting at or past the end: an empty read.
        StatusCode::RANGE_NOT_SATISFIABLE => {
            let stored = size(shared, location).await?;
            return Ok(empty_at(stored, range.map_or(0, |r| r.start)));
        }
        status => return Err(status_error(shared, location, status)),
    };
    // What was asked for, within what was served: a server that ignored the range (200 for
    // a ranged GET) is cut to it here.
    let wanted = match range {
        Some(r) => ByteRange {
            start: r.start.max(served.start),
            end: r.end.min(served.end),
        },
        None => served,
    };
    let body = ranged_body(response.into_body(), served.start, wanted, READ_IDLE);
    Ok(ImageReader {
        stored_size,
        range: wanted,
        body: ReaderBody::Stream(body),
    })
}
