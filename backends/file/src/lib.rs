//! The filesystem store: each image's data is one file, `<datadir>/<image id>`, addressed by
//! `file:///<datadir>/<image id>` as in Glance.

mod config;
mod error;
mod reader;
mod writer;

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use glint_store::{
    is_image_id, ByteRange, Capabilities, ImageReader, ImageWriter, Location, Store, StoreError,
    StoredData, WriteOptions,
};

pub use config::{DataDir, FileConfig};
use error::{join_error, read_error, write_error};
use writer::{FileWriter, TEMP_PREFIX};

#[derive(Debug)]
pub struct FileStore {
    config: FileConfig,
    /// Data directories, absolute, highest priority first.
    dirs: Vec<PathBuf>,
    /// Every spelling of the data directories a location may use: as configured (Glance wrote
    /// locations that way) and canonical (Glint writes those).
    known_dirs: Vec<PathBuf>,
    /// The spellings of each of `dirs`, in the same order.
    spellings: Vec<Vec<PathBuf>>,
}

impl FileStore {
    /// Validates the configuration and creates missing data directories.
    pub fn new(config: FileConfig) -> Result<FileStore, StoreError> {
        if config.datadirs.is_empty() {
            return Err(StoreError::Misconfigured {
                store: config.name.clone(),
                why: "no filesystem_store_datadir configured".to_owned(),
            });
        }
        let mut datadirs = config.datadirs.clone();
        datadirs.sort_by_key(|d| std::cmp::Reverse(d.priority));
        let mut dirs = Vec::new();
        let mut known_dirs = Vec::new();
        let mut spellings = Vec::new();
        for dir in &datadirs {
            std::fs::create_dir_all(&dir.path).map_err(|e| write_error(&config.name, e))?;
            let canonical =
                std::fs::canonicalize(&dir.path).map_err(|e| write_error(&config.name, e))?;
            let mut these = vec![canonical.clone()];
            if dir.path.is_absolute() {
                let configured: PathBuf = dir.path.components().collect();
                if configured != canonical {
                    these.push(configured);
                }
            }
            known_dirs.extend(these.iter().cloned());
            spellings.push(these);
            dirs.push(canonical);
        }
        Ok(FileStore {
            config,
            dirs,
            known_dirs,
            spellings,
        })
    }

