//! The VMware store's options (`vmware_*`, Glance's names and defaults).

use std::path::PathBuf;
use std::time::Duration;

use glint_store_vmware::{DatastoreSpec, Secret, VmwareConfig};

use super::ini::Ini;
use super::{parse_bool, parse_int, parse_text, ConfigError};

/// The store's options from `section` (`[glance_store]`, or a multi-store backend's own).
/// `vmware_server_host` may carry a port (`vcenter:8443`); Glance always uses 443.
pub(super) fn vmware_config(
    ini: &Ini,
    section: &str,
    id: &str,
) -> Result<VmwareConfig, ConfigError> {
    let text = |option: &str| parse_text(ini, section, option);
    let required = |option: &'static str| {
        text(option)
            .ok_or_else(|| ConfigError::invalid(section, option, "is required by the vmware store"))
    };
    let server_host = required("vmware_server_host")?;
    // A bare IPv6 address, as Glance takes it, is written bracketed in URLs and locations.
    let server_host = match server_host.parse::<std::net::Ipv6Addr>() {
        Ok(address) => format!("[{address}]"),
        Err(_) => server_host,
    };
    let username = required("vmware_server_username")?;
    // A password may begin or end with spaces: taken as written.
    let password = ini
        .get(section, "vmware_server_password")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ConfigError::invalid(
                section,
                "vmware_server_password",
                "is required by the vmware store",
            )
        })?
        .to_owned();
    // A multi-valued option, as in Glance: one datastore per occurrence (or per line).
    let mut datastores = Vec::new();
    for entry in ini
        .get_all(section, "vmware_datastores")
        .unwrap_or_default()
    {
        for item in entry.split('\n').map(str::trim).filter(|s| !s.is_empty()) {
            datastores.push(
                DatastoreSpec::parse(item)
                    .map_err(|why| ConfigError::invalid(section, "vmware_datastores", why))?,
            );
        }
    }
    if datastores.is_empty() {
        return Err(ConfigError::invalid(
            section,
            "vmware_datastores",
            "is required by the vmware store (datacenter_path:datastore_name[:weight], one per line)",
        ));
    }
    let insecure = match ini.get(section, "vmware_insecure") {
        Some(_) => parse_bool(ini, section, "vmware_insecure", false)?,
        None => parse_bool(ini, section, "vmware_api_insecure", false)?,
    };
    Ok(VmwareConfig {
        api_retry_count: parse_int(ini, section, "vmware_api_retry_count", 10, 1, 1000)? as u32,
        task_poll_interval: Duration::from_secs(parse_int(
            ini,
            section,
            "vmware_task_poll_interval",
            5,
            1,
            3600,
        )? as u64),
        image_dir: text("vmware_store_image_dir").unwrap_or_else(|| "/openstack_glance".to_owned()),
        ca_file: text("vmware_ca_file").map(PathBuf::from),
        insecure,
        password: Secret(password),
        ..VmwareConfig::new(id, &server_host, &username, "", datastores)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<VmwareConfig, ConfigError> {
        let ini = Ini::parse(text).expect("parses");
        vmware_config(&ini, "glance_store", "vmware")
    }

    const BASE: &str = "[glance_store]\nvmware_server_host = vc.example:8443\n\
        vmware_server_username = admin\nvmware_server_password = s3cret\n";

    #[test]
    fn glance_options_are_read() {
        let c = config(&format!(
            "{BASE}vmware_datastores = DC0:ds1:100\nvmware_datastores = Folder/DC1:ds2\n\
             vmware_api_retry_count = 3\nvmware_task_poll_interval = 2\n\
             vmware_store_image_dir = /images\nvmware_ca_file = /etc/ssl/vc.pem\n\
             vmware_api_insecure = true\n"
        ))
        .expect("valid");
        assert_eq!(c.server_host, "vc.example:8443");
        assert_eq!(
            (c.username.as_str(), c.password.0.as_str()),
            ("admin", "s3cret")
        );
        assert_eq!(c.datastores.len(), 2);
        assert_eq!(c.datastores[0].weight, 100);
        assert_eq!(c.datastores[1].datacenter, "Folder/DC1");
        assert_eq!(
            (c.api_retry_count, c.task_poll_interval),
            (3, Duration::from_secs(2))
        );
        assert_eq!(c.image_dir, "/images");
        assert_eq!(c.ca_file, Some(PathBuf::from("/etc/ssl/vc.pem")));
        assert!(c.insecure, "the deprecated name is read");
        let d = config(&format!("{BASE}vmware_datastores = DC0:ds1\n")).expect("valid");
        let v6 = BASE.replace("vc.example:8443", "fd00::1");
        let v6 = config(&format!("{v6}vmware_datastores = DC0:ds1\n")).expect("valid");
        assert_eq!(v6.server_host, "[fd00::1]");
        assert_eq!((d.api_retry_count, d.task_poll_interval.as_secs()), (10, 5));
        assert_eq!(
            (d.image_dir.as_str(), d.insecure),
            ("/openstack_glance", false)
        );
    }

    #[test]
    fn bad_options_name_themselves() {
        let option_of = |text: String| match config(&text) {
            Err(ConfigError::Invalid { option, .. }) => option,
            other => panic!("{other:?}"),
        };
        assert_eq!(option_of(BASE.to_owned()), "vmware_datastores");
        assert_eq!(
            option_of(format!("{BASE}vmware_datastores = ds\n")),
            "vmware_datastores"
        );
        assert_eq!(
            option_of(format!("{BASE}vmware_datastores = dc:ds:x\n")),
            "vmware_datastores"
        );
        assert_eq!(
            option_of(format!(
                "{BASE}vmware_datastores = dc:ds\nvmware_api_retry_count = 0\n"
            )),
            "vmware_api_retry_count"
        );
        assert_eq!(
            option_of(format!(
                "{BASE}vmware_datastores = dc:ds\nvmware_task_poll_interval = 0\n"
            )),
            "vmware_task_poll_interval"
        );
        assert_eq!(
            option_of("[glance_store]\nvmware_datastores = dc:ds\n".to_owned()),
            "vmware_server_host"
        );
    }
}
