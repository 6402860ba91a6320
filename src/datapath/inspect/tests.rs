//! The judgement on hand-made headers: Glance's decision table, and how early it refuses.

use super::*;

/// A qcow2 v3 header for a disk of `size`, with a backing file if asked.
fn qcow2(size: u64, backing: bool) -> Vec<u8> {
    let mut data = vec![0u8; 4096];
    data[..4].copy_from_slice(b"QFI\xfb");
    data[4..8].copy_from_slice(&3u32.to_be_bytes());
    if backing {
        data[8..16].copy_from_slice(&1024u64.to_be_bytes());
    }
    data[24..32].copy_from_slice(&size.to_be_bytes());
    data
}

fn check(declared: &str, config: InspectionConfig) -> Box<dyn Inspector> {
    for_image(Some(declared), Some("bare"), &config)
}

/// Feeds `data` in chunks of `chunk`; the error (and how far it got) or the inspection.
fn run(
    declared: &str,
    config: InspectionConfig,
    data: &[u8],
    chunk: usize,
) -> Result<Inspection, (String, usize)> {
    let mut inspector = check(declared, config);
    let mut fed = 0;
    for piece in data.chunks(chunk) {
        fed += piece.len();
        if let Err(e) = inspector.inspect(&Chunk::new(vec![bytes::Bytes::copy_from_slice(piece)])) {
            return Err((e.to_string(), fed));
        }
    }
    inspector
        .finish(data.len() as u64)
        .map_err(|e| (e.to_string(), fed))
}

fn accepted(declared: &str, data: &[u8]) -> Option<u64> {
    match run(declared, InspectionConfig::default(), data, 4096) {
        Ok(inspection) => inspection.virtual_size,
        Err((e, _)) => panic!("{declared} refused: {e}"),
    }
}

fn refused(declared: &str, data: &[u8]) -> (String, usize) {
    match run(declared, InspectionConfig::default(), data, 4096) {
        Ok(inspection) => panic!("{declared} accepted: {inspection:?}"),
        Err(refusal) => refusal,
    }
}

#[test]
fn a_matching_format_gets_its_virtual_size() {
    assert_eq!(accepted("qcow2", &qcow2(1 << 30, false)), Some(1 << 30));
    assert_eq!(accepted("raw", &[7u8; 10_000]), Some(10_000));
}

#[test]
fn raw_content_under_an_uninspectable_format_is_accepted_without_size() {
    for declared in ["ami", "ari", "aki", "ploop"] {
        assert_eq!(accepted(declared, &[7u8; 10_000]), None, "{declared}");
    }
}

#[test]
fn declared_raw_with_other_content_is_accepted_as_bytes() {
    assert_eq!(accepted("raw", &qcow2(1 << 30, false)), Some(4096));
}

#[test]
fn a_mismatch_is_refused_with_glances_message_as_soon_as_known() {
    let data: Vec<u8> = [qcow2(1 << 30, false), vec![0; 1 << 20]].concat();
    let (message, fed) = refused("vmdk", &data);
    assert_eq!(
        message,
        "Image disk_format vmdk does not match stream data qcow2"
    );
    assert!(
        fed < 64 * 1024,
        "refused once the ISO descriptors are read, at {fed}"
    );
    let (message, _) = refused("qcow2", &[7u8; 10_000]);
    assert_eq!(
        message,
        "Image disk_format qcow2 does not match stream data raw"
    );
    let (message, _) = refused("ami", &qcow2(1 << 30, false));
    assert_eq!(
        message,
        "Image disk_format ami does not match stream data qcow2"
    );
}

#[test]
fn a_mismatch_passes_when_the_match_is_not_required() {
    let config = InspectionConfig {
        require_image_format_match: false,
        ..InspectionConfig::default()
    };
    let inspection = run("vmdk", config, &qcow2(1 << 30, false), 4096).expect("accepted");
    assert_eq!(inspection.virtual_size, None);
}

#[test]
fn an_unsafe_image_is_refused_at_its_header_whatever_it_is_declared() {
    let data: Vec<u8> = [qcow2(1 << 30, true), vec![0; 1 << 20]].concat();
    for declared in ["qcow2", "raw"] {
        let (message, fed) = refused(declared, &data);
        assert_eq!(message, "Image failed safety checks", "{declared}");
        assert_eq!(fed, 4096, "{declared}");
    }
    // Even when the format need not match.
    let config = InspectionConfig {
        require_image_format_match: false,
        ..InspectionConfig::default()
    };
    assert!(run("vmdk", config, &data, 4096).is_err());
}

/// A minimal MBR with one partition of type `os_type`, and a boot flag of `flag`.
fn mbr(os_type: u8, flag: u8) -> Vec<u8> {
    let mut data = vec![0u8; 64 * 1024];
    data[446] = flag;
    data[446 + 4] = os_type;
    data[510..512].copy_from_slice(&[0x55, 0xAA]);
    data
}

#[test]
fn gpt_checks_can_be_made_nonfatal() {
    let bad = mbr(0x83, 0x42);
    assert_eq!(refused("raw", &bad).0, "Image failed safety checks");
    let config = InspectionConfig {
        gpt_safety_checks_nonfatal: vec!["mbr".into()],
        ..InspectionConfig::default()
    };
    let inspection = run("raw", config, &bad, 4096).expect("accepted");
    assert_eq!(inspection.virtual_size, Some(64 * 1024));
    assert_eq!(accepted("raw", &mbr(0x83, 0x80)), Some(64 * 1024));
}

#[test]
fn containers_are_not_inspected() {
    let data = qcow2(1 << 30, true);
    let mut inspector = for_image(Some("qcow2"), Some("ova"), &InspectionConfig::default());
    inspector
        .inspect(&Chunk::new(vec![bytes::Bytes::from(data)]))
        .expect("not inspected");
    assert_eq!(inspector.finish(4096).expect("accepted").virtual_size, None);
}

#[test]
fn chunking_does_not_change_the_verdict() {
    let cases: [(&str, Vec<u8>); 3] = [
        ("qcow2", qcow2(1 << 30, false)),
        ("raw", qcow2(1 << 30, true)),
        ("qcow2", vec![7u8; 9000]),
    ];
    for (declared, data) in cases {
        let whole = run(declared, InspectionConfig::default(), &data, data.len())
            .map_err(|(message, _)| message);
        for chunk in [1, 100, 511, 4096] {
            let chunked = run(declared, InspectionConfig::default(), &data, chunk)
                .map_err(|(message, _)| message);
            assert_eq!(chunked, whole, "{declared} in chunks of {chunk}");
        }
    }
}
