//! Reading a datastore file, whole or one range, and its size, through the datastore file
//! interface; a session the server no longer knows is renewed and the request sent again.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use glint_store::net::body::UploadBody;
use glint_store::net::error_chain;
use glint_store::{ByteRange, ImageReader, ReaderBody, StoreError, VsphereLocation};
use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyStream;
use hyper::body::Incoming;

use crate::vim::{backoff, Session, SESSION_COOKIE};
use crate::Shared;

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
        if failure.is_some() {
            tokio::time::sleep(backoff(attempt)).await;
        }
        session = vim.renew(&session).await?;
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

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `bytes start-end/total` → (start, end exclusive, total).
fn content_range(headers: &HeaderMap) -> Option<(u64, u64, u64)> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let (span, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (start, last) = span.split_once('-')?;
    let (start, last, total) = (
        start.parse().ok()?,
        last.parse::<u64>().ok()?,
        total.parse().ok()?,
    );
    (start <= last && last < total).then_some((start, last + 1, total))
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
    let store = shared.name().to_owned();
    let frames = BodyStream::new(response.into_body()).filter_map(|frame| async move {
        match frame {
            Ok(frame) => frame.into_data().ok().map(Ok),
            Err(e) => Some(Err(std::io::Error::other(format!(
                "reading from the datastore: {}",
                error_chain(&e)
            )))),
        }
    });
    let body = cut_to(frames, served.start, wanted, store);
    Ok(ImageReader {
        stored_size,
        range: wanted,
        body: ReaderBody::Stream(Box::pin(body)),
    })
}

/// The bytes of `wanted` out of a stream that starts at offset `at`; a stream that ends early
/// is an error, never a short read.
fn cut_to(
    frames: impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    at: u64,
    wanted: ByteRange,
    store: String,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let frames = Box::pin(frames);
    stream::unfold((frames, at, false), move |(mut frames, mut at, done)| {
        let store = store.clone();
        async move {
            if done || at >= wanted.end {
                return None;
            }
            loop {
                match frames.next().await {
                    Some(Ok(frame)) => {
                        let (start, end) = (at, at + frame.len() as u64);
                        at = end;
                        let from = wanted.start.max(start);
                        let to = wanted.end.min(end);
                        if from < to {
                            let piece = frame.slice((from - start) as usize..(to - start) as usize);
                            return Some((Ok(piece), (frames, at, false)));
                        }
                        if at >= wanted.end {
                            return None;
                        }
                    }
                    Some(Err(e)) => return Some((Err(e), (frames, at, true))),
                    None => {
                        let e = std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!(
                                "store {store}: the datastore's answer ended at byte {at} of {}",
                                wanted.end
                            ),
                        );
                        return Some((Err(e), (frames, at, true)));
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_RANGE,
            "bytes 1-2/5".parse().expect("header"),
        );
        assert_eq!(content_range(&headers), Some((1, 3, 5)));
        headers.insert(
            header::CONTENT_RANGE,
            "bytes 4-2/5".parse().expect("header"),
        );
        assert_eq!(content_range(&headers), None);
        headers.insert(
            header::CONTENT_RANGE,
            "bytes 0-5/5".parse().expect("header"),
        );
        assert_eq!(content_range(&headers), None);
    }

    #[tokio::test]
    async fn streams_are_cut_to_the_range_and_short_ones_fail() {
        let frames = || {
            stream::iter(
                [&b"abc"[..], b"defg", b"hi"]
                    .into_iter()
                    .map(|f| Ok(Bytes::from_static(f))),
            )
        };
        let collect = |s: std::pin::Pin<
            Box<dyn futures_util::Stream<Item = std::io::Result<Bytes>> + Send>,
        >| async move {
            let mut out = Vec::new();
            let mut s = s;
            while let Some(frame) = s.next().await {
                match frame {
                    Ok(b) => out.extend_from_slice(&b),
                    Err(_) => return Err(out),
                }
            }
            Ok(out)
        };
        let got = collect(Box::pin(cut_to(
            frames(),
            0,
            ByteRange { start: 2, end: 8 },
            "s".into(),
        )))
        .await;
        assert_eq!(got, Ok(b"cdefgh".to_vec()));
        let got = collect(Box::pin(cut_to(
            frames(),
            10,
            ByteRange { start: 10, end: 19 },
            "s".into(),
        )))
        .await;
        assert_eq!(got, Ok(b"abcdefghi".to_vec()));
        let got = collect(Box::pin(cut_to(
            frames(),
            0,
            ByteRange { start: 0, end: 12 },
            "s".into(),
        )))
        .await;
        assert_eq!(got, Err(b"abcdefghi".to_vec()));
    }
}
