//! `[DEFAULT]` limits and quotas.

use super::ini::Ini;
use super::{parse_int, ConfigError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// `api_limit_max` (1000): the largest page a list returns.
    pub api_limit_max: u32,
    /// `limit_param_default` (25): the page size when `limit` is not given.
    pub limit_param_default: u32,
    /// `image_size_cap` in bytes (1 TiB): the largest image that may be uploaded.
    pub image_size_cap: u64,
    /// `user_storage_quota` in bytes (0 = none); accepts B, KB, MB, GB, TB suffixes.
    pub user_storage_quota: u64,
    /// `image_property_quota` (128; -1 = unlimited).
    pub image_property_quota: Option<usize>,
    /// `image_tag_quota` (128; -1 = unlimited).
    pub image_tag_quota: Option<usize>,
    /// `image_member_quota` (128; -1 = unlimited).
    pub image_member_quota: Option<usize>,
    /// `image_location_quota` (10; -1 = unlimited).
    pub image_location_quota: Option<usize>,
}

impl LimitsConfig {
    pub fn from_ini(ini: &Ini) -> Result<LimitsConfig, ConfigError> {
        let quota = |option: &'static str, default: i64| -> Result<Option<usize>, ConfigError> {
            let value = parse_int(ini, "DEFAULT", option, default, -1, i64::from(u32::MAX))?;
            Ok((value >= 0).then_some(value as usize))
        };
        Ok(LimitsConfig {
            api_limit_max: parse_int(
                ini,
                "DEFAULT",
                "api_limit_max",
                1000,
                1,
                i64::from(u32::MAX),
            )? as u32,
            limit_param_default: parse_int(
                ini,
                "DEFAULT",
                "limit_param_default",
                25,
                1,
                i64::from(u32::MAX),
            )? as u32,
            image_size_cap: parse_int(
                ini,
                "DEFAULT",
                "image_size_cap",
                1 << 40,
                0,
                9_223_372_036_854_775_807,
            )? as u64,
            user_storage_quota: parse_quota(
                ini.get("DEFAULT", "user_storage_quota").unwrap_or("0"),
            )?,
            image_property_quota: quota("image_property_quota", 128)?,
            image_tag_quota: quota("image_tag_quota", 128)?,
            image_member_quota: quota("image_member_quota", 128)?,
            image_location_quota: quota("image_location_quota", 10)?,
        })
    }
}

/// `user_storage_quota`: a byte count with an optional B/KB/MB/GB/TB suffix (powers of 1024,
/// no space), as Glance reads it.
fn parse_quota(raw: &str) -> Result<u64, ConfigError> {
    let raw = raw.trim();
    let digits = raw.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &raw[digits.len()..];
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "KB" => 10,
        "MB" => 20,
        "GB" => 30,
        "TB" => 40,
        _ => {
            return Err(ConfigError::invalid(
                "DEFAULT",
                "user_storage_quota",
                format!("unknown unit in {raw:?}"),
            ))
        }
    };
    let value: u64 = digits.parse().map_err(|_| {
        ConfigError::invalid(
            "DEFAULT",
            "user_storage_quota",
            format!("{raw:?} is not a size"),
        )
    })?;
    value.checked_mul(1 << shift).ok_or_else(|| {
        ConfigError::invalid(
            "DEFAULT",
            "user_storage_quota",
            format!("{raw:?} is too large"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_quota_units() {
        assert_eq!(parse_quota("0").ok(), Some(0));
        assert_eq!(parse_quota("512").ok(), Some(512));
        assert_eq!(parse_quota("10GB").ok(), Some(10 << 30));
        assert_eq!(parse_quota("1TB").ok(), Some(1 << 40));
        assert!(parse_quota("10 GB").is_err());
        assert!(parse_quota("10PB").is_err());
    }

    #[test]
    fn negative_quota_means_unlimited() {
        let ini = Ini::parse("[DEFAULT]\nimage_tag_quota = -1\n").expect("parses");
        let limits = LimitsConfig::from_ini(&ini).expect("loads");
        assert_eq!(limits.image_tag_quota, None);
        assert_eq!(limits.image_property_quota, Some(128));
    }
}
