use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use bytes::Bytes;
use glint_store::{ByteRange, Chunk, ImageReader, Location, Store, StoreError};

use super::{DataDir, FileConfig, FileStore};

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
    let mut writer = store.writer("img", Some(11)).await.expect("writer");
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
        stored.location,
        Location::new(format!("file://{}/img", canonical.display()))
    );
    assert_eq!(entries(dir.path()), ["img"]);
    let mode = std::fs::metadata(dir.path().join("img"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    assert_eq!(store.size(&stored.location).await.expect("size"), 11);

    let ImageReader::File { range, .. } = store
        .reader(&stored.location, Some(ByteRange { start: 6, end: 100 }))
        .await
        .expect("reader")
    else {
        panic!("file reader")
    };
    assert_eq!(range, ByteRange { start: 6, end: 11 });
    store.delete(&stored.location).await.expect("delete");
    assert!(matches!(
        store.delete(&stored.location).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn abort_and_drop_leave_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), false);
    let mut writer = store.writer("a", None).await.expect("writer");
    writer
        .write(Chunk::from(Bytes::from_static(b"partial")))
        .await
        .expect("write");
    assert_eq!(entries(dir.path()).len(), 1);
    writer.abort().await.expect("abort");
    assert!(entries(dir.path()).is_empty());

    let mut writer = store.writer("b", None).await.expect("writer");
    writer
        .write(Chunk::from(Bytes::from_static(b"partial")))
        .await
        .expect("write");
    drop(writer);
    assert!(entries(dir.path()).is_empty());
}

#[tokio::test]
async fn existing_data_is_never_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), false);
    let writer = store.writer("same", None).await.expect("writer");
    writer.commit().await.expect("commit");
    assert!(matches!(
        store.writer("same", None).await,
        Err(StoreError::AlreadyExists(_))
    ));
}

#[tokio::test]
async fn zero_blocks_become_holes_with_thin_provisioning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), true);
    let mut writer = store.writer("sparse", None).await.expect("writer");
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
async fn locations_outside_the_data_directories_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), false);
    for uri in [
        "file:///etc/passwd",
        "s3://bucket/x",
        "file://relative",
        "file:///",
    ] {
        let location = Location::new(uri);
        assert!(!store.owns(&location));
        assert!(matches!(
            store.reader(&location, None).await,
            Err(StoreError::InvalidLocation(_))
        ));
        assert!(matches!(
            store.delete(&location).await,
            Err(StoreError::InvalidLocation(_))
        ));
    }
    assert!(matches!(
        store.writer("../escape", None).await,
        Err(StoreError::InvalidLocation(_))
    ));
}

#[tokio::test]
async fn announced_sizes_beyond_free_space_are_refused_up_front() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), false);
    assert!(matches!(
        store.writer("huge", Some(u64::MAX / 2)).await,
        Err(StoreError::StorageFull { .. })
    ));
    assert!(entries(dir.path()).is_empty());
}

#[tokio::test]
async fn sweep_removes_only_stale_partials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), false);
    let mut writer = store.writer("live", None).await.expect("writer");
    writer
        .write(Chunk::from(Bytes::from_static(b"x")))
        .await
        .expect("write");
    assert_eq!(store.sweep_partials(Duration::from_secs(3600)), 0);
    assert_eq!(store.sweep_partials(Duration::ZERO), 1);
    drop(writer);
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
        .writer("first", Some(10))
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
    let legacy = Location::new(format!(
        "file://{}/legacy",
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
    let location = Location::new(format!(
        "file://{}/planted",
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
