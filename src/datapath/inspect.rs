//! The format-inspection slot of the upload pipeline. Inspectors see every chunk as it
//! passes (by reference, inline: they read headers, not whole images) and report what the
//! data is. The qcow2/vmdk/vhd/iso inspectors and Glance's safety checks plug in here; until
//! then raw data gets its size as virtual size (as Glance records it) and other formats get
//! none, rather than a wrong one (Nova compares it with the flavor's disk).

use glint_store::Chunk;

use super::error::DataError;

/// What an inspector concluded about the uploaded data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The disk's virtual size in bytes, when the format tells it.
    pub virtual_size: Option<u64>,
}

/// A consumer of the upload stream that may refuse the data as soon as it has seen enough.
pub trait Inspector: Send {
    /// Looks at the next chunk; an error aborts the upload before more data is stored.
    fn inspect(&mut self, chunk: &Chunk) -> Result<(), DataError>;

    /// The verdict once all `size` bytes have passed.
    fn finish(self: Box<Self>, size: u64) -> Result<Inspection, DataError>;
}

/// The inspector for an image's declared `disk_format`.
pub fn for_disk_format(disk_format: Option<&str>) -> Box<dyn Inspector> {
    match disk_format {
        Some("raw") => Box::new(RawInspector),
        _ => Box::new(OpaqueInspector),
    }
}

/// Raw data: nothing to check, the virtual size is the size.
#[derive(Debug, Default)]
pub struct RawInspector;

impl Inspector for RawInspector {
    fn inspect(&mut self, _chunk: &Chunk) -> Result<(), DataError> {
        Ok(())
    }

    fn finish(self: Box<Self>, size: u64) -> Result<Inspection, DataError> {
        Ok(Inspection {
            virtual_size: Some(size),
        })
    }
}

/// A format no inspector understands yet: accepted, virtual size unknown.
#[derive(Debug, Default)]
pub struct OpaqueInspector;

impl Inspector for OpaqueInspector {
    fn inspect(&mut self, _chunk: &Chunk) -> Result<(), DataError> {
        Ok(())
    }

    fn finish(self: Box<Self>, _size: u64) -> Result<Inspection, DataError> {
        Ok(Inspection { virtual_size: None })
    }
}
