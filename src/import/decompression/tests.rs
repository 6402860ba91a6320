use std::io::Write;

use super::*;

/// Unpacks `data` as `format` with at most `max` bytes out: the outcome and what was written.
async fn unpack(
    format: Compression,
    data: &[u8],
    max: u64,
) -> (Result<u64, DecompressionError>, Option<Vec<u8>>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (input, output) = (dir.path().join("in"), dir.path().join("out"));
    std::fs::write(&input, data).expect("input written");
    let outcome = decompress(format, &input, &output, max, Arc::new(|_| {})).await;
    (outcome, std::fs::read(&output).ok())
}

fn sample(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("compressed");
    encoder.finish().expect("compressed")
}

fn zip_of(entries: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, data) in entries {
        if let Some(dir) = name.strip_suffix('/') {
            writer.add_directory(dir, options).expect("directory added");
        } else {
            writer.start_file(*name, options).expect("entry started");
            writer.write_all(data).expect("entry written");
        }
    }
    writer.finish().expect("archive written").into_inner()
}

/// CRC-16/ARC, LHA's checksum.
fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &byte in data {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xa001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// One LHA entry with a level-0 header: `method` (`-lh0-` stores `data` as it is).
fn lha_entry(method: &[u8; 5], name: &str, data: &[u8], crc: u16) -> Vec<u8> {
    let mut header = method.to_vec();
    header.extend_from_slice(&(data.len() as u32).to_le_bytes());
    header.extend_from_slice(&(data.len() as u32).to_le_bytes());
    header.extend_from_slice(&0x3e20_98e3u32.to_le_bytes()); // an MS-DOS time
    header.push(0x20); // attributes: archive
    header.push(0); // header level
    header.push(name.len() as u8);
    header.extend_from_slice(name.as_bytes());
    header.extend_from_slice(&crc.to_le_bytes());
    let sum = header.iter().fold(0u8, |sum, b| sum.wrapping_add(*b));
    let mut entry = vec![header.len() as u8, sum];
    entry.extend_from_slice(&header);
    entry.extend_from_slice(data);
    entry
}

/// An LHA archive: its entries and the end mark.
fn lha_of(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut archive = entries.concat();
    archive.push(0);
    archive
}

#[tokio::test]
async fn gzip_members_are_unpacked_one_after_the_other() {
    let (first, second) = (sample(300_000), sample(70_000));
    let data = [gzip(&first), gzip(&second)].concat();
    assert_eq!(Compression::detect(&data), Some(Compression::Gzip));
    let (outcome, output) = unpack(Compression::Gzip, &data, u64::MAX).await;
    assert_eq!(outcome.expect("unpacked"), 370_000);
    assert!(output == Some([first, second].concat()));
}

#[tokio::test]
async fn a_cut_or_damaged_gzip_is_refused_as_invalid() {
    let data = gzip(&sample(2 << 20));
    let (outcome, _) = unpack(Compression::Gzip, &data[..data.len() / 2], u64::MAX).await;
    assert_eq!(
        outcome.expect_err("cut").to_string(),
        "Invalid gzip data: the data ends before its compressed stream does"
    );
    // A damaged trailer: the CRC-32 of the member no longer matches.
    let mut damaged = data.clone();
    let at = damaged.len() - 6;
    damaged[at] ^= 0xff;
    let (outcome, _) = unpack(Compression::Gzip, &damaged, u64::MAX).await;
    let refusal = outcome.expect_err("damaged").to_string();
    assert!(refusal.starts_with("Invalid gzip data: "), "{refusal}");
}

#[tokio::test]
async fn output_beyond_the_cap_stops_as_soon_as_it_is_produced() {
    let bomb = gzip(&vec![0u8; 16 << 20]);
    assert!(bomb.len() < 100_000);
    let (outcome, output) = unpack(Compression::Gzip, &bomb, 3 << 20).await;
    assert!(matches!(
        outcome,
        Err(DecompressionError::TooLarge { max }) if max == 3 << 20
    ));
    assert!(output.is_none(), "nothing is left of it");
    // Exactly the cap is allowed.
    let (outcome, _) = unpack(Compression::Gzip, &bomb, 16 << 20).await;
    assert_eq!(outcome.expect("at the cap"), 16 << 20);
}

#[tokio::test]
async fn a_dropped_decompression_stops_and_leaves_no_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (input, output) = (dir.path().join("in"), dir.path().join("out"));
    std::fs::write(&input, gzip(&vec![0u8; 64 << 20])).expect("input written");
    // A slow disk: every MiB takes 20 ms.
    let slow = Arc::new(|_| std::thread::sleep(std::time::Duration::from_millis(20)));
    let work = decompress(Compression::Gzip, &input, &output, u64::MAX, slow);
    let dropped = tokio::time::timeout(std::time::Duration::from_millis(200), work).await;
    assert!(dropped.is_err(), "still running when dropped");
    for _ in 0..100 {
        if !output.exists() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the output is still there");
}

#[tokio::test]
async fn a_zip_of_one_stored_or_deflated_file_is_unpacked() {
    let content = sample(1 << 20);
    for method in [
        zip::CompressionMethod::Stored,
        zip::CompressionMethod::Deflated,
    ] {
        let archive = zip_of(&[("disk.img", &content)], method);
        assert_eq!(Compression::detect(&archive), Some(Compression::Zip));
        let (outcome, output) = unpack(Compression::Zip, &archive, u64::MAX).await;
        assert_eq!(outcome.expect("unpacked"), content.len() as u64, "{method}");
        assert!(output.as_ref() == Some(&content), "{method}");
        // An entry that announces more than the cap is refused before a byte is written.
        let (outcome, output) = unpack(Compression::Zip, &archive, 1000).await;
        assert!(matches!(
            outcome,
            Err(DecompressionError::TooLarge { max: 1000 })
        ));
        assert!(output.is_none());
    }
}

#[tokio::test]
async fn a_zip_must_hold_exactly_one_file() {
    let two = zip_of(
        &[("a.img", b"first"), ("b.img", b"second")],
        zip::CompressionMethod::Stored,
    );
    let none = zip_of(&[], zip::CompressionMethod::Stored);
    let with_dir = zip_of(
        &[("images/", b""), ("images/a.img", b"first")],
        zip::CompressionMethod::Stored,
    );
    for archive in [two, none, with_dir] {
        let (outcome, output) = unpack(Compression::Zip, &archive, u64::MAX).await;
        assert_eq!(
            outcome.expect_err("refused").to_string(),
            "Archive contains more than one file."
        );
        assert!(output.is_none());
    }
    let only_dir = zip_of(&[("images/", b"")], zip::CompressionMethod::Stored);
    let (outcome, _) = unpack(Compression::Zip, &only_dir, u64::MAX).await;
    assert!(matches!(outcome, Err(DecompressionError::Directory)));
}

/// `archive` with the bytes at `offset` of both its local and its central header replaced.
fn patch_headers(archive: &[u8], offsets: (usize, usize), bytes: &[u8]) -> Vec<u8> {
    let mut patched = archive.to_vec();
    let central = archive
        .windows(4)
        .position(|w| w == b"PK\x01\x02")
        .expect("central directory");
    patched[offsets.0..offsets.0 + bytes.len()].copy_from_slice(bytes);
    patched[central + offsets.1..central + offsets.1 + bytes.len()].copy_from_slice(bytes);
    patched
}

#[tokio::test]
async fn zip_entries_that_cannot_be_read_say_why() {
    let content = sample(10_000);
    let archive = zip_of(&[("disk.img", &content)], zip::CompressionMethod::Stored);
    // Method 12 (bzip2) at offset 8 of the local header, 10 of the central one.
    let bzip2 = patch_headers(&archive, (8, 10), &12u16.to_le_bytes());
    let (outcome, _) = unpack(Compression::Zip, &bzip2, u64::MAX).await;
    assert!(
        matches!(&outcome, Err(DecompressionError::Method(_))),
        "{outcome:?}"
    );
    // The encryption flag, bit 0 of the flags at offset 6 (local) and 8 (central).
    let encrypted = patch_headers(&archive, (6, 8), &1u16.to_le_bytes());
    let (outcome, _) = unpack(Compression::Zip, &encrypted, u64::MAX).await;
    assert_eq!(
        outcome.expect_err("encrypted").to_string(),
        "The archive's file is encrypted: encrypted archives are not supported."
    );
    // A stored byte changed: the entry's CRC-32 no longer matches.
    let mut damaged = archive.clone();
    let at = damaged
        .windows(content.len())
        .position(|w| w == content.as_slice())
        .expect("stored data")
        + 5000;
    damaged[at] ^= 0xff;
    let (outcome, _) = unpack(Compression::Zip, &damaged, u64::MAX).await;
    let refusal = outcome.expect_err("damaged").to_string();
    assert!(refusal.starts_with("Invalid zip data: "), "{refusal}");
}

#[tokio::test]
async fn an_lha_archive_of_one_stored_file_is_unpacked() {
    let content = sample(100_000);
    let archive = lha_of(&[lha_entry(b"-lh0-", "DISK.IMG", &content, crc16(&content))]);
    assert_eq!(Compression::detect(&archive), Some(Compression::Lha));
    let (outcome, output) = unpack(Compression::Lha, &archive, u64::MAX).await;
    assert_eq!(outcome.expect("unpacked"), content.len() as u64);
    assert!(output == Some(content.clone()));
    let (outcome, _) = unpack(Compression::Lha, &archive, 99_999).await;
    assert!(matches!(outcome, Err(DecompressionError::TooLarge { .. })));
    // Its checksum is checked.
    let wrong = lha_of(&[lha_entry(b"-lh0-", "DISK.IMG", &content, 0x1234)]);
    let (outcome, _) = unpack(Compression::Lha, &wrong, u64::MAX).await;
    let refusal = outcome.expect_err("bad crc").to_string();
    assert!(refusal.starts_with("Invalid lha data: "), "{refusal}");
}

#[tokio::test]
async fn an_lha_archive_must_hold_exactly_one_file() {
    let (a, b) = (sample(1000), sample(2000));
    let two = lha_of(&[
        lha_entry(b"-lh0-", "A.IMG", &a, crc16(&a)),
        lha_entry(b"-lh0-", "B.IMG", &b, crc16(&b)),
    ]);
    let (outcome, output) = unpack(Compression::Lha, &two, u64::MAX).await;
    assert_eq!(
        outcome.expect_err("two files").to_string(),
        "Archive contains more than one file."
    );
    assert!(output.is_none());
    let dir = lha_of(&[lha_entry(b"-lhd-", "IMAGES/", b"", 0)]);
    let (outcome, _) = unpack(Compression::Lha, &dir, u64::MAX).await;
    assert!(
        matches!(outcome, Err(DecompressionError::Directory)),
        "{outcome:?}"
    );
    let unknown = lha_of(&[lha_entry(b"-lh9-", "A.IMG", &a, crc16(&a))]);
    let (outcome, _) = unpack(Compression::Lha, &unknown, u64::MAX).await;
    assert_eq!(
        outcome.expect_err("unknown method").to_string(),
        "The archive's file is compressed with -lh9-, which is not supported here."
    );
}

#[tokio::test]
async fn lha_archives_made_by_lha_tools_are_unpacked() {
    // See testdata/README.md: lh1 (level 0 header) and lh5 (level 2 header).
    let lh1 = include_bytes!("../testdata/lh1-64k.lzh");
    let (outcome, output) = unpack(Compression::Lha, lh1, u64::MAX).await;
    assert_eq!(outcome.expect("lh1 unpacked"), 65_536);
    assert_eq!(output.map(|o| o.len()), Some(65_536));
    let lh5 = include_bytes!("../testdata/h2_lh5.lzh");
    assert_eq!(Compression::detect(lh5), Some(Compression::Lha));
    let (outcome, output) = unpack(Compression::Lha, lh5, u64::MAX).await;
    assert_eq!(outcome.expect("lh5 unpacked"), 18_092);
    let text = String::from_utf8(output.unwrap_or_default()).expect("text");
    assert!(text.contains("GNU GENERAL PUBLIC LICENSE"));
}
