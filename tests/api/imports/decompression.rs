//! The `image_decompression` import plugin: compressed data staged (uninspected) or
//! downloaded, unpacked before any store sees it, the image's size and checksums those of the
//! unpacked data; archives of several files, bombs and damaged data failing the task; the
//! plugins run in the operator's order.

use std::io::Write;

use openssl::hash::{hash, MessageDigest};

use super::{finished_task, image, import, qcow2_with_data, sample, stage, Remote, LAB};
use crate::all_databases;
use crate::helpers::{files_in, TestApp};
use serde_json::{json, Value};

const DECOMPRESSION: &str = "[image_import_opts]\nimage_import_plugins = [image_decompression]\n";

const DECOMPRESSION_THEN_CONVERSION: &str =
    "[image_import_opts]\nimage_import_plugins = [image_decompression, image_conversion]\n";

const CONVERSION_THEN_DECOMPRESSION: &str =
    "[image_import_opts]\nimage_import_plugins = [image_conversion, image_decompression]\n";

/// A cap well below the bomb's unpacked size, well above its packed size.
const SMALL_CAP: &str = "[image_import_opts]\nimage_import_plugins = [image_decompression]\n\
    [DEFAULT]\nimage_size_cap = 4194304\n";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("compressed");
    encoder.finish().expect("compressed")
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        writer.start_file(*name, options).expect("entry started");
        writer.write_all(data).expect("entry written");
    }
    writer.finish().expect("archive written").into_inner()
}

fn md5(data: &[u8]) -> String {
    hash(MessageDigest::md5(), data)
        .expect("md5")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn create(app: &TestApp, disk_format: &str, container_format: &str) -> String {
    app.create_image(json!({"disk_format": disk_format, "container_format": container_format}))
        .await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Stages `data` for a new image and imports it by glance-direct: the image and its task.
async fn stage_and_import(app: &TestApp, formats: (&str, &str), data: Vec<u8>) -> (String, Value) {
    let id = create(app, formats.0, formats.1).await;
    stage(app, &id, data).await.assert_status(204);
    import(app, &id, json!({"method": {"name": "glance-direct"}}))
        .await
        .assert_status(202);
    let task = finished_task(app, &id).await;
    (id, task)
}

/// After a failed glance-direct import: as Glance leaves it, importing, its data staged;
/// nothing in any store, nothing left in work_dir.
async fn assert_left_as_glance_leaves_it(app: &TestApp, id: &str) {
    let after = image(app, id).await;
    assert_eq!(after["status"], "importing");
    assert!(after.get("os_glance_import_task").is_none());
    assert_eq!(files_in(&app.data_dir().join("staging")).len(), 1);
    assert!(files_in(&app.data_dir().join("work")).is_empty());
    assert!(app.stored_files().is_empty(), "{:?}", app.stored_files());
}

all_databases!(fn a_gzipped_qcow2_is_staged_then_imported_unpacked(app, DECOMPRESSION) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (qcow2, _) = qcow2_with_data(dir.path(), 8);
    let (id, task) = stage_and_import(&app, ("qcow2", "bare"), gzip(&qcow2)).await;
    assert_eq!(task["status"], "success", "{task}");
    let imported = image(&app, &id).await;
    assert_eq!(imported["status"], "active");
    assert_eq!(imported["disk_format"], "qcow2");
    assert_eq!(imported["container_format"], "bare");
    assert_eq!(imported["size"], qcow2.len());
    assert_eq!(imported["checksum"], md5(&qcow2));
    // Inspected once unpacked, on its way into the store.
    assert_eq!(imported["virtual_size"], 8 << 20);
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == qcow2);
    assert!(files_in(&app.data_dir().join("staging")).is_empty());
    assert!(files_in(&app.data_dir().join("work")).is_empty());
});

all_databases!(fn without_the_plugin_compressed_data_is_refused_at_the_stage(app) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (qcow2, _) = qcow2_with_data(dir.path(), 1);
    let id = create(&app, "qcow2", "bare").await;
    stage(&app, &id, gzip(&qcow2)).await.assert_status(415);
    assert_eq!(image(&app, &id).await["status"], "queued");
});

all_databases!(fn zip_and_lha_archives_of_one_file_are_unpacked(app, DECOMPRESSION) {
    let data = sample(3 << 20, 7);
    let (id, task) = stage_and_import(&app, ("raw", "bare"), zip_of(&[("disk.raw", &data)])).await;
    assert_eq!(task["status"], "success", "{task}");
    let imported = image(&app, &id).await;
    assert_eq!(imported["size"], data.len());
    assert_eq!(imported["virtual_size"], data.len());
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == data);
    // An archive made by Unix LHA (-lh5-, level 2 header) holding the GPL's text.
    let lha = include_bytes!("../../../src/import/testdata/h2_lh5.lzh").to_vec();
    let (id, task) = stage_and_import(&app, ("raw", "bare"), lha).await;
    assert_eq!(task["status"], "success", "{task}");
    assert_eq!(image(&app, &id).await["size"], 18_092);
    let text = app.get(&format!("/v2/images/{id}/file")).await.body;
    assert!(String::from_utf8_lossy(&text).contains("GNU GENERAL PUBLIC LICENSE"));
});

