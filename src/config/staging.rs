//! Where imports stage data: `[DEFAULT] node_staging_uri`, or with several stores the
//! reserved `[os_glance_staging_store]` store.

use std::path::{Path, PathBuf};

use glint_store_file::{DataDir, FileConfig};

use super::ini::Ini;
use super::stores::{driver, BackendConfig, DriverConfig};
use super::ConfigError;

/// The reserved store id of staged data (Glance's).
pub const STAGING_STORE: &str = "os_glance_staging_store";

/// Where imports stage data. With one store, the directory of `[DEFAULT] node_staging_uri`
/// (`file://` only, as Glance; default `<data dir>/staging`). With several, the reserved
/// `[os_glance_staging_store]` store: a directory (`filesystem_store_datadir`, else that of
/// `node_staging_uri`), or — Glint's `type` option — an s3, swift or rbd store every node
/// reaches, so that any node can finish an import another staged.
pub(super) fn staging(
    ini: &Ini,
    data_dir: &Path,
    multi: bool,
) -> Result<BackendConfig, ConfigError> {
    let staging_dir = match ini
        .get("DEFAULT", "node_staging_uri")
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        Some(uri) => PathBuf::from(uri.strip_prefix("file://").ok_or_else(|| {
            ConfigError::invalid(
                "DEFAULT",
                "node_staging_uri",
                format!("{uri:?} is not a file:// URI"),
            )
        })?),
        None => data_dir.join("staging"),
    };
    let driver = if multi {
        let kind = ini
            .get(STAGING_STORE, "type")
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .unwrap_or("file")
            .to_ascii_lowercase();
        driver(ini, STAGING_STORE, STAGING_STORE, &kind, staging_dir)?
    } else {
        DriverConfig::File(FileConfig {
            name: STAGING_STORE.to_owned(),
            datadirs: vec![DataDir {
                path: staging_dir,
                priority: 0,
            }],
            file_perm: None,
            thin_provisioning: false,
            fsync: true,
        })
    };
    Ok(BackendConfig {
        id: STAGING_STORE.to_owned(),
        description: None,
        weight: 0,
        driver,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staging_of(text: &str, multi: bool) -> Result<BackendConfig, ConfigError> {
        staging(&Ini::parse(text).expect("ini"), Path::new("/data"), multi)
    }

    #[test]
    fn staging_is_a_directory_unless_several_stores_say_otherwise() {
        let DriverConfig::File(file) = staging_of("", false).expect("default").driver else {
            panic!("a directory");
        };
        assert_eq!(file.datadirs[0].path, Path::new("/data/staging"));
        let DriverConfig::File(file) =
            staging_of("[DEFAULT]\nnode_staging_uri = file:///srv/staging\n", true)
                .expect("configured")
                .driver
        else {
            panic!("a directory");
        };
        assert_eq!(file.datadirs[0].path, Path::new("/srv/staging"));
        assert!(staging_of("[DEFAULT]\nnode_staging_uri = s3://bucket/x\n", false).is_err());
        // A shared store: its own options, checked as any store's.
        assert!(staging_of("[os_glance_staging_store]\ntype = s3\n", true).is_err());
        let shared = staging_of(
            "[os_glance_staging_store]\ntype = s3\ns3_store_host = http://rgw:8080\n\
             s3_store_access_key = k\ns3_store_secret_key = s\ns3_store_bucket = staging\n",
            true,
        )
        .expect("an S3 staging store");
        assert_eq!(shared.driver.type_name(), "s3");
        assert_eq!(shared.id, STAGING_STORE);
    }
}
