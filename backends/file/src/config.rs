//! The filesystem store's options, as `[glance_store]` (or a backend's own group) names them.

use std::path::PathBuf;

/// One data directory and its priority (`filesystem_store_datadirs = /path:priority`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    pub path: PathBuf,
    pub priority: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileConfig {
    /// The operator's name for the store (`file` without multiple backends).
    pub name: String,
    /// Where image files live; new images go to the highest priority directory with room.
    pub datadirs: Vec<DataDir>,
    /// `filesystem_store_file_perm`: mode bits for committed files (Glance writes it as
    /// octal digits, e.g. 640); `None` leaves the process umask's result.
    pub file_perm: Option<u32>,
    /// `filesystem_thin_provisioning`: blocks of zeros become holes instead of writes.
    pub thin_provisioning: bool,
    /// `filesystem_store_fsync` (Glint): flush data and the directory entry to disk before
    /// the image becomes active, so that a crash never leaves an active image without data.
    pub fsync: bool,
}
