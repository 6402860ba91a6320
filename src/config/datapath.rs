//! `[DEFAULT]` and `[glance_store]` options of the data path itself: hashing, deletion and
//! scrubbing, download verification, the upload memory budget, and inspection.

use super::ini::Ini;
use super::{parse_bool, parse_int, ConfigError};

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
    /// `[image_format]`: how uploaded and copied data is inspected.
    pub inspection: super::InspectionConfig,
    /// `[DEFAULT] worker_self_reference_url` (else `public_endpoint`): this node's URL,
    /// recorded on staged images as `os_glance_stage_host`.
    pub stage_host: Option<String>,
    /// Whether staged data that starts as a zip, LHA or gzip file is staged uninspected: set
    /// when `[image_import_opts] image_import_plugins` lists `image_decompression`, which
    /// unpacks it before any store sees it (not an option of its own).
    pub stage_compressed: bool,
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
            inspection: super::InspectionConfig::from_ini(ini)?,
            stage_host: ini
                .get("DEFAULT", "worker_self_reference_url")
                .or_else(|| ini.get("DEFAULT", "public_endpoint"))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
            stage_compressed: false,
        })
    }
}
