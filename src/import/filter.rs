//! Which URLs web-download may fetch (`[import_filtering_opts]`), checked on the URL a client
//! gives and again on every redirect, and which addresses a connection may reach.
//!
//! Glance's rules, with its gaps closed: host names are compared in one canonical form (IPv6
//! compressed, IPv4-mapped IPv6 as IPv4, no trailing dot), numeric hosts in any form other
//! than a dotted quad (`127.1`, `2130706433`, `0x7f.1`, `0177.0.0.1`, `0`) are refused rather
//! than left to the resolver's reading of them, the port checked is the one the connection
//! uses (the scheme's own when the URL gives none), and addresses a host name resolves to are
//! refused when they are loopback, private, link-local (cloud metadata among them), shared,
//! multicast or otherwise not public — unless the operator lists the host in `allowed_hosts`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use axum::http::Uri;

use crate::config::UrlFilterConfig;

/// A URL that passed the filter, with what a connection to it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedUrl {
    pub uri: Uri,
    pub scheme: String,
    /// Canonical form (see `canonical_host`).
    pub host: Host,
    pub port: u16,
    /// The operator listed the host in `allowed_hosts`: any address it resolves to is fine.
    pub host_allowed: bool,
}

/// A host as the filter compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// Why a URL is refused (for logs and the task's message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not a URL")]
    Malformed,
    #[error("scheme {0:?} is not allowed")]
    Scheme(String),
    #[error("host {0} is not allowed")]
    Host(String),
    #[error("host {0} is a numeric address in a form other than a dotted quad")]
    AmbiguousHost(String),
    #[error("port {0} is not allowed")]
    Port(u16),
    #[error("address {0} is not public")]
    Address(IpAddr),
}

#[derive(Debug, Clone)]
pub struct UrlFilter {
    config: UrlFilterConfig,
}

impl UrlFilter {
    pub fn new(config: &UrlFilterConfig) -> UrlFilter {
        UrlFilter {
            config: config.clone(),
        }
    }

    /// Checks a URL before anything connects to it.
    pub fn check(&self, url: &str) -> Result<CheckedUrl, Refused> {
        let url = url.trim();
        let scheme = url
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase())
            .ok_or(Refused::Malformed)?;
        let allowed = |allow: &[String], deny: &[String], value: &str| {
            if allow.is_empty() {
                !deny.iter().any(|d| d == value)
            } else {
                allow.iter().any(|a| a == value)
            }
        };
        if !allowed(
            &self.config.allowed_schemes,
            &self.config.disallowed_schemes,
            &scheme,
        ) {
            return Err(Refused::Scheme(scheme));
        }
        let uri: Uri = url.parse().map_err(|_| Refused::Malformed)?;
        let raw_host = uri.host().ok_or(Refused::Malformed)?;
        let host = canonical_host(raw_host)?;
        let host_text = host.to_string();
        if !allowed(
            &canonical_list(&self.config.allowed_hosts),
            &canonical_list(&self.config.disallowed_hosts),
            &host_text,
        ) {
            return Err(Refused::Host(host_text));
        }
        let port = match uri.port_u16() {
            Some(port) => port,
            None => match scheme.as_str() {
                "https" => 443,
                "http" => 80,
                _ => return Err(Refused::Scheme(scheme)),
            },
        };
        let ports_ok = if self.config.allowed_ports.is_empty() {
            !self.config.disallowed_ports.contains(&port)
        } else {
            self.config.allowed_ports.contains(&port)
        };
        if port == 0 || !ports_ok {
            return Err(Refused::Port(port));
        }
        let host_allowed = canonical_list(&self.config.allowed_hosts).contains(&host_text);
        if let Host::Ip(ip) = host {
            if !host_allowed && !is_public(ip) {
                return Err(Refused::Address(ip));
            }
        }
        Ok(CheckedUrl {
            uri,
            scheme,
            host,
            port,
            host_allowed,
        })
    }
}

/// An operator's host list in canonical form (entries that are not hosts kept as written).
fn canonical_list(hosts: &[String]) -> Vec<String> {
    hosts
        .iter()
        .map(|h| canonical_host(h).map_or_else(|_| h.to_ascii_lowercase(), |h| h.to_string()))
        .collect()
}

/// A host in the one form the filter compares: IP addresses parsed (IPv6 compressed,
/// IPv4-mapped IPv6 as IPv4), names lower-case without a trailing dot. Numeric hosts that are
/// not a dotted quad are refused: resolvers read `127.1` or `2130706433` as 127.0.0.1.
pub fn canonical_host(raw: &str) -> Result<Host, Refused> {
    let host = raw.trim().trim_start_matches('[').trim_end_matches(']');
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host.is_empty() {
        return Err(Refused::Malformed);
    }
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        return Ok(Host::Ip(match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }));
    }
    if let Ok(v4) = host.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(v4)));
    }
    // What inet_aton would take as an address: digits, dots and hex ("0x…") parts only.
    let numeric = host.split('.').all(|part| {
        !part.is_empty()
            && (part.chars().all(|c| c.is_ascii_digit())
                || part
                    .strip_prefix("0x")
                    .is_some_and(|hex| hex.chars().all(|c| c.is_ascii_hexdigit())))
    });
    if numeric {
        return Err(Refused::AmbiguousHost(host));
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    {
        return Err(Refused::Host(host));
    }
    Ok(Host::Name(host))
}

