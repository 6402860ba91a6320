//! The detector on real images made by `qemu-img` (their virtual size must be what
//! `qemu-img info` reports), on hand-built ones for the formats qemu-img cannot write, and
//! on malformed ones. Every stream is fed in several chunkings: the findings must not
//! depend on where the chunks split.

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The formats recognised in `data`, with their facts, fed `chunk` bytes at a time.
fn detect_chunked(data: &[u8], chunk: usize) -> Vec<(Format, Facts)> {
    let mut detector = Detector::new();
    for piece in data.chunks(chunk) {
        detector.feed(piece);
    }
    detector.finish();
    assert_eq!(detector.position(), data.len() as u64);
    detector
        .findings()
        .filter_map(|(format, state)| match state {
            State::This(facts) => Some((format, facts.clone())),
            State::NotThis => None,
            other => panic!("{format} still {other:?} after the end"),
        })
        .collect()
}

/// `detect_chunked` in several chunkings, which must agree.
fn detect(data: &[u8]) -> Vec<(Format, Facts)> {
    let whole = detect_chunked(data, data.len().max(1));
    let mut sizes = vec![4093, 65536];
    if data.len() <= 1 << 20 {
        sizes.push(1);
    }
    for size in sizes {
        assert_eq!(detect_chunked(data, size), whole, "chunks of {size}");
    }
    whole
}

/// The only format found, with its facts.
fn only(data: &[u8]) -> (Format, Facts) {
    let found = detect(data);
    assert_eq!(found.len(), 1, "expected one format, found {found:?}");
    found.into_iter().next().unwrap_or_else(|| unreachable!())
}

