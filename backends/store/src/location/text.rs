//! Text helpers shared by the schemes: path splitting, authority and segment checks,
//! percent-encoding, and the masking of credentials in what is shown.

use crate::error::StoreError;

/// `prefix/container/object` → (prefix, container, object), the last two non-empty; the
/// prefix may be empty.
pub(super) fn split_container_object(path: &str) -> Option<(&str, &str, &str)> {
    let (before, object) = path.rsplit_once('/')?;
    let (prefix, container) = match before.rsplit_once('/') {
        Some((prefix, container)) => (prefix, container),
        None => ("", before),
    };
    (!container.is_empty() && !object.is_empty()).then_some((prefix, container, object))
}

/// `host[:port]`, the host a name or a bracketed IPv6 address. With `digit_port` the port
/// must be digits (or empty), as Glance's http store checks; otherwise it is not looked at.
pub(super) fn valid_authority(authority: &str, digit_port: bool) -> bool {
    let port_ok = |port: &str| !digit_port || port.bytes().all(|b| b.is_ascii_digit());
    if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((address, after)) = bracketed.split_once(']') else {
            return false;
        };
        let (address, zone) = match address.split_once('%') {
            Some((address, zone)) => (address, Some(zone)),
            None => (address, None),
        };
        let address_ok = address.contains(':')
            && address
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        let zone_ok = zone.is_none_or(|z| !z.is_empty() && !z.contains(['[', ']']));
        let after_ok = match after.strip_prefix(':') {
            Some(port) => port_ok(port),
            None => after.is_empty(),
        };
        return address_ok && zone_ok && after_ok;
    }
    if authority.is_empty() || authority.contains(['[', ']']) {
        return false;
    }
    match authority.split_once(':') {
        Some((host, port)) => !host.is_empty() && port_ok(port),
        None => true,
    }
}

/// A bucket, container, object or reference written by Glint: one non-empty path segment
/// that Glance reads back unchanged.
pub(super) fn valid_segment(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '@', '?', '#']) && !has_control(s)
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lower-case hex.
pub(super) fn is_canonical_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

pub(super) fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_control())
}

// Percent-encoding, as Python's `urllib.parse` does it.

/// Decodes `%XX`; a `%` not followed by two hex digits stays as it is, and bytes that are
/// not UTF-8 become U+FFFD.
pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Encodes every byte but letters, digits and `_.-~`, with upper-case hex.
pub(super) fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

// Redaction.

pub(super) fn invalid(uri: &str) -> StoreError {
    StoreError::InvalidLocation(mask_other(uri))
}

/// `scheme://***:***@rest` for a location whose credentials end at its first `@`.
pub(super) fn mask_credentials(raw: &str) -> String {
    match (raw.find("://"), raw.find('@')) {
        (Some(sep), Some(at)) if sep < at => {
            sanitize(&format!("{}://***:***@{}", &raw[..sep], &raw[at + 1..]))
        }
        _ => mask_other(raw),
    }
}

/// Masks everything between the scheme and the last `@` (a secret may hold `/`, so the
/// authority cannot be trusted to end at one): for URIs of unknown form, and for input that
/// did not parse.
pub(super) fn mask_other(uri: &str) -> String {
    match uri.rfind('@') {
        Some(at) => {
            let start = uri
                .find("://")
                .map(|sep| sep + 3)
                .filter(|&start| start <= at)
                .unwrap_or(0);
            sanitize(&format!("{}***@{}", &uri[..start], &uri[at + 1..]))
        }
        None => sanitize(uri),
    }
}

/// Control characters replaced, so the text is safe in a log line.
pub(super) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_coding_matches_python() {
        assert_eq!(
            percent_encode("a b/c@d:e+f=g~h_i.j-k"),
            "a%20b%2Fc%40d%3Ae%2Bf%3Dg~h_i.j-k"
        );
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_decode("%C3%A9%2f%2F"), "é//");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
        assert_eq!(percent_decode("a+b"), "a+b");
    }
}
