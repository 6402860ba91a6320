//! The HTTP/1.1 serving loop: accepts connections up to `max_connections` and serves the
//! router on each with hyper, enforcing the `[DEFAULT]` connection limits (see
//! [`ConnectionLimits`]), and shuts down gracefully within `graceful_shutdown_timeout`.
//!
//! Header and idle deadlines come from one per-connection [`Clock`], watched beside the hyper
//! connection, not from hyper's `header_read_timeout`: hyper (1.12) starts that timer whenever
//! it waits for a request head, including the keep-alive wait right after a response
//! (`State::idle` re-arms it), so it would close idle connections after `header_timeout` and
//! make `client_socket_timeout` meaningless.

mod body;
mod clock;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use body::{MinRateBody, TrackedBody};
use clock::{Clock, TimedIo};

pub use crate::config::server::ConnectionLimits;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Pause after an accept() error such as EMFILE, so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// At most one warning per this long for a full connection table or failing accept().
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight finish
/// for up to `graceful_shutdown_timeout` and closes what is left.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let limits = *limits;
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Our own clock enforces header_timeout (see the module comment); hyper sets no timer.
    builder
        .keep_alive(limits.http_keepalive)
        .header_read_timeout(None);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut full_warning = Throttle::default();
    let mut accept_warning = Throttle::default();
    // Whether an accept() failure was logged, so that recovery is logged too.
    let mut accept_failing = false;
    let mut shutdown = pin!(shutdown);

    loop {
        while connections.try_join_next().is_some() {}
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Stop accepting: new clients wait in the kernel's listen backlog.
                let warned = full_warning.ready();
                if warned {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached; new clients wait until connections close"
                    );
                }
                let slot = tokio::select! {
                    () = &mut shutdown => break,
                    slot = Arc::clone(&slots).acquire_owned() => slot,
                };
                if warned {
                    tracing::info!("below the connection limit; accepting connections again");
                }
                slot.map_err(io::Error::other)?
            }
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                if std::mem::take(&mut accept_failing) {
                    tracing::info!("accepting connections again");
                }
                accepted
            }
            // The client gave up before we accepted: nothing to do.
            Err(e) if is_client_abort(&e) => continue,
            Err(e) => {
                if accept_warning.ready() {
                    tracing::warn!(error = %e, "cannot accept connections");
                    accept_failing = true;
                }
                drop(slot);
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                }
            }
        };
        // Small JSON answers should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let clock = Arc::new(Clock::new(&limits));
        let io = TokioIo::new(TimedIo::new(stream, Arc::clone(&clock), &limits));
        let service = ConnService {
            router: app.clone(),
            clock: Arc::clone(&clock),
            limits,
            peer,
        };
        let connection = graceful.watch(builder.serve_connection(io, service));
        connections.spawn(async move {
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection closed on an error");
                    }
                }
                () = clock.expired() => {
                    tracing::debug!(%peer, "closing a connection idle or slow to send its request head");
                }
            }
            drop(slot);
        });
    }

    drop(listener);
    while connections.try_join_next().is_some() {}
    tracing::info!(
        connections = connections.len(),
        timeout_secs = limits.graceful_shutdown_timeout.map(|t| t.as_secs()),
        "stopped accepting connections; finishing requests in flight"
    );
    let drained = graceful.shutdown();
    let finished = match limits.graceful_shutdown_timeout {
        Some(limit) => tokio::time::timeout(limit, drained).await.is_ok(),
        None => {
            drained.await;
            true
        }
    };
    while connections.try_join_next().is_some() {}
    if !finished && !connections.is_empty() {
        tracing::warn!(
            connections = connections.len(),
            "graceful_shutdown_timeout passed; closing the connections still open"
        );
    } else {
        tracing::info!("all connections finished");
    }
    connections.shutdown().await;
    Ok(())
}

/// accept() errors that concern one client only, not the listener.
fn is_client_abort(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// Lets a repeated warning through at most once per [`WARN_EVERY`].
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
}

impl Throttle {
    fn ready(&mut self) -> bool {
        let now = Instant::now();
        if self.last.is_some_and(|last| now - last < WARN_EVERY) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// The hyper service of one connection: the router, with request bodies held to the
/// minimum rate and responses tracked for the connection clock.
#[derive(Clone)]
struct ConnService {
    router: Router,
    clock: Arc<Clock>,
    limits: ConnectionLimits,
    /// The client's address, for handlers that answer by it (`/healthcheck`'s
    /// `allowed_source_ranges`).
    peer: std::net::SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let guard = self.clock.request_started();
        let cut = Arc::new(AtomicBool::new(false));
        let limits = &self.limits;
        let mut request = request.map(|body| {
            if http_body::Body::is_end_stream(&body) {
                Body::new(body)
            } else {
                Body::new(MinRateBody::new(body, limits, Arc::clone(&cut)))
            }
        });
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        let mut router = self.router.clone();
        Box::pin(async move {
            let mut response = match tower::Service::call(&mut router, request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            // The rest of a cut body may never come: do not wait for it to reuse the
            // connection.
            if cut.load(Ordering::Relaxed) {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response.map(|body| TrackedBody {
                inner: body,
                guard: Some(guard),
            }))
        })
    }
}
