//! The conformance suite every store driver passes against its real server.
//!
//! A driver's tests call [`conformance_tests!`](crate::conformance_tests) with an async
//! function that makes a fresh, empty store (its own directory, bucket or pool), so the cases
//! can run in parallel and count what they leave behind:
//!
//! ```text
//! async fn subject() -> glint_store::conformance::Subject { … }
//! glint_store::conformance_tests!(subject);
//! ```

use std::any::Any;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::{ByteRange, Chunk, ImageReader, Location, ReaderBody, Store, StoreError, WriteOptions};

/// A store under test, empty when made.
pub struct Subject {
    pub store: Box<dyn Store>,
    /// Locations the store must refuse: other schemes, other places of the same scheme.
    pub foreign: Vec<Location>,
    /// Whatever must live as long as the store (a temporary directory, a bucket's cleanup).
    pub keep: Option<Box<dyn Any + Send>>,
}

/// Generous options: no announced size, a large cap, room for any buffering.
pub fn options(size: Option<u64>) -> WriteOptions {
    WriteOptions {
        size,
        max_size: 1 << 40,
        memory: 1 << 30,
    }
}

/// The id of test image `n`: data is named after image ids, which are UUIDs.
pub fn image_id(n: u8) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// Deterministic, incompressible-looking bytes.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// `data` as chunks of uneven frames, the way a request body arrives.
fn chunks(data: &[u8]) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut rest = Bytes::copy_from_slice(data);
    let mut step = 1usize;
    while !rest.is_empty() {
        let mut frames = Vec::new();
        let mut len = 0;
        while len < (1 << 20) && !rest.is_empty() {
            let take = (step * 7919 % 300_000 + 1).min(rest.len());
            frames.push(rest.split_to(take));
            len += take;
            step += 1;
        }
        out.push(Chunk::new(frames));
    }
    out
}

/// Writes and commits `data` as image `id`.
pub async fn put(store: &dyn Store, id: &str, data: &[u8], announce: bool) -> crate::Stored {
    let size = announce.then_some(data.len() as u64);
    let mut writer = store
        .writer(id, &options(size))
        .await
        .expect("writer opens");
    for chunk in chunks(data) {
        writer.write(chunk).await.expect("write");
    }
    writer.commit().await.expect("commit")
}

/// Reads what `reader` yields, checking it matches its announced range.
pub async fn read_all(reader: ImageReader) -> Vec<u8> {
    let want = usize::try_from(reader.range.len()).expect("fits");
    let out = match reader.body {
        ReaderBody::File(file) => {
            let mut buffer = vec![0u8; want];
            file.read_exact_at(&mut buffer, reader.range.start)
                .expect("file reads");
            buffer
        }
        ReaderBody::Stream(mut stream) => {
            let mut out = Vec::with_capacity(want);
            while let Some(block) = stream.next().await {
                out.extend_from_slice(&block.expect("stream reads"));
            }
            out
        }
    };
    assert_eq!(out.len(), want, "the body yields exactly its range");
    out
}

async fn committed_ids(store: &dyn Store) -> Vec<String> {
    store
        .committed_data()
        .await
        .expect("lists committed data")
        .into_iter()
        .map(|d| d.image_id)
        .collect()
}

async fn check_round_trip(subject: &Subject, id: &str, data: &[u8], announce: bool) {
    let store = subject.store.as_ref();
    let stored = put(store, id, data, announce).await;
    assert_eq!(stored.size, data.len() as u64);
    assert!(store.owns(&stored.location), "owns {}", stored.location);
    assert!(
        !stored.location.has_credentials(),
        "new locations keep no credentials"
    );
    let reader = store.reader(&stored.location, None).await.expect("reader");
    assert_eq!(reader.stored_size, data.len() as u64);
    assert_eq!(
        reader.range,
        ByteRange {
            start: 0,
            end: data.len() as u64
        }
    );
    assert!(
        read_all(reader).await == data,
        "reads back what was written"
    );
    assert_eq!(
        store.size(&stored.location).await.expect("size"),
        data.len() as u64
    );
    assert!(committed_ids(store).await.contains(&id.to_owned()));
}

/// An announced length, several chunks.
pub async fn known_length(subject: &Subject) {
    check_round_trip(subject, &image_id(1), &data(3 << 20 | 12_345, 1), true).await;
}

