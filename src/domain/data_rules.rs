//! When an image's data may move: the status and format rules of `PUT` and `GET
//! /v2/images/{id}/file`, in Glance's words. The data path asks; it decides nothing itself.

use super::context::RequestContext;
use super::error::{DomainError, DomainResult};
use super::image::Image;
use super::status::ImageStatus;

/// An upload takes the image `queued → saving`, and needs both formats set first.
pub fn check_upload(image: &Image) -> DomainResult<()> {
    if !image.status.can_become(ImageStatus::Saving) {
        return Err(DomainError::conflict(format!(
            "Image status transition from {} to saving is not allowed",
            image.status
        )));
    }
    if image.disk_format.is_none() || image.container_format.is_none() {
        return Err(DomainError::bad_request(
            "Properties disk_format, container_format must be set prior to saving data.",
        ));
    }
    Ok(())
}

/// A stage takes the image `queued → uploading`; its formats may still be unset.
pub fn check_stage(image: &Image) -> DomainResult<()> {
    if !image.status.can_become(ImageStatus::Uploading) {
        return Err(DomainError::conflict(format!(
            "Image status transition from {} to uploading is not allowed",
            image.status
        )));
    }
    Ok(())
}

/// A deactivated image's data is for administrators only.
pub fn check_download(image: &Image, ctx: &RequestContext) -> DomainResult<()> {
    if image.status == ImageStatus::Deactivated && !ctx.is_admin {
        return Err(DomainError::forbidden(
            "The requested image has been deactivated. Image data download is prohibited.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::Refusal;
    use crate::domain::image::ImageId;

    fn image(status: ImageStatus, formats: bool) -> Image {
        let mut image = Image::new(ImageId::generate(), None, crate::domain::image::now());
        image.status = status;
        if formats {
            image.disk_format = Some("raw".into());
            image.container_format = Some("bare".into());
        }
        image
    }

    #[test]
    fn only_queued_images_with_formats_take_data() {
        assert!(check_upload(&image(ImageStatus::Queued, true)).is_ok());
        for status in [
            ImageStatus::Saving,
            ImageStatus::Active,
            ImageStatus::Uploading,
        ] {
            let refused = check_upload(&image(status, true)).expect_err("refused");
            assert_eq!(refused.kind(), Some(Refusal::Conflict));
            assert_eq!(
                refused.to_string(),
                format!("Image status transition from {status} to saving is not allowed")
            );
        }
        let refused = check_upload(&image(ImageStatus::Queued, false)).expect_err("refused");
        assert_eq!(refused.kind(), Some(Refusal::BadRequest));
    }

    #[test]
    fn deactivated_data_is_for_administrators() {
        let mut member = RequestContext::unauthenticated_admin("req-1".into());
        member.is_admin = false;
        let admin = RequestContext::unauthenticated_admin("req-2".into());
        let deactivated = image(ImageStatus::Deactivated, true);
        assert_eq!(
            check_download(&deactivated, &member)
                .expect_err("refused")
                .kind(),
            Some(Refusal::Forbidden)
        );
        assert!(check_download(&deactivated, &admin).is_ok());
        assert!(check_download(&image(ImageStatus::Active, true), &member).is_ok());
    }
}
