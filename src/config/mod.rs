//! Configuration: built-in defaults, then a glance-api.conf-style INI file (`--config`), then
//! `GLINT__<SECTION>__<OPTION>` environment variables. One struct per concern; every option's
//! name, default and meaning are listed in `config/glint.conf.sample`.

pub mod cache;
pub mod database;
pub mod datapath;
mod healthcheck;
pub mod import;
pub mod ini;
pub mod inspection;
pub mod keystone;
pub mod limits;
mod logging;
mod metrics;
pub mod notifications;
pub mod paste;
pub mod policy;
pub mod protections;
#[cfg(feature = "rbd")]
mod rbd;
mod s3;
pub mod server;
mod staging;
pub mod stores;
mod swift;
mod vmware;

use std::path::{Path, PathBuf};

use crate::domain::schema::Formats;
use ini::Ini;

pub use cache::CacheConfig;
pub use database::DatabaseConfig;
pub use datapath::DataPathConfig;
pub use healthcheck::{HealthBackend, HealthcheckConfig};
pub use import::{ImportConfig, UrlFilterConfig};
pub use inspection::InspectionConfig;
pub use limits::LimitsConfig;
pub use logging::LoggingConfig;
pub use metrics::MetricsConfig;
pub use notifications::NotificationsConfig;
pub use paste::AuthFlavor;
pub use policy::PolicyConfig;
pub use server::ServerConfig;
pub use stores::StoresConfig;

/// Sections Glint reads options from; options in them it does not know are logged.
const KNOWN_SECTIONS: [&str; 18] = [
    "DEFAULT",
    "healthcheck",
    "glance_download_properties",
    "inject_metadata_properties",
    "image_conversion",
    "import_filtering_opts",
    "image_import_opts",
    "task",
    "wsgi",
    "os_glance_staging_store",
    "database",
    "paste_deploy",
    "glance_store",
    "image_format",
    "oslo_policy",
    "oslo_limit",
    "oslo_messaging_notifications",
    "oslo_messaging_rabbit",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}, {source}")]
    Parse {
        path: PathBuf,
        source: ini::ParseError,
    },
    #[error("[{section}] {option}: {message}")]
    Invalid {
        /// A fixed section, or a store's own (`[fast]` for `enabled_backends = fast:rbd`).
        section: String,
        option: &'static str,
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(
        section: &str,
        option: &'static str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            section: section.to_owned(),
            option,
            message: message.into(),
        }
    }
}

/// The whole configuration of a Glint process.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub limits: LimitsConfig,
    pub database: DatabaseConfig,
    pub auth: AuthFlavor,
    /// `[oslo_policy]`.
    pub policy: PolicyConfig,
    /// `use_keystone_limits` and `[oslo_limit]`: `None` when off.
    pub unified_limits: Option<keystone::UnifiedLimitsConfig>,
    pub stores: StoresConfig,
    pub datapath: DataPathConfig,
    /// Interoperable import and tasks.
    pub import: ImportConfig,
    /// `[image_format] disk_formats` and `container_formats`.
    pub formats: Formats,
    /// `[healthcheck]`: what `/healthcheck` looks at besides the database.
    pub healthcheck: HealthcheckConfig,
    /// `[DEFAULT] metrics_enabled`: whether `/metrics` answers.
    pub metrics: MetricsConfig,
    /// `[DEFAULT] use_json`, `debug`: how logs are written.
    pub logging: LoggingConfig,
    /// `[oslo_messaging_notifications]`: `None` when no driver sends notifications.
    pub notifications: Option<NotificationsConfig>,
    /// `[DEFAULT] show_image_direct_url`.
    pub show_image_direct_url: bool,
    /// `[DEFAULT] show_multiple_locations` (deprecated in Glance, accepted for compatibility).
    pub show_multiple_locations: bool,
    /// `[DEFAULT] node_id` (Glint; default `<hostname>:<bind_port>`): names this node in the
    /// upload claims it makes, so that after a restart it resets its own interrupted uploads.
    /// Must differ between nodes sharing a database.
    pub node_id: String,
    /// `[DEFAULT] property_protection_file` and `property_protection_rule_format`.
    pub protections: protections::ProtectionsConfig,
    /// The image cache (`image_cache_dir` …).
    pub cache: CacheConfig,
    /// Options present in the file or environment that Glint does not use, for one warning each.
    pub ignored: Vec<(String, String)>,
}

