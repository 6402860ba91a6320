//! `rbd://` locations.

use std::fmt;

use super::text::{has_control, invalid, percent_decode, percent_encode};
use crate::error::StoreError;

/// `rbd://fsid/pool/image/snapshot` (each part percent-decoded) or `rbd://image` (verbatim).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RbdLocation {
    fsid: Option<String>,
    pool: Option<String>,
    image: String,
    snapshot: Option<String>,
    pub(super) raw: String,
}

impl RbdLocation {
    /// `rbd://fsid/pool/image/snapshot`, each part percent-encoded as Glance does.
    pub fn new(
        fsid: &str,
        pool: &str,
        image: &str,
        snapshot: &str,
    ) -> Result<RbdLocation, StoreError> {
        let parts = [fsid, pool, image, snapshot];
        let raw = format!(
            "rbd://{}/{}/{}/{}",
            percent_encode(fsid),
            percent_encode(pool),
            percent_encode(image),
            percent_encode(snapshot)
        );
        if parts.iter().any(|p| p.is_empty()) || has_control(&raw) {
            return Err(invalid(&raw));
        }
        Ok(RbdLocation {
            fsid: Some(fsid.to_owned()),
            pool: Some(pool.to_owned()),
            image: image.to_owned(),
            snapshot: Some(snapshot.to_owned()),
            raw,
        })
    }

    /// The old `rbd://image` form (the image in the store's configured pool, no snapshot),
    /// which Glance writes verbatim.
    pub fn image_only(image: &str) -> Result<RbdLocation, StoreError> {
        let raw = format!("rbd://{image}");
        if image.is_empty() || image.contains('/') || has_control(image) {
            return Err(invalid(&raw));
        }
        Ok(RbdLocation {
            fsid: None,
            pool: None,
            image: image.to_owned(),
            snapshot: None,
            raw,
        })
    }

    /// The cluster id; `None` in the `rbd://image` form.
    pub fn fsid(&self) -> Option<&str> {
        self.fsid.as_deref()
    }

    /// The pool; `None` in the `rbd://image` form (the store's configured pool).
    pub fn pool(&self) -> Option<&str> {
        self.pool.as_deref()
    }

    pub fn image(&self) -> &str {
        &self.image
    }

    /// The snapshot; `None` in the `rbd://image` form.
    pub fn snapshot(&self) -> Option<&str> {
        self.snapshot.as_deref()
    }
}

impl fmt::Debug for RbdLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RbdLocation")
            .field("fsid", &self.fsid)
            .field("pool", &self.pool)
            .field("image", &self.image)
            .field("snapshot", &self.snapshot)
            .finish()
    }
}

/// As Glance reads it: one part, taken verbatim, or four, each percent-decoded; none empty.
pub(super) fn parse_rbd(rest: &str, raw: &str) -> Option<RbdLocation> {
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    match parts.as_slice() {
        [image] => Some(RbdLocation {
            fsid: None,
            pool: None,
            image: (*image).to_owned(),
            snapshot: None,
            raw: raw.to_owned(),
        }),
        [fsid, pool, image, snapshot] => Some(RbdLocation {
            fsid: Some(percent_decode(fsid)),
            pool: Some(percent_decode(pool)),
            image: percent_decode(image),
            snapshot: Some(percent_decode(snapshot)),
            raw: raw.to_owned(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::location::tests::{parse, UUID};
    use crate::location::Location;

    fn rbd(uri: &str) -> RbdLocation {
        match parse(uri) {
            Location::Rbd(l) => l,
            other => panic!("{uri} is not rbd: {other:?}"),
        }
    }

    #[test]
    fn rbd_forms() {
        let l = rbd("rbd://image");
        assert_eq!(
            (l.fsid(), l.pool(), l.image(), l.snapshot()),
            (None, None, "image", None)
        );
        let l = rbd("rbd://fsid/pool/image/snap");
        assert_eq!(
            (l.fsid(), l.pool(), l.image(), l.snapshot()),
            (Some("fsid"), Some("pool"), "image", Some("snap"))
        );
        // Four parts are percent-decoded; lower-case escapes are kept as written.
        let uri = "rbd://fs%2Fid/po%20ol/im%40age/sn%2fap";
        let l = rbd(uri);
        assert_eq!(
            (l.fsid(), l.pool(), l.image(), l.snapshot()),
            (Some("fs/id"), Some("po ol"), "im@age", Some("sn/ap"))
        );
        assert_eq!(parse(uri).uri(), uri);
        // The single part is taken verbatim, as Glance does.
        assert_eq!(rbd("rbd://my%20image").image(), "my%20image");
        // A lone `%` stays.
        assert_eq!(rbd("rbd://f/p/100%/s").image(), "100%");
        assert_eq!(parse("rbd://image").scheme(), "rbd");
        assert!(!parse("rbd://f/p/i/s").has_credentials());
    }

    #[test]
    fn rbd_constructors() {
        let made = RbdLocation::new("b3b3-d1d4", "images", UUID, "snap")
            .map(Location::from)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(made.uri(), format!("rbd://b3b3-d1d4/images/{UUID}/snap"));
        assert_eq!(parse(&made.uri()), made);

        let odd =
            RbdLocation::new("f/s", "p o", "i@m+g=ü", "s~n_a.p-").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(odd.raw, "rbd://f%2Fs/p%20o/i%40m%2Bg%3D%C3%BC/s~n_a.p-");
        let back = rbd(&odd.raw);
        assert_eq!(back, odd);
        assert_eq!(back.image(), "i@m+g=ü");

        let old = RbdLocation::image_only("img").map(Location::from);
        assert_eq!(old.map(|l| l.uri()).ok().as_deref(), Some("rbd://img"));
        assert!(RbdLocation::image_only("a/b").is_err());
        assert!(RbdLocation::image_only("").is_err());
        assert!(RbdLocation::new("", "p", "i", "s").is_err());
    }
}
