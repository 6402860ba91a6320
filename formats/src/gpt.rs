//! A disk with a partition table: a master boot record (its 0xAA55 signature at 510),
//! whose partition entries a GPT disk reduces to one protective entry (UEFI 2.x, chapter 5).
//! The disk's size is the image's own.

use crate::capture::{le_u16, le_u32, Region};
use crate::{Facts, Failure, Inspector, State};

const MBR: usize = 512;
const SIGNATURE: u16 = 0xAA55;
const PARTITION_ENTRIES: usize = 446;
const PROTECTIVE: u8 = 0xEE;
const FAT_FIXED_DISK: u8 = 0xF8;

#[derive(Debug)]
pub(crate) struct Gpt {
    mbr: Region,
    state: State,
}

impl Default for Gpt {
    fn default() -> Gpt {
        Gpt {
            mbr: Region::new(0, MBR),
            state: State::Reading,
        }
    }
}

/// A FAT volume boot record carries the same signature: two FATs on a fixed disk say it
/// is one, not a partition table.
fn is_fat(mbr: &[u8]) -> bool {
    mbr.get(0x10) == Some(&2) && mbr.get(0x15) == Some(&FAT_FIXED_DISK)
}

/// The first thing wrong with the partition entries, checked as Glance's "mbr" check does.
fn check_partitions(mbr: &[u8]) -> Option<String> {
    let mut defined = Vec::new();
    let mut protective = false;
    for i in 0..4 {
        let entry = mbr.get(PARTITION_ENTRIES + 16 * i..PARTITION_ENTRIES + 16 * (i + 1))?;
        if !matches!(entry[0], 0x00 | 0x80) {
            return Some(format!("MBR PTE {i} has invalid boot flag"));
        }
        let os_type = entry[4];
        if os_type != 0 {
            defined.push(i);
        }
        if os_type == PROTECTIVE {
            protective = true;
            if entry[1..4] != [0x00, 0x02, 0x00] {
                return Some("GPT MBR has invalid start CHS".into());
            }
            if le_u32(entry, 8) != Some(1) {
                return Some("GPT MBR has invalid start LBA".into());
            }
        }
    }
    if protective && defined != [0] {
        return Some("GPT MBR defines invalid extra partitions".into());
    }
    defined
        .is_empty()
        .then(|| "GPT MBR has no partitions defined".into())
}

impl Inspector for Gpt {
    fn feed(&mut self, at: u64, data: &[u8]) {
        if self.state != State::Reading {
            return;
        }
        self.mbr.feed(at, data);
        if !self.mbr.is_full() {
            return;
        }
        let mbr = self.mbr.bytes();
        self.state = if le_u16(mbr, 510) == Some(SIGNATURE) && !is_fat(mbr) {
            State::This(Facts {
                failures: check_partitions(mbr)
                    .map(|why| Failure::new("mbr", why))
                    .into_iter()
                    .collect(),
                ..Facts::default()
            })
        } else {
            State::NotThis
        };
    }

    fn finish(&mut self, total: u64) {
        self.state = match &self.state {
            State::This(facts) => State::This(Facts {
                virtual_size: Some(total),
                settled: true,
                ..facts.clone()
            }),
            _ => State::NotThis,
        };
    }

    fn state(&self) -> &State {
        &self.state
    }
}
