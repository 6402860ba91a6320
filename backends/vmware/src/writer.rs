//! Writing an image: one streamed PUT of the data to a temporary file beside its final name
//! (`Content-Length` when the size is announced, chunked otherwise), then, at commit, a check
//! of the size the datastore holds and a move into place that never overwrites.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use glint_store::net::body::{Feed, Piece, StreamBody, UploadBody};
use glint_store::net::error_chain;
use glint_store::{Chunk, ImageWriter, Location, StoreError, Stored};
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::datastore::Target;
use crate::vim::{CallError, Session};
use crate::{reader, Shared, PARTIAL};

/// Chunks queued for the connection beyond the one being sent.
const BODY_DEPTH: usize = 2;
/// Image bytes a writer holds: the queue and the chunk in flight (the data path's chunks are
/// at most 1 MiB).
pub(crate) const BUFFER: u64 = (BODY_DEPTH as u64 + 1) << 20;

type Upload = JoinHandle<Result<Response<Incoming>, hyper_util::client::legacy::Error>>;

pub(crate) struct VmwareWriter {
    shared: Arc<Shared>,
    target: Target,
    image_id: String,
    /// The temporary file, as a datastore path and as a location (for its URL).
    partial_path: String,
    partial: glint_store::VsphereLocation,
    feed: Option<mpsc::Sender<Feed>>,
    upload: Option<Upload>,
    session: Session,
    written: u64,
}

/// Starts the PUT of a new temporary file on `target`.
pub(crate) async fn open(
    shared: &Arc<Shared>,
    target: Target,
    image_id: &str,
    size: Option<u64>,
) -> Result<Box<dyn ImageWriter>, StoreError> {
    let file = format!("{image_id}.{}{PARTIAL}", uuid::Uuid::new_v4().simple());
    let partial = shared.location_in(&target, &file)?;
    let session = shared.inventory.vim.session().await?;
    let (feed, body) = StreamBody::new(size, BODY_DEPTH);
    let mut request = Request::builder()
        .method(Method::PUT)
        .uri(reader::url(shared, &partial))
        .header(header::COOKIE, reader::cookie(&session))
        .header(header::CONTENT_TYPE, "application/octet-stream");
    if let Some(size) = size {
        request = request.header(header::CONTENT_LENGTH, size);
    }
    let request = request
        .body(UploadBody::Stream(body))
        .map_err(|e| StoreError::Backend {
            store: shared.name().to_owned(),
            source: e.to_string().into(),
        })?;
    let client = shared.upload.clone();
    let upload = tokio::spawn(async move { client.request(request).await });
    Ok(Box::new(VmwareWriter {
        shared: shared.clone(),
        partial_path: partial.datastore_path(),
        partial,
        target,
        image_id: image_id.to_owned(),
        feed: Some(feed),
        upload: Some(upload),
        session,
        written: 0,
    }))
}

