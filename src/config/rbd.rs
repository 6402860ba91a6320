//! The RBD store's options (`rbd_store_*`, Glance's names, defaults and units).

use std::path::PathBuf;

use glint_store_rbd::RbdConfig;

use super::ini::Ini;
use super::{parse_bool, parse_int, parse_text, ConfigError};

/// The RBD store's options, Glance's names and units (`rbd_store_chunk_size` in MiB).
pub(super) fn rbd_config(ini: &Ini, section: &str, id: &str) -> Result<RbdConfig, ConfigError> {
    let text = |option: &str| parse_text(ini, section, option);
    let timeout = parse_int(
        ini,
        section,
        "rados_connect_timeout",
        glint_store_rbd::DEFAULT_CONNECT_TIMEOUT as i64,
        -1,
        i64::from(u32::MAX),
    )?;
    Ok(RbdConfig {
        name: id.to_owned(),
        pool: text("rbd_store_pool").unwrap_or_else(|| "images".to_owned()),
        user: text("rbd_store_user"),
        ceph_conf: text("rbd_store_ceph_conf").map(PathBuf::from),
        chunk_size: (parse_int(ini, section, "rbd_store_chunk_size", 8, 1, 32)? as u64) << 20,
        connect_timeout: u64::try_from(timeout).ok(),
        thin_provisioning: parse_bool(ini, section, "rbd_thin_provisioning", false)?,
    })
}
