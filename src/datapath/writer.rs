//! `OpenWriter`: a store writer that is aborted if it is dropped before `commit` or `abort`.
//!
//! This is where "a cancelled upload leaves nothing behind" is kept, once for every driver: a
//! handler future dropped because the client went away, or a task cut short, drops its
//! writer, and the abort then runs on its own. Only a killed process skips it; the stores'
//! `sweep_abandoned` finds what that leaves.

use std::sync::Arc;

use glint_store::{Chunk, ImageWriter, StoreError, Stored};

use crate::metrics::Counter;

pub(super) struct OpenWriter {
    /// `None` once committed or aborted.
    inner: Option<Box<dyn ImageWriter>>,
    store: String,
    /// `glint_store_bytes_written_total` of the store: every write of every upload, stage,
    /// import and copy passes here, so it is counted once, here.
    written: Arc<Counter>,
}

impl OpenWriter {
    pub(super) fn new(inner: Box<dyn ImageWriter>, store: &str) -> OpenWriter {
        OpenWriter {
            inner: Some(inner),
            store: store.to_owned(),
            written: crate::metrics::global().store_written(store),
        }
    }

    fn inner(&mut self) -> Result<&mut Box<dyn ImageWriter>, StoreError> {
        self.inner.as_mut().ok_or_else(|| StoreError::Backend {
            store: self.store.clone(),
            source: "writer used after commit or abort".into(),
        })
    }

    pub(super) async fn write(&mut self, chunk: Chunk) -> Result<(), StoreError> {
        let len = chunk.len() as u64;
        self.inner()?.write(chunk).await?;
        self.written.add(len);
        Ok(())
    }

    pub(super) async fn commit(mut self) -> Result<Stored, StoreError> {
        let writer = self.inner.take();
        match writer {
            Some(writer) => writer.commit().await,
            None => Err(StoreError::Backend {
                store: self.store.clone(),
                source: "writer committed twice".into(),
            }),
        }
    }

    pub(super) async fn abort(mut self) -> Result<(), StoreError> {
        match self.inner.take() {
            Some(writer) => writer.abort().await,
            None => Ok(()),
        }
    }
}

impl Drop for OpenWriter {
    fn drop(&mut self) {
        let Some(writer) = self.inner.take() else {
            return;
        };
        let store = std::mem::take(&mut self.store);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = writer.abort().await {
                        tracing::warn!(store.name = %store, error = %e,
                            "aborting an abandoned upload failed; the store's sweep will remove it");
                    }
                });
            }
            Err(_) => tracing::warn!(store.name = %store,
                "upload abandoned during shutdown; the store's sweep will remove its data"),
        }
    }
}
