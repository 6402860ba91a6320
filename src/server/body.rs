//! Bodies wrapped by the serving loop: request bodies held to `request_body_min_rate`, and
//! response bodies that tell the connection clock when a request is over.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::clock::{expired, timed_out, RequestGuard};
use super::{BoxError, ConnectionLimits};

/// A response body that tells the connection clock when it is done.
pub(super) struct TrackedBody {
    pub(super) inner: Body,
    pub(super) guard: Option<RequestGuard>,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(poll, Poll::Ready(None | Some(Err(_)))) {
            this.guard = None;
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body cut with an error when, after `request_body_rate_grace`, it has averaged
/// less than `request_body_min_rate`, or when no data came for `client_socket_timeout`.
///
/// Only time spent waiting for the client counts: while the handler is not asking for data
/// (e.g. the store is slow) the clock stops, so server back-pressure never cuts a client.
pub(super) struct MinRateBody<B> {
    inner: B,
    min_rate: u64,
    grace: Duration,
    stall: Option<Duration>,
    bytes: u64,
    /// Time spent waiting for the client before the current wait.
    waited: Duration,
    /// Start of the current wait for the client.
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    cut: Arc<AtomicBool>,
}

impl<B> MinRateBody<B> {
    pub(super) fn new(inner: B, limits: &ConnectionLimits, cut: Arc<AtomicBool>) -> MinRateBody<B> {
        MinRateBody {
            inner,
            min_rate: limits.request_body_min_rate,
            grace: limits.request_body_rate_grace,
            stall: limits.client_socket_timeout,
            bytes: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            timer: None,
            cut,
        }
    }

    /// When the current wait, begun at `since`, becomes too long; with the reason.
    fn deadline(&self, since: Instant) -> Option<(Instant, &'static str)> {
        let rate = (self.min_rate > 0).then(|| {
            // The body may take bytes/min_rate in total, and at least the grace period.
            let earned = Duration::try_from_secs_f64(self.bytes as f64 / self.min_rate as f64)
                .unwrap_or(Duration::MAX);
            let allowed = earned.max(self.grace).saturating_sub(self.waited);
            (
                since.checked_add(allowed),
                "request body slower than request_body_min_rate",
            )
        });
        let stall = self.stall.map(|stall| {
            (
                since.checked_add(stall),
                "request body stalled for client_socket_timeout",
            )
        });
        [rate, stall]
            .into_iter()
            .flatten()
            .filter_map(|(deadline, why)| Some((deadline?, why)))
            .min_by_key(|(deadline, _)| *deadline)
    }
}

impl<B> http_body::Body for MinRateBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.cut.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(timed_out("request body cut").into())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {}
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(since) = this.waiting_since.take() {
                    this.waited += since.elapsed();
                }
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(other) => return Poll::Ready(other.map(|r| r.map_err(Into::into))),
        }
        let since = *this.waiting_since.get_or_insert_with(Instant::now);
        let Some((deadline, why)) = this.deadline(since) else {
            return Poll::Pending;
        };
        if !expired(&mut this.timer, deadline, cx) {
            return Poll::Pending;
        }
        this.cut.store(true, Ordering::Relaxed);
        tracing::info!(
            bytes = this.bytes,
            waited_secs = (this.waited + since.elapsed()).as_secs(),
            "{why}; closing the connection"
        );
        Poll::Ready(Some(Err(timed_out(why).into())))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::pin::pin;

    use super::*;

    /// A body whose client never sends anything.
    struct Silent;

    impl http_body::Body for Silent {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Pending
        }
    }

    fn limits(rate: u64, grace_ms: u64, stall_ms: Option<u64>) -> ConnectionLimits {
        ConnectionLimits {
            request_body_min_rate: rate,
            request_body_rate_grace: Duration::from_millis(grace_ms),
            client_socket_timeout: stall_ms.map(Duration::from_millis),
            ..ConnectionLimits::default()
        }
    }

    async fn first_frame(body: MinRateBody<Silent>) -> Option<Result<Frame<Bytes>, BoxError>> {
        let mut body = pin!(body);
        std::future::poll_fn(|cx| http_body::Body::poll_frame(body.as_mut(), cx)).await
    }

    #[tokio::test]
    async fn a_silent_body_is_cut_after_the_grace_period() {
        let cut = Arc::new(AtomicBool::new(false));
        let body = MinRateBody::new(Silent, &limits(1024, 200, None), Arc::clone(&cut));
        let started = Instant::now();
        let frame = tokio::time::timeout(Duration::from_secs(5), first_frame(body))
            .await
            .expect("the timer wakes the pending body");
        let error = frame.expect("a frame").expect_err("an error");
        assert!(
            error.to_string().contains("request_body_min_rate"),
            "{error}"
        );
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(cut.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn a_silent_body_is_cut_after_the_stall_timeout_without_a_rate() {
        let cut = Arc::new(AtomicBool::new(false));
        let body = MinRateBody::new(Silent, &limits(0, 30_000, Some(200)), cut);
        let frame = tokio::time::timeout(Duration::from_secs(5), first_frame(body))
            .await
            .expect("the timer wakes the pending body");
        let error = frame.expect("a frame").expect_err("an error");
        assert!(error.to_string().contains("stalled"), "{error}");
    }

    #[test]
    fn bytes_received_earn_waiting_time() {
        let cut = Arc::new(AtomicBool::new(false));
        let mut body = MinRateBody::new(Silent, &limits(1000, 1000, None), cut);
        let now = Instant::now();
        assert_eq!(
            body.deadline(now).map(|(d, _)| d),
            Some(now + Duration::from_secs(1))
        );
        body.bytes = 5000;
        body.waited = Duration::from_secs(2);
        assert_eq!(
            body.deadline(now).map(|(d, _)| d),
            Some(now + Duration::from_secs(3))
        );
        body.min_rate = 0;
        assert_eq!(body.deadline(now), None);
    }
}
