//! Glint's http store (Glance's): image data a web server serves, read-only. Locations are
//! `http[s]://[user:password@]host/path` URLs that operators or services register; the store
//! reads them (whole, or a range where the server honours `Range`), follows a bounded number
//! of redirects, bounds every wait for the server, and verifies TLS unless the operator says
//! otherwise (`https_insecure`, which Glance turns on by default and Glint does not).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use glint_store::net::{content_range, error_chain, https_connector, ranged_body, HttpsConnector};
use glint_store::{
    ByteRange, Capabilities, HttpLocation, ImageReader, ImageWriter, Location, ReaderBody, Store,
    StoreError, WriteOptions,
};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;

/// Requests one read makes at most: the first and four redirects (Glance's limit).
const MAX_REQUESTS: usize = 5;

/// The http store's options (`[glance_store]`, or its own section with several stores).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub name: String,
    /// `https_insecure` (Glint: false): accept any certificate.
    pub insecure: bool,
    /// `https_ca_certificates_file`: the authorities to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// How long the server may keep the store waiting (for its answer, or between two
    /// pieces of a body) before the read fails.
    pub timeout: Duration,
}

#[derive(Debug)]
pub struct HttpStore {
    config: HttpConfig,
    client: Client<HttpsConnector, Empty<Bytes>>,
}

impl HttpStore {
    pub fn new(config: HttpConfig) -> Result<HttpStore, StoreError> {
        let connector =
            https_connector(config.ca_file.as_deref(), config.insecure).map_err(|why| {
                StoreError::Misconfigured {
                    store: config.name.clone(),
                    why,
                }
            })?;
        Ok(HttpStore {
            client: glint_store::net::client(connector),
            config,
        })
    }

    fn http<'a>(&self, location: &'a Location) -> Result<&'a HttpLocation, StoreError> {
        match location {
            Location::Http(http) => Ok(http),
            other => Err(StoreError::InvalidLocation(other.to_string())),
        }
    }

    fn unavailable(&self, why: String) -> StoreError {
        StoreError::Unavailable {
            store: self.config.name.clone(),
            retryable: true,
            source: why.into(),
        }
    }

    /// Sends `method` to the location, following redirects (each to an absolute http(s)
    /// URL, whose own credentials then apply); answers the first non-redirect response.
    async fn send(
        &self,
        method: Method,
        location: &HttpLocation,
        range: Option<ByteRange>,
    ) -> Result<Response<Incoming>, StoreError> {
        let mut current = location.clone();
        for _ in 0..MAX_REQUESTS {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(current.url())
                .header(
                    header::USER_AGENT,
                    concat!("glint/", env!("CARGO_PKG_VERSION")),
                );
            if let Some(credentials) = current.credentials() {
                let pair = format!("{}:{}", credentials.user(), credentials.secret());
                let value = format!("Basic {}", openssl::base64::encode_block(pair.as_bytes()));
                if let Ok(value) = HeaderValue::from_str(&value) {
                    request = request.header(header::AUTHORIZATION, value);
                }
            }
            if let Some(range) = range.filter(|r| !r.is_empty()) {
                request = request.header(
                    header::RANGE,
                    format!("bytes={}-{}", range.start, range.end - 1),
                );
            }
            let request = request
                .body(Empty::new())
                .map_err(|e| StoreError::InvalidLocation(format!("{current:?}: {e}")))?;
            let response =
                match tokio::time::timeout(self.config.timeout, self.client.request(request)).await
                {
                    Err(_) => {
                        return Err(self.unavailable(format!(
                            "{} did not answer within {} seconds",
                            current.host(),
                            self.config.timeout.as_secs()
                        )))
                    }
                    Ok(Err(e)) => {
                        return Err(self.unavailable(format!(
                            "Remote server where the image is present is unavailable: {}",
                            error_chain(&e)
                        )))
                    }
                    Ok(Ok(response)) => response,
                };
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let target = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
                    .unwrap_or("");
                current = match Location::parse(target) {
                    Ok(Location::Http(next)) => next,
                    _ => {
                        return Err(StoreError::Backend {
                            store: self.config.name.clone(),
                            source: format!(
                                "{} redirected to {target:?}, not an absolute http(s) URL",
                                current.host()
                            )
                            .into(),
                        })
                    }
                };
                continue;
            }
            return match status {
                s if s.is_success() => Ok(response),
                StatusCode::NOT_FOUND => Err(StoreError::NotFound(
                    Location::Http(current.clone()).to_string(),
                )),
                StatusCode::RANGE_NOT_SATISFIABLE => Err(StoreError::Unsupported {
                    store: self.config.name.clone(),
                    what: "this range",
                }),
                s if s.is_server_error() => {
                    Err(self
                        .unavailable(format!("{} answered {s}", Location::Http(current.clone()))))
                }
                s => Err(StoreError::Backend {
                    store: self.config.name.clone(),
                    source: format!("{} answered {s}", Location::Http(current.clone())).into(),
                }),
            };
        }
        Err(StoreError::Backend {
            store: self.config.name.clone(),
            source: format!(
                "{} redirected more than {} times",
                Location::Http(location.clone()),
                MAX_REQUESTS - 1
            )
            .into(),
        })
    }
}

fn header_u64(response: &Response<Incoming>, name: header::HeaderName) -> Option<u64> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

#[async_trait]
impl Store for HttpStore {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            read_only: true,
            ranged_read: true,
            ..Capabilities::default()
        }
    }

    fn owns(&self, location: &Location) -> bool {
        matches!(location, Location::Http(_))
    }

    async fn writer(
        &self,
        _image_id: &str,
        _options: &WriteOptions,
    ) -> Result<Box<dyn ImageWriter>, StoreError> {
        Err(StoreError::ReadOnly {
            store: self.config.name.clone(),
        })
    }

    async fn reader(
        &self,
        location: &Location,
        range: Option<ByteRange>,
    ) -> Result<ImageReader, StoreError> {
        let http = self.http(location)?;
        let response = self.send(Method::GET, http, range).await?;
        let (at, stored_size) = match content_range(response.headers()) {
            Some((start, _, total)) if response.status() == StatusCode::PARTIAL_CONTENT => {
                (start, total)
            }
            _ => (
                0,
                header_u64(&response, header::CONTENT_LENGTH).ok_or_else(|| {
                    StoreError::Backend {
                        store: self.config.name.clone(),
                        source: format!("{location} gave no Content-Length").into(),
                    }
                })?,
            ),
        };
        let wanted = match range {
            Some(r) => ByteRange {
                start: r.start.min(stored_size),
                end: r.end.min(stored_size),
            },
            None => ByteRange {
                start: 0,
                end: stored_size,
            },
        };
        Ok(ImageReader {
            stored_size,
            range: wanted,
            body: ReaderBody::Stream(ranged_body(
                response.into_body(),
                at,
                wanted,
                self.config.timeout,
            )),
        })
    }

    async fn size(&self, location: &Location) -> Result<u64, StoreError> {
        let http = self.http(location)?;
        let response = self.send(Method::HEAD, http, None).await?;
        match header_u64(&response, header::CONTENT_LENGTH) {
            Some(size) if size > 0 => Ok(size),
            _ => Err(StoreError::InvalidLocation(format!(
                "{location} announces no size"
            ))),
        }
    }

    /// The data is the web server's, not the store's: removing a location leaves it there
    /// (Glance's http store cannot delete either, and only logs it).
    async fn delete(&self, location: &Location) -> Result<(), StoreError> {
        self.http(location)?;
        Ok(())
    }

    async fn sweep_abandoned(&self, _older_than: Duration) -> Result<usize, StoreError> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests;
