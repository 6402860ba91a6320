//! LUKS version 1 (the cryptsetup on-disk format): a big-endian header at 0, then the
//! encrypted payload from `payload-offset` sectors on. qemu opens version 1 only.

use crate::capture::{be_u16, be_u32, Region};
use crate::{Facts, Failure, Inspector, State};

const MAGIC: &[u8] = b"LUKS\xba\xbe";
/// Up to and including `payload-offset` (offset 104).
const HEADER: usize = 108;

#[derive(Debug)]
pub(crate) struct Luks {
    header: Region,
    state: State,
}

impl Default for Luks {
    fn default() -> Luks {
        Luks {
            header: Region::new(0, HEADER),
            state: State::Reading,
        }
    }
}

impl Inspector for Luks {
    fn feed(&mut self, at: u64, data: &[u8]) {
        if self.state != State::Reading {
            return;
        }
        self.header.feed(at, data);
        let h = self.header.bytes();
        if h.len() >= MAGIC.len() && !h.starts_with(MAGIC) {
            self.state = State::NotThis;
        } else if self.header.is_full() {
            let version = be_u16(h, 6).unwrap_or(0);
            let failures = if version == 1 {
                Vec::new()
            } else {
                vec![Failure::new(
                    "version",
                    format!("LUKS version {version} is not supported"),
                )]
            };
            self.state = State::This(Facts {
                failures,
                ..Facts::default()
            });
        }
    }

    fn finish(&mut self, total: u64) {
        self.state = match &self.state {
            // The disk is what follows the header and key material.
            State::This(facts) => {
                let payload = u64::from(be_u32(self.header.bytes(), 104).unwrap_or(0)) * 512;
                State::This(Facts {
                    virtual_size: Some(total.saturating_sub(payload)),
                    settled: true,
                    ..facts.clone()
                })
            }
            _ => State::NotThis,
        };
    }

    fn state(&self) -> &State {
        &self.state
    }
}
