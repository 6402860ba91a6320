//! Who may read an image's data where the store keeps it in the owner's own account (Swift's
//! multi-tenant mode): the container's ACL follows the image's visibility, set after an upload
//! and after every update, as Glance sets it on every save.

use glint_store::{Location, Readers};

use super::error::DataError;
use super::DataService;
use crate::domain::image::{Image, Visibility};
use crate::domain::RequestContext;

/// Public and community images are readable by every project; shared ones by their members
/// (in any status, as Glance grants them); private ones by their owner alone.
pub(super) async fn readers_of(data: &DataService, image: &Image) -> Result<Readers, DataError> {
    Ok(match image.visibility {
        Visibility::Public | Visibility::Community => Readers::Everyone,
        Visibility::Shared => Readers::Projects(data.images.member_projects(image).await?),
        Visibility::Private => Readers::Projects(Vec::new()),
    })
}

impl DataService {
    /// `share_data` after a member change, for the image as it is now.
    pub async fn share_data_of(&self, ctx: &RequestContext, id: &str) -> Result<(), DataError> {
        if !self.has_caller_accounts() {
            return Ok(());
        }
        let image = self.images.get(ctx, id).await?;
        self.share_data(ctx, &image).await
    }

    fn has_caller_accounts(&self) -> bool {
        self.stores
            .entries()
            .iter()
            .any(|e| e.store.capabilities().caller_accounts)
    }

    /// Brings the access to `image`'s data in caller-account stores in line with the image.
    /// Nothing to do (and no query) when no such store is configured.
    pub async fn share_data(&self, ctx: &RequestContext, image: &Image) -> Result<(), DataError> {
        if !self.has_caller_accounts() {
            return Ok(());
        }
        let readers = readers_of(self, image).await?;
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
