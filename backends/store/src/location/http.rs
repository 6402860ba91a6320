//! `http://` and `https://` locations (the read-only http store).

use std::fmt;

use super::text::{percent_decode, sanitize, valid_authority};
use super::{Credentials, Scheme};

/// `http[s]://[user:password@]host[:port][/path][?query]`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HttpLocation {
    scheme: Scheme,
    pub(super) credentials: Option<Credentials>,
    host: String,
    path_and_query: String,
    pub(super) raw: String,
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

/// As Glance reads it: the authority (up to `/`, `?` or `#`) may hold `user:password@`
/// with exactly one `:`; the host must be there and a port, if any, be digits.
pub(super) fn parse_http(scheme: Scheme, rest: &str, raw: &str) -> Option<HttpLocation> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::location::tests::{creds, parse};
    use crate::location::Location;

    fn http(uri: &str) -> HttpLocation {
        match parse(uri) {
            Location::Http(l) => l,
            other => panic!("{uri} is not http: {other:?}"),
        }
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
}
