//! Removing deleted images' data: right after a delete, or later by the scrubber
//! (`glint scrub`, or periodically in `glint serve`) for `delayed_delete` and for removals
//! that failed. A location leaves `pending_delete` only once its data is gone.

use std::time::Duration;

use glint_store::{Location, StoreError};

use super::error::DataError;
use super::{DataService, PARTIAL_FILE_AGE};
use crate::domain::image;
use crate::domain::{RequestContext, StoredLocation};

/// Locations handled per scrubber query.
const SCRUB_BATCH: u32 = 100;

/// What one scrubber pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScrubReport {
    pub removed: usize,
    pub failed: usize,
}

impl DataService {
    /// `DELETE /v2/images/{id}`: the image is deleted, then its data removed now unless
    /// `delayed_delete` leaves that to the scrubber.
    pub async fn delete_image(&self, ctx: &RequestContext, id: &str) -> Result<(), DataError> {
        let delayed = self.config.delayed_delete;
        let locations = self.images.delete(ctx, id, delayed).await?;
        if !delayed {
            for location in &locations {
                self.remove_data(location).await;
            }
        }
        Ok(())
    }

    /// Removes one location's data and records it; a failure leaves the location
    /// `pending_delete` for the next scrubber pass. Returns whether the data is gone.
    async fn remove_data(&self, location: &StoredLocation) -> bool {
        let uri = Location::new(location.url.clone());
        let result = match self.stores.for_location(&uri) {
            Some(store) => match store.delete(&uri).await {
                Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
                Err(e) => Err(e.to_string()),
            },
            None => Err(format!("no configured store serves {uri}")),
        };
        match result {
            Ok(()) => match self
                .uploads
                .location_removed(location.id, image::now())
                .await
            {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(image.id = %location.image_id, error = %e, "data removed but not recorded; the scrubber will retry");
                    false
                }
            },
            Err(e) => {
                tracing::warn!(image.id = %location.image_id, location = %location.url, error = %e, "cannot remove image data yet; the scrubber will retry");
                false
            }
        }
    }

    /// One scrubber pass: removes the data of every location deleted at least `scrub_time` ago.
    pub async fn scrub(&self) -> Result<ScrubReport, DataError> {
        let cutoff = image::now()
            - chrono::Duration::seconds(
                i64::try_from(self.config.scrub_time_secs).unwrap_or(i64::MAX),
            );
        let mut report = ScrubReport::default();
        // Pages by id, so locations that cannot be removed yet never hide the ones after them.
        let mut after = 0;
        loop {
            let pending = self
                .uploads
                .pending_deletions(cutoff, after, SCRUB_BATCH)
                .await?;
            for location in &pending {
                if self.remove_data(location).await {
                    report.removed += 1;
                } else {
                    report.failed += 1;
                }
            }
            match pending.last() {
                Some(last) if pending.len() == SCRUB_BATCH as usize => after = last.id,
                _ => return Ok(report),
            }
        }
    }

    /// Crash recovery: uploads whose node stopped heart-beating go back to `queued`, and the
    /// file store's abandoned temporary files are removed.
    pub async fn reconcile(&self, stale_after: Duration) -> Result<u64, DataError> {
        let cutoff =
            image::now() - chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::MAX);
        let reset = self
            .uploads
            .reset_stale_uploads(cutoff, image::now())
            .await?;
        if reset > 0 {
            tracing::warn!(
                images = reset,
                "uploads abandoned by a stopped node put back to queued"
            );
        }
        if let Some(file) = self.stores.file_store() {
            let file = file.clone();
            let age = stale_after.max(PARTIAL_FILE_AGE);
            let removed = tokio::task::spawn_blocking(move || file.sweep_partials(age))
                .await
                .map_err(|e| DataError::Internal(e.to_string()))?;
            if removed > 0 {
                tracing::info!(files = removed, "removed abandoned partial image files");
            }
        }
        Ok(reset)
    }
}
