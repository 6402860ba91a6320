//! Compressed data on its way into staging. With the `image_decompression` import plugin on,
//! staged data that starts as a zip, LHA or gzip file is what the plugin unpacks before any
//! store sees it: it cannot be the declared disk format yet, so it is staged uninspected. The
//! unpacked data is inspected as usual when the import writes it into each store.

use glint_store::Chunk;

use super::{Inspection, Inspector};
use crate::datapath::DataError;

/// The archive and compression formats Glance's `image_decompression` plugin recognises, by
/// their magic numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `PK\x03\x04` at offset 0.
    Zip,
    /// `-lh` at offset 2 (the compression method of the first header).
    Lha,
    /// `\x1f\x8b\x08` (gzip, deflate) at offset 0.
    Gzip,
}

impl Compression {
    /// The first bytes that tell every format apart.
    pub const HEAD: usize = 5;

    /// The format `head` (the data's first bytes) starts, tried in Glance's order.
    pub fn detect(head: &[u8]) -> Option<Compression> {
        if head.starts_with(b"PK\x03\x04") {
            Some(Compression::Zip)
        } else if head.get(2..5) == Some(b"-lh".as_slice()) {
            Some(Compression::Lha)
        } else if head.starts_with(b"\x1f\x8b\x08") {
            Some(Compression::Gzip)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Zip => "zip",
            Compression::Lha => "lha",
            Compression::Gzip => "gzip",
        }
    }
}

/// The staging inspector when compressed data may be staged: decides on the first
/// `Compression::HEAD` bytes whether the declared format's inspector sees the data at all.
pub(super) struct UnlessCompressed {
    declared: Box<dyn Inspector>,
    head: Vec<u8>,
    /// Chunks seen before the decision (only ever a few bytes' worth), for `declared`.
    held: Vec<Chunk>,
    /// `Some(true)`: compressed, passed uninspected.
    compressed: Option<bool>,
}

impl UnlessCompressed {
    pub(super) fn new(declared: Box<dyn Inspector>) -> UnlessCompressed {
        UnlessCompressed {
            declared,
            head: Vec::with_capacity(Compression::HEAD),
            held: Vec::new(),
            compressed: None,
        }
    }

    fn decide(&mut self) -> Result<(), DataError> {
        let format = Compression::detect(&self.head);
        self.compressed = Some(format.is_some());
        match format {
            Some(format) => {
                tracing::info!(
                    compression = format.name(),
                    "compressed data staged uninspected, for image_decompression"
                );
                self.held.clear();
            }
            None => {
                for chunk in std::mem::take(&mut self.held) {
                    self.declared.inspect(&chunk)?;
                }
            }
        }
        Ok(())
    }
}

impl Inspector for UnlessCompressed {
    fn inspect(&mut self, chunk: &Chunk) -> Result<(), DataError> {
        match self.compressed {
            Some(true) => Ok(()),
            Some(false) => self.declared.inspect(chunk),
            None => {
                for frame in chunk.frames() {
                    let wanted = Compression::HEAD - self.head.len();
                    self.head
                        .extend_from_slice(&frame[..wanted.min(frame.len())]);
                }
                self.held.push(chunk.clone());
                if self.head.len() >= Compression::HEAD {
                    self.decide()?;
                }
                Ok(())
            }
        }
    }

    fn finish(mut self: Box<Self>, size: u64) -> Result<Inspection, DataError> {
        // Data shorter than the head: decided on what there is.
        if self.compressed.is_none() {
            self.decide()?;
        }
        if self.compressed == Some(true) {
            Ok(Inspection { virtual_size: None })
        } else {
            self.declared.finish(size)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::InspectionConfig;
    use bytes::Bytes;

    #[test]
    fn formats_are_known_by_glances_magic_numbers() {
        assert_eq!(
            Compression::detect(b"PK\x03\x04\x14\x00"),
            Some(Compression::Zip)
        );
        assert_eq!(
            Compression::detect(b"\x1a\x2b-lh0-"),
            Some(Compression::Lha)
        );
        assert_eq!(
            Compression::detect(b"\x1f\x8b\x08\x00"),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::detect(b"\x1f\x8b"), None);
        assert_eq!(Compression::detect(b"QFI\xfb\x00"), None);
        assert_eq!(Compression::detect(b"PK\x05\x06"), None);
        assert_eq!(Compression::detect(b""), None);
    }

    fn staging_inspector() -> Box<dyn Inspector> {
        let declared =
            super::super::for_image(Some("qcow2"), Some("bare"), &InspectionConfig::default());
        Box::new(UnlessCompressed::new(declared))
    }

    fn chunk(bytes: &'static [u8]) -> Chunk {
        Chunk::new(vec![Bytes::from_static(bytes)])
    }

    #[test]
    fn compressed_data_passes_whatever_format_was_declared() {
        let mut inspector = staging_inspector();
        // The head may come in pieces.
        inspector.inspect(&chunk(b"\x1f\x8b")).expect("undecided");
        inspector
            .inspect(&chunk(b"\x08\x00\x00rest"))
            .expect("gzip passes");
        inspector.inspect(&chunk(&[0; 4096])).expect("gzip passes");
        assert_eq!(
            inspector.finish(4104).expect("accepted"),
            Inspection { virtual_size: None }
        );
    }

    #[test]
    fn other_data_is_still_inspected_as_declared() {
        let mut inspector = staging_inspector();
        inspector.inspect(&chunk(b"\x00\x01")).expect("undecided");
        let refused = inspector.inspect(&chunk(&[0; 1 << 20]));
        assert!(
            matches!(refused, Err(DataError::ImageFormat(_))),
            "{refused:?}"
        );
        // Too short to decide before its end: judged as declared then.
        let inspector = staging_inspector();
        assert!(inspector.finish(0).is_err());
    }
}
