//! A node's import runner: claims queued jobs (any node's, or those pinned to this node's
//! staging disk), runs up to `[wsgi] task_pool_threads` at once, heartbeats each (the task's
//! "Copied N MiB" message with it), and ends each job as Glance ends its import flows.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as ChronoDuration;
use futures_util::FutureExt;
use serde_json::json;
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::spec::{ImportMethod, ImportSpec, ValidationData};
use super::{conversion, fetch};
use super::{ImportService, STALE_JOB};
use crate::datapath::{Beat, CopyRequest, DataError};
use crate::domain::image::{self, Image};
use crate::domain::tasks::{
    merge_store_list, props, ClaimedJob, ImportEnd, ImportedCopy, StagedData, TaskStatus,
};
use crate::domain::RequestContext;
use glint_store::{Location, StoreError};

/// How often a running job renews its claim (well within `STALE_JOB`).
pub(super) const HEARTBEAT: Duration = Duration::from_secs(20);
/// How often an idle runner looks for jobs other nodes queued.
const POLL: Duration = Duration::from_secs(5);
/// A job interrupted this many times (its node died each time) is failed, not retried.
const MAX_ATTEMPTS: i32 = 3;

/// How a job ended, and what is left to do once its end is recorded.
struct Outcome {
    end: ImportEnd,
    /// Staged data no longer needed.
    remove_staged: Option<StagedData>,
    /// Copies recorded and then given up (all stores had to succeed): their data.
    dropped: Vec<String>,
}

/// Why a job stopped before its end: it failed (with the task's message), or lost its claim
/// (another node runs it now, or its lock was broken) and must record nothing more.
enum Stop {
    Failed(String),
    Lost,
}

impl From<DataError> for Stop {
    fn from(e: DataError) -> Stop {
        Stop::Failed(e.to_string())
    }
}

/// A running job's shared state: bytes of the current copy, and whether the claim is lost.
#[derive(Default)]
struct Progress {
    bytes: AtomicU64,
    lost: AtomicBool,
}

impl Progress {
    fn message(&self) -> String {
        format!("Copied {} MiB", self.bytes.load(Ordering::Relaxed) >> 20)
    }
}

