//! Reading an image (at its snapshot), whole or one range: a blocking task reads and sends
//! blocks through a queue of two, so a slow client slows the reading.

use bytes::Bytes;
use glint_store::{ByteRange, ImageReader, ReaderBody, StoreError};
use tokio::sync::mpsc;

use crate::error::store_error;
use crate::Shared;

/// The size of each read.
const BLOCK: u64 = 4 << 20;
/// Blocks read ahead of the client.
const AHEAD: usize = 2;

pub(crate) async fn open(
    shared: &Shared,
    pool: String,
    name: String,
    snap: Option<String>,
    shown: String,
    range: Option<ByteRange>,
) -> Result<ImageReader, StoreError> {
    let store = shared.config.name.clone();
    let opening = (store.clone(), shown.clone());
    let (image, size) = shared
        .run(&pool, move |io, _| {
            let (store, shown) = opening;
            let image = io
                .open(&name, snap.as_deref(), true)
                .map_err(|e| store_error(&store, &shown, e))?;
            let size = image.size().map_err(|e| store_error(&store, &shown, e))?;
            Ok((image, size))
        })
        .await?;
    let wanted = match range {
        Some(r) => ByteRange {
            start: r.start.min(size),
            end: r.end.min(size),
        },
        None => ByteRange {
            start: 0,
            end: size,
        },
    };
    let (blocks, body) = mpsc::channel::<std::io::Result<Bytes>>(AHEAD);
    tokio::task::spawn_blocking(move || {
        let mut at = wanted.start;
        while at < wanted.end {
            let len = (wanted.end - at).min(BLOCK) as usize;
            let mut buf = vec![0u8; len];
            let block = match image.read(at, &mut buf) {
                Ok(read) if read == len => Ok(Bytes::from(buf)),
                Ok(read) => Err(std::io::Error::other(format!(
                    "{shown}: read {read} bytes of {len} at {at}"
                ))),
                Err(e) => Err(std::io::Error::other(store_error(&store, &shown, e))),
            };
            let failed = block.is_err();
            // A client gone closes the queue: stop reading.
            if blocks.blocking_send(block).is_err() || failed {
                return;
            }
            at += len as u64;
        }
    });
    let stream = futures_util::stream::unfold(body, |mut body| async move {
        body.recv().await.map(|block| (block, body))
    });
    Ok(ImageReader {
        stored_size: size,
        range: wanted,
        body: ReaderBody::Stream(Box::pin(stream)),
    })
}
