//! `Location`: where image data lives, typed per scheme, read from and written back to the
//! exact URI forms Glance keeps in `image_locations.value`, so rows Glance wrote stay valid.
//!
//! The forms, as Glance's stores write and parse them:
//!
//! * `file:///abs/path` (and `filesystem:///abs/path`, which Glance also reads);
//! * `s3://[KEY:SECRET@]host[:port][/prefix]/bucket/object`, also `s3+http://`, `s3+https://`;
//!   the credentials are taken verbatim (never percent-encoded), so a secret may hold `/`,
//!   `+` and `=`; the object is the last path segment and the bucket the one before it;
//! * `swift://[USER:KEY@]host[:port][/path]/container/object`, also `swift+http://`,
//!   `swift+https://`; the user and key are percent-encoded (a user `account:user` is written
//!   `account%3Auser`, though the raw `account:user:key` form is read too);
//!   `swift+config://REFERENCE/container/object` names a credentials reference instead;
//! * `rbd://fsid/pool/image/snapshot` with each part percent-encoded, or the old `rbd://image`
//!   whose single part is taken verbatim;
//! * `http://` and `https://` (the read-only http store), optionally with `user:password@`;
//! * `cinder://[store/]volume-uuid`;
//! * `vsphere://host[:port]/folder/path?dsName=…&dcPath=…` (a VMware datastore file);
//! * anything else is kept as [`Location::Other`], a `vsphere://` URI that names no datastore
//!   file too.
//!
//! Every parsed location keeps the text it was read from: [`Location::uri`] gives it back
//! byte for byte. [`fmt::Display`] and [`fmt::Debug`] never show credentials.

mod cinder;
mod file;
mod http;
mod rbd;
mod s3;
mod swift;
#[cfg(test)]
mod tests;
mod text;
mod vsphere;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

pub use cinder::CinderLocation;
pub use file::FileLocation;
pub use http::HttpLocation;
pub use rbd::RbdLocation;
pub use s3::S3Location;
pub use swift::SwiftLocation;
pub use vsphere::VsphereLocation;

use crate::error::StoreError;
use text::{has_control, invalid, mask_credentials, mask_other, sanitize};

/// Where image data lives.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// `file:///abs/path`.
    File(FileLocation),
    /// `s3://`, `s3+http://`, `s3+https://`.
    S3(S3Location),
    /// `swift://`, `swift+http://`, `swift+https://`, `swift+config://`.
    Swift(SwiftLocation),
    /// `rbd://fsid/pool/image/snapshot` or `rbd://image`.
    Rbd(RbdLocation),
    /// `http://` and `https://`.
    Http(HttpLocation),
    /// `cinder://[store/]volume-uuid`.
    Cinder(CinderLocation),
    /// `vsphere://host/folder/path?dsName=…&dcPath=…`.
    Vsphere(VsphereLocation),
    /// A scheme without a typed form here (one Glance does not know, or a `vsphere://` URI
    /// that names no datastore file):
    /// `scheme` is lower-cased, `uri` is the text as read. `uri` may hold credentials
    /// (anything before an `@`); they are masked when displayed.
    Other { scheme: String, uri: String },
}

/// Schemes Glance's stores accept, and only in lower case: each of its stores checks the
/// URI's prefix case-sensitively, so `S3://…` or `File:///…` never parse there.
const GLANCE_SCHEMES: &[&str] = &[
    "file",
    "filesystem",
    "s3",
    "s3+http",
    "s3+https",
    "swift",
    "swift+http",
    "swift+https",
    "swift+config",
    "rbd",
    "http",
    "https",
    "cinder",
    "vsphere",
];

impl Location {
    /// Parses a location URI in the form Glance writes it.
    ///
    /// Fails with [`StoreError::InvalidLocation`] carrying the URI with anything that could
    /// be a credential masked.
    pub fn parse(uri: &str) -> Result<Location, StoreError> {
        parse_location(uri).ok_or_else(|| invalid(uri))
    }

    /// The URI to store in the database: for a parsed location, exactly the text it was
    /// parsed from. Holds credentials when the location has them.
    pub fn uri(&self) -> String {
        self.raw().to_owned()
    }