impl VmwareWriter {
    /// The end of the PUT: `Ok` when the server took the whole body.
    async fn finish_upload(&mut self) -> Result<(), StoreError> {
        let name = self.shared.name().to_owned();
        let Some(upload) = self.upload.take() else {
            return Err(StoreError::Backend {
                store: name,
                source: "the upload already ended".into(),
            });
        };
        let response = match upload.await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                return Err(StoreError::Unavailable {
                    store: name,
                    retryable: true,
                    source: format!("uploading to the datastore: {}", error_chain(&e)).into(),
                })
            }
            Err(e) => {
                return Err(StoreError::Backend {
                    store: name,
                    source: format!("the upload task failed: {e}").into(),
                })
            }
        };
        let status = response.status();
        let body = response.into_body().collect().await.map(|b| b.to_bytes());
        match status {
            StatusCode::OK | StatusCode::CREATED => Ok(()),
            StatusCode::UNAUTHORIZED => {
                // The session ended before the upload began; the next call logs in again.
                let _ = self.shared.inventory.vim.renew(&self.session).await;
                Err(StoreError::Unavailable {
                    store: name,
                    retryable: true,
                    source: "the datastore refused the session (401)".into(),
                })
            }
            StatusCode::INSUFFICIENT_STORAGE => Err(StoreError::StorageFull { store: name }),
            _ => Err(StoreError::Backend {
                store: name,
                source: format!(
                    "the datastore answered the upload with {status}: {}",
                    body.map(|b| String::from_utf8_lossy(&b)
                        .chars()
                        .take(200)
                        .collect::<String>())
                        .unwrap_or_default()
                )
                .into(),
            }),
        }
    }

    /// Ends the PUT early and removes the temporary file. The server may still be opening the
    /// file when the connection drops (it creates it when the request's head arrives), so the
    /// removal is checked, and repeated, until the file stays away.
    async fn discard(&mut self) -> Result<(), StoreError> {
        self.feed = None;
        if let Some(upload) = self.upload.take() {
            // The failed body makes hyper drop the connection; wait until it has.
            let _ = tokio::time::timeout(Duration::from_secs(10), upload).await;
        }
        let mut pause = Duration::from_millis(50);
        for _ in 0..6 {
            match self
                .shared
                .inventory
                .delete_file(Some(&self.target.datacenter), &self.partial_path)
                .await
            {
                Ok(()) => {}
                Err(CallError::Fault(fault)) if fault.is("FileNotFound") => {}
                Err(e) => return Err(e.into_store(self.shared.name())),
            }
            tokio::time::sleep(pause).await;
            match reader::size(&self.shared, &self.partial).await {
                Err(StoreError::NotFound(_)) => return Ok(()),
                Ok(_) => pause *= 2,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Backend {
            store: self.shared.name().to_owned(),
            source: format!("{} keeps coming back", self.partial_path).into(),
        })
    }

    /// Ends the PUT at once (a writer dropped without commit or abort).
    fn cut(&mut self) {
        self.feed = None;
        if let Some(upload) = self.upload.take() {
            upload.abort();
        }
    }

    async fn publish(&mut self) -> Result<Stored, StoreError> {
        if let Some(feed) = self.feed.take() {
            // The body may have failed already; the upload's result says why.
            let _ = feed.send(Feed::End).await;
        }
        self.finish_upload().await?;
        let held = reader::size(&self.shared, &self.partial).await?;
        if held != self.written {
            return Err(StoreError::Backend {
                store: self.shared.name().to_owned(),
                source: format!(
                    "the datastore holds {held} bytes of the {} written",
                    self.written
                )
                .into(),
            });
        }
        let location = self.shared.location_in(&self.target, &self.image_id)?;
        match self
            .shared
            .inventory
            .move_file(
                &self.target.datacenter,
                &self.partial_path,
                &location.datastore_path(),
            )
            .await
        {
            Ok(()) => Ok(Stored {
                location: Location::Vsphere(location),
                size: self.written,
            }),
            Err(CallError::Fault(fault)) if fault.is("FileAlreadyExists") => {
                Err(StoreError::AlreadyExists(Location::Vsphere(location).uri()))
            }
            Err(e) => Err(e.into_store(self.shared.name())),
        }
    }
}

#[async_trait]
impl ImageWriter for VmwareWriter {
    async fn write(&mut self, chunk: Chunk) -> Result<(), StoreError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let len = chunk.len();
        let sent = match &self.feed {
            Some(feed) => feed
                .send(Feed::Data(Piece {
                    chunk,
                    start: 0,
                    end: len,
                }))
                .await
                .is_ok(),
            None => false,
        };
        if !sent {
            // The connection ended early: its answer says why.
            self.feed = None;
            let why = self
                .finish_upload()
                .await
                .err()
                .unwrap_or_else(|| StoreError::Backend {
                    store: self.shared.name().to_owned(),
                    source: "the datastore ended the upload before its end".into(),
                });
            return Err(why);
        }
        self.written += len as u64;
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<Stored, StoreError> {
        let result = self.publish().await;
        if result.is_err() {
            if let Err(e) = self.discard().await {
                tracing::warn!(store = %self.shared.name(), error = %e,
                    "could not remove the temporary file of a failed upload; the sweep will");
            }
        }
        result
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        self.discard().await
    }
}

impl Drop for VmwareWriter {
    fn drop(&mut self) {
        // Dropping the queue fails the body, and hyper drops the connection.
        self.cut();
    }
}