fn checks(facts: &Facts) -> Vec<&'static str> {
    facts.failures.iter().map(|f| f.check).collect()
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("glint-formats-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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

/// `qemu-img info`'s virtual size, reading the file as `format`.
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
    let text = String::from_utf8_lossy(&out.stdout);
    // The image's own size comes after its children's (the file under it).
    let at = text.rfind("\"virtual-size\":").expect("virtual-size") + "\"virtual-size\":".len();
    text[at..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number")
}

/// Creates an image with `qemu-img create`, and reads it back.
fn create(scratch: &Scratch, name: &str, args: &[&str]) -> (PathBuf, Vec<u8>) {
    let path = scratch.path(name);
    let mut all: Vec<&str> = vec!["create", "-q"];
    all.extend_from_slice(args);
    let path_str = path.to_str().expect("utf-8 path").to_owned();
    all.insert(2 + args.len() - 1, &path_str);
    qemu_img(&all);
    let data = std::fs::read(&path).expect("read image");
    (path, data)
}

#[test]
fn safe_qemu_images_are_recognised_with_qemus_virtual_size() {
    let scratch = Scratch::new("safe");
    let cases: &[(&str, Format, &[&str], &str)] = &[
        (
            "v2.qcow2",
            Format::Qcow2,
            &["-f", "qcow2", "-o", "compat=0.10", "1G"],
            "qcow2",
        ),
        (
            "v3.qcow2",
            Format::Qcow2,
            &["-f", "qcow2", "-o", "compat=1.1", "1G"],
            "qcow2",
        ),
        (
            "odd.qcow2",
            Format::Qcow2,
            &["-f", "qcow2", "12345678"],
            "qcow2",
        ),
        (
            "sparse.vmdk",
            Format::Vmdk,
            &["-f", "vmdk", "-o", "subformat=monolithicSparse", "1G"],
            "vmdk",
        ),
        (
            "stream.vmdk",
            Format::Vmdk,
            &["-f", "vmdk", "-o", "subformat=streamOptimized", "1G"],
            "vmdk",
        ),
        (
            "dynamic.vhd",
            Format::Vhd,
            &["-f", "vpc", "-o", "subformat=dynamic", "1G"],
            "vpc",
        ),
        (
            "odd.vhd",
            Format::Vhd,
            &["-f", "vpc", "-o", "subformat=dynamic", "12345678"],
            "vpc",
        ),
        (
            "forced.vhd",
            Format::Vhd,
            &[
                "-f",
                "vpc",
                "-o",
                "subformat=dynamic,force_size=on",
                "12345678",
            ],
            "vpc",
        ),
        (
            "fixed.vhd",
            Format::Vhd,
            &["-f", "vpc", "-o", "subformat=fixed", "3M"],
            "vpc",
        ),
        ("disk.vhdx", Format::Vhdx, &["-f", "vhdx", "1G"], "vhdx"),
        (
            "odd.vhdx",
            Format::Vhdx,
            &["-f", "vhdx", "12345678"],
            "vhdx",
        ),
        ("disk.vdi", Format::Vdi, &["-f", "vdi", "1G"], "vdi"),
        ("odd.vdi", Format::Vdi, &["-f", "vdi", "12345678"], "vdi"),
    ];
    for (name, format, args, qemu_format) in cases {
        let (path, data) = create(&scratch, name, args);
        let (found, facts) = only(&data);
        assert_eq!(found, *format, "{name}");
        assert_eq!(checks(&facts), Vec::<&str>::new(), "{name}: {facts:?}");
        assert_eq!(
            facts.virtual_size,
            Some(qemu_virtual_size(&path, qemu_format)),
            "{name}"
        );
    }
}

#[test]
fn a_luks_image_is_recognised_with_its_payload_size() {
    let scratch = Scratch::new("luks");
    let path = scratch.path("disk.luks");
    qemu_img(&[
        "create",
        "-q",
        "--object",
        "secret,id=sec0,data=secret",
        "-f",
        "luks",
        "-o",
        "key-secret=sec0,iter-time=10",
        path.to_str().expect("utf-8"),
        "4M",
    ]);
    let data = std::fs::read(&path).expect("read");
    let (format, facts) = only(&data);
    assert_eq!(format, Format::Luks);
    assert!(facts.failures.is_empty());
    assert_eq!(facts.virtual_size, Some(4 << 20));
}

#[test]
fn unsafe_qemu_images_fail_the_checks_glance_applies() {
    let scratch = Scratch::new("unsafe");
    let base = scratch.path("base.raw");
    std::fs::write(&base, vec![0u8; 1 << 20]).expect("base");
    let base = base.to_str().expect("utf-8").to_owned();
    let data_file = scratch.path("external.raw");
    let data_file_opt = format!("data_file={},compat=1.1", data_file.display());
    // qemu names a vmdk's parent in its descriptor (parentFileNameHint), and opens it.
    let parent_vmdk = scratch
        .path("parent.vmdk")
        .to_str()
        .expect("utf-8")
        .to_owned();
    let cases: &[(&str, Format, Vec<&str>, &str)] = &[
        (
            "backing.qcow2",
            Format::Qcow2,
            vec!["-f", "qcow2", "-F", "raw", "-b", &base, "1M"],
            "backing_file",
        ),
        (
            "datafile.qcow2",
            Format::Qcow2,
            vec!["-f", "qcow2", "-o", &data_file_opt, "1M"],
            "data_file",
        ),
        (
            "extl2.qcow2",
            Format::Qcow2,
            vec!["-f", "qcow2", "-o", "extended_l2=on", "1M"],
            "unknown_features",
        ),
        (
            "backing.qed",
            Format::Qed,
            vec!["-f", "qed", "1M"],
            "banned",
        ),
        ("child.vhd", Format::Vhd, vec!["-f", "vpc", "1M"], ""),
        ("parent.vmdk", Format::Vmdk, vec!["-f", "vmdk", "1M"], ""),
        (
            "child.vmdk",
            Format::Vmdk,
            vec!["-f", "vmdk", "-F", "vmdk", "-b", &parent_vmdk, "1M"],
            "descriptor",
        ),
    ];
    for (name, format, args, check) in cases {
        let (_, data) = create(&scratch, name, args);
        let (found, facts) = only(&data);
        assert_eq!(found, *format, "{name}");
        if check.is_empty() {
            continue;
        }
        assert!(checks(&facts).contains(check), "{name}: {facts:?}");
    }
}

#[test]
fn vmdk_descriptor_files_are_recognised_and_refused() {
    let scratch = Scratch::new("vmdkdesc");
    for subformat in [
        "monolithicFlat",
        "twoGbMaxExtentSparse",
        "twoGbMaxExtentFlat",
    ] {
        let name = format!("{subformat}.vmdk");
        let opt = format!("subformat={subformat}");
        let (_, data) = create(&scratch, &name, &["-f", "vmdk", "-o", &opt, "1M"]);
        let (found, facts) = only(&data);
        assert_eq!(found, Format::Vmdk, "{subformat}");
        assert_eq!(
            facts.subformat.as_deref(),
            Some(subformat.to_ascii_lowercase().as_str())
        );
        assert!(!facts.failures.is_empty(), "{subformat}");
    }
}

/// A stream-optimized vmdk made by qemu, as bytes to tamper with.
fn stream_optimized(scratch: &Scratch) -> Vec<u8> {
    create(
        scratch,
        "s.vmdk",
        &["-f", "vmdk", "-o", "subformat=streamOptimized", "1G"],
    )
    .1
}

/// The same image as VMware's streaming writers lay it out: the header says the grain
/// directory is at the end, and a footer (marker, header copy, end-of-stream marker) closes
/// the stream.
fn with_footer(image: &[u8]) -> Vec<u8> {
    let mut data = image.to_vec();
    data[56..64].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut marker = [0u8; 512];
    marker[12] = 3;
    data.extend_from_slice(&marker);
    data.extend_from_slice(&image[..512]);
    data.extend_from_slice(&[0u8; 512]);
    data
}

#[test]
fn a_vmdk_extent_naming_a_host_file_is_refused() {
    let scratch = Scratch::new("vmdkpath");
    let mut data = stream_optimized(&scratch);
    let descriptor = String::from_utf8_lossy(&data[0x200..0x400]).into_owned();
    let at = descriptor.find("RW ").expect("an extent line");
    let line_end = at + descriptor[at..].find('\n').expect("line end");
    let evil = "RW 8 FLAT \"/etc/shadow\" 0";
    let mut patched = descriptor[..at].to_owned() + evil;
    patched.push_str(&" ".repeat((line_end - at).saturating_sub(evil.len())));
    patched.push_str(&descriptor[line_end..]);
    data[0x200..0x200 + patched.len()].copy_from_slice(patched.as_bytes());
    let (_, facts) = only(&data);
    assert!(
        facts
            .failures
            .iter()
            .any(|f| f.reason == "Invalid extent filenames found"),
        "{facts:?}"
    );
}

#[test]
fn a_vmdk_with_a_tampered_footer_is_refused() {
    let scratch = Scratch::new("vmdkfooter");
    let good = with_footer(&stream_optimized(&scratch));
    let (_, facts) = only(&good);
    assert!(facts.failures.is_empty(), "{facts:?}");
    assert_eq!(facts.virtual_size, Some(1 << 30));
    let len = good.len();
    // The footer's copy of the header moved the descriptor; then the end-of-stream marker
    // was damaged; then the footer cut off.
    let mut moved = good.clone();
    moved[len - 1024 + 28] = 7;
    let mut no_eos = good.clone();
    no_eos[len - 512 + 12] = 9;
    let cut = &good[..len - 512];
    for (name, data) in [("moved", &moved[..]), ("eos", &no_eos[..]), ("cut", cut)] {
        let (_, facts) = only(data);
        assert!(checks(&facts).contains(&"footer"), "{name}: {facts:?}");
    }
}

#[test]
fn data_with_no_header_is_no_format() {
    assert_eq!(detect(&[]), vec![]);
    assert_eq!(detect(&[0u8; 3 << 20]), vec![]);
    let text = "hello\n".repeat(100_000);
    assert_eq!(detect(text.as_bytes()), vec![]);
}

#[test]
fn a_truncated_header_is_no_format() {
    assert_eq!(detect(b"QFI\xfb\0\0\0\x03"), vec![]);
    assert_eq!(detect(b"KDMV"), vec![]);
}

/// An ISO 9660 image of `blocks` 2 KiB blocks with its primary descriptor (and more).
fn iso9660(blocks: u32, more: &[&[u8; 5]]) -> Vec<u8> {
    let mut data = vec![0u8; blocks as usize * 2048];
    let mut at = 32768;
    let mut descriptor = |kind: u8, id: &[u8; 5], data: &mut Vec<u8>| {
        data[at] = kind;
        data[at + 1..at + 6].copy_from_slice(id);
        data[at + 6] = 1;
        at += 2048;
    };
    descriptor(1, b"CD001", &mut data);
    let pvd = 32768;
    data[pvd + 80..pvd + 84].copy_from_slice(&blocks.to_le_bytes());
    data[pvd + 84..pvd + 88].copy_from_slice(&blocks.to_be_bytes());
    data[pvd + 128..pvd + 130].copy_from_slice(&2048u16.to_le_bytes());
    for id in more {
        descriptor(0, id, &mut data);
    }
    descriptor(255, b"CD001", &mut data);
    data
}

#[test]
fn iso9660_and_udf_are_recognised() {
    let (format, facts) = only(&iso9660(40, &[]));
    assert_eq!((format, facts.virtual_size), (Format::Iso, Some(40 * 2048)));
    // A bridge disc.
    let (format, _) = only(&iso9660(40, &[b"BEA01", b"NSR02", b"TEA01"]));
    assert_eq!(format, Format::Iso);
    // Pure UDF: the recognition sequence alone; its size is the image's.
    let mut udf = vec![0u8; 50 * 2048];
    for (i, id) in [b"BEA01", b"NSR03", b"TEA01"].iter().enumerate() {
        let at = 32768 + i * 2048;
        udf[at + 1..at + 6].copy_from_slice(*id);
    }
    let (format, facts) = only(&udf);
    assert_eq!((format, facts.virtual_size), (Format::Iso, Some(50 * 2048)));
    // A recognition sequence that ends without an NSR descriptor is not UDF.
    udf[32768 + 2048 + 1..32768 + 2048 + 6].copy_from_slice(b"TEA01");
    assert_eq!(detect(&udf), vec![]);
}

/// A disk with a protective MBR, as GPT partitioners write it.
fn protective_mbr(size: usize) -> Vec<u8> {
    let mut data = vec![0u8; size];
    let entry = 446;
    data[entry + 1..entry + 4].copy_from_slice(&[0, 2, 0]);
    data[entry + 4] = 0xEE;
    data[entry + 8..entry + 12].copy_from_slice(&1u32.to_le_bytes());
    data[entry + 12..entry + 16].copy_from_slice(&((size / 512 - 1) as u32).to_le_bytes());
    data[510..512].copy_from_slice(&[0x55, 0xAA]);
    data[512..520].copy_from_slice(b"EFI PART");
    data
}

#[test]
fn a_partitioned_disk_is_gpt_and_its_mbr_is_checked() {
    let good = protective_mbr(1 << 20);
    let (format, facts) = only(&good);
    assert_eq!(format, Format::Gpt);
    assert!(facts.failures.is_empty(), "{facts:?}");
    assert_eq!(facts.virtual_size, Some(1 << 20));

    let mut extra = good.clone();
    extra[446 + 16 + 4] = 0x83;
    let mut flag = good.clone();
    flag[446] = 0x42;
    let mut empty = good.clone();
    empty[446 + 4] = 0;
    let mut lba = good.clone();
    lba[446 + 8] = 2;
    for (name, data) in [
        ("extra", extra),
        ("flag", flag),
        ("empty", empty),
        ("lba", lba),
    ] {
        let (_, facts) = only(&data);
        assert_eq!(checks(&facts), vec!["mbr"], "{name}");
    }
    // A FAT boot sector has the signature too, and is not a partition table.
    let mut fat = good;
    fat[0x10] = 2;
    fat[0x15] = 0xF8;
    assert_eq!(detect(&fat), vec![]);
}

#[test]
fn an_iso_with_a_partition_table_matches_both() {
    let mut hybrid = iso9660(600, &[]);
    hybrid[..1024].copy_from_slice(&protective_mbr(1024));
    let formats: Vec<Format> = detect(&hybrid).into_iter().map(|(f, _)| f).collect();
    assert_eq!(formats, vec![Format::Iso, Format::Gpt]);
}

#[test]
fn a_luks2_header_fails_the_version_check() {
    let mut data = vec![0u8; 8192];
    data[..6].copy_from_slice(b"LUKS\xba\xbe");
    data[7] = 2;
    let (format, facts) = only(&data);
    assert_eq!(format, Format::Luks);
    assert_eq!(checks(&facts), vec!["version"]);
}

#[test]
fn a_vhdx_pointing_backwards_is_broken_not_a_hang() {
    let scratch = Scratch::new("vhdxback");
    let (_, mut data) = create(&scratch, "d.vhdx", &["-f", "vhdx", "1G"]);
    // Point the metadata region (whichever region entry it is) at offset 0.
    let table = 192 * 1024;
    for i in 0..2 {
        let entry = table + 16 + i * 32;
        data[entry + 16..entry + 24].copy_from_slice(&0u64.to_le_bytes());
    }
    let (format, facts) = only(&data);
    assert_eq!(format, Format::Vhdx);
    assert_eq!(checks(&facts), vec!["structure"]);
}
