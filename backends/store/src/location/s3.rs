//! `s3://`, `s3+http://` and `s3+https://` locations.

use std::fmt;

use super::text::{has_control, invalid, split_container_object, valid_authority, valid_segment};
use super::{Credentials, Scheme};
use crate::error::StoreError;

/// `s3://[KEY:SECRET@]host[:port][/prefix]/bucket/object` (also `s3+http`, `s3+https`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct S3Location {
    scheme: Scheme,
    pub(super) credentials: Option<Credentials>,
    host: String,
    bucket: String,
    key: String,
    pub(super) raw: String,
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

/// As Glance reads it: one `://` only; any `@` splits credentials from the rest (so there
/// may be one only), and the credentials split at their first `:`; slashes around the rest
/// are ignored; the object is the last segment, the bucket the one before, the host (with
/// any port and path prefix) everything before that.
pub(super) fn parse_s3(scheme: Scheme, rest: &str, raw: &str) -> Option<S3Location> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::location::tests::{creds, parse, UUID};
    use crate::location::Location;

    fn s3(uri: &str) -> S3Location {
        match parse(uri) {
            Location::S3(l) => l,
            other => panic!("{uri} is not s3: {other:?}"),
        }
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
}
