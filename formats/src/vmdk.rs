//! VMware's VMDK ("Virtual Disk Format 5.0"): a hosted sparse extent starts with a
//! little-endian header ("KDMV") that locates a text descriptor, whose extent lines name the
//! files holding the data. Only self-contained subformats are safe: an extent naming a host
//! path (`RW 2048 FLAT "/etc/shadow"`) would hand that file to the guest. A descriptor can
//! also come alone, as a text file; it then always names data outside the image.

use crate::capture::{le_u32, le_u64, Region, Tail};
use crate::{Facts, Failure, Inspector, State};

const MAGIC: &[u8] = b"KDMV";
/// The part of the sparse header that locates everything else.
const SPARSE_HEADER: usize = 64;
/// Where qemu and VMware put the embedded descriptor.
const DESCRIPTOR_AT: u64 = 0x200;
/// qemu reads at most this much of a descriptor.
const DESCRIPTOR_MAX: usize = (1 << 20) - 1;
/// The grain directory is at the end: a footer (marker, header copy, end-of-stream marker)
/// closes the stream and takes precedence over the header.
const GD_AT_END: u64 = u64::MAX;
const FOOTER: usize = 1536;
const MARKER_EOS: u32 = 0;
const MARKER_FOOTER: u32 = 3;
/// The subformats whose data is all inside the one file.
pub(crate) const SELF_CONTAINED: [&str; 2] = ["monolithicsparse", "streamoptimized"];

#[derive(Debug)]
enum Mode {
    /// The first bytes, to tell a sparse header from a descriptor file.
    Start(Region),
    /// A sparse extent: its header, and its descriptor being captured.
    Sparse {
        header: Vec<u8>,
        descriptor: Region,
        footer: Option<Tail>,
        /// From the descriptor once read.
        found: Option<Descriptor>,
    },
    /// A descriptor file: text up to the first byte that is not text.
    Text(Vec<u8>),
    Done,
}

#[derive(Debug, Clone)]
struct Descriptor {
    create_type: Option<String>,
    failures: Vec<Failure>,
}

#[derive(Debug)]
pub(crate) struct Vmdk {
    mode: Mode,
    state: State,
}

impl Default for Vmdk {
    fn default() -> Vmdk {
        Vmdk {
            mode: Mode::Start(Region::new(0, SPARSE_HEADER)),
            state: State::Reading,
        }
    }
}

fn is_text(byte: u8) -> bool {
    matches!(byte, 0x09..=0x0d | 0x20..=0x7e)
}

/// The fields of a sparse header this inspector uses.
#[derive(Debug, PartialEq, Eq)]
struct SparseHeader {
    version: u32,
    capacity: u64,
    descriptor_sector: u64,
    descriptor_sectors: u64,
    gd_offset: u64,
}

fn sparse_header(h: &[u8]) -> Option<SparseHeader> {
    if !h.starts_with(MAGIC) {
        return None;
    }
    Some(SparseHeader {
        version: le_u32(h, 4)?,
        capacity: le_u64(h, 12)?,
        descriptor_sector: le_u64(h, 28)?,
        descriptor_sectors: le_u64(h, 36)?,
        gd_offset: le_u64(h, 56)?,
    })
}

