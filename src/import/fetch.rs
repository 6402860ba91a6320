//! web-download's HTTP GET: every URL on the way (the first and each redirect) passes the
//! filter, connections reach only the addresses the filter accepts (the resolver itself
//! drops the others, so a name cannot resolve to a private address between the check and the
//! connection), and a remote that stops sending fails the import instead of hanging it.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{header, Request, StatusCode, Uri};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::Stream;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use openssl::ssl::{SslConnector, SslMethod};

use super::filter::{is_public, CheckedUrl, UrlFilter};

/// Redirects followed at most (urllib's limit, which Glance's downloads have).
const MAX_REDIRECTS: usize = 10;
/// How long a TCP connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a download could not start or went wrong; the text goes into the task's message.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("URI for web-download does not pass filtering: {url} ({why})")]
    Refused { url: String, why: String },
    #[error("Redirect to disallowed URL: {url} ({why})")]
    RedirectRefused { url: String, why: String },
    #[error("more than {MAX_REDIRECTS} redirects from {0}")]
    TooManyRedirects(String),
    #[error("GET {url} failed: {why}")]
    Failed { url: String, why: String },
    #[error("GET {url} answered {status}")]
    Status { url: String, status: StatusCode },
    #[error("{url} sent nothing for {seconds} seconds")]
    Stalled { url: String, seconds: u64 },
}

/// A response being read: its announced length and its body.
pub struct Download {
    pub url: String,
    pub content_length: Option<u64>,
    pub body: BodyStream,
}

/// The body as a stream of frames, failing when the remote is idle for too long.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, FetchError>> + Send>>;

/// Resolves host names to the addresses the filter accepts: public ones, or any when the
/// operator listed the host in `allowed_hosts`.
#[derive(Clone)]
struct CheckedResolver {
    host_allowed: bool,
}

impl tower::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let host_allowed = self.host_allowed;
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let usable: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| host_allowed || is_public(a.ip()))
                .collect();
            if usable.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "{name} resolves to no public address ({})",
                        all.iter()
                            .map(|a| a.ip().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            Ok(usable.into_iter())
        })
    }
}

type Connector = hyper_openssl::client::legacy::HttpsConnector<HttpConnector<CheckedResolver>>;

fn client(host_allowed: bool) -> Result<Client<Connector, Empty<Bytes>>, String> {
    let mut tcp = HttpConnector::new_with_resolver(CheckedResolver { host_allowed });
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let tls = SslConnector::builder(SslMethod::tls()).map_err(|e| e.to_string())?;
    let connector = hyper_openssl::client::legacy::HttpsConnector::with_connector(tcp, tls)
        .map_err(|e| e.to_string())?;
    Ok(Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector))
}

/// `location` (a redirect's `Location`) resolved against `base`.
fn join(base: &Uri, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map_or("", |a| a.as_str());
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = base.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    format!("{scheme}://{authority}{dir}{location}")
}

