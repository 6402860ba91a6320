//! Format inspection on the data path: every chunk of an upload or a store-to-store copy
//! passes the `glint_formats` detector (inline, by reference: it keeps headers, not data),
//! and this module judges its findings as Glance does (glance/location.py): the content must
//! be the declared `disk_format` and pass its format's safety checks, or the data is refused
//! with 415, the writer aborted, and nothing kept.
//!
//! Unlike Glance, which decides once all the bytes are stored, the judgement runs after every
//! chunk and refuses as soon as it cannot change: a qcow2 backing file is known from the
//! first chunk. Acceptance waits for the end, where a footer can still change the picture.

use glint_formats::{Detector, Facts, Format, State};
use glint_store::Chunk;

use super::error::DataError;
use crate::config::InspectionConfig;

mod compressed;

pub use compressed::Compression;

/// Glance's message for data that fails a safety check.
const SAFETY: &str = "Image failed safety checks";

/// What inspection concluded about the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The disk's virtual size in bytes, when the format tells it.
    pub virtual_size: Option<u64>,
}

/// A consumer of the data stream that may refuse the data as soon as it has seen enough.
pub trait Inspector: Send {
    /// Looks at the next chunk; an error aborts the transfer before more data is stored.
    fn inspect(&mut self, chunk: &Chunk) -> Result<(), DataError>;

    /// The verdict once all `size` bytes have passed.
    fn finish(self: Box<Self>, size: u64) -> Result<Inspection, DataError>;
}

/// The inspector for an image's data. As Glance, only `bare` containers are inspected: the
/// others wrap the disk in a format of their own (ova, docker, ...), and get no virtual size.
pub fn for_image(
    disk_format: Option<&str>,
    container_format: Option<&str>,
    config: &InspectionConfig,
) -> Box<dyn Inspector> {
    match (disk_format, container_format) {
        (Some(disk_format), Some("bare")) => Box::new(FormatCheck {
            detector: Detector::new(),
            declared: disk_format.to_owned(),
            config: config.clone(),
        }),
        _ => Box::new(Uninspected),
    }
}

/// The inspector for an image's data on its way into staging: as `for_image`, except that
/// with `compressed_allowed` (the `image_decompression` plugin is on) data that starts as a
/// zip, LHA or gzip file passes uninspected, to be inspected once unpacked.
pub fn for_staging(
    disk_format: Option<&str>,
    container_format: Option<&str>,
    config: &InspectionConfig,
    compressed_allowed: bool,
) -> Box<dyn Inspector> {
    let declared = for_image(disk_format, container_format, config);
    if compressed_allowed {
        Box::new(compressed::UnlessCompressed::new(declared))
    } else {
        declared
    }
}

/// Data in a container: accepted as it is, virtual size unknown.
#[derive(Debug, Default)]
pub struct Uninspected;

impl Inspector for Uninspected {
    fn inspect(&mut self, _chunk: &Chunk) -> Result<(), DataError> {
        Ok(())
    }

    fn finish(self: Box<Self>, _size: u64) -> Result<Inspection, DataError> {
        Ok(Inspection { virtual_size: None })
    }
}

/// The detector, and the rules its findings are judged by.
#[derive(Debug)]
struct FormatCheck {
    detector: Detector,
    declared: String,
    config: InspectionConfig,
}

/// The judgement at one point of the stream.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Nothing can be concluded yet.
    Wait,
    Refuse(String),
    Accept(Option<u64>),
}

impl Inspector for FormatCheck {
    fn inspect(&mut self, chunk: &Chunk) -> Result<(), DataError> {
        for frame in chunk.frames() {
            self.detector.feed(frame);
        }
        match self.judge() {
            Verdict::Refuse(why) => Err(DataError::ImageFormat(why)),
            Verdict::Wait | Verdict::Accept(_) => Ok(()),
        }
    }

    fn finish(mut self: Box<Self>, _size: u64) -> Result<Inspection, DataError> {
        self.detector.finish();
        match self.judge() {
            Verdict::Accept(virtual_size) => {
                self.log_nonfatal();
                Ok(Inspection { virtual_size })
            }
            Verdict::Refuse(why) => Err(DataError::ImageFormat(why)),
            Verdict::Wait => Err(DataError::Internal(
                "format inspection reached no verdict at the end of the data".into(),
            )),
        }
    }
}

impl FormatCheck {
    fn judge(&self) -> Verdict {
        let ended = self.detector.ended();
        if !ended && self.detector.reading() {
            return self.judge_early();
        }
        let mut matches: Vec<(Format, &Facts)> = self
            .detector
            .findings()
            .filter_map(|(format, state)| match state {
                State::This(facts) => Some((format, facts)),
                _ => None,
            })
            .collect();
        // A bootable ISO legitimately carries a partition table in its system area.
        if matches.len() == 2
            && matches.iter().any(|(f, _)| *f == Format::Iso)
            && matches.iter().any(|(f, _)| *f == Format::Gpt)
        {
            matches.retain(|(f, _)| *f == Format::Iso);
        }
        // Unsafe data is refused as unsafe, whatever else it looks like (as `judge_early`).
        let unsafe_match = matches
            .iter()
            .find_map(|(format, facts)| Some((*format, self.safety_failure(*format, facts)?)));
        if let Some((format, why)) = unsafe_match {
            return refuse_unsafe(format, &why);
        }
        match matches.as_slice() {
            [] => self.judge_raw(ended),
            [(format, facts)] => self.judge_match(*format, facts, ended),
            many => {
                let names: Vec<&str> = many.iter().map(|(f, _)| f.name()).collect();
                Verdict::Refuse(format!("Multiple formats detected: {}", names.join(",")))
            }
        }
    }

