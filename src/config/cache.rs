//! The image cache: `[DEFAULT] image_cache_dir`, `image_cache_max_size`,
//! `image_cache_stall_time`, `image_cache_driver`, `worker_self_reference_url`, and whether
//! `[paste_deploy] flavor` puts Glance's `cache` filter in front of downloads.
//!
//! Glance decides in two places, and so does Glint: the cache API (`/v2/cache…`) and the
//! prefetcher work whenever `image_cache_dir` is set; downloads go through the cache only
//! when the flavor also names caching (`caching`, `cachemanagement`, `keystone+caching`,
//! `keystone+cachemanagement`). Only the `centralized_db` driver exists here: its records
//! live in the shared database (`node_reference`, `cached_images`), so every node needs its
//! own `worker_self_reference_url`, which Glance too requires with a caching flavor.

use std::path::PathBuf;
use std::time::Duration;

use super::ini::Ini;
use super::{parse_int, ConfigError};

/// Glance's default `image_cache_max_size`: 10 GiB.
const DEFAULT_MAX_SIZE: i64 = 10 << 30;
/// Glance's default `image_cache_stall_time`: a day.
const DEFAULT_STALL_TIME: i64 = 86_400;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// `image_cache_dir` (unset: no cache, and the cache API answers 404 as Glance's does).
    pub dir: Option<PathBuf>,
    /// `image_cache_max_size` (10 GiB): the most the complete cached files may hold. Glint
    /// keeps to it as the cache fills, evicting the least recently used entries first.
    pub max_size: u64,
    /// `image_cache_stall_time` (86400 s): an incomplete file untouched this long is removed
    /// by the cleaner.
    pub stall_time: Duration,
    /// `worker_self_reference_url`: this node's name in `node_reference`.
    pub node_url: Option<String>,
    /// Whether downloads are served from and fill the cache (a caching paste flavor).
    pub on_downloads: bool,
}

impl Default for CacheConfig {
    fn default() -> CacheConfig {
        CacheConfig {
            dir: None,
            max_size: DEFAULT_MAX_SIZE as u64,
            stall_time: Duration::from_secs(DEFAULT_STALL_TIME as u64),
            node_url: None,
            on_downloads: false,
        }
    }
}

impl CacheConfig {
    pub fn from_ini(ini: &Ini) -> Result<CacheConfig, ConfigError> {
        let text = |option: &str| {
            ini.get("DEFAULT", option)
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let driver = text("image_cache_driver")
            .unwrap_or("centralized_db")
            .to_ascii_lowercase();
        match driver.as_str() {
            "centralized_db" => {}
            "sqlite" | "xattr" => {
                return Err(ConfigError::invalid(
                    "DEFAULT",
                    "image_cache_driver",
                    format!(
                        "{driver:?} is not supported: Glint keeps cache records in the shared \
                         database (centralized_db, Glance's default since 2024.2)"
                    ),
                ))
            }
            other => {
                return Err(ConfigError::invalid(
                    "DEFAULT",
                    "image_cache_driver",
                    format!("{other:?} is not one of centralized_db, sqlite, xattr"),
                ))
            }
        }
        let flavor = ini.get("paste_deploy", "flavor").unwrap_or("").trim();
        let on_downloads = flavor.contains("cach");
        let dir = text("image_cache_dir").map(PathBuf::from);
        // Read so that it is not reported unused: Glint keeps no SQLite cache database.
        let _ = ini.get("DEFAULT", "image_cache_sqlite_db");
        let node_url = text("worker_self_reference_url").map(str::to_owned);
        if on_downloads && dir.is_none() {
            return Err(ConfigError::invalid(
                "DEFAULT",
                "image_cache_dir",
                format!("must be set for flavor = {flavor}"),
            ));
        }
        if dir.is_some() && node_url.is_none() {
            return Err(ConfigError::invalid(
                "DEFAULT",
                "worker_self_reference_url",
                "must be set when image_cache_dir is (it names this node's cache in the \
                 shared database, image_cache_driver = centralized_db)",
            ));
        }
        if node_url.as_ref().is_some_and(|u| u.len() > 255) {
            return Err(ConfigError::invalid(
                "DEFAULT",
                "worker_self_reference_url",
                "at most 255 characters (node_reference_url)",
            ));
        }
        Ok(CacheConfig {
            dir,
            max_size: parse_int(
                ini,
                "DEFAULT",
                "image_cache_max_size",
                DEFAULT_MAX_SIZE,
                0,
                i64::MAX,
            )? as u64,
            stall_time: Duration::from_secs(parse_int(
                ini,
                "DEFAULT",
                "image_cache_stall_time",
                DEFAULT_STALL_TIME,
                0,
                i64::from(u32::MAX),
            )? as u64),
            node_url,
            on_downloads,
        })
    }

    /// Whether this node has a cache at all (the cache API and the prefetcher work).
    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CacheConfig, ConfigError> {
        CacheConfig::from_ini(&Ini::parse(text).expect("ini"))
    }

    #[test]
    fn no_directory_no_cache() {
        let config = parse("").expect("defaults");
        assert!(!config.enabled());
        assert!(!config.on_downloads);
        assert_eq!(config.max_size, 10 << 30);
        assert_eq!(config.stall_time, Duration::from_secs(86_400));
    }

    #[test]
    fn downloads_use_the_cache_with_a_caching_flavor_only() {
        let base = "[DEFAULT]\nimage_cache_dir = /c\nworker_self_reference_url = http://n1:9292\n";
        let api_only = parse(base).expect("config");
        assert!(api_only.enabled() && !api_only.on_downloads);
        for flavor in [
            "caching",
            "cachemanagement",
            "keystone+caching",
            "keystone+cachemanagement",
        ] {
            let config =
                parse(&format!("{base}[paste_deploy]\nflavor = {flavor}\n")).expect("config");
            assert!(config.on_downloads, "{flavor}");
        }
        let config = parse(&format!("{base}[paste_deploy]\nflavor = keystone\n")).expect("ok");
        assert!(!config.on_downloads);
    }

    #[test]
    fn refusals_name_the_option() {
        let err = |text: &str| parse(text).expect_err("refused").to_string();
        assert!(err("[paste_deploy]\nflavor = caching\n").starts_with("[DEFAULT] image_cache_dir"));
        assert!(err("[DEFAULT]\nimage_cache_dir = /c\n")
            .starts_with("[DEFAULT] worker_self_reference_url"));
        let driver = err("[DEFAULT]\nimage_cache_driver = sqlite\n");
        assert!(driver.contains("not supported"), "{driver}");
        assert!(err("[DEFAULT]\nimage_cache_driver = redis\n").contains("not one of"));
        assert!(err("[DEFAULT]\nimage_cache_max_size = -1\n").contains("image_cache_max_size"));
        assert!(parse("[DEFAULT]\nimage_cache_driver = Centralized_DB\n").is_ok());
    }
}
