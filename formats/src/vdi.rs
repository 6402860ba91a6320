//! VirtualBox's vdi: a little-endian 512-byte header with its signature at 0x40 and the disk
//! size at 0x170.

use crate::capture::{le_u32, le_u64, Region};
use crate::{Facts, Inspector, State};

const SIGNATURE: u32 = 0xbeda_107f;
const HEADER: usize = 512;

#[derive(Debug)]
pub(crate) struct Vdi {
    header: Region,
    state: State,
}

impl Default for Vdi {
    fn default() -> Vdi {
        Vdi {
            header: Region::new(0, HEADER),
            state: State::Reading,
        }
    }
}

impl Inspector for Vdi {
    fn feed(&mut self, at: u64, data: &[u8]) {
        self.header.feed(at, data);
        if !self.header.is_full() {
            return;
        }
        let h = self.header.bytes();
        self.state = if le_u32(h, 0x40) == Some(SIGNATURE) {
            State::This(Facts {
                // qemu counts whole sectors.
                virtual_size: le_u64(h, 0x170).map(|size| size / 512 * 512),
                settled: true,
                ..Facts::default()
            })
        } else {
            State::NotThis
        };
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