/// Reads a descriptor as qemu would, refusing anything it does not understand.
fn parse_descriptor(raw: &[u8]) -> Descriptor {
    let raw = raw.split(|&b| b == 0).next().unwrap_or_default();
    let Ok(text) = std::str::from_utf8(raw).map(str::to_ascii_lowercase) else {
        return Descriptor {
            create_type: None,
            failures: vec![Failure::new("descriptor", "No descriptor found")],
        };
    };
    if !text.is_ascii() {
        return Descriptor {
            create_type: None,
            failures: vec![Failure::new("descriptor", "No descriptor found")],
        };
    }
    let create_type = text.find("createtype=\"").and_then(|at| {
        let rest = &text[at + "createtype=\"".len()..];
        let end = rest.find('"')?;
        (end < 64).then(|| rest[..end].to_owned())
    });
    let mut failures = Vec::new();
    match create_type.as_deref() {
        Some(t) if SELF_CONTAINED.contains(&t) => {}
        _ => failures.push(Failure::new("descriptor", "Unsupported subformat")),
    }
    let mut extents = Vec::new();
    for line in text.lines().map(str::trim) {
        let header_field = line
            .split_once('=')
            .is_some_and(|(key, _)| !key.contains(' '));
        // A parent named in the header makes qemu open that file as the backing image.
        if header_field && line.starts_with("parentfilenamehint") {
            let value = line
                .split_once('=')
                .map_or("", |(_, v)| v.trim().trim_matches('"'));
            if !value.is_empty() {
                failures.push(Failure::new("descriptor", "Image has a parent file"));
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') || line.starts_with("ddb") || header_field {
            continue;
        }
        if matches!(line.split(' ').next(), Some("rw" | "rdonly" | "noaccess")) {
            extents.push(line);
        } else {
            failures.push(Failure::new("descriptor", "Invalid VMDK descriptor data"));
            break;
        }
    }
    if extents.iter().any(|e| e.contains('/')) {
        failures.push(Failure::new("descriptor", "Invalid extent filenames found"));
    }
    if extents.is_empty() {
        failures.push(Failure::new("descriptor", "No extents found"));
    }
    // One reason per check is enough.
    failures.dedup_by(|a, b| a.check == b.check);
    Descriptor {
        create_type,
        failures,
    }
}

/// What is wrong with a stream-optimized image's footer, if anything.
fn check_footer(header: &SparseHeader, tail: Option<&[u8]>) -> Option<&'static str> {
    let Some(tail) = tail else {
        return Some("Footer is missing");
    };
    let marker = |at: usize| {
        let m = tail.get(at..at + 512)?;
        Some((
            le_u64(m, 0)?,
            le_u32(m, 8)?,
            le_u32(m, 12)?,
            m[16..].iter().all(|&b| b == 0),
        ))
    };
    let Some(footer) = tail.get(512..1024).and_then(sparse_header) else {
        return Some("Header and footer signature do not match");
    };
    if footer.version != header.version {
        return Some("Header and footer versions do not match");
    }
    if (footer.descriptor_sector, footer.descriptor_sectors)
        != (header.descriptor_sector, header.descriptor_sectors)
    {
        return Some("Footer specifies a different descriptor than header");
    }
    if footer.gd_offset == GD_AT_END {
        return Some("Footer indicates another footer");
    }
    match marker(0) {
        Some((_, 0, MARKER_FOOTER, true)) => {}
        _ => return Some("Footer marker is invalid"),
    }
    match marker(1024) {
        Some((0, 0, MARKER_EOS, true)) => None,
        _ => Some("End-of-stream marker is invalid"),
    }
}

impl Vmdk {
    fn conclude(&mut self, facts: Facts) {
        self.mode = Mode::Done;
        self.state = State::This(facts);
    }

    fn refuse(&mut self, check: &'static str, reason: &str) {
        self.conclude(Facts {
            failures: vec![Failure::new(check, reason)],
            settled: true,
            ..Facts::default()
        });
    }

    /// The first 64 bytes are in (or the stream ended before them); `rest` is the stream
    /// after them, as far as it has come.
    fn start(&mut self, first: &[u8], rest: &[u8]) {
        if first.starts_with(MAGIC) {
            return self.start_sparse(first, rest);
        }
        if !first.is_empty() && first.iter().all(|&b| is_text(b)) {
            self.mode = Mode::Text(Vec::new());
            self.feed_text(first);
            self.feed_text(rest);
            return;
        }
        self.mode = Mode::Done;
        self.state = State::NotThis;
    }

    fn start_sparse(&mut self, first: &[u8], rest: &[u8]) {
        let Some(header) = sparse_header(first) else {
            return self.refuse("header", "Truncated sparse header");
        };
        if !(1..=3).contains(&header.version) {
            return self.refuse("header", "Unsupported sparse header version");
        }
        if header.descriptor_sector.checked_mul(512) != Some(DESCRIPTOR_AT) {
            return self.refuse("header", "Wrong descriptor location");
        }
        let size = header
            .descriptor_sectors
            .checked_mul(512)
            .and_then(|s| usize::try_from(s).ok());
        let size = match size {
            Some(0) => return self.refuse("descriptor", "No descriptor found"),
            Some(size) if size <= DESCRIPTOR_MAX + 1 => size.min(DESCRIPTOR_MAX),
            _ => return self.refuse("descriptor", "Descriptor is larger than 1 MiB"),
        };
        let mut descriptor = Region::new(DESCRIPTOR_AT, size);
        descriptor.feed(SPARSE_HEADER as u64, rest);
        let footer = (header.gd_offset == GD_AT_END).then(|| {
            let mut tail = Tail::new(FOOTER);
            tail.feed(first);
            tail.feed(rest);
            tail
        });
        self.state = State::This(Facts::default());
        self.mode = Mode::Sparse {
            header: first.to_vec(),
            descriptor,
            footer,
            found: None,
        };
        self.after_sparse_feed((SPARSE_HEADER + rest.len()) as u64);
    }

