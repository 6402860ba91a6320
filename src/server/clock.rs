//! The per-connection clock: which deadline a connection's reads are held to (a request head
//! within `header_timeout`, the next request within `client_socket_timeout`), and the socket
//! wrapper that feeds it and fails writes a client stopped reading.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant, Sleep};

use super::ConnectionLimits;

/// Where a connection is between requests, which decides its read deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the rest of a request head, since this instant (accept or first byte).
    Head(Instant),
    /// Keep-alive between requests, since the last response finished.
    Idle(Instant),
    /// This many requests being served; their bodies have their own limits.
    Busy(usize),
}

/// The per-connection clock, shared by the socket wrapper and the request service. Its
/// deadline is watched beside the connection ([`Clock::expired`]), so it holds whatever
/// hyper happens to be polling.
#[derive(Debug)]
pub(super) struct Clock {
    phase: Mutex<Phase>,
    changed: Notify,
    header_timeout: Duration,
    idle_timeout: Option<Duration>,
}

impl Clock {
    pub(super) fn new(limits: &ConnectionLimits) -> Clock {
        Clock {
            // A new connection must send its first request within header_timeout.
            phase: Mutex::new(Phase::Head(Instant::now())),
            changed: Notify::new(),
            header_timeout: limits.header_timeout,
            idle_timeout: limits.client_socket_timeout,
        }
    }

    fn update(&self, change: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        let next = change(*phase);
        if next != *phase {
            *phase = next;
            drop(phase);
            self.changed.notify_one();
        }
    }

    fn read_deadline(&self) -> Option<Instant> {
        match *self.phase.lock().unwrap_or_else(PoisonError::into_inner) {
            Phase::Head(since) => since.checked_add(self.header_timeout),
            Phase::Idle(since) => self.idle_timeout.and_then(|t| since.checked_add(t)),
            Phase::Busy(_) => None,
        }
    }

    /// Completes once the connection has been idle, or slow to send a request head, too long.
    pub(super) async fn expired(&self) {
        loop {
            let changed = self.changed.notified();
            match self.read_deadline() {
                Some(deadline) if Instant::now() >= deadline => return,
                Some(deadline) => tokio::select! {
                    () = sleep_until(deadline) => {}
                    () = changed => {}
                },
                None => changed.await,
            }
        }
    }

    /// Bytes arrived: on an idle connection they start the next request's head.
    fn bytes_read(&self) {
        self.update(|phase| match phase {
            Phase::Idle(_) => Phase::Head(Instant::now()),
            other => other,
        });
    }

    /// Bytes of a response went out: the idle time counts from the last of them, since hyper
    /// reports a response finished while it may still hold its tail unsent for a slow reader.
    fn bytes_written(&self) {
        self.update(|phase| match phase {
            Phase::Idle(_) => Phase::Idle(Instant::now()),
            other => other,
        });
    }

    pub(super) fn request_started(self: &Arc<Clock>) -> RequestGuard {
        self.update(|phase| match phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        });
        RequestGuard {
            clock: Arc::clone(self),
        }
    }

    fn request_finished(&self) {
        self.update(|phase| match phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            Phase::Busy(_) => Phase::Idle(Instant::now()),
            other => other,
        });
    }
}

/// Marks a request finished when its response body ends or is dropped.
#[derive(Debug)]
pub(super) struct RequestGuard {
    clock: Arc<Clock>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.clock.request_finished();
    }
}

pub(super) fn timed_out(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what)
}

/// Arms `timer` for `deadline` and says whether it has passed (registering a wake-up if not).
pub(super) fn expired(
    timer: &mut Option<Pin<Box<Sleep>>>,
    deadline: Instant,
    cx: &mut Context<'_>,
) -> bool {
    let timer = timer.get_or_insert_with(|| Box::pin(sleep_until(deadline)));
    if timer.deadline() != deadline {
        timer.as_mut().reset(deadline);
    }
    timer.as_mut().poll(cx).is_ready()
}

/// The client socket: reports reads to the connection clock, and fails writes that make no
/// progress for `client_socket_timeout` (a client that stopped reading its response).
pub(super) struct TimedIo<T> {
    inner: T,
    clock: Arc<Clock>,
    write_stall: Option<Duration>,
    write_blocked_since: Option<Instant>,
    write_timer: Option<Pin<Box<Sleep>>>,
}

impl<T> TimedIo<T> {
    pub(super) fn new(inner: T, clock: Arc<Clock>, limits: &ConnectionLimits) -> TimedIo<T> {
        TimedIo {
            inner,
            clock,
            write_stall: limits.client_socket_timeout,
            write_blocked_since: None,
            write_timer: None,
        }
    }

    fn write_progress<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        let Some(limit) = self.write_stall else {
            return poll;
        };
        if poll.is_ready() {
            self.write_blocked_since = None;
            return poll;
        }
        let since = *self.write_blocked_since.get_or_insert_with(Instant::now);
        match since.checked_add(limit) {
            Some(deadline) if expired(&mut self.write_timer, deadline, cx) => {
                Poll::Ready(Err(timed_out("client stopped reading the response")))
            }
            _ => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.clock.bytes_read();
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            this.clock.bytes_written();
        }
        this.write_progress(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, data);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            this.clock.bytes_written();
        }
        this.write_progress(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.write_progress(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_follows_requests() {
        let limits = ConnectionLimits {
            header_timeout: Duration::from_secs(1),
            client_socket_timeout: Some(Duration::from_secs(5)),
            ..ConnectionLimits::default()
        };
        let clock = Arc::new(Clock::new(&limits));
        let start = clock.read_deadline().expect("a header deadline");
        assert!(start <= Instant::now() + Duration::from_secs(1));
        let guard = clock.request_started();
        assert_eq!(clock.read_deadline(), None);
        drop(guard);
        let idle = clock.read_deadline().expect("an idle deadline");
        assert!(idle > Instant::now() + Duration::from_secs(4));
        // A response's tail still going out keeps the connection from counting as idle.
        std::thread::sleep(Duration::from_millis(20));
        clock.bytes_written();
        assert!(clock.read_deadline().expect("idle") > idle);
        clock.bytes_read();
        let head = clock.read_deadline().expect("a header deadline");
        assert!(head <= Instant::now() + Duration::from_secs(1));
    }
}
