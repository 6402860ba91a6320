//! Request bodies of the HTTP stores: whole bytes (requests that may be sent again), or image
//! data streamed to the server as it arrives, through a small queue that gives the data path
//! its back-pressure.
//!
//! A streamed body ends only when the writer says so (`Feed::End`). If the writer goes away
//! first (an abort, a dropped task), the body fails and hyper drops the connection: an upload
//! cut short must never look finished to the server.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::Chunk;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bytes `start..end` of a chunk (a Swift segment boundary may fall inside one).
pub struct Piece {
    pub chunk: Chunk,
    pub start: usize,
    pub end: usize,
}

pub enum Feed {
    Data(Piece),
    End,
}

pub enum UploadBody {
    Full(Option<Bytes>),
    Stream(StreamBody),
}

impl UploadBody {
    pub fn empty() -> UploadBody {
        UploadBody::Full(None)
    }

    pub fn bytes(bytes: Bytes) -> UploadBody {
        UploadBody::Full(Some(bytes).filter(|b| !b.is_empty()))
    }
}

pub struct StreamBody {
    feed: mpsc::Receiver<Feed>,
    /// The frames of the piece being sent; `held` keeps its chunk (and its share of the memory
    /// budget) alive until the next one replaces it.
    frames: VecDeque<Bytes>,
    held: Option<Chunk>,
    size: Option<u64>,
    ended: bool,
}

impl StreamBody {
    /// A body of `size` bytes if known (sent with `Content-Length`), else chunked, fed through
    /// a queue of `depth` pieces.
    pub fn new(size: Option<u64>, depth: usize) -> (mpsc::Sender<Feed>, StreamBody) {
        let (sender, feed) = mpsc::channel(depth.max(1));
        (
            sender,
            StreamBody {
                feed,
                frames: VecDeque::new(),
                held: None,
                size,
                ended: false,
            },
        )
    }
}

/// The frames of `piece`, cut to its range, sharing the chunk's memory.
fn frames_of(piece: &Piece) -> VecDeque<Bytes> {
    let mut out = VecDeque::new();
    let mut at = 0;
    for frame in piece.chunk.frames() {
        let (from, to) = (at, at + frame.len());
        at = to;
        let start = piece.start.max(from);
        let end = piece.end.min(to);
        if start < end {
            out.push_back(frame.slice(start - from..end - from));
        }
    }
    out
}

impl Body for UploadBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UploadBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            UploadBody::Stream(stream) => loop {
                if let Some(frame) = stream.frames.pop_front() {
                    return Poll::Ready(Some(Ok(Frame::data(frame))));
                }
                if stream.ended {
                    return Poll::Ready(None);
                }
                match stream.feed.poll_recv(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Feed::Data(piece))) => {
                        stream.frames = frames_of(&piece);
                        stream.held = Some(piece.chunk);
                    }
                    Poll::Ready(Some(Feed::End)) => {
                        stream.ended = true;
                        stream.held = None;
                    }
                    Poll::Ready(None) => {
                        stream.held = None;
                        return Poll::Ready(Some(Err("the upload was abandoned".into())));
                    }
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UploadBody::Full(bytes) => bytes.is_none(),
            UploadBody::Stream(stream) => stream.ended && stream.frames.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UploadBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            UploadBody::Stream(StreamBody {
                size: Some(size), ..
            }) => SizeHint::with_exact(*size),
            UploadBody::Stream(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_cut_across_frames() {
        let chunk = Chunk::new(vec![
            Bytes::from_static(b"abc"),
            Bytes::from_static(b"defg"),
            Bytes::from_static(b"hi"),
        ]);
        let cut = |start, end| {
            frames_of(&Piece {
                chunk: chunk.clone(),
                start,
                end,
            })
            .into_iter()
            .collect::<Vec<_>>()
        };
        assert_eq!(cut(0, 9), ["abc", "defg", "hi"]);
        assert_eq!(cut(2, 6), ["c", "def"]);
        assert_eq!(cut(3, 7), ["defg"]);
        assert_eq!(cut(8, 9), ["i"]);
        assert!(cut(4, 4).is_empty());
    }
}
