//! Maps filesystem errors to `StoreError` outcomes.

use std::io;

use glint_store::StoreError;

/// `ENOSPC`/`EDQUOT` → full, permission or read-only filesystem → write denied.
pub(crate) fn write_error(store: &str, error: io::Error) -> StoreError {
    match error.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => StoreError::StorageFull {
            store: store.to_owned(),
        },
        Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM) => StoreError::WriteDenied {
            store: store.to_owned(),
            source: Box::new(error),
        },
        _ => StoreError::Backend {
            store: store.to_owned(),
            source: Box::new(error),
        },
    }
}

pub(crate) fn read_error(store: &str, location: &str, error: io::Error) -> StoreError {
    match error.kind() {
        io::ErrorKind::NotFound => StoreError::NotFound(location.to_owned()),
        _ => StoreError::Backend {
            store: store.to_owned(),
            source: Box::new(error),
        },
    }
}

pub(crate) fn join_error(store: &str, error: tokio::task::JoinError) -> StoreError {
    StoreError::Backend {
        store: store.to_owned(),
        source: Box::new(error),
    }
}
