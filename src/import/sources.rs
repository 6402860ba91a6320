//! Where an import job's data comes from besides staging: downloads (web-download,
//! glance-download) and registered locations.

use std::sync::atomic::Ordering;

use serde_json::json;

use super::fetch;
use super::runner::{JobRun, Stop};
use super::spec::ValidationData;
use crate::datapath::DataError;
use crate::domain::tasks::ImportedCopy;
use glint_store::{Location, StoreError};

/// What glance-download takes from the remote image besides its data.
pub(super) struct RemoteMetadata {
    pub(super) disk_format: Option<String>,
    pub(super) container_format: Option<String>,
    pub(super) properties: Vec<(String, String)>,
}

impl JobRun<'_> {
    /// glance-download: the remote image's metadata (it must be active; its formats and the
    /// properties `[glance_download_properties]` names come along), then its data, read with
    /// the caller's token as web-download reads a URL.
    pub(super) async fn glance_download(&mut self, image_url: &str, url: &str) -> Result<(), Stop> {
        let token = self
            .service
            .take_token(self.image.id.as_str())
            .ok_or_else(|| {
                Stop::Failed(
                    "The caller's token is no longer held (its node restarted): import the image again."
                        .to_owned(),
                )
            })?;
        let failed = |e: fetch::FetchError| Stop::Failed(e.to_string());
        let timeout = self.service.config.remote_timeout;
        let filter = &self.service.filter;
        let remote = fetch::json(filter, image_url, timeout, Some(&token.0))
            .await
            .map_err(failed)?;
        let status = remote["status"].as_str().unwrap_or("");
        if status != "active" {
            return Err(Stop::Failed(format!(
                "Source image status should be active instead of {status}"
            )));
        }
        let size = remote["size"].as_u64().ok_or_else(|| {
            Stop::Failed(format!(
                "Size attribute of remote image {} could not be determined.",
                remote["id"].as_str().unwrap_or("")
            ))
        })?;
        let text = |key: &str| remote[key].as_str().map(str::to_owned);
        self.remote = Some(RemoteMetadata {
            disk_format: text("disk_format"),
            container_format: text("container_format"),
            properties: remote
                .as_object()
                .map(|fields| {
                    fields
                        .iter()
                        .filter(|(key, _)| {
                            !key.starts_with(crate::domain::schema::RESERVED_PREFIX)
                                && self
                                    .service
                                    .config
                                    .download_properties
                                    .iter()
                                    .any(|prefix| key.starts_with(prefix.as_str()))
                        })
                        .filter_map(|(key, value)| {
                            value.as_str().map(|v| (key.clone(), v.to_owned()))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        });
        if let Some(remote) = &self.remote {
            self.image.disk_format = remote.disk_format.clone();
            self.image.container_format = remote.container_format.clone();
        }
        let download = fetch::open(filter, url, timeout, Some(&token.0))
            .await
            .map_err(failed)?;
        if download.content_length.is_some_and(|l| l != size) {
            return Err(Stop::Failed(format!(
                "Task {} failed because downloaded data size {} is different from expected {size}",
                self.job.task.id,
                download.content_length.unwrap_or_default()
            )));
        }
        self.download_into_stores(download).await
    }

    /// A download (web-download, glance-download) into the job's stores: straight into one
    /// store, or staged first when there are several or a plugin works on the data.
    pub(super) async fn download_into_stores(
        &mut self,
        download: fetch::Download,
    ) -> Result<(), Stop> {
        tracing::info!(url = %download.url, size = ?download.content_length, "downloading");
        let pending = self.pending_stores();
        let plugins = self.service.data_plugins_enabled();
        if let ([store], false) = (pending.as_slice(), plugins) {
            // One store: the download streams straight into it, staged nowhere.
            let imported = self
                .service
                .data
                .import_into(
                    &self.image,
                    store.as_deref(),
                    download.body,
                    download.content_length,
                    &self.beat(),
                )
                .await;
            return self.record(store.clone(), imported, true).await;
        }
        let staged = self
            .service
            .data
            .stage_stream(
                &self.image,
                download.body,
                download.content_length,
                &self.beat(),
            )
            .await?;
        self.staged = Some(staged);
        self.run_data_plugins().await?;
        self.write_stores_from_staging().await
    }

    /// A registered location: its size asked of its store, its data read through the digests
    /// and the inspection (`do_secure_hash`, retried `http_retries` times when the store is
    /// unavailable), checked against `validation_data`, and only then recorded, the image
    /// active. Data that does not match is neither recorded nor touched.
    pub(super) async fn location_import(
        &mut self,
        url: &str,
        validation: Option<&ValidationData>,
    ) -> Result<(), Stop> {
        let invalid = |why: String| Stop::Failed(format!("Invalid location: {why}"));
        let location = Location::parse(url).map_err(|e| invalid(e.to_string()))?;
        let data = &self.service.data;
        let (store, size) = data
            .location_size(&location)
            .await
            .map_err(|e| invalid(e.to_string()))?;
        let mut copy = ImportedCopy {
            location: url.to_owned(),
            metadata: match &store {
                Some(id) => json!({ "store": id }).to_string(),
                None => "{}".to_owned(),
            },
            size: i64::try_from(size).ok(),
            activate: true,
            ..ImportedCopy::default()
        };
        if !self.service.config.do_secure_hash {
            copy.os_hash_algo = validation.map(|v| v.os_hash_algo.clone());
            copy.os_hash_value = validation.map(|v| v.os_hash_value.clone());
            return self.record_copy(&copy).await;
        }
        let algorithm = validation.map_or(data.hashing_algorithm(), |v| v.os_hash_algo.as_str());
        let mut retries = self.service.config.http_retries;
        let (bytes, digests, inspection) = loop {
            match data
                .hash_location(&self.image, &location, algorithm, &self.beat())
                .await
            {
                Ok(read) => break read,
                Err(_) if self.progress.lost.load(Ordering::Relaxed) => return Err(Stop::Lost),
                Err(
                    e @ (DataError::Internal(_) | DataError::Store(StoreError::Unavailable { .. })),
                ) if retries > 0 => {
                    retries -= 1;
                    tracing::warn!(%location, error = %e, retries_left = retries, "reading the location failed; retrying");
                }
                Err(e) => return Err(e.into()),
            }
        };
        if bytes != size {
            return Err(Stop::Failed(format!(
                "{location} gave {bytes} bytes where its store announced {size}"
            )));
        }
        if let Some(expected) = validation {
            if !expected.os_hash_value.eq_ignore_ascii_case(&digests.value) {
                return Err(Stop::Failed(format!(
                    "os_hash_value: ({}) not matched with actual os_hash_value: ({})",
                    expected.os_hash_value, digests.value
                )));
            }
        }
        copy.virtual_size = inspection.virtual_size.and_then(|v| i64::try_from(v).ok());
        copy.checksum = Some(digests.md5);
        copy.os_hash_algo = Some(digests.algorithm);
        copy.os_hash_value = Some(digests.value);
        self.record_copy(&copy).await
    }
}
