//! The duties of a serving node between requests: at start, put back to `queued` the uploads
//! a crash interrupted; then, for as long as it serves, reconcile uploads whose node stopped,
//! remove staged data no import needs, drop cached images no longer active and stalled cache
//! files, expire tasks and, with `scrub_in_serve`, run the
//! scrubber. Failures are logged and retried on the next
//! round; they never stop the node.

use std::time::Duration;

use crate::config::DataPathConfig;
use crate::datapath::{DataError, DataService, ScrubReport, STALE_UPLOAD};
use crate::import::ImportService;

/// How often a serving node looks for uploads abandoned by a stopped node.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(60);

/// At start-up: this node's own earlier uploads (it restarted, so none of them is running)
/// and every other node's stale ones go back to `queued`.
pub async fn recover(data: &DataService) -> Result<(), DataError> {
    data.reset_own_uploads().await?;
    data.reconcile(STALE_UPLOAD).await?;
    Ok(())
}

/// Runs until dropped: reconciles every `RECONCILE_EVERY`, and scrubs every `wakeup_time`
/// when `scrub_in_serve` is set; the first round of each runs at once.
pub async fn run(data: DataService, imports: ImportService, config: DataPathConfig) {
    let mut reconcile = tokio::time::interval(RECONCILE_EVERY);
    let mut scrubber = tokio::time::interval(Duration::from_secs(config.wakeup_time_secs));
    reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    scrubber.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = reconcile.tick() => {
                if let Err(e) = data.reconcile(STALE_UPLOAD).await {
                    tracing::warn!(error = %e, "reconciling abandoned uploads failed");
                }
                if let Some(cache) = data.cache() {
                    match cache.sweep().await {
                        Ok(0) => {}
                        Ok(removed) => tracing::info!(removed, "cached images no longer active removed"),
                        Err(e) => tracing::warn!(error = %e, "sweeping the image cache failed"),
                    }
                    if let Err(e) = cache.clean().await {
                        tracing::warn!(error = %e, "cleaning the image cache failed");
                    }
                }
                match imports.sweep().await {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "staged data no import needs removed"),
                    Err(e) => tracing::warn!(error = %e, "sweeping staged data failed"),
                }
            }
            _ = scrubber.tick(), if config.scrub_in_serve => {
                match data.scrub().await {
                    Ok(report) if report != ScrubReport::default() => {
                        tracing::info!(removed = report.removed, failed = report.failed, deferred = report.deferred, orphans = report.orphans, "scrubber pass");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "scrubber pass failed"),
                }
            }
        }
    }
}
