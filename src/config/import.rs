//! Options of interoperable import: `[DEFAULT] enabled_import_methods`,
//! `[import_filtering_opts]`, `[image_import_opts]` and its plugins' sections, `[task]`,
//! `[wsgi] task_pool_threads`. Where staged data lives is a store (`StoresConfig::staging`).

use std::time::Duration;

use super::ini::Ini;
use super::{parse_int, ConfigError};

/// The import methods Glance knows, in its order.
pub const IMPORT_METHODS: [&str; 4] = [
    "glance-direct",
    "web-download",
    "copy-image",
    "glance-download",
];

/// The import plugins Glint runs (Glance's names).
pub const IMPORT_PLUGINS: [&str; 4] = [
    "no_op",
    "image_conversion",
    "image_decompression",
    "inject_image_metadata",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportConfig {
    /// `[DEFAULT] enabled_import_methods` (glance-direct, web-download, copy-image).
    pub methods: Vec<String>,
    /// `[import_filtering_opts]`: which URLs web-download may fetch.
    pub filtering: UrlFilterConfig,
    /// `[image_import_opts] image_import_plugins` (none), in the order they run: the data
    /// plugins (`image_decompression`, `image_conversion`) on the staged data in this order;
    /// `inject_image_metadata` when the import starts, wherever it is listed.
    pub plugins: Vec<String>,
    /// `[task] task_time_to_live` (48 hours): how long a finished task stays visible.
    pub task_time_to_live: Duration,
    /// `[wsgi] task_pool_threads` (16): import jobs one node runs at once.
    pub workers: usize,
    /// `[inject_metadata_properties] inject`: properties the `inject_image_metadata` plugin
    /// adds to imported images.
    pub inject: Vec<(String, String)>,
    /// `[inject_metadata_properties] ignore_user_roles` (admin): callers with one of these
    /// roles get no injected properties.
    pub inject_ignore_roles: Vec<String>,
    /// `[image_conversion] output_format` (raw): what `image_conversion` converts to.
    pub conversion_format: String,
    /// `[task] work_dir` (default `<data dir>/work`): where `image_conversion` and
    /// `image_decompression` write their output, and copy their input when staged data is
    /// not a local file already.
    pub work_dir: std::path::PathBuf,
    /// `[glance_download_properties] extra_properties`: the prefixes of the properties
    /// glance-download copies from the remote image.
    pub download_properties: Vec<String>,
    /// `[DEFAULT] do_secure_hash` (true): a registered location's data is read and hashed.
    pub do_secure_hash: bool,
    /// `[DEFAULT] http_retries` (3): reads of a registered location tried before it fails.
    pub http_retries: u32,
    /// `[DEFAULT] web_download_timeout` (Glint, 60 s): a remote that sends nothing for this
    /// long (no answer, or a body that stops) fails its web-download.
    pub remote_timeout: Duration,
}

/// `[import_filtering_opts]`: a non-empty allow list makes its deny list moot (Glance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlFilterConfig {
    pub allowed_schemes: Vec<String>,
    pub disallowed_schemes: Vec<String>,
    pub allowed_hosts: Vec<String>,
    pub disallowed_hosts: Vec<String>,
    pub allowed_ports: Vec<u16>,
    pub disallowed_ports: Vec<u16>,
}

impl Default for UrlFilterConfig {
    fn default() -> UrlFilterConfig {
        UrlFilterConfig {
            allowed_schemes: vec!["http".into(), "https".into()],
            disallowed_schemes: Vec::new(),
            allowed_hosts: Vec::new(),
            disallowed_hosts: Vec::new(),
            allowed_ports: vec![80, 443],
            disallowed_ports: Vec::new(),
        }
    }
}

