//! Who may read an image's data where the store keeps it in the owner's own account (Swift's
//! multi-tenant mode): the container's ACL follows the image's visibility, set after an upload
//! and after every update, as Glance sets it on every save.

use glint_store::{Location, Readers};

use super::error::DataError;
use super::DataService;
use crate::domain::image::{Image, Visibility};
use crate::domain::RequestContext;

/// Public and community images are readable by every project; private and shared ones only
/// by their owner (members' projects join when the members API sets them).
pub(super) fn readers_of(image: &Image) -> Readers {
    match image.visibility {
        Visibility::Public | Visibility::Community => Readers::Everyone,
        Visibility::Private | Visibility::Shared => Readers::Projects(Vec::new()),
    }
}

impl DataService {
    /// Brings the access to `image`'s data in caller-account stores in line with the image.
    /// Nothing to do (and no query) when no such store is configured.
    pub async fn share_data(&self, ctx: &RequestContext, image: &Image) -> Result<(), DataError> {
        let any = self
            .stores
            .entries()
            .iter()
            .any(|e| e.store.capabilities().caller_accounts);
        if !any {
            return Ok(());
        }
        let readers = readers_of(image);
        for stored in self.uploads.locations(&image.id).await? {
            let Ok(location) = Location::parse(&stored.url) else {
                continue;
            };
            let Some(entry) = self
                .stores
                .for_location(&location, stored.store_id().as_deref())
            else {
                continue;
            };
            if entry.store.capabilities().caller_accounts {
                entry
                    .for_request(ctx)?
                    .set_readers(&location, &readers)
                    .await?;
            }
        }
        Ok(())
    }
}