impl ImportService {
    /// Runs until dropped: claims jobs whenever a slot is free, at once when this node queued
    /// one, else every `POLL`.
    pub async fn run_jobs(self) {
        let slots = Arc::new(Semaphore::new(self.config.workers));
        loop {
            while let Ok(slot) = slots.clone().try_acquire_owned() {
                let claim = format!("{}/{}", self.node_id, uuid::Uuid::new_v4());
                let now = image::now();
                let stale = now - ChronoDuration::from_std(STALE_JOB).unwrap_or_default();
                match self
                    .tasks
                    .claim_job(&self.node_id, &claim, now, stale)
                    .await
                {
                    Ok(Some(job)) => {
                        let span = tracing::info_span!("import", task.id = %job.task.id, image.id = %job.image_id);
                        let service = self.clone();
                        tokio::spawn(
                            async move {
                                service.run_job(job, claim).await;
                                drop(slot);
                                service.wake.notify_one();
                            }
                            .instrument(span),
                        );
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot claim import jobs");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// At start-up: this node's own earlier claims (it restarted, so none runs) are let go,
    /// so that its jobs start again at once instead of after `STALE_JOB`.
    pub async fn release_own_jobs(&self) -> Result<u64, crate::domain::RepoError> {
        self.tasks
            .release_jobs_claimed_by(&format!("{}/", self.node_id))
            .await
    }

    async fn run_job(&self, job: ClaimedJob, claim: String) {
        tracing::info!(attempt = job.attempts, "import started");
        let progress = Arc::new(Progress::default());
        let heartbeat = {
            let (tasks, task_id, claim, progress) = (
                self.tasks.clone(),
                job.task.id.clone(),
                claim.clone(),
                progress.clone(),
            );
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(HEARTBEAT);
                ticks.tick().await;
                loop {
                    ticks.tick().await;
                    let message = progress.message();
                    match tasks
                        .touch_job(&task_id, &claim, Some(&message), image::now())
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => {
                            progress.lost.store(true, Ordering::Relaxed);
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot renew the import's claim"),
                    }
                }
            })
        };
        let outcome = self.execute(&job, &claim, &progress).await;
        heartbeat.abort();
        let Some(outcome) = outcome else {
            tracing::warn!("the import's claim was lost (taken over, or its lock broken): stopped");
            return;
        };
        let mut end = outcome.end;
        if end.status == TaskStatus::Success && end.message.is_empty() {
            end.message = progress.message();
        }
        match self
            .tasks
            .finish_job(&job.task.id, &claim, &job.image_id, &end, image::now())
            .await
        {
            Ok(true) => {
                tracing::info!(status = end.status.as_str(), message = %end.message, "import ended");
            }
            Ok(false) => {
                tracing::warn!("the import's claim was lost before its end was recorded");
                return;
            }
            Err(e) => {
                // The job stays claimed; its heartbeat stops, so it runs again elsewhere.
                tracing::error!(error = %e, "cannot record the import's end; it will run again");
                return;
            }
        }
        for url in &outcome.dropped {
            self.data.remove_copy_at(url).await;
        }
        if let Some(staged) = &outcome.remove_staged {
            if let Err(e) = self.data.remove_staged(staged).await {
                tracing::warn!(error = %e, "cannot remove staged data; the staging sweep will");
            }
        }
    }

    /// Runs the job to its outcome; `None` when its claim was lost.
    async fn execute(
        &self,
        job: &ClaimedJob,
        claim: &str,
        progress: &Arc<Progress>,
    ) -> Option<Outcome> {
        let ttl = ChronoDuration::from_std(self.config.task_time_to_live).unwrap_or_default();
        let failure = |message: String| Outcome {
            end: ImportEnd {
                status: TaskStatus::Failure,
                message,
                result: None,
                expires_at: image::now() + ttl,
                revert_to: None,
                set: Vec::new(),
                remove: Vec::new(),
                drop_locations: Vec::new(),
            },
            remove_staged: None,
            dropped: Vec::new(),
        };
        let spec = match ImportSpec::from_json(&job.spec) {
            Ok(spec) => spec,
            Err(why) => return Some(failure(why)),
        };
        let ctx = RequestContext::unauthenticated_admin(
            job.task
                .request_id
                .clone()
                .unwrap_or_else(|| "glint-import".to_owned()),
        );
        let image = match self.images.get_visible(&ctx, job.image_id.as_str()).await {
            Ok(image) => image,
            Err(_) => {
                return Some(failure(
                    "Image has been deleted, aborting import.".to_owned(),
                ))
            }
        };
        let mut run = JobRun {
            service: self,
            job,
            claim,
            spec: &spec,
            image,
            progress: progress.clone(),
            done: Vec::new(),
            failed: Vec::new(),
            recorded: Vec::new(),
            staged: None,
            converted: None,
            remote: None,
        };
        let stopped = if job.attempts > MAX_ATTEMPTS {
            Err(Stop::Failed(format!(
                "The import was interrupted {} times (its node stopped); it is not tried again.",
                job.attempts - 1
            )))
        } else {
            run.run().await
        };
        match stopped {
            Err(Stop::Lost) => None,
            Ok(()) => Some(run.success(ttl)),
            Err(Stop::Failed(message)) => Some(run.failure(message, ttl)),
        }
    }
}

/// One job's run: what it has done so far decides how it ends.
struct JobRun<'a> {
    service: &'a ImportService,
    job: &'a ClaimedJob,
    claim: &'a str,
    spec: &'a ImportSpec,
    image: Image,
    progress: Arc<Progress>,
    /// Stores written (or found written by an earlier attempt).
    done: Vec<String>,
    /// Stores that failed (all stores need not succeed).
    failed: Vec<String>,
    /// Locations this run recorded.
    recorded: Vec<String>,
    /// The data the stores are written from, when it is staged.
    staged: Option<StagedData>,
    /// The disk format the data was converted into (`image_conversion`).
    converted: Option<String>,
    /// A remote image's metadata (glance-download), recorded with the first copy.
    remote: Option<RemoteMetadata>,
}

/// What glance-download takes from the remote image besides its data.
struct RemoteMetadata {
    disk_format: Option<String>,
    container_format: Option<String>,
    properties: Vec<(String, String)>,
}

impl JobRun<'_> {
    async fn run(&mut self) -> Result<(), Stop> {
        match &self.spec.method {
            ImportMethod::GlanceDirect => {
                let staged = self
                    .service
                    .data
                    .staged(&self.image.id)
                    .await
                    .map_err(|e| Stop::Failed(e.to_string()))?
                    .ok_or_else(|| Stop::Failed("No data is staged for the image.".to_owned()))?;
                self.staged = Some(staged);
                self.convert().await?;
                self.write_stores_from_staging().await
            }
            ImportMethod::WebDownload { uri } => {
                let download = fetch::open(
                    &self.service.filter,
                    uri,
                    self.service.config.remote_timeout,
                    None,
                )
                .await
                .map_err(|e| Stop::Failed(e.to_string()))?;
                self.download_into_stores(download).await
            }
            ImportMethod::GlanceDownload { image_url, url, .. } => {
                self.glance_download(image_url, url).await
            }
            ImportMethod::CopyImage => self.copy_image().await,
            ImportMethod::LocationImport {
                url,
                validation_data,
            } => self.location_import(url, validation_data.as_ref()).await,
        }
    }

    /// The heartbeat the data path calls as bytes flow: progress, and the claim's state.
    fn beat(&self) -> Beat {
        let progress = self.progress.clone();
        Arc::new(move |received| {
            progress.bytes.store(received, Ordering::Relaxed);
            let alive = !progress.lost.load(Ordering::Relaxed);
            async move { Ok(alive) }.boxed()
        })
    }

    /// Stores still to write: a store an earlier attempt of the job wrote is done.
    fn pending_stores(&mut self) -> Vec<Option<String>> {
        let mut pending = Vec::new();
        for store in &self.spec.stores {
            match store {
                Some(id) if self.image.stores.contains(id) => self.done.push(id.clone()),
                other => pending.push(other.clone()),
            }
        }
        pending
    }

    /// glance-download: the remote image's metadata (it must be active; its formats and the
    /// properties `[glance_download_properties]` names come along), then its data, read with
    /// the caller's token as web-download reads a URL.
    async fn glance_download(&mut self, image_url: &str, url: &str) -> Result<(), Stop> {
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
    /// store, or staged first when there are several or a conversion.
    async fn download_into_stores(&mut self, download: fetch::Download) -> Result<(), Stop> {
        tracing::info!(url = %download.url, size = ?download.content_length, "downloading");
        let pending = self.pending_stores();
        let converting = self.service.plugin_enabled("image_conversion");
        if let ([store], false) = (pending.as_slice(), converting) {
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
        self.convert().await?;
        self.write_stores_from_staging().await
    }

    /// `image_conversion`: the staged data, checked by `qemu-img info` as its declared format,
    /// converted into `[image_conversion] output_format` in `[task] work_dir` (or in place
    /// when staging is this node's directory), and staged again in place of the original.
    async fn convert(&mut self) -> Result<(), Stop> {
        if !self.service.plugin_enabled("image_conversion") {
            return Ok(());
        }
        let failed = |e: conversion::ConversionError| Stop::Failed(e.to_string());
        let to = self.service.config.conversion_format.clone();
        let Some(from) = conversion::source_format(&self.image, &to).map_err(failed)? else {
            return Ok(());
        };
        let from = from.to_owned();
        let Some(staged) = self.staged.clone() else {
            return Err(Stop::Failed("No data is staged for the image.".to_owned()));
        };
        let data = &self.service.data;
        let dir = &self.service.config.work_dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| Stop::Failed(format!("cannot use work_dir {}: {e}", dir.display())))?;
        let local = data.staged_path(&staged);
        let files = conversion::WorkFiles::new(dir, self.image.id.as_str(), local.clone());
        if local.is_none() {
            data.fetch_staged(&staged, &files.input).await?;
        }
        let vmdk_types = &data.inspection().vmdk_allowed_types;
        conversion::check_with_qemu_img(&files.input, &from, vmdk_types)
            .await
            .map_err(failed)?;
        conversion::convert(&files.input, &from, &files.output, &to)
            .await
            .map_err(failed)?;
        tracing::info!(from = %from, to = %to, "image converted");
        self.image.disk_format = Some(to.clone());
        self.image.container_format = Some("bare".to_owned());
        let restaged = data
            .stage_file(&self.image, &files.output, &self.beat())
            .await?;
        self.staged = Some(restaged);
        self.converted = Some(to);
        Ok(())
    }

    async fn write_stores_from_staging(&mut self) -> Result<(), Stop> {
        let Some(staged) = self.staged.clone() else {
            return Err(Stop::Failed("No data is staged for the image.".to_owned()));
        };
        let pending = self.pending_stores();
        let last = pending.len().saturating_sub(1);
        for (i, store) in pending.into_iter().enumerate() {
            self.progress.bytes.store(0, Ordering::Relaxed);
            let source = self.service.data.open_staged(&staged).await?;
            let size = u64::try_from(staged.size).ok();
            let imported = self
                .service
                .data
                .import_into(&self.image, store.as_deref(), source, size, &self.beat())
                .await;
            // The staged data must still be what was staged.
            let imported = match imported {
                Ok(copy)
                    if staged
                        .checksum
                        .as_ref()
                        .is_some_and(|c| *c != copy.data.checksum) =>
                {
                    self.service.data.discard(&copy).await;
                    Err(DataError::Corrupt {
                        image: self.image.id.to_string(),
                        why: "the staged data changed since it was staged".to_owned(),
                    })
                }
                other => other,
            };
            let activate = !self.spec.all_stores_must_succeed || i == last;
            self.record(store, imported, activate).await?;
        }
        Ok(())
    }

    /// Records a copy under the job's lock; a store that failed fails the job when all must
    /// succeed, else is listed in `os_glance_failed_import`.
    async fn record(
        &mut self,
        store: Option<String>,
        imported: Result<crate::datapath::ImportedData, DataError>,
        activate: bool,
    ) -> Result<(), Stop> {
        let copy = match imported {
            Ok(copy) => copy,
            Err(e) => {
                if self.progress.lost.load(Ordering::Relaxed) {
                    return Err(Stop::Lost);
                }
                tracing::warn!(store = ?store, error = %e, "import into a store failed");
                if self.spec.all_stores_must_succeed {
                    self.failed.extend(store);
                    return Err(Stop::Failed(e.to_string()));
                }
                self.failed.extend(store);
                return Ok(());
            }
        };
        let mut recorded = ImportedCopy::written(&copy.data, store.clone(), activate);
        if let Some(remote) = &self.remote {
            recorded.disk_format = remote.disk_format.clone();
            recorded.container_format = remote.container_format.clone();
            recorded.properties = remote.properties.clone();
        }
        if let Some(format) = &self.converted {
            recorded.disk_format = Some(format.clone());
            recorded.container_format = Some("bare".to_owned());
        }
        match self.record_copy(&recorded).await {
            Ok(()) => {
                self.done.extend(store);
                Ok(())
            }
            Err(stop) => {
                self.service.data.discard(&copy).await;
                Err(stop)
            }
        }
    }

    /// Records a copy (or a registered location) under the job's lock.
    async fn record_copy(&mut self, copy: &ImportedCopy) -> Result<(), Stop> {
        let recorded = self
            .service
            .tasks
            .record_import(
                &self.job.task.id,
                self.claim,
                &self.image.id,
                copy,
                image::now(),
            )
            .await;
        match recorded {
            Ok(true) => {
                self.recorded.push(copy.location.clone());
                Ok(())
            }
            Ok(false) => Err(Stop::Lost),
            Err(e) => Err(Stop::Failed(e.to_string())),
        }
    }

    /// A registered location: its size asked of its store, its data read through the digests
    /// and the inspection (`do_secure_hash`, retried `http_retries` times when the store is
    /// unavailable), checked against `validation_data`, and only then recorded, the image
    /// active. Data that does not match is neither recorded nor touched.
    async fn location_import(
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

    async fn copy_image(&mut self) -> Result<(), Stop> {
        for store in self.pending_stores().into_iter().flatten() {
            self.progress.bytes.store(0, Ordering::Relaxed);
            let progress = self.progress.clone();
            let copied = self
                .service
                .data
                .copy_image(
                    CopyRequest {
                        image_id: self.image.id.as_str(),
                        to: &store,
                        from: None,
                    },
                    &move |bytes| progress.bytes.store(bytes, Ordering::Relaxed),
                )
                .await;
            if self.progress.lost.load(Ordering::Relaxed) {
                return Err(Stop::Lost);
            }
            match copied {
                Ok(_) => self.done.push(store),
                Err(e) => {
                    tracing::warn!(store = %store, error = %e, "copy into a store failed");
                    self.failed.push(store);
                    if self.spec.all_stores_must_succeed {
                        return Err(Stop::Failed(e.to_string()));
                    }
                }
            }
        }
        Ok(())
    }

    /// The store lists once the job ends: none left importing, the failed ones listed.
    fn store_lists(&self) -> Vec<(String, String)> {
        if matches!(self.spec.method, ImportMethod::LocationImport { .. }) {
            return Vec::new();
        }
        let all: Vec<&str> = self.spec.store_ids().collect();
        let failed: Vec<&str> = self.failed.iter().map(String::as_str).collect();
        let done: Vec<&str> = self.done.iter().map(String::as_str).collect();
        let properties = &self.image.properties;
        vec![
            (
                props::IMPORTING_TO.to_owned(),
                merge_store_list(
                    properties.get(props::IMPORTING_TO).map(String::as_str),
                    &[],
                    &all,
                ),
            ),
            (
                props::FAILED_IMPORT.to_owned(),
                merge_store_list(
                    properties.get(props::FAILED_IMPORT).map(String::as_str),
                    &failed,
                    &done,
                ),
            ),
        ]
    }

    fn success(self, ttl: ChronoDuration) -> Outcome {
        if self.done.is_empty() && self.recorded.is_empty() {
            let message = "None of the uploads finished!".to_owned();
            return self.failure(message, ttl);
        }
        Outcome {
            end: ImportEnd {
                status: TaskStatus::Success,
                message: String::new(),
                result: Some(json!({ "image_id": self.image.id.to_string() })),
                expires_at: image::now() + ttl,
                revert_to: None,
                set: self.store_lists(),
                remove: Vec::new(),
                drop_locations: Vec::new(),
            },
            remove_staged: self.staged.clone(),
            dropped: Vec::new(),
        }
    }

    /// Where Glance leaves an image after a failed import: a download goes back to `queued`
    /// (its staged data removed); a glance-direct import whose stores all had to succeed
    /// stays `importing` with its data still staged, the copies it made removed; one whose
    /// stores need not all succeed goes back to `queued` when none did; copy-image leaves the
    /// image active.
    fn failure(self, message: String, ttl: ChronoDuration) -> Outcome {
        let keep_importing = matches!(self.spec.method, ImportMethod::GlanceDirect)
            && self.spec.all_stores_must_succeed;
        let revert_to = match self.spec.method {
            ImportMethod::CopyImage | ImportMethod::LocationImport { .. } => None,
            _ if keep_importing => None,
            _ => Some("queued"),
        };
        let dropped = if self.spec.all_stores_must_succeed
            && !matches!(self.spec.method, ImportMethod::CopyImage)
        {
            self.recorded.clone()
        } else {
            Vec::new()
        };
        let mut failed_run = self;
        if !matches!(
            failed_run.spec.method,
            ImportMethod::GlanceDirect | ImportMethod::CopyImage
        ) {
            // A download that failed failed for every store it was for.
            let all: Vec<String> = failed_run.spec.store_ids().map(str::to_owned).collect();
            failed_run.failed.extend(all);
        }
        let remove_staged = if keep_importing {
            None
        } else {
            failed_run.staged.clone()
        };
        Outcome {
            end: ImportEnd {
                status: TaskStatus::Failure,
                message,
                result: None,
                expires_at: image::now() + ttl,
                revert_to,
                set: failed_run.store_lists(),
                remove: Vec::new(),
                drop_locations: dropped.clone(),
            },
            remove_staged,
            dropped,
        }
    }
}
