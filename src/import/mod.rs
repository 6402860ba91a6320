//! Interoperable import: `PUT /stage`, `POST /import` (glance-direct, web-download,
//! copy-image), `GET /v2/info/import`, and the tasks clients follow them by.
//!
//! ```text
//! POST /import ── checks (Glance's order and words) ──► one transaction: lock
//!                                                        (os_glance_import_task), task, job,
//!                                                        image importing ──► 202
//! any node's runner ── claims the job (SKIP LOCKED), heartbeats it ──► source (staged data,
//!   a URL, the image's own copy) ──► data plugins on the staged data (decompression,
//!   conversion; plugins.rs) ──► each store through the data path ──► recorded under the
//!   lock ──► task success | failure, lock released, staged data removed
//! ```
//! A job is a row, not a thread: a node that dies mid-import leaves a claim whose heartbeat
//! stops, and another node (or the same one after its restart) takes the job over.

mod conversion;
mod decompression;
pub mod fetch;
pub mod filter;
mod locations;
mod outcome;
mod patch_locations;
mod plugins;
mod runner;
mod sources;
mod spec;
mod start;
pub mod tasks;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::config::ImportConfig;
use crate::datapath::DataService;
use crate::domain::tasks::TaskRepo;
use crate::domain::ImageService;

pub use spec::{ImportMethod, ImportSpec, ValidationData};
pub use start::ImportRequest;

/// A job whose claim has not been renewed for this long belongs to a node that stopped; any
/// node may take it over. Claims are renewed every `runner::HEARTBEAT`.
pub const STALE_JOB: Duration = Duration::from_secs(90);

#[derive(Debug, Clone)]
pub struct ImportService {
    images: ImageService,
    data: DataService,
    tasks: Arc<dyn TaskRepo>,
    config: Arc<ImportConfig>,
    filter: filter::UrlFilter,
    node_id: Arc<str>,
    /// `image_location_quota`.
    location_quota: Option<usize>,
    /// Wakes this node's runner when a job is queued here.
    wake: Arc<Notify>,
    /// glance-download's callers' tokens, by image, until their job starts.
    tokens: Arc<std::sync::Mutex<std::collections::HashMap<String, glint_store::Secret>>>,
}

impl ImportService {
    pub fn new(
        images: ImageService,
        data: DataService,
        tasks: Arc<dyn TaskRepo>,
        config: &ImportConfig,
        node_id: &str,
        location_quota: Option<usize>,
    ) -> ImportService {
        ImportService {
            images,
            data,
            tasks,
            filter: filter::UrlFilter::new(&config.filtering),
            config: Arc::new(config.clone()),
            node_id: node_id.into(),
            location_quota,
            wake: Arc::new(Notify::new()),
            tokens: Arc::default(),
        }
    }

    /// `enabled_import_methods`, in the operator's order.
    pub fn methods(&self) -> &[String] {
        &self.config.methods
    }

    pub fn enabled(&self, method: &str) -> bool {
        self.config.enabled(method)
    }

    /// Keeps (or, with `None`, forgets) the token a glance-download of `image_id` reads with.
    fn keep_token(&self, image_id: &str, token: Option<glint_store::Secret>) {
        if let Ok(mut tokens) = self.tokens.lock() {
            match token {
                Some(token) => tokens.insert(image_id.to_owned(), token),
                None => tokens.remove(image_id),
            };
        }
    }

    /// The token a glance-download of `image_id` reads with, taken.
    fn take_token(&self, image_id: &str) -> Option<glint_store::Secret> {
        self.tokens.lock().ok()?.remove(image_id)
    }

    /// Whether `[image_import_opts] image_import_plugins` lists `plugin`.
    fn plugin_enabled(&self, plugin: &str) -> bool {
        self.config.plugin_enabled(plugin)
    }
}

impl ImportService {
    /// Removes staged data no image needs any more (its import ended or failed and let it
    /// go, its stage was abandoned, its image deleted): on this node's disk, or in the shared
    /// staging store. Also marks expired tasks deleted. Returns the staged data removed.
    pub async fn sweep(&self) -> Result<usize, crate::datapath::DataError> {
        self.tasks.expire_tasks(crate::domain::image::now()).await?;
        let node = self.data.staging_node();
        let unneeded = self.data.staged_unneeded(node.as_deref()).await?;
        let mut removed = 0;
        for staged in unneeded {
            match self.data.remove_staged(&staged).await {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!(image.id = %staged.image_id, error = %e,
                    "cannot remove staged data yet"),
            }
        }
        Ok(removed)
    }
}