/// No announced length: the store learns the size at commit.
pub async fn unknown_length(subject: &Subject) {
    check_round_trip(subject, &image_id(2), &data(5 << 20 | 777, 2), false).await;
    check_round_trip(subject, &image_id(3), b"x", false).await;
}

/// Zero bytes, announced and not.
pub async fn empty_data(subject: &Subject) {
    check_round_trip(subject, &image_id(4), b"", true).await;
    check_round_trip(subject, &image_id(5), b"", false).await;
}

/// Ranges at the start, the middle and the end, clamped past the end.
pub async fn ranged_reads(subject: &Subject) {
    let store = subject.store.as_ref();
    let bytes = data(2 << 20 | 3, 3);
    let stored = put(store, &image_id(6), &bytes, true).await;
    let len = bytes.len() as u64;
    for (start, end) in [
        (0, 1),
        (1000, 1_500_000),
        (len - 10, len),
        (len - 5, len + 100),
    ] {
        let range = ByteRange { start, end };
        let reader = store
            .reader(&stored.location, Some(range))
            .await
            .expect("ranged reader");
        assert_eq!(reader.stored_size, len);
        let clamped = ByteRange {
            start,
            end: end.min(len),
        };
        assert_eq!(reader.range, clamped);
        let got = read_all(reader).await;
        assert!(
            got == bytes[start as usize..clamped.end as usize],
            "range {start}-{end}"
        );
    }
}

/// `abort` leaves nothing, and the image can be written again.
pub async fn abort(subject: &Subject) {
    let store = subject.store.as_ref();
    let mut writer = store
        .writer(&image_id(7), &options(None))
        .await
        .expect("writer");
    for chunk in chunks(&data(2 << 20, 4)) {
        writer.write(chunk).await.expect("write");
    }
    writer.abort().await.expect("abort");
    assert!(!committed_ids(store).await.contains(&image_id(7)));
    assert_eq!(
        store.sweep_abandoned(Duration::ZERO).await.expect("sweeps"),
        0,
        "abort left nothing for the sweep"
    );
    check_round_trip(subject, &image_id(7), b"again", true).await;
}

/// A writer dropped without commit or abort: nothing becomes visible, and the sweep removes
/// whatever it left.
pub async fn drop_without_commit(subject: &Subject) {
    let store = subject.store.as_ref();
    let mut writer = store
        .writer(&image_id(8), &options(None))
        .await
        .expect("writer");
    for chunk in chunks(&data(1 << 20, 5)) {
        writer.write(chunk).await.expect("write");
    }
    drop(writer);
    assert!(!committed_ids(store).await.contains(&image_id(8)));
    store.sweep_abandoned(Duration::ZERO).await.expect("sweeps");
    assert_eq!(
        store.sweep_abandoned(Duration::ZERO).await.expect("sweeps"),
        0,
        "the first sweep removed everything"
    );
    assert!(!committed_ids(store).await.contains(&image_id(8)));
}

/// The sweep leaves a live writer alone when it is younger than the age given.
pub async fn sweep_spares_live_writers(subject: &Subject) {
    let store = subject.store.as_ref();
    let bytes = data(1 << 20, 6);
    let mut writer = store
        .writer(&image_id(9), &options(None))
        .await
        .expect("writer");
    writer
        .write(Chunk::from(Bytes::copy_from_slice(&bytes)))
        .await
        .expect("write");
    assert_eq!(
        store
            .sweep_abandoned(Duration::from_secs(3600))
            .await
            .expect("sweeps"),
        0
    );
    let stored = writer.commit().await.expect("commit after the sweep");
    let reader = store.reader(&stored.location, None).await.expect("reader");
    assert!(read_all(reader).await == bytes);
}

/// Before `commit` returns, nothing of the data is visible.
pub async fn commit_is_the_only_publication(subject: &Subject) {
    let store = subject.store.as_ref();
    let mut writer = store
        .writer(&image_id(10), &options(Some(3)))
        .await
        .expect("writer");
    writer
        .write(Chunk::from(Bytes::from_static(b"abc")))
        .await
        .expect("write");
    assert!(!committed_ids(store).await.contains(&image_id(10)));
    let stored = writer.commit().await.expect("commit");
    assert!(committed_ids(store).await.contains(&image_id(10)));
    assert_eq!(store.size(&stored.location).await.expect("size"), 3);
}

