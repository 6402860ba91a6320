//! Removing deleted images' data: right after a delete, or later by the scrubber
//! (`glint scrub`, or periodically in `glint serve`) for `delayed_delete` and for removals
//! that failed. A location leaves `pending_delete` only once its data is gone.

use std::time::Duration;

use glint_store::{Location, StoreError};

use super::error::DataError;
use super::{DataService, PARTIAL_FILE_AGE};
use crate::domain::error::Refusal;
use crate::domain::image;
use crate::domain::policy::Action;
use crate::domain::{DataReference, DomainError, ImageStatus, RequestContext, StoredLocation};

/// Locations handled per scrubber query.
const SCRUB_BATCH: u32 = 100;

/// The first wait before the scrubber tries again to remove data its store says is in use
/// (RBD clones can live for months); doubled after each refusal, up to `IN_USE_MAX_WAIT`.
const IN_USE_FIRST_WAIT: Duration = Duration::from_secs(300);
const IN_USE_MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The wait after the `attempts`-th refusal: 5 min, 10 min, 20 min, … one day.
fn in_use_wait(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    IN_USE_FIRST_WAIT
        .saturating_mul(1 << doublings)
        .min(IN_USE_MAX_WAIT)
}

/// What one scrubber pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScrubReport {
    pub removed: usize,
    pub failed: usize,
    /// Data the store would not remove because it is in use: tried again later, less often.
    pub deferred: usize,
    /// Store data that no location named, removed by the orphan sweep.
    pub orphans: usize,
}

/// How removing one location's data went.
enum Removal {
    Removed,
    /// The store refused: the data is in use (an RBD snapshot with clones).
    InUse(String),
    /// Anything else: the location stays `pending_delete` for the next pass.
    Failed,
}

impl DataService {
    /// `DELETE /v2/images/{id}`: the image is deleted, then its data removed now unless
    /// `delayed_delete` leaves that to the scrubber. When a store refuses because the data is
    /// in use, the image comes back as it was with the locations not yet removed, and the
    /// answer is Glance's 409 (Glance only deletes the row once every store's data is gone).
    pub async fn delete_image(&self, ctx: &RequestContext, id: &str) -> Result<(), DataError> {
        let delayed = self.config.delayed_delete;
        let (status, locations) = self.images.delete(ctx, id, delayed).await?;
        if delayed {
            return Ok(());
        }
        for (n, location) in locations.iter().enumerate() {
            if let Removal::InUse(why) = self.remove_data(location, Some(ctx)).await {
                let kept: Vec<i64> = locations[n..].iter().map(|l| l.id).collect();
                self.uploads
                    .delete_refused(&location.image_id, status.as_str(), &kept, image::now())
                    .await?;
                tracing::warn!(image.id = %location.image_id, reason = %why,
                    "image not deleted: its data is in use");
                return Err(DomainError::conflict(format!(
                    "Image {id} could not be deleted because it is in use: {why}"
                ))
                .into());
            }
        }
        Ok(())
    }

    /// `DELETE /v2/stores/{store_id}/{image_id}` (multi-store): removes one store's copy of an
    /// active image's data, never the last one. The location is retired (`pending_delete`)
    /// before its data goes, so a failure leaves it to the scrubber rather than half-named.
    pub async fn delete_from_store(
        &self,
        ctx: &RequestContext,
        store_id: &str,
        image_id: &str,
    ) -> Result<(), DataError> {
        if !self.stores.multi() {
            return Err(DomainError::plain(Refusal::NotFound).into());
        }
        if !self.stores.entries().iter().any(|e| e.id == store_id) {
            return Err(DomainError::conflict(format!(
                "The selected store {store_id} is not available on this node."
            ))
            .into());
        }
        let image = match self
            .images
            .get_for(ctx, image_id, Action::DeleteImageLocation)
            .await
        {
            Err(e) if e.kind() == Some(Refusal::NotFound) => {
                return Err(
                    DomainError::not_found(format!("Failed to find image {image_id}")).into(),
                )
            }
            other => other?,
        };
        if image.status != ImageStatus::Active {
            return Err(DomainError::conflict(
                "It's not allowed to remove image data from store if image status is not 'active'",
            )
            .into());
        }
        let locations = self.uploads.locations(&image.id).await?;
        if locations.len() == 1 {
            return Err(DomainError::forbidden(
                "Cannot delete image data from the only store containing it. Consider deleting the image instead.",
            )
            .into());
        }
        let Some(location) = locations
            .iter()
            .find(|l| l.store_id().as_deref() == Some(store_id))
        else {
            return Err(DomainError::not_found(format!(
                "Image {image_id} is not stored in store {store_id}."
            ))
            .into());
        };
        self.remove_location(ctx, &image, location).await
    }

