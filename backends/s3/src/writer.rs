//! Writing an image object: one PUT for a small announced image, else a multipart upload with
//! parts uploading while the next fills. A multipart upload is recorded by a small marker
//! object (`glint-uploads/<image id>/<uuid>`, holding the key and upload id) from its start to
//! its end, so that the sweep can abort the uploads of a killed process on any S3 server —
//! listing multipart uploads is not implemented everywhere (s3s-fs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use glint_store::{Chunk, ImageWriter, Location, S3Location, StoreError, Stored};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use tokio::task::JoinSet;

use crate::plan::Plan;
use crate::Shared;

/// Where the markers of running multipart uploads live.
pub(crate) const MARKER_PREFIX: &str = "glint-uploads";
/// A live upload rewrites its marker this often, so the sweep (which spares markers younger
/// than its age, 15 minutes and more) never takes it for abandoned.
const MARKER_REFRESH: Duration = Duration::from_secs(60);

pub(crate) struct S3Writer {
    shared: Arc<Shared>,
    image_id: String,
    key: Path,
    written: u64,
    /// The announced size a single PUT was planned for.
    planned: u64,
    mode: Mode,
}

enum Mode {
    Single { chunks: Vec<Chunk> },
    Multipart(Box<Multipart>),
}

struct Multipart {
    upload_id: String,
    marker: Path,
    marker_written: Instant,
    part_size: u64,
    in_flight: usize,
    max_size: u64,
    filling: Vec<Chunk>,
    filling_len: u64,
    next_part: usize,
    uploading: JoinSet<Result<(usize, PartId), StoreError>>,
    done: Vec<(usize, PartId)>,
}

fn payload(chunks: &[Chunk]) -> PutPayload {
    chunks
        .iter()
        .flat_map(|c| c.frames().iter().cloned())
        .collect()
}

impl S3Writer {
    pub(crate) async fn start(
        shared: Arc<Shared>,
        image_id: &str,
        plan: Plan,
    ) -> Result<S3Writer, StoreError> {
        let key = Path::from(image_id);
        let planned = match plan {
            Plan::Single { size } => size,
            Plan::Multipart { max_size, .. } => max_size,
        };
        let mode = match plan {
            Plan::Single { .. } => Mode::Single { chunks: Vec::new() },
            Plan::Multipart {
                part_size,
                in_flight,
                max_size,
            } => {
                let upload_id = shared
                    .s3
                    .create_multipart(&key)
                    .await
                    .map_err(|e| shared.error(image_id, e))?;
                let marker = Path::from(format!(
                    "{MARKER_PREFIX}/{image_id}/{}",
                    uuid::Uuid::new_v4().simple()
                ));
                let multipart = Multipart {
                    upload_id,
                    marker,
                    marker_written: Instant::now(),
                    part_size,
                    in_flight,
                    max_size,
                    filling: Vec::new(),
                    filling_len: 0,
                    next_part: 0,
                    uploading: JoinSet::new(),
                    done: Vec::new(),
                };
                if let Err(e) = shared
                    .write_marker(&multipart.marker, image_id, &multipart.upload_id)
                    .await
                {
                    let _ = shared.s3.abort_multipart(&key, &multipart.upload_id).await;
                    return Err(e);
                }
                Mode::Multipart(Box::new(multipart))
            }
        };
        Ok(S3Writer {
            shared,
            image_id: image_id.to_owned(),
            key,
            written: 0,
            planned,
            mode,
        })
    }

    fn location(&self) -> Result<Location, StoreError> {
        Ok(S3Location::new(
            self.shared.config.is_https(),
            &self.shared.location_host,
            &self.shared.config.bucket,
            &self.image_id,
        )?
        .into())
    }

