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
//! * anything else, such as `vsphere://…`, is kept as [`Location::Other`].
//!
//! Every parsed location keeps the text it was read from: [`Location::uri`] gives it back
//! byte for byte. [`fmt::Display`] and [`fmt::Debug`] never show credentials.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::error::StoreError;

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
    /// A scheme without a typed form here (`vsphere://…`, or one Glance does not know):
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
            Location::File(_) | Location::Rbd(_) | Location::Cinder(_) => false,
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
    Cinder(CinderLocation)
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

/// `file:///abs/path`: the path is the text after `file://`, verbatim (Glance neither
/// percent-encodes nor decodes it).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct FileLocation {
    scheme: Scheme,
    path: String,
    raw: String,
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

/// `s3://[KEY:SECRET@]host[:port][/prefix]/bucket/object` (also `s3+http`, `s3+https`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct S3Location {
    scheme: Scheme,
    credentials: Option<Credentials>,
    host: String,
    bucket: String,
    key: String,
    raw: String,
}

impl S3Location {
    /// A new location without credentials, written as Glance does: `s3+https://` when
    /// `https`, else `s3://`. `host` is `host[:port][/prefix]` without a scheme; bucket and
    /// key are single path segments.
    pub fn new(https: bool, host: &str, bucket: &str, key: &str) -> Result<S3Location, StoreError> {
        let scheme = if https { Scheme::S3Https } else { Scheme::S3 };
        let host = host.trim_matches('/');
        let raw = format!("{}://{host}/{bucket}/{key}", scheme.as_str());
        let host_ok = !host.is_empty()
            && !host.contains(['@', '?', '#'])
            && !host.contains("://")
            && host
                .split('/')
                .next()
                .is_some_and(|a| valid_authority(a, false));
        if !host_ok || !valid_segment(bucket) || !valid_segment(key) || has_control(&raw) {
            return Err(invalid(&raw));
        }
        Ok(S3Location {
            scheme,
            credentials: None,
            host: host.to_owned(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            raw,
        })
    }

    /// `s3`, `s3+http` or `s3+https`.
    pub fn scheme(&self) -> &str {
        self.scheme.as_str()
    }

    /// Whether the service is reached over HTTPS (`s3+https`); Glance uses HTTP for both
    /// `s3` and `s3+http`.
    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::S3Https
    }

    /// `host[:port][/prefix]`, without a scheme.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The service URL: `https://` or `http://` followed by [`S3Location::host`].
    pub fn endpoint(&self) -> String {
        let scheme = if self.is_https() { "https" } else { "http" };
        format!("{scheme}://{}", self.host)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The access and secret keys written in the URI, verbatim.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }
}

impl fmt::Debug for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Location")
            .field("scheme", &self.scheme())
            .field("credentials", &self.credentials)
            .field("host", &self.host)
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .finish()
    }
}

/// How a Swift location authenticates.
#[derive(Clone, PartialEq, Eq, Hash)]
enum SwiftAuth {
    None,
    Credentials(Credentials),
    ConfigRef(String),
}

/// `swift://[USER:KEY@]address/container/object` (also `swift+http`, `swift+https`), or
/// `swift+config://REFERENCE/container/object`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SwiftLocation {
    scheme: Scheme,
    auth: SwiftAuth,
    address: String,
    container: String,
    object: String,
    raw: String,
}

impl SwiftLocation {
    /// A new location without credentials: `swift+https://` (or `swift+http://`) followed
    /// by the auth or storage address (`host[:port][/path]`, no scheme), container, object.
    pub fn new(
        https: bool,
        address: &str,
        container: &str,
        object: &str,
    ) -> Result<SwiftLocation, StoreError> {
        let scheme = if https {
            Scheme::SwiftHttps
        } else {
            Scheme::SwiftHttp
        };
        let address = address.trim_matches('/');
        let raw = format!("{}://{address}/{container}/{object}", scheme.as_str());
        let address_ok = !address.is_empty()
            && !address.contains(['@', '?', '#'])
            && !address.contains("://")
            && address
                .split('/')
                .next()
                .is_some_and(|a| valid_authority(a, false));
        if !address_ok || !valid_segment(container) || !valid_segment(object) || has_control(&raw) {
            return Err(invalid(&raw));
        }
        Ok(SwiftLocation {
            scheme,
            auth: SwiftAuth::None,
            address: address.to_owned(),
            container: container.to_owned(),
            object: object.to_owned(),
            raw,
        })
    }

    /// `swift+config://REFERENCE/container/object`, the form Glance writes when the
    /// credentials come from a named reference in the swift store's configuration.
    pub fn with_config_ref(
        reference: &str,
        container: &str,
        object: &str,
    ) -> Result<SwiftLocation, StoreError> {
        let raw = format!("swift+config://{reference}/{container}/{object}");
        if !valid_segment(reference)
            || !valid_segment(container)
            || !valid_segment(object)
            || has_control(&raw)
        {
            return Err(invalid(&raw));
        }
        Ok(SwiftLocation {
            scheme: Scheme::SwiftConfig,
            auth: SwiftAuth::ConfigRef(reference.to_owned()),
            address: String::new(),
            container: container.to_owned(),
            object: object.to_owned(),
            raw,
        })
    }

    /// `swift`, `swift+http`, `swift+https` or `swift+config`.
    pub fn scheme(&self) -> &str {
        self.scheme.as_str()
    }

