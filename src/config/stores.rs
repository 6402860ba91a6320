//! `[glance_store]` options. The store drivers themselves live in `backends/`.

use std::path::{Path, PathBuf};

use super::ini::Ini;
use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoresConfig {
    /// `filesystem_store_datadir` (default `<data dir>/images`).
    pub filesystem_store_datadir: PathBuf,
}

impl StoresConfig {
    pub fn from_ini(ini: &Ini, data_dir: &Path) -> Result<StoresConfig, ConfigError> {
        let datadir = ini
            .get("glance_store", "filesystem_store_datadir")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("images"));
        Ok(StoresConfig {
            filesystem_store_datadir: datadir,
        })
    }
}
