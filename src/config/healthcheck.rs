//! `[healthcheck]`: oslo.middleware's health check as Glance deploys it. Glance's paste file
//! sets `backends = disable_by_file` and `disable_by_file_path =
//! /etc/glance/healthcheck_disable`, so those are the defaults here: an operator who drains a
//! node by touching that file gets the same 503 from Glint. The options are oslo.middleware's
//! (`backends`, `detailed`, `disable_by_file_path`, `disable_by_file_paths`,
//! `enable_by_file_paths`, `allowed_source_ranges`, `ignore_proxied_requests`).

use std::net::IpAddr;
use std::path::PathBuf;

use super::ini::Ini;
use super::{parse_bool, parse_list, ConfigError};

const SECTION: &str = "healthcheck";

/// Where Glance's paste file points `disable_by_file`.
const GLANCE_DISABLE_FILE: &str = "/etc/glance/healthcheck_disable";

/// One of oslo.middleware's health check backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthBackend {
    /// `disable_by_file`: unavailable while `disable_by_file_path` exists.
    DisableByFile(Option<PathBuf>),
    /// `disable_by_files_ports`: unavailable while the file given for this node's port
    /// (`disable_by_file_paths = port:path, ...`) exists.
    DisableByFilesPorts(Vec<(u16, PathBuf)>),
    /// `enable_by_files_ports`: unavailable while any of `enable_by_file_paths` is missing.
    EnableByFiles(Vec<PathBuf>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckConfig {
    pub backends: Vec<HealthBackend>,
    /// `detailed` (false): the JSON answer names each backend and what it found.
    pub detailed: bool,
    /// `allowed_source_ranges`: when set, a request from any other address is not answered
    /// by the health check but passed on, as to any unknown path.
    pub allowed_source_ranges: Vec<SourceRange>,
    /// `ignore_proxied_requests`: a request carrying a proxy's `X-Forwarded*` header is
    /// passed on the same way (the check is for the balancer, not for clients behind it).
    pub ignore_proxied_requests: bool,
}

/// One network of `allowed_source_ranges`, as Python's `ipaddress.ip_network` reads it
/// (an address alone is a single host; host bits set are an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceRange {
    network: IpAddr,
    prefix: u8,
}

impl SourceRange {
    pub fn parse(text: &str) -> Result<SourceRange, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} does not appear to be an IPv4 or IPv6 network"))?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{text:?} has an invalid prefix length"))?,
        };
        let range = SourceRange { network, prefix };
        if range.masked(network) != Some(bits_of(network)) {
            return Err(format!("{text:?} has host bits set"));
        }
        Ok(range)
    }

    /// Whether `address` lies in this network (never across IP versions, as oslo compares).
    pub fn contains(&self, address: IpAddr) -> bool {
        self.masked(address) == Some(bits_of(self.network))
    }

    /// `address` with its host bits cleared, when it is of this network's version.
    fn masked(&self, address: IpAddr) -> Option<u128> {
        let width = if address.is_ipv4() { 32 } else { 128 };
        if address.is_ipv4() != self.network.is_ipv4() {
            return None;
        }
        let host_bits = u32::from(width - self.prefix);
        let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
        Some(bits_of(address) & mask)
    }
}