    /// Data already under the key is never replaced (another upload of the same image won).
    async fn refuse_existing(&self) -> Result<(), StoreError> {
        match self.shared.s3.head(&self.key).await {
            Ok(_) => Err(StoreError::AlreadyExists(self.location()?.to_string())),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.shared.error(&self.image_id, e)),
        }
    }

    /// Starts uploading the filled part, first waiting for a free slot.
    async fn send_part(
        shared: &Arc<Shared>,
        key: &Path,
        image_id: &str,
        m: &mut Multipart,
    ) -> Result<(), StoreError> {
        while m.uploading.len() >= m.in_flight {
            Self::collect_one(shared, image_id, m).await?;
        }
        let chunks = std::mem::take(&mut m.filling);
        m.filling_len = 0;
        let (index, s3, key, upload_id, image) = (
            m.next_part,
            shared.clone(),
            key.clone(),
            m.upload_id.clone(),
            image_id.to_owned(),
        );
        m.next_part += 1;
        m.uploading.spawn(async move {
            // The chunks (and their budget permits) live until the part is stored.
            let part = s3
                .s3
                .put_part(&key, &upload_id, index, payload(&chunks))
                .await
                .map_err(|e| s3.error(&image, e))?;
            drop(chunks);
            Ok((index, part))
        });
        Ok(())
    }

    async fn collect_one(
        shared: &Arc<Shared>,
        image_id: &str,
        m: &mut Multipart,
    ) -> Result<(), StoreError> {
        match m.uploading.join_next().await {
            Some(Ok(Ok(part))) => m.done.push(part),
            Some(Ok(Err(e))) => return Err(e),
            Some(Err(join)) => {
                return Err(StoreError::Backend {
                    store: shared.config.name.clone(),
                    source: Box::new(join),
                })
            }
            None => {}
        }
        if m.marker_written.elapsed() >= MARKER_REFRESH {
            shared
                .write_marker(&m.marker, image_id, &m.upload_id)
                .await?;
            m.marker_written = Instant::now();
        }
        Ok(())
    }

    /// Removes the multipart upload and its marker; failures are left to the sweep.
    async fn discard(shared: &Shared, key: &Path, m: &mut Multipart) {
        m.uploading.abort_all();
        while m.uploading.join_next().await.is_some() {}
        match shared.s3.abort_multipart(key, &m.upload_id).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(store.name = %shared.config.name, error = %e,
                    "cannot abort a multipart upload; the sweep will");
                return;
            }
        }
        shared.remove_marker(&m.marker).await;
    }

    async fn commit_multipart(&mut self) -> Result<(), StoreError> {
        let Mode::Multipart(m) = &mut self.mode else {
            return Ok(());
        };
        if !m.filling.is_empty() {
            Self::send_part(&self.shared, &self.key, &self.image_id, m).await?;
        }
        while !m.uploading.is_empty() {
            Self::collect_one(&self.shared, &self.image_id, m).await?;
        }
        if m.done.is_empty() {
            // No data: S3 completes no upload without a part; the empty object is one PUT.
            Self::discard(&self.shared, &self.key, m).await;
            self.refuse_existing().await?;
            self.shared
                .s3
                .put(&self.key, PutPayload::default())
                .await
                .map_err(|e| self.shared.error(&self.image_id, e))?;
            return Ok(());
        }
        self.refuse_existing().await?;
        let Mode::Multipart(m) = &mut self.mode else {
            return Ok(());
        };
        m.done.sort_by_key(|(index, _)| *index);
        let parts = m.done.iter().map(|(_, part)| part.clone()).collect();
        self.shared
            .s3
            .complete_multipart(&self.key, &m.upload_id, parts)
            .await
            .map_err(|e| self.shared.error(&self.image_id, e))?;
        self.shared.remove_marker(&m.marker).await;
        Ok(())
    }
}

#[async_trait]
impl ImageWriter for S3Writer {
    async fn write(&mut self, chunk: Chunk) -> Result<(), StoreError> {
        self.written += chunk.len() as u64;
        match &mut self.mode {
            Mode::Single { chunks } => {
                // Sized (and reserved) for the announced size: never hold more.
                if self.written > self.planned {
                    return Err(StoreError::Backend {
                        store: self.shared.config.name.clone(),
                        source: "more data than the announced size".into(),
                    });
                }
                chunks.push(chunk)
            }
            Mode::Multipart(m) => {
                if self.written > m.max_size {
                    return Err(StoreError::Unsupported {
                        store: self.shared.config.name.clone(),
                        what: "images this large without an announced size (send X-OpenStack-Image-Size, or raise upload_memory_budget)",
                    });
                }
                m.filling_len += chunk.len() as u64;
                m.filling.push(chunk);
                if m.filling_len >= m.part_size {
                    Self::send_part(&self.shared, &self.key, &self.image_id, m).await?;
                }
                // A slow client fills parts slowly: the marker is kept fresh by time, not
                // by parts, so the sweep never takes a live upload for abandoned.
                if m.marker_written.elapsed() >= MARKER_REFRESH {
                    self.shared
                        .write_marker(&m.marker, &self.image_id, &m.upload_id)
                        .await?;
                    m.marker_written = Instant::now();
                }
            }
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<Stored, StoreError> {
        let result = match &mut self.mode {
            Mode::Single { chunks } => {
                let body = payload(chunks);
                match self.refuse_existing().await {
                    Ok(()) => self
                        .shared
                        .s3
                        .put(&self.key, body)
                        .await
                        .map(|_| ())
                        .map_err(|e| self.shared.error(&self.image_id, e)),
                    Err(e) => Err(e),
                }
            }
            Mode::Multipart(_) => self.commit_multipart().await,
        };
        if let Err(e) = result {
            // A failed commit leaves nothing behind.
            if let Mode::Multipart(m) = &mut self.mode {
                Self::discard(&self.shared, &self.key, m).await;
            }
            return Err(e);
        }
        Ok(Stored {
            location: self.location()?,
            size: self.written,
        })
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        if let Mode::Multipart(m) = &mut self.mode {
            Self::discard(&self.shared, &self.key, m).await;
        }
        Ok(())
    }
}
