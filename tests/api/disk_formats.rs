//! Disk-format inspection through the API: images made by `qemu-img` in every format, uploaded
//! as their format, get the virtual size `qemu-img info` reports; unsafe and mismatched data
//! (the crafted files under `testdata/formats/`) is refused with 415 and Glance's message, the
//! image back to `queued` and nothing in the store; refusal comes at the header, before the
//! client has sent the rest.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use glint::datapath::CopyRequest;
use serde_json::{json, Value};

use crate::all_databases;
use crate::helpers::{files_in, Backend, TestApp};
use crate::image_data::{channel_body, image};

/// Every inspectable format may be declared (Glance's default list lacks gpt, luks and qed).
const ALL_FORMATS: &str = "[image_format]\ndisk_formats = ami,ari,aki,vhd,vhdx,vmdk,raw,qcow2,vdi,iso,ploop,gpt,luks,qed\n";

fn qemu_img(args: &[&str]) {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .expect("qemu-img runs");
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What `qemu-img info` says the image's virtual size is, reading it as `format`.
fn qemu_virtual_size(path: &Path, format: &str) -> u64 {
    let out = Command::new("qemu-img")
        .args(["info", "--output", "json", "-f", format])
        .arg(path)
        .output()
        .expect("qemu-img runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: Value = serde_json::from_slice(&out.stdout).expect("json");
    info["virtual-size"].as_u64().expect("virtual-size")
}

async fn create(app: &TestApp, disk_format: &str, container_format: &str) -> String {
    app.create_image(json!({"disk_format": disk_format, "container_format": container_format}))
        .await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A 1 MiB pattern, the data of a raw disk (and of images made from it).
fn raw_disk() -> Vec<u8> {
    (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect()
}

/// Every format qemu-img writes, made from the same raw disk (`convert`, so the images hold
/// data) or empty (`create`): (file, disk_format, qemu-img's name for the format).
fn qemu_images(dir: &Path) -> Vec<(PathBuf, &'static str, &'static str)> {
    let raw = dir.join("disk.raw");
    std::fs::write(&raw, raw_disk()).expect("raw disk");
    let raw_str = raw.to_str().expect("utf-8").to_owned();
    let converted: [(&str, &str, &str, &str); 8] = [
        ("v2.qcow2", "qcow2", "qcow2", "compat=0.10"),
        ("v3.qcow2", "qcow2", "qcow2", "compat=1.1"),
        ("sparse.vmdk", "vmdk", "vmdk", "subformat=monolithicSparse"),
        ("stream.vmdk", "vmdk", "vmdk", "subformat=streamOptimized"),
        ("dynamic.vhd", "vhd", "vpc", "subformat=dynamic"),
        ("fixed.vhd", "vhd", "vpc", "subformat=fixed"),
        ("disk.vhdx", "vhdx", "vhdx", "subformat=dynamic"),
        ("disk.vdi", "vdi", "vdi", "static=off"),
    ];
    let mut images = vec![(raw.clone(), "raw", "raw")];
    for (name, disk_format, qemu_format, options) in converted {
        let path = dir.join(name);
        qemu_img(&[
            "convert",
            "-q",
            "-f",
            "raw",
            "-O",
            qemu_format,
            "-o",
            options,
            &raw_str,
            path.to_str().expect("utf-8"),
        ]);
        images.push((path, disk_format, qemu_format));
    }
    // Empty disks of an odd size: sizes qemu rounds (vhd geometry, vdi sectors).
    for (name, disk_format, qemu_format) in [
        ("odd.vhd", "vhd", "vpc"),
        ("odd.vdi", "vdi", "vdi"),
        ("big.qcow2", "qcow2", "qcow2"),
    ] {
        let path = dir.join(name);
        let size = if disk_format == "qcow2" {
            "40G"
        } else {
            "12345678"
        };
        qemu_img(&[
            "create",
            "-q",
            "-f",
            qemu_format,
            path.to_str().expect("utf-8"),
            size,
        ]);
        images.push((path, disk_format, qemu_format));
    }
    let luks = dir.join("disk.luks");
    qemu_img(&[
        "convert",
        "-q",
        "--object",
        "secret,id=sec0,data=secret",
        "-f",
        "raw",
        "-O",
        "luks",
        "-o",
        "key-secret=sec0,iter-time=10",
        &raw_str,
        luks.to_str().expect("utf-8"),
    ]);
    images.push((luks, "luks", "luks"));
    images
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_gets_the_virtual_size_qemu_img_reports() {
    let app = TestApp::start(Backend::Sqlite, ALL_FORMATS).await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, disk_format, qemu_format) in qemu_images(dir.path()) {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let id = create(&app, disk_format, "bare").await;
        let data = std::fs::read(&path).expect("image");
        let response = app.upload(&id, data.clone()).await;
        assert_eq!(response.status, 204, "{name}: {}", response.text());
        let shown = image(&app, &id).await;
        assert_eq!(shown["status"], "active", "{name}");
        assert_eq!(shown["size"], data.len(), "{name}");
        assert_eq!(
            shown["virtual_size"],
            qemu_virtual_size(&path, qemu_format),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glances_exceptions_to_the_format_match() {
    let app = TestApp::start(Backend::Sqlite, "").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let qcow2 = dir.path().join("d.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        qcow2.to_str().expect("utf-8"),
        "1G",
    ]);
    let qcow2 = std::fs::read(&qcow2).expect("qcow2");
    // Raw content under formats no inspector reads: accepted, size unknown.
    for declared in ["ami", "ari", "aki", "ploop"] {
        let id = create(
            &app,
            declared,
            if declared == "ploop" {
                "bare"
            } else {
                declared
            },
        )
        .await;
        app.upload(&id, raw_disk()).await.assert_status(204);
        assert_eq!(
            image(&app, &id).await["virtual_size"],
            Value::Null,
            "{declared}"
        );
    }
    // Declared raw: a (safe) qcow2 is accepted as the bytes it is.
    let id = create(&app, "raw", "bare").await;
    app.upload(&id, qcow2.clone()).await.assert_status(204);
    assert_eq!(image(&app, &id).await["virtual_size"], qcow2.len());
    // Only bare containers are inspected.
    let id = create(&app, "vmdk", "ova").await;
    app.upload(&id, qcow2).await.assert_status(204);
    assert_eq!(image(&app, &id).await["virtual_size"], Value::Null);
}

/// `testdata/formats/cases.tsv`: file, declared disk_format, expected message, exploit.
fn crafted_cases() -> Vec<(PathBuf, String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/formats");
    let manifest = std::fs::read_to_string(dir.join("cases.tsv")).expect("cases.tsv");
    manifest
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert!(fields.len() >= 4, "cases.tsv line {line:?}");
            (
                dir.join(fields[0]),
                fields[1].to_owned(),
                fields[2].to_owned(),
            )
        })
        .collect()
}

all_databases!(fn crafted_images_are_refused_and_leave_nothing(app, ALL_FORMATS) {
    let cases = crafted_cases();
    assert!(cases.len() >= 15, "the corpus is there");
    for (path, declared, message) in cases {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let id = create(&app, &declared, "bare").await;
        let response = app.upload(&id, std::fs::read(&path).expect("crafted file")).await;
        assert_eq!(response.status, 415, "{name}: {}", response.text());
        assert_eq!(response.error_detail(), message, "{name}");
        let shown = image(&app, &id).await;
        assert_eq!(shown["status"], "queued", "{name}");
        assert_eq!(shown["size"], Value::Null, "{name}");
        assert!(app.stored_files().is_empty(), "{name}: {:?}", app.stored_files());
    }
    // A refused image takes good data afterwards.
    let id = create(&app, "raw", "bare").await;
    let refused = app.upload(&id, crafted_bytes("qcow2-backing-file.qcow2")).await;
    refused.assert_status(415);
    app.upload(&id, raw_disk()).await.assert_status(204);
    assert_eq!(image(&app, &id).await["status"], "active");
});

fn crafted_bytes(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/formats")
        .join(name);
    std::fs::read(path).expect("crafted file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backing_file_is_refused_before_the_body_ends() {
    let app = TestApp::start(Backend::Sqlite, "").await;
    let id = create(&app, "qcow2", "bare").await;
    let (frames, body) = channel_body();
    let upload = {
        let app_router = app.router.clone();
        let request = axum::http::Request::builder()
            .method(axum::http::Method::PUT)
            .uri(format!("/v2/images/{id}/file"))
            .header("content-type", "application/octet-stream")
            .body(body)
            .expect("request");
        tokio::spawn(async move { tower::ServiceExt::oneshot(app_router, request).await })
    };
    let mut header = crafted_bytes("qcow2-backing-file.qcow2");
    header.resize(2 << 20, 0);
    frames.send(header).await.expect("sends");
    // The body stays open: the answer must come without it.
    let response = tokio::time::timeout(Duration::from_secs(10), upload)
        .await
        .expect("answered while the body is still open")
        .expect("joins")
        .unwrap_or_else(|never| match never {});
    assert_eq!(response.status(), 415);
    drop(frames);
    assert_eq!(image(&app, &id).await["status"], "queued");
    assert!(app.stored_files().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_format_match_can_be_turned_off_but_not_the_safety_checks() {
    let app = TestApp::start(
        Backend::Sqlite,
        "[image_format]\nrequire_image_format_match = false\n",
    )
    .await;
    let id = create(&app, "qcow2", "bare").await;
    app.upload(&id, raw_disk()).await.assert_status(204);
    assert_eq!(image(&app, &id).await["virtual_size"], Value::Null);
    let id = create(&app, "vmdk", "bare").await;
    let refused = app
        .upload(&id, crafted_bytes("qcow2-backing-file.qcow2"))
        .await;
    refused.assert_status(415);
    assert_eq!(refused.error_detail(), "Image failed safety checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vmdk_subformats_follow_vmdk_allowed_types() {
    let app = TestApp::start(
        Backend::Sqlite,
        "[image_format]\nvmdk_allowed_types = streamOptimized\n",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (subformat, status) in [("streamOptimized", 204), ("monolithicSparse", 415)] {
        let path = dir.path().join(format!("{subformat}.vmdk"));
        qemu_img(&[
            "create",
            "-q",
            "-f",
            "vmdk",
            "-o",
            &format!("subformat={subformat}"),
            path.to_str().expect("utf-8"),
            "1G",
        ]);
        let id = create(&app, "vmdk", "bare").await;
        let response = app.upload(&id, std::fs::read(&path).expect("vmdk")).await;
        assert_eq!(response.status, status, "{subformat}: {}", response.text());
    }
}

// Data stored before inspection existed (or by Glance) is inspected when copied to another
// store: an unsafe image is not spread further.
all_databases!(fn unsafe_data_is_not_copied_to_another_store(app, "[DEFAULT]\nenabled_backends = fast:file, cheap:file\n[glance_store]\ndefault_backend = cheap\n") {
    let id = create(&app, "qcow2", "ova").await;
    app.upload(&id, crafted_bytes("qcow2-backing-file.qcow2")).await.assert_status(204);
    app.execute(&format!("UPDATE images SET container_format = 'bare' WHERE id = '{id}'")).await;
    let copied = app
        .services
        .data
        .copy_image(CopyRequest { image_id: &id, to: "fast", from: None }, &|_| {})
        .await;
    let error = copied.expect_err("refused");
    assert_eq!(error.to_string(), "Image failed safety checks");
    assert!(files_in(&app.data_dir().join("fast")).is_empty());
    let shown = image(&app, &id).await;
    assert_eq!(shown["stores"], "cheap");
    assert_eq!(shown["status"], "active");
});
