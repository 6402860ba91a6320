//! Reading an image (at its snapshot), whole or one range: a blocking task keeps two 4 MiB
//! reads in flight (librbd's aio) and sends blocks through a queue of two, so a slow client
//! slows the reading.

use std::collections::VecDeque;

use bytes::Bytes;
use glint_store::{ByteRange, ImageReader, ReaderBody, StoreError};
use tokio::sync::mpsc;

use crate::error::store_error;
use crate::rados::AioOp;
use crate::Shared;

/// The size of each read.
const BLOCK: u64 = 4 << 20;
/// Blocks read ahead of the client.
const AHEAD: usize = 2;
/// Reads in flight at once.
const IN_FLIGHT: usize = 2;

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
        // Reads in flight ahead of the one being sent, as `rbd export` keeps several.
        let mut reads: VecDeque<(u64, usize, AioOp)> = VecDeque::new();
        let mut next = wanted.start;
        loop {
            while reads.len() < IN_FLIGHT && next < wanted.end {
                let len = (wanted.end - next).min(BLOCK) as usize;
                match image.read_async(next, len) {
                    Ok(read) => reads.push_back((next, len, read)),
                    Err(e) => {
                        let _ = blocks.blocking_send(Err(std::io::Error::other(store_error(
                            &store, &shown, e,
                        ))));
                        return;
                    }
                }
                next += len as u64;
            }
            let Some((at, len, read)) = reads.pop_front() else {
                return;
            };
            let block = match read.wait_read() {
                Ok(buf) if buf.len() == len => Ok(Bytes::from(buf)),
                Ok(buf) => Err(std::io::Error::other(format!(
                    "{shown}: read {} bytes of {len} at {at}",
                    buf.len()
                ))),
                Err(e) => Err(std::io::Error::other(store_error(&store, &shown, e))),
            };
            let failed = block.is_err();
            // A client gone closes the queue: stop reading (the reads in flight are waited
            // for as they are dropped, before the image closes).
            if blocks.blocking_send(block).is_err() || failed {
                return;
            }
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
