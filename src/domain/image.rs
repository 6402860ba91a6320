//! The image record and its small value types.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};

use super::status::ImageStatus;

/// An image id: Glance accepts any string shaped like a UUID (either case) and keeps it as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageId(String);

impl ImageId {
    /// A fresh random (v4) id, lower-case as Glance generates them.
    pub fn generate() -> ImageId {
        ImageId(uuid::Uuid::new_v4().to_string())
    }

    /// Accepts `8-4-4-4-12` hexadecimal groups, the image schema's `id` pattern.
    pub fn parse(value: &str) -> Option<ImageId> {
        is_uuid_shaped(value).then(|| ImageId(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `value` matches `^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$`.
pub fn is_uuid_shaped(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Who may see an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    Public,
    Private,
    Shared,
    Community,
}

impl Visibility {
    /// In the order of the image schema's enum.
    pub const ALL: [Visibility; 4] = [
        Visibility::Community,
        Visibility::Public,
        Visibility::Private,
        Visibility::Shared,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Shared => "shared",
            Visibility::Community => "community",
        }
    }

    pub fn parse(value: &str) -> Option<Visibility> {
        Visibility::ALL.into_iter().find(|v| v.as_str() == value)
    }
}

/// An image's metadata as stored: core attributes, free-form properties and tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub id: ImageId,
    pub name: Option<String>,
    pub status: ImageStatus,
    pub visibility: Visibility,
    pub protected: bool,
    pub os_hidden: bool,
    pub checksum: Option<String>,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    pub owner: Option<String>,
    pub size: Option<i64>,
    pub virtual_size: Option<i64>,
    pub container_format: Option<String>,
    pub disk_format: Option<String>,
    pub min_disk: i32,
    pub min_ram: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Extra properties (`os_distro`, `hw_*` …), values always strings.
    pub properties: BTreeMap<String, String>,
    /// A set; kept sorted so output and comparisons are stable.
    pub tags: Vec<String>,
    /// Ids of the stores holding the data, as the active locations' metadata names them
    /// (multi-store), in location order. Read-only: the data path records it.
    pub stores: Vec<String>,
    /// The active locations, in the order they were added; read only when the answer may show
    /// them (`show_image_direct_url`, `show_multiple_locations`, several stores).
    pub locations: Vec<ImageLocation>,
}

/// One active location of an image's data: its URI as stored and its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLocation {
    pub url: String,
    /// A JSON object (`{}`, `{"store": "fast"}`); Glance may have left it NULL.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl ImageLocation {
    /// The store id the metadata names (multi-store).
    pub fn store(&self) -> Option<&str> {
        self.metadata.get("store").and_then(|s| s.as_str())
    }
}

impl Image {
    /// A new queued image with Glance's defaults (visibility `shared`, min_* 0).
    pub fn new(id: ImageId, owner: Option<String>, now: DateTime<Utc>) -> Image {
        Image {
            id,
            name: None,
            status: ImageStatus::Queued,
            visibility: Visibility::Shared,
            protected: false,
            os_hidden: false,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            owner,
            size: None,
            virtual_size: None,
            container_format: None,
            disk_format: None,
            min_disk: 0,
            min_ram: 0,
            created_at: now,
            updated_at: now,
            properties: BTreeMap::new(),
            tags: Vec::new(),
            stores: Vec::new(),
            locations: Vec::new(),
        }
    }

    /// Adds a tag, keeping the list a sorted set. Returns false if it was present.
    pub fn add_tag(&mut self, tag: &str) -> bool {
        match self.tags.binary_search_by(|t| t.as_str().cmp(tag)) {
            Ok(_) => false,
            Err(at) => {
                self.tags.insert(at, tag.to_owned());
                true
            }
        }
    }

    /// Replaces the tags with `tags`, deduplicated and sorted.
    pub fn set_tags(&mut self, tags: impl IntoIterator<Item = String>) {
        let mut tags: Vec<String> = tags.into_iter().collect();
        tags.sort();
        tags.dedup();
        self.tags = tags;
    }
}

/// The current time at the precision PostgreSQL and SQLite store (microseconds), so that a
/// value read back there compares equal to the one written. Glance's MySQL columns keep
/// whole seconds: there a value reads back truncated, as it does for Glance.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape_accepts_either_case_and_rejects_others() {
        assert!(ImageId::parse("0b9e5f5e-7c8a-4c4f-9e36-2b7d1c0c9a11").is_some());
        assert!(ImageId::parse("0B9E5F5E-7C8A-4C4F-9E36-2B7D1C0C9A11").is_some());
        assert!(ImageId::parse("0b9e5f5e7c8a4c4f9e362b7d1c0c9a11").is_none());
        assert!(ImageId::parse("0b9e5f5e-7c8a-4c4f-9e36-2b7d1c0c9a1g").is_none());
        assert!(ImageId::parse("nope").is_none());
    }

    #[test]
    fn tags_stay_a_sorted_set() {
        let mut image = Image::new(ImageId::generate(), None, now());
        assert!(image.add_tag("b"));
        assert!(image.add_tag("a"));
        assert!(!image.add_tag("b"));
        assert_eq!(image.tags, ["a", "b"]);
        image.set_tags(["z".to_owned(), "y".to_owned(), "z".to_owned()]);
        assert_eq!(image.tags, ["y", "z"]);
    }
}