all_databases!(fn an_archive_of_two_files_fails_the_import(app, DECOMPRESSION) {
    let archive = zip_of(&[("a.raw", &sample(1000, 1)), ("b.raw", &sample(1000, 2))]);
    let (id, task) = stage_and_import(&app, ("raw", "bare"), archive).await;
    assert_eq!(task["status"], "failure");
    assert_eq!(task["message"], "Archive contains more than one file.");
    assert_left_as_glance_leaves_it(&app, &id).await;
});

all_databases!(fn data_declared_compressed_is_left_as_it_is(app, DECOMPRESSION) {
    let packed = gzip(&sample(500_000, 3));
    let (id, task) = stage_and_import(&app, ("raw", "compressed"), packed.clone()).await;
    assert_eq!(task["status"], "success", "{task}");
    let imported = image(&app, &id).await;
    assert_eq!(imported["container_format"], "compressed");
    assert_eq!(imported["size"], packed.len());
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == packed);
});

all_databases!(fn a_decompression_bomb_stops_at_image_size_cap(app, SMALL_CAP) {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        encoder.write_all(&zeros).expect("compressed");
    }
    let bomb = encoder.finish().expect("compressed");
    assert!(bomb.len() < 1 << 20);
    let (id, task) = stage_and_import(&app, ("raw", "bare"), bomb).await;
    assert_eq!(task["status"], "failure");
    assert_eq!(
        task["message"],
        "The decompressed image is larger than 4194304 bytes, the most it may be \
         (image_size_cap, or what the owner's storage quota leaves)."
    );
    assert_left_as_glance_leaves_it(&app, &id).await;
});

all_databases!(fn a_cut_or_damaged_gzip_fails_the_import(app, DECOMPRESSION) {
    let packed = gzip(&sample(2 << 20, 5));
    let mut damaged = packed.clone();
    let at = damaged.len() - 6;
    damaged[at] ^= 0xff;
    for (data, message) in [
        (packed[..packed.len() / 2].to_vec(), "Invalid gzip data: the data ends before its compressed stream does"),
        (damaged, "Invalid gzip data: corrupt gzip stream does not have a matching checksum"),
    ] {
        let (id, task) = stage_and_import(&app, ("raw", "bare"), data).await;
        assert_eq!(task["status"], "failure");
        assert_eq!(task["message"], message);
        let after = image(&app, &id).await;
        assert_eq!(after["status"], "importing");
        assert!(files_in(&app.data_dir().join("work")).is_empty());
    }
});

all_databases!(fn decompression_then_conversion_turns_a_gzipped_qcow2_into_raw(app, DECOMPRESSION_THEN_CONVERSION) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (qcow2, raw) = qcow2_with_data(dir.path(), 4);
    let (id, task) = stage_and_import(&app, ("qcow2", "bare"), gzip(&qcow2)).await;
    assert_eq!(task["status"], "success", "{task}");
    let imported = image(&app, &id).await;
    assert_eq!(imported["disk_format"], "raw");
    assert_eq!(imported["size"], raw.len());
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == raw);
    assert!(files_in(&app.data_dir().join("work")).is_empty());
});

all_databases!(fn conversion_listed_first_sees_the_compressed_data(app, CONVERSION_THEN_DECOMPRESSION) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (qcow2, _) = qcow2_with_data(dir.path(), 1);
    let (id, task) = stage_and_import(&app, ("qcow2", "bare"), gzip(&qcow2)).await;
    // qemu-img is asked to read gzip as qcow2, and refuses.
    assert_eq!(task["status"], "failure", "{task}");
    let message = task["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("qemu-img failed: ") && message.ends_with("Image is not in qcow2 format"), "{message}");
    assert_left_as_glance_leaves_it(&app, &id).await;
});

all_databases!(fn web_download_of_a_gzip_is_staged_and_unpacked(app, &format!("{LAB}{DECOMPRESSION}")) {
    let data = sample((3 << 20) + 17, 9);
    let remote = Remote::start(gzip(&data)).await;
    let id = create(&app, "raw", "bare").await;
    import(&app, &id, json!({"method": {"name": "web-download", "uri": remote.url("/image")}}))
        .await
        .assert_status(202);
    let task = finished_task(&app, &id).await;
    assert_eq!(task["status"], "success", "{task}");
    let imported = image(&app, &id).await;
    assert_eq!(imported["status"], "active");
    assert_eq!(imported["size"], data.len());
    assert_eq!(imported["checksum"], md5(&data));
    assert!(app.get(&format!("/v2/images/{id}/file")).await.body == data);
    assert!(files_in(&app.data_dir().join("staging")).is_empty());
    assert!(files_in(&app.data_dir().join("work")).is_empty());
});
