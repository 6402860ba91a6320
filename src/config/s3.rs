//! The S3 store's options (`s3_store_*`, Glance's names, defaults and units).

use std::path::PathBuf;

use glint_store_s3::{S3Config, Secret, UrlFormat};

use super::ini::Ini;
use super::{parse_bool, parse_int, parse_text, ConfigError};

/// The S3 store's options, Glance's `s3_store_*` names and units (sizes in MiB).
pub(super) fn s3_config(ini: &Ini, section: &str, id: &str) -> Result<S3Config, ConfigError> {
    let text = |option: &str| parse_text(ini, section, option);
    let required = |option: &'static str| {
        text(option)
            .ok_or_else(|| ConfigError::invalid(section, option, "required by the s3 store"))
    };
    let url_format = match text("s3_store_bucket_url_format")
        .unwrap_or_else(|| "auto".to_owned())
        .to_ascii_lowercase()
        .as_str()
    {
        "auto" => UrlFormat::Auto,
        "path" => UrlFormat::Path,
        "virtual" => UrlFormat::Virtual,
        other => {
            return Err(ConfigError::invalid(
                section,
                "s3_store_bucket_url_format",
                format!("{other:?} is not one of auto, path, virtual"),
            ))
        }
    };
    let mib = |option: &'static str, default: i64, min: i64| {
        parse_int(ini, section, option, default, min, 5 << 10).map(|v| (v as u64) << 20)
    };
    Ok(S3Config {
        name: id.to_owned(),
        host: required("s3_store_host")?,
        region: text("s3_store_region_name"),
        access_key: required("s3_store_access_key")?,
        secret_key: Secret(required("s3_store_secret_key")?),
        bucket: required("s3_store_bucket")?,
        create_bucket_on_put: parse_bool(ini, section, "s3_store_create_bucket_on_put", false)?,
        url_format,
        large_object_size: mib("s3_store_large_object_size", 100, 0)?,
        large_object_chunk_size: mib("s3_store_large_object_chunk_size", 10, 5)?,
        thread_pools: parse_int(ini, section, "s3_store_thread_pools", 10, 1, 1000)? as usize,
        cacert: text("s3_store_cacert").map(PathBuf::from),
    })
}
