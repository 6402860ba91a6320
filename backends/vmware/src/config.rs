//! The store's options, as Glance's `vmware_*` options give them.

use std::path::PathBuf;
use std::time::Duration;

use glint_store::Secret;

/// One entry of `vmware_datastores`: `datacenter_path:datastore_name[:weight]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatastoreSpec {
    pub datacenter: String,
    pub datastore: String,
    pub weight: i64,
}

impl DatastoreSpec {
    /// Reads an entry as Glance does: split on the last two colons (a datacenter path may hold
    /// colons), the weight optional and 0 when left out.
    pub fn parse(entry: &str) -> Result<DatastoreSpec, String> {
        let parts: Vec<&str> = entry.rsplitn(3, ':').map(str::trim).collect();
        let (datacenter, datastore, weight) = match parts.as_slice() {
            [weight, datastore, datacenter] => (*datacenter, *datastore, *weight),
            [datastore, datacenter] => (*datacenter, *datastore, ""),
            _ => {
                return Err(format!(
                    "{entry:?} is not of the form datacenter_path:datastore_name[:weight]"
                ))
            }
        };
        let weight = match weight {
            "" => 0,
            w => w
                .parse()
                .map_err(|_| format!("invalid weight {w:?} in {entry:?}"))?,
        };
        if datacenter.is_empty() || datastore.is_empty() {
            return Err(format!(
                "{entry:?} needs both a datacenter path and a datastore name"
            ));
        }
        Ok(DatastoreSpec {
            datacenter: datacenter.to_owned(),
            datastore: datastore.to_owned(),
            weight,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmwareConfig {
    /// The store's name (the `enabled_backends` id, or `vmware`).
    pub name: String,
    /// `vmware_server_host`: vCenter or ESXi, `host` or `host:port` (443 when left out).
    pub server_host: String,
    pub username: String,
    pub password: Secret,
    /// `vmware_api_retry_count` (10): attempts at a call that failed on the connection or
    /// an expired session.
    pub api_retry_count: u32,
    /// `vmware_task_poll_interval` (5 s): the longest wait between looks at a running task.
    pub task_poll_interval: Duration,
    /// `vmware_store_image_dir` (`/openstack_glance`).
    pub image_dir: String,
    /// `vmware_ca_file`: the authorities the server's certificate is checked against.
    pub ca_file: Option<PathBuf>,
    /// `vmware_insecure`: no certificate check (ignored when `ca_file` is set, as in Glance).
    pub insecure: bool,
    /// `vmware_datastores`; new images go to the one of highest weight with the most room.
    pub datastores: Vec<DatastoreSpec>,
}

impl VmwareConfig {
    /// Glance's defaults around the required options.
    pub fn new(
        name: &str,
        server_host: &str,
        username: &str,
        password: &str,
        datastores: Vec<DatastoreSpec>,
    ) -> VmwareConfig {
        VmwareConfig {
            name: name.to_owned(),
            server_host: server_host.to_owned(),
            username: username.to_owned(),
            password: Secret(password.to_owned()),
            api_retry_count: 10,
            task_poll_interval: Duration::from_secs(5),
            image_dir: "/openstack_glance".to_owned(),
            ca_file: None,
            insecure: false,
            datastores,
        }
    }

    /// The folder images are written to, as a datastore path (no leading or trailing `/`).
    pub(crate) fn image_dir(&self) -> &str {
        self.image_dir.trim_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datastore_entries_parse_as_glance_reads_them() {
        let spec = |dc: &str, ds: &str, weight| DatastoreSpec {
            datacenter: dc.to_owned(),
            datastore: ds.to_owned(),
            weight,
        };
        assert_eq!(
            DatastoreSpec::parse("DC0:LocalDS_0:100"),
            Ok(spec("DC0", "LocalDS_0", 100))
        );
        assert_eq!(
            DatastoreSpec::parse("DC0:LocalDS_0"),
            Ok(spec("DC0", "LocalDS_0", 0))
        );
        assert_eq!(
            DatastoreSpec::parse(" a:b : ds : -3 "),
            Ok(spec("a:b", "ds", -3))
        );
        assert_eq!(
            DatastoreSpec::parse("Folder/DC:ds:"),
            Ok(spec("Folder/DC", "ds", 0))
        );
        for bad in ["ds", ":ds:1", "dc::1", "dc:ds:heavy", ""] {
            assert!(DatastoreSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
