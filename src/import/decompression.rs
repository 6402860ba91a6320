//! The `image_decompression` import plugin's work: a local file that starts as a zip, LHA or
//! gzip file (Glance's magic numbers, `datapath::inspect::Compression`) unpacked into another
//! local file, as Glance's plugin does. Archives must hold exactly one file. Everything
//! streams through a fixed buffer, and the output is capped: a decompression bomb stops at
//! the most the image may hold instead of filling the disk. Formats and checksums are the
//! decoders' (zip checks each entry's CRC-32, LHA its CRC-16, gzip each member's CRC-32).

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use crate::datapath::inspect::Compression;

/// What is read and written at a time.
const BUFFER: usize = 1 << 20;

/// Why a decompression was refused or failed (the task's message).
#[derive(Debug, thiserror::Error)]
pub enum DecompressionError {
    /// Glance's words, for an archive of any other number of entries than one.
    #[error("Archive contains more than one file.")]
    NotOneFile,
    #[error("The archive's only entry is a directory, not an image.")]
    Directory,
    #[error("The archive's file is encrypted: encrypted archives are not supported.")]
    Encrypted,
    #[error("The archive's file is compressed with {0}, which is not supported here.")]
    Method(String),
    #[error(
        "The decompressed image is larger than {max} bytes, the most it may be \
         (image_size_cap, or what the owner's storage quota leaves)."
    )]
    TooLarge { max: u64 },
    #[error("Invalid {format} data: {why}")]
    Corrupt { format: &'static str, why: String },
    /// The local disk failed (the work file), not the data.
    #[error("Cannot decompress the image: {0}")]
    Io(String),
    #[error("The decompression was stopped.")]
    Stopped,
}

/// Unpacks `input` (data in `format`) into `output`, writing at most `max` bytes: more fails
/// as soon as it is produced. `progress` hears the bytes written so far. The work runs on a
/// blocking thread, which stops soon after this future is dropped; whenever it does not
/// succeed, `output` is removed.
pub async fn decompress(
    format: Compression,
    input: &Path,
    output: &Path,
    max: u64,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
) -> Result<u64, DecompressionError> {
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let mut sink = Sink {
        path: output.to_owned(),
        file: None,
        written: 0,
        max,
        stop: stop.0.clone(),
        progress,
    };
    let (input, output) = (input.to_owned(), output.to_owned());
    let work = tokio::task::spawn_blocking(move || {
        let unpacked = match format {
            Compression::Gzip => gunzip(&input, &mut sink),
            Compression::Zip => unzip(&input, &mut sink),
            Compression::Lha => unlha(&input, &mut sink),
        };
        let outcome = unpacked.and_then(|()| sink.finish());
        // Removed here too: a caller that went away may have removed it before it was made.
        if outcome.is_err() {
            let _ = std::fs::remove_file(&output);
        }
        outcome
    });
    // `stop` lives until here: dropped early (the job dropped), it stops the thread.
    let outcome = work.await;
    drop(stop);
    outcome.map_err(|e| DecompressionError::Io(format!("the decompression thread failed: {e}")))?
}

/// Tells the blocking thread to stop when the async side goes away (the job was dropped).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The output file, and the cap it is held to.
struct Sink {
    path: PathBuf,
    /// Created on the first copy, so that a refused archive leaves no file.
    file: Option<File>,
    written: u64,
    max: u64,
    stop: Arc<AtomicBool>,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
}

