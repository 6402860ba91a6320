//! The `Range` header of a download: one byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`).

use glint_store::ByteRange;

use super::error::DataError;

/// Parses `header` against data of `size` bytes. Several ranges are refused (400), as are
/// ranges outside the data (416, with the size for `Content-Range: bytes */size`).
pub fn parse_range(header: &str, size: u64) -> Result<ByteRange, DataError> {
    let unsatisfiable = || DataError::RangeNotSatisfiable { size };
    let spec = header
        .trim()
        .strip_prefix("bytes=")
        .ok_or_else(unsatisfiable)?
        .trim();
    if spec.contains(',') {
        return Err(DataError::BadRequest(
            "Multiple ranges are not supported.".to_owned(),
        ));
    }
    let (first, last) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| s.parse::<u64>().map_err(|_| unsatisfiable());
    let range = match (first.is_empty(), last.is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => {
            let n = number(last)?;
            if n == 0 {
                return Err(unsatisfiable());
            }
            ByteRange {
                start: size.saturating_sub(n),
                end: size,
            }
        }
        (false, true) => ByteRange {
            start: number(first)?,
            end: size,
        },
        (false, false) => {
            let (start, end) = (number(first)?, number(last)?);
            if end < start {
                return Err(unsatisfiable());
            }
            ByteRange {
                start,
                end: end.saturating_add(1).min(size),
            }
        }
        (true, true) => return Err(unsatisfiable()),
    };
    if range.start >= size {
        return Err(unsatisfiable());
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(header: &str) -> (u64, u64) {
        let r = parse_range(header, 100).expect("satisfiable");
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
    }

    #[test]
    fn unsatisfiable_and_malformed_ranges() {
        for header in [
            "bytes=100-",
            "bytes=100-200",
            "bytes=-0",
            "bytes=5-1",
            "bytes=x-y",
            "items=1-2",
            "bytes=-",
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
