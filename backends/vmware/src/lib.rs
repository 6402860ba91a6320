//! The VMware datastore store (`vsphere://…`): each image one file on a vSphere datastore,
//! written and read through the server's datastore file interface
//! (`https://host/folder/<path>?dcPath=…&dsName=…`) with a vSphere API session's cookie, and
//! moved and deleted through the file manager's tasks, as Glance's `vmware` driver does.
//!
//! Unlike Glance's driver, data is first written under a temporary name beside its final one
//! and moved into place at commit without overwriting (`MoveDatastoreFile_Task`, `force`
//! false): a cut upload never shows under an image's location, and two writers of one image
//! cannot both win.

mod config;
mod datastore;
#[cfg(any(test, feature = "lab"))]
pub mod lab;
mod reader;
mod vim;
mod writer;
mod xml;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use glint_store::net::{client, https_connector, unpooled_client};
use glint_store::{
    is_image_id, ByteRange, ImageReader, ImageWriter, Location, Store, StoreError, StoredData,
    VsphereLocation, WriteOptions,
};
use tokio::sync::Mutex;

pub use config::{DatastoreSpec, VmwareConfig};
pub use glint_store::Secret;

use datastore::{Inventory, Target};
use vim::{CallError, HttpClient, Vim};

/// The suffix of data still being written: `<image id>.<random>.partial`.
const PARTIAL: &str = ".partial";

#[derive(Debug, Clone)]
pub struct VmwareStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: VmwareConfig,
    pub(crate) inventory: Inventory,
    /// Reads, sizes and the SOAP calls.
    pub(crate) http: HttpClient,
    /// Uploads: a streamed body cannot be sent again on a pooled connection found closed.
    pub(crate) upload: HttpClient,
    /// Datastores whose image folder is known to exist.
    folders_made: Mutex<HashSet<String>>,
}

impl VmwareStore {
    /// Checks the options; the server is first contacted on use, so that a vCenter that is
    /// down does not keep Glint from starting.
    pub fn new(config: VmwareConfig) -> Result<VmwareStore, StoreError> {
        let misconfigured = |why: String| StoreError::Misconfigured {
            store: config.name.clone(),
            why,
        };
        if config.server_host.trim().is_empty() {
            return Err(misconfigured("vmware_server_host is required".to_owned()));
        }
        if config.username.is_empty() || config.password.0.is_empty() {
            return Err(misconfigured(
                "vmware_server_username and vmware_server_password are required".to_owned(),
            ));
        }
        if config.datastores.is_empty() {
            return Err(misconfigured(
                "vmware_datastores names no datastore".to_owned(),
            ));
        }
        if config.api_retry_count == 0 {
            return Err(misconfigured(
                "vmware_api_retry_count should be greater than zero".to_owned(),
            ));
        }
        if config.task_poll_interval.is_zero() {
            return Err(misconfigured(
                "vmware_task_poll_interval should be greater than zero".to_owned(),
            ));
        }
        // The server's address and the image folder must make valid locations.
        let probe = &config.datastores[0];
        VsphereLocation::new(
            &config.server_host,
            config.image_dir(),
            "00000000-0000-0000-0000-000000000000",
            &probe.datacenter,
            &probe.datastore,
        )
        .map_err(|_| {
            misconfigured(format!(
                "vmware_server_host {:?} and vmware_store_image_dir {:?} do not make a location",
                config.server_host, config.image_dir
            ))
        })?;
        // As Glance: a CA file is used when given, else `vmware_insecure` decides.
        let insecure = config.insecure && config.ca_file.is_none();
        let connector =
            || https_connector(config.ca_file.as_deref(), insecure).map_err(misconfigured);
        let http = client(connector()?);
        let upload = unpooled_client(connector()?);
        let vim = Vim::new(&config, http.clone());
        Ok(VmwareStore {
            shared: Arc::new(Shared {
                inventory: Inventory::new(&config, vim),
                config,
                http,
                upload,
                folders_made: Mutex::new(HashSet::new()),
            }),
        })
    }
}

impl Shared {
    pub(crate) fn name(&self) -> &str {
        &self.config.name
    }

    /// The location of `file` in the image folder of `target`.
    pub(crate) fn location_in(
        &self,
        target: &Target,
        file: &str,
    ) -> Result<VsphereLocation, StoreError> {
        VsphereLocation::new(
            &self.config.server_host,
            self.config.image_dir(),
            file,
            &target.spec.datacenter,
            &target.spec.datastore,
        )
    }