impl Sink {
    /// Copies everything `decoder` yields; its errors are the data's (`format`).
    fn copy_from(
        &mut self,
        decoder: &mut dyn Read,
        format: Compression,
    ) -> Result<(), DecompressionError> {
        let file = match &mut self.file {
            Some(file) => file,
            slot @ None => {
                slot.insert(File::create(&self.path).map_err(|e| io_error(&self.path, e))?)
            }
        };
        let mut buffer = vec![0u8; BUFFER];
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Err(DecompressionError::Stopped);
            }
            let n = match decoder.read(&mut buffer) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(corrupt(
                        format,
                        &"the data ends before its compressed stream does",
                    ));
                }
                Err(e) => return Err(corrupt(format, &e)),
            };
            self.written += n as u64;
            if self.written > self.max {
                return Err(DecompressionError::TooLarge { max: self.max });
            }
            file.write_all(&buffer[..n])
                .map_err(|e| io_error(&self.path, e))?;
            (self.progress)(self.written);
        }
    }

    /// Refuses at once an entry that announces more than the cap (the copy would too).
    fn check_announced(&self, size: u64) -> Result<(), DecompressionError> {
        if size > self.max {
            return Err(DecompressionError::TooLarge { max: self.max });
        }
        Ok(())
    }

    fn finish(mut self) -> Result<u64, DecompressionError> {
        if let Some(mut file) = self.file.take() {
            file.flush().map_err(|e| io_error(&self.path, e))?;
        }
        Ok(self.written)
    }
}

fn corrupt(format: Compression, e: &dyn std::fmt::Display) -> DecompressionError {
    DecompressionError::Corrupt {
        format: format.name(),
        why: e.to_string(),
    }
}

fn io_error(path: &Path, e: io::Error) -> DecompressionError {
    DecompressionError::Io(format!("{}: {e}", path.display()))
}

fn open(path: &Path) -> Result<BufReader<File>, DecompressionError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| io_error(path, e))
}

/// gzip: every member, one after the other (as Python's gzip module reads them).
fn gunzip(input: &Path, sink: &mut Sink) -> Result<(), DecompressionError> {
    let mut decoder = flate2::bufread::MultiGzDecoder::new(open(input)?);
    sink.copy_from(&mut decoder, Compression::Gzip)
}

/// zip: one entry (a directory counts, as in Python's `namelist()`), stored or deflated.
fn unzip(input: &Path, sink: &mut Sink) -> Result<(), DecompressionError> {
    let format = Compression::Zip;
    let mut archive = zip::ZipArchive::new(open(input)?).map_err(|e| corrupt(format, &e))?;
    // The central directory keeps one entry per name; duplicates are more entries still.
    if archive.len() != 1 || archive.has_duplicate_names() {
        return Err(DecompressionError::NotOneFile);
    }
    let entry = archive.by_index_data(0).map_err(|e| corrupt(format, &e))?;
    if entry.is_dir() {
        return Err(DecompressionError::Directory);
    }
    if entry.encrypted() {
        return Err(DecompressionError::Encrypted);
    }
    let method = entry.compression();
    if !matches!(
        method,
        zip::CompressionMethod::Stored | zip::CompressionMethod::Deflated
    ) {
        return Err(DecompressionError::Method(format!("{method}")));
    }
    sink.check_announced(entry.size())?;
    let mut file = archive.by_index(0).map_err(|e| corrupt(format, &e))?;
    sink.copy_from(&mut file, format)
}

/// LHA: one entry, any method delharc decodes (lh0, lh1, lh4 to lh7). The headers are
/// counted first, the data skipped, as Glance lists the archive before extracting it.
fn unlha(input: &Path, sink: &mut Sink) -> Result<(), DecompressionError> {
    let format = Compression::Lha;
    let mut listing =
        delharc::LhaDecodeReader::new(open(input)?).map_err(|e| corrupt(format, &e))?;
    if listing.seek_next_file().map_err(|e| corrupt(format, &e))? {
        return Err(DecompressionError::NotOneFile);
    }
    let mut reader =
        delharc::LhaDecodeReader::new(open(input)?).map_err(|e| corrupt(format, &e))?;
    let header = reader.header();
    if header.is_directory() {
        return Err(DecompressionError::Directory);
    }
    if !reader.is_decoder_supported() {
        let method = String::from_utf8_lossy(&header.compression).into_owned();
        return Err(DecompressionError::Method(method));
    }
    sink.check_announced(header.original_size)?;
    sink.copy_from(&mut reader, format)?;
    reader.crc_check().map_err(|e| corrupt(format, &e))?;
    Ok(())
}

#[cfg(test)]
mod tests;
