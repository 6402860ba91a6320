//! `[glance_store]` options of the filesystem store, and the data path's `[DEFAULT]` options
//! (hashing, deletion). Each store crate owns its own config struct; this maps the INI onto it.

use std::path::{Path, PathBuf};

use glint_store_file::{DataDir, FileConfig};
use glint_store_http::HttpConfig;
#[cfg(feature = "rbd")]
use glint_store_rbd::RbdConfig;
use glint_store_s3::S3Config;
#[cfg(test)]
use glint_store_s3::UrlFormat;
use glint_store_swift::SwiftConfig;
use glint_store_vmware::VmwareConfig;

use super::ini::Ini;
use super::{parse_bool, parse_int, parse_text, ConfigError};

/// The stores, in Glance's two forms: the legacy single store (`[glance_store] default_store`,
/// its options in `[glance_store]`) and multi-store (`[DEFAULT] enabled_backends = id:type,…`,
/// `[glance_store] default_backend`, each store's options in its own `[id]` section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoresConfig {
    /// Multi-store (`enabled_backends` set): store ids are exposed (`/v2/info/stores`, the
    /// `stores` attribute, `X-Image-Meta-Store`) and locations carry `{"store": id}`.
    pub multi: bool,
    /// Where new data goes unless the request names a store.
    pub default_backend: String,
    /// In `enabled_backends` order.
    pub backends: Vec<BackendConfig>,
    /// Where imports stage data (see `staging`); never listed, never a download's source.
    pub staging: BackendConfig,
}

/// One store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    /// The `enabled_backends` id (legacy: the store type).
    pub id: String,
    /// `store_description`, shown by `/v2/info/stores`.
    pub description: Option<String>,
    /// `weight` (0): stores of higher weight are read first.
    pub weight: i64,
    pub driver: DriverConfig,
}

/// A store's own options, typed by its driver crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverConfig {
    File(FileConfig),
    Http(HttpConfig),
    S3(S3Config),
    Swift(SwiftConfig),
    Vmware(VmwareConfig),
    #[cfg(feature = "rbd")]
    Rbd(RbdConfig),
}

impl DriverConfig {
    /// The type name `enabled_backends` uses.
    pub fn type_name(&self) -> &'static str {
        match self {
            DriverConfig::File(_) => "file",
            DriverConfig::Http(_) => "http",
            DriverConfig::S3(_) => "s3",
            DriverConfig::Swift(_) => "swift",
            DriverConfig::Vmware(_) => "vmware",
            #[cfg(feature = "rbd")]
            DriverConfig::Rbd(_) => "rbd",
        }
    }
}

/// Store types Glance knows that Glint does not drive yet, for a clear start-up error.
const NOT_YET: [&str; 1] = ["cinder"];

impl StoresConfig {
    pub fn from_ini(ini: &Ini, data_dir: &Path) -> Result<StoresConfig, ConfigError> {
        let (multi, default_backend, backends) =
            match ini.get("DEFAULT", "enabled_backends").map(str::trim) {
                Some(list) if !list.is_empty() => multi_store(ini, list, data_dir)?,
                _ => single_store(ini, data_dir)?,
            };
        Ok(StoresConfig {
            multi,
            default_backend,
            backends,
            staging: super::staging::staging(ini, data_dir, multi)?,
        })
    }

    /// The ids of stores' own sections, whose options Glint reads.
    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.backends
            .iter()
            .filter(|_| self.multi)
            .map(|b| b.id.as_str())
    }
}

/// `[glance_store] stores` and `default_store` (deprecated in Glance, still the common form).
/// The stores as `StoresConfig` holds them: multi, the default's id, the stores.
type Backends = (bool, String, Vec<BackendConfig>);

fn single_store(ini: &Ini, data_dir: &Path) -> Result<Backends, ConfigError> {
    // `stores` lists what may be read. Glint reads from every store it drives; only the http
    // store is read solely when listed (Glance's rule for registering http locations).
    let listed = super::parse_list(ini, "glance_store", "stores").unwrap_or_default();
    let kind = ini
        .get("glance_store", "default_store")
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or("file")
        .to_ascii_lowercase();
    let driver = driver(ini, "glance_store", &kind, &kind, data_dir.join("images"))
        .map_err(|e| rename_option(e, "default_store"))?;
    let mut backends = vec![BackendConfig {
        id: kind.clone(),
        description: None,
        weight: 0,
        driver,
    }];
    let http_listed = listed.iter().any(|s| {
        matches!(
            s.to_ascii_lowercase().as_str(),
            "http" | "https" | "glance.store.http.store"
        )
    });
    if http_listed && !matches!(kind.as_str(), "http" | "https") {
        backends.push(BackendConfig {
            id: "http".to_owned(),
            description: None,
            weight: 0,
            driver: DriverConfig::Http(http_config(ini, "glance_store", "http")?),
        });
    }
    Ok((false, kind, backends))
}