    /// While some inspector still reads (the ISO one, up to 34 KiB): refuses what no later
    /// finding can save, a recognised format that is unsafe.
    fn judge_early(&self) -> Verdict {
        let iso_may_match = self
            .detector
            .findings()
            .any(|(f, s)| f == Format::Iso && matches!(s, State::Reading | State::This(_)));
        for (format, state) in self.detector.findings() {
            let State::This(facts) = state else {
                continue;
            };
            // A partition table in front of an ISO is the ISO's, and not checked.
            if format == Format::Gpt && iso_may_match {
                continue;
            }
            // Only safety failures: a mismatch may yet turn out a polyglot, whose message
            // must not depend on where the chunks split.
            if let Some(why) = self.safety_failure(format, facts) {
                return refuse_unsafe(format, &why);
            }
        }
        Verdict::Wait
    }

    /// The content is recognised as `format`.
    fn judge_match(&self, format: Format, facts: &Facts, ended: bool) -> Verdict {
        if let Some(refusal) = self.refusal(format, facts) {
            return refusal;
        }
        if !ended {
            return Verdict::Wait;
        }
        let matched = format.name() == self.declared;
        Verdict::Accept(if matched {
            facts.virtual_size.filter(|&size| size > 0)
        } else if self.declared == "raw" {
            // Declared raw: served as the bytes it is, so its size is the disk's.
            Some(self.detector.position())
        } else {
            None
        })
    }

    /// Why data recognised as `format` is refused, if it is: a failed safety check (whatever
    /// the declared format), or not being the declared format.
    fn refusal(&self, format: Format, facts: &Facts) -> Option<Verdict> {
        if let Some(why) = self.safety_failure(format, facts) {
            return Some(refuse_unsafe(format, &why));
        }
        let mismatch = format.name() != self.declared && self.declared != "raw";
        (mismatch && self.config.require_image_format_match).then(|| self.mismatch(format.name()))
    }

    /// Nothing specific recognised: the content is raw.
    fn judge_raw(&self, ended: bool) -> Verdict {
        let inspectable = Format::from_name(&self.declared).is_some();
        if !ended {
            // A format known by its footer alone (a fixed VHD) may still show at the end.
            let footer_may_match = self
                .detector
                .findings()
                .any(|(f, s)| *s == State::EndOnly && f.name() == self.declared);
            if inspectable && !footer_may_match && self.config.require_image_format_match {
                return self.mismatch("raw");
            }
            return Verdict::Wait;
        }
        if self.declared == "raw" {
            Verdict::Accept(Some(self.detector.position()))
        } else if inspectable && self.config.require_image_format_match {
            self.mismatch("raw")
        } else {
            // ami, ari, aki, ploop: formats no inspector reads.
            Verdict::Accept(None)
        }
    }

    /// Accepted data may still have failed checks the operator made non-fatal: say which.
    fn log_nonfatal(&self) {
        for (format, state) in self.detector.findings() {
            if let State::This(facts) = state {
                for failure in &facts.failures {
                    tracing::warn!(format = format.name(), check = failure.check, reason = %failure.reason,
                        "safety check failed; configured as non-fatal");
                }
            }
        }
    }

    fn mismatch(&self, detected: &str) -> Verdict {
        Verdict::Refuse(format!(
            "Image disk_format {} does not match stream data {detected}",
            self.declared
        ))
    }

    /// The first safety failure that counts, as the operator configured them.
    fn safety_failure(&self, format: Format, facts: &Facts) -> Option<String> {
        let config = &self.config;
        let fatal = facts.failures.iter().find(|failure| {
            format != Format::Gpt
                || !config
                    .gpt_safety_checks_nonfatal
                    .iter()
                    .any(|c| c == failure.check)
        });
        if let Some(failure) = fatal {
            return Some(format!("{}: {}", failure.check, failure.reason));
        }
        let subformat = facts.subformat.as_deref()?;
        let allowed = config
            .vmdk_allowed_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(subformat));
        (format == Format::Vmdk && !allowed)
            .then(|| format!("vmdk subformat {subformat} is not in vmdk_allowed_types"))
    }
}

/// The refusal of unsafe data: Glance's message to the client, the reason in the log.
fn refuse_unsafe(format: Format, why: &str) -> Verdict {
    tracing::warn!(format = format.name(), reason = %why, "image failed safety checks");
    Verdict::Refuse(SAFETY.into())
}

#[cfg(test)]
mod tests;
