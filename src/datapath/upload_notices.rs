//! The notices Glance's upload and stage controllers and its `ImageProxy.set_data` send:
//! once the image is claimed, `image.update` (`saving`, or `uploading` when staging) and, for
//! an upload, `image.prepare`; on success `image.upload` (the image with its data, and the
//! import lists), `image.activate` and the final `image.update` (staging: only the update);
//! on failure `image.upload` at ERROR with only a message, then `image.update` of the image
//! put back to `queued`.

use glint_store::StoreError;

use super::error::DataError;
use crate::domain::image::{Image, ImageId};
use crate::domain::{ImageService, ImageStatus, RequestContext, UploadTarget};

/// Once the image is claimed; returns the image as it now is.
pub(super) fn claimed(
    images: &ImageService,
    ctx: &RequestContext,
    image: &Image,
    target: UploadTarget,
    backend: Option<&str>,
) -> Image {
    let mut claimed = image.clone();
    claimed.status = match target {
        UploadTarget::Store => ImageStatus::Saving,
        UploadTarget::Staging => ImageStatus::Uploading,
    };
    images.notify_image(ctx, "image.update", &claimed);
    if target == UploadTarget::Store {
        images.notify_image_data(ctx, "image.prepare", &claimed, backend);
    }
    claimed
}

/// After a successful upload or stage: the image is read again for what was recorded.
pub(super) async fn stored(
    images: &ImageService,
    ctx: &RequestContext,
    id: &ImageId,
    target: UploadTarget,
) {
    let events = images.events();
    if !["image.upload", "image.activate", "image.update"]
        .iter()
        .any(|t| events.enabled(t))
    {
        return;
    }
    match images.get_visible(ctx, id.as_str()).await {
        Ok(image) => {
            if target == UploadTarget::Store {
                images.notify_image_data(ctx, "image.upload", &image, None);
                images.notify_image(ctx, "image.activate", &image);
            }
            images.notify_image(ctx, "image.update", &image);
        }
        Err(e) => {
            tracing::warn!(image.id = %id, error = %e, "cannot read the uploaded image for its notifications");
        }
    }
}

/// After a failed upload or stage of a claimed image.
pub(super) fn failed(
    images: &ImageService,
    ctx: &RequestContext,
    saving: Image,
    target: UploadTarget,
    error: &DataError,
) {
    if target == UploadTarget::Store {
        images.notify_error(ctx, "image.upload", error_message(&saving.id, error));
    }
    // An image deleted under the upload is not put back.
    if !matches!(error, DataError::DeletedDuringUpload(_)) {
        let mut restored = saving;
        restored.status = ImageStatus::Queued;
        images.notify_image(ctx, "image.update", &restored);
    }
}

/// The message Glance's notifier sends for each kind of failure.
fn error_message(id: &ImageId, error: &DataError) -> String {
    match error {
        DataError::Store(e @ StoreError::StorageFull { .. }) => {
            format!("Image storage media is full: {e}")
        }
        DataError::Store(e @ StoreError::WriteDenied { .. }) => {
            format!("Insufficient permissions on image storage media: {e}")
        }
        DataError::DeletedDuringUpload(_) => format!(
            "Image {id} could not be found after upload. The image may have been deleted \
             during the upload: {error}"
        ),
        DataError::BadRequest(_) | DataError::ImageFormat(_) => {
            format!("Cannot save data for image {id}: {error}")
        }
        _ => format!("Failed to upload image data for image {id} due to internal error: {error}"),
    }
}
