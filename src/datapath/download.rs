//! `GET /v2/images/{id}/file`: finding the data, checking it, streaming it.
//!
//! Corruption: before a byte is sent, the stored size must equal the image's recorded `size`
//! (else 500, logged, nothing served), whatever the store. While streaming, every store's
//! bytes pass one check (`verify`): data that ends early or runs long cuts the transfer short
//! of its `Content-Length`, and with `verify_download_checksum` whole downloads are hashed as
//! they go, the last block held back until the md5 matches `checksum`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use futures_util::{stream, Stream};
use glint_store::{ByteRange, ImageReader, Location, ReaderBody, StoreError};

use super::error::DataError;
use super::range::parse_range;
use super::verify::checked;
use super::DataService;
use crate::domain::image::Image;
use crate::domain::policy::Action;
use crate::domain::{data_rules, RequestContext, StoredLocation};

/// Bytes read from a file per step.
const READ_BLOCK: usize = 1 << 20;

pub type DataStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A download ready to be sent.
pub struct Download {
    /// The image's full size.
    pub size: u64,
    /// The range served, for 206 answers.
    pub range: Option<ByteRange>,
    /// Bytes in `body`.
    pub content_length: u64,
    /// The image's md5, hex, for `Content-MD5`.
    pub checksum: Option<String>,
    pub body: DataStream,
}

impl DataService {
    /// The image's data, or `None` if it has none yet (204).
    pub async fn download(
        &self,
        ctx: &RequestContext,
        id: &str,
        range: Option<&str>,
    ) -> Result<Option<Download>, DataError> {
        let image = self.images.get_for(ctx, id, Action::DownloadImage).await?;
        data_rules::check_download(&image, ctx)?;
        let mut locations = self.uploads.locations(&image.id).await?;
        // Heavier stores first, as Glance orders them; the sort is stable.
        locations.sort_by_key(|l| std::cmp::Reverse(self.stores.weight(l.store_id().as_deref())));
        if locations.is_empty() {
            return Ok(None);
        }
        let Some(size) = image.size.and_then(|s| u64::try_from(s).ok()) else {
            return Err(DataError::Corrupt {
                image: image.id.to_string(),
                why: "it has data but no size".to_owned(),
            });
        };
        let range = match range {
            Some(header) => parse_range(header, size)?,
            None => None,
        };
        if let Some(download) = self
            .download_cached(ctx, &image, &locations, size, range)
            .await?
        {
            return Ok(Some(self.told(ctx, &image, download)));
        }
        let body = self
            .open_stores(ctx, &image, &locations, size, range)
            .await?;
        let download = Download {
            size,
            range,
            content_length: range.map_or(size, |r| r.len()),
            checksum: image.checksum.clone(),
            body,
        };
        Ok(Some(self.told(ctx, &image, download)))
    }

    /// `download`, whose last byte sent tells `image.send`, from the cache or a store alike.
    fn told(&self, ctx: &RequestContext, image: &Image, mut download: Download) -> Download {
        download.body = super::sent::notify_when_sent(
            download.body,
            &self.images,
            ctx,
            image,
            download.content_length,
        );
        download
    }

