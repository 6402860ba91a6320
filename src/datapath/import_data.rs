//! The data half of an import: a source stream (staged data, a remote URL) written into a
//! store through the same digests, inspection, limits and memory budget as an upload, and
//! staged data read back or removed. Recording is the import job's: it records a copy under
//! its image's lock, or has the copy discarded.

use bytes::Bytes;
use futures_util::Stream;
use glint_store::{ByteStream, Location, ReaderBody, Store, StoreError, Stored, WriteOptions};
use std::sync::Arc;

use super::error::DataError;
use super::pump::Beat;
use super::upload::PIPELINE_BYTES;
use super::DataService;
use crate::domain::image::{self, Image};
use crate::domain::tasks::StagedData;
use crate::domain::{UploadTarget, UploadedData};

/// A copy an import wrote and committed, not recorded yet.
#[derive(Debug)]
pub struct ImportedData {
    /// The store's id (`None` with a single store).
    pub store: Option<String>,
    pub stored: Stored,
    /// What the image records of it.
    pub data: UploadedData,
}

/// A source that broke off is the remote's failure (or the staging store's), not a client's.
fn source_failure(error: DataError) -> DataError {
    match error {
        DataError::ClientGone(why) => DataError::BadRequest(why),
        other => other,
    }
}

impl DataService {
    /// The limits a write of `expected` bytes of `image` into `store` is held to, the
    /// writer's options, and its share of the memory budget (reserved when it buffers).
    async fn prepare_write(
        &self,
        image: &Image,
        store: &Arc<dyn Store>,
        expected: Option<u64>,
    ) -> Result<
        (
            super::limits::Limits,
            WriteOptions,
            super::budget::ByteBudget,
        ),
        DataError,
    > {
        let limits = self.limits_for(image).await?;
        if let Some(size) = expected {
            limits.check(size)?;
        }
        let options = WriteOptions {
            size: expected,
            max_size: limits.max_size(),
            memory: self.budget.total().saturating_sub(PIPELINE_BYTES),
        };
        let budget = match store.write_buffer(&options)? {
            0 => self.budget.clone(),
            buffer => self.budget.reserve(PIPELINE_BYTES + buffer).await?,
        };
        Ok((limits, options, budget))
    }