/// Whether `ip` is an address on the public internet: not unspecified, loopback, private,
/// link-local (169.254.169.254, the cloud metadata service, among them), shared (CGNAT),
/// multicast, broadcast, documentation, benchmarking or reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_unspecified()
                || a == 0
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped().or_else(|| v6.to_ipv4()) {
                if !v6.is_loopback() && !v6.is_unspecified() {
                    return is_public(IpAddr::V4(v4));
                }
            }
            let first = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                || first == 0x0064 && v6.segments()[1] == 0xff9b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(config: UrlFilterConfig) -> UrlFilter {
        UrlFilter::new(&config)
    }

    fn default() -> UrlFilter {
        filter(UrlFilterConfig::default())
    }

    #[test]
    fn public_http_and_https_urls_pass() {
        for url in [
            "http://images.example.com/disk.qcow2",
            "https://images.example.com/disk.qcow2",
            "http://93.184.216.34/disk.raw",
            "HTTPS://Images.Example.COM./x",
            "http://user:secret@images.example.com/x",
            "http://[2606:4700::1111]/x",
            "http://images.example.com:80/x",
        ] {
            let checked = default()
                .check(url)
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(!checked.host_allowed);
        }
        let checked = default()
            .check("HTTPS://Images.Example.COM./x")
            .expect("ok");
        assert_eq!(checked.host, Host::Name("images.example.com".into()));
        assert_eq!(checked.port, 443);
    }

    #[test]
    fn every_private_address_form_is_refused() {
        for url in [
            // Loopback, in every spelling a resolver or a socket would take.
            "http://127.0.0.1/x",
            "http://127.1/x",
            "http://127.0.1/x",
            "http://2130706433/x",
            "http://0x7f000001/x",
            "http://0x7f.0.0.1/x",
            "http://0177.0.0.1/x",
            "http://017700000001/x",
            "http://0/x",
            "http://0.0.0.0/x",
            "http://[::1]/x",
            "http://[::]/x",
            "http://[0:0:0:0:0:0:0:1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://[::ffff:7f00:1]/x",
            "http://127.0.0.1./x",
            // Cloud metadata and link-local.
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/x",
            "http://[::ffff:169.254.169.254]/x",
            "http://[fd00:ec2::254]/x",
            // Private networks, shared address space, multicast, reserved.
            "http://10.0.0.1/x",
            "http://172.16.5.4/x",
            "http://192.168.1.1/x",
            "http://100.64.0.1/x",
            "http://224.0.0.1/x",
            "http://255.255.255.255/x",
            "http://240.0.0.1/x",
            "http://[fc00::1]/x",
        ] {
            assert!(default().check(url).is_err(), "{url} passed");
        }
    }

    #[test]
    fn schemes_ports_and_hosts_follow_the_lists() {
        assert_eq!(
            default().check("file:///etc/passwd"),
            Err(Refused::Scheme("file".into()))
        );
        assert_eq!(
            default().check("ftp://images.example.com/x"),
            Err(Refused::Scheme("ftp".into()))
        );
        assert_eq!(
            default().check("http://images.example.com:8080/x"),
            Err(Refused::Port(8080))
        );
        assert_eq!(
            default().check("http://images.example.com:0/x"),
            Err(Refused::Port(0))
        );
        assert_eq!(default().check("not a url"), Err(Refused::Malformed));
        // A non-empty allow list makes the deny list moot, as in Glance.
        let lists = filter(UrlFilterConfig {
            allowed_hosts: vec!["mirror.example.org".into()],
            disallowed_hosts: vec!["mirror.example.org".into()],
            ..UrlFilterConfig::default()
        });
        assert!(lists.check("http://mirror.example.org/x").is_ok());
        assert!(lists.check("http://images.example.com/x").is_err());
        let denied = filter(UrlFilterConfig {
            disallowed_hosts: vec!["Bad.Example.com".into(), "[::ffff:93.184.216.34]".into()],
            ..UrlFilterConfig::default()
        });
        assert!(denied.check("http://bad.example.com./x").is_err());
        assert!(denied.check("http://93.184.216.34/x").is_err());
        assert!(denied.check("http://good.example.com/x").is_ok());
        let ports = filter(UrlFilterConfig {
            allowed_ports: Vec::new(),
            disallowed_ports: vec![22],
            ..UrlFilterConfig::default()
        });
        assert!(ports.check("http://images.example.com:8080/x").is_ok());
        assert!(ports.check("http://images.example.com:22/x").is_err());
    }

    #[test]
    fn an_operator_may_allow_a_private_host_by_name() {
        let lab = filter(UrlFilterConfig {
            allowed_hosts: vec!["127.0.0.1".into(), "localhost".into()],
            allowed_ports: vec![8000],
            ..UrlFilterConfig::default()
        });
        let checked = lab.check("http://127.0.0.1:8000/x").expect("allowed");
        assert!(checked.host_allowed);
        assert!(lab.check("http://[::ffff:127.0.0.1]:8000/x").is_ok());
        assert!(
            lab.check("http://localhost:8000/x")
                .expect("allowed")
                .host_allowed
        );
        // Still only in its canonical spelling.
        assert!(lab.check("http://127.1:8000/x").is_err());
        assert!(lab.check("http://10.0.0.1:8000/x").is_err());
    }

    #[test]
    fn public_addresses_are_told_apart() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "198.18.0.1",
            "192.0.2.1",
            "192.0.0.8",
            "2001:db8::1",
            "64:ff9b::7f00:1",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
    }
}
