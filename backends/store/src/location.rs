//! `Location`: where image data lives, as the URI Glance stores in `image_locations.value`
//! (`file:///var/lib/glance/images/<id>`, `s3://…`, `rbd://…`), so existing rows stay valid.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location(String);

impl Location {
    pub fn new(uri: impl Into<String>) -> Location {
        Location(uri.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URI scheme (`file`, `s3+https`, `rbd` …), lower-cased.
    pub fn scheme(&self) -> Option<String> {
        self.0
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase())
    }

    /// The path of a `file://` location.
    pub fn file_path(&self) -> Option<&str> {
        let rest = self.0.strip_prefix("file://")?;
        rest.starts_with('/').then_some(rest)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_glance_file_locations() {
        let l = Location::new("file:///var/lib/glance/images/abc");
        assert_eq!(l.scheme().as_deref(), Some("file"));
        assert_eq!(l.file_path(), Some("/var/lib/glance/images/abc"));
        assert_eq!(Location::new("file://relative").file_path(), None);
        assert_eq!(
            Location::new("rbd://fsid/pool/img/snap")
                .scheme()
                .as_deref(),
            Some("rbd")
        );
    }
}