impl ImportConfig {
    pub fn from_ini(ini: &Ini, data_dir: &std::path::Path) -> Result<ImportConfig, ConfigError> {
        let methods = match bracketed_list(ini, "DEFAULT", "enabled_import_methods") {
            Some(methods) => methods,
            None => IMPORT_METHODS[..3]
                .iter()
                .map(|m| (*m).to_owned())
                .collect(),
        };
        if let Some(unknown) = methods
            .iter()
            .find(|m| !IMPORT_METHODS.contains(&m.as_str()))
        {
            return Err(ConfigError::invalid(
                "DEFAULT",
                "enabled_import_methods",
                format!("unknown import method {unknown:?}"),
            ));
        }
        let plugins =
            bracketed_list(ini, "image_import_opts", "image_import_plugins").unwrap_or_default();
        if let Some(unknown) = plugins
            .iter()
            .find(|p| !IMPORT_PLUGINS.contains(&p.as_str()))
        {
            return Err(ConfigError::invalid(
                "image_import_opts",
                "image_import_plugins",
                format!("unknown import plugin {unknown:?}"),
            ));
        }
        let hours = parse_int(ini, "task", "task_time_to_live", 48, 0, 24 * 365 * 100)?;
        let mut inject = Vec::new();
        for item in bracketed_list(ini, "inject_metadata_properties", "inject").unwrap_or_default()
        {
            let Some((key, value)) = item.split_once(':') else {
                return Err(ConfigError::invalid(
                    "inject_metadata_properties",
                    "inject",
                    format!("{item:?} is not of the form key:value"),
                ));
            };
            inject.push((key.trim().to_owned(), value.trim().to_owned()));
        }
        let conversion_format = ini
            .get("image_conversion", "output_format")
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .unwrap_or("raw")
            .to_ascii_lowercase();
        if !matches!(conversion_format.as_str(), "raw" | "qcow2" | "vmdk") {
            return Err(ConfigError::invalid(
                "image_conversion",
                "output_format",
                format!("{conversion_format:?} is not one of raw, qcow2, vmdk"),
            ));
        }
        Ok(ImportConfig {
            methods,
            filtering: UrlFilterConfig::from_ini(ini)?,
            plugins,
            task_time_to_live: Duration::from_secs(hours as u64 * 3600),
            workers: parse_int(ini, "wsgi", "task_pool_threads", 16, 1, 1024)? as usize,
            inject,
            inject_ignore_roles: bracketed_list(
                ini,
                "inject_metadata_properties",
                "ignore_user_roles",
            )
            .unwrap_or_else(|| vec!["admin".to_owned()])
            .into_iter()
            .map(|r| r.to_ascii_lowercase())
            .collect(),
            conversion_format,
            work_dir: ini
                .get("task", "work_dir")
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| data_dir.join("work")),
            download_properties: bracketed_list(
                ini,
                "glance_download_properties",
                "extra_properties",
            )
            .unwrap_or_else(|| {
                ["hw_", "trait:", "os_distro", "os_secure_boot", "os_type"]
                    .map(str::to_owned)
                    .to_vec()
            }),
            do_secure_hash: super::parse_bool(ini, "DEFAULT", "do_secure_hash", true)?,
            http_retries: parse_int(ini, "DEFAULT", "http_retries", 3, 0, 100)? as u32,
            remote_timeout: Duration::from_secs(parse_int(
                ini,
                "DEFAULT",
                "web_download_timeout",
                60,
                1,
                86_400,
            )? as u64),
        })
    }

    pub fn enabled(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method)
    }

    /// Whether `image_import_plugins` lists `plugin`.
    pub fn plugin_enabled(&self, plugin: &str) -> bool {
        self.plugins.iter().any(|p| p == plugin)
    }
}

impl UrlFilterConfig {
    fn from_ini(ini: &Ini) -> Result<UrlFilterConfig, ConfigError> {
        const SECTION: &str = "import_filtering_opts";
        let defaults = UrlFilterConfig::default();
        let lower = |option| {
            bracketed_list(ini, SECTION, option)
                .map(|items| items.iter().map(|i| i.to_ascii_lowercase()).collect())
        };
        let ports = |option: &'static str| -> Result<Option<Vec<u16>>, ConfigError> {
            bracketed_list(ini, SECTION, option)
                .map(|items| {
                    items
                        .iter()
                        .map(|p| {
                            p.parse::<u16>().map_err(|_| {
                                ConfigError::invalid(
                                    SECTION,
                                    option,
                                    format!("{p:?} is not a port"),
                                )
                            })
                        })
                        .collect()
                })
                .transpose()
        };
        Ok(UrlFilterConfig {
            allowed_schemes: lower("allowed_schemes").unwrap_or(defaults.allowed_schemes),
            disallowed_schemes: lower("disallowed_schemes").unwrap_or_default(),
            allowed_hosts: lower("allowed_hosts").unwrap_or_default(),
            disallowed_hosts: lower("disallowed_hosts").unwrap_or_default(),
            allowed_ports: ports("allowed_ports")?.unwrap_or(defaults.allowed_ports),
            disallowed_ports: ports("disallowed_ports")?.unwrap_or_default(),
        })
    }
}