impl Config {
    /// Loads the configuration: `path` (if any) plus the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?,
            None => String::new(),
        };
        let mut ini = Ini::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.map(Path::to_owned).unwrap_or_default(),
            source,
        })?;
        ini.apply_env(std::env::vars());
        let data_dir = std::env::var_os("GLINT_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("glint-data"));
        let mut config = Config::from_ini(&ini, &data_dir)?;
        let config_dir = path.map(|p| match p.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        });
        config.policy.locate(config_dir)?;
        Ok(config)
    }

    /// Builds the typed configuration from parsed options; `data_dir` anchors the embedded
    /// defaults (SQLite file, image directory).
    pub fn from_ini(ini: &Ini, data_dir: &Path) -> Result<Config, ConfigError> {
        let server = ServerConfig::from_ini(ini)?;
        let node_id = match ini.get("DEFAULT", "node_id").map(str::trim) {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => format!("{}:{}", hostname(), server.bind_port),
        };
        if node_id.len() > 200 || node_id.contains('/') {
            return Err(ConfigError::invalid(
                "DEFAULT",
                "node_id",
                "at most 200 characters, without '/'",
            ));
        }
        let import = ImportConfig::from_ini(ini, data_dir)?;
        let datapath = DataPathConfig {
            stage_compressed: import.plugin_enabled("image_decompression"),
            ..DataPathConfig::from_ini(ini)?
        };
        let config = Config {
            node_id,
            server,
            limits: LimitsConfig::from_ini(ini)?,
            database: DatabaseConfig::from_ini(ini, data_dir)?,
            auth: AuthFlavor::from_ini(ini)?,
            policy: PolicyConfig::from_ini(ini)?,
            unified_limits: keystone::UnifiedLimitsConfig::from_ini(ini)?,
            stores: StoresConfig::from_ini(ini, data_dir)?,
            datapath,
            import,
            formats: formats_from_ini(ini),
            healthcheck: HealthcheckConfig::from_ini(ini)?,
            metrics: MetricsConfig::from_ini(ini)?,
            logging: LoggingConfig::from_ini(ini)?,
            notifications: NotificationsConfig::from_ini(ini)?,
            show_image_direct_url: parse_bool(ini, "DEFAULT", "show_image_direct_url", false)?,
            show_multiple_locations: parse_bool(ini, "DEFAULT", "show_multiple_locations", false)?,
            protections: protections::ProtectionsConfig::from_ini(ini)?,
            cache: CacheConfig::from_ini(ini)?,
            ignored: Vec::new(),
        };
        Ok(Config {
            ignored: ini.unused(),
            ..config
        })
    }

    /// Ignored options worth a warning: unknown ones in sections Glint reads, and one entry
    /// per section Glint does not read yet.
    pub fn ignored_report(&self) -> Vec<String> {
        let mut report = Vec::new();
        let mut other_sections: Vec<&str> = Vec::new();
        for (section, option) in &self.ignored {
            let known = KNOWN_SECTIONS.contains(&section.as_str())
                || self.stores.sections().any(|s| s == section);
            if known {
                report.push(format!("[{section}] {option}"));
            } else if !other_sections.contains(&section.as_str()) {
                other_sections.push(section);
            }
        }
        report.extend(
            other_sections
                .iter()
                .map(|s| format!("[{s}] (whole section)")),
        );
        report
    }
}

