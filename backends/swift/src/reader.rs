//! Reading an object, whole or one range (Swift serves ranges of large objects too), resumed
//! where it stopped when a read is cut short (`swift_store_retry_get_count`).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream;
use glint_store::net::{content_length, content_range};
use glint_store::{ByteRange, ImageReader, Location, ReaderBody, StoreError};
use http::StatusCode;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::auth::Auth;
use crate::client::{status_error, Answer, Target};
use crate::Shared;

/// Opens `container/object` at `range` (clamped to the data).
pub(crate) async fn open(
    shared: &Arc<Shared>,
    auth: Arc<Auth>,
    container: &str,
    object: &str,
    location: &Location,
    range: Option<ByteRange>,
) -> Result<ImageReader, StoreError> {
    let shown = location.to_string();
    let name = &shared.config.name;
    let empty_at = |size: u64, start: u64| {
        let at = start.min(size);
        ImageReader {
            stored_size: size,
            range: ByteRange { start: at, end: at },
            body: ReaderBody::Stream(Box::pin(stream::empty())),
        }
    };
    let size_of = || async {
        let head = shared.head(&auth, container, object).await?;
        if !head.status.is_success() {
            return Err(status_error(name, &shown, &head));
        }
        Ok(content_length(&head.headers).unwrap_or(0))
    };
    if let Some(r) = range.filter(ByteRange::is_empty) {
        return Ok(empty_at(size_of().await?, r.start));
    }
    let response = get(
        shared,
        &auth,
        container,
        object,
        range.map(|r| (r.start, r.end)),
    )
    .await?;
    let (stored_size, served) = match response.status() {
        StatusCode::OK => {
            let size = match content_length(response.headers()) {
                Some(size) => size,
                None => size_of().await?,
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
                    store: name.clone(),
                    source: format!("no usable Content-Range in Swift's answer for {shown}").into(),
                })?;
            (total, ByteRange { start, end })
        }
        // A range starting at or past the end: the contract's answer is an empty read.
        StatusCode::RANGE_NOT_SATISFIABLE => {
            let size = size_of().await?;
            return Ok(empty_at(size, range.map_or(0, |r| r.start)));
        }
        _ => {
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let answer = Answer {
                status: parts.status,
                headers: parts.headers,
                body,
                from_caller: auth.is_caller(),
            };
            return Err(status_error(name, &shown, &answer));
        }
    };
    // The range asked for, within what Swift served: a server that ignored the range
    // (200 for a ranged GET) is cut to it here.
    let wanted = match range {
        Some(r) => ByteRange {
            start: r.start.max(served.start),
            end: r.end.min(served.end),
        },
        None => served,
    };
    let state = Reading {
        shared: shared.clone(),
        auth,
        container: container.to_owned(),
        object: object.to_owned(),
        body: Some(response.into_body()),
        at: served.start,
        wanted,
        retries: shared.config.retry_get_count,
    };
    Ok(ImageReader {
        stored_size,
        range: wanted,
        body: ReaderBody::Stream(Box::pin(stream::unfold(state, Reading::next))),
    })
}

async fn get(
    shared: &Shared,
    auth: &Auth,
    container: &str,
    object: &str,
    range: Option<(u64, u64)>,
) -> Result<http::Response<Incoming>, StoreError> {
    let header = range.map(|(start, end)| format!("bytes={start}-{}", end.saturating_sub(1)));
    let headers: Vec<(&str, &str)> = header.iter().map(|h| ("range", h.as_str())).collect();
    shared
        .swift
        .open(auth, Target::object(container, object), &headers)
        .await
}

/// A read in progress: where the next byte from Swift falls (`at`), and the range wanted.
struct Reading {
    shared: Arc<Shared>,
    auth: Arc<Auth>,
    container: String,
    object: String,
    body: Option<Incoming>,
    at: u64,
    wanted: ByteRange,
    retries: u32,
}

impl Reading {
    async fn next(mut self) -> Option<(std::io::Result<Bytes>, Reading)> {
        loop {
            if self.at >= self.wanted.end {
                return None;
            }
            let body = self.body.as_mut()?;
            let failure = match body.frame().await {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let (from, to) = (self.at, self.at + data.len() as u64);
                    self.at = to;
                    let start = self.wanted.start.max(from);
                    let end = self.wanted.end.min(to);
                    if start >= end {
                        continue;
                    }
                    let piece = data.slice((start - from) as usize..(end - from) as usize);
                    return Some((Ok(piece), self));
                }
                Some(Err(e)) => format!("reading from Swift failed: {e}"),
                None => format!(
                    "Swift's answer ended at byte {} of {}",
                    self.at, self.wanted.end
                ),
            };
            if self.retries == 0 {
                self.body = None;
                let error = StoreError::Unavailable {
                    store: self.shared.config.name.clone(),
                    retryable: true,
                    source: failure.into(),
                };
                return Some((Err(std::io::Error::other(error)), self));
            }
            self.retries -= 1;
            tracing::warn!(store.name = %self.shared.config.name, error = %failure, at = self.at,
                "resuming a read from Swift");
            let resumed = get(
                &self.shared,
                &self.auth,
                &self.container,
                &self.object,
                Some((self.at, self.wanted.end)),
            )
            .await;
            match resumed {
                Ok(response) if response.status() == StatusCode::PARTIAL_CONTENT => {
                    self.body = Some(response.into_body());
                }
                Ok(response) => {
                    self.body = None;
                    let error = std::io::Error::other(format!(
                        "resuming a read from Swift: answered {}",
                        response.status()
                    ));
                    return Some((Err(error), self));
                }
                Err(e) => {
                    self.body = None;
                    return Some((Err(std::io::Error::other(e)), self));
                }
            }
        }
    }
}
