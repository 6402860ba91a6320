//! Digests computed while the data streams: md5 (`checksum`) and the configured multihash
//! (`os_hash_value`), each fed by its own bounded channel and hashing each chunk on the
//! blocking pool, so one upload costs the slower of the two hashes, not their sum, and never
//! buffers more than a few chunks. A worker holds a blocking thread only while it hashes a
//! chunk, never while it waits for one, so stalled uploads cannot exhaust the pool.

use glint_store::Chunk;
use openssl::hash::{Hasher, MessageDigest};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::error::DataError;

/// Chunks a hash worker may fall behind by before the upload waits for it.
const DEPTH: usize = 4;

/// The digests of a finished stream, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub md5: String,
    pub algorithm: String,
    pub value: String,
}

pub struct Digester {
    algorithm: String,
    senders: Vec<mpsc::Sender<Chunk>>,
    workers: Vec<JoinHandle<Result<String, DataError>>>,
}

impl Digester {
    /// Starts the two hash workers. `algorithm` was validated with the configuration.
    pub fn start(algorithm: &str) -> Result<Digester, DataError> {
        let multihash = MessageDigest::from_name(algorithm)
            .ok_or_else(|| DataError::Internal(format!("unknown hashing_algorithm {algorithm}")))?;
        let mut senders = Vec::new();
        let mut workers = Vec::new();
        for digest in [MessageDigest::md5(), multihash] {
            let hasher = Hasher::new(digest)
                .map_err(|e| DataError::Internal(format!("hashing failed: {e}")))?;
            let (tx, rx) = mpsc::channel(DEPTH);
            senders.push(tx);
            workers.push(tokio::spawn(hash_all(hasher, rx)));
        }
        Ok(Digester {
            algorithm: algorithm.to_owned(),
            senders,
            workers,
        })
    }

    /// Hands `chunk` to both workers (a reference-count clone each, no copy); waits only when
    /// a worker is `DEPTH` chunks behind.
    pub async fn feed(&self, chunk: &Chunk) -> Result<(), DataError> {
        for sender in &self.senders {
            sender
                .send(chunk.clone())
                .await
                .map_err(|_| DataError::Internal("a hash worker stopped".to_owned()))?;
        }
        Ok(())
    }

    /// Waits for both workers to drain and returns the digests.
    pub async fn finish(self) -> Result<Digests, DataError> {
        drop(self.senders);
        let mut hex = Vec::new();
        for worker in self.workers {
            hex.push(
                worker
                    .await
                    .map_err(|e| DataError::Internal(format!("hash worker failed: {e}")))??,
            );
        }
        let value = hex.pop().unwrap_or_default();
        let md5 = hex.pop().unwrap_or_default();
        Ok(Digests {
            md5,
            algorithm: self.algorithm,
            value,
        })
    }
}

/// One digest over every chunk received, each hashed on the blocking pool.
async fn hash_all(
    mut hasher: Hasher,
    mut chunks: mpsc::Receiver<Chunk>,
) -> Result<String, DataError> {
    let failed = |e: &dyn std::fmt::Display| DataError::Internal(format!("hashing failed: {e}"));
    while let Some(chunk) = chunks.recv().await {
        hasher =
            tokio::task::spawn_blocking(move || -> Result<Hasher, openssl::error::ErrorStack> {
                for frame in chunk.frames() {
                    hasher.update(frame)?;
                }
                Ok(hasher)
            })
            .await
            .map_err(|e| failed(&e))?
            .map_err(|e| failed(&e))?;
    }
    Ok(to_hex(&hasher.finish().map_err(|e| failed(&e))?))
}

pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn digests_match_known_values_across_chunk_boundaries() {
        let digester = Digester::start("sha512").expect("starts");
        digester
            .feed(&Chunk::new(vec![
                Bytes::from_static(b"a"),
                Bytes::from_static(b"b"),
            ]))
            .await
            .expect("feeds");
        digester
            .feed(&Chunk::from(Bytes::from_static(b"c")))
            .await
            .expect("feeds");
        let digests = digester.finish().await.expect("finishes");
        assert_eq!(digests.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(&digests.value[..16], "ddaf35a193617aba");
        assert_eq!(digests.value.len(), 128);
        assert_eq!(digests.algorithm, "sha512");
    }

    #[tokio::test]
    async fn empty_data_has_the_empty_digests() {
        let digests = Digester::start("sha256")
            .expect("starts")
            .finish()
            .await
            .expect("finishes");
        assert_eq!(digests.md5, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            digests.value,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