/// An oslo.config list that may be written in brackets, its items optionally quoted
/// (`[glance-direct, 'web-download']`), as Glance's import options are.
pub(crate) fn bracketed_list(ini: &Ini, section: &str, option: &str) -> Option<Vec<String>> {
    let value = ini.get(section, option)?.trim();
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    Some(
        inner
            .split(',')
            .map(|item| item.trim().trim_matches(|c| c == '\'' || c == '"').trim())
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ImportConfig, ConfigError> {
        ImportConfig::from_ini(
            &Ini::parse(text).expect("ini"),
            std::path::Path::new("/data"),
        )
    }

    #[test]
    fn defaults_are_glances() {
        let config = parse("").expect("defaults");
        assert_eq!(
            config.methods,
            ["glance-direct", "web-download", "copy-image"]
        );
        assert_eq!(config.filtering, UrlFilterConfig::default());
        assert!(config.plugins.is_empty());
        assert_eq!(config.task_time_to_live, Duration::from_secs(48 * 3600));
        assert_eq!(config.workers, 16);
        assert_eq!(config.conversion_format, "raw");
        assert_eq!(config.inject_ignore_roles, ["admin"]);
        assert_eq!(config.work_dir, std::path::Path::new("/data/work"));
    }

    #[test]
    fn injected_properties_are_key_value_pairs() {
        let config = parse(
            "[inject_metadata_properties]\ninject = hw_rng_model:virtio, cloud:glint\nignore_user_roles = Admin, service\n",
        )
        .expect("config");
        assert_eq!(
            config.inject,
            [
                ("hw_rng_model".to_owned(), "virtio".to_owned()),
                ("cloud".to_owned(), "glint".to_owned())
            ]
        );
        assert_eq!(config.inject_ignore_roles, ["admin", "service"]);
        assert!(parse("[inject_metadata_properties]\ninject = lonely\n").is_err());
        assert!(parse("[image_conversion]\noutput_format = vdi\n").is_err());
    }

    #[test]
    fn lists_may_be_bracketed_and_quoted() {
        let config = parse(
            "[DEFAULT]\nenabled_import_methods = [glance-direct, 'web-download']\n\
             [import_filtering_opts]\nallowed_ports = [80,8080]\ndisallowed_hosts = Example.COM\n\
             [image_import_opts]\nimage_import_plugins = ['image_decompression', image_conversion]\n",
        )
        .expect("config");
        assert_eq!(config.methods, ["glance-direct", "web-download"]);
        assert_eq!(config.filtering.allowed_ports, [80, 8080]);
        assert_eq!(config.filtering.disallowed_hosts, ["example.com"]);
        // Every plugin Glance ships is known, image_decompression included, in the order given.
        assert_eq!(config.plugins, ["image_decompression", "image_conversion"]);
        assert!(config.plugin_enabled("image_decompression"));
        assert!(!config.plugin_enabled("inject_image_metadata"));
        let config = parse("[DEFAULT]\nenabled_import_methods = []\n").expect("config");
        assert!(config.methods.is_empty());
    }

    #[test]
    fn unknown_methods_plugins_and_ports_are_refused() {
        for text in [
            "[DEFAULT]\nenabled_import_methods = glance-direct,ftp-download\n",
            "[image_import_opts]\nimage_import_plugins = [shrink]\n",
            "[import_filtering_opts]\nallowed_ports = 80,http\n",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}
