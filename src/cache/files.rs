//! The cache directory as Glance lays it out: complete files named by image id in the base
//! directory, files being written in `incomplete/`, failed ones in `invalid/` (Glint removes
//! them at once; older Glance nodes may have left some), and empty files in `queue/` naming
//! the images queued for prefetching.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::domain::ImageId;

#[derive(Debug, Clone)]
pub struct CacheDirs {
    pub base: PathBuf,
    pub incomplete: PathBuf,
    pub invalid: PathBuf,
    pub queue: PathBuf,
}

/// A regular file of one of the directories.
#[derive(Debug, Clone)]
pub struct CacheFile {
    pub name: String,
    pub size: u64,
    pub modified: SystemTime,
}

impl CacheDirs {
    /// The directories under `base`, made if missing.
    pub fn create(base: &Path) -> io::Result<CacheDirs> {
        let dirs = CacheDirs {
            base: base.to_owned(),
            incomplete: base.join("incomplete"),
            invalid: base.join("invalid"),
            queue: base.join("queue"),
        };
        for dir in [&dirs.incomplete, &dirs.invalid, &dirs.queue] {
            fs::create_dir_all(dir)?;
        }
        Ok(dirs)
    }

    pub fn complete(&self, id: &ImageId) -> PathBuf {
        self.base.join(id.as_str())
    }

    pub fn incomplete(&self, id: &ImageId) -> PathBuf {
        self.incomplete.join(id.as_str())
    }

    pub fn queued(&self, id: &ImageId) -> PathBuf {
        self.queue.join(id.as_str())
    }
}

/// The regular files of `dir` (Glance's `get_cache_files`: `*.db` files are not entries);
/// a directory that cannot be read holds none.
pub fn list(dir: &Path) -> Vec<CacheFile> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            let meta = entry.metadata().ok()?;
            (meta.is_file() && !name.ends_with(".db")).then(|| CacheFile {
                name,
                size: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            })
        })
        .collect()
}

/// Removes `path`; a file already gone is no error.
pub fn remove(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
