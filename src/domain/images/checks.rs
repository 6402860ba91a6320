//! What an image write must pass besides the policy: each patch change on its own, a
//! visibility change, and the tag, property and count quotas.

use super::*;

impl ImageService {
    /// Checks a change on its own (path, attribute, value), before the image is read.
    pub(super) fn validate_change(&self, change: &Change) -> DomainResult<()> {
        let attribute = match change.path.as_slice() {
            [attribute] => attribute.as_str(),
            _ => {
                return Err(DomainError::bad_request(format!(
                    "Invalid JSON pointer for this resource: '/{}'",
                    change.path.join("/")
                )))
            }
        };
        check_storable("path", attribute)?;
        // The property name column holds 255 characters; longer names would fail in the write.
        if !is_schema_property(attribute) && attribute.chars().count() > 255 {
            return Err(DomainError::bad_request(
                "Custom property should not be greater than 255 characters.",
            ));
        }
        if let Some(value) = &change.value {
            check_storable_json(attribute, value)?;
        }
        if attribute == "locations" {
            // Handled with the stores (`import::patch_locations`), never as an attribute.
            return Err(crate::domain::patch::locations_invisible(change.op));
        }
        if READ_ONLY.contains(&attribute) {
            return Err(read_only(attribute));
        }
        if is_reserved(attribute) {
            return Err(DomainError::forbidden(format!(
                "Attribute '{attribute}' is reserved."
            )));
        }
        if let Some(value) = &change.value {
            self.schemas
                .image
                .validate_property(attribute, value)
                .map_err(invalid_object)?;
            let mut single = Map::new();
            single.insert(attribute.to_owned(), value.clone());
            check_boot_minimums(&single)?;
        }
        Ok(())
    }

    /// `publicize_image` and `communitize_image` when the visibility becomes public/community.
    pub(super) fn check_visibility_change(
        &self,
        ctx: &RequestContext,
        after: &Image,
        before: Option<&Image>,
    ) -> DomainResult<()> {
        if before.map(|b| b.visibility) == Some(after.visibility) {
            return Ok(());
        }
        let action = match after.visibility {
            Visibility::Public => Action::PublicizeImage,
            Visibility::Community => Action::CommunitizeImage,
            Visibility::Private | Visibility::Shared => return Ok(()),
        };
        self.authorize(ctx, action, &target(after, ctx))
    }

    /// `image_tag_quota`, checked only when the count grows. `Err` carries Glance's wording
    /// of the limit, which the tag route embeds in its own message.
    pub(super) fn check_tag_quota(
        &self,
        after: &Image,
        before: Option<&Image>,
    ) -> DomainResult<()> {
        check_count(
            self.limits.tag_quota,
            after.tags.len(),
            before.map(|b| b.tags.len()),
            "image tags",
        )
    }

    pub(super) fn count_limits(&self) -> CountLimits {
        CountLimits {
            properties: self.limits.property_quota,
            tags: self.limits.tag_quota,
        }
    }

    /// The refusal of a write the database found over a count quota.
    pub(super) fn over_quota(&self, what: Counted, count: usize) -> DomainError {
        let (quota, name) = match what {
            Counted::Properties => (self.limits.property_quota, "image properties"),
            Counted::Tags => (self.limits.tag_quota, "image tags"),
        };
        match check_count(quota, count, None, name) {
            Err(e) => e,
            Ok(()) => DomainError::over_limit(format!("Too many {name}: {count}")),
        }
    }

    /// `image_property_quota`, checked only when the count grows.
    pub(super) fn check_property_quota(
        &self,
        after: &Image,
        before: Option<&Image>,
    ) -> DomainResult<()> {
        check_count(
            self.limits.property_quota,
            after.properties.len(),
            before.map(|b| b.properties.len()),
            "image properties",
        )
    }
}