fn multi_store(ini: &Ini, list: &str, data_dir: &Path) -> Result<Backends, ConfigError> {
    let invalid = |message: String| ConfigError::invalid("DEFAULT", "enabled_backends", message);
    let mut backends: Vec<BackendConfig> = Vec::new();
    for item in list
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let Some((id, kind)) = item.split_once(':').map(|(i, k)| (i.trim(), k.trim())) else {
            return Err(invalid(format!("{item:?} is not of the form id:type")));
        };
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(invalid(format!("{id:?} is not a valid store id")));
        }
        if id.starts_with("os_glance_") {
            return Err(invalid(format!(
                "store ids starting with os_glance_ are reserved ({id})"
            )));
        }
        if backends.iter().any(|b| b.id == id) {
            return Err(invalid(format!("store id {id} is listed twice")));
        }
        let kind = kind.to_ascii_lowercase();
        let driver = driver(ini, id, id, &kind, data_dir.join(id))
            .map_err(|e| rename_option(e, "enabled_backends"))?;
        backends.push(BackendConfig {
            id: id.to_owned(),
            description: ini
                .get(id, "store_description")
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
            weight: parse_int(ini, id, "weight", 0, i64::MIN, i64::MAX)?,
            driver,
        });
    }
    if backends.is_empty() {
        return Err(invalid("no store listed".to_owned()));
    }
    let default_backend = ini
        .get("glance_store", "default_backend")
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            ConfigError::invalid(
                "glance_store",
                "default_backend",
                "must name one of enabled_backends when enabled_backends is set",
            )
        })?
        .to_owned();
    if !backends.iter().any(|b| b.id == default_backend) {
        return Err(ConfigError::invalid(
            "glance_store",
            "default_backend",
            format!("{default_backend} is not in enabled_backends"),
        ));
    }
    Ok((true, default_backend, backends))
}

/// A store's options from `section`. An unknown type is reported against the option that
/// named it (`rename_option` fixes the option name).
pub(super) fn driver(
    ini: &Ini,
    section: &str,
    id: &str,
    kind: &str,
    default_dir: PathBuf,
) -> Result<DriverConfig, ConfigError> {
    match kind {
        "file" | "filesystem" => Ok(DriverConfig::File(file_config(
            ini,
            section,
            id,
            default_dir,
        )?)),
        "s3" => Ok(DriverConfig::S3(super::s3::s3_config(ini, section, id)?)),
        "http" | "https" => Ok(DriverConfig::Http(http_config(ini, section, id)?)),
        "swift" => Ok(DriverConfig::Swift(super::swift::swift_config(
            ini, section, id,
        )?)),
        "vmware" | "vsphere" => Ok(DriverConfig::Vmware(super::vmware::vmware_config(
            ini, section, id,
        )?)),
        #[cfg(feature = "rbd")]
        "rbd" => Ok(DriverConfig::Rbd(super::rbd::rbd_config(ini, section, id)?)),
        #[cfg(not(feature = "rbd"))]
        "rbd" => Err(ConfigError::invalid(
            section,
            "type",
            "the rbd store is not in this build of Glint (build it with --features rbd, which \
             needs librbd-dev and librados-dev)",
        )),
        other if NOT_YET.contains(&other) => Err(ConfigError::invalid(
            section,
            "type",
            format!("the {other} store is not available in this version of Glint"),
        )),
        other => Err(ConfigError::invalid(
            section,
            "type",
            format!("unknown store type {other:?}"),
        )),
    }
}

fn rename_option(error: ConfigError, option: &'static str) -> ConfigError {
    match error {
        ConfigError::Invalid {
            option: "type",
            message,
            ..
        } => ConfigError::invalid(
            if option == "default_store" {
                "glance_store"
            } else {
                "DEFAULT"
            },
            option,
            message,
        ),
        other => other,
    }
}

/// The http store's options: `https_insecure` (Glint's default: false, certificates are
/// verified; Glance's is true), `https_ca_certificates_file`, and Glint's `http_timeout`
/// (60 s), the longest the server may keep a read waiting.
fn http_config(ini: &Ini, section: &str, id: &str) -> Result<HttpConfig, ConfigError> {
    Ok(HttpConfig {
        name: id.to_owned(),
        insecure: parse_bool(ini, section, "https_insecure", false)?,
        ca_file: parse_text(ini, section, "https_ca_certificates_file").map(PathBuf::from),
        timeout: std::time::Duration::from_secs(parse_int(
            ini,
            section,
            "http_timeout",
            60,
            1,
            86_400,
        )? as u64),
    })
}

