//! The image cache: downloads filled into it once and served from it (whole and by range),
//! concurrent first downloads sharing one store read, its size kept within
//! `image_cache_max_size`, damaged files never served, entries dropped with their image, and
//! the cache API (`/v2/cache…`) with Glance's policies, statuses and messages.

mod api;
mod downloads;
mod lifecycle;
mod rgw;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Method, Request};
use glint_store::{
    ByteRange, Capabilities, ImageReader, ImageWriter, Location, Store, StoreError, StoredData,
    WriteOptions,
};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::helpers::{Backend, TestApp};

/// This node's name in the tests' `node_reference`.
pub(crate) const NODE: &str = "http://node-1.test:9292";

/// The cache options for a node whose downloads use the cache (`flavor = caching`).
pub(crate) fn caching(dir: &Path, extra: &str) -> String {
    format!(
        "[DEFAULT]\nimage_cache_dir = {}\nworker_self_reference_url = {NODE}\n{extra}\n\
         [paste_deploy]\nflavor = caching\n",
        dir.display()
    )
}

/// An app with a cache in a directory of its own (kept as long as the app).
pub(crate) struct CacheApp {
    pub app: TestApp,
    pub dir: tempfile::TempDir,
    /// Store readers opened (every store is wrapped).
    pub reads: Arc<AtomicUsize>,
}

impl CacheApp {
    pub async fn start(backend: Backend, extra: &str) -> CacheApp {
        Self::start_with(backend, |dir| caching(dir, extra), Duration::ZERO).await
    }

    /// `config` of the cache directory; each store reader opens after `delay`.
    pub async fn start_with(
        backend: Backend,
        config: impl FnOnce(&Path) -> String,
        delay: Duration,
    ) -> CacheApp {
        let dir = tempfile::tempdir().expect("cache directory");
        let app = TestApp::start(backend, &config(dir.path())).await;
        let reads = Arc::new(AtomicUsize::new(0));
        let counter = reads.clone();
        let app = app.wrap_stores(move |inner| {
            Arc::new(Counting {
                inner,
                reads: counter.clone(),
                delay,
            })
        });
        CacheApp { app, dir, reads }
    }

    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    pub fn cached_file(&self, id: &str) -> PathBuf {
        self.dir.path().join(id)
    }

    /// An active raw image holding `data`.
    pub async fn image(&self, data: &[u8]) -> String {
        let id = self.app.create_raw_image().await;
        self.app.upload(&id, data.to_vec()).await.assert_status(204);
        id
    }

    /// The ids `GET /v2/cache` lists as cached.
    pub async fn listed(&self) -> Vec<String> {
        let response = self.app.get("/v2/cache").await;
        response.assert_status(200);
        response.json()["cached_images"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|c| c["image_id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until the fill of `id` is committed and recorded.
    pub async fn wait_cached(&self, id: &str) {
        for _ in 0..200 {
            if self.listed().await.iter().any(|c| c == id) && self.cached_file(id).exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("image {id} was never cached");
    }

    /// `GET /v2/images/{id}/file` (with a `Range` when given): status, headers and the body
    /// received, with the error that cut it if any.
    pub async fn download(&self, id: &str, range: Option<&str>) -> Download {
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(format!("/v2/images/{id}/file"))
            .header("host", "glint.test:9292");
        if let Some(range) = range {
            request = request.header("range", range);
        }
        let response = self
            .app
            .router
            .clone()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut body = response.into_body();
        let mut data = Vec::new();
        let mut cut = false;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Ok(bytes) = frame.into_data() {
                        data.extend_from_slice(&bytes);
                    }
                }
                Err(_) => {
                    cut = true;
                    break;
                }
            }
        }
        Download {
            status,
            headers,
            data,
            cut,
        }
    }
}

pub(crate) struct Download {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub data: Vec<u8>,
    pub cut: bool,
}

impl Download {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A store counting the readers it opens, each after `delay`.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn Store>,
    reads: Arc<AtomicUsize>,
    delay: Duration,
}

#[async_trait]
impl Store for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn owns(&self, location: &Location) -> bool {
        self.inner.owns(location)
    }
    async fn writer(
        &self,
        image_id: &str,
        options: &WriteOptions,
    ) -> Result<Box<dyn ImageWriter>, StoreError> {
        self.inner.writer(image_id, options).await
    }
    async fn reader(
        &self,
        location: &Location,
        range: Option<ByteRange>,
    ) -> Result<ImageReader, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.inner.reader(location, range).await
    }
    async fn size(&self, location: &Location) -> Result<u64, StoreError> {
        self.inner.size(location).await
    }
    async fn delete(&self, location: &Location) -> Result<(), StoreError> {
        self.inner.delete(location).await
    }
    async fn sweep_abandoned(&self, older_than: Duration) -> Result<usize, StoreError> {
        self.inner.sweep_abandoned(older_than).await
    }
    async fn committed_data(&self) -> Result<Vec<StoredData>, StoreError> {
        self.inner.committed_data().await
    }
}

/// Tests run on each database with a cache app: `cache_tests!(fn name(app) { … })`, or
/// with extra `[DEFAULT]` lines.
#[macro_export]
macro_rules! cache_tests {
    (fn $name:ident($app:ident) $body:block) => {
        $crate::cache_tests!(fn $name($app, "") $body);
    };
    (fn $name:ident($app:ident, $extra:expr) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($app: $crate::cache::CacheApp) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::cache::CacheApp::start($crate::helpers::Backend::Sqlite, $extra).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run($crate::cache::CacheApp::start($crate::helpers::Backend::Postgres, $extra).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                run($crate::cache::CacheApp::start($crate::helpers::Backend::MySql, $extra).await).await
            }
        }
    };
}
