//! The `Range` header of a download: one byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`).

use glint_store::ByteRange;

use super::error::DataError;

/// Parses `header` against data of `size` bytes, as RFC 9110 §14 says: a header that is not a
/// valid byte range is ignored (`None`: the whole image is served), an end beyond the data is
/// trimmed to it, and a range that starts at or past the end is unsatisfiable (416, with the
/// size for `Content-Range: bytes */size`). Several ranges are refused (400), as in Glance.
pub fn parse_range(header: &str, size: u64) -> Result<Option<ByteRange>, DataError> {
    let unsatisfiable = || DataError::RangeNotSatisfiable { size };
    let Some(spec) = header.trim().strip_prefix("bytes=").map(str::trim) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Err(DataError::BadRequest(
            "Multiple ranges are not supported.".to_owned(),
        ));
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let (first, last) = match (position(first), position(last)) {
        (Some(first), Some(last)) => (first, last),
        _ => return Ok(None),
    };
    let range = match (first, last) {
        // bytes=-n: the last n bytes.
        (None, Some(0)) => return Err(unsatisfiable()),
        (None, Some(n)) => ByteRange {
            start: size.saturating_sub(n),
            end: size,
        },
        (Some(start), None) => ByteRange { start, end: size },
        (Some(start), Some(end)) if end < start => return Ok(None),
        (Some(start), Some(end)) => ByteRange {
            start,
            end: end.saturating_add(1).min(size),
        },
        (None, None) => return Ok(None),
    };
    if range.start >= size {
        return Err(unsatisfiable());
    }
    Ok(Some(range))
}

/// One side of a range: `Some(None)` when empty, `Some(Some(n))` for digits (saturating: a
/// position past any real size is as good as the end), `None` for anything else.
fn position(text: &str) -> Option<Option<u64>> {
    if text.is_empty() {
        return Some(None);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Some(text.parse::<u64>().unwrap_or(u64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(header: &str) -> (u64, u64) {
        let r = parse_range(header, 100)
            .expect("satisfiable")
            .expect("a range");
        (r.start, r.end)
    }

    #[test]
    fn single_ranges() {
        assert_eq!(ok("bytes=10-19"), (10, 20));
        assert_eq!(ok("bytes=0-0"), (0, 1));
        assert_eq!(ok("bytes=90-"), (90, 100));
        assert_eq!(ok("bytes=-5"), (95, 100));
        assert_eq!(ok("bytes=-500"), (0, 100));
        assert_eq!(ok("bytes=95-1000"), (95, 100));
        assert_eq!(ok("bytes=99-99"), (99, 100));
        assert_eq!(ok("bytes=0-999999999999999999999"), (0, 100));
        assert_eq!(ok("bytes=-999999999999999999999"), (0, 100));
    }

    #[test]
    fn invalid_ranges_are_ignored() {
        for header in [
            "bytes=junk",
            "bytes=x-y",
            "items=1-2",
            "bytes=-",
            "bytes=5-1",
            "junk",
            "bytes=1",
        ] {
            assert!(matches!(parse_range(header, 100), Ok(None)), "{header}");
        }
    }

    #[test]
    fn unsatisfiable_and_malformed_ranges() {
        for header in [
            "bytes=100-",
            "bytes=100-200",
            "bytes=-0",
            "bytes=999999999999999999999-",
        ] {
            assert!(
                matches!(
                    parse_range(header, 100),
                    Err(DataError::RangeNotSatisfiable { size: 100 })
                ),
                "{header}"
            );
        }
        assert!(matches!(
            parse_range("bytes=0-1,5-6", 100),
            Err(DataError::BadRequest(_))
        ));
        assert!(matches!(
            parse_range("bytes=0-", 0),
            Err(DataError::RangeNotSatisfiable { size: 0 })
        ));
    }
}