/// The machine's host name (Linux), or `glint` where it cannot be read.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().replace('/', "_"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "glint".to_owned())
}

fn formats_from_ini(ini: &Ini) -> Formats {
    let defaults = Formats::default();
    Formats {
        disk_formats: parse_list(ini, "image_format", "disk_formats")
            .unwrap_or(defaults.disk_formats),
        container_formats: parse_list(ini, "image_format", "container_formats")
            .unwrap_or(defaults.container_formats),
    }
}

/// A string option, trimmed, if set and not blank.
pub(crate) fn parse_text(ini: &Ini, section: &str, option: &str) -> Option<String> {
    ini.get(section, option)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// An oslo.config list option (comma-separated, blanks dropped), if set.
pub(crate) fn parse_list(ini: &Ini, section: &str, option: &str) -> Option<Vec<String>> {
    ini.get(section, option).map(|value| {
        value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// oslo.config boolean spellings.
pub(crate) fn parse_bool(
    ini: &Ini,
    section: &str,
    option: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match ini
        .get(section, option)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError::invalid(
            section,
            option,
            format!("{other:?} is not a boolean"),
        )),
    }
}

/// An integer option with bounds.
pub(crate) fn parse_int(
    ini: &Ini,
    section: &str,
    option: &'static str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    let Some(raw) = ini.get(section, option).filter(|v| !v.is_empty()) else {
        return Ok(default);
    };
    let value: i64 = raw
        .parse()
        .map_err(|_| ConfigError::invalid(section, option, format!("{raw:?} is not an integer")))?;
    if value < min || value > max {
        return Err(ConfigError::invalid(
            section,
            option,
            format!("{value} is outside {min}..={max}"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_configuration_gives_embedded_defaults() {
        let config = Config::from_ini(&Ini::default(), Path::new("/data")).expect("defaults load");
        assert_eq!(config.server.bind_port, 9292);
        assert_eq!(config.server.bind_host, "127.0.0.1");
        assert_eq!(config.limits.api_limit_max, 1000);
        assert_eq!(config.limits.limit_param_default, 25);
        assert_eq!(config.auth, AuthFlavor::Unauthenticated);
        assert_eq!(
            config.database.url,
            database::DatabaseUrl::Sqlite(PathBuf::from("/data/glint.db"))
        );
        assert!(config.ignored.is_empty());
    }

    #[test]
    fn unknown_options_are_reported_not_fatal() {
        let ini = Ini::parse("[DEFAULT]\nbind_port = 1\nfrobnicate = yes\n[oslo_policy]\npolicy_file = p.yaml\nbogus = 1\n[keystone_authtoken]\nauth_url = x\n")
            .expect("parses");
        let config = Config::from_ini(&ini, Path::new("/data")).expect("loads");
        assert_eq!(
            config.ignored_report(),
            [
                "[DEFAULT] frobnicate",
                "[oslo_policy] bogus",
                "[keystone_authtoken] (whole section)",
            ]
        );
    }

    #[test]
    fn invalid_values_name_section_and_option() {
        let ini = Ini::parse("[DEFAULT]\nbind_port = ninety\n").expect("parses");
        let err = Config::from_ini(&ini, Path::new("/d"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "[DEFAULT] bind_port: \"ninety\" is not an integer");
        let ini = Ini::parse("[DEFAULT]\nshow_image_direct_url = maybe\n").expect("parses");
        assert!(Config::from_ini(&ini, Path::new("/d")).is_err());
    }

    #[test]
    fn image_formats_are_configurable() {
        let ini = Ini::parse("[image_format]\ndisk_formats = raw, qcow2\n").expect("parses");
        let config = Config::from_ini(&ini, Path::new("/d")).expect("loads");
        assert_eq!(config.formats.disk_formats, ["raw", "qcow2"]);
        assert_eq!(
            config.formats.container_formats,
            Formats::default().container_formats
        );
    }
}
