//! One check over every store's reader: exactly the bytes recorded, and with
//! `verify_download_checksum` the bytes recorded.
//!
//! A stream that ends early or runs long is cut with an error, so clients see an incomplete
//! download, never a short or padded "complete" one. When the md5 is verified, each block is
//! held back until the next arrives and the last one until the digest matches; on a mismatch
//! the transfer is cut before its end.

use std::io;

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use glint_store::ByteStream;
use openssl::hash::{Hasher, MessageDigest};

use super::digest::to_hex;

struct Check {
    inner: ByteStream,
    /// Bytes still due.
    remaining: u64,
    /// md5 so far and the expected hex, when verifying.
    md5: Option<(Hasher, String)>,
    held: Option<Bytes>,
    image: String,
    done: bool,
}

/// `inner` checked to yield exactly `len` bytes, and, given `md5`, bytes whose md5 is it.
pub(super) fn checked(
    inner: ByteStream,
    len: u64,
    md5: Option<String>,
    image: String,
) -> ByteStream {
    let md5 = md5.and_then(|expected| {
        Hasher::new(MessageDigest::md5())
            .ok()
            .map(|h| (h, expected))
    });
    let check = Check {
        inner,
        remaining: len,
        md5,
        held: None,
        image,
        done: false,
    };
    Box::pin(stream::unfold(check, |mut check| async move {
        if check.done {
            return None;
        }
        let item = check.next_block().await;
        if let Some(Err(e)) = &item {
            check.done = true;
            tracing::error!(image.id = %check.image, error = %e, "image download cut");
        }
        item.map(|item| (item, check))
    }))
}

impl Check {
    async fn next_block(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            match self.inner.next().await {
                Some(Ok(block)) if block.is_empty() => continue,
                Some(Ok(block)) => {
                    let len = block.len() as u64;
                    if len > self.remaining {
                        return Some(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "the store returned more data than recorded",
                        )));
                    }
                    self.remaining -= len;
                    let Some((hasher, _)) = self.md5.as_mut() else {
                        return Some(Ok(block));
                    };
                    if let Err(e) = hasher.update(&block) {
                        return Some(Err(io::Error::other(e)));
                    }
                    match self.held.replace(block) {
                        Some(previous) => return Some(Ok(previous)),
                        None => continue,
                    }
                }
                Some(Err(e)) => return Some(Err(e)),
                None => {
                    self.done = true;
                    if self.remaining > 0 {
                        return Some(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "image data is shorter than recorded",
                        )));
                    }
                    let (mut hasher, expected) = self.md5.take()?;
                    let actual = match hasher.finish() {
                        Ok(digest) => to_hex(&digest),
                        Err(e) => return Some(Err(io::Error::other(e))),
                    };
                    if actual != expected {
                        return Some(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("image data does not match its checksum (expected {expected}, read {actual})"),
                        )));
                    }
                    return self.held.take().map(Ok);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(data: &[u8], size: usize) -> ByteStream {
        let blocks: Vec<io::Result<Bytes>> = data
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Box::pin(stream::iter(blocks))
    }

    async fn collect(mut stream: ByteStream) -> (Vec<u8>, Option<io::Error>) {
        let mut out = Vec::new();
        while let Some(block) = stream.next().await {
            match block {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    fn md5(data: &[u8]) -> String {
        to_hex(&openssl::hash::hash(MessageDigest::md5(), data).expect("md5"))
    }

    #[tokio::test]
    async fn passes_exact_data_and_verifies_it() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (out, error) = collect(checked(blocks(&data, 4096), 100_000, None, "i".into())).await;
        assert!(error.is_none());
        assert_eq!(out, data);
        let (out, error) = collect(checked(
            blocks(&data, 4096),
            100_000,
            Some(md5(&data)),
            "i".into(),
        ))
        .await;
        assert!(error.is_none());
        assert_eq!(out, data);
    }

    #[tokio::test]
    async fn a_checksum_mismatch_holds_back_the_last_block() {
        let data = vec![7u8; 50_000];
        let (out, error) = collect(checked(
            blocks(&data, 4096),
            50_000,
            Some("0".repeat(32)),
            "i".into(),
        ))
        .await;
        assert_eq!(error.expect("cut").kind(), io::ErrorKind::InvalidData);
        assert!(out.len() < data.len());
    }

    #[tokio::test]
    async fn short_and_long_data_are_cut() {
        let data = vec![1u8; 10_000];
        let (_, short) = collect(checked(blocks(&data, 1000), 10_001, None, "i".into())).await;
        assert_eq!(short.expect("cut").kind(), io::ErrorKind::UnexpectedEof);
        let (out, long) = collect(checked(blocks(&data, 1000), 9_500, None, "i".into())).await;
        assert_eq!(long.expect("cut").kind(), io::ErrorKind::InvalidData);
        assert!(out.len() <= 9_500, "never more than recorded");
    }
}
