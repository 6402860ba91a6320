//! Disk-image formats recognised as the bytes stream past, each from its published
//! specification: what the data is, the disk size it describes, and what about it is unsafe
//! to hand to a hypervisor (a qcow2 backing file, a vmdk extent naming a host path, ...).
//!
//! ```text
//! chunks ─▶ Detector ─┬ qcow2 ┬─▶ findings: per format, "not this" / "reading" / facts
//!                     ├ vmdk  │   (virtual size, failed safety checks)
//!                     ├ ...   │
//!                     └ luks  ┘
//! ```
//! Every inspector keeps only the few regions it needs (headers, a descriptor, the last few
//! sectors), so memory stays bounded whatever the image size, and most decide within the
//! first MiB. Inspectors never fail: malformed structures become safety failures of the
//! format they claim to be, so the caller decides on facts, not on parser errors.

mod capture;
mod gpt;
mod iso;
mod luks;
mod qcow2;
mod qed;
mod vdi;
mod vhd;
mod vhdx;
mod vmdk;

use std::fmt;

/// The formats recognised by content, named as `qemu-img` and Glance name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    Qcow2,
    Qed,
    Vhd,
    Vhdx,
    Vmdk,
    Vdi,
    Iso,
    Gpt,
    Luks,
}

impl Format {
    /// Every format with an inspector, in the order findings are reported.
    pub const ALL: [Format; 9] = [
        Format::Qcow2,
        Format::Qed,
        Format::Vhd,
        Format::Vhdx,
        Format::Vmdk,
        Format::Vdi,
        Format::Iso,
        Format::Gpt,
        Format::Luks,
    ];

    /// The `disk_format` name of the format.
    pub fn name(self) -> &'static str {
        match self {
            Format::Qcow2 => "qcow2",
            Format::Qed => "qed",
            Format::Vhd => "vhd",
            Format::Vhdx => "vhdx",
            Format::Vmdk => "vmdk",
            Format::Vdi => "vdi",
            Format::Iso => "iso",
            Format::Gpt => "gpt",
            Format::Luks => "luks",
        }
    }

    /// The format a `disk_format` names, if any inspector knows it.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A safety check the data failed: the check's name (as Glance names it, so that operators'
/// `gpt_safety_checks_nonfatal` lists keep working) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub check: &'static str,
    pub reason: String,
}

impl Failure {
    pub(crate) fn new(check: &'static str, reason: impl Into<String>) -> Failure {
        Failure {
            check,
            reason: reason.into(),
        }
    }
}

/// What an inspector knows about data it recognised as its format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The size of the disk the image describes, in bytes, when the format tells it.
    pub virtual_size: Option<u64>,
    /// The safety checks the data failed so far.
    pub failures: Vec<Failure>,
    /// The variant within the format, where it matters (vmdk's `createType`).
    pub subformat: Option<String>,
    /// False while the end of the stream can still add to these facts (a footer to check,
    /// a size that is what remains of the stream).
    pub settled: bool,
}

/// An inspector's conclusion so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// It needs more of the stream to tell.
    Reading,
    /// Nothing seen yet says this format, but the end of the stream still may (a footer).
    EndOnly,
    /// The data is not in this format.
    NotThis,
    /// The data is in this format.
    This(Facts),
}

impl State {
    /// Whether more bytes can still change this state.
    fn wants_bytes(&self) -> bool {
        match self {
            State::Reading | State::EndOnly => true,
            State::NotThis => false,
            State::This(facts) => !facts.settled,
        }
    }
}

/// One format's inspector: fed the stream in order, it keeps only what it needs.
pub(crate) trait Inspector: Send {
    /// `data` is the stream from byte `at` on; calls come in stream order, without gaps.
    fn feed(&mut self, at: u64, data: &[u8]);
    /// The stream ended after `total` bytes.
    fn finish(&mut self, total: u64);
    fn state(&self) -> &State;
}

/// Runs every inspector over one stream.
pub struct Detector {
    inspectors: Vec<(Format, Box<dyn Inspector>)>,
    position: u64,
    ended: bool,
}

impl Default for Detector {
    fn default() -> Detector {
        Detector::new()
    }
}

impl fmt::Debug for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detector")
            .field("position", &self.position)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Detector {
    /// A detector for every format.
    pub fn new() -> Detector {
        Detector::with(&Format::ALL)
    }

    /// A detector for the given formats only.
    pub fn with(formats: &[Format]) -> Detector {
        let inspectors = formats
            .iter()
            .map(|&format| (format, inspector_for(format)))
            .collect();
        Detector {
            inspectors,
            position: 0,
            ended: false,
        }
    }

    /// Shows the next bytes of the stream to every inspector still interested.
    pub fn feed(&mut self, data: &[u8]) {
        if self.ended || data.is_empty() {
            return;
        }
        for (_, inspector) in &mut self.inspectors {
            if inspector.state().wants_bytes() {
                inspector.feed(self.position, data);
            }
        }
        self.position += data.len() as u64;
    }

    /// The stream has ended: every inspector reaches its conclusion.
    pub fn finish(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        for (_, inspector) in &mut self.inspectors {
            inspector.finish(self.position);
        }
    }

    /// Bytes seen so far (the whole size once finished).
    pub fn position(&self) -> u64 {
        self.position
    }

    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Each format's state, in `Format::ALL` order.
    pub fn findings(&self) -> impl Iterator<Item = (Format, &State)> {
        self.inspectors.iter().map(|(f, i)| (*f, i.state()))
    }

    /// Whether any inspector still needs bytes to tell (as opposed to only the stream's end).
    pub fn reading(&self) -> bool {
        self.findings().any(|(_, s)| *s == State::Reading)
    }
}

fn inspector_for(format: Format) -> Box<dyn Inspector> {
    match format {
        Format::Qcow2 => Box::new(qcow2::Qcow2::default()),
        Format::Qed => Box::new(qed::Qed::default()),
        Format::Vhd => Box::new(vhd::Vhd::default()),
        Format::Vhdx => Box::new(vhdx::Vhdx::default()),
        Format::Vmdk => Box::new(vmdk::Vmdk::default()),
        Format::Vdi => Box::new(vdi::Vdi::default()),
        Format::Iso => Box::new(iso::Iso::default()),
        Format::Gpt => Box::new(gpt::Gpt::default()),
        Format::Luks => Box::new(luks::Luks::default()),
    }
}

#[cfg(test)]
mod tests;
