//! The HTTP client stack of the stores that speak HTTP (S3, Swift, VMware): hyper 1 over
//! tokio, TLS by OpenSSL. One HTTP stack and one TLS library serve the whole process, the
//! server included.

pub mod body;
mod response;

pub use response::{content_length, content_range, ranged_body};

use std::path::Path;
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};

/// TCP, or TLS over TCP for `https://` URLs.
pub type HttpsConnector = hyper_openssl::client::legacy::HttpsConnector<HttpConnector>;

/// How long a TCP connection to a store's server may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle pooled connection is kept.
pub const POOL_IDLE: Duration = Duration::from_secs(60);

/// Connections that trust `cacert` (a PEM bundle) or else the system's authorities; with
/// `insecure`, any certificate (an operator's explicit choice, e.g. `swift_store_auth_insecure`).
pub fn https_connector(cacert: Option<&Path>, insecure: bool) -> Result<HttpsConnector, String> {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let mut tls = SslConnector::builder(SslMethod::tls()).map_err(|e| e.to_string())?;
    if let Some(path) = cacert {
        tls.set_ca_file(path)
            .map_err(|e| format!("cannot read the CA bundle {}: {e}", path.display()))?;
    }
    if insecure {
        tls.set_verify(SslVerifyMode::NONE);
    }
    HttpsConnector::with_connector(tcp, tls).map_err(|e| e.to_string())
}

/// A pooled client over `connector` for request bodies of type `B`.
pub fn client<B>(connector: HttpsConnector) -> Client<HttpsConnector, B>
where
    B: http_body::Body + Send,
    B::Data: Send,
{
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .build(connector)
}

/// A client that opens a connection per request and keeps none: for request bodies streamed
/// from elsewhere, which cannot be sent again if a pooled connection turns out closed by the
/// server at the moment it is reused.
pub fn unpooled_client<B>(connector: HttpsConnector) -> Client<HttpsConnector, B>
where
    B: http_body::Body + Send,
    B::Data: Send,
{
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector)
}

/// The whole chain of an error, each cause after a colon: hyper's own text ("client error
/// (Connect)") hides what happened (a refused connection, a certificate that failed).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
