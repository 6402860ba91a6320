//! QEMU's qed (docs/interop/qed_spec.txt): recognised so that it can be refused. No
//! consumer supports it, and nobody checks its safety.

use crate::capture::{le_u64, Region};
use crate::{Facts, Failure, Inspector, State};

const MAGIC: &[u8] = b"QED\0";
/// Up to `image_size` (offset 48).
const HEADER: usize = 56;

#[derive(Debug)]
pub(crate) struct Qed {
    header: Region,
    state: State,
}

impl Default for Qed {
    fn default() -> Qed {
        Qed {
            header: Region::new(0, HEADER),
            state: State::Reading,
        }
    }
}

impl Inspector for Qed {
    fn feed(&mut self, at: u64, data: &[u8]) {
        self.header.feed(at, data);
        let h = self.header.bytes();
        if h.len() >= MAGIC.len() && !h.starts_with(MAGIC) {
            self.state = State::NotThis;
        } else if self.header.is_full() {
            self.state = State::This(Facts {
                virtual_size: le_u64(h, 48),
                failures: vec![Failure::new("banned", "This file format is not allowed")],
                subformat: None,
                settled: true,
            });
        }
    }

    fn finish(&mut self, _total: u64) {
        if self.state == State::Reading {
            self.state = State::NotThis;
        }
    }

    fn state(&self) -> &State {
        &self.state
    }
}
