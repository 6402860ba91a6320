//! The S3 store: each image's data is one object, named by the image id, in one bucket of an
//! S3-compatible server (AWS, Ceph RGW, MinIO, s3s), addressed as Glance addresses it:
//! `s3://<host>/<bucket>/<image id>` (`s3+https://` over TLS). Locations Glance wrote with
//! credentials in them (`s3://KEY:SECRET@host/…`) are read with the store's own credentials;
//! new ones carry none.

mod client;
mod config;
mod error;
mod plan;
mod writer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use glint_store::{
    is_image_id, ByteRange, Capabilities, ImageReader, ImageWriter, Location, ReaderBody, Store,
    StoreError, StoredData, WriteOptions,
};
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsAuthorizer, AwsCredential};
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, RetryConfig};

use client::{OpensslConnector, OpensslCrypto};
pub use config::{S3Config, Secret, UrlFormat};
use error::store_error;
use plan::Plan;
use writer::{S3Writer, MARKER_PREFIX};

/// Requests that fail for reasons that may pass are retried this often, within this time:
/// enough for a blip, short enough that a server that is down gives a prompt 503.
const RETRIES: usize = 3;
const RETRY_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug)]
pub struct S3Store {
    shared: Arc<Shared>,
}

/// What the store and its writers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: S3Config,
    pub(crate) s3: AmazonS3,
    /// `host[:port][/path]` as locations spell it.
    pub(crate) location_host: String,
    region: String,
    connector: OpensslConnector,
    /// Set once `create_bucket_on_put` has made sure the bucket exists.
    bucket_ready: AtomicBool,
}

impl Shared {
    pub(crate) fn error(&self, image_id: &str, error: object_store::Error) -> StoreError {
        store_error(&self.config.name, image_id, error)
    }

    pub(crate) async fn write_marker(
        &self,
        marker: &Path,
        image_id: &str,
        upload_id: &str,
    ) -> Result<(), StoreError> {
        let body = serde_json::json!({"key": image_id, "upload_id": upload_id}).to_string();
        self.s3
            .put(marker, bytes::Bytes::from(body).into())
            .await
            .map(|_| ())
            .map_err(|e| self.error(image_id, e))
    }

    pub(crate) async fn remove_marker(&self, marker: &Path) {
        if let Err(e) = self.s3.delete(marker).await {
            tracing::warn!(store.name = %self.config.name, %marker, error = %e,
                "cannot remove a finished upload's marker; the sweep will");
        }
    }

    /// `s3_store_create_bucket_on_put`: a signed `PUT /<bucket>` (object_store has no bucket
    /// calls), once per process; "already yours" counts as done.
    async fn ensure_bucket(&self) -> Result<(), StoreError> {
        if !self.config.create_bucket_on_put || self.bucket_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        let failed = |why: String| StoreError::Unavailable {
            store: self.config.name.clone(),
            retryable: true,
            source: why.into(),
        };
        let credential = AwsCredential {
            key_id: self.config.access_key.clone(),
            secret_key: self.config.secret_key.0.clone(),
            token: None,
        };
        let url = format!("{}/{}", self.config.endpoint(), self.config.bucket);
        let mut request = http::Request::put(url)
            .body(object_store::client::HttpRequestBody::empty())
            .map_err(|e| failed(e.to_string()))?;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .with_crypto(&OpensslCrypto)
            .try_authorize(&mut request, None)
            .map_err(|e| failed(e.to_string()))?;
        let client = self.connector.client().map_err(failed)?;
        let response = client
            .execute(request)
            .await
            .map_err(|e| error::unanswered(&self.config.name, e.to_string()))?;
        let status = response.status();
        if status.is_success() || status == http::StatusCode::CONFLICT {
            self.bucket_ready.store(true, Ordering::Relaxed);
            return Ok(());
        }
        Err(StoreError::Misconfigured {
            store: self.config.name.clone(),
            why: format!("cannot create bucket {}: {status}", self.config.bucket),
        })
    }
}

