//! ISO 9660 (ECMA-119) and UDF (ECMA-167): after a 32 KiB system area, a sequence of
//! 2 KiB volume descriptors, each with a five-letter standard identifier at byte 1. An ISO
//! 9660 image starts the sequence with `CD001`; a UDF one carries a Volume Recognition
//! Sequence (`BEA01`, `NSR02`/`NSR03`, `TEA01`), possibly after ISO 9660 descriptors of a
//! bridge disc.

use crate::capture::{le_u16, le_u32, Region};
use crate::{Facts, Inspector, State};

const SYSTEM_AREA: u64 = 32 * 1024;
const SECTOR: u64 = 2048;
/// Enough of a descriptor for its type, identifier and the volume size fields.
const DESCRIPTOR_HEAD: usize = 136;
/// How far the sequence is walked: real discs have a handful of descriptors.
const MAX_DESCRIPTORS: u64 = 32;
const PRIMARY: u8 = 1;

#[derive(Debug)]
pub(crate) struct Iso {
    index: u64,
    descriptor: Region,
    /// Inside a UDF recognition sequence (after `BEA01`).
    in_udf_sequence: bool,
    /// An ISO 9660 disc; its size is then in the primary descriptor.
    iso9660: bool,
    state: State,
}

impl Default for Iso {
    fn default() -> Iso {
        Iso {
            index: 0,
            descriptor: Region::new(SYSTEM_AREA, DESCRIPTOR_HEAD),
            in_udf_sequence: false,
            iso9660: false,
            state: State::Reading,
        }
    }
}

impl Iso {
    /// Reads the captured descriptor; true to go on to the next one.
    fn step(&mut self) -> bool {
        let d = self.descriptor.bytes();
        let identifier = d.get(1..6).unwrap_or_default();
        match identifier {
            b"CD001" if !self.in_udf_sequence => {
                if self.index == 0 {
                    self.iso9660 = true;
                    // The primary descriptor normally comes first; the size is the number
                    // of logical blocks times their size, read from the little-endian
                    // halves of the both-endian fields.
                    let virtual_size = (d.first() == Some(&PRIMARY))
                        .then(|| {
                            let blocks = u64::from(le_u32(d, 80)?);
                            let block = u64::from(le_u16(d, 128)?);
                            Some(blocks * block)
                        })
                        .flatten()
                        .filter(|&size| size > 0);
                    self.state = State::This(Facts {
                        virtual_size,
                        settled: virtual_size.is_some(),
                        ..Facts::default()
                    });
                }
                // A bridge disc may follow with a UDF sequence; nothing there changes the
                // conclusion, so stop here.
                false
            }
            b"NSR02" | b"NSR03" => {
                // A UDF disc; its size is the image's own.
                if !self.iso9660 {
                    self.state = State::This(Facts::default());
                }
                false
            }
            b"BEA01" | b"BOOT2" | b"CDW02" => {
                self.in_udf_sequence |= identifier == b"BEA01";
                true
            }
            _ => {
                if !self.iso9660 {
                    self.state = State::NotThis;
                }
                false
            }
        }
    }
}

impl Inspector for Iso {
    fn feed(&mut self, at: u64, data: &[u8]) {
        if !matches!(self.state, State::Reading) {
            return;
        }
        loop {
            self.descriptor.feed(at, data);
            if !self.descriptor.is_full() {
                return;
            }
            let go_on = self.step();
            self.index += 1;
            if !go_on {
                return;
            }
            if self.index == MAX_DESCRIPTORS {
                self.state = State::NotThis;
                return;
            }
            self.descriptor = Region::new(SYSTEM_AREA + self.index * SECTOR, DESCRIPTOR_HEAD);
        }
    }

    fn finish(&mut self, total: u64) {
        self.state = match &self.state {
            State::This(facts) if !facts.settled => State::This(Facts {
                virtual_size: Some(total),
                settled: true,
                ..facts.clone()
            }),
            State::This(facts) => State::This(facts.clone()),
            _ => State::NotThis,
        };
    }

    fn state(&self) -> &State {
        &self.state
    }
}
