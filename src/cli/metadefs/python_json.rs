//! JSON as Python's `json` module reads and writes it, for the metadefs files: Glance stores
//! each property's and object's schema as the text `json.dumps` gives (", " and ": " between
//! items, every character past ASCII escaped, keys in the file's order, floats as Python's
//! `repr`), and Glint must store the very same text. serde_json without `preserve_order` sorts
//! keys, and its numbers print differently, so the files are read into `Value` here.

use std::fmt::Write as _;

/// A JSON value with its object keys in the order they were read.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// An integer as its decimal digits (Python's integers have no bound).
    Int(String),
    Float(f64),
    Str(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// What the value is, in the words of a JSON document.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Array(_) => "a list",
            Value::Object(_) => "an object",
        }
    }
}

/// Where and why a document is not JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}: line {line} column {column}")]
pub struct ParseError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// Reads a document as `json.loads` does: `NaN`, `Infinity` and `-Infinity` are numbers, a
/// repeated key keeps its first place and its last value. Unlike Python, a lone UTF-16
/// surrogate escape (`"\ud800"`) is refused: no database text column can hold it.
pub fn parse(text: &str) -> Result<Value, ParseError> {
    let mut parser = Parser {
        text: text.as_bytes(),
        src: text,
        pos: 0,
    };
    parser.skip_whitespace();
    let value = parser.value(0)?;
    parser.skip_whitespace();
    if parser.pos < parser.text.len() {
        return Err(parser.error("Extra data"));
    }
    Ok(value)
}

/// Nesting deeper than this is refused rather than risking the stack (Python's own limit is
/// about 1000 as well).
const MAX_DEPTH: usize = 1000;

struct Parser<'a> {
    text: &'a [u8],
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> ParseError {
        let mut end = self.pos.min(self.src.len());
        while !self.src.is_char_boundary(end) {
            end -= 1;
        }
        let before = &self.src[..end];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ParseError {
            message: message.to_owned(),
            line,
            column,
        }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.text.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, literal: &str) -> bool {
        if self.text[self.pos..].starts_with(literal.as_bytes()) {
            self.pos += literal.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("Nesting too deep"));
        }
        match self.text.get(self.pos) {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::Str),
            _ if self.eat("null") => Ok(Value::Null),
            _ if self.eat("true") => Ok(Value::Bool(true)),
            _ if self.eat("false") => Ok(Value::Bool(false)),
            _ if self.eat("NaN") => Ok(Value::Float(f64::NAN)),
            _ if self.eat("Infinity") => Ok(Value::Float(f64::INFINITY)),
            _ if self.eat("-Infinity") => Ok(Value::Float(f64::NEG_INFINITY)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.error("Expecting value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.pos += 1;
        let mut members: Vec<(String, Value)> = Vec::new();
        self.skip_whitespace();
        if self.eat("}") {
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_whitespace();
            if self.text.get(self.pos) != Some(&b'"') {
                return Err(self.error("Expecting property name enclosed in double quotes"));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if !self.eat(":") {
                return Err(self.error("Expecting ':' delimiter"));
            }
            self.skip_whitespace();
            let value = self.value(depth + 1)?;
            match members.iter_mut().find(|(k, _)| *k == key) {
                Some(member) => member.1 = value,
                None => members.push((key, value)),
            }
            self.skip_whitespace();
            if self.eat("}") {
                return Ok(Value::Object(members));
            }
            if !self.eat(",") {
                return Err(self.error("Expecting ',' delimiter"));
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.eat("]") {
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            if self.eat("]") {
                return Ok(Value::Array(items));
            }
            if !self.eat(",") {
                return Err(self.error("Expecting ',' delimiter"));
            }
        }
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let from = p.pos;
            while p.text.get(p.pos).is_some_and(u8::is_ascii_digit) {
                p.pos += 1;
            }
            p.pos > from
        };
        self.eat("-");
        if !self.eat("0") && !digits(self) {
            self.pos = start;
            return Err(self.error("Expecting value"));
        }
        let integer_end = self.pos;
        let mut float = false;
        if self.text.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if digits(self) {
                float = true;
            } else {
                self.pos -= 1;
            }
        }
        if let Some(b'e' | b'E') = self.text.get(self.pos) {
            let mark = self.pos;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.text.get(self.pos) {
                self.pos += 1;
            }
            if digits(self) {
                float = true;
            } else {
                self.pos = mark;
            }
        }
        if !float {
            // Python reads "-0" as the integer 0.
            let text = &self.src[start..integer_end];
            let text = if text == "-0" { "0" } else { text };
            return Ok(Value::Int(text.to_owned()));
        }
        let text = &self.src[start..self.pos];
        text.parse::<f64>()
            .map(Value::Float)
            .map_err(|_| self.error("Invalid number"))
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let digits = self
            .src
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("Invalid \\uXXXX escape"))?;
        self.pos += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.error("Invalid \\uXXXX escape"))
    }

    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run = self.pos;
            while let Some(&b) = self.text.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.src[run..self.pos]);
            match self.text.get(self.pos) {
                None => {
                    self.pos = start;
                    return Err(self.error("Unterminated string starting at"));
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = match self.text.get(self.pos) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let code = self.unicode_escape()?;
                            out.push(code);
                            continue;
                        }
                        _ => return Err(self.error("Invalid \\escape")),
                    };
                    self.pos += 1;
                    out.push(escaped);
                }
                Some(_) => return Err(self.error("Invalid control character at")),
            }
        }
    }

    /// The character of a `\uXXXX` escape (the `\u` read), joining a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, ParseError> {
        let first = self.hex4()?;
        let code = if (0xd800..0xdc00).contains(&first) && self.eat("\\u") {
            let second = self.hex4()?;
            if !(0xdc00..0xe000).contains(&second) {
                return Err(self.error("Lone UTF-16 surrogate in a \\u escape"));
            }
            0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
        } else {
            first
        };
        char::from_u32(code).ok_or_else(|| self.error("Lone UTF-16 surrogate in a \\u escape"))
    }
}

