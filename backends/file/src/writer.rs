//! Writing an image file: data goes to a hidden temporary file in the target directory and
//! is renamed (hard-linked, so an existing image is never replaced) to its final name on
//! commit. A crash, or a writer dropped without commit or abort, leaves at most a temporary
//! file, which `sweep_abandoned` removes; never a truncated file under a live location.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use glint_store::{Chunk, ImageWriter, Location, StoreError, Stored};

use crate::error::{join_error, write_error};

/// Thin provisioning looks for zeros in blocks of this size (Glance's file chunk size).
const ZERO_BLOCK: usize = 64 * 1024;

/// Prefix of temporary files; the start-up sweep recognises them by it.
pub(crate) const TEMP_PREFIX: &str = ".glint-partial-";

pub(crate) struct FileWriter {
    store: String,
    /// `None` only while a blocking write owns it, or after commit/abort.
    file: Option<File>,
    temp_path: PathBuf,
    final_path: PathBuf,
    written: u64,
    thin_provisioning: bool,
    fsync: bool,
    file_perm: Option<u32>,
}

impl FileWriter {
    pub(crate) fn create(
        store: &str,
        dir: &Path,
        image_id: &str,
        thin_provisioning: bool,
        fsync: bool,
        file_perm: Option<u32>,
    ) -> Result<FileWriter, StoreError> {
        let final_path = dir.join(image_id);
        if final_path.exists() {
            return Err(StoreError::AlreadyExists(format!(
                "file://{}",
                final_path.display()
            )));
        }
        let temp_path = dir.join(format!(
            "{TEMP_PREFIX}{image_id}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
            .map_err(|e| write_error(store, e))?;
        Ok(FileWriter {
            store: store.to_owned(),
            file: Some(file),
            temp_path,
            final_path,
            written: 0,
            thin_provisioning,
            fsync,
            file_perm,
        })
    }

    fn take_file(&mut self) -> Result<File, StoreError> {
        self.file.take().ok_or_else(|| StoreError::Backend {
            store: self.store.clone(),
            source: "writer used after a failed write".into(),
        })
    }
}

/// Writes `chunk` at the file's position; with `thin`, all-zero blocks are skipped over
/// (a seek), leaving holes. Returns the bytes accounted for.
fn write_chunk(file: &mut File, chunk: &Chunk, thin: bool) -> std::io::Result<u64> {
    let mut total = 0u64;
    for frame in chunk.frames() {
        if !thin {
            file.write_all(frame)?;
        } else {
            for block in frame.chunks(ZERO_BLOCK) {
                if block.iter().all(|b| *b == 0) {
                    file.seek(SeekFrom::Current(block.len() as i64))?;
                } else {
                    file.write_all(block)?;
                }
            }
        }
        total += frame.len() as u64;
    }
    Ok(total)
}

#[async_trait]
impl ImageWriter for FileWriter {
    async fn write(&mut self, chunk: Chunk) -> Result<(), StoreError> {
        let mut file = self.take_file()?;
        let thin = self.thin_provisioning;
        let (file, result) = tokio::task::spawn_blocking(move || {
            let result = write_chunk(&mut file, &chunk, thin);
            (file, result)
        })
        .await
        .map_err(|e| join_error(&self.store, e))?;
        self.file = Some(file);
        self.written += result.map_err(|e| write_error(&self.store, e))?;
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<Stored, StoreError> {
        let file = self.take_file()?;
        let (temp, target) = (self.temp_path.clone(), self.final_path.clone());
        let (written, fsync, perm, store) =
            (self.written, self.fsync, self.file_perm, self.store.clone());
        let temp_path = temp.clone();
        let committed = tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            let fail = |e| write_error(&store, e);
            // Trailing holes do not extend the file by themselves.
            file.set_len(written).map_err(fail)?;
            if fsync {
                file.sync_all().map_err(fail)?;
            }
            if let Some(mode) = perm {
                std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))
                    .map_err(fail)?;
            }
            drop(file);
            // A hard link fails if the name exists, where a rename would replace the file.
            std::fs::hard_link(&temp, &target).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    StoreError::AlreadyExists(format!("file://{}", target.display()))
                }
                _ => fail(e),
            })?;
            // Past the link the data is visible: any failure must take it away again.
            let finish = || -> std::io::Result<()> {
                std::fs::remove_file(&temp)?;
                if fsync {
                    if let Some(dir) = target.parent() {
                        File::open(dir).and_then(|d| d.sync_all())?;
                    }
                }
                Ok(())
            };
            if let Err(e) = finish() {
                let _ = std::fs::remove_file(&target);
                return Err(fail(e));
            }
            Ok(())
        })
        .await
        .map_err(|e| join_error(&self.store, e))
        .and_then(|r| r);
        if let Err(e) = committed {
            // A failed commit leaves nothing: the temporary file goes with it.
            let _ = tokio::fs::remove_file(&temp_path).await;
            return Err(e);
        }
        Ok(Stored {
            location: Location::file(&self.final_path),
            size: self.written,
        })
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        self.file = None;
        let temp = self.temp_path.clone();
        let store = self.store.clone();
        let result = tokio::task::spawn_blocking(move || std::fs::remove_file(&temp))
            .await
            .map_err(|e| join_error(&store, e))?;
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(write_error(&self.store, e)),
        }
    }
}
