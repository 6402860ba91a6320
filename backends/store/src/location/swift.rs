//! `swift://`, `swift+http://`, `swift+https://` and `swift+config://` locations.

use std::fmt;

use super::text::{
    has_control, invalid, percent_decode, split_container_object, valid_authority, valid_segment,
};
use super::{Credentials, Scheme};
use crate::error::StoreError;

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
    pub(super) raw: String,
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

/// As Glance reads it: one `://` only; the authority (up to the first `/`) may hold one
/// `@`, before which the credentials are `user:key` split at the last `:`, each part
/// percent-decoded; the object is the last path segment, the container the one before, and
/// the auth address the host followed by any path segments before the container.
pub(super) fn parse_swift(scheme: Scheme, rest: &str, raw: &str) -> Option<SwiftLocation> {
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

pub(super) fn parse_swift_config(rest: &str, raw: &str) -> Option<SwiftLocation> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::location::tests::{creds, parse, UUID};
    use crate::location::Location;

    fn swift(uri: &str) -> SwiftLocation {
        match parse(uri) {
            Location::Swift(l) => l,
            other => panic!("{uri} is not swift: {other:?}"),
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
}
