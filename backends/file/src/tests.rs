use std::os::unix::fs::{MetadataExt, PermissionsExt};

use bytes::Bytes;
use glint_store::conformance::{self, Subject};
use glint_store::{ByteRange, Chunk, Location, Store, StoreError};

use super::{DataDir, FileConfig, FileStore};

/// A file store on a fresh temporary directory, for the conformance suite.
async fn subject() -> Subject {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), false);
    let outside = tempfile::tempdir().expect("tempdir");
    let foreign = [
        "file:///etc/passwd".to_owned(),
        format!("file://{}/x", outside.path().display()),
        format!("file://{}/../x", dir.path().display()),
        format!("file://{}/.hidden", dir.path().display()),
        "s3://s3.example.com/bucket/x".to_owned(),
        "rbd://fsid/images/x/snap".to_owned(),
        "file:///".to_owned(),
    ]
    .iter()
    .map(|uri| Location::parse(uri).expect("parses"))
    .collect();
    Subject {
        store: Box::new(store),
        foreign,
        keep: Some(Box::new((dir, outside))),
    }
}

glint_store::conformance_tests!(subject);

fn options(size: Option<u64>) -> glint_store::WriteOptions {
    conformance::options(size)
}

fn store(dir: &std::path::Path, thin: bool) -> FileStore {
    FileStore::new(FileConfig {
        name: "file".into(),
        datadirs: vec![DataDir {
            path: dir.to_owned(),
            priority: 0,
        }],
        file_perm: Some(0o640),
        thin_provisioning: thin,
        fsync: true,
    })
    .expect("store builds")
}

fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("readable")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn committed_data_reads_back_whole_and_by_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), false);
    let mut writer = store
        .writer("img", &options(Some(11)))
        .await
        .expect("writer");
    writer
        .write(Chunk::new(vec![
            Bytes::from_static(b"hello "),
            Bytes::from_static(b"world"),
        ]))
        .await
        .expect("write");
    let stored = writer.commit().await.expect("commit");
    assert_eq!(stored.size, 11);
    let canonical = std::fs::canonicalize(dir.path()).expect("canonical");
    assert_eq!(
        stored.location.uri(),
        format!("file://{}/img", canonical.display())
    );
    assert_eq!(entries(dir.path()), ["img"]);
    let mode = std::fs::metadata(dir.path().join("img"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    assert_eq!(store.size(&stored.location).await.expect("size"), 11);

    let reader = store
        .reader(&stored.location, Some(ByteRange { start: 6, end: 100 }))
        .await
        .expect("reader");
    assert!(matches!(reader.body, glint_store::ReaderBody::File(_)));
    assert_eq!(reader.range, ByteRange { start: 6, end: 11 });
    store.delete(&stored.location).await.expect("delete");
    assert!(matches!(
        store.delete(&stored.location).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn zero_blocks_become_holes_with_thin_provisioning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), true);
    let mut writer = store
        .writer("sparse", &options(None))
        .await
        .expect("writer");
    let zeros = Bytes::from(vec![0u8; 8 << 20]);
    writer
        .write(Chunk::new(vec![
            Bytes::from_static(b"head"),
            zeros.clone(),
            zeros,
        ]))
        .await
        .expect("write");
    let stored = writer.commit().await.expect("commit");
    assert_eq!(stored.size, 4 + (16 << 20));
    let meta = std::fs::metadata(dir.path().join("sparse")).expect("meta");
    assert_eq!(meta.len(), stored.size);
    assert!(
        meta.blocks() * 512 < 1 << 20,
        "only the head block is allocated: {} blocks",
        meta.blocks()
    );
}

#[tokio::test]
async fn image_ids_that_would_escape_the_directory_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), false);
    for id in ["../escape", "a/b", ".hidden", ""] {
        assert!(matches!(
            store.writer(id, &options(None)).await,
            Err(StoreError::InvalidLocation(_))
        ));
    }
}

#[tokio::test]
async fn announced_sizes_beyond_free_space_are_refused_up_front() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), false);
    assert!(matches!(
        store.writer("huge", &options(Some(u64::MAX / 2))).await,
        Err(StoreError::StorageFull { .. })
    ));
    assert!(entries(dir.path()).is_empty());
}

#[tokio::test]
async fn new_data_goes_to_the_highest_priority_directory_with_room() {
    let low = tempfile::tempdir().expect("tempdir");
    let high = tempfile::tempdir().expect("tempdir");
    let store = FileStore::new(FileConfig {
        name: "file".into(),
        datadirs: vec![
            DataDir {
                path: low.path().to_owned(),
                priority: 100,
            },
            DataDir {
                path: high.path().to_owned(),
                priority: 200,
            },
        ],
        file_perm: None,
        thin_provisioning: false,
        fsync: false,
    })
    .expect("store builds");
    let stored = store
        .writer("first", &options(Some(10)))
        .await
        .expect("writer")
        .commit()
        .await
        .expect("commit");
    assert_eq!(entries(high.path()), ["first"]);
    assert!(entries(low.path()).is_empty());
    // Data in any configured directory is served.
    assert!(store.owns(&stored.location));
    std::fs::write(low.path().join("legacy"), b"old").expect("write");
    let legacy = Location::file(format!(
        "{}/legacy",
        std::fs::canonicalize(low.path())
            .expect("canonical")
            .display()
    ));
    assert_eq!(store.size(&legacy).await.expect("size"), 3);
}

#[tokio::test]
async fn symbolic_links_in_a_data_directory_are_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = tempfile::NamedTempFile::new().expect("secret file");
    std::fs::write(secret.path(), b"secret").expect("write");
    std::os::unix::fs::symlink(secret.path(), dir.path().join("planted")).expect("symlink");
    let store = store(dir.path(), false);
    let location = Location::file(format!(
        "{}/planted",
        std::fs::canonicalize(dir.path())
            .expect("canonical")
            .display()
    ));
    assert!(matches!(
        store.reader(&location, None).await,
        Err(StoreError::InvalidLocation(_))
    ));
    assert!(matches!(
        store.size(&location).await,
        Err(StoreError::InvalidLocation(_))
    ));
    // Deleting removes the link, never its target.
    store.delete(&location).await.expect("delete");
    assert_eq!(
        std::fs::read(secret.path()).expect("still there"),
        b"secret"
    );
}
