//! `PUT /v2/images/{id}/stage`: an upload whose target is the staging store. The claim takes
//! the image `queued → uploading`, the data goes through the same pump (digests, inspection,
//! limits, budget), and what was staged is recorded for the import that follows.

use bytes::Bytes;
use futures_util::Stream;
use glint_store::Stored;

use super::digest::Digests;
use super::error::DataError;
use super::upload::UploadRequest;
use super::DataService;
use crate::domain::image::{self, Image};
use crate::domain::policy::Action;
use crate::domain::tasks::{props, StagedData};
use crate::domain::{RequestContext, UploadTarget};

impl DataService {
    /// `PUT /v2/images/{id}/stage`: the image's data, into the staging store for an import.
    pub async fn stage<S, E>(
        &self,
        ctx: &RequestContext,
        id: &str,
        request: UploadRequest<S>,
    ) -> Result<(), DataError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        self.receive(ctx, id, request, UploadTarget::Staging).await
    }

    /// Records staged data: the image keeps `uploading`, now with the staged size (as Glance:
    /// no checksum yet; the import computes the image's digests as it writes each store), and
    /// `os_glance_stage_host` names this node where it has a URL.
    pub(super) async fn record_stage(
        &self,
        image: &Image,
        claim: &str,
        stored: &Stored,
        digests: &Digests,
        size: i64,
    ) -> Result<(), DataError> {
        let staged = StagedData {
            image_id: image.id.to_string(),
            location: stored.location.uri(),
            size,
            checksum: Some(digests.md5.clone()),
            os_hash_value: Some(digests.value.clone()),
            node: (!self.stores.staging_shared()).then(|| self.node_id.to_string()),
            created_at: image::now(),
        };
        let set: Vec<(String, String)> = self
            .config
            .stage_host
            .iter()
            .map(|host| (props::STAGE_HOST.to_owned(), host.clone()))
            .collect();
        if self
            .uploads
            .record_staged(claim, &staged, &set, image::now())
            .await?
        {
            Ok(())
        } else {
            let still_there = self
                .images
                .get_for(&Self::operator(), image.id.as_str(), Action::GetImage)
                .await
                .is_ok();
            Err(if still_there {
                DataError::Conflict(format!(
                    "Image {} changed status during the upload.",
                    image.id
                ))
            } else {
                DataError::DeletedDuringUpload(image.id.to_string())
            })
        }
    }
}
