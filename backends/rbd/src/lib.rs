//! The RBD store: each image's data is a Ceph block device named by the image id in one pool,
//! snapshotted (`snap`) and protected as Glance does, so that Nova and Cinder clone it
//! copy-on-write from `rbd://<fsid>/<pool>/<image id>/snap`.
//!
//! librbd and librados block, so every call runs on a blocking thread; a writer's thread is
//! fed through a queue of two chunks, which carries the back-pressure to the client. A writer
//! works on a temporary image (`<image id>.glint-<attempt>`) that becomes the image's only at
//! `commit`, by a rename that never replaces: nothing is visible under the image's name
//! before. A live writer stamps its temporary image every minute, so the sweep removes those
//! of a killed process and spares the others. Deleting data that has clones is refused (in
//! use), and the data kept.

mod config;
mod error;
mod ffi;
mod rados;
mod reader;
mod writer;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use glint_store::{
    is_image_id, ByteRange, Capabilities, ImageReader, ImageWriter, Location, RbdLocation, Store,
    StoreError, StoredData, WriteOptions,
};

pub use config::RbdConfig;
use error::store_error;
use rados::{Cluster, Errno, IoCtx};
use writer::RbdWriter;

/// The snapshot Glance protects and clones are made from.
pub const SNAPSHOT: &str = "snap";
/// `rados_connect_timeout` when unset: librados alone would wait five minutes for a cluster
/// that is down.
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 30;

#[derive(Debug)]
pub struct RbdStore {
    shared: Arc<Shared>,
}

/// A connected cluster and its fsid.
#[derive(Clone)]
pub(crate) struct Connection {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) fsid: String,
    /// One I/O context per pool, kept as long as the connection: librbd may still complete
    /// work of a closed image on a context, so contexts are never destroyed under it.
    pools: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<IoCtx>>>>,
}

pub(crate) struct Shared {
    pub(crate) config: RbdConfig,
    /// The cluster's fsid once known, for `owns` (which cannot wait for a connection).
    fsid: std::sync::OnceLock<String>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("fsid", &self.fsid.get())
            .finish()
    }
}

impl Shared {
    /// A connection of its own for one operation (a writer, a reader, a delete…), closed
    /// when the operation drops it, as Glance does. Operations never share one: librbd 16
    /// aborts, now and then, when images are opened and closed concurrently through one
    /// cluster handle (seen here under load: a librados callback finding a freed mutex), and
    /// a connection costs a few milliseconds next to an image transfer.
    pub(crate) async fn connection(&self) -> Result<Connection, StoreError> {
        let config = self.config.clone();
        let connected = tokio::task::spawn_blocking(move || {
            let cluster = Cluster::connect(
                config.user.as_deref(),
                config.ceph_conf.as_deref(),
                config.connect_timeout,
            )?;
            let fsid = cluster.fsid()?;
            Ok::<_, Errno>(Connection {
                cluster: Arc::new(cluster),
                fsid,
                pools: Arc::default(),
            })
        })
        .await
        .map_err(|e| self.joined(e))?;
        let connection = connected.map_err(|errno| match errno.0 {
            libc::ENOENT | libc::EINVAL | libc::EPERM | libc::EACCES => {
                StoreError::Misconfigured {
                    store: self.config.name.clone(),
                    why: format!(
                    "cannot connect to Ceph as client.{} with {}: {errno} (check rbd_store_user, \
                     rbd_store_ceph_conf and the keyring)",
                    self.config.user.as_deref().unwrap_or("admin"),
                    self.config
                        .ceph_conf
                        .as_ref()
                        .map_or("the default ceph.conf".to_owned(), |p| p.display().to_string())
                ),
                }
            }
            _ => StoreError::Unavailable {
                store: self.config.name.clone(),
                retryable: true,
                source: format!("cannot connect to the Ceph cluster: {errno}").into(),
            },
        })?;
        let _ = self.fsid.set(connection.fsid.clone());
        Ok(connection)
    }

    pub(crate) fn joined(&self, error: tokio::task::JoinError) -> StoreError {
        StoreError::Backend {
            store: self.config.name.clone(),
            source: Box::new(error),
        }
    }

