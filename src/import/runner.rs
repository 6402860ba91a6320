//! A node's import runner: claims queued jobs (any node's, or those pinned to this node's
//! staging disk), runs up to `[wsgi] task_pool_threads` at once, heartbeats each (the task's
//! "Copied N MiB" message with it), and ends each job as Glance ends its import flows.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as ChronoDuration;
use futures_util::FutureExt;
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::fetch;
use super::outcome::Outcome;
use super::sources::RemoteMetadata;
use super::spec::{ImportMethod, ImportSpec};
use super::{ImportService, STALE_JOB};
use crate::datapath::{Beat, CopyRequest, DataError};
use crate::domain::image::{self, Image};
use crate::domain::tasks::{ClaimedJob, ImportedCopy, StagedData, TaskStatus};
use crate::domain::RequestContext;

/// How often a running job renews its claim (well within `STALE_JOB`).
pub(super) const HEARTBEAT: Duration = Duration::from_secs(20);
/// How often an idle runner looks for jobs other nodes queued.
const POLL: Duration = Duration::from_secs(5);
/// A job interrupted this many times (its node died each time) is failed, not retried.
const MAX_ATTEMPTS: i32 = 3;

/// Why a job stopped before its end: it failed (with the task's message), or lost its claim
/// (another node runs it now, or its lock was broken) and must record nothing more.
pub(super) enum Stop {
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
pub(super) struct Progress {
    pub(super) bytes: AtomicU64,
    pub(super) lost: AtomicBool,
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
        let _running = crate::metrics::global().imports_running.enter();
        tracing::info!(attempt = job.attempts, "import started");
        let ctx = Self::runner(&job);
        let mut task = job.task.clone();
        task.status = TaskStatus::Processing;
        self.images.notify_task(&ctx, "task.processing", &task);
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
        let outcome = match outcome {
            Some(outcome) => outcome,
            // Its lock went with its image: the job ends now, not at another node's takeover.
            None if self.image_gone(&job).await => Outcome::image_deleted(&self.config),
            None => {
                tracing::warn!(
                    "the import's claim was lost (taken over, or its lock broken): stopped"
                );
                return;
            }
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
                // Glance's TaskProxy: the task's end, then `task.run` once its run returns.
                task.status = end.status;
                task.expires_at = Some(end.expires_at);
                task.updated_at = image::now();
                let ended = if end.status == TaskStatus::Success {
                    "task.success"
                } else {
                    "task.failure"
                };
                self.images.notify_task(&ctx, ended, &task);
                self.images.notify_task(&ctx, "task.run", &task);
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

    /// The context a job reads its image in: the runner's, on behalf of no user.
    fn runner(job: &ClaimedJob) -> RequestContext {
        RequestContext::unauthenticated_admin(
            job.task
                .request_id
                .clone()
                .unwrap_or_else(|| "glint-import".to_owned()),
        )
    }

    /// Whether the job's image was deleted (a database that does not answer says no).
    async fn image_gone(&self, job: &ClaimedJob) -> bool {
        matches!(
            self.images.get_visible(&Self::runner(job), job.image_id.as_str()).await,
            Err(e) if e.kind() == Some(crate::domain::error::Refusal::NotFound)
        )
    }

    /// Runs the job to its outcome; `None` when its claim was lost.
    async fn execute(
        &self,
        job: &ClaimedJob,
        claim: &str,
        progress: &Arc<Progress>,
    ) -> Option<Outcome> {
        let spec = match ImportSpec::from_json(&job.spec) {
            Ok(spec) => spec,
            Err(why) => return Some(Outcome::failed(why, &self.config)),
        };
        let image = match self
            .images
            .get_visible(&Self::runner(job), job.image_id.as_str())
            .await
        {
            Ok(image) => image,
            Err(_) => return Some(Outcome::image_deleted(&self.config)),
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
            Ok(()) => Some(run.success()),
            Err(Stop::Failed(message)) => Some(run.failure(message)),
        }
    }
}

/// One job's run: what it has done so far decides how it ends.
pub(super) struct JobRun<'a> {
    pub(super) service: &'a ImportService,
    pub(super) job: &'a ClaimedJob,
    pub(super) claim: &'a str,
    pub(super) spec: &'a ImportSpec,
    pub(super) image: Image,
    pub(super) progress: Arc<Progress>,
    /// Stores written (or found written by an earlier attempt).
    pub(super) done: Vec<String>,
    /// Stores that failed (all stores need not succeed).
    pub(super) failed: Vec<String>,
    /// Locations this run recorded.
    pub(super) recorded: Vec<String>,
    /// The data the stores are written from, when it is staged.
    pub(super) staged: Option<StagedData>,
    /// The disk format the data was converted into (`image_conversion`).
    pub(super) converted: Option<String>,
    /// A remote image's metadata (glance-download), recorded with the first copy.
    pub(super) remote: Option<RemoteMetadata>,
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
                self.run_data_plugins().await?;
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
                refused: Some(why), ..
            } => Err(Stop::Failed(why.clone())),
            ImportMethod::LocationImport {
                url,
                validation_data,
                refused: None,
            } => self.location_import(url, validation_data.as_ref()).await,
        }
    }

    /// The heartbeat the data path calls as bytes flow: progress, and the claim's state.
    pub(super) fn beat(&self) -> Beat {
        let progress = self.progress.clone();
        Arc::new(move |received| {
            progress.bytes.store(received, Ordering::Relaxed);
            let alive = !progress.lost.load(Ordering::Relaxed);
            async move { Ok(alive) }.boxed()
        })
    }

    /// Stores still to write: a store an earlier attempt of the job wrote is done.
    pub(super) fn pending_stores(&mut self) -> Vec<Option<String>> {
        let mut pending = Vec::new();
        for store in &self.spec.stores {
            match store {
                Some(id) if self.image.stores.contains(id) => self.done.push(id.clone()),
                other => pending.push(other.clone()),
            }
        }
        pending
    }

    pub(super) async fn write_stores_from_staging(&mut self) -> Result<(), Stop> {
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
    pub(super) async fn record(
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
                self.service.images.notify_error(
                    &ImportService::runner(self.job),
                    "image.upload",
                    format!(
                        "Failed to upload image data for image {} due to internal error: {e}",
                        self.image.id
                    ),
                );
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
                self.notify_recorded(activate).await;
                Ok(())
            }
            Err(stop) => {
                self.service.data.discard(&copy).await;
                Err(stop)
            }
        }
    }

    /// After a recorded copy, Glance's `set_data` notices: `image.upload`, `image.activate`
    /// when the copy made the image active, and the flow's `image.update`.
    async fn notify_recorded(&mut self, activate: bool) {
        let images = &self.service.images;
        if !images.events().enabled("image.upload") && !images.events().enabled("image.update") {
            return;
        }
        let ctx = ImportService::runner(self.job);
        let Ok(image) = images.get_visible(&ctx, self.image.id.as_str()).await else {
            return;
        };
        images.notify_image_data(&ctx, "image.upload", &image, None);
        // Only the copy that made the image active: the last one when all stores must
        // succeed, else the first.
        let first = self.recorded.len() == 1 || self.spec.all_stores_must_succeed;
        if activate && first && self.image.status != crate::domain::ImageStatus::Active {
            images.notify_image(&ctx, "image.activate", &image);
        }
        images.notify_image(&ctx, "image.update", &image);
    }

    /// Records a copy (or a registered location) under the job's lock.
    pub(super) async fn record_copy(&mut self, copy: &ImportedCopy) -> Result<(), Stop> {
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
}
