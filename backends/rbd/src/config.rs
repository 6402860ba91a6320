//! The RBD store's options, named as Glance names them (`rbd_store_*`).

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RbdConfig {
    /// The operator's name for the store.
    pub name: String,
    /// `rbd_store_pool` (images).
    pub pool: String,
    /// `rbd_store_user`: the cephx user (`client.<user>`); unset, librados's `client.admin`.
    pub user: Option<String>,
    /// `rbd_store_ceph_conf`: unset, librados's default search path (`/etc/ceph/ceph.conf`…).
    pub ceph_conf: Option<PathBuf>,
    /// `rbd_store_chunk_size` (8 MiB, in bytes): the object size of new images (rounded down
    /// to a power of two, 4 KiB to 32 MiB), and the largest write.
    pub chunk_size: u64,
    /// `rados_connect_timeout` (seconds): bounds connecting and each cluster operation;
    /// `None` (the option's -1) leaves librados's own limits (five minutes to connect). Glint
    /// reads an unset option as `DEFAULT_CONNECT_TIMEOUT`, where Glance means -1.
    pub connect_timeout: Option<u64>,
    /// `rbd_thin_provisioning` (false): chunks of zeros are not written.
    pub thin_provisioning: bool,
}

impl RbdConfig {
    /// log2 of the object size: `chunk_size` rounded down to a power of two, within what
    /// librbd accepts (orders 12 to 25).
    pub fn order(&self) -> u64 {
        u64::from(63 - self.chunk_size.max(1).leading_zeros()).clamp(12, 25)
    }
}

#[cfg(test)]
mod tests {
    use super::RbdConfig;

    #[test]
    fn orders_follow_the_chunk_size() {
        let order = |chunk_size| {
            RbdConfig {
                name: "rbd".into(),
                pool: "images".into(),
                user: None,
                ceph_conf: None,
                chunk_size,
                connect_timeout: None,
                thin_provisioning: false,
            }
            .order()
        };
        assert_eq!(order(8 << 20), 23);
        assert_eq!(order(10 << 20), 23);
        assert_eq!(order(1 << 20), 20);
        assert_eq!(order(64 << 20), 25);
        assert_eq!(order(1), 12);
    }
}
