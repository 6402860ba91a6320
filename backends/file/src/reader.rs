//! Opening committed files for reading, whole or a range.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use glint_store::{ByteRange, ImageReader, ReaderBody, StoreError};

use crate::error::{join_error, read_error};

/// Opens `path` and clamps `range` to its length.
pub(crate) async fn open(
    store: &str,
    path: &Path,
    location: &str,
    range: Option<ByteRange>,
) -> Result<ImageReader, StoreError> {
    let path = path.to_owned();
    let (store_name, location_text) = (store.to_owned(), location.to_owned());
    tokio::task::spawn_blocking(move || {
        // A symbolic link planted in a data directory must not expose what it points to.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => StoreError::InvalidLocation(location_text.clone()),
                _ => read_error(&store_name, &location_text, e),
            })?;
        let meta = file
            .metadata()
            .map_err(|e| read_error(&store_name, &location_text, e))?;
        if !meta.is_file() {
            return Err(StoreError::InvalidLocation(location_text));
        }
        let len = meta.len();
        let range = match range {
            Some(r) => ByteRange {
                start: r.start.min(len),
                end: r.end.min(len),
            },
            None => ByteRange { start: 0, end: len },
        };
        Ok(ImageReader {
            stored_size: len,
            range,
            body: ReaderBody::File(file),
        })
    })
    .await
    .map_err(|e| join_error(store, e))?
}
