//! `file://` and `filesystem://` locations.

use std::fmt;
use std::path::Path;

use super::text::{has_control, invalid};
use super::Scheme;
use crate::error::StoreError;

/// `file:///abs/path`: the path is the text after `file://`, verbatim (Glance neither
/// percent-encodes nor decodes it).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct FileLocation {
    pub(super) scheme: Scheme,
    pub(super) path: String,
    pub(super) raw: String,
}

impl FileLocation {
    /// A `file://` location for an absolute, UTF-8 path.
    pub fn new(path: impl AsRef<Path>) -> Result<FileLocation, StoreError> {
        let path = path.as_ref();
        let text = path.to_str().filter(|p| p.starts_with('/'));
        match text {
            Some(p) if !has_control(p) => Ok(FileLocation {
                scheme: Scheme::File,
                path: p.to_owned(),
                raw: format!("file://{p}"),
            }),
            _ => Err(invalid(&format!("file://{}", path.to_string_lossy()))),
        }
    }

    /// `file`, or `filesystem` for the alternative form Glance also reads.
    pub fn scheme(&self) -> &str {
        self.scheme.as_str()
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Debug for FileLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileLocation")
            .field("scheme", &self.scheme())
            .field("path", &self.path)
            .finish()
    }
}

pub(super) fn parse_file(scheme: Scheme, rest: &str, raw: &str) -> Option<FileLocation> {
    rest.starts_with('/').then(|| FileLocation {
        scheme,
        path: rest.to_owned(),
        raw: raw.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::location::tests::{parse, UUID};
    use crate::location::Location;

    #[test]
    fn file_forms() {
        let l = parse(&format!("file:///var/lib/glance/images/{UUID}"));
        assert_eq!(l.scheme(), "file");
        assert_eq!(
            l.file_path(),
            Some(format!("/var/lib/glance/images/{UUID}").as_str())
        );
        assert!(!l.has_credentials());
        // Glance joins an absolute directory after `file:///` in its tests.
        assert_eq!(parse("file:////tmp/x").file_path(), Some("//tmp/x"));
        let alt = parse("filesystem:///srv/i");
        assert_eq!(alt.scheme(), "filesystem");
        assert_eq!(alt.file_path(), Some("/srv/i"));
        // Written and read verbatim: nothing is percent-decoded.
        assert_eq!(parse("file:///a%20b").file_path(), Some("/a%20b"));

        let made = Location::file("/var/lib/glance/images/abc");
        assert_eq!(made.uri(), "file:///var/lib/glance/images/abc");
        assert_eq!(parse(&made.uri()), made);
        assert_eq!(
            Location::file(Path::new("/srv/x")),
            Location::from(FileLocation::new("/srv/x").ok().unwrap_or_else(|| panic!()))
        );
        assert!(FileLocation::new("relative/x").is_err());
        assert!(Location::parse(&Location::file("relative").uri()).is_err());
        assert_eq!(parse("rbd://fsid/pool/img/snap").file_path(), None);
    }
}
