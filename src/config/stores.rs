//! `[glance_store]` options of the filesystem store, and the data path's `[DEFAULT]` options
//! (hashing, deletion). Each store crate owns its own config struct; this maps the INI onto it.

use std::path::{Path, PathBuf};

use glint_store_file::{DataDir, FileConfig};

use super::ini::Ini;
use super::{parse_bool, parse_int, ConfigError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoresConfig {
    /// The filesystem store: `filesystem_store_datadir` (default `<data dir>/images`) or
    /// `filesystem_store_datadirs` (`/path:priority`, repeatable), `filesystem_store_file_perm`,
    /// `filesystem_thin_provisioning`, and Glint's `filesystem_store_fsync` (default true).
    pub file: FileConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPathConfig {
    /// `[DEFAULT] hashing_algorithm` (sha512): the `os_hash_algo` of uploaded data.
    pub hashing_algorithm: String,
    /// `[DEFAULT] delayed_delete` (false): deleting an image leaves its data for the scrubber.
    pub delayed_delete: bool,
    /// `[DEFAULT] scrub_time` (0 s): how long deleted data waits before the scrubber removes it.
    pub scrub_time_secs: u64,
    /// `[DEFAULT] wakeup_time` (300 s): how often the in-process scrubber runs.
    pub wakeup_time_secs: u64,
    /// `[DEFAULT] scrub_in_serve` (Glint, false): run the scrubber inside `glint serve`.
    pub scrub_in_serve: bool,
    /// `[glance_store] verify_download_checksum` (Glint, false): hash whole downloads and cut
    /// the transfer before its last bytes if the data no longer matches `checksum`.
    pub verify_download_checksum: bool,
    /// `[DEFAULT] upload_memory_budget` (Glint, 128 MiB): image bytes all uploads together may
    /// hold in memory; uploads beyond it slow down rather than grow the process.
    pub upload_memory_budget: u64,
}

impl StoresConfig {
    pub fn from_ini(ini: &Ini, data_dir: &Path) -> Result<StoresConfig, ConfigError> {
        let mut datadirs = Vec::new();
        for entry in ini
            .get_all("glance_store", "filesystem_store_datadirs")
            .unwrap_or_default()
        {
            for item in entry
                .split([',', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                datadirs.push(parse_datadir(item)?);
            }
        }
        if datadirs.is_empty() {
            let path = ini
                .get("glance_store", "filesystem_store_datadir")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("images"));
            datadirs.push(DataDir { path, priority: 0 });
        }
        let perm = parse_int(
            ini,
            "glance_store",
            "filesystem_store_file_perm",
            0,
            0,
            7777,
        )?;
        let file_perm = match perm {
            0 => None,
            digits => Some(u32::from_str_radix(&digits.to_string(), 8).map_err(|_| {
                ConfigError::invalid(
                    "glance_store",
                    "filesystem_store_file_perm",
                    format!("{digits} is not an octal mode"),
                )
            })?),
        };
        Ok(StoresConfig {
            file: FileConfig {
                name: "file".to_owned(),
                datadirs,
                file_perm,
                thin_provisioning: parse_bool(
                    ini,
                    "glance_store",
                    "filesystem_thin_provisioning",
                    false,
                )?,
                fsync: parse_bool(ini, "glance_store", "filesystem_store_fsync", true)?,
            },
        })
    }
}

fn parse_datadir(item: &str) -> Result<DataDir, ConfigError> {
    match item.rsplit_once(':') {
        Some((path, priority))
            if priority.chars().all(|c| c.is_ascii_digit()) && !priority.is_empty() =>
        {
            Ok(DataDir {
                path: PathBuf::from(path),
                priority: priority.parse().map_err(|_| {
                    ConfigError::invalid(
                        "glance_store",
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

impl DataPathConfig {
    pub fn from_ini(ini: &Ini) -> Result<DataPathConfig, ConfigError> {
        let algorithm = ini
            .get("DEFAULT", "hashing_algorithm")
            .filter(|v| !v.is_empty())
            .unwrap_or("sha512");
        if openssl::hash::MessageDigest::from_name(algorithm).is_none() {
            return Err(ConfigError::invalid(
                "DEFAULT",
                "hashing_algorithm",
                format!("{algorithm:?} is not a hash algorithm this system provides (e.g. sha512, sha256)"),
            ));
        }
        Ok(DataPathConfig {
            hashing_algorithm: algorithm.to_owned(),
            delayed_delete: parse_bool(ini, "DEFAULT", "delayed_delete", false)?,
            scrub_time_secs: parse_int(ini, "DEFAULT", "scrub_time", 0, 0, i64::from(u32::MAX))?
                as u64,
            wakeup_time_secs: parse_int(ini, "DEFAULT", "wakeup_time", 300, 1, i64::from(u32::MAX))?
                as u64,
            scrub_in_serve: parse_bool(ini, "DEFAULT", "scrub_in_serve", false)?,
            verify_download_checksum: parse_bool(
                ini,
                "glance_store",
                "verify_download_checksum",
                false,
            )?,
            upload_memory_budget: parse_int(
                ini,
                "DEFAULT",
                "upload_memory_budget",
                128 << 20,
                1 << 20,
                i64::from(u32::MAX),
            )? as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datadirs_with_priorities() {
        let ini = Ini::parse(
            "[glance_store]\nfilesystem_store_datadirs = /a:100\nfilesystem_store_datadirs = /b:200\nfilesystem_store_file_perm = 640\n",
        )
        .expect("parses");
        let config = StoresConfig::from_ini(&ini, Path::new("/d")).expect("loads");
        assert_eq!(
            config.file.datadirs,
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
        assert_eq!(config.file.file_perm, Some(0o640));
        assert!(config.file.fsync);
    }

    #[test]
    fn single_datadir_and_defaults() {
        let config = StoresConfig::from_ini(&Ini::default(), Path::new("/d")).expect("loads");
        assert_eq!(
            config.file.datadirs,
            [DataDir {
                path: "/d/images".into(),
                priority: 0
            }]
        );
        assert_eq!(config.file.file_perm, None);
        let datapath = DataPathConfig::from_ini(&Ini::default()).expect("loads");
        assert_eq!(datapath.hashing_algorithm, "sha512");
        assert!(!datapath.delayed_delete);
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