    /// The scheme, lower-cased (`file`, `s3+https`, `swift+config`, `rbd`, …).
    pub fn scheme(&self) -> &str {
        match self {
            Location::File(l) => l.scheme(),
            Location::S3(l) => l.scheme(),
            Location::Swift(l) => l.scheme(),
            Location::Rbd(_) => "rbd",
            Location::Http(l) => l.scheme(),
            Location::Cinder(_) => "cinder",
            Location::Vsphere(_) => "vsphere",
            Location::Other { scheme, .. } => scheme,
        }
    }

    /// A `file://` location for `path`, written as Glance's filesystem store does
    /// (`file://` followed by the path verbatim).
    ///
    /// `path` must be absolute: a relative one gives a location whose URI [`Location::parse`]
    /// refuses (use [`FileLocation::new`] to have that checked). A path that is not valid
    /// UTF-8 is converted lossily.
    pub fn file(path: impl AsRef<Path>) -> Location {
        let path = path.as_ref().to_string_lossy().into_owned();
        Location::File(FileLocation {
            scheme: Scheme::File,
            raw: format!("file://{path}"),
            path,
        })
    }

    /// The path of a `file://` location.
    pub fn file_path(&self) -> Option<&str> {
        match self {
            Location::File(l) => Some(l.path()),
            _ => None,
        }
    }

    /// Whether the URI holds credentials (which [`Location::uri`] then includes).
    pub fn has_credentials(&self) -> bool {
        match self {
            Location::S3(l) => l.credentials.is_some(),
            Location::Swift(l) => l.credentials().is_some(),
            Location::Http(l) => l.credentials.is_some(),
            Location::Other { uri, .. } => uri.contains('@'),
            Location::File(_) | Location::Rbd(_) | Location::Cinder(_) | Location::Vsphere(_) => {
                false
            }
        }
    }

    /// The URI as clients may see it (`direct_url`, `locations`): any credentials written into
    /// it left out altogether, the rest as stored.
    pub fn without_credentials(&self) -> String {
        let raw = self.raw();
        match self {
            Location::S3(_) | Location::Swift(_) | Location::Http(_) | Location::Other { .. }
                if raw.contains('@') =>
            {
                strip_userinfo(raw)
            }
            _ => raw.to_owned(),
        }
    }

    fn raw(&self) -> &str {
        match self {
            Location::File(l) => &l.raw,
            Location::S3(l) => &l.raw,
            Location::Swift(l) => &l.raw,
            Location::Rbd(l) => &l.raw,
            Location::Http(l) => &l.raw,
            Location::Cinder(l) => &l.raw,
            Location::Vsphere(l) => &l.raw,
            Location::Other { uri, .. } => uri,
        }
    }

    /// The URI with credentials masked: what `Display` shows.
    fn redacted(&self) -> String {
        let raw = self.raw();
        match self {
            Location::S3(l) if l.credentials.is_some() => mask_credentials(raw),
            Location::Swift(l) if l.credentials().is_some() => mask_credentials(raw),
            Location::Http(l) if l.credentials.is_some() => mask_credentials(raw),
            Location::Other { uri, .. } => mask_other(uri),
            // An `@` that did not parse as credentials may still end one (a raw `/` in a
            // hand-written key): mask up to it rather than risk showing a secret.
            Location::S3(_) | Location::Swift(_) | Location::Http(_) if raw.contains('@') => {
                mask_other(raw)
            }
            _ => sanitize(raw),
        }
    }
}

impl FromStr for Location {
    type Err = StoreError;

    fn from_str(uri: &str) -> Result<Location, StoreError> {
        Location::parse(uri)
    }
}

/// `uri` without whatever stands between the scheme and its last `@` (a secret may hold `/`,
/// so the authority cannot be trusted to end at the first one): for stored text that does not
/// parse as a location too.
pub fn strip_userinfo(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(sep), Some(at)) if sep + 3 <= at => format!("{}{}", &uri[..sep + 3], &uri[at + 1..]),
        _ => uri.to_owned(),
    }
}

