//! Image tags: `PUT` and `DELETE /v2/images/{id}/tags/{tag}`, each one write that checks
//! the tag quota where it stores.

use serde_json::Value;

use super::*;

impl ImageService {
    /// The image a tag request addresses, with the tag routes' not-found wording.
    async fn tag_target(&self, ctx: &RequestContext, id: &str) -> DomainResult<Image> {
        self.get_for(ctx, id, Action::ModifyImage)
            .await
            .map_err(|e| {
                if e.kind() == Some(Refusal::NotFound) {
                    DomainError::not_found(format!("Image {id} not found."))
                } else {
                    e
                }
            })
    }

    /// `PUT /v2/images/{id}/tags/{tag}`.
    pub async fn add_tag(&self, ctx: &RequestContext, id: &str, tag: &str) -> DomainResult<()> {
        check_storable("tag", tag)?;
        let image = self.tag_target(ctx, id).await?;
        self.schemas
            .image
            .validate_property("tags", &Value::Array(vec![Value::String(tag.to_owned())]))
            .map_err(invalid_object)?;
        let tag_limit = |e: DomainError| {
            DomainError::over_limit(format!("Image tag limit exceeded for image {id}: {e}:"))
        };
        if !image.tags.iter().any(|t| t == tag) {
            let mut after = image.clone();
            after.add_tag(tag);
            self.check_tag_quota(&after, Some(&image))
                .map_err(tag_limit)?;
        }
        let now = image::now();
        match self
            .repo
            .add_tag(&image.id, tag, self.limits.tag_quota, now)
            .await?
        {
            SaveOutcome::Saved => {
                let mut after = image;
                after.add_tag(tag);
                after.updated_at = now;
                self.notify_image(ctx, "image.update", &after);
                Ok(())
            }
            SaveOutcome::OverQuota { what, count } => Err(tag_limit(self.over_quota(what, count))),
            SaveOutcome::Gone | SaveOutcome::StatusChanged => {
                Err(DomainError::not_found(format!("Image {id} not found.")))
            }
        }
    }

    /// `DELETE /v2/images/{id}/tags/{tag}`.
    pub async fn remove_tag(&self, ctx: &RequestContext, id: &str, tag: &str) -> DomainResult<()> {
        let image = self.tag_target(ctx, id).await?;
        let now = image::now();
        if self.repo.remove_tag(&image.id, tag, now).await? {
            let mut after = image;
            after.tags.retain(|t| t != tag);
            after.updated_at = now;
            self.notify_image(ctx, "image.update", &after);
            Ok(())
        } else {
            Err(DomainError::plain(Refusal::NotFound))
        }
    }
}