    /// The data directories, highest priority first.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Removes temporary files older than `age` left by writers that never finished (a crash
    /// or kill). Returns how many were removed.
    fn sweep_partials(dirs: &[PathBuf], age: Duration) -> usize {
        let cutoff = SystemTime::now()
            .checked_sub(age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut removed = 0;
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let stale = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < cutoff);
                if name.to_string_lossy().starts_with(TEMP_PREFIX)
                    && stale
                    && std::fs::remove_file(entry.path()).is_ok()
                {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Every committed data file in the data directories, with its image id (the file name),
    /// its location and when it was last written, for the sweep of data no location names.
    /// Temporary files, files not named as an image id (the operator's, not Glint's) and
    /// anything that is not a regular file are left out.
    fn list_committed(spellings: &[Vec<PathBuf>]) -> Vec<StoredData> {
        let mut found = Vec::new();
        for names in spellings {
            let Some(dir) = names.first() else {
                continue;
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(metadata) = entry.metadata() else {
                    continue;
                };
                if !is_image_id(&name) || !metadata.is_file() {
                    continue;
                }
                found.push(StoredData {
                    location: Location::file(entry.path()),
                    aliases: names[1..]
                        .iter()
                        .map(|d| Location::file(d.join(&name)))
                        .collect(),
                    image_id: name,
                    modified: metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
        }
        found
    }

    /// The file behind `location`, which must lie directly in one of the data directories: a
    /// location row pointing elsewhere (`file:///etc/shadow`, `…/images/../x`) is never served
    /// or deleted. Decided on the text alone (no filesystem calls, so it is cheap and never
    /// blocks); files are then opened without following symbolic links.
    fn path_of(&self, location: &Location) -> Result<PathBuf, StoreError> {
        let invalid = || StoreError::InvalidLocation(location.to_string());
        let path = Path::new(location.file_path().ok_or_else(invalid)?);
        if !path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        {
            return Err(invalid());
        }
        let (parent, name) = (
            path.parent().ok_or_else(invalid)?,
            path.file_name().ok_or_else(invalid)?,
        );
        if !self.known_dirs.iter().any(|d| d == parent) || name.to_string_lossy().starts_with('.') {
            return Err(invalid());
        }
        Ok(path.to_owned())
    }
}

/// Free bytes for an unprivileged writer on the filesystem of `path`.
fn free_space(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` a writable statvfs.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled the structure.
    let stat = unsafe { stat.assume_init() };
    #[allow(
        clippy::useless_conversion,
        reason = "the field types differ between targets"
    )]
    Some(u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize)))
}

#[async_trait]
impl Store for FileStore {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            read_only: false,
            ranged_read: true,
            thin_provisioning: self.config.thin_provisioning,
            caller_accounts: false,
        }
    }

    fn owns(&self, location: &Location) -> bool {
        self.path_of(location).is_ok()
    }

    async fn writer(
        &self,
        image_id: &str,
        options: &WriteOptions,
    ) -> Result<Box<dyn ImageWriter>, StoreError> {
        let size_hint = options.size;
        if image_id.is_empty() || image_id.contains(['/', '\0']) || image_id.starts_with('.') {
            return Err(StoreError::InvalidLocation(image_id.to_owned()));
        }
        let dirs = self.dirs.clone();
        let (store, id) = (self.config.name.clone(), image_id.to_owned());
        let (thin, fsync, perm) = (
            self.config.thin_provisioning,
            self.config.fsync,
            self.config.file_perm,
        );
        let writer = tokio::task::spawn_blocking(move || {
            // The first directory (by priority) with room for the announced size.
            let dir = match size_hint {
                Some(size) => dirs
                    .iter()
                    .find(|d| free_space(d).is_none_or(|free| free >= size)),
                None => dirs.first(),
            }
            .ok_or_else(|| StoreError::StorageFull {
                store: store.clone(),
            })?;
            FileWriter::create(&store, dir, &id, thin, fsync, perm)
        })
        .await
        .map_err(|e| join_error(&self.config.name, e))??;
        Ok(Box::new(writer))
    }

    async fn reader(
        &self,
        location: &Location,
        range: Option<ByteRange>,
    ) -> Result<ImageReader, StoreError> {
        let path = self.path_of(location)?;
        reader::open(&self.config.name, &path, &location.to_string(), range).await
    }

    async fn size(&self, location: &Location) -> Result<u64, StoreError> {
        let path = self.path_of(location)?;
        let meta = tokio::fs::symlink_metadata(&path)
            .await
            .map_err(|e| read_error(&self.config.name, &location.to_string(), e))?;
        if !meta.is_file() {
            return Err(StoreError::InvalidLocation(location.to_string()));
        }
        Ok(meta.len())
    }

    async fn delete(&self, location: &Location) -> Result<(), StoreError> {
        let path = self.path_of(location)?;
        tokio::fs::remove_file(&path)
            .await
            .map_err(|e| read_error(&self.config.name, &location.to_string(), e))
    }

    async fn sweep_abandoned(&self, older_than: Duration) -> Result<usize, StoreError> {
        let dirs = self.dirs.clone();
        tokio::task::spawn_blocking(move || FileStore::sweep_partials(&dirs, older_than))
            .await
            .map_err(|e| join_error(&self.config.name, e))
    }

    async fn committed_data(&self) -> Result<Vec<StoredData>, StoreError> {
        let spellings = self.spellings.clone();
        tokio::task::spawn_blocking(move || FileStore::list_committed(&spellings))
            .await
            .map_err(|e| join_error(&self.config.name, e))
    }
}

#[cfg(test)]
mod tests;
