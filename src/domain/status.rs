//! Image statuses and the transitions Glance allows between them.

use std::fmt;

/// The status of an image, spelled as Glance spells it on the wire and in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageStatus {
    Queued,
    Saving,
    Uploading,
    Importing,
    Active,
    Deactivated,
    Killed,
    Deleted,
    PendingDelete,
}

impl ImageStatus {
    /// Every status, in the order the image schema's enum lists them.
    pub const ALL: [ImageStatus; 9] = [
        ImageStatus::Queued,
        ImageStatus::Saving,
        ImageStatus::Active,
        ImageStatus::Killed,
        ImageStatus::Deleted,
        ImageStatus::Uploading,
        ImageStatus::Importing,
        ImageStatus::PendingDelete,
        ImageStatus::Deactivated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Queued => "queued",
            ImageStatus::Saving => "saving",
            ImageStatus::Uploading => "uploading",
            ImageStatus::Importing => "importing",
            ImageStatus::Active => "active",
            ImageStatus::Deactivated => "deactivated",
            ImageStatus::Killed => "killed",
            ImageStatus::Deleted => "deleted",
            ImageStatus::PendingDelete => "pending_delete",
        }
    }

    pub fn parse(value: &str) -> Option<ImageStatus> {
        ImageStatus::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// Whether the status machine allows `self → to` (glance/domain `_validate_image_status`).
    pub fn can_become(self, to: ImageStatus) -> bool {
        use ImageStatus::*;
        matches!(
            (self, to),
            (Queued, Saving | Uploading | Importing | Active | Deleted)
                | (Saving, Active | Queued | Killed | Deleted)
                | (Uploading, Importing | Queued | Deleted)
                | (Importing, Active | Queued | Deleted)
                | (Active, Deactivated | Deleted | PendingDelete)
                | (Deactivated, Active | Deleted)
                | (PendingDelete, Deleted | Active)
                | (Killed, Deleted)
        )
    }
}

impl fmt::Display for ImageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ImageStatus::{self, *};

    #[test]
    fn every_status_round_trips_through_its_name() {
        for status in ImageStatus::ALL {
            assert_eq!(ImageStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(ImageStatus::parse("bogus"), None);
    }

    #[test]
    fn transitions_follow_glance_table() {
        assert!(Queued.can_become(Saving));
        assert!(Saving.can_become(Queued));
        assert!(Active.can_become(Deactivated));
        assert!(Deactivated.can_become(Active));
        assert!(Killed.can_become(Deleted));
        assert!(!Active.can_become(Saving));
        assert!(!Deactivated.can_become(PendingDelete));
        assert!(!Deleted.can_become(Active));
        assert!(!Queued.can_become(Deactivated));
    }
}
