//! Safe handles over librados and librbd: a connected cluster, a pool's I/O context, an open
//! image. Each closes what it holds when dropped, and owns (by reference count) what it was
//! opened from, so a handle never outlives its parent. All calls block: they run on
//! blocking threads, never on the async workers.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::path::Path;
use std::ptr;
use std::sync::Arc;

use crate::ffi;

/// A failed call: the positive errno librados or librbd returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Errno(pub(crate) i32);

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (errno {})",
            std::io::Error::from_raw_os_error(self.0),
            self.0
        )
    }
}

fn check(code: c_int) -> Result<c_int, Errno> {
    if code < 0 {
        Err(Errno(-code))
    } else {
        Ok(code)
    }
}

/// A C string; text with a NUL cannot name anything in Ceph.
fn cstr(text: &str) -> Result<CString, Errno> {
    CString::new(text).map_err(|_| Errno(libc::EINVAL))
}

/// A connected cluster handle (thread-safe in librados).
pub(crate) struct Cluster {
    handle: ffi::RadosT,
    /// Held while an image is opened or closed. librbd 16 shares state between the images of
    /// a cluster handle that an open racing a close may find freed (seen here as aborts in
    /// `rbd_open_read_only`); one at a time costs little, as both take milliseconds.
    lifecycle: std::sync::Mutex<()>,
}

// SAFETY: a librados cluster handle may be used from any thread once connected.
unsafe impl Send for Cluster {}
unsafe impl Sync for Cluster {}

impl Cluster {
    /// Connects as `client.<user>` (`client.admin` without one), reading `conf` (or librados's
    /// default search path) and bounding the connection and every operation by `timeout`
    /// seconds when given.
    pub(crate) fn connect(
        user: Option<&str>,
        conf: Option<&Path>,
        timeout: Option<u64>,
    ) -> Result<Cluster, Errno> {
        let name = cstr(&format!("client.{}", user.unwrap_or("admin")))?;
        let cluster_name = cstr("ceph")?;
        let mut handle: ffi::RadosT = ptr::null_mut();
        // SAFETY: out-pointer to a handle; the strings live across the call.
        check(unsafe { ffi::rados_create2(&mut handle, cluster_name.as_ptr(), name.as_ptr(), 0) })?;
        let cluster = Cluster {
            handle,
            lifecycle: std::sync::Mutex::new(()),
        };
        let conf = conf.map(|p| cstr(&p.to_string_lossy())).transpose()?;
        // SAFETY: a created handle; NULL means the default search path.
        check(unsafe {
            ffi::rados_conf_read_file(
                cluster.handle,
                conf.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
            )
        })?;
        if let Some(secs) = timeout {
            let value = cstr(&secs.to_string())?;
            for option in [
                "rados_osd_op_timeout",
                "rados_mon_op_timeout",
                "client_mount_timeout",
            ] {
                let option = cstr(option)?;
                // SAFETY: a created, unconnected handle; both strings live across the call.
                check(unsafe {
                    ffi::rados_conf_set(cluster.handle, option.as_ptr(), value.as_ptr())
                })?;
            }
        }
        // SAFETY: a configured handle.
        check(unsafe { ffi::rados_connect(cluster.handle) })?;
        Ok(cluster)
    }

