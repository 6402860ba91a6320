//! Microsoft's VHD ("Virtual Hard Disk Image Format Specification"): a 512-byte big-endian
//! footer, copied to the start of dynamic and differencing disks and only at the end of
//! fixed ones. The disk size is computed as qemu computes it (its `vpc` driver), so that it
//! matches `qemu-img info`.

use crate::capture::{be_u16, be_u32, be_u64, Region, Tail};
use crate::{Facts, Failure, Inspector, State};

const COOKIE: &[u8] = b"conectix";
const FOOTER: usize = 512;
const FIXED: u32 = 2;
const DIFFERENCING: u32 = 4;
/// The largest geometry (65535 cylinders, 16 heads, 255 sectors): the true size is then
/// only in `current_size`.
const MAX_GEOMETRY: u64 = 65535 * 16 * 255;

#[derive(Debug)]
pub(crate) struct Vhd {
    head: Region,
    tail: Tail,
    state: State,
}

impl Default for Vhd {
    fn default() -> Vhd {
        Vhd {
            head: Region::new(0, FOOTER),
            tail: Tail::new(FOOTER),
            state: State::Reading,
        }
    }
}

/// The facts a footer states.
fn facts(footer: &[u8], settled: bool) -> Facts {
    let cylinders = u64::from(be_u16(footer, 56).unwrap_or(0));
    let heads = u64::from(footer.get(58).copied().unwrap_or(0));
    let sectors = u64::from(footer.get(59).copied().unwrap_or(0));
    let geometry = cylinders * heads * sectors;
    // Virtual PC and qemu's own first writer size the disk by its geometry; Hyper-V, disk2vhd,
    // XenServer and qemu's "qem2" by `current_size`.
    let creator = footer.get(28..32).unwrap_or_default();
    let by_geometry = !matches!(creator, b"win " | b"qem2" | b"d2v " | b"CTXS" | b"tap\0");
    let virtual_size = if by_geometry && geometry != MAX_GEOMETRY {
        geometry * 512
    } else {
        be_u64(footer, 48).unwrap_or(0) / 512 * 512
    };
    let mut failures = Vec::new();
    // A differencing disk reads its parent from a path on the host.
    if be_u32(footer, 60) == Some(DIFFERENCING) {
        failures.push(Failure::new(
            "parent",
            "Differencing disks read a parent image",
        ));
    }
    Facts {
        virtual_size: Some(virtual_size),
        failures,
        subformat: None,
        settled,
    }
}

impl Inspector for Vhd {
    fn feed(&mut self, at: u64, data: &[u8]) {
        if self.state == State::Reading {
            self.head.feed(at, data);
            let h = self.head.bytes();
            if h.len() >= COOKIE.len() && !h.starts_with(COOKIE) {
                self.state = State::EndOnly;
            } else if self.head.is_full() {
                self.state = State::This(facts(h, true));
                return;
            }
        }
        self.tail.feed(data);
    }

    fn finish(&mut self, _total: u64) {
        if matches!(self.state, State::This(_)) {
            return;
        }
        // A fixed disk: the data, then the footer.
        self.state = match self.tail.bytes() {
            Some(footer) if footer.starts_with(COOKIE) && be_u32(footer, 60) == Some(FIXED) => {
                State::This(facts(footer, true))
            }
            _ => State::NotThis,
        };
    }

    fn state(&self) -> &State {
        &self.state
    }
}