    /// Whether the address is reached over HTTPS (`swift` and `swift+https`); `None` for
    /// `swift+config`, where the referenced auth address decides.
    pub fn is_https(&self) -> Option<bool> {
        match self.scheme {
            Scheme::SwiftConfig => None,
            Scheme::SwiftHttp => Some(false),
            _ => Some(true),
        }
    }

    /// The user and key written in the URI, percent-decoded. The user may be
    /// `account:user`.
    pub fn credentials(&self) -> Option<&Credentials> {
        match &self.auth {
            SwiftAuth::Credentials(c) => Some(c),
            _ => None,
        }
    }

    /// The credentials reference of a `swift+config` location.
    pub fn config_ref(&self) -> Option<&str> {
        match &self.auth {
            SwiftAuth::ConfigRef(r) => Some(r),
            _ => None,
        }
    }

    /// The auth address (or, without credentials, possibly the storage URL) as
    /// `host[:port][/path]`, without a scheme. For `swift+config` this is only the path
    /// written between the reference and the container, usually empty: Glance appends it
    /// to the referenced auth address.
    pub fn auth_address(&self) -> &str {
        &self.address
    }

    /// The full URL of [`SwiftLocation::auth_address`]; `None` for `swift+config`.
    pub fn auth_url(&self) -> Option<String> {
        let https = self.is_https()?;
        let scheme = if https { "https" } else { "http" };
        Some(format!("{scheme}://{}", self.address))
    }

    pub fn container(&self) -> &str {
        &self.container
    }

    pub fn object(&self) -> &str {
        &self.object
    }
}

impl fmt::Debug for SwiftLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwiftLocation")
            .field("scheme", &self.scheme())
            .field("credentials", &self.credentials())
            .field("config_ref", &self.config_ref())
            .field("auth_address", &self.address)
            .field("container", &self.container)
            .field("object", &self.object)
            .finish()
    }
}

/// `rbd://fsid/pool/image/snapshot` (each part percent-decoded) or `rbd://image` (verbatim).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RbdLocation {
    fsid: Option<String>,
    pool: Option<String>,
    image: String,
    snapshot: Option<String>,
    raw: String,
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

/// `http[s]://[user:password@]host[:port][/path][?query]`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HttpLocation {
    scheme: Scheme,
    credentials: Option<Credentials>,
    host: String,
    path_and_query: String,
    raw: String,
}

impl HttpLocation {
    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        self.scheme.as_str()
    }

    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::Https
    }

    /// The user and password written in the URI, percent-decoded.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// `host[:port]`, IPv6 addresses in brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Everything after the host up to a fragment: path and query, as written.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// The URL to fetch: without credentials and without a fragment.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme(), self.host, self.path_and_query)
    }
}

impl fmt::Debug for HttpLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpLocation")
            .field("scheme", &self.scheme())
            .field("credentials", &self.credentials)
            .field("host", &self.host)
            .field("path_and_query", &sanitize(&self.path_and_query))
            .finish()
    }
}

/// `cinder://volume-uuid`, or `cinder://store/volume-uuid` as Glance writes it with
/// several stores configured.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CinderLocation {
    store: Option<String>,
    volume_id: String,
    raw: String,
}

impl CinderLocation {
    /// `volume_id` must be a UUID in its canonical lower-case form, as Glance requires.
    pub fn new(store: Option<&str>, volume_id: &str) -> Result<CinderLocation, StoreError> {
        let raw = match store {
            Some(s) => format!("cinder://{s}/{volume_id}"),
            None => format!("cinder://{volume_id}"),
        };
        let store_ok = store.is_none_or(valid_segment);
        if !store_ok || !is_canonical_uuid(volume_id) {
            return Err(invalid(&raw));
        }
        Ok(CinderLocation {
            store: store.map(str::to_owned),
            volume_id: volume_id.to_owned(),
            raw,
        })
    }

    /// The store (backend) name written before the volume id, if any.
    pub fn store(&self) -> Option<&str> {
        self.store.as_deref()
    }

    pub fn volume_id(&self) -> &str {
        &self.volume_id
    }
}

impl fmt::Debug for CinderLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CinderLocation")
            .field("store", &self.store)
            .field("volume_id", &self.volume_id)
            .finish()
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
        "file" => Location::File(parse_file(Scheme::File, rest, raw)?),
        "filesystem" => Location::File(parse_file(Scheme::Filesystem, rest, raw)?),
        "s3" => Location::S3(parse_s3(Scheme::S3, rest, raw)?),
        "s3+http" => Location::S3(parse_s3(Scheme::S3Http, rest, raw)?),
        "s3+https" => Location::S3(parse_s3(Scheme::S3Https, rest, raw)?),
        "swift" => Location::Swift(parse_swift(Scheme::Swift, rest, raw)?),
        "swift+http" => Location::Swift(parse_swift(Scheme::SwiftHttp, rest, raw)?),
        "swift+https" => Location::Swift(parse_swift(Scheme::SwiftHttps, rest, raw)?),
        "swift+config" => Location::Swift(parse_swift_config(rest, raw)?),
        "rbd" => Location::Rbd(parse_rbd(rest, raw)?),
        "http" => Location::Http(parse_http(Scheme::Http, rest, raw)?),
        "https" => Location::Http(parse_http(Scheme::Https, rest, raw)?),
        "cinder" => Location::Cinder(parse_cinder(rest, raw)?),
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

fn parse_file(scheme: Scheme, rest: &str, raw: &str) -> Option<FileLocation> {
    rest.starts_with('/').then(|| FileLocation {
        scheme,
        path: rest.to_owned(),
        raw: raw.to_owned(),
    })
}

