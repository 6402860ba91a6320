//! The librados and librbd functions the store calls, declared by hand from
//! `rados/librados.h` and `rbd/librbd.h` (Ceph 16.2; each has been stable since Nautilus).
//! Every call returns 0 (or a count) on success and a negative errno on failure.

use std::os::raw::{c_char, c_int, c_void};

pub(crate) type RadosT = *mut c_void;
pub(crate) type RadosIoctxT = *mut c_void;
pub(crate) type RbdImageT = *mut c_void;
pub(crate) type RbdImageOptionsT = *mut c_void;
pub(crate) type RbdCompletionT = *mut c_void;
pub(crate) type RbdCallbackT = Option<unsafe extern "C" fn(RbdCompletionT, *mut c_void)>;

/// `RBD_IMAGE_OPTION_ORDER`: log2 of the object size.
pub(crate) const RBD_IMAGE_OPTION_ORDER: c_int = 2;

#[repr(C)]
pub(crate) struct RbdImageSpec {
    pub(crate) id: *mut c_char,
    pub(crate) name: *mut c_char,
}

#[repr(C)]
pub(crate) struct RbdLinkedImageSpec {
    pub(crate) pool_id: i64,
    pub(crate) pool_name: *mut c_char,
    pub(crate) pool_namespace: *mut c_char,
    pub(crate) image_id: *mut c_char,
    pub(crate) image_name: *mut c_char,
    pub(crate) trash: bool,
}

#[repr(C)]
pub(crate) struct Timespec {
    pub(crate) tv_sec: libc::time_t,
    pub(crate) tv_nsec: libc::c_long,
}

extern "C" {
    pub(crate) fn rados_create2(
        cluster: *mut RadosT,
        clustername: *const c_char,
        name: *const c_char,
        flags: u64,
    ) -> c_int;
    pub(crate) fn rados_conf_read_file(cluster: RadosT, path: *const c_char) -> c_int;
    pub(crate) fn rados_conf_set(
        cluster: RadosT,
        option: *const c_char,
        value: *const c_char,
    ) -> c_int;
    pub(crate) fn rados_connect(cluster: RadosT) -> c_int;
    pub(crate) fn rados_cluster_fsid(cluster: RadosT, buf: *mut c_char, len: usize) -> c_int;
    pub(crate) fn rados_ioctx_create(
        cluster: RadosT,
        pool_name: *const c_char,
        ioctx: *mut RadosIoctxT,
    ) -> c_int;
    pub(crate) fn rados_ioctx_destroy(io: RadosIoctxT);
    pub(crate) fn rados_shutdown(cluster: RadosT);
    #[cfg(test)]
    pub(crate) fn rados_pool_create(cluster: RadosT, pool_name: *const c_char) -> c_int;
    #[cfg(test)]
    pub(crate) fn rados_pool_delete(cluster: RadosT, pool_name: *const c_char) -> c_int;

    #[cfg(test)]
    pub(crate) fn rbd_pool_init(io: RadosIoctxT, force: bool) -> c_int;
    pub(crate) fn rbd_image_options_create(opts: *mut RbdImageOptionsT);
    pub(crate) fn rbd_image_options_destroy(opts: RbdImageOptionsT);
    pub(crate) fn rbd_image_options_set_uint64(
        opts: RbdImageOptionsT,
        optname: c_int,
        optval: u64,
    ) -> c_int;
    pub(crate) fn rbd_create4(
        io: RadosIoctxT,
        name: *const c_char,
        size: u64,
        opts: RbdImageOptionsT,
    ) -> c_int;
    pub(crate) fn rbd_open(
        io: RadosIoctxT,
        name: *const c_char,
        image: *mut RbdImageT,
        snap_name: *const c_char,
    ) -> c_int;
    pub(crate) fn rbd_open_read_only(
        io: RadosIoctxT,
        name: *const c_char,
        image: *mut RbdImageT,
        snap_name: *const c_char,
    ) -> c_int;
    pub(crate) fn rbd_close(image: RbdImageT) -> c_int;
    pub(crate) fn rbd_flush(image: RbdImageT) -> c_int;
    pub(crate) fn rbd_aio_create_completion(
        cb_arg: *mut c_void,
        complete_cb: RbdCallbackT,
        c: *mut RbdCompletionT,
    ) -> c_int;
    pub(crate) fn rbd_aio_write2(
        image: RbdImageT,
        off: u64,
        len: usize,
        buf: *const c_char,
        c: RbdCompletionT,
        op_flags: c_int,
    ) -> c_int;
    pub(crate) fn rbd_aio_read2(
        image: RbdImageT,
        off: u64,
        len: usize,
        buf: *mut c_char,
        c: RbdCompletionT,
        op_flags: c_int,
    ) -> c_int;
    pub(crate) fn rbd_aio_wait_for_complete(c: RbdCompletionT) -> c_int;
    pub(crate) fn rbd_aio_get_return_value(c: RbdCompletionT) -> isize;
    pub(crate) fn rbd_aio_release(c: RbdCompletionT);
    pub(crate) fn rbd_resize(image: RbdImageT, size: u64) -> c_int;
    pub(crate) fn rbd_get_size(image: RbdImageT, size: *mut u64) -> c_int;
    pub(crate) fn rbd_snap_create(image: RbdImageT, snapname: *const c_char) -> c_int;
    pub(crate) fn rbd_snap_protect(image: RbdImageT, snap_name: *const c_char) -> c_int;
    pub(crate) fn rbd_snap_unprotect(image: RbdImageT, snap_name: *const c_char) -> c_int;
    pub(crate) fn rbd_snap_remove(image: RbdImageT, snapname: *const c_char) -> c_int;
    pub(crate) fn rbd_snap_set(image: RbdImageT, snapname: *const c_char) -> c_int;
    pub(crate) fn rbd_snap_exists(
        image: RbdImageT,
        snapname: *const c_char,
        exists: *mut bool,
    ) -> c_int;
    pub(crate) fn rbd_list_children3(
        image: RbdImageT,
        images: *mut RbdLinkedImageSpec,
        max_images: *mut usize,
    ) -> c_int;
    pub(crate) fn rbd_remove(io: RadosIoctxT, name: *const c_char) -> c_int;
    pub(crate) fn rbd_rename(
        src_io_ctx: RadosIoctxT,
        srcname: *const c_char,
        destname: *const c_char,
    ) -> c_int;
    pub(crate) fn rbd_trash_move(io: RadosIoctxT, name: *const c_char, delay: u64) -> c_int;
    pub(crate) fn rbd_list2(
        io: RadosIoctxT,
        images: *mut RbdImageSpec,
        max_images: *mut usize,
    ) -> c_int;
    pub(crate) fn rbd_image_spec_list_cleanup(images: *mut RbdImageSpec, num_images: usize);
    pub(crate) fn rbd_metadata_set(
        image: RbdImageT,
        key: *const c_char,
        value: *const c_char,
    ) -> c_int;
    pub(crate) fn rbd_metadata_get(
        image: RbdImageT,
        key: *const c_char,
        value: *mut c_char,
        val_len: *mut usize,
    ) -> c_int;
    pub(crate) fn rbd_get_create_timestamp(image: RbdImageT, timestamp: *mut Timespec) -> c_int;
    #[cfg(test)]
    pub(crate) fn rbd_clone(
        p_ioctx: RadosIoctxT,
        p_name: *const c_char,
        p_snapname: *const c_char,
        c_ioctx: RadosIoctxT,
        c_name: *const c_char,
        features: u64,
        c_order: *mut c_int,
    ) -> c_int;
}
