//! What an upload may bring: the size cap, what the owner's quota leaves, and the size the
//! client announced; checked before the body is read and again as every frame arrives.

use super::error::DataError;
use super::DataService;
use crate::domain::image::Image;

/// Upper bounds on the bytes an upload may bring.
pub(super) struct Limits {
    /// `X-OpenStack-Image-Size`: more bytes than this are refused as they arrive (the writer
    /// was sized for it).
    pub(super) declared: Option<u64>,
    pub(super) size_cap: u64,
    /// Bytes left in the owner's quota, if there is one.
    pub(super) quota_remaining: Option<u64>,
}

impl Limits {
    /// The most the data may be.
    pub(super) fn max_size(&self) -> u64 {
        self.quota_remaining
            .map_or(self.size_cap, |q| q.min(self.size_cap))
    }

    pub(super) fn check(&self, size: u64) -> Result<(), DataError> {
        if let Some(declared) = self.declared.filter(|&d| size > d) {
            return Err(DataError::BadRequest(format!(
                "Size of the uploaded data (more than {declared} bytes) differs from the declared size ({declared} bytes)."
            )));
        }
        if size > self.size_cap {
            return Err(DataError::SizeCapExceeded { cap: self.size_cap });
        }
        match self.quota_remaining {
            Some(remaining) if size > remaining => {
                Err(DataError::QuotaExceeded { size, remaining })
            }
            _ => Ok(()),
        }
    }
}

impl DataService {
    /// The most `image`'s data may be: `image_size_cap`, or less when the owner's quota
    /// leaves less (an import plugin's output is held to it before it is staged).
    pub async fn max_image_bytes(&self, image: &Image) -> Result<u64, DataError> {
        Ok(self.limits_for(image).await?.max_size())
    }

    pub(super) async fn limits_for(&self, image: &Image) -> Result<Limits, DataError> {
        let quota_remaining = match self.limits.user_storage_quota {
            0 => None,
            quota => {
                Some(quota.saturating_sub(self.uploads.storage_used(image.owner.as_deref()).await?))
            }
        };
        Ok(Limits {
            declared: None,
            size_cap: self.limits.image_size_cap,
            quota_remaining,
        })
    }
}