/// As Glance reads it: one `://` only; any `@` splits credentials from the rest (so there
/// may be one only), and the credentials split at their first `:`; slashes around the rest
/// are ignored; the object is the last segment, the bucket the one before, the host (with
/// any port and path prefix) everything before that.
fn parse_s3(scheme: Scheme, rest: &str, raw: &str) -> Option<S3Location> {
    if raw.matches("://").count() != 1 || rest.contains(['?', '#']) {
        return None;
    }
    let body = rest.trim_start_matches('/');
    let (credentials, tail) = match body.split_once('@') {
        Some((creds, tail)) => {
            if tail.contains('@') {
                return None;
            }
            let (user, secret) = creds.split_once(':')?;
            (Some(Credentials::new(user, secret)), tail)
        }
        None => (None, body),
    };
    let (host, bucket, key) = split_container_object(tail.trim_matches('/'))?;
    let host = host.trim_matches('/');
    if host.is_empty() || !valid_authority(host.split('/').next()?, false) {
        return None;
    }
    Some(S3Location {
        scheme,
        credentials,
        host: host.to_owned(),
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        raw: raw.to_owned(),
    })
}

/// As Glance reads it: one `://` only; the authority (up to the first `/`) may hold one
/// `@`, before which the credentials are `user:key` split at the last `:`, each part
/// percent-decoded; the object is the last path segment, the container the one before, and
/// the auth address the host followed by any path segments before the container.
fn parse_swift(scheme: Scheme, rest: &str, raw: &str) -> Option<SwiftLocation> {
    if raw.matches("://").count() != 1 || rest.contains(['?', '#']) {
        return None;
    }
    let (authority, path) = rest.split_at(rest.find('/')?);
    let (auth, host) = match authority.split_once('@') {
        Some((creds, host)) => {
            if host.contains('@') {
                return None;
            }
            if creds.is_empty() {
                (SwiftAuth::None, host)
            } else {
                let (user, key) = creds.rsplit_once(':')?;
                let credentials = Credentials::new(percent_decode(user), percent_decode(key));
                (SwiftAuth::Credentials(credentials), host)
            }
        }
        None => (SwiftAuth::None, authority),
    };
    if !valid_authority(host, false) {
        return None;
    }
    let (prefix, container, object) = split_container_object(path.trim_start_matches('/'))?;
    let address = if prefix.is_empty() {
        host.to_owned()
    } else {
        format!("{host}/{prefix}")
    };
    Some(SwiftLocation {
        scheme,
        auth,
        address,
        container: container.to_owned(),
        object: object.to_owned(),
        raw: raw.to_owned(),
    })
}

fn parse_swift_config(rest: &str, raw: &str) -> Option<SwiftLocation> {
    if raw.matches("://").count() != 1 || rest.contains(['?', '#']) {
        return None;
    }
    let (reference, path) = rest.split_at(rest.find('/')?);
    if reference.is_empty() || reference.contains('@') {
        return None;
    }
    let (prefix, container, object) = split_container_object(path.trim_start_matches('/'))?;
    Some(SwiftLocation {
        scheme: Scheme::SwiftConfig,
        auth: SwiftAuth::ConfigRef(reference.to_owned()),
        address: prefix.to_owned(),
        container: container.to_owned(),
        object: object.to_owned(),
        raw: raw.to_owned(),
    })
}

/// `prefix/container/object` → (prefix, container, object), the last two non-empty; the
/// prefix may be empty.
fn split_container_object(path: &str) -> Option<(&str, &str, &str)> {
    let (before, object) = path.rsplit_once('/')?;
    let (prefix, container) = match before.rsplit_once('/') {
        Some((prefix, container)) => (prefix, container),
        None => ("", before),
    };
    (!container.is_empty() && !object.is_empty()).then_some((prefix, container, object))
}

/// As Glance reads it: one part, taken verbatim, or four, each percent-decoded; none empty.
fn parse_rbd(rest: &str, raw: &str) -> Option<RbdLocation> {
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

/// As Glance reads it: the authority (up to `/`, `?` or `#`) may hold `user:password@`
/// with exactly one `:`; the host must be there and a port, if any, be digits.
fn parse_http(scheme: Scheme, rest: &str, raw: &str) -> Option<HttpLocation> {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(end);
    let (credentials, host) = match authority.split_once('@') {
        Some((creds, host)) => {
            if host.contains('@') {
                return None;
            }
            let credentials = if creds.is_empty() {
                None
            } else {
                let (user, password) = creds.split_once(':')?;
                if password.contains(':') {
                    return None;
                }
                Some(Credentials::new(
                    percent_decode(user),
                    percent_decode(password),
                ))
            };
            (credentials, host)
        }
        None => (None, authority),
    };
    if !valid_authority(host, true) {
        return None;
    }
    let path_and_query = after.split_once('#').map_or(after, |(p, _)| p);
    Some(HttpLocation {
        scheme,
        credentials,
        host: host.to_owned(),
        path_and_query: path_and_query.to_owned(),
        raw: raw.to_owned(),
    })
}

/// As Glance reads it: the volume id is the last `/`-separated part and must be a UUID in
/// canonical form; what comes before it is the store name.
fn parse_cinder(rest: &str, raw: &str) -> Option<CinderLocation> {
    let (store, volume_id) = match rest.rsplit_once('/') {
        Some((store, volume_id)) => (Some(store).filter(|s| !s.is_empty()), volume_id),
        None => (None, rest),
    };
    is_canonical_uuid(volume_id).then(|| CinderLocation {
        store: store.map(str::to_owned),
        volume_id: volume_id.to_owned(),
        raw: raw.to_owned(),
    })
}

/// `host[:port]`, the host a name or a bracketed IPv6 address. With `digit_port` the port
/// must be digits (or empty), as Glance's http store checks; otherwise it is not looked at.
fn valid_authority(authority: &str, digit_port: bool) -> bool {
    let port_ok = |port: &str| !digit_port || port.bytes().all(|b| b.is_ascii_digit());
    if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((address, after)) = bracketed.split_once(']') else {
            return false;
        };
        let (address, zone) = match address.split_once('%') {
            Some((address, zone)) => (address, Some(zone)),
            None => (address, None),
        };
        let address_ok = address.contains(':')
            && address
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        let zone_ok = zone.is_none_or(|z| !z.is_empty() && !z.contains(['[', ']']));
        let after_ok = match after.strip_prefix(':') {
            Some(port) => port_ok(port),
            None => after.is_empty(),
        };
        return address_ok && zone_ok && after_ok;
    }
    if authority.is_empty() || authority.contains(['[', ']']) {
        return false;
    }
    match authority.split_once(':') {
        Some((host, port)) => !host.is_empty() && port_ok(port),
        None => true,
    }
}