/// Data already committed for an image is never replaced.
pub async fn existing_data_is_kept(subject: &Subject) {
    let store = subject.store.as_ref();
    let stored = put(store, &image_id(11), b"first", true).await;
    let second = async {
        let mut writer = store.writer(&image_id(11), &options(Some(6))).await?;
        writer
            .write(Chunk::from(Bytes::from_static(b"second")))
            .await?;
        writer.commit().await
    }
    .await;
    assert!(
        matches!(second, Err(StoreError::AlreadyExists(_))),
        "{second:?}"
    );
    let reader = store.reader(&stored.location, None).await.expect("reader");
    assert_eq!(read_all(reader).await, b"first");
    assert_eq!(
        store.sweep_abandoned(Duration::ZERO).await.expect("sweeps"),
        0,
        "the refused write left nothing"
    );
}

/// Two writers for the same image (a node's upload reset while it ran, and a new one): the
/// data of one of them is stored whole, and the other leaves nothing behind.
pub async fn racing_writers(subject: &Subject) {
    let store = subject.store.as_ref();
    let mut first = store
        .writer(&image_id(12), &options(Some(5)))
        .await
        .expect("writer");
    let mut second = store
        .writer(&image_id(12), &options(Some(6)))
        .await
        .expect("writer");
    first
        .write(Chunk::from(Bytes::from_static(b"first")))
        .await
        .expect("write");
    second
        .write(Chunk::from(Bytes::from_static(b"second")))
        .await
        .expect("write");
    let stored = first.commit().await.expect("the first commit");
    let expected: &[u8] = match second.commit().await {
        Ok(_) => b"second",
        Err(StoreError::AlreadyExists(_)) => b"first",
        Err(e) => panic!("the second commit failed otherwise: {e}"),
    };
    let reader = store.reader(&stored.location, None).await.expect("reader");
    assert_eq!(read_all(reader).await, expected);
    assert_eq!(
        store.sweep_abandoned(Duration::ZERO).await.expect("sweeps"),
        0,
        "the losing writer left nothing"
    );
}

/// Delete removes the data; deleting it again says `NotFound`.
pub async fn delete(subject: &Subject) {
    let store = subject.store.as_ref();
    let stored = put(store, &image_id(13), b"bytes", true).await;
    store.delete(&stored.location).await.expect("delete");
    assert!(matches!(
        store.reader(&stored.location, None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.size(&stored.location).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(!committed_ids(store).await.contains(&image_id(13)));
    assert!(matches!(
        store.delete(&stored.location).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Locations of other stores are neither owned, read nor deleted.
pub async fn foreign_locations_refused(subject: &Subject) {
    let store = subject.store.as_ref();
    assert!(
        !subject.foreign.is_empty(),
        "the subject names foreign locations"
    );
    for location in &subject.foreign {
        assert!(!store.owns(location), "{location} is foreign");
        assert!(
            matches!(
                store.reader(location, None).await,
                Err(StoreError::InvalidLocation(_))
            ),
            "reading {location}"
        );
        assert!(
            matches!(
                store.delete(location).await,
                Err(StoreError::InvalidLocation(_))
            ),
            "deleting {location}"
        );
    }
}

/// `write_buffer` stays within the memory it is given, whatever the sizes.
pub async fn buffering_within_memory(subject: &Subject) {
    let store = subject.store.as_ref();
    for size in [None, Some(0), Some(1 << 20), Some(1 << 36)] {
        for memory in [64 << 20, 256 << 20, 4 << 30] {
            let options = WriteOptions {
                size,
                max_size: 1 << 40,
                memory,
            };
            if let Ok(buffer) = store.write_buffer(&options) {
                assert!(buffer <= memory, "{buffer} > {memory} for {options:?}");
            }
        }
    }
}

/// One `#[tokio::test]` per conformance case, each on a fresh store from `$make`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@cases $make;
            known_length, unknown_length, empty_data, ranged_reads, abort,
            drop_without_commit, sweep_spares_live_writers, commit_is_the_only_publication,
            existing_data_is_kept, racing_writers, delete, foreign_locations_refused, buffering_within_memory);
    };
    (@cases $make:path; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let subject = $make().await;
                $crate::conformance::$case(&subject).await;
            }
        )*
    };
}
