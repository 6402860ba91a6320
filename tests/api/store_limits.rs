//! The filesystem store against real filesystem limits: a small tmpfs that fills up, and a
//! read-only one. Mounting needs root (as on the CI machines); without it these tests fail
//! and say why.

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::body::Body;
use axum::http::Method;
use bytes::Bytes;
use futures_util::stream;

use crate::helpers::{Backend, TestApp};

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(options: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("mount point");
        let path = dir.path().to_owned();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(&path)
            .status()
            .expect("the mount command runs");
        assert!(
            status.success(),
            "mounting a tmpfs failed: these tests need root (CAP_SYS_ADMIN)"
        );
        Tmpfs { path, _dir: dir }
    }

    fn files(&self) -> Vec<String> {
        std::fs::read_dir(&self.path)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

fn store_config(path: &Path) -> String {
    format!(
        "[glance_store]\nfilesystem_store_datadir = {}\n",
        path.display()
    )
}

async fn upload_chunked(
    app: &TestApp,
    id: &str,
    frames: usize,
    frame_len: usize,
) -> crate::helpers::TestResponse {
    let body: Vec<Result<Bytes, std::io::Error>> = (0..frames)
        .map(|_| Ok(Bytes::from(vec![7u8; frame_len])))
        .collect();
    app.request(
        Method::PUT,
        &format!("/v2/images/{id}/file"),
        &[
            ("content-type", "application/octet-stream"),
            ("accept", "application/json"),
        ],
        Body::from_stream(stream::iter(body)),
    )
    .await
}

async fn a_full_store_answers_413_and_keeps_nothing(backend: Backend) {
    let full = Tmpfs::mount("size=2m");
    let app = TestApp::start(backend, &store_config(&full.path)).await;
    let id = app.create_raw_image().await;
    // Unknown size: the filesystem fills up mid-stream.
    let response = upload_chunked(&app, &id, 16, 256 * 1024).await;
    response.assert_status(413);
    assert!(
        response
            .error_message()
            .starts_with("Image storage media is full"),
        "{}",
        response.error_message()
    );
    assert_eq!(
        app.get(&format!("/v2/images/{id}")).await.json()["status"],
        "queued"
    );
    assert!(
        full.files().is_empty(),
        "partial data left: {:?}",
        full.files()
    );
    // Announced size: refused before the body is read.
    let announced = app.upload(&id, vec![1u8; 4 << 20]).await;
    announced.assert_status(413);
    assert!(full.files().is_empty());
    // What fits still works, and deleting frees it.
    app.upload(&id, vec![1u8; 256 * 1024])
        .await
        .assert_status(204);
    assert_eq!(full.files(), [id.as_str()]);
    app.delete(&format!("/v2/images/{id}"))
        .await
        .assert_status(204);
    assert!(full.files().is_empty());
}

async fn a_read_only_store_answers_503_and_the_image_stays_queued(backend: Backend) {
    let read_only = Tmpfs::mount("size=1m,ro");
    let app = TestApp::start(backend, &store_config(&read_only.path)).await;
    let id = app.create_raw_image().await;
    let response = app.upload(&id, vec![1u8; 1000]).await;
    response.assert_status(503);
    assert!(
        response
            .error_message()
            .starts_with("Insufficient permissions on image storage media"),
        "{}",
        response.error_message()
    );
    assert_eq!(
        app.get(&format!("/v2/images/{id}")).await.json()["status"],
        "queued"
    );
    assert!(read_only.files().is_empty());
}

/// Each scenario on both databases (the mount must outlive the app, so no `all_databases!`).
macro_rules! on_every_database {
    ($($name:ident),*) => {$(
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(Backend::Postgres).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                super::$name(Backend::MySql).await;
            }
        }
    )*};
}

on_every_database!(
    a_full_store_answers_413_and_keeps_nothing,
    a_read_only_store_answers_503_and_the_image_stays_queued
);