/// The filesystem store's options: `filesystem_store_datadir` (or repeated
/// `filesystem_store_datadirs = /path:priority`), `filesystem_store_file_perm`,
/// `filesystem_thin_provisioning`, and Glint's `filesystem_store_fsync` (default true).
fn file_config(
    ini: &Ini,
    section: &str,
    id: &str,
    default_dir: PathBuf,
) -> Result<FileConfig, ConfigError> {
    let mut datadirs = Vec::new();
    for entry in ini
        .get_all(section, "filesystem_store_datadirs")
        .unwrap_or_default()
    {
        for item in entry
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            datadirs.push(parse_datadir(section, item)?);
        }
    }
    if datadirs.is_empty() {
        let path = ini
            .get(section, "filesystem_store_datadir")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or(default_dir);
        datadirs.push(DataDir { path, priority: 0 });
    }
    let perm = parse_int(ini, section, "filesystem_store_file_perm", 0, 0, 7777)?;
    let file_perm = match perm {
        0 => None,
        digits => Some(u32::from_str_radix(&digits.to_string(), 8).map_err(|_| {
            ConfigError::invalid(
                section,
                "filesystem_store_file_perm",
                format!("{digits} is not an octal mode"),
            )
        })?),
    };
    Ok(FileConfig {
        name: id.to_owned(),
        datadirs,
        file_perm,
        thin_provisioning: parse_bool(ini, section, "filesystem_thin_provisioning", false)?,
        fsync: parse_bool(ini, section, "filesystem_store_fsync", true)?,
    })
}