    /// Runs `op` on a blocking thread with an I/O context on `pool`.
    pub(crate) async fn run<T, F>(&self, pool: &str, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Arc<IoCtx>, &Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let connection = self.connection().await?;
        let pool = pool.to_owned();
        let name = self.config.name.clone();
        let result = tokio::task::spawn_blocking(move || {
            let io = ioctx(&name, &connection, &pool)?;
            op(&io, &connection)
        })
        .await
        .map_err(|e| self.joined(e))?;
        result
    }

    /// The location of image `image_id` in the configured pool.
    pub(crate) fn location(&self, fsid: &str, image_id: &str) -> Result<Location, StoreError> {
        Ok(RbdLocation::new(fsid, &self.config.pool, image_id, SNAPSHOT)?.into())
    }

    /// The pool, image and snapshot a location names, if it is this store's: the same cluster
    /// (when the fsid is known), the configured pool for the old `rbd://image` form.
    fn resolve(&self, location: &Location) -> Result<(String, String, Option<String>), StoreError> {
        let invalid = || StoreError::InvalidLocation(location.to_string());
        let Location::Rbd(rbd) = location else {
            return Err(invalid());
        };
        if let (Some(theirs), Some(ours)) = (rbd.fsid(), self.fsid.get()) {
            if theirs != ours {
                return Err(invalid());
            }
        }
        Ok((
            rbd.pool().unwrap_or(&self.config.pool).to_owned(),
            rbd.image().to_owned(),
            rbd.snapshot().map(str::to_owned),
        ))
    }
}

impl RbdStore {
    /// The store; each operation connects on its own (and one connection is made now, in the
    /// background, so that the store knows its cluster's fsid early).
    pub fn new(config: RbdConfig) -> Result<RbdStore, StoreError> {
        if config.pool.is_empty() {
            return Err(StoreError::Misconfigured {
                store: config.name.clone(),
                why: "rbd_store_pool is empty".to_owned(),
            });
        }
        let shared = Arc::new(Shared {
            config,
            fsid: std::sync::OnceLock::new(),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let early = shared.clone();
            runtime.spawn(async move {
                if let Err(e) = early.connection().await {
                    tracing::warn!(store.name = %early.config.name, error = %e,
                        "cannot connect to the Ceph cluster yet");
                }
            });
        }
        Ok(RbdStore { shared })
    }

    pub fn config(&self) -> &RbdConfig {
        &self.shared.config
    }
}

/// The I/O context on `pool` (made once per connection); a pool that does not exist is the
/// operator's to fix.
pub(crate) fn ioctx(
    store: &str,
    connection: &Connection,
    pool: &str,
) -> Result<Arc<IoCtx>, StoreError> {
    let mut pools = connection.pools.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(io) = pools.get(pool) {
        return Ok(io.clone());
    }
    let io = connection
        .cluster
        .ioctx(pool)
        .map_err(|errno| match errno.0 {
            libc::ENOENT => StoreError::Misconfigured {
                store: store.to_owned(),
                why: format!("the pool {pool} does not exist"),
            },
            _ => store_error(store, pool, errno),
        })?;
    pools.insert(pool.to_owned(), io.clone());
    Ok(io)
}

/// Removes image `name` and its snapshot `snap`, unless a clone still needs the snapshot
/// (`InUse`, nothing removed). An image the cluster cannot remove because of other snapshots
/// goes to the RBD trash, as Glance does.
pub(crate) fn remove_image(
    shared_name: &str,
    io: &Arc<IoCtx>,
    name: &str,
    snap: Option<&str>,
    shown: &str,
) -> Result<(), StoreError> {
    let error = |errno: Errno| store_error(shared_name, shown, errno);
    if let Some(snap) = snap {
        let image = io.open(name, None, false).map_err(error)?;
        if image.snap_exists(snap).map_err(error)? {
            let children = image.children_of(snap).map_err(error)?;
            if children > 0 {
                return Err(StoreError::InUse {
                    location: shown.to_owned(),
                    why: format!("{children} image(s) are cloned from its snapshot {snap}"),
                });
            }
            match image.snap_unprotect(snap) {
                // Not protected (any more).
                Ok(()) | Err(Errno(libc::EINVAL)) => {}
                Err(e) => return Err(error(e)),
            }
            match image.snap_remove(snap) {
                Ok(()) | Err(Errno(libc::ENOENT)) => {}
                Err(e) => return Err(error(e)),
            }
        }
    }
    match io.remove(name) {
        Ok(()) => Ok(()),
        Err(Errno(libc::ENOTEMPTY)) => {
            tracing::info!(store.name = %shared_name, image = %name,
                "the image has other snapshots; moving it to the RBD trash");
            io.trash_move(name).map_err(error)
        }
        Err(e) => Err(error(e)),
    }
}

#[async_trait]
impl Store for RbdStore {
    fn name(&self) -> &str {
        &self.shared.config.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            read_only: false,
            ranged_read: true,
            thin_provisioning: self.shared.config.thin_provisioning,
            caller_accounts: false,
        }
    }