/// A bucket, container, object or reference written by Glint: one non-empty path segment
/// that Glance reads back unchanged.
fn valid_segment(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '@', '?', '#']) && !has_control(s)
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lower-case hex.
fn is_canonical_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_control())
}

// Percent-encoding, as Python's `urllib.parse` does it.

/// Decodes `%XX`; a `%` not followed by two hex digits stays as it is, and bytes that are
/// not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Encodes every byte but letters, digits and `_.-~`, with upper-case hex.
fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

// Redaction.

fn invalid(uri: &str) -> StoreError {
    StoreError::InvalidLocation(mask_other(uri))
}

/// `scheme://***:***@rest` for a location whose credentials end at its first `@`.
fn mask_credentials(raw: &str) -> String {
    match (raw.find("://"), raw.find('@')) {
        (Some(sep), Some(at)) if sep < at => {
            sanitize(&format!("{}://***:***@{}", &raw[..sep], &raw[at + 1..]))
        }
        _ => mask_other(raw),
    }
}

/// Masks everything between the scheme and the last `@` (a secret may hold `/`, so the
/// authority cannot be trusted to end at one): for URIs of unknown form, and for input that
/// did not parse.
fn mask_other(uri: &str) -> String {
    match uri.rfind('@') {
        Some(at) => {
            let start = uri
                .find("://")
                .map(|sep| sep + 3)
                .filter(|&start| start <= at)
                .unwrap_or(0);
            sanitize(&format!("{}***@{}", &uri[..start], &uri[at + 1..]))
        }
        None => sanitize(uri),
    }
}