    /// Retires one of the image's locations and removes its data (the scrubber finishes what
    /// the store refuses now); never the last one: 403.
    pub async fn remove_location(
        &self,
        ctx: &RequestContext,
        image: &crate::domain::Image,
        location: &StoredLocation,
    ) -> Result<(), DataError> {
        let image_id = image.id.as_str();
        let store_id = location.store_id();
        let store_id = store_id.as_deref();
        // Checked again where concurrent removals of other copies cannot race it.
        if !self
            .uploads
            .retire_copy(image.id.as_str(), location.id, image::now())
            .await?
        {
            return Err(DomainError::forbidden(
                "Cannot delete image data from the only store containing it. Consider deleting the image instead.",
            )
            .into());
        }
        let uri = Location::parse(&location.url)?;
        let store = self
            .stores
            .for_location(&uri, store_id)
            .map(|e| e.for_request(ctx))
            .transpose()?;
        match store {
            Some(store) => match store.delete(&uri).await {
                Ok(()) | Err(StoreError::NotFound(_)) => {
                    self.uploads
                        .location_removed(location.id, image::now())
                        .await?;
                    Ok(())
                }
                // Still in use (RBD clones): the copy stays, as it was.
                Err(StoreError::InUse { why, .. }) => {
                    self.uploads
                        .set_location_status(location.id, "pending_delete", "active", image::now())
                        .await?;
                    Err(DomainError::conflict(format!(
                        "The data for Image {image_id} could not be deleted because it is in use: {why}"
                    ))
                    .into())
                }
                // Retired already: the scrubber finishes the removal.
                Err(e) => {
                    tracing::warn!(image.id = %image.id, store.name = ?store_id, error = %e,
                        "cannot remove image data from the store yet; the scrubber will retry");
                    Ok(())
                }
            },
            None => Ok(()),
        }
    }

    /// Removes one location's data and records it; a failure leaves the location
    /// `pending_delete` for the next scrubber pass. `ctx` is the deleting request, if any
    /// (stores keeping data in the caller's account remove it with the caller's token).
    async fn remove_data(
        &self,
        location: &StoredLocation,
        ctx: Option<&RequestContext>,
    ) -> Removal {
        let result = match Location::parse(&location.url) {
            Err(e) => Err(e.to_string()),
            Ok(uri) => match self
                .stores
                .for_location(&uri, location.store_id().as_deref())
                .map(|entry| match ctx {
                    Some(ctx) => entry.for_request(ctx),
                    None => Ok(entry.store.clone()),
                }) {
                Some(Err(e)) => Err(e.to_string()),
                Some(Ok(store)) => match store.delete(&uri).await {
                    Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
                    Err(StoreError::InUse { why, .. }) => return Removal::InUse(why),
                    Err(e) => Err(e.to_string()),
                },
                None => Err(format!("no configured store serves {uri}")),
            },
        };
        match result {
            Ok(()) => match self
                .uploads
                .location_removed(location.id, image::now())
                .await
            {
                Ok(()) => Removal::Removed,
                Err(e) => {
                    tracing::error!(image.id = %location.image_id, error = %e, "data removed but not recorded; the scrubber will retry");
                    Removal::Failed
                }
            },
            Err(e) => {
                tracing::warn!(image.id = %location.image_id, location.id = location.id, error = %e, "cannot remove image data yet; the scrubber will retry");
                Removal::Failed
            }
        }
    }

