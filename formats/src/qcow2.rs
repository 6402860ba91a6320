//! QEMU's qcow2 (docs/interop/qcow2.txt): a big-endian header at offset 0. A backing file or
//! an external data file makes the guest read a file on the host that runs it.

use crate::capture::{be_u32, be_u64, Region};
use crate::{Facts, Failure, Inspector, State};

const MAGIC: &[u8] = b"QFI\xfb";
/// The version 3 header up to and including `header_length` (offset 100).
const HEADER: usize = 104;
/// Incompatible feature bit 2: the guest data lives in an external file.
const DATA_FILE: u64 = 1 << 2;
/// Incompatible feature bits Glance knows (dirty, corrupt, external data file, compression
/// type). Bit 4 (extended L2) and above are refused as unknown, as Glance and Nova refuse
/// them, so an image accepted here does not fail later on the compute host.
const KNOWN_INCOMPATIBLE: u64 = 0b1111;

#[derive(Debug)]
pub(crate) struct Qcow2 {
    header: Region,
    state: State,
}

impl Default for Qcow2 {
    fn default() -> Qcow2 {
        Qcow2 {
            header: Region::new(0, HEADER),
            state: State::Reading,
        }
    }
}

impl Qcow2 {
    fn decide(&mut self) {
        let h = self.header.bytes();
        if !h.starts_with(MAGIC) {
            self.state = State::NotThis;
            return;
        }
        let mut failures = Vec::new();
        if be_u64(h, 8).unwrap_or(0) != 0 {
            failures.push(Failure::new("backing_file", "Image has a backing file"));
        }
        match be_u32(h, 4) {
            Some(2) => {}
            Some(3) => {
                let incompatible = be_u64(h, 72).unwrap_or(0);
                if incompatible & DATA_FILE != 0 {
                    failures.push(Failure::new("data_file", "Image has data_file set"));
                }
                if incompatible & !KNOWN_INCOMPATIBLE != 0 {
                    failures.push(Failure::new(
                        "unknown_features",
                        "Unknown QCOW2 features found",
                    ));
                }
            }
            _ => failures.push(Failure::new(
                "unknown_features",
                "Unsupported qcow2 version",
            )),
        }
        self.state = State::This(Facts {
            virtual_size: be_u64(h, 24),
            failures,
            subformat: None,
            settled: true,
        });
    }
}

impl Inspector for Qcow2 {
    fn feed(&mut self, at: u64, data: &[u8]) {
        self.header.feed(at, data);
        if self.header.bytes().len() >= MAGIC.len() && !self.header.bytes().starts_with(MAGIC) {
            self.state = State::NotThis;
        } else if self.header.is_full() {
            self.decide();
        }
    }

    fn finish(&mut self, _total: u64) {
        // Shorter than a header: not an image qemu would open as qcow2.
        if self.state == State::Reading {
            self.state = State::NotThis;
        }
    }

    fn state(&self) -> &State {
        &self.state
    }
}