fn bits_of(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl Default for HealthcheckConfig {
    fn default() -> HealthcheckConfig {
        HealthcheckConfig {
            backends: vec![HealthBackend::DisableByFile(Some(PathBuf::from(
                GLANCE_DISABLE_FILE,
            )))],
            detailed: false,
            allowed_source_ranges: Vec::new(),
            ignore_proxied_requests: false,
        }
    }
}

impl HealthcheckConfig {
    pub fn from_ini(ini: &Ini) -> Result<HealthcheckConfig, ConfigError> {
        let names = parse_list(ini, SECTION, "backends")
            .unwrap_or_else(|| vec!["disable_by_file".to_owned()]);
        let mut backends = Vec::new();
        for name in names {
            backends.push(match name.as_str() {
                "disable_by_file" => {
                    HealthBackend::DisableByFile(match ini.get(SECTION, "disable_by_file_path") {
                        Some(path) if path.trim().is_empty() => None,
                        Some(path) => Some(PathBuf::from(path.trim())),
                        None => Some(PathBuf::from(GLANCE_DISABLE_FILE)),
                    })
                }
                "disable_by_files_ports" => {
                    let mut files = Vec::new();
                    for item in
                        parse_list(ini, SECTION, "disable_by_file_paths").unwrap_or_default()
                    {
                        let parsed = item
                            .split_once(':')
                            .and_then(|(port, path)| Some((port.trim().parse().ok()?, path)));
                        let Some((port, path)) = parsed else {
                            return Err(ConfigError::invalid(
                                SECTION,
                                "disable_by_file_paths",
                                format!("{item:?} is not of the form port:path"),
                            ));
                        };
                        files.push((port, PathBuf::from(path.trim())));
                    }
                    HealthBackend::DisableByFilesPorts(files)
                }
                "enable_by_files_ports" => HealthBackend::EnableByFiles(
                    parse_list(ini, SECTION, "enable_by_file_paths")
                        .unwrap_or_default()
                        .into_iter()
                        .map(PathBuf::from)
                        .collect(),
                ),
                other => {
                    return Err(ConfigError::invalid(
                        SECTION,
                        "backends",
                        format!(
                            "unknown health check backend {other:?} (disable_by_file, \
                             disable_by_files_ports, enable_by_files_ports)"
                        ),
                    ))
                }
            });
        }
        let mut allowed_source_ranges = Vec::new();
        for item in parse_list(ini, SECTION, "allowed_source_ranges").unwrap_or_default() {
            allowed_source_ranges.push(
                SourceRange::parse(item.trim())
                    .map_err(|why| ConfigError::invalid(SECTION, "allowed_source_ranges", why))?,
            );
        }
        Ok(HealthcheckConfig {
            backends,
            detailed: parse_bool(ini, SECTION, "detailed", false)?,
            allowed_source_ranges,
            ignore_proxied_requests: parse_bool(ini, SECTION, "ignore_proxied_requests", false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HealthcheckConfig, ConfigError> {
        HealthcheckConfig::from_ini(&Ini::parse(text).expect("ini"))
    }

    #[test]
    fn glances_paste_settings_are_the_defaults() {
        assert_eq!(parse("").expect("config"), HealthcheckConfig::default());
    }

    #[test]
    fn every_oslo_backend_is_read() {
        let config = parse(
            "[healthcheck]\nbackends = disable_by_file, disable_by_files_ports, enable_by_files_ports\n\
             disable_by_file_path = /run/glint/off\ndisable_by_file_paths = 9292:/run/a, 9393:/run/b\n\
             enable_by_file_paths = /run/ready\ndetailed = true\n",
        )
        .expect("config");
        assert!(config.detailed);
        assert_eq!(
            config.backends,
            [
                HealthBackend::DisableByFile(Some("/run/glint/off".into())),
                HealthBackend::DisableByFilesPorts(vec![
                    (9292, "/run/a".into()),
                    (9393, "/run/b".into())
                ]),
                HealthBackend::EnableByFiles(vec!["/run/ready".into()]),
            ]
        );
        assert!(parse("[healthcheck]\nbackends =\n")
            .expect("config")
            .backends
            .is_empty());
    }

    #[test]
    fn unknown_backends_and_bad_port_paths_are_refused() {
        assert!(parse("[healthcheck]\nbackends = disable_by_moon\n").is_err());
        assert!(parse(
            "[healthcheck]\nbackends = disable_by_files_ports\ndisable_by_file_paths = /run/a\n"
        )
        .is_err());
    }

    #[test]
    fn source_ranges_read_as_pythons_ip_network() {
        let range = |text| SourceRange::parse(text);
        let lan = range("10.0.0.0/8").expect("range");
        assert!(lan.contains("10.200.3.4".parse().expect("ip")));
        assert!(!lan.contains("11.0.0.1".parse().expect("ip")));
        assert!(!lan.contains("::ffff:10.0.0.1".parse().expect("ip")));
        let host = range("192.0.2.7").expect("a single host");
        assert!(host.contains("192.0.2.7".parse().expect("ip")));
        assert!(!host.contains("192.0.2.8".parse().expect("ip")));
        assert!(range("0.0.0.0/0")
            .expect("all")
            .contains("203.0.113.9".parse().expect("ip")));
        let v6 = range("fd00::/8").expect("v6");
        assert!(v6.contains("fd12::1".parse().expect("ip")));
        assert!(!v6.contains("10.0.0.1".parse().expect("ip")));
        assert!(range("::/0")
            .expect("all v6")
            .contains("::1".parse().expect("ip")));
        assert!(range("10.0.0.1/8").unwrap_err().contains("host bits set"));
        assert!(range("10.0.0.0/33").unwrap_err().contains("prefix length"));
        assert!(range("ten").unwrap_err().contains("does not appear"));
        let config = parse(
            "[healthcheck]\nallowed_source_ranges = 10.0.0.0/8, ::1\nignore_proxied_requests = true\n",
        )
        .expect("config");
        assert_eq!(config.allowed_source_ranges.len(), 2);
        assert!(config.ignore_proxied_requests);
        assert!(parse("[healthcheck]\nallowed_source_ranges = 10.0.0.0/40\n").is_err());
    }
}