    /// The cluster's fsid, as locations name it.
    pub(crate) fn fsid(&self) -> Result<String, Errno> {
        let mut buf = [0 as c_char; 64];
        // SAFETY: the buffer is larger than the 37 bytes librados writes.
        check(unsafe { ffi::rados_cluster_fsid(self.handle, buf.as_mut_ptr(), buf.len()) })?;
        // SAFETY: librados wrote a NUL-terminated string into the buffer.
        Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned())
    }

    pub(crate) fn ioctx(self: &Arc<Self>, pool: &str) -> Result<Arc<IoCtx>, Errno> {
        let pool = cstr(pool)?;
        let mut handle: ffi::RadosIoctxT = ptr::null_mut();
        // SAFETY: a connected cluster; out-pointer to the context.
        check(unsafe { ffi::rados_ioctx_create(self.handle, pool.as_ptr(), &mut handle) })?;
        Ok(Arc::new(IoCtx {
            handle,
            cluster: self.clone(),
        }))
    }

    /// Creates a pool and initialises it for RBD (tests).
    #[cfg(test)]
    pub(crate) fn create_rbd_pool(self: &Arc<Self>, pool: &str) -> Result<(), Errno> {
        let name = cstr(pool)?;
        // SAFETY: a connected cluster and a NUL-terminated name.
        match check(unsafe { ffi::rados_pool_create(self.handle, name.as_ptr()) }) {
            Ok(_) | Err(Errno(libc::EEXIST)) => {}
            Err(e) => return Err(e),
        }
        let io = self.ioctx(pool)?;
        // SAFETY: an open context.
        check(unsafe { ffi::rbd_pool_init(io.handle, false) })?;
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn delete_pool(&self, pool: &str) -> Result<(), Errno> {
        let name = cstr(pool)?;
        // SAFETY: a connected cluster and a NUL-terminated name.
        check(unsafe { ffi::rados_pool_delete(self.handle, name.as_ptr()) }).map(|_| ())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SAFETY: the handle was created by rados_create2 and is not used after this.
        unsafe { ffi::rados_shutdown(self.handle) }
    }
}

/// A pool's I/O context.
pub(crate) struct IoCtx {
    handle: ffi::RadosIoctxT,
    cluster: Arc<Cluster>,
}

// SAFETY: librados I/O contexts are thread-safe for the operations used here.
unsafe impl Send for IoCtx {}
unsafe impl Sync for IoCtx {}

impl Drop for IoCtx {
    fn drop(&mut self) {
        // SAFETY: created by rados_ioctx_create; every image opened from it holds an Arc to it.
        unsafe { ffi::rados_ioctx_destroy(self.handle) }
    }
}

impl IoCtx {
    /// Creates image `name` of `size` bytes, objects of 2^`order` bytes, format 2 with the
    /// cluster's default features (layering among them, so it can be cloned).
    pub(crate) fn create(&self, name: &str, size: u64, order: u64) -> Result<(), Errno> {
        let name = cstr(name)?;
        let mut options: ffi::RbdImageOptionsT = ptr::null_mut();
        // SAFETY: out-pointer; the options are destroyed below on every path.
        unsafe { ffi::rbd_image_options_create(&mut options) };
        // SAFETY: valid options and context; the name lives across the calls.
        let result = check(unsafe {
            ffi::rbd_image_options_set_uint64(options, ffi::RBD_IMAGE_OPTION_ORDER, order)
        })
        .and_then(|_| {
            check(unsafe { ffi::rbd_create4(self.handle, name.as_ptr(), size, options) })
        });
        // SAFETY: created above, not used after.
        unsafe { ffi::rbd_image_options_destroy(options) };
        result.map(|_| ())
    }

    /// Opens image `name` (at snapshot `snap` if given), read-only or not.
    pub(crate) fn open(
        self: &Arc<Self>,
        name: &str,
        snap: Option<&str>,
        read_only: bool,
    ) -> Result<Image, Errno> {
        let name = cstr(name)?;
        let snap = snap.map(cstr).transpose()?;
        let snap_ptr = snap.as_ref().map_or(ptr::null(), |s| s.as_ptr());
        let mut handle: ffi::RbdImageT = ptr::null_mut();
        let _one_at_a_time = self
            .cluster
            .lifecycle
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // SAFETY: an open context, NUL-terminated strings, out-pointer to the image.
        check(unsafe {
            if read_only {
                ffi::rbd_open_read_only(self.handle, name.as_ptr(), &mut handle, snap_ptr)
            } else {
                ffi::rbd_open(self.handle, name.as_ptr(), &mut handle, snap_ptr)
            }
        })?;
        Ok(Image {
            handle,
            _io: self.clone(),
        })
    }