/// The redacted URI: credentials are replaced by `***`.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Redacted like `Display`.
impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(l) => f.debug_tuple("File").field(l).finish(),
            Location::S3(l) => f.debug_tuple("S3").field(l).finish(),
            Location::Swift(l) => f.debug_tuple("Swift").field(l).finish(),
            Location::Rbd(l) => f.debug_tuple("Rbd").field(l).finish(),
            Location::Http(l) => f.debug_tuple("Http").field(l).finish(),
            Location::Cinder(l) => f.debug_tuple("Cinder").field(l).finish(),
            Location::Vsphere(l) => f.debug_tuple("Vsphere").field(l).finish(),
            Location::Other { scheme, uri } => f
                .debug_struct("Other")
                .field("scheme", scheme)
                .field("uri", &mask_other(uri))
                .finish(),
        }
    }
}

macro_rules! from_variant {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for Location {
            fn from(l: $ty) -> Location {
                Location::$variant(l)
            }
        }
    )*};
}

from_variant!(
    File(FileLocation),
    S3(S3Location),
    Swift(SwiftLocation),
    Rbd(RbdLocation),
    Http(HttpLocation),
    Cinder(CinderLocation),
    Vsphere(VsphereLocation)
);

/// A user name (S3 access key, Swift user, HTTP user) and its secret. `Debug` hides both.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    user: String,
    secret: String,
}

impl Credentials {
    pub fn new(user: impl Into<String>, secret: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            secret: secret.into(),
        }
    }

    /// The S3 access key, Swift user (`account:user` included) or HTTP user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The S3 secret key, Swift key or HTTP password.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(***)")
    }
}

/// The schemes, kept as an enum so a location's fields cannot disagree with its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scheme {
    File,
    Filesystem,
    S3,
    S3Http,
    S3Https,
    Swift,
    SwiftHttp,
    SwiftHttps,
    SwiftConfig,
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::File => "file",
            Scheme::Filesystem => "filesystem",
            Scheme::S3 => "s3",
            Scheme::S3Http => "s3+http",
            Scheme::S3Https => "s3+https",
            Scheme::Swift => "swift",
            Scheme::SwiftHttp => "swift+http",
            Scheme::SwiftHttps => "swift+https",
            Scheme::SwiftConfig => "swift+config",
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

// Parsing.

fn parse_location(raw: &str) -> Option<Location> {
    if raw.is_empty() || has_control(raw) {
        return None;
    }
    let (written, rest) = split_scheme(raw)?;
    let lower = written.to_ascii_lowercase();
    if GLANCE_SCHEMES.contains(&lower.as_str()) && written != lower {
        return None;
    }
    let location = match lower.as_str() {
        "file" => Location::File(file::parse_file(Scheme::File, rest, raw)?),
        "filesystem" => Location::File(file::parse_file(Scheme::Filesystem, rest, raw)?),
        "s3" => Location::S3(s3::parse_s3(Scheme::S3, rest, raw)?),
        "s3+http" => Location::S3(s3::parse_s3(Scheme::S3Http, rest, raw)?),
        "s3+https" => Location::S3(s3::parse_s3(Scheme::S3Https, rest, raw)?),
        "swift" => Location::Swift(swift::parse_swift(Scheme::Swift, rest, raw)?),
        "swift+http" => Location::Swift(swift::parse_swift(Scheme::SwiftHttp, rest, raw)?),
        "swift+https" => Location::Swift(swift::parse_swift(Scheme::SwiftHttps, rest, raw)?),
        "swift+config" => Location::Swift(swift::parse_swift_config(rest, raw)?),
        "rbd" => Location::Rbd(rbd::parse_rbd(rest, raw)?),
        "http" => Location::Http(http::parse_http(Scheme::Http, rest, raw)?),
        "https" => Location::Http(http::parse_http(Scheme::Https, rest, raw)?),
        "cinder" => Location::Cinder(cinder::parse_cinder(rest, raw)?),
        "vsphere" => match vsphere::parse_vsphere(rest, raw) {
            Some(l) => Location::Vsphere(l),
            None if !rest.is_empty() => Location::Other {
                scheme: lower,
                uri: raw.to_owned(),
            },
            None => return None,
        },
        _ => {
            if rest.is_empty() {
                return None;
            }
            Location::Other {
                scheme: lower,
                uri: raw.to_owned(),
            }
        }
    };
    Some(location)
}

/// `scheme://rest` with a scheme as RFC 3986 spells it.
fn split_scheme(raw: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = raw.split_once(':')?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !first_ok || !rest_ok {
        return None;
    }
    Some((scheme, rest.strip_prefix("//")?))
}