    /// The scrubber met data in use: the next try waits longer each time, so clones that
    /// live for months cost a try a day, not one per pass.
    async fn defer(&self, location: &StoredLocation, why: &str) -> bool {
        match self
            .uploads
            .defer_removal(location.id, image::now(), in_use_wait, why)
            .await
        {
            Ok((attempts, retry_at)) => {
                tracing::warn!(image.id = %location.image_id, location.id = location.id,
                    reason = %why, attempts, retry_at = %retry_at,
                    "image data is in use; its removal is put off");
                true
            }
            Err(e) => {
                tracing::warn!(image.id = %location.image_id, error = %e, "cannot record a deferred removal");
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
                .pending_deletions(cutoff, image::now(), after, SCRUB_BATCH)
                .await?;
            for location in &pending {
                match self.remove_data(location, None).await {
                    Removal::Removed => report.removed += 1,
                    Removal::InUse(why) if self.defer(location, &why).await => {
                        report.deferred += 1;
                    }
                    Removal::InUse(_) | Removal::Failed => report.failed += 1,
                }
            }
            match pending.last() {
                Some(last) if pending.len() == SCRUB_BATCH as usize => after = last.id,
                _ => break,
            }
        }
        report.orphans = self.sweep_orphans().await?;
        Ok(report)
    }

    /// Removes store data that no location names and none will: data an upload committed
    /// while its record failed (the database was lost after the store's commit). Data of a
    /// deleted or unknown image goes at once; data of a live image only once it is older than
    /// any upload could leave it unrecorded; data of an image being uploaded stays.
    async fn sweep_orphans(&self) -> Result<usize, DataError> {
        let settled = std::time::SystemTime::now()
            .checked_sub(PARTIAL_FILE_AGE)
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
        let mut removed = 0;
        for store in self.stores.all() {
            let found = match store.committed_data().await {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(store.name = store.name(), error = %e, "cannot list the store's data for the orphan sweep");
                    continue;
                }
            };
            for data in found {
                let spellings: Vec<String> = std::iter::once(&data.location)
                    .chain(&data.aliases)
                    .map(Location::uri)
                    .collect();
                let reference = self
                    .uploads
                    .data_reference(&data.image_id, &spellings)
                    .await?;
                let orphan = match reference {
                    DataReference::NoImage => true,
                    DataReference::Unnamed => data.modified < settled,
                    DataReference::Named | DataReference::Uploading => false,
                };
                if !orphan {
                    continue;
                }
                match store.delete(&data.location).await {
                    Ok(()) | Err(StoreError::NotFound(_)) => {
                        tracing::warn!(image.id = ?data.image_id, location = %data.location,
                            "removed image data that no location names");
                        removed += 1;
                    }
                    Err(e) => {
                        tracing::warn!(image.id = ?data.image_id, location = %data.location, error = %e,
                            "cannot remove image data that no location names yet")
                    }
                }
            }
        }
        Ok(removed)
    }

    /// At start-up: the uploads this node was running when it stopped are dead, whatever
    /// their heartbeat says; they go back to `queued` at once.
    pub async fn reset_own_uploads(&self) -> Result<u64, DataError> {
        let reset = self
            .uploads
            .reset_uploads_claimed_by(&self.claim_prefix(), image::now())
            .await?;
        if reset > 0 {
            tracing::warn!(
                images = reset,
                node = %self.node_id,
                "uploads interrupted by this node's restart put back to queued"
            );
        }
        Ok(reset)
    }

    /// Crash recovery: uploads whose node stopped heart-beating go back to `queued`, and what
    /// writers that never finished left in the stores is removed.
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
        let age = stale_after.max(PARTIAL_FILE_AGE);
        // The staging store too: a stage or an import cut by a crash leaves its writes there.
        for store in self
            .stores
            .all()
            .chain(std::iter::once(&self.stores.staging().store))
        {
            match store.sweep_abandoned(age).await {
                Ok(0) => {}
                Ok(removed) => {
                    tracing::info!(
                        store.name = store.name(),
                        removed,
                        "removed data of uploads that never finished"
                    )
                }
                Err(e) => {
                    tracing::warn!(store.name = store.name(), error = %e, "cannot sweep the store's unfinished uploads")
                }
            }
        }
        Ok(reset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_data_in_use_double_up_to_a_day() {
        let minutes = |n| in_use_wait(n).as_secs() / 60;
        assert_eq!(
            [minutes(1), minutes(2), minutes(3), minutes(9)],
            [5, 10, 20, 1280]
        );
        assert_eq!(in_use_wait(10), IN_USE_MAX_WAIT);
        assert_eq!(in_use_wait(u32::MAX), IN_USE_MAX_WAIT);
        assert_eq!(in_use_wait(0), IN_USE_FIRST_WAIT);
    }
}
