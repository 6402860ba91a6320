//! The property every fuzz target checks, for the formats it names: a stream gives the same
//! findings however it is cut into chunks, every inspector has concluded once the stream has
//! ended, and nothing panics.
//!
//! The input's first two bytes are not part of the stream: they choose how it is cut, so
//! that libFuzzer explores chunkings and contents together (seed files carry two such bytes
//! before the image).

use glint_formats::{Detector, Format, State};

/// Each format's state after the stream has ended, in the order the detector reports them.
type Findings = Vec<(Format, State)>;

/// Feeds the stream in `input` whole, in chunks of one size, and in chunks of varying sizes,
/// and asserts that all three give the same, concluded, findings.
pub fn check(formats: &[Format], input: &[u8]) {
    let Some((control, stream)) = input.split_first_chunk::<2>() else {
        return;
    };
    let control = u16::from_le_bytes(*control);
    let chunk = usize::from(control) + 1;

    let whole = detect(formats, [stream]);
    assert_concluded(formats, &whole);
    let even = detect(formats, stream.chunks(chunk));
    assert_eq!(
        even, whole,
        "chunks of {chunk} bytes differ from the whole stream"
    );
    let ragged = detect(formats, Ragged::new(stream, control, chunk));
    assert_eq!(
        ragged, whole,
        "ragged chunks (control {control}) differ from the whole stream"
    );
}

/// The findings of a detector for `formats` fed `pieces` in order, then finished.
fn detect<'a>(formats: &[Format], pieces: impl IntoIterator<Item = &'a [u8]>) -> Findings {
    let mut detector = Detector::with(formats);
    let mut fed = 0u64;
    for piece in pieces {
        detector.feed(piece);
        fed += piece.len() as u64;
        assert_eq!(detector.position(), fed, "position after a feed");
    }
    detector.finish();
    let findings: Findings = detector.findings().map(|(f, s)| (f, s.clone())).collect();
    // Bytes after the end are ignored, and finishing twice changes nothing.
    detector.feed(b"trailing bytes");
    detector.finish();
    assert_eq!(detector.position(), fed, "position after the end");
    assert!(
        detector
            .findings()
            .map(|(f, s)| (f, s.clone()))
            .eq(findings.iter().cloned()),
        "findings changed after the end"
    );
    findings
}

/// After `finish`, every inspector asked for has decided: not this format, or this one with
/// facts the stream can no longer change.
fn assert_concluded(formats: &[Format], findings: &Findings) {
    let reported: Vec<Format> = findings.iter().map(|(f, _)| *f).collect();
    assert_eq!(reported, formats, "findings for other formats than asked");
    for (format, state) in findings {
        match state {
            State::NotThis => {}
            State::This(facts) => assert!(
                facts.settled,
                "{format} not settled after the end: {facts:?}"
            ),
            other => panic!("{format} still {other:?} after the end"),
        }
    }
}

/// The stream in pieces whose lengths a small generator seeded from the control bytes
/// draws: tiny ones (empty included) and ones up to `chunk` bytes, so the cuts fall at
/// offsets no fixed chunk size reaches.
struct Ragged<'a> {
    rest: &'a [u8],
    chunk: usize,
    state: u32,
}

impl<'a> Ragged<'a> {
    fn new(stream: &'a [u8], control: u16, chunk: usize) -> Ragged<'a> {
        Ragged {
            rest: stream,
            chunk,
            // xorshift must not start at zero; the high half keeps it from ever being.
            state: u32::from(control) | 0x5A5A_0000,
        }
    }

    fn next_random(&mut self) -> u32 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.state = x;
        x
    }
}

impl<'a> Iterator for Ragged<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let r = self.next_random();
        let len = if r & 1 == 0 {
            (r >> 1) as usize % 16
        } else {
            (r >> 1) as usize % (self.chunk + 1)
        };
        let (piece, rest) = self.rest.split_at(len.min(self.rest.len()));
        self.rest = rest;
        Some(piece)
    }
}
