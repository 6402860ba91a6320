//! Microsoft's VHDX ([MS-VHDX]): the file identifier at 0, a region table at 192 KiB whose
//! metadata-region entry leads to a metadata table, whose "virtual disk size" item holds the
//! disk size. Three hops, each captured as the stream reaches it.

use crate::capture::{le_u16, le_u32, le_u64, Region};
use crate::{Facts, Failure, Inspector, State};

const IDENTIFIER: &[u8] = b"vhdxfile";
const REGION_TABLE: u64 = 192 * 1024;
/// The region table: a 16-byte header and up to 2047 entries of 32 bytes.
const REGION_TABLE_LEN: usize = 64 * 1024;
/// The metadata table: a 32-byte header and up to 2047 entries of 32 bytes.
const METADATA_TABLE_LEN: usize = 64 * 1024;
const MAX_ENTRIES: usize = 2047;
/// GUIDs as they are stored (the first three fields little-endian).
const METADATA_REGION: [u8; 16] = guid(
    0x8B7C_A206,
    0x4790,
    0x4B9A,
    [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E],
);
const VIRTUAL_DISK_SIZE: [u8; 16] = guid(
    0x2FA5_4224,
    0xCD1B,
    0x4876,
    [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8],
);

const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

#[derive(Debug)]
enum Step {
    Identifier(Region),
    RegionTable(Region),
    MetadataTable { start: u64, table: Region },
    DiskSize(Region),
}

#[derive(Debug)]
pub(crate) struct Vhdx {
    step: Step,
    state: State,
}

impl Default for Vhdx {
    fn default() -> Vhdx {
        Vhdx {
            step: Step::Identifier(Region::new(0, IDENTIFIER.len())),
            state: State::Reading,
        }
    }
}

/// An entry with `id` among `count` 32-byte entries from `first` on.
fn entry<'a>(table: &'a [u8], first: usize, count: usize, id: &[u8; 16]) -> Option<&'a [u8]> {
    (0..count)
        .map(|i| first + i * 32)
        .filter_map(|at| table.get(at..at + 32))
        .find(|e| e.starts_with(id))
}

impl Vhdx {
    fn broken(&mut self, why: &str) {
        self.state = State::This(Facts {
            failures: vec![Failure::new("structure", format!("Invalid VHDX: {why}"))],
            settled: true,
            ..Facts::default()
        });
    }

    /// Moves to the next structure once the current one is captured; `Err` says why the
    /// image is malformed.
    fn advance(&mut self) -> Result<bool, &'static str> {
        let next = match &self.step {
            Step::Identifier(r) if r.is_full() => {
                if r.bytes() != IDENTIFIER {
                    self.state = State::NotThis;
                    return Ok(false);
                }
                Step::RegionTable(Region::new(REGION_TABLE, REGION_TABLE_LEN))
            }
            Step::RegionTable(r) if r.is_full() => {
                let t = r.bytes();
                if !t.starts_with(b"regi") {
                    return Err("region table signature not found");
                }
                let count = le_u32(t, 8).map_or(usize::MAX, |c| c as usize);
                if count > MAX_ENTRIES {
                    return Err("too many region table entries");
                }
                let found = entry(t, 16, count, &METADATA_REGION).ok_or("no metadata region")?;
                let start = le_u64(found, 16).ok_or("short region entry")?;
                // The specification puts regions past the headers; requiring each structure
                // to follow the one that led to it keeps the walk a single forward pass.
                if start < REGION_TABLE + REGION_TABLE_LEN as u64 {
                    return Err("a structure points backwards");
                }
                Step::MetadataTable {
                    start,
                    table: Region::new(start, METADATA_TABLE_LEN),
                }
            }
            Step::MetadataTable { start, table } if table.is_full() => {
                let t = table.bytes();
                if !t.starts_with(b"metadata") {
                    return Err("metadata table signature not found");
                }
                let count = usize::from(le_u16(t, 10).unwrap_or(u16::MAX));
                if count > MAX_ENTRIES {
                    return Err("too many metadata entries");
                }
                let found =
                    entry(t, 32, count, &VIRTUAL_DISK_SIZE).ok_or("no virtual disk size")?;
                let offset = le_u32(found, 16).ok_or("short metadata entry")?;
                if (offset as usize) < METADATA_TABLE_LEN {
                    return Err("a structure points backwards");
                }
                Step::DiskSize(Region::new(start + u64::from(offset), 8))
            }
            Step::DiskSize(r) if r.is_full() => {
                self.state = State::This(Facts {
                    virtual_size: le_u64(r.bytes(), 0),
                    settled: true,
                    ..Facts::default()
                });
                return Ok(false);
            }
            _ => return Ok(false),
        };
        self.step = next;
        // Past the identifier: a VHDX, whose size is still to be read.
        self.state = State::This(Facts::default());
        Ok(true)
    }

    fn region(&mut self) -> &mut Region {
        match &mut self.step {
            Step::Identifier(r) | Step::RegionTable(r) | Step::DiskSize(r) => r,
            Step::MetadataTable { table, .. } => table,
        }
    }
}

impl Inspector for Vhdx {
    fn feed(&mut self, at: u64, data: &[u8]) {
        loop {
            let region = self.region();
            region.feed(at, data);
            // A structure the stream has already passed cannot be read any more.
            if region.missed(at) {
                return self.broken("a structure points backwards");
            }
            match self.advance() {
                Ok(true) => continue,
                Ok(false) => break,
                Err(why) => return self.broken(why),
            }
        }
    }

    fn finish(&mut self, _total: u64) {
        match self.state {
            State::Reading => self.state = State::NotThis,
            State::This(ref facts) if !facts.settled => self.broken("truncated"),
            _ => {}
        }
    }

    fn state(&self) -> &State {
        &self.state
    }
}
