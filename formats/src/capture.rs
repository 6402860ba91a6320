//! The two ways an inspector keeps bytes: a region at a known offset, filled as the stream
//! passes it, and the stream's last few bytes (footers). Both hold at most their length.

/// Bytes `[start, start + len)` of the stream.
#[derive(Debug, Clone)]
pub(crate) struct Region {
    start: u64,
    len: usize,
    data: Vec<u8>,
}

impl Region {
    pub(crate) fn new(start: u64, len: usize) -> Region {
        Region {
            start,
            len,
            data: Vec::new(),
        }
    }

    /// Keeps what of `data` (the stream from byte `at` on) belongs to the region.
    pub(crate) fn feed(&mut self, at: u64, data: &[u8]) {
        let next = self.start + self.data.len() as u64;
        let end = at + data.len() as u64;
        if self.is_full() || next < at || next >= end {
            return;
        }
        // `next - at < data.len()`, so both conversions fit.
        let from = usize::try_from(next - at).unwrap_or(data.len());
        let take = (self.len - self.data.len()).min(data.len() - from);
        if self.data.capacity() == 0 {
            self.data.reserve_exact(self.len.min(1 << 20));
        }
        self.data.extend_from_slice(&data[from..from + take]);
    }

    pub(crate) fn is_full(&self) -> bool {
        self.data.len() == self.len
    }

    /// Whether bytes the region still lacks have already gone past `position`: it was
    /// asked for too late (a structure pointing backwards) and can never fill.
    pub(crate) fn missed(&self, position: u64) -> bool {
        !self.is_full() && self.start + (self.data.len() as u64) < position
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data
    }
}

/// The last `len` bytes seen.
#[derive(Debug, Clone)]
pub(crate) struct Tail {
    len: usize,
    data: Vec<u8>,
}

impl Tail {
    pub(crate) fn new(len: usize) -> Tail {
        Tail {
            len,
            data: Vec::with_capacity(len),
        }
    }

    pub(crate) fn feed(&mut self, data: &[u8]) {
        if data.len() >= self.len {
            self.data.clear();
            self.data.extend_from_slice(&data[data.len() - self.len..]);
            return;
        }
        let excess = (self.data.len() + data.len()).saturating_sub(self.len);
        self.data.drain(..excess);
        self.data.extend_from_slice(data);
    }

    /// The last `len` bytes, or `None` if the stream was shorter.
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        (self.data.len() == self.len).then_some(self.data.as_slice())
    }
}

/// Fixed-width integers out of a captured slice; `None` when it is too short, so no parser
/// can index out of bounds.
pub(crate) fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub(crate) fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub(crate) fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

pub(crate) fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub(crate) fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub(crate) fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_fills_across_unaligned_feeds() {
        let stream: Vec<u8> = (0..=255).collect();
        for split in [1, 3, 7, 64, 256] {
            let mut region = Region::new(10, 20);
            let mut at = 0u64;
            for piece in stream.chunks(split) {
                region.feed(at, piece);
                at += piece.len() as u64;
            }
            assert!(region.is_full(), "split {split}");
            assert_eq!(region.bytes(), &stream[10..30], "split {split}");
        }
    }

    #[test]
    fn a_region_asked_for_late_is_missed() {
        let mut region = Region::new(4, 4);
        assert!(!region.missed(4));
        region.feed(6, &[1, 2, 3]);
        assert!(region.bytes().is_empty());
        assert!(region.missed(9));
    }

    #[test]
    fn a_tail_keeps_the_last_bytes() {
        let mut tail = Tail::new(4);
        tail.feed(&[1, 2]);
        assert_eq!(tail.bytes(), None);
        tail.feed(&[3]);
        tail.feed(&[4, 5]);
        assert_eq!(tail.bytes(), Some(&[2, 3, 4, 5][..]));
        tail.feed(&[6, 7, 8, 9, 10, 11]);
        assert_eq!(tail.bytes(), Some(&[8, 9, 10, 11][..]));
    }

    #[test]
    fn short_slices_read_as_none() {
        assert_eq!(be_u32(&[1, 2, 3], 0), None);
        assert_eq!(le_u64(&[0; 8], 1), None);
        assert_eq!(be_u16(&[1, 2], 0), Some(0x0102));
        assert_eq!(le_u16(&[1, 2], 0), Some(0x0201));
    }
}