fn parse_datadir(section: &str, item: &str) -> Result<DataDir, ConfigError> {
    match item.rsplit_once(':') {
        Some((path, priority))
            if priority.chars().all(|c| c.is_ascii_digit()) && !priority.is_empty() =>
        {
            Ok(DataDir {
                path: PathBuf::from(path),
                priority: priority.parse().map_err(|_| {
                    ConfigError::invalid(
                        section,
                        "filesystem_store_datadirs",
                        format!("bad priority in {item:?}"),
                    )
                })?,
            })
        }
        _ => Ok(DataDir {
            path: PathBuf::from(item),
            priority: 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DataPathConfig;

    /// The only store's file options.
    fn file(config: &StoresConfig) -> &FileConfig {
        match &config.backends[0].driver {
            DriverConfig::File(file) => file,
            other => panic!("not a file store: {other:?}"),
        }
    }

    #[test]
    fn datadirs_with_priorities() {
        let ini = Ini::parse(
            "[glance_store]\nfilesystem_store_datadirs = /a:100\nfilesystem_store_datadirs = /b:200\nfilesystem_store_file_perm = 640\n",
        )
        .expect("parses");
        let config = StoresConfig::from_ini(&ini, Path::new("/d")).expect("loads");
        assert_eq!(
            file(&config).datadirs,
            [
                DataDir {
                    path: "/a".into(),
                    priority: 100
                },
                DataDir {
                    path: "/b".into(),
                    priority: 200
                }
            ]
        );
        assert_eq!(file(&config).file_perm, Some(0o640));
        assert!(file(&config).fsync);
    }

    #[test]
    fn single_datadir_and_defaults() {
        let config = StoresConfig::from_ini(&Ini::default(), Path::new("/d")).expect("loads");
        assert_eq!(
            file(&config).datadirs,
            [DataDir {
                path: "/d/images".into(),
                priority: 0
            }]
        );
        assert_eq!(file(&config).file_perm, None);
        let datapath = DataPathConfig::from_ini(&Ini::default()).expect("loads");
        assert_eq!(datapath.hashing_algorithm, "sha512");
        assert!(!datapath.delayed_delete);
    }

    #[test]
    fn several_stores_each_with_its_own_section() {
        let ini = Ini::parse(
            "[DEFAULT]\nenabled_backends = fast:file,\n    cheap:filesystem\n\
             [glance_store]\ndefault_backend = cheap\n\
             [fast]\nfilesystem_store_datadir = /srv/fast\nweight = 5\nstore_description = SSD\n\
             [cheap]\nfilesystem_store_file_perm = 600\n",
        )
        .expect("parses");
        let config = StoresConfig::from_ini(&ini, Path::new("/d")).expect("loads");
        assert!(config.multi);
        assert_eq!(config.default_backend, "cheap");
        let ids: Vec<&str> = config.backends.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["fast", "cheap"]);
        assert_eq!(config.backends[0].weight, 5);
        assert_eq!(config.backends[0].description.as_deref(), Some("SSD"));
        let DriverConfig::File(fast) = &config.backends[0].driver else {
            panic!("file store")
        };
        assert_eq!(fast.datadirs[0].path, PathBuf::from("/srv/fast"));
        assert_eq!(fast.name, "fast");
        let DriverConfig::File(cheap) = &config.backends[1].driver else {
            panic!("file store")
        };
        assert_eq!(cheap.datadirs[0].path, PathBuf::from("/d/cheap"));
        assert_eq!(cheap.file_perm, Some(0o600));
        assert_eq!(config.sections().collect::<Vec<_>>(), ["fast", "cheap"]);
        // The legacy form names no sections of its own.
        let single = StoresConfig::from_ini(&Ini::default(), Path::new("/d")).expect("loads");
        assert!(!single.multi);
        assert_eq!(single.sections().count(), 0);
    }

    #[test]
    fn s3_stores_take_glance_s_options() {
        let ini = Ini::parse(
            "[DEFAULT]\nenabled_backends = objects:s3\n[glance_store]\ndefault_backend = objects\n\
             [objects]\ns3_store_host = https://rgw.example.com:7480\ns3_store_access_key = AK\n\
             s3_store_secret_key = SK\ns3_store_bucket = images\ns3_store_large_object_chunk_size = 16\n\
             s3_store_thread_pools = 4\ns3_store_bucket_url_format = path\n",
        )
        .expect("parses");
        let config = StoresConfig::from_ini(&ini, Path::new("/d")).expect("loads");
        let DriverConfig::S3(s3) = &config.backends[0].driver else {
            panic!("s3 store")
        };
        assert_eq!(s3.name, "objects");
        assert_eq!(s3.large_object_chunk_size, 16 << 20);
        assert_eq!(s3.large_object_size, 100 << 20);
        assert_eq!(s3.thread_pools, 4);
        assert_eq!(s3.url_format, UrlFormat::Path);
        assert!(
            !format!("{config:?}").contains("SK"),
            "the secret stays out of Debug output"
        );
        // Legacy form, and what is missing or out of range.
        let legacy = Ini::parse("[glance_store]\ndefault_store = s3\ns3_store_host = h\ns3_store_access_key = a\ns3_store_secret_key = s\ns3_store_bucket = b\n").expect("parses");
        assert_eq!(
            StoresConfig::from_ini(&legacy, Path::new("/d"))
                .expect("loads")
                .backends[0]
                .id,
            "s3"
        );
        for (text, option) in [
            ("[glance_store]\ndefault_store = s3\ns3_store_host = h\n", "s3_store_access_key"),
            ("[glance_store]\ndefault_store = s3\ns3_store_host = h\ns3_store_access_key = a\ns3_store_secret_key = s\ns3_store_bucket = b\ns3_store_large_object_chunk_size = 4\n", "s3_store_large_object_chunk_size"),
            ("[glance_store]\ndefault_store = s3\ns3_store_host = h\ns3_store_access_key = a\ns3_store_secret_key = s\ns3_store_bucket = b\ns3_store_bucket_url_format = dns\n", "s3_store_bucket_url_format"),
        ] {
            let ini = Ini::parse(text).expect("parses");
            match StoresConfig::from_ini(&ini, Path::new("/d")) {
                Err(ConfigError::Invalid { option: named, .. }) => assert_eq!(named, option, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_store_lists_are_refused_with_the_option_named() {
        let cases = [
            ("[DEFAULT]\nenabled_backends = fast:file\n", "default_backend"),
            ("[DEFAULT]\nenabled_backends = fast:file\n[glance_store]\ndefault_backend = slow\n", "default_backend"),
            ("[DEFAULT]\nenabled_backends = fast\n[glance_store]\ndefault_backend = fast\n", "enabled_backends"),
            ("[DEFAULT]\nenabled_backends = a:file, a:file\n[glance_store]\ndefault_backend = a\n", "enabled_backends"),
            ("[DEFAULT]\nenabled_backends = os_glance_staging_store:file\n[glance_store]\ndefault_backend = os_glance_staging_store\n", "enabled_backends"),
            ("[DEFAULT]\nenabled_backends = t:tape\n[glance_store]\ndefault_backend = t\n", "enabled_backends"),
            ("[glance_store]\ndefault_store = tape\n", "default_store"),
            ("[DEFAULT]\nenabled_backends = a:file\n[glance_store]\ndefault_backend = a\n[a]\nweight = heavy\n", "weight"),
        ];
        for (text, option) in cases {
            let ini = Ini::parse(text).expect("parses");
            match StoresConfig::from_ini(&ini, Path::new("/d")) {
                Err(ConfigError::Invalid { option: named, .. }) => {
                    assert_eq!(named, option, "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_hash_algorithms_are_refused() {
        let ini = Ini::parse("[DEFAULT]\nhashing_algorithm = rot13\n").expect("parses");
        assert!(DataPathConfig::from_ini(&ini).is_err());
        let ini = Ini::parse("[DEFAULT]\nhashing_algorithm = sha256\n").expect("parses");
        assert_eq!(
            DataPathConfig::from_ini(&ini)
                .expect("loads")
                .hashing_algorithm,
            "sha256"
        );
    }
}
