//! `[healthcheck]`: oslo.middleware's health check as Glance deploys it. Glance's paste file
//! sets `backends = disable_by_file` and `disable_by_file_path =
//! /etc/glance/healthcheck_disable`, so those are the defaults here: an operator who drains a
//! node by touching that file gets the same 503 from Glint. The options are oslo.middleware's
//! (`backends`, `detailed`, `disable_by_file_path`, `disable_by_file_paths`,
//! `enable_by_file_paths`).

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
}

impl Default for HealthcheckConfig {
    fn default() -> HealthcheckConfig {
        HealthcheckConfig {
            backends: vec![HealthBackend::DisableByFile(Some(PathBuf::from(
                GLANCE_DISABLE_FILE,
            )))],
            detailed: false,
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
        Ok(HealthcheckConfig {
            backends,
            detailed: parse_bool(ini, SECTION, "detailed", false)?,
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
}
