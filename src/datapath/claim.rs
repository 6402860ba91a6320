//! An upload's claim on its image (`queued → saving`): given back — the image put back to
//! `queued` — on every exit from the pipeline that is not success, including a handler future
//! dropped because the client went away, and retried in the background when the database
//! cannot be reached at that moment.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::domain::image::{self, ImageId};
use crate::domain::UploadRepo;

/// Puts an image back to `queued` unless disarmed: runs on every exit from the pipeline,
/// including a handler future dropped because the client went away.
pub(super) struct ClaimGuard {
    pub(super) repo: Arc<dyn UploadRepo>,
    pub(super) image_id: Option<ImageId>,
    /// The upload's claim token: a reset or abandoned upload cannot touch a newer claim.
    pub(super) claim: String,
}

impl ClaimGuard {
    pub(super) fn disarm(&mut self) {
        self.image_id = None;
    }

    /// Puts the image back to `queued` now, so the error response reflects it; if the
    /// database cannot be reached, keeps trying in the background.
    pub(super) async fn release(mut self) {
        if let Some(id) = self.image_id.take() {
            if let Err(e) = self
                .repo
                .abandon_upload(&id, &self.claim, image::now())
                .await
            {
                tracing::warn!(image.id = %id, error = %e, "cannot put a failed upload back to queued yet; retrying");
                tokio::spawn(
                    abandon_until_done(self.repo.clone(), id, self.claim.clone())
                        .instrument(tracing::Span::current()),
                );
            }
        }
    }
}

/// Delays between the background attempts to put a failed upload back to `queued`: about two
/// minutes in all, after which the reconciliation of stale uploads does it.
const RELEASE_RETRIES: [Duration; 6] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(30),
    Duration::from_secs(60),
];

async fn abandon_until_done(repo: Arc<dyn UploadRepo>, id: ImageId, claim: String) {
    for delay in RELEASE_RETRIES {
        tokio::time::sleep(delay).await;
        match repo.abandon_upload(&id, &claim, image::now()).await {
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(image.id = %id, error = %e, "cannot put a failed upload back to queued yet")
            }
        }
    }
    tracing::error!(image.id = %id, "cannot put a failed upload back to queued; the reconciliation of stale uploads will");
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if let Some(id) = self.image_id.take() {
            let (repo, claim) = (self.repo.clone(), self.claim.clone());
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                tracing::error!(image.id = %id, "upload abandoned during shutdown; reconciliation will reset it");
                return;
            };
            runtime.spawn(async move {
                if let Err(e) = repo.abandon_upload(&id, &claim, image::now()).await {
                    tracing::error!(image.id = %id, error = %e, "cannot put a failed upload back to queued");
                }
            });
        }
    }
}