    fn after_sparse_feed(&mut self, position: u64) {
        let Mode::Sparse {
            descriptor, found, ..
        } = &mut self.mode
        else {
            return;
        };
        if found.is_none() && descriptor.is_full() {
            *found = Some(parse_descriptor(descriptor.bytes()));
        } else if found.is_none() && descriptor.missed(position) {
            return self.refuse("descriptor", "No descriptor found");
        }
        if let Some(d) = found.clone() {
            self.state = State::This(self.sparse_facts(&d, None));
            if let State::This(facts) = &self.state {
                if facts.settled {
                    self.mode = Mode::Done;
                }
            }
        }
    }

    /// The facts of a sparse extent whose descriptor is read; with the footer's bytes once
    /// the stream has ended, if it has one.
    fn sparse_facts(&self, d: &Descriptor, tail: Option<Option<&[u8]>>) -> Facts {
        let Mode::Sparse { header, footer, .. } = &self.mode else {
            return Facts::default();
        };
        let Some(header) = sparse_header(header) else {
            return Facts::default();
        };
        let mut failures = d.failures.clone();
        let mut capacity = header.capacity;
        let settled = footer.is_none() || tail.is_some();
        if let (Some(_), Some(tail)) = (footer, tail) {
            match check_footer(&header, tail) {
                Some(why) => failures.push(Failure::new("footer", why)),
                // qemu takes the footer's header over the first one.
                None => {
                    if let Some(f) = tail.and_then(|t| t.get(512..1024)).and_then(sparse_header) {
                        capacity = f.capacity;
                    }
                }
            }
        }
        let self_contained = d
            .create_type
            .as_deref()
            .is_some_and(|t| SELF_CONTAINED.contains(&t));
        Facts {
            virtual_size: (self_contained && settled).then(|| capacity.saturating_mul(512)),
            failures,
            subformat: d.create_type.clone(),
            settled,
        }
    }

    fn feed_text(&mut self, data: &[u8]) {
        let Mode::Text(text) = &mut self.mode else {
            return;
        };
        let room = DESCRIPTOR_MAX - text.len();
        let run = data.iter().take(room).take_while(|&&b| is_text(b)).count();
        text.extend_from_slice(&data[..run]);
        if run < data.len() || text.len() == DESCRIPTOR_MAX {
            self.end_text();
        }
    }

    fn end_text(&mut self) {
        let Mode::Text(text) = &self.mode else {
            return;
        };
        let d = parse_descriptor(text);
        if d.create_type.is_none() {
            self.mode = Mode::Done;
            self.state = State::NotThis;
            return;
        }
        let mut failures = d.failures;
        // A descriptor alone names its data in other files, always.
        if failures.is_empty() {
            failures.push(Failure::new("descriptor", "Unsupported subformat"));
        }
        self.conclude(Facts {
            virtual_size: None,
            failures,
            subformat: d.create_type,
            settled: true,
        });
    }
}

impl Inspector for Vmdk {
    fn feed(&mut self, at: u64, data: &[u8]) {
        match &mut self.mode {
            Mode::Start(first) => {
                first.feed(at, data);
                if first.is_full() {
                    let first = first.bytes().to_vec();
                    // `data` may run past the first bytes: the rest is the stream after them.
                    let end = at + data.len() as u64;
                    let beyond = usize::try_from(end - SPARSE_HEADER as u64).unwrap_or(0);
                    let skip = data.len().saturating_sub(beyond);
                    self.start(&first, &data[skip..]);
                }
            }
            Mode::Sparse {
                descriptor, footer, ..
            } => {
                descriptor.feed(at, data);
                if let Some(tail) = footer {
                    tail.feed(data);
                }
                self.after_sparse_feed(at + data.len() as u64);
            }
            Mode::Text(_) => self.feed_text(data),
            Mode::Done => {}
        }
    }

    fn finish(&mut self, _total: u64) {
        match &self.mode {
            Mode::Start(first) => {
                // Shorter than a sparse header: whatever it is, qemu would not open it as
                // one, but it may still be a (tiny) descriptor file.
                let first = first.bytes().to_vec();
                if first.starts_with(MAGIC) {
                    self.mode = Mode::Done;
                } else {
                    self.start(&first, &[]);
                }
                if matches!(self.mode, Mode::Text(_)) {
                    self.end_text();
                }
            }
            Mode::Text(_) => self.end_text(),
            Mode::Sparse { found: None, .. } => self.refuse("descriptor", "No descriptor found"),
            Mode::Sparse {
                found: Some(d),
                footer,
                ..
            } => {
                let d = d.clone();
                let tail = footer.as_ref().map(Tail::bytes).unwrap_or(None);
                let facts = self.sparse_facts(&d, Some(tail));
                self.conclude(facts);
            }
            Mode::Done => {}
        }
        if self.state == State::Reading {
            self.state = State::NotThis;
        }
    }

    fn state(&self) -> &State {
        &self.state
    }
}