/// Control characters replaced, so the text is safe in a log line.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2";

    fn parse(uri: &str) -> Location {
        match Location::parse(uri) {
            Ok(l) => l,
            Err(e) => panic!("{uri:?} should parse: {e}"),
        }
    }

    fn refused(uri: &str) {
        match Location::parse(uri) {
            Err(StoreError::InvalidLocation(_)) => {}
            other => panic!("{uri:?} should be refused, got {other:?}"),
        }
    }

    fn s3(uri: &str) -> S3Location {
        match parse(uri) {
            Location::S3(l) => l,
            other => panic!("{uri} is not s3: {other:?}"),
        }
    }

    fn swift(uri: &str) -> SwiftLocation {
        match parse(uri) {
            Location::Swift(l) => l,
            other => panic!("{uri} is not swift: {other:?}"),
        }
    }

    fn rbd(uri: &str) -> RbdLocation {
        match parse(uri) {
            Location::Rbd(l) => l,
            other => panic!("{uri} is not rbd: {other:?}"),
        }
    }

    fn http(uri: &str) -> HttpLocation {
        match parse(uri) {
            Location::Http(l) => l,
            other => panic!("{uri} is not http: {other:?}"),
        }
    }

    fn creds(c: Option<&Credentials>) -> Option<(&str, &str)> {
        c.map(|c| (c.user(), c.secret()))
    }

    /// Forms Glance writes or reads, from its stores' `get_uri` and their unit tests.
    fn glance_forms() -> Vec<String> {
        let mut forms: Vec<String> = [
            "file:///var/lib/glance/images/2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2",
            "file:////tmp/glance-tests/1/2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2",
            "file:///var/lib/glance/my images/x",
            "filesystem:///var/lib/glance/images/1",
            "s3://accesskey:secretkey@s3.amazonaws.com/bucket/key-id",
            "s3+https://accesskey:secretkey@s3.amazonaws.com/bucket/key-id",
            "s3+http://accesskey:secretkey@s3.amazonaws.com/bucket/key-id",
            "s3://user:key@auth_address/glance/2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2",
            "s3+https://user:key@s3-region1.com/glance/2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2",
            "s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfi+CYEXAMPLEKEY=@s3.amazonaws.com/glance/x",
            "s3://AK:a//b/@s3.amazonaws.com/glance/x",
            "s3+https://ak:sk@rgw.example.com:8443/glance/x",
            "s3://ak:sk@[fd00::10]:9000/glance/x",
            "s3+https://ak:sk@example.com/s3/prefix/glance/x",
            "s3://s3.amazonaws.com/bucket/key",
            "s3://host/bucket/key/",
            "swift://user:pass@authurl.com/container/obj-id",
            "swift://account:user:pass@authurl.com/container/obj-id",
            "swift+http://user:pass@authurl.com/container/obj-id",
            "swift+https://user:pass@authurl.com/container/obj-id",
            "swift+https://tenant%3Auser1:key@localhost:8080/glance/x",
            "swift+https://example.com/container/obj-id",
            "swift+https://some_endpoint/v1/AUTH_abc/glance_x/x",
            "swift+config://ref1/glance/2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2",
            "swift://user:key@auth.example.com/v3/glance/x",
            "swift+http://127.0.0.1/glance_123/123",
            "swift+https://u:k%2Bey%3D%40%3A@[::1]:8080/v1/c/o",
            "rbd://image",
            "rbd://fsid/pool/image/snap",
            "rbd://b3b3d1d4-f3c5-4f2c-9f44-8bb1a3f3e1d1/images/2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2/snap",
            "rbd://fs%2Fid/po%20ol/im%40age/sn%2fap",
            "rbd://my%20image",
            "http://netloc/path/to/file.tar.gz",
            "https://user:pass@example.com:80/images/some-id",
            "http://example.com/123456",
            "http://127.0.0.1:8000/ubuntu.iso",
            "http://openstack.com:80/ubuntu.iso",
            "http://[1080::8:800:200C:417A]:80/ubuntu.iso",
            "http://netloc/path/to/file.tar.gz?query=text",
            "https://us%65r:p%40ss@example.com/a@b?x=http://y#frag",
            "http://example.com",
            "cinder://2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2",
            "cinder://cinder1/2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2",
            "vsphere://127.0.0.1/folder/openstack_glance/x?dcPath=dc1&dsName=ds1",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        forms.push(format!("swift+config://store_2/glance/{UUID}"));
        forms
    }

    #[test]
    fn every_glance_form_round_trips_exactly() {
        for uri in glance_forms() {
            let location = parse(&uri);
            assert_eq!(location.uri(), uri);
            assert_eq!(parse(&location.uri()), location, "{uri}");
            assert_eq!(uri.parse::<Location>().ok(), Some(location.clone()));
            assert!(uri.starts_with(location.scheme()), "{uri}");
        }
    }

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

    #[test]
    fn s3_forms() {
        let l = s3("s3://accesskey:secretkey@s3.amazonaws.com/bucket/key-id");
        assert_eq!(l.scheme(), "s3");
        assert!(!l.is_https());
        assert_eq!(creds(l.credentials()), Some(("accesskey", "secretkey")));
        assert_eq!(l.host(), "s3.amazonaws.com");
        assert_eq!(l.endpoint(), "http://s3.amazonaws.com");
        assert_eq!((l.bucket(), l.key()), ("bucket", "key-id"));

        let l = s3("s3+https://ak:sk@example.com/s3/prefix/glance/obj");
        assert!(l.is_https());
        assert_eq!(l.host(), "example.com/s3/prefix");
        assert_eq!(l.endpoint(), "https://example.com/s3/prefix");
        assert_eq!((l.bucket(), l.key()), ("glance", "obj"));

        assert!(!s3("s3+http://h/b/k").is_https());
        assert_eq!(
            s3("s3+https://ak:sk@rgw.example.com:8443/g/o").host(),
            "rgw.example.com:8443"
        );
        assert_eq!(
            s3("s3://ak:sk@[fd00::10]:9000/g/o").host(),
            "[fd00::10]:9000"
        );

        // AWS secrets may hold `/`, `+` and `=`, written verbatim.
        let l = s3("s3://AKIA:wJal/K7MD+bPxR=@s3.amazonaws.com/glance/x");
        assert_eq!(creds(l.credentials()), Some(("AKIA", "wJal/K7MD+bPxR=")));
        assert_eq!(
            (l.host(), l.bucket(), l.key()),
            ("s3.amazonaws.com", "glance", "x")
        );
        // A doubled slash in a secret is kept (Glance's own parse loses one).
        let l = s3("s3://AK:a//b/@host/glance/x");
        assert_eq!(creds(l.credentials()), Some(("AK", "a//b/")));
        // A secret holding `:` is kept whole.
        assert_eq!(
            creds(s3("s3://AK:x:y@host/b/k").credentials()),
            Some(("AK", "x:y"))
        );
        // Percent signs are not decoded in S3 credentials.
        assert_eq!(
            creds(s3("s3://AK:a%2Fb@host/b/k").credentials()),
            Some(("AK", "a%2Fb"))
        );

        let l = s3("s3://s3.amazonaws.com/bucket/key");
        assert_eq!(l.credentials(), None);
        assert!(!parse("s3://s3.amazonaws.com/bucket/key").has_credentials());
        assert!(parse("s3://a:b@h/b/k").has_credentials());
        // Surrounding slashes are ignored, as in Glance.
        assert_eq!(s3("s3://host/bucket/key/").key(), "key");
        assert_eq!(s3("s3:///host/bucket/key").host(), "host");
    }

    #[test]
    fn s3_new_writes_no_credentials() {
        let made = S3Location::new(true, "s3.example.com:8443", "glance", UUID)
            .unwrap_or_else(|e| panic!("{e}"));
        let uri = format!("s3+https://s3.example.com:8443/glance/{UUID}");
        let location = Location::from(made);
        assert_eq!(location.uri(), uri);
        assert_eq!(parse(&uri), location);
        assert!(!location.has_credentials());
        let plain = S3Location::new(false, "/host/prefix/", "b", "k").map(Location::from);
        assert_eq!(
            plain.map(|l| l.uri()).ok().as_deref(),
            Some("s3://host/prefix/b/k")
        );
        for (host, bucket, key) in [
            ("", "b", "k"),
            ("https://host", "b", "k"),
            ("a:b@host", "b", "k"),
            ("host", "", "k"),
            ("host", "b/c", "k"),
            ("host", "b", "k/l"),
            ("host", "b", "k?x"),
            ("host", "b", "k@x"),
            ("[::1", "b", "k"),
        ] {
            assert!(
                S3Location::new(false, host, bucket, key).is_err(),
                "{host} {bucket} {key}"
            );
        }
    }

    #[test]
    fn swift_forms() {
        let l = swift("swift://user:pass@authurl.com/container/obj-id");
        assert_eq!(l.scheme(), "swift");
        assert_eq!(l.is_https(), Some(true));
        assert_eq!(creds(l.credentials()), Some(("user", "pass")));
        assert_eq!(l.auth_address(), "authurl.com");
        assert_eq!(l.auth_url().as_deref(), Some("https://authurl.com"));
        assert_eq!((l.container(), l.object()), ("container", "obj-id"));
        assert_eq!(l.config_ref(), None);

        let l = swift("swift://account:user:pass@authurl.com/container/obj-id");
        assert_eq!(creds(l.credentials()), Some(("account:user", "pass")));
        // Glance percent-encodes the user and key it writes.
        let l = swift("swift+https://tenant%3Auser1:key@localhost:8080/glance/x");
        assert_eq!(creds(l.credentials()), Some(("tenant:user1", "key")));
        assert_eq!(l.auth_address(), "localhost:8080");
        let l = swift("swift+https://u:k%2Bey%3D%40%3A@[::1]:8080/v1/c/o");
        assert_eq!(creds(l.credentials()), Some(("u", "k+ey=@:")));
        assert_eq!(l.auth_address(), "[::1]:8080/v1");
        assert_eq!(l.auth_url().as_deref(), Some("https://[::1]:8080/v1"));

        let l = swift("swift+http://user:pass@authurl.com/container/obj-id");
        assert_eq!(l.is_https(), Some(false));
        assert_eq!(l.auth_url().as_deref(), Some("http://authurl.com"));

        let l = swift("swift://user:key@auth.example.com/v3/glance/x");
        assert_eq!(l.auth_address(), "auth.example.com/v3");
        assert_eq!((l.container(), l.object()), ("glance", "x"));

        // Multi-tenant: a storage URL, no credentials.
        let l = swift("swift+https://some_endpoint/v1/AUTH_abc/glance_x/x");
        assert_eq!(l.credentials(), None);
        assert_eq!(l.auth_address(), "some_endpoint/v1/AUTH_abc");
        assert_eq!((l.container(), l.object()), ("glance_x", "x"));

        let l = swift(&format!("swift+config://ref1/glance/{UUID}"));
        assert_eq!(l.scheme(), "swift+config");
        assert_eq!(l.config_ref(), Some("ref1"));
        assert_eq!(l.credentials(), None);
        assert_eq!(l.is_https(), None);
        assert_eq!(l.auth_url(), None);
        assert_eq!(l.auth_address(), "");
        assert_eq!((l.container(), l.object()), ("glance", UUID));
        assert!(!parse(&format!("swift+config://ref1/glance/{UUID}")).has_credentials());
        assert_eq!(
            swift("swift+config://ref1/extra/c/o").auth_address(),
            "extra"
        );

        assert!(parse("swift://u:k@h/c/o").has_credentials());
        assert!(!parse("swift://h/c/o").has_credentials());
    }

    #[test]
    fn swift_constructors() {
        let made = SwiftLocation::new(true, "swift.example.com:8080/v1/AUTH_x/", "glance", UUID)
            .map(Location::from)
            .unwrap_or_else(|e| panic!("{e}"));
        let uri = format!("swift+https://swift.example.com:8080/v1/AUTH_x/glance/{UUID}");
        assert_eq!(made.uri(), uri);
        assert_eq!(parse(&uri), made);
        assert!(!made.has_credentials());
        let made = SwiftLocation::new(false, "h", "c", "o").map(Location::from);
        assert_eq!(
            made.map(|l| l.uri()).ok().as_deref(),
            Some("swift+http://h/c/o")
        );

        let made = SwiftLocation::with_config_ref("ref1", "glance", UUID)
            .map(Location::from)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(made.uri(), format!("swift+config://ref1/glance/{UUID}"));
        assert_eq!(parse(&made.uri()), made);

        assert!(SwiftLocation::new(true, "", "c", "o").is_err());
        assert!(SwiftLocation::new(true, "https://h", "c", "o").is_err());
        assert!(SwiftLocation::new(true, "u:k@h", "c", "o").is_err());
        assert!(SwiftLocation::new(true, "h", "c/d", "o").is_err());
        assert!(SwiftLocation::with_config_ref("", "c", "o").is_err());
        assert!(SwiftLocation::with_config_ref("r/s", "c", "o").is_err());
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

    #[test]
    fn http_forms() {
        let l = http("http://netloc/path/to/file.tar.gz");
        assert_eq!(l.scheme(), "http");
        assert!(!l.is_https());
        assert_eq!(l.credentials(), None);
        assert_eq!(l.host(), "netloc");
        assert_eq!(l.path_and_query(), "/path/to/file.tar.gz");
        assert_eq!(l.url(), "http://netloc/path/to/file.tar.gz");

        let l = http("https://user:pass@example.com:80/images/some-id");
        assert!(l.is_https());
        assert_eq!(creds(l.credentials()), Some(("user", "pass")));
        assert_eq!(l.host(), "example.com:80");
        assert_eq!(l.url(), "https://example.com:80/images/some-id");

        let l = http("https://us%65r:p%40ss@example.com/a@b?x=http://y#frag");
        assert_eq!(creds(l.credentials()), Some(("user", "p@ss")));
        assert_eq!(l.path_and_query(), "/a@b?x=http://y");
        assert_eq!(l.url(), "https://example.com/a@b?x=http://y");

        assert_eq!(
            http("http://[1080::8:800:200C:417A]:80/ubuntu.iso").host(),
            "[1080::8:800:200C:417A]:80"
        );
        assert_eq!(
            http("http://netloc/p?query=text").path_and_query(),
            "/p?query=text"
        );
        assert_eq!(http("http://example.com").url(), "http://example.com");
        assert_eq!(http("http://example.com?q").url(), "http://example.com?q");
        // A `@` in the path is no credential.
        assert!(!parse("http://example.com/a@b").has_credentials());
        assert!(parse("http://u:p@example.com/").has_credentials());
    }

    #[test]
    fn cinder_and_other_forms() {
        let l = parse(&format!("cinder://{UUID}"));
        let Location::Cinder(c) = &l else {
            panic!("{l:?}")
        };
        assert_eq!((c.store(), c.volume_id()), (None, UUID));
        assert_eq!(l.scheme(), "cinder");
        let l = parse(&format!("cinder://cinder1/{UUID}"));
        let Location::Cinder(c) = &l else {
            panic!("{l:?}")
        };
        assert_eq!((c.store(), c.volume_id()), (Some("cinder1"), UUID));
        let made = CinderLocation::new(Some("cinder1"), UUID).map(Location::from);
        assert_eq!(made.ok(), Some(l));
        assert!(CinderLocation::new(None, "volume-1").is_err());
        assert!(CinderLocation::new(Some("a/b"), UUID).is_err());

        let uri = "vsphere://127.0.0.1/folder/openstack_glance/x?dcPath=dc1&dsName=ds1";
        let l = parse(uri);
        assert_eq!(
            l,
            Location::Other {
                scheme: "vsphere".to_owned(),
                uri: uri.to_owned()
            }
        );
        assert_eq!(l.scheme(), "vsphere");
        assert!(!l.has_credentials());
        // A scheme Glance does not know is kept too, lower-cased in `scheme()` only.
        let l = parse("Sheepdog://img");
        assert_eq!(l.scheme(), "sheepdog");
        assert_eq!(l.uri(), "Sheepdog://img");
    }

    #[test]
    fn scheme_case_follows_glance() {
        // Glance's stores check the prefix case-sensitively: upper-case schemes never parse.
        for uri in [
            "FILE:///var/lib/glance/images/1",
            "File:///x",
            "S3://ak:sk@host/b/k",
            "s3+HTTPS://host/b/k",
            "SWIFT://u:k@h/c/o",
            "Swift+Config://ref/c/o",
            "RBD://image",
            "HTTP://example.com/x",
            "Https://example.com/x",
            "CINDER://2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2",
            "VSPHERE://h/p?dsName=d",
        ] {
            refused(uri);
        }
        let other = parse("Gridfs://x");
        assert_eq!(other.scheme(), "gridfs");
    }

    #[test]
    fn malformed_uris_are_refused() {
        for uri in [
            "",
            " ",
            "no-scheme",
            "/var/lib/glance/images/1",
            "://x",
            "1s3://h/b/k",
            "s3:h/b/k",
            "file:/var/lib/x",
            "file://",
            "file://relative",
            "file://var/lib/x",
            "file:///a\nb",
            "file:///a\tb",
            "s3://",
            "s3://host",
            "s3://host/bucket",
            "s3://ak:sk@host/bucket",
            "s3://ak@host/b/k",
            "s3://@host/b/k",
            "s3://a:b@c@host/b/k",
            "s3://host/b/k@x",
            "s3://ak:sk@https://host/b/k",
            "s3://host/b//k",
            "s3://host//k",
            "s3://host/b/k?x=1",
            "s3://host/b/k#f",
            "s3://[::1/b/k",
            "s3://ho]st/b/k",
            "swift://bad_creds@uri/cont/obj",
            "swift://user:key@uri/cont",
            "swift://user:pass@http://authurl.com/v1/container/obj",
            "swift://a:b@c:d@host/c/o",
            "swift://u:k@/c/o",
            "swift:///c/o",
            "swift://host",
            "swift://host/c/",
            "swift://host//o",
            "swift://host/c/o?x",
            "swift+config:///glance/obj",
            "swift+config://ref/obj",
            "swift+config://u:k@ref/c/o",
            "rbd://",
            "rbd://a/b",
            "rbd://a/b/c",
            "rbd://a/b/c/d/e",
            "rbd://a//c/d",
            "rbd://image/",
            "rbd:///image",
            "http://",
            "http:///path",
            "http://user@host/x",
            "http://a:b:c@host/x",
            "http://a@b@host/x",
            "http://:80/x",
            "http://127.0.0.1:~/ubuntu.iso",
            "http://openstack.com:some_text/ubuntu.iso",
            "http://[1080::8:800:200C:417A]:some_text/ubuntu.iso",
            "http://[1080::8:800:200C:417A/ubuntu.iso",
            "http://[example.com]/x",
            "http://a:1:2/x",
            "cinder://",
            "cinder://volume-1",
            "cinder://2EA4B25C-0F44-4B6A-9A6B-51A3B0A0BFC2",
            "cinder://2ea4b25c0f444b6a9a6b51a3b0a0bfc2",
            "vsphere://",
            "ftp://",
        ] {
            refused(uri);
        }
    }

    /// Every location with credentials, with the strings that must never be shown.
    fn secret_forms() -> Vec<(&'static str, Vec<&'static str>)> {
        vec![
            (
                "s3://accesskey:secretkey@s3.amazonaws.com/bucket/key-id",
                vec!["accesskey", "secretkey"],
            ),
            (
                "s3+https://AKIA:wJal/K7MD+bPxR=@s3.amazonaws.com/glance/x",
                vec!["AKIA", "wJal", "K7MD", "bPxR="],
            ),
            ("s3://AK:a//b/@host/glance/x", vec!["AK:", "a//b"]),
            ("s3://AK:x:y@host/b/k", vec!["AK", "x:y"]),
            (
                "swift://account:user:pass@authurl.com/container/obj-id",
                vec!["account", "user", "pass"],
            ),
            (
                "swift+https://tenant%3Auser1:s3cr3t@localhost:8080/glance/x",
                vec!["tenant", "user1", "s3cr3t"],
            ),
            (
                "swift+https://u:k%2Bey%3D%40%3A@[::1]:8080/v1/c/o",
                vec!["u:", "k%2Bey", "k+ey"],
            ),
            (
                "https://user:hunter2@example.com:80/images/some-id",
                vec!["user", "hunter2"],
            ),
            (
                "https://us%65r:p%40ss@example.com/a@b?x=http://y#frag",
                vec!["us%65r", "p%40ss", "p@ss"],
            ),
            ("foo://name:sec/ret@host/x", vec!["name", "sec/ret"]),
        ]
    }

    #[test]
    fn display_and_debug_never_show_credentials() {
        for (uri, secrets) in secret_forms() {
            let l = parse(uri);
            assert!(l.has_credentials(), "{uri}");
            let shown = [l.to_string(), format!("{l:?}"), format!("{l:#?}")];
            for text in &shown {
                for secret in &secrets {
                    assert!(!text.contains(secret), "{secret:?} shown in {text:?}");
                }
            }
            assert!(shown[0].contains("***"), "{}", shown[0]);
        }
        assert_eq!(
            parse("s3://accesskey:secretkey@s3.amazonaws.com/bucket/key-id").to_string(),
            "s3://***:***@s3.amazonaws.com/bucket/key-id"
        );
        assert_eq!(
            parse("swift://account:user:pass@authurl.com/c/o").to_string(),
            "swift://***:***@authurl.com/c/o"
        );
        assert_eq!(
            parse("https://u:p@example.com/a@b").to_string(),
            "https://***:***@example.com/a@b"
        );
        assert_eq!(parse("foo://a:b@host/x").to_string(), "foo://***@host/x");
        assert_eq!(
            format!("{:?}", Credentials::new("user", "secret")),
            "Credentials(***)"
        );
    }

    #[test]
    fn display_without_credentials_is_the_uri() {
        for uri in glance_forms() {
            let l = parse(&uri);
            if !l.has_credentials() {
                assert_eq!(l.to_string(), uri);
            }
        }
        let debug = format!("{:?}", parse("rbd://fsid/pool/image/snap"));
        assert!(debug.contains("image") && debug.contains("pool"), "{debug}");
    }

    #[test]
    fn errors_mask_credentials() {
        for (uri, secret) in [
            ("s3://AK:SECRETKEY@host/bucket", "SECRETKEY"),
            ("s3://AK:SECRET/KEY@https://host/b/k", "SECRET"),
            ("swift://acct:us:SECRETKEY@host/c", "SECRETKEY"),
            ("swift://a:SECRETKEY@b:c@host/c/o", "SECRETKEY"),
            ("http://user:SECRET:KEY@host/x", "SECRET"),
            ("user:SECRETKEY@host", "SECRETKEY"),
            ("S3://AK:SECRETKEY@host/b/k", "SECRETKEY"),
        ] {
            match Location::parse(uri) {
                Err(e @ StoreError::InvalidLocation(_)) => {
                    let text = e.to_string();
                    assert!(!text.contains(secret), "{text}");
                    assert!(text.contains("***"), "{text}");
                }
                other => panic!("{uri} should be refused: {other:?}"),
            }
        }
        match Location::parse("file:///a\nb") {
            Err(StoreError::InvalidLocation(shown)) => assert!(!shown.contains('\n')),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn equality_and_hash_follow_the_text() {
        use std::collections::HashSet;
        let set: HashSet<Location> = glance_forms().iter().map(|u| parse(u)).collect();
        assert_eq!(set.len(), glance_forms().len());
        assert!(set.contains(&parse("rbd://fsid/pool/image/snap")));
        // The same fields written differently are different rows.
        assert_ne!(parse("rbd://f/p/a-b/s"), parse("rbd://f/p/a%2Db/s"));
    }

    #[test]
    fn percent_coding_matches_python() {
        assert_eq!(
            percent_encode("a b/c@d:e+f=g~h_i.j-k"),
            "a%20b%2Fc%40d%3Ae%2Bf%3Dg~h_i.j-k"
        );
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_decode("%C3%A9%2f%2F"), "é//");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
        assert_eq!(percent_decode("a+b"), "a+b");
    }
}