    fn owns(&self, location: &Location) -> bool {
        self.shared.resolve(location).is_ok()
    }

    fn write_buffer(&self, options: &WriteOptions) -> Result<u64, StoreError> {
        let needed = writer::buffer(&self.shared.config);
        if needed > options.memory {
            return Err(StoreError::Unsupported {
                store: self.shared.config.name.clone(),
                what: "uploads within this little memory (raise upload_memory_budget)",
            });
        }
        Ok(needed)
    }

    async fn writer(
        &self,
        image_id: &str,
        options: &WriteOptions,
    ) -> Result<Box<dyn ImageWriter>, StoreError> {
        if !is_image_id(image_id) {
            return Err(StoreError::InvalidLocation(image_id.to_owned()));
        }
        Ok(Box::new(
            RbdWriter::start(self.shared.clone(), image_id, options).await?,
        ))
    }

    async fn reader(
        &self,
        location: &Location,
        range: Option<ByteRange>,
    ) -> Result<ImageReader, StoreError> {
        let (pool, image, snap) = self.shared.resolve(location)?;
        reader::open(&self.shared, pool, image, snap, location.to_string(), range).await
    }

    async fn size(&self, location: &Location) -> Result<u64, StoreError> {
        let (pool, name, snap) = self.shared.resolve(location)?;
        let shown = location.to_string();
        let store = self.shared.config.name.clone();
        self.shared
            .run(&pool, move |io, _| {
                io.open(&name, snap.as_deref(), true)
                    .and_then(|image| image.size())
                    .map_err(|errno| store_error(&store, &shown, errno))
            })
            .await
    }

    async fn delete(&self, location: &Location) -> Result<(), StoreError> {
        let (pool, name, snap) = self.shared.resolve(location)?;
        let shown = location.to_string();
        let store = self.shared.config.name.clone();
        self.shared
            .run(&pool, move |io, _| {
                remove_image(&store, io, &name, snap.as_deref(), &shown)
            })
            .await
    }

    async fn sweep_abandoned(&self, older_than: Duration) -> Result<usize, StoreError> {
        let store = self.shared.config.name.clone();
        let pool = self.shared.config.pool.clone();
        self.shared
            .run(&pool, move |io, _| writer::sweep(&store, io, older_than))
            .await
    }

    async fn committed_data(&self) -> Result<Vec<StoredData>, StoreError> {
        let shared = self.shared.clone();
        let pool = self.shared.config.pool.clone();
        self.shared
            .run(&pool, move |io, connection| {
                let error = |errno| store_error(&shared.config.name, &shared.config.pool, errno);
                let mut found = Vec::new();
                for name in io.list().map_err(error)? {
                    if !is_image_id(&name) {
                        continue;
                    }
                    // Only images with the snapshot: the others are not Glance's or Glint's.
                    let image = match io.open(&name, Some(SNAPSHOT), true) {
                        Ok(image) => image,
                        Err(Errno(libc::ENOENT)) => continue,
                        Err(e) => return Err(error(e)),
                    };
                    let created = image.created().unwrap_or(0);
                    found.push(StoredData {
                        location: shared.location(&connection.fsid, &name)?,
                        aliases: Vec::new(),
                        modified: SystemTime::UNIX_EPOCH
                            + Duration::from_secs(u64::try_from(created).unwrap_or(0)),
                        image_id: name,
                    });
                }
                Ok(found)
            })
            .await
    }
}

#[cfg(test)]
mod tests;