    fn owned<'a>(&self, location: &'a Location) -> Result<&'a VsphereLocation, StoreError> {
        match location {
            Location::Vsphere(l) if l.host().eq_ignore_ascii_case(&self.config.server_host) => {
                Ok(l)
            }
            other => Err(StoreError::InvalidLocation(other.to_string())),
        }
    }

    /// The datastore, of highest weight first, with the most free space, if that is enough for
    /// `size` bytes: Glance's choice.
    async fn choose(&self, size: u64) -> Result<Target, StoreError> {
        let (targets, free) = self
            .inventory
            .with_targets(|targets| async move {
                let free = self.inventory.free_space(&targets).await?;
                Ok::<_, CallError>((targets, free))
            })
            .await?;
        let mut weights: Vec<i64> = targets.iter().map(|t| t.spec.weight).collect();
        weights.sort_unstable_by(|a, b| b.cmp(a));
        weights.dedup();
        for weight in weights {
            let best = targets
                .iter()
                .zip(&free)
                .filter(|(t, _)| t.spec.weight == weight)
                .fold(None::<(&Target, u64)>, |best, (t, &f)| match best {
                    Some((_, most)) if most >= f => best,
                    _ => Some((t, f)),
                });
            if let Some((target, room)) = best {
                if room > 0 && room >= size {
                    return Ok(target.clone());
                }
            }
        }
        Err(StoreError::StorageFull {
            store: self.name().to_owned(),
        })
    }

    /// Makes sure the image folder exists on `target` (once per datastore and process).
    async fn ensure_folder(&self, target: &Target) -> Result<(), StoreError> {
        let key = format!("{}:{}", target.spec.datacenter, target.spec.datastore);
        if self.folders_made.lock().await.contains(&key) {
            return Ok(());
        }
        let folder = format!("[{}] {}", target.spec.datastore, self.config.image_dir());
        self.inventory
            .make_directory(&target.datacenter, &folder)
            .await
            .map_err(|e| e.into_store(self.name()))?;
        self.folders_made.lock().await.insert(key);
        Ok(())
    }

    /// The files of the image folder on every configured datastore.
    async fn image_files(&self) -> Result<Vec<(Target, datastore::FileEntry)>, StoreError> {
        let folder = self.config.image_dir().to_owned();
        self.inventory
            .with_targets(|targets| {
                let folder = folder.clone();
                async move {
                    let mut out = Vec::new();
                    for target in targets.iter() {
                        let path = format!("[{}] {folder}", target.spec.datastore);
                        for file in self.inventory.list(target, &path).await? {
                            if !file.folder {
                                out.push((target.clone(), file));
                            }
                        }
                    }
                    Ok(out)
                }
            })
            .await
    }
}

#[async_trait]
impl Store for VmwareStore {
    fn name(&self) -> &str {
        self.shared.name()
    }

    fn capabilities(&self) -> glint_store::Capabilities {
        glint_store::Capabilities {
            ranged_read: true,
            ..Default::default()
        }
    }

    fn owns(&self, location: &Location) -> bool {
        self.shared.owned(location).is_ok()
    }

    fn write_buffer(&self, options: &WriteOptions) -> Result<u64, StoreError> {
        Ok(writer::BUFFER.min(options.memory))
    }

    async fn writer(
        &self,
        image_id: &str,
        options: &WriteOptions,
    ) -> Result<Box<dyn ImageWriter>, StoreError> {
        if !is_image_id(image_id) {
            return Err(StoreError::InvalidLocation(image_id.to_owned()));
        }
        // Data an interrupted write committed but nobody recorded, on any of the datastores:
        // said at once, naming it, so that a copy can verify and record it.
        for target in self.shared.inventory.targets().await?.iter() {
            let existing = self.shared.location_in(target, image_id)?;
            match reader::size(&self.shared, &existing).await {
                Ok(_) => return Err(StoreError::AlreadyExists(Location::Vsphere(existing).uri())),
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let target = self.shared.choose(options.size.unwrap_or(0)).await?;
        self.shared.ensure_folder(&target).await?;
        writer::open(&self.shared, target, image_id, options.size).await
    }

    async fn reader(
        &self,
        location: &Location,
        range: Option<ByteRange>,
    ) -> Result<ImageReader, StoreError> {
        let location = self.shared.owned(location)?;
        reader::open(&self.shared, location, range).await
    }

    async fn size(&self, location: &Location) -> Result<u64, StoreError> {
        let location = self.shared.owned(location)?;
        reader::size(&self.shared, location).await
    }

    async fn delete(&self, location: &Location) -> Result<(), StoreError> {
        let vsphere = self.shared.owned(location)?;
        let datacenter = match vsphere.datacenter() {
            Some(path) => Some(self.shared.inventory.datacenter(path).await?),
            None => None,
        };
        match self
            .shared
            .inventory
            .delete_file(datacenter.as_ref(), &vsphere.datastore_path())
            .await
        {
            Ok(()) => Ok(()),
            Err(CallError::Fault(fault)) if fault.is("FileNotFound") => {
                Err(StoreError::NotFound(location.to_string()))
            }
            Err(e) => Err(e.into_store(self.name())),
        }
    }

    async fn sweep_abandoned(&self, older_than: Duration) -> Result<usize, StoreError> {
        let cutoff = SystemTime::now()
            .checked_sub(older_than)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut removed = 0;
        for (target, file) in self.shared.image_files().await? {
            let ours = file.name.ends_with(PARTIAL)
                && file.name.get(..36).is_some_and(is_image_id)
                && file.name.as_bytes().get(36) == Some(&b'.');
            if !ours || file.modified > cutoff {
                continue;
            }
            let path = format!(
                "[{}] {}/{}",
                target.spec.datastore,
                self.shared.config.image_dir(),
                file.name
            );
            match self
                .shared
                .inventory
                .delete_file(Some(&target.datacenter), &path)
                .await
            {
                Ok(()) => removed += 1,
                Err(CallError::Fault(fault)) if fault.is("FileNotFound") => {}
                Err(e) => return Err(e.into_store(self.name())),
            }
        }
        Ok(removed)
    }

    async fn committed_data(&self) -> Result<Vec<StoredData>, StoreError> {
        let mut out = Vec::new();
        for (target, file) in self.shared.image_files().await? {
            if !is_image_id(&file.name) {
                continue;
            }
            out.push(StoredData {
                location: Location::Vsphere(self.shared.location_in(&target, &file.name)?),
                image_id: file.name,
                aliases: Vec::new(),
                modified: file.modified,
            });
        }
        Ok(out)
    }
}