    pub(crate) fn remove(&self, name: &str) -> Result<(), Errno> {
        let name = cstr(name)?;
        // SAFETY: an open context and a NUL-terminated name.
        check(unsafe { ffi::rbd_remove(self.handle, name.as_ptr()) }).map(|_| ())
    }

    pub(crate) fn rename(&self, from: &str, to: &str) -> Result<(), Errno> {
        let (from, to) = (cstr(from)?, cstr(to)?);
        // SAFETY: an open context and NUL-terminated names.
        check(unsafe { ffi::rbd_rename(self.handle, from.as_ptr(), to.as_ptr()) }).map(|_| ())
    }

    pub(crate) fn trash_move(&self, name: &str) -> Result<(), Errno> {
        let name = cstr(name)?;
        // SAFETY: an open context and a NUL-terminated name.
        check(unsafe { ffi::rbd_trash_move(self.handle, name.as_ptr(), 0) }).map(|_| ())
    }

    /// The names of the pool's images.
    pub(crate) fn list(&self) -> Result<Vec<String>, Errno> {
        let mut capacity = 64usize;
        loop {
            let mut specs: Vec<ffi::RbdImageSpec> = (0..capacity)
                .map(|_| ffi::RbdImageSpec {
                    id: ptr::null_mut(),
                    name: ptr::null_mut(),
                })
                .collect();
            let mut count = capacity;
            // SAFETY: `specs` has room for `count` entries; librbd sets `count`.
            let result = unsafe { ffi::rbd_list2(self.handle, specs.as_mut_ptr(), &mut count) };
            if result == -libc::ERANGE {
                capacity = count.max(capacity * 2);
                continue;
            }
            check(result)?;
            let names = specs[..count]
                .iter()
                .filter(|s| !s.name.is_null())
                // SAFETY: librbd filled these entries with NUL-terminated strings.
                .map(|s| {
                    unsafe { CStr::from_ptr(s.name) }
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            // SAFETY: frees exactly the `count` entries librbd filled.
            unsafe { ffi::rbd_image_spec_list_cleanup(specs.as_mut_ptr(), count) };
            return Ok(names);
        }
    }

    /// Clones `parent@snap` into `child` in this pool (tests: a copy-on-write user).
    #[cfg(test)]
    pub(crate) fn clone_image(&self, parent: &str, snap: &str, child: &str) -> Result<(), Errno> {
        let (parent, snap, child) = (cstr(parent)?, cstr(snap)?, cstr(child)?);
        let mut order: c_int = 0;
        // SAFETY: the same open context as parent and child; NUL-terminated names.
        check(unsafe {
            ffi::rbd_clone(
                self.handle,
                parent.as_ptr(),
                snap.as_ptr(),
                self.handle,
                child.as_ptr(),
                1,
                &mut order,
            )
        })
        .map(|_| ())
    }
}

/// An open image.
pub(crate) struct Image {
    handle: ffi::RbdImageT,
    _io: Arc<IoCtx>,
}

// SAFETY: an image handle is used by one thread at a time (it moves between blocking tasks).
unsafe impl Send for Image {}

impl Drop for Image {
    fn drop(&mut self) {
        let _one_at_a_time = self
            ._io
            .cluster
            .lifecycle
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // SAFETY: opened by rbd_open*, not used after this.
        unsafe { ffi::rbd_close(self.handle) };
    }
}

/// A read or write in flight, holding its buffer until librbd is done with it.
pub(crate) struct AioOp {
    completion: ffi::RbdCompletionT,
    data: Vec<u8>,
    waited: bool,
}

// SAFETY: the completion and the buffer move with the operation between threads; librbd
// signals completion from its own threads, and only `wait` reads the outcome.
unsafe impl Send for AioOp {}

impl AioOp {
    /// Waits for the operation; returns the bytes it moved (librbd answers 0 for a whole
    /// write) and gives the buffer back.
    pub(crate) fn wait(mut self) -> Result<(usize, Vec<u8>), Errno> {
        // SAFETY: a submitted completion, waited for once.
        unsafe { ffi::rbd_aio_wait_for_complete(self.completion) };
        self.waited = true;
        // SAFETY: completed above.
        let moved = unsafe { ffi::rbd_aio_get_return_value(self.completion) };
        if moved < 0 {
            return Err(Errno(-(moved as i32)));
        }
        Ok((moved as usize, std::mem::take(&mut self.data)))
    }

    /// A read's `wait`: the bytes librbd read, at most the buffer's capacity.
    pub(crate) fn wait_read(self) -> Result<Vec<u8>, Errno> {
        let (read, mut buffer) = self.wait()?;
        let read = read.min(buffer.capacity());
        // SAFETY: librbd wrote `read` bytes from the start of the buffer (its capacity was
        // the length asked for), so they are initialised.
        unsafe { buffer.set_len(read) };
        Ok(buffer)
    }

    /// A write's `wait`: all of its bytes written.
    pub(crate) fn wait_written(self) -> Result<Vec<u8>, Errno> {
        let len = self.data.len();
        let (written, buffer) = self.wait()?;
        if written != len && written != 0 {
            return Err(Errno(libc::EIO));
        }
        Ok(buffer)
    }
}

impl Drop for AioOp {
    fn drop(&mut self) {
        // The buffer must outlive librbd's use of it.
        if !self.waited {
            // SAFETY: a submitted completion not waited for yet.
            unsafe { ffi::rbd_aio_wait_for_complete(self.completion) };
        }
        // SAFETY: created by rbd_aio_create_completion, released once.
        unsafe { ffi::rbd_aio_release(self.completion) };
    }
}

impl Image {
    /// Starts writing `data` at `offset` and returns at once; the operation owns the buffer
    /// until it completes (`AioOp::wait_written`, or when dropped).
    pub(crate) fn write_async(&self, offset: u64, data: Vec<u8>) -> Result<AioOp, Errno> {
        let len = data.len();
        self.submit(offset, data, len, true)
    }

    /// Starts reading `len` bytes at `offset` into a new buffer, left uninitialised for
    /// librbd to fill (zeroing 4 MiB per read cost a sixth of a download's CPU); only the
    /// bytes it reports are kept (`AioOp::wait_read`).
    pub(crate) fn read_async(&self, offset: u64, len: usize) -> Result<AioOp, Errno> {
        self.submit(offset, Vec::with_capacity(len), len, false)
    }

    fn submit(&self, offset: u64, data: Vec<u8>, len: usize, write: bool) -> Result<AioOp, Errno> {
        let mut completion: ffi::RbdCompletionT = ptr::null_mut();
        // SAFETY: out-pointer; no callback.
        check(unsafe { ffi::rbd_aio_create_completion(ptr::null_mut(), None, &mut completion) })?;
        let mut op = AioOp {
            completion,
            data,
            waited: false,
        };
        // SAFETY: the buffer lives in `op` until the completion is waited for; the image
        // outlives the operation (every one is waited for before the image is closed).
        let submitted = check(unsafe {
            if write {
                ffi::rbd_aio_write2(
                    self.handle,
                    offset,
                    len,
                    op.data.as_ptr().cast(),
                    op.completion,
                    0,
                )
            } else {
                ffi::rbd_aio_read2(
                    self.handle,
                    offset,
                    len,
                    op.data.as_mut_ptr().cast(),
                    op.completion,
                    0,
                )
            }
        });
        if let Err(e) = submitted {
            // Never submitted: nothing to wait for.
            op.waited = true;
            return Err(e);
        }
        Ok(op)
    }

    pub(crate) fn flush(&self) -> Result<(), Errno> {
        // SAFETY: an open image.
        check(unsafe { ffi::rbd_flush(self.handle) }).map(|_| ())
    }

    pub(crate) fn resize(&self, size: u64) -> Result<(), Errno> {
        // SAFETY: an open image.
        check(unsafe { ffi::rbd_resize(self.handle, size) }).map(|_| ())
    }

    pub(crate) fn size(&self) -> Result<u64, Errno> {
        let mut size = 0u64;
        // SAFETY: an open image; out-pointer.
        check(unsafe { ffi::rbd_get_size(self.handle, &mut size) })?;
        Ok(size)
    }

    fn with_name(
        &self,
        name: &str,
        call: unsafe extern "C" fn(ffi::RbdImageT, *const c_char) -> c_int,
    ) -> Result<(), Errno> {
        let name = cstr(name)?;
        // SAFETY: an open image and a NUL-terminated name; `call` is one of librbd's
        // snapshot functions taking exactly these.
        check(unsafe { call(self.handle, name.as_ptr()) }).map(|_| ())
    }

    pub(crate) fn snap_create(&self, snap: &str) -> Result<(), Errno> {
        self.with_name(snap, ffi::rbd_snap_create)
    }

    pub(crate) fn snap_protect(&self, snap: &str) -> Result<(), Errno> {
        self.with_name(snap, ffi::rbd_snap_protect)
    }

    pub(crate) fn snap_unprotect(&self, snap: &str) -> Result<(), Errno> {
        self.with_name(snap, ffi::rbd_snap_unprotect)
    }

    pub(crate) fn snap_remove(&self, snap: &str) -> Result<(), Errno> {
        self.with_name(snap, ffi::rbd_snap_remove)
    }

    pub(crate) fn snap_exists(&self, snap: &str) -> Result<bool, Errno> {
        let name = cstr(snap)?;
        let mut exists = false;
        // SAFETY: an open image, a NUL-terminated name, out-pointer.
        check(unsafe { ffi::rbd_snap_exists(self.handle, name.as_ptr(), &mut exists) })?;
        Ok(exists)
    }

    /// How many images are cloned from snapshot `snap` (in any pool, trashed ones included).
    pub(crate) fn children_of(&self, snap: &str) -> Result<usize, Errno> {
        self.with_name(snap, ffi::rbd_snap_set)?;
        let mut count = 0usize;
        // SAFETY: with no room, librbd only reports how many there are (-ERANGE) or 0.
        let result = unsafe { ffi::rbd_list_children3(self.handle, ptr::null_mut(), &mut count) };
        // Back to the head, whatever the listing said.
        // SAFETY: NULL selects the head.
        let back = check(unsafe { ffi::rbd_snap_set(self.handle, ptr::null()) });
        if result == -libc::ERANGE {
            back?;
            return Ok(count);
        }
        check(result)?;
        back?;
        Ok(0)
    }

    pub(crate) fn metadata_set(&self, key: &str, value: &str) -> Result<(), Errno> {
        let (key, value) = (cstr(key)?, cstr(value)?);
        // SAFETY: an open image and NUL-terminated strings.
        check(unsafe { ffi::rbd_metadata_set(self.handle, key.as_ptr(), value.as_ptr()) })
            .map(|_| ())
    }

    pub(crate) fn metadata_get(&self, key: &str) -> Result<Option<String>, Errno> {
        let key = cstr(key)?;
        let mut buf = vec![0 as c_char; 256];
        let mut len = buf.len();
        // SAFETY: `buf` has room for `len` bytes; librbd writes a NUL-terminated value.
        let result =
            unsafe { ffi::rbd_metadata_get(self.handle, key.as_ptr(), buf.as_mut_ptr(), &mut len) };
        if result == -libc::ENOENT {
            return Ok(None);
        }
        check(result)?;
        // SAFETY: a NUL-terminated value within the buffer.
        Ok(Some(
            unsafe { CStr::from_ptr(buf.as_ptr()) }
                .to_string_lossy()
                .into_owned(),
        ))
    }

    /// When the image was created, in seconds since the epoch.
    pub(crate) fn created(&self) -> Result<i64, Errno> {
        let mut at = ffi::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: an open image; out-pointer.
        check(unsafe { ffi::rbd_get_create_timestamp(self.handle, &mut at) })?;
        Ok(at.tv_sec)
    }
}
