//! `Chunk`: a batch of body frames shared, without copying, by the hashers and the writer.

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;

/// Frames of image data in order. Cloning shares them (a reference count), so the same bytes
/// go to every consumer of the data path without a copy; an optional guard (for example a
/// memory-budget permit) is released when the last clone is dropped.
#[derive(Clone)]
pub struct Chunk {
    inner: Arc<Inner>,
}

struct Inner {
    frames: Vec<Bytes>,
    len: usize,
    _guard: Option<Box<dyn Any + Send + Sync>>,
}

impl Chunk {
    pub fn new(frames: Vec<Bytes>) -> Chunk {
        Chunk::with_guard(frames, None)
    }

    /// A chunk that keeps `guard` alive as long as any clone of it exists.
    pub fn with_guard(frames: Vec<Bytes>, guard: Option<Box<dyn Any + Send + Sync>>) -> Chunk {
        let len = frames.iter().map(Bytes::len).sum();
        Chunk {
            inner: Arc::new(Inner {
                frames,
                len,
                _guard: guard,
            }),
        }
    }

    /// Total bytes.
    pub fn len(&self) -> usize {
        self.inner.len
    }

    pub fn is_empty(&self) -> bool {
        self.inner.len == 0
    }

    pub fn frames(&self) -> &[Bytes] {
        &self.inner.frames
    }
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("frames", &self.inner.frames.len())
            .field("len", &self.inner.len)
            .finish()
    }
}

impl From<Bytes> for Chunk {
    fn from(bytes: Bytes) -> Chunk {
        Chunk::new(vec![bytes])
    }
}
