//! librados and librbd errnos as `StoreError` outcomes, decided in one place.

use glint_store::StoreError;

use crate::rados::Errno;

/// What `errno` from an operation on `what` (a location, an image) means to the caller.
pub(crate) fn store_error(store: &str, what: &str, errno: Errno) -> StoreError {
    match errno.0 {
        libc::ENOENT => StoreError::NotFound(what.to_owned()),
        libc::EEXIST => StoreError::AlreadyExists(what.to_owned()),
        libc::ENOSPC | libc::EDQUOT => StoreError::StorageFull {
            store: store.to_owned(),
        },
        libc::EBUSY => StoreError::InUse {
            location: what.to_owned(),
            why: "the image is open elsewhere or has clones".to_owned(),
        },
        // The cephx user may not do this in the pool (its caps), or the keyring is wrong.
        libc::EPERM | libc::EACCES => StoreError::Misconfigured {
            store: store.to_owned(),
            why: format!("Ceph refused the store's user for {what}: {errno}"),
        },
        libc::ETIMEDOUT | libc::ESHUTDOWN | libc::ENOTCONN | libc::ECONNREFUSED => {
            StoreError::Unavailable {
                store: store.to_owned(),
                retryable: true,
                source: format!("Ceph cluster: {errno}").into(),
            }
        }
        _ => StoreError::Backend {
            store: store.to_owned(),
            source: format!("{what}: {errno}").into(),
        },
    }
}