/// The text `json.dumps(value)` gives with Python's defaults.
pub fn dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Int(digits) => out.push_str(digits),
        Value::Float(f) => out.push_str(&float_repr(*f)),
        Value::Str(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, key);
                out.push_str(": ");
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// A string with `ensure_ascii`: anything outside printable ASCII as `\uXXXX` (surrogate
/// pairs past the BMP), the usual two-character escapes where JSON has them.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Python's `repr` of a float (as `json.dumps` writes it): the shortest digits that read
/// back, in positional notation for exponents from -4 to 15, else as `1.5e+16`/`1e-05`.
fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let body = if (-4..16).contains(&exponent) {
        if exponent >= 0 {
            let point = usize::try_from(exponent).unwrap_or(0) + 1;
            if digits.len() <= point {
                format!("{digits}{}.0", "0".repeat(point - digits.len()))
            } else {
                format!("{}.{}", &digits[..point], &digits[point..])
            }
        } else {
            let zeros = usize::try_from(-exponent - 1).unwrap_or(0);
            format!("0.{}{digits}", "0".repeat(zeros))
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{first}{fraction}e{exp_sign}{:02}", exponent.abs())
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> String {
        dumps(&parse(text).expect("parses"))
    }

    #[test]
    fn objects_keep_their_order_and_python_spacing() {
        assert_eq!(
            round_trip(r#"{"b": 1, "a": [true, null, {"z":{}}], "c": []}"#),
            r#"{"b": 1, "a": [true, null, {"z": {}}], "c": []}"#
        );
        // A repeated key: first place, last value (Python's dict of the pairs).
        assert_eq!(round_trip(r#"{"a":1,"b":2,"a":3}"#), r#"{"a": 3, "b": 2}"#);
    }

    #[test]
    fn strings_are_escaped_to_ascii() {
        assert_eq!(
            round_trip(r#""Hyper-V – é \u00e9 😀 \/ \"q\" \u0001 \u007f""#),
            r#""Hyper-V \u2013 \u00e9 \u00e9 \ud83d\ude00 / \"q\" \u0001 \u007f""#
        );
        assert_eq!(round_trip(r#""\ud83d\ude00""#), r#""\ud83d\ude00""#);
    }

    #[test]
    fn numbers_print_as_python_prints_them() {
        let cases = [
            ("0", "0"),
            ("-0", "0"),
            ("12345678901234567890123", "12345678901234567890123"),
            ("1.0", "1.0"),
            ("-0.0", "-0.0"),
            ("1e2", "100.0"),
            ("0.1", "0.1"),
            ("1.5E-5", "1.5e-05"),
            ("0.0001", "0.0001"),
            ("1e16", "1e+16"),
            ("123456789012345.6", "123456789012345.6"),
            ("1e400", "Infinity"),
            ("NaN", "NaN"),
            ("-Infinity", "-Infinity"),
        ];
        for (text, python) in cases {
            assert_eq!(round_trip(text), python, "{text}");
        }
    }

    #[test]
    fn bad_documents_say_where() {
        let cases = [
            ("", "Expecting value: line 1 column 1"),
            (
                "{\"a\": 1,}",
                "Expecting property name enclosed in double quotes: line 1 column 9",
            ),
            ("{\"a\" 1}", "Expecting ':' delimiter: line 1 column 6"),
            ("[1 2]", "Expecting ',' delimiter: line 1 column 4"),
            ("{}\n{}", "Extra data: line 2 column 1"),
            ("\"abc", "Unterminated string starting at: line 1 column 1"),
            ("\"a\tb\"", "Invalid control character at: line 1 column 3"),
            (
                "\"\\ud800\"",
                "Lone UTF-16 surrogate in a \\u escape: line 1 column 8",
            ),
            ("\"\\x\"", "Invalid \\escape: line 1 column 3"),
            ("01", "Extra data: line 1 column 2"),
            ("-", "Expecting value: line 1 column 1"),
        ];
        for (text, message) in cases {
            let error = parse(text).expect_err(text);
            assert_eq!(error.to_string(), message, "{text:?}");
        }
    }
}
