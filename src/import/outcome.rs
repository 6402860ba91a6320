//! How an import job ends, as Glance ends its import flows: the task's status and message,
//! the store lists, where the image goes back to, and what is removed once the end is
//! recorded.

use chrono::Duration as ChronoDuration;
use serde_json::json;

use super::runner::JobRun;
use super::spec::ImportMethod;
use crate::domain::image;
use crate::domain::tasks::{merge_store_list, props, ImportEnd, StagedData, TaskStatus};

/// How a job ended, and what is left to do once its end is recorded.
pub(super) struct Outcome {
    pub(super) end: ImportEnd,
    /// Staged data no longer needed.
    pub(super) remove_staged: Option<StagedData>,
    /// Copies recorded and then given up (all stores had to succeed): their data.
    pub(super) dropped: Vec<String>,
}

impl Outcome {
    /// A failure that changes nothing on the image.
    pub(super) fn failed(message: String, config: &crate::config::ImportConfig) -> Outcome {
        let ttl = ChronoDuration::from_std(config.task_time_to_live).unwrap_or_default();
        Outcome {
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
        }
    }

    /// Glance's end of an import whose image was deleted.
    pub(super) fn image_deleted(config: &crate::config::ImportConfig) -> Outcome {
        Outcome::failed(
            "Image has been deleted, aborting import.".to_owned(),
            config,
        )
    }
}

impl JobRun<'_> {
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

    pub(super) fn success(self) -> Outcome {
        let ttl =
            ChronoDuration::from_std(self.service.config.task_time_to_live).unwrap_or_default();
        if self.done.is_empty() && self.recorded.is_empty() {
            let message = "None of the uploads finished!".to_owned();
            return self.failure(message);
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
    pub(super) fn failure(self, message: String) -> Outcome {
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
        let mut outcome = Outcome::failed(message, &failed_run.service.config);
        outcome.end.revert_to = revert_to;
        outcome.end.set = failed_run.store_lists();
        outcome.end.drop_locations = dropped.clone();
        outcome.remove_staged = remove_staged;
        outcome.dropped = dropped;
        outcome
    }
}