    /// The image's data (`range` of it) from the first of `locations` (heaviest store
    /// first) that reads, checked and counted.
    pub(super) async fn open_stores(
        &self,
        ctx: &RequestContext,
        image: &Image,
        locations: &[StoredLocation],
        size: u64,
        range: Option<ByteRange>,
    ) -> Result<DataStream, DataError> {
        // The locations in order; one whose store fails is skipped for the next.
        let mut last_error = None;
        for (index, stored) in locations.iter().enumerate() {
            let more = index + 1 < locations.len();
            let location = match Location::parse(&stored.url) {
                Ok(location) => location,
                Err(e) => {
                    last_error = Some(e.into());
                    continue;
                }
            };
            let Some(entry) = self
                .stores
                .for_location(&location, stored.store_id().as_deref())
            else {
                last_error = Some(DataError::Internal(format!(
                    "no configured store serves {}",
                    location.scheme()
                )));
                continue;
            };
            let store = match entry.for_request(ctx) {
                Ok(store) => store,
                Err(e) => {
                    last_error = Some(e.into());
                    continue;
                }
            };
            if range.is_some() && !store.capabilities().ranged_read {
                last_error = Some(
                    StoreError::Unsupported {
                        store: entry.id.clone(),
                        what: "ranged reads",
                    }
                    .into(),
                );
                continue;
            }
            // Missing or damaged data at one location: log it and try the next.
            let opened = match store.reader(&location, range).await {
                Ok(reader) => {
                    let verify = (range.is_none() && self.config.verify_download_checksum)
                        .then(|| image.checksum.clone())
                        .flatten();
                    serve(reader, size, image.id.to_string(), verify)
                }
                Err(StoreError::NotFound(_)) => Err(DataError::Corrupt {
                    image: image.id.to_string(),
                    why: "its data is missing from the store".to_owned(),
                }),
                Err(e) => Err(e.into()),
            };
            match opened {
                Ok(body) => return Ok(counted(body, store.name())),
                Err(e) => {
                    // The last failure is the answer, logged once with the request.
                    if more {
                        tracing::warn!(image.id = %image.id, store.name = store.name(), error = %e,
                            "cannot serve image data from this location; trying the next");
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| DataError::Internal("no readable location".to_owned())))
    }
}

fn serve(
    reader: ImageReader,
    size: u64,
    image: String,
    verify_md5: Option<String>,
) -> Result<DataStream, DataError> {
    if reader.stored_size != size {
        return Err(DataError::Corrupt {
            image,
            why: format!("{} bytes stored, {size} recorded", reader.stored_size),
        });
    }
    let len = reader.range.len();
    let body = match reader.body {
        ReaderBody::File(file) => file_stream(file, reader.range, image.clone()),
        ReaderBody::Stream(stream) => stream,
    };
    Ok(checked(body, len, verify_md5, image))
}

/// `body`, adding each block to `glint_store_bytes_read_total` of `store` as it is passed on:
/// a download cut short counts what was sent, not what the image holds.
pub(super) fn counted(body: DataStream, store: &str) -> DataStream {
    use futures_util::TryStreamExt as _;
    let read = crate::metrics::global().store_read(store);
    Box::pin(body.inspect_ok(move |block| read.add(block.len() as u64)))
}

/// Blocks read ahead of the socket: the reader keeps this many ready while the server sends,
/// so the disk (or page cache) and the network overlap instead of taking turns.
const READ_AHEAD: usize = 4;

/// The reader's state between blocks.
struct BlockReader {
    file: std::sync::Arc<File>,
    position: u64,
    end: u64,
}

/// Reads `range` of `file` up to `READ_AHEAD` blocks ahead of the sender. Each block is read
/// in a short task on the blocking pool; waiting for a slow client holds no thread. Reading
/// stops as soon as the download is dropped.
pub(super) fn file_stream(file: File, range: ByteRange, image: String) -> DataStream {
    let (blocks, receiver) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(READ_AHEAD);
    let mut reader = BlockReader {
        file: std::sync::Arc::new(file),
        position: range.start,
        end: range.end,
    };
    tokio::spawn(async move {
        while reader.position < reader.end {
            let step = tokio::task::spawn_blocking(move || {
                let block = read_block(&mut reader);
                (reader, block)
            })
            .await;
            let (back, block) = match step {
                Ok(step) => step,
                Err(e) => {
                    let _ = blocks.send(Err(io::Error::other(e))).await;
                    return;
                }
            };
            reader = back;
            let failed = block.is_err();
            if let Err(e) = &block {
                tracing::error!(image.id = %image, error = %e, "image download cut");
            }
            // A closed channel: the client went away, stop reading.
            if blocks.send(block).await.is_err() || failed {
                return;
            }
        }
    });
    Box::pin(stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|block| (block, receiver))
    }))
}

/// Reads the next block.
fn read_block(reader: &mut BlockReader) -> io::Result<Bytes> {
    let want = usize::try_from((reader.end - reader.position).min(READ_BLOCK as u64))
        .unwrap_or(READ_BLOCK);
    let mut buffer = BytesMut::zeroed(want);
    let mut filled = 0;
    while filled < want {
        let n = reader
            .file
            .read_at(&mut buffer[filled..], reader.position + filled as u64)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "image data is shorter than recorded",
            ));
        }
        filled += n;
    }
    reader.position += want as u64;
    Ok(buffer.freeze())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use futures_util::StreamExt;

    use super::*;

    async fn collect(stream: DataStream) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut stream = stream;
        while let Some(block) = stream.next().await {
            out.extend_from_slice(&block?);
        }
        Ok(out)
    }

    fn temp_file(data: &[u8]) -> File {
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(data).expect("write");
        file
    }

    #[tokio::test]
    async fn streams_whole_files_and_ranges() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let whole = file_stream(
            temp_file(&data),
            ByteRange {
                start: 0,
                end: data.len() as u64,
            },
            "i".into(),
        );
        assert_eq!(collect(whole).await.expect("reads"), data);
        let part = file_stream(
            temp_file(&data),
            ByteRange { start: 10, end: 20 },
            "i".into(),
        );
        assert_eq!(collect(part).await.expect("reads"), &data[10..20]);
    }

    #[tokio::test]
    async fn a_shrunken_file_cuts_the_stream() {
        let stream = file_stream(
            temp_file(b"short"),
            ByteRange { start: 0, end: 100 },
            "i".into(),
        );
        assert_eq!(
            collect(stream).await.expect_err("cut").kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[tokio::test]
    async fn a_size_other_than_recorded_serves_nothing() {
        let reader = ImageReader {
            stored_size: 5,
            range: ByteRange { start: 0, end: 5 },
            body: ReaderBody::File(temp_file(b"12345")),
        };
        assert!(matches!(
            serve(reader, 6, "i".into(), None),
            Err(DataError::Corrupt { .. })
        ));
    }
}