impl S3Store {
    /// Builds the client; no request is made until the first use, so a server that is down
    /// at start-up only makes requests fail (503) until it is back.
    pub fn new(config: S3Config) -> Result<S3Store, StoreError> {
        let misconfigured = |why: String| StoreError::Misconfigured {
            store: config.name.clone(),
            why,
        };
        if config.host.is_empty() || config.bucket.is_empty() || config.access_key.is_empty() {
            return Err(misconfigured(
                "s3_store_host, s3_store_bucket and s3_store_access_key are required".into(),
            ));
        }
        let region = config
            .region
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".to_owned());
        let virtual_host = match config.url_format {
            UrlFormat::Virtual => true,
            UrlFormat::Path => false,
            // As boto's "auto": virtual-hosted on AWS when the bucket can be a host name.
            UrlFormat::Auto => {
                config.location_host().contains("amazonaws.com")
                    && config
                        .bucket
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            }
        };
        let endpoint = if virtual_host {
            let base = config.endpoint();
            let (scheme, rest) = base.split_once("://").unwrap_or(("https", &base));
            format!("{scheme}://{}.{rest}", config.bucket)
        } else {
            config.endpoint()
        };
        let connector = OpensslConnector {
            cacert: config.cacert.clone(),
        };
        let s3 = AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_allow_http(!config.is_https())
            .with_region(&region)
            .with_bucket_name(&config.bucket)
            .with_access_key_id(&config.access_key)
            .with_secret_access_key(&config.secret_key.0)
            .with_virtual_hosted_style_request(virtual_host)
            // Glint hashes every byte itself (md5 and sha512); a third hash for the signature
            // would cost CPU for nothing the transport's own checks do not give.
            .with_unsigned_payload(true)
            .with_retry(RetryConfig {
                max_retries: RETRIES,
                retry_timeout: RETRY_TIMEOUT,
                ..RetryConfig::default()
            })
            .with_http_connector(connector.clone())
            .with_crypto_provider(Arc::new(OpensslCrypto))
            .build()
            .map_err(|e| misconfigured(e.to_string()))?;
        Ok(S3Store {
            shared: Arc::new(Shared {
                location_host: config.location_host(),
                config,
                s3,
                region,
                connector,
                bucket_ready: AtomicBool::new(false),
            }),
        })
    }

    pub fn config(&self) -> &S3Config {
        &self.shared.config
    }

    /// The object key of a location of this store.
    fn key_of(&self, location: &Location) -> Result<Path, StoreError> {
        match location {
            Location::S3(s3)
                if s3.bucket() == self.shared.config.bucket
                    && s3.host().eq_ignore_ascii_case(&self.shared.location_host)
                    && s3.is_https() == self.shared.config.is_https()
                    && !s3.key().is_empty() =>
            {
                Ok(Path::from(s3.key()))
            }
            _ => Err(StoreError::InvalidLocation(location.to_string())),
        }
    }
}