    /// Writes `source` into store `store` (`None`: the default) as the data of `image`.
    /// `expected`: the size the data must have (staged, or announced by a remote).
    pub async fn import_into<S, E>(
        &self,
        image: &Image,
        store: Option<&str>,
        source: S,
        expected: Option<u64>,
        beat: &Beat,
    ) -> Result<ImportedData, DataError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        let entry = self
            .stores
            .for_upload(store)
            .map_err(|e| DataError::BadRequest(e.to_string()))?;
        // Glance's import flows write through `ImageProxy.set_data`: `image.prepare` first
        // (the import runner sends the rest once the copy is recorded).
        let runner = crate::domain::RequestContext::unauthenticated_admin(String::new());
        let backend = self.stores.multi().then_some(entry.id.as_str());
        self.images
            .notify_image_data(&runner, "image.prepare", image, backend);
        let target = entry.store.clone();
        if target.capabilities().read_only {
            return Err(StoreError::ReadOnly {
                store: entry.id.clone(),
            }
            .into());
        }
        let (limits, options, budget) = self.prepare_write(image, &target, expected).await?;
        let writer = self.open_writer(image, &target, &options).await?;
        let (writer, digests, inspection, received) = self
            .pump(
                image,
                UploadTarget::Store,
                beat,
                writer,
                source,
                &limits,
                &budget,
            )
            .await
            .map_err(source_failure)?;
        if let Some(expected) = expected.filter(|e| *e != received) {
            writer.abort().await?;
            return Err(DataError::BadRequest(format!(
                "the source gave {received} bytes where {expected} were expected"
            )));
        }
        let stored = writer.commit().await?;
        let size = i64::try_from(received).map_err(|_| DataError::SizeCapExceeded {
            cap: i64::MAX as u64,
        })?;
        let store_id = self.stores.multi().then(|| entry.id.clone());
        Ok(ImportedData {
            data: UploadedData {
                size,
                virtual_size: inspection.virtual_size.and_then(|v| i64::try_from(v).ok()),
                checksum: digests.md5.clone(),
                os_hash_algo: digests.algorithm.clone(),
                os_hash_value: digests.value.clone(),
                location: stored.location.uri(),
                metadata: match &store_id {
                    Some(id) => serde_json::json!({ "store": id }).to_string(),
                    None => "{}".to_owned(),
                },
            },
            store: store_id,
            stored,
        })
    }

    /// Removes a copy the import could not record.
    pub async fn discard(&self, imported: &ImportedData) {
        let entry = self.stores.for_upload(imported.store.as_deref());
        let Ok(entry) = entry else { return };
        match entry.store.delete(&imported.stored.location).await {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => tracing::error!(location = %imported.stored.location, error = %e,
                "cannot remove the data of an import that could not be recorded"),
        }
    }

    /// Removes the data at `url` from whichever configured store holds it (a copy an import
    /// recorded and then gave up, all its stores having to succeed).
    pub async fn remove_copy_at(&self, url: &str) {
        let Ok(location) = Location::parse(url) else {
            return;
        };
        let Some(entry) = self.stores.for_location(&location, None) else {
            return;
        };
        match entry.store.delete(&location).await {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => tracing::error!(%location, error = %e, "cannot remove an import's copy"),
        }
    }

    /// The node whose local disk staged data lives on, `None` when every node reaches the
    /// staging store.
    pub fn staging_node(&self) -> Option<String> {
        (!self.stores.staging_shared()).then(|| self.node_id.to_string())
    }

    /// `[image_format]`: how data is inspected.
    pub fn inspection(&self) -> &crate::config::InspectionConfig {
        &self.config.inspection
    }

    /// `[DEFAULT] hashing_algorithm`.
    pub fn hashing_algorithm(&self) -> &str {
        &self.config.hashing_algorithm
    }

    /// The image's active locations.
    pub async fn locations_of(
        &self,
        image_id: &crate::domain::ImageId,
    ) -> Result<Vec<crate::domain::StoredLocation>, crate::domain::RepoError> {
        self.uploads.locations(image_id).await
    }

    /// The configured store serving `location` (its id with several stores) and the size of
    /// the data there, which must be more than nothing.
    pub async fn location_size(
        &self,
        location: &Location,
    ) -> Result<(Option<String>, u64), DataError> {
        let entry = self.stores.for_location(location, None).ok_or_else(|| {
            DataError::BadRequest(format!("no configured store serves {location}"))
        })?;
        let size = entry.store.size(location).await?;
        if size == 0 {
            return Err(DataError::BadRequest(format!("{location} holds no data")));
        }
        Ok((self.stores.multi().then(|| entry.id.clone()), size))
    }

    /// Reads the data at `location` whole through the digests (`algorithm` the multihash)
    /// and the image's inspection, storing nothing: what a registered location holds.
    pub async fn hash_location(
        &self,
        image: &Image,
        location: &Location,
        algorithm: &str,
        beat: &Beat,
    ) -> Result<(u64, super::digest::Digests, super::inspect::Inspection), DataError> {
        let entry = self.stores.for_location(location, None).ok_or_else(|| {
            DataError::BadRequest(format!("no configured store serves {location}"))
        })?;
        let digester = super::digest::Digester::start(algorithm)?;
        let mut inspector = super::inspect::for_image(
            image.disk_format.as_deref(),
            image.container_format.as_deref(),
            &self.config.inspection,
        );
        let mut chunks = super::copy::Chunks::open(&entry.store, location, &self.budget).await?;
        while let Some(chunk) = chunks.next().await? {
            inspector.inspect(&chunk)?;
            digester.feed(&chunk).await?;
            if !beat(chunks.total).await? {
                return Err(DataError::Conflict(
                    "the import lost its claim while reading the location".to_owned(),
                ));
            }
        }
        let inspection = inspector.finish(chunks.total)?;
        Ok((chunks.total, digester.finish().await?, inspection))
    }

    /// The image's staged data, if any is recorded.
    pub async fn staged(
        &self,
        image_id: &crate::domain::ImageId,
    ) -> Result<Option<StagedData>, crate::domain::RepoError> {
        self.uploads.staged(image_id.as_str()).await
    }

    /// Staged data (on `node`'s disk, or shared when `None`) no image needs any more.
    pub async fn staged_unneeded(
        &self,
        node: Option<&str>,
    ) -> Result<Vec<StagedData>, crate::domain::RepoError> {
        self.uploads.staged_unneeded(node).await
    }

    /// Staged data, read whole.
    pub async fn open_staged(&self, staged: &StagedData) -> Result<ByteStream, DataError> {
        let store = self.stores.staging().store.clone();
        let location = Location::parse(&staged.location)?;
        let reader = store.reader(&location, None).await?;
        let body = match reader.body {
            ReaderBody::Stream(stream) => stream,
            ReaderBody::File(file) => {
                super::download::file_stream(file, reader.range, location.to_string())
            }
        };
        Ok(super::download::counted(body, store.name()))
    }

    /// Up to the first `len` bytes of staged data (fewer when it is shorter), the rest left
    /// unread.
    pub async fn staged_head(&self, staged: &StagedData, len: usize) -> Result<Vec<u8>, DataError> {
        use futures_util::StreamExt;
        let mut body = self.open_staged(staged).await?;
        let mut head = Vec::with_capacity(len);
        while head.len() < len {
            match body.next().await {
                Some(piece) => {
                    let piece = piece
                        .map_err(|e| DataError::Internal(format!("reading staged data: {e}")))?;
                    let wanted = len - head.len();
                    head.extend_from_slice(&piece[..wanted.min(piece.len())]);
                }
                None => break,
            }
        }
        Ok(head)
    }

    /// Writes `source` into the staging store for `image` (a download an import stages
    /// before plugins or several stores read it) and records it as the image's staged data.
    pub async fn stage_stream<S, E>(
        &self,
        image: &Image,
        source: S,
        expected: Option<u64>,
        beat: &Beat,
    ) -> Result<StagedData, DataError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        let store: Arc<dyn Store> = self.stores.staging().store.clone();
        let (limits, options, budget) = self.prepare_write(image, &store, expected).await?;
        // Whatever an earlier attempt staged is replaced.
        let writer = match store.writer(image.id.as_str(), &options).await {
            Err(StoreError::AlreadyExists(location)) => {
                store.delete(&Location::parse(&location)?).await?;
                store.writer(image.id.as_str(), &options).await?
            }
            other => other?,
        };
        let writer = super::writer::OpenWriter::new(writer, store.name());
        // Inspected now too, so that unsafe data is refused before it is staged whole
        // (compressed data for image_decompression excepted: inspected once unpacked).
        let (writer, digests, _, received) = self
            .pump(
                image,
                UploadTarget::Staging,
                beat,
                writer,
                source,
                &limits,
                &budget,
            )
            .await
            .map_err(source_failure)?;
        if let Some(expected) = expected.filter(|e| *e != received) {
            writer.abort().await?;
            return Err(DataError::BadRequest(format!(
                "the source gave {received} bytes where {expected} were expected"
            )));
        }
        let stored = writer.commit().await?;
        let staged = StagedData {
            image_id: image.id.to_string(),
            location: stored.location.uri(),
            size: i64::try_from(received).map_err(|_| DataError::SizeCapExceeded {
                cap: i64::MAX as u64,
            })?,
            checksum: Some(digests.md5),
            os_hash_value: Some(digests.value),
            node: self.staging_node(),
            created_at: image::now(),
        };
        self.uploads.put_staged(&staged).await?;
        Ok(staged)
    }

    /// The path of staged data on this node's disk, when the staging store is a directory.
    pub fn staged_path(&self, staged: &StagedData) -> Option<std::path::PathBuf> {
        match Location::parse(&staged.location) {
            Ok(Location::File(file)) if !self.stores.staging_shared() => {
                Some(std::path::PathBuf::from(file.path()))
            }
            _ => None,
        }
    }

    /// Copies staged data into the local file `path` (for tools that need a file).
    pub async fn fetch_staged(
        &self,
        staged: &StagedData,
        path: &std::path::Path,
    ) -> Result<(), DataError> {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        let mut body = self.open_staged(staged).await?;
        let io = |e: std::io::Error| DataError::Internal(format!("{}: {e}", path.display()));
        let mut file = tokio::fs::File::create(path).await.map_err(io)?;
        while let Some(piece) = body.next().await {
            let piece =
                piece.map_err(|e| DataError::Internal(format!("reading staged data: {e}")))?;
            file.write_all(&piece).await.map_err(io)?;
        }
        file.flush().await.map_err(io)
    }

    /// Stages the local file `path` as the image's data, replacing what was staged (an import
    /// plugin's output).
    pub async fn stage_file(
        &self,
        image: &Image,
        path: &std::path::Path,
        beat: &Beat,
    ) -> Result<StagedData, DataError> {
        let io = |e: std::io::Error| DataError::Internal(format!("{}: {e}", path.display()));
        let file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let body = super::download::file_stream(
            file,
            glint_store::ByteRange {
                start: 0,
                end: size,
            },
            path.display().to_string(),
        );
        self.stage_stream(image, body, Some(size), beat).await
    }

    /// Removes staged data and its record.
    pub async fn remove_staged(&self, staged: &StagedData) -> Result<(), DataError> {
        let store = self.stores.staging().store.clone();
        match store.delete(&Location::parse(&staged.location)?).await {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.uploads
            .remove_staged(&staged.image_id, &staged.location)
            .await?;
        Ok(())
    }
}