/// Starts the download of `url`: the filter is applied to it and to every redirect, and
/// the response must be 200. `idle` bounds every wait for the remote; `token` is sent as
/// `X-Auth-Token` (glance-download).
pub async fn open(
    filter: &UrlFilter,
    url: &str,
    idle: Duration,
    token: Option<&str>,
) -> Result<Download, FetchError> {
    let mut checked: CheckedUrl = filter.check(url).map_err(|e| FetchError::Refused {
        url: url.to_owned(),
        why: e.to_string(),
    })?;
    let mut current = url.to_owned();
    // The token goes to the host it was given for, never to one a redirect names.
    let token_host = checked.uri.authority().map(|a| a.as_str().to_owned());
    for _ in 0..=MAX_REDIRECTS {
        let client = client(checked.host_allowed).map_err(|why| FetchError::Failed {
            url: current.clone(),
            why,
        })?;
        // Credentials in the URL are not sent as part of it.
        let target: Uri = glint_store::strip_userinfo(&checked.uri.to_string())
            .parse()
            .map_err(|_| FetchError::Refused {
                url: current.clone(),
                why: "not a URL".to_owned(),
            })?;
        let mut request = Request::get(target.clone()).header(
            header::USER_AGENT,
            concat!("glint/", env!("CARGO_PKG_VERSION")),
        );
        let same_host = checked.uri.authority().map(|a| a.as_str()) == token_host.as_deref();
        if let (Some(token), true) = (token, same_host) {
            request = request.header("x-auth-token", token);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| FetchError::Failed {
                url: current.clone(),
                why: e.to_string(),
            })?;
        let response = match tokio::time::timeout(idle, client.request(request)).await {
            Err(_) => {
                return Err(FetchError::Stalled {
                    url: current,
                    seconds: idle.as_secs(),
                })
            }
            Ok(Err(e)) => {
                return Err(FetchError::Failed {
                    url: current,
                    why: glint_store::net::error_chain(&e),
                })
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
            let Some(location) = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Err(FetchError::Status {
                    url: current,
                    status,
                });
            };
            let next = join(&target, location.trim());
            checked = filter
                .check(&next)
                .map_err(|e| FetchError::RedirectRefused {
                    url: next.clone(),
                    why: e.to_string(),
                })?;
            current = next;
            continue;
        }
        if status != StatusCode::OK {
            return Err(FetchError::Status {
                url: current,
                status,
            });
        }
        let content_length = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = response.into_body();
        let stream_url = current.clone();
        let body = futures_util::stream::unfold(Some(body), move |state| {
            let url = stream_url.clone();
            async move {
                let mut body = state?;
                loop {
                    match tokio::time::timeout(idle, body.frame()).await {
                        Err(_) => {
                            let stalled = FetchError::Stalled {
                                url,
                                seconds: idle.as_secs(),
                            };
                            return Some((Err(stalled), None));
                        }
                        Ok(None) => return None,
                        Ok(Some(Err(e))) => {
                            let failed = FetchError::Failed {
                                url,
                                why: glint_store::net::error_chain(&e),
                            };
                            return Some((Err(failed), None));
                        }
                        Ok(Some(Ok(frame))) => {
                            if let Ok(data) = frame.into_data() {
                                return Some((Ok(data), Some(body)));
                            }
                        }
                    }
                }
            }
        });
        return Ok(Download {
            url: current,
            content_length,
            body: Box::pin(body),
        });
    }
    Err(FetchError::TooManyRedirects(url.to_owned()))
}

/// A small JSON document (at most `MAX_JSON` bytes) fetched as `open` fetches.
pub async fn json(
    filter: &UrlFilter,
    url: &str,
    idle: Duration,
    token: Option<&str>,
) -> Result<serde_json::Value, FetchError> {
    use futures_util::StreamExt;
    const MAX_JSON: usize = 1 << 20;
    let mut download = open(filter, url, idle, token).await?;
    let mut body = Vec::new();
    while let Some(piece) = download.body.next().await {
        body.extend_from_slice(&piece?);
        if body.len() > MAX_JSON {
            return Err(FetchError::Failed {
                url: url.to_owned(),
                why: format!("the answer is larger than {MAX_JSON} bytes"),
            });
        }
    }
    serde_json::from_slice(&body).map_err(|e| FetchError::Failed {
        url: url.to_owned(),
        why: format!("not JSON: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve_against_the_current_url() {
        let base: Uri = "http://a.example.com:8080/dir/file.img?x=1"
            .parse()
            .expect("uri");
        assert_eq!(
            join(&base, "https://b.example.com/y"),
            "https://b.example.com/y"
        );
        assert_eq!(join(&base, "//c.example.com/z"), "http://c.example.com/z");
        assert_eq!(join(&base, "/other"), "http://a.example.com:8080/other");
        assert_eq!(
            join(&base, "next.img"),
            "http://a.example.com:8080/dir/next.img"
        );
    }
}