#[async_trait]
impl Store for S3Store {
    fn name(&self) -> &str {
        &self.shared.config.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            read_only: false,
            ranged_read: true,
            thin_provisioning: false,
            caller_accounts: false,
        }
    }

    fn owns(&self, location: &Location) -> bool {
        self.key_of(location).is_ok()
    }

    fn write_buffer(&self, options: &WriteOptions) -> Result<u64, StoreError> {
        Ok(Plan::new(&self.shared.config, options)?.buffer())
    }

    async fn writer(
        &self,
        image_id: &str,
        options: &WriteOptions,
    ) -> Result<Box<dyn ImageWriter>, StoreError> {
        if !is_image_id(image_id) {
            return Err(StoreError::InvalidLocation(image_id.to_owned()));
        }
        let plan = Plan::new(&self.shared.config, options)?;
        self.shared.ensure_bucket().await?;
        let key = Path::from(image_id);
        match self.shared.s3.head(&key).await {
            Ok(_) => {
                let location: Location = glint_store::S3Location::new(
                    self.shared.config.is_https(),
                    &self.shared.location_host,
                    &self.shared.config.bucket,
                    image_id,
                )?
                .into();
                return Err(StoreError::AlreadyExists(location.uri()));
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.shared.error(image_id, e)),
        }
        Ok(Box::new(
            S3Writer::start(self.shared.clone(), image_id, plan).await?,
        ))
    }

    async fn reader(
        &self,
        location: &Location,
        range: Option<ByteRange>,
    ) -> Result<ImageReader, StoreError> {
        let key = self.key_of(location)?;
        let shown = location.to_string();
        if let Some(r) = range.filter(ByteRange::is_empty) {
            let size = self.size(location).await?;
            let at = r.start.min(size);
            return Ok(ImageReader {
                stored_size: size,
                range: ByteRange { start: at, end: at },
                body: ReaderBody::Stream(Box::pin(futures_util::stream::empty())),
            });
        }
        let options = GetOptions {
            range: range.map(|r| GetRange::Bounded(r.start..r.end)),
            ..GetOptions::default()
        };
        let result = match self.shared.s3.get_opts(&key, options).await {
            Ok(result) => result,
            // A range starting at or past the end: S3 answers 416, the contract an empty read.
            Err(e) if range.is_some() && !matches!(e, object_store::Error::NotFound { .. }) => {
                let size = self.size(location).await?;
                match range {
                    Some(r) if r.start >= size => {
                        return Ok(ImageReader {
                            stored_size: size,
                            range: ByteRange {
                                start: size,
                                end: size,
                            },
                            body: ReaderBody::Stream(Box::pin(futures_util::stream::empty())),
                        })
                    }
                    _ => return Err(store_error(&self.shared.config.name, &shown, e)),
                }
            }
            Err(e) => return Err(store_error(&self.shared.config.name, &shown, e)),
        };
        let stored_size = result.meta.size;
        let range = ByteRange {
            start: result.range.start,
            end: result.range.end,
        };
        let store = self.shared.config.name.clone();
        let body = result
            .into_stream()
            .map(move |block| block.map_err(|e| std::io::Error::other(store_error(&store, "", e))));
        Ok(ImageReader {
            stored_size,
            range,
            body: ReaderBody::Stream(Box::pin(body)),
        })
    }

    async fn size(&self, location: &Location) -> Result<u64, StoreError> {
        let key = self.key_of(location)?;
        self.shared
            .s3
            .head(&key)
            .await
            .map(|meta| meta.size)
            .map_err(|e| store_error(&self.shared.config.name, &location.to_string(), e))
    }

    async fn delete(&self, location: &Location) -> Result<(), StoreError> {
        // S3 answers a delete of nothing with success; the contract wants `NotFound`.
        self.size(location).await?;
        let key = self.key_of(location)?;
        self.shared
            .s3
            .delete(&key)
            .await
            .map_err(|e| store_error(&self.shared.config.name, &location.to_string(), e))
    }

    async fn sweep_abandoned(&self, older_than: Duration) -> Result<usize, StoreError> {
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
        let prefix = Path::from(MARKER_PREFIX);
        let mut markers = self.shared.s3.list(Some(&prefix));
        let mut removed = 0;
        while let Some(marker) = markers.next().await {
            let marker = match marker {
                Ok(marker) => marker,
                Err(object_store::Error::NotFound { .. }) => break,
                Err(e) => return Err(self.shared.error(MARKER_PREFIX, e)),
            };
            if marker.last_modified > cutoff {
                continue;
            }
            let body = match self.shared.s3.get(&marker.location).await {
                Ok(result) => result.bytes().await.unwrap_or_default(),
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(self.shared.error(MARKER_PREFIX, e)),
            };
            let record: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if let (Some(key), Some(upload_id)) =
                (record["key"].as_str(), record["upload_id"].as_str())
            {
                match self
                    .shared
                    .s3
                    .abort_multipart(&Path::from(key), &upload_id.to_owned())
                    .await
                {
                    // Gone already (completed, or aborted by the server's own lifecycle rule).
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    // s3s-fs answers a finished upload id with 403.
                    Err(object_store::Error::PermissionDenied { .. }) => {}
                    Err(e) => return Err(self.shared.error(key, e)),
                }
            }
            self.shared.remove_marker(&marker.location).await;
            removed += 1;
        }
        Ok(removed)
    }

    async fn committed_data(&self) -> Result<Vec<StoredData>, StoreError> {
        let listing = self
            .shared
            .s3
            .list_with_delimiter(None)
            .await
            .map_err(|e| self.shared.error("", e))?;
        let mut found = Vec::new();
        for object in listing.objects {
            let key = object.location.to_string();
            if !is_image_id(&key) {
                continue;
            }
            let location: Location = glint_store::S3Location::new(
                self.shared.config.is_https(),
                &self.shared.location_host,
                &self.shared.config.bucket,
                &key,
            )?
            .into();
            found.push(StoredData {
                image_id: key,
                location,
                aliases: Vec::new(),
                modified: object.last_modified.into(),
            });
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests;
