//! Reading the answers of HTTP stores: sizes and ranges from the headers, and a body cut to the
//! range wanted, so that a server that ignored `Range`, stalled, or ended early is never taken
//! for a whole answer.

use std::time::Duration;

use futures_util::StreamExt;
use http::{header, HeaderMap};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::error_chain;
use crate::{ByteRange, ByteStream};

/// `Content-Length`, when the answer has a usable one.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `Content-Range: bytes START-LAST/TOTAL` as `(START, LAST + 1, TOTAL)`, when it is
/// consistent.
pub fn content_range(headers: &HeaderMap) -> Option<(u64, u64, u64)> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let (span, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (start, last) = span.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    let total: u64 = total.trim().parse().ok()?;
    (start <= last && last < total).then_some((start, last + 1, total))
}

/// The bytes of `body` that fall within `wanted`, the body's first byte being at offset `at`.
/// A body that ends before `wanted.end`, fails, or sends nothing for `idle` is an error.
pub fn ranged_body(body: Incoming, at: u64, wanted: ByteRange, idle: Duration) -> ByteStream {
    let stream = futures_util::stream::unfold(Some((body, at)), move |state| async move {
        let (mut body, mut at) = state?;
        loop {
            if at >= wanted.end {
                return None;
            }
            match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => {
                    let stalled = std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("the server sent nothing for {} seconds", idle.as_secs()),
                    );
                    return Some((Err(stalled), None));
                }
                Ok(None) => {
                    let short = std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("the server's answer ended at byte {at} of {}", wanted.end),
                    );
                    return Some((Err(short), None));
                }
                Ok(Some(Err(e))) => {
                    return Some((Err(std::io::Error::other(error_chain(&e))), None));
                }
                Ok(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let (from, to) = (at, at + data.len() as u64);
                    at = to;
                    let start = wanted.start.max(from);
                    let end = wanted.end.min(to);
                    if start < end {
                        let piece = data.slice((start - from) as usize..(end - from) as usize);
                        return Some((Ok(piece), Some((body, at))));
                    }
                }
            }
        }
    });
    stream.boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_are_read_when_consistent() {
        let range = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_RANGE, value.parse().expect("header"));
            content_range(&headers)
        };
        assert_eq!(range("bytes 0-9/100"), Some((0, 10, 100)));
        assert_eq!(range("bytes 5-5/6"), Some((5, 6, 6)));
        assert_eq!(range("bytes */100"), None);
        assert_eq!(range("items 0-1/2"), None);
        assert_eq!(range("bytes 4-2/5"), None);
        assert_eq!(range("bytes 0-5/5"), None);
    }
}
