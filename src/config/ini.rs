//! A reader for oslo.config INI files (glance-api.conf): `[section]` headers, `key = value`
//! (or `key: value`), `#`/`;` comments, indented continuation lines, matching quotes stripped,
//! repeated keys kept in order (multi-valued options). It remembers which options were read so
//! that the unknown ones can be reported once.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

/// One option's values, in file order; environment overrides replace them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    values: Vec<String>,
    line: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parsed options, keyed by (section, option). Section names compare case-insensitively
/// except that `DEFAULT` is canonical; option names are case-sensitive as in oslo.config.
#[derive(Debug, Default)]
pub struct Ini {
    entries: HashMap<(String, String), Entry>,
    used: RefCell<BTreeSet<(String, String)>>,
}

fn section_key(name: &str) -> String {
    if name.eq_ignore_ascii_case("default") {
        "DEFAULT".to_owned()
    } else {
        name.to_ascii_lowercase()
    }
}

fn unquote(value: &str) -> &str {
    let bytes = value.as_bytes();
    if bytes.len() >= 2
        && bytes[0] == bytes[bytes.len() - 1]
        && (bytes[0] == b'"' || bytes[0] == b'\'')
    {
        &value[1..value.len() - 1]
    } else {
        value
    }
}

impl Ini {
    pub fn parse(text: &str) -> Result<Ini, ParseError> {
        let mut ini = Ini::default();
        let mut section: Option<String> = None;
        let mut last: Option<(String, String)> = None;
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if raw.starts_with([' ', '\t']) {
                // A continuation of the previous value.
                let entry = last
                    .as_ref()
                    .and_then(|k| ini.entries.get_mut(k))
                    .ok_or_else(|| ParseError {
                        line,
                        message: "indented line does not continue an option".to_owned(),
                    })?;
                if let Some(value) = entry.values.last_mut() {
                    value.push('\n');
                    value.push_str(trimmed);
                }
                continue;
            }
            if let Some(name) = trimmed.strip_prefix('[') {
                let name = name.strip_suffix(']').ok_or_else(|| ParseError {
                    line,
                    message: format!("unterminated section header {trimmed}"),
                })?;
                section = Some(section_key(name.trim()));
                last = None;
                continue;
            }
            let split = trimmed.find(['=', ':']).ok_or_else(|| ParseError {
                line,
                message: format!("expected 'option = value', found {trimmed:?}"),
            })?;
            let key = trimmed[..split].trim();
            let value = unquote(trimmed[split + 1..].trim());
            let section = section.clone().ok_or_else(|| ParseError {
                line,
                message: format!("option {key} appears before any [section]"),
            })?;
            if key.is_empty() {
                return Err(ParseError {
                    line,
                    message: "empty option name".to_owned(),
                });
            }
            let id = (section, key.to_owned());
            ini.entries
                .entry(id.clone())
                .and_modify(|e| e.values.push(value.to_owned()))
                .or_insert_with(|| Entry {
                    values: vec![value.to_owned()],
                    line,
                });
            last = Some(id);
        }
        Ok(ini)
    }

    /// Applies `GLINT__<SECTION>__<OPTION>` variables: they replace the file's values.
    pub fn apply_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) {
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix("GLINT__") else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                continue;
            };
            let id = (section_key(section), key.to_ascii_lowercase());
            self.entries.insert(
                id,
                Entry {
                    values: vec![value],
                    line: 0,
                },
            );
        }
    }

    /// The last value of an option, marking it used.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.get_all(section, key)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value of a multi-valued option, marking it used.
    pub fn get_all(&self, section: &str, key: &str) -> Option<&[String]> {
        let id = (section_key(section), key.to_owned());
        let entry = self.entries.get(&id)?;
        self.used.borrow_mut().insert(id);
        Some(&entry.values)
    }

    /// The sections present, other than `DEFAULT`, in sorted order (lower-cased, as sections
    /// are compared).
    pub fn sections(&self) -> Vec<String> {
        let names: BTreeSet<String> = self
            .entries
            .keys()
            .map(|(section, _)| section.clone())
            .filter(|s| s != "DEFAULT")
            .collect();
        names.into_iter().collect()
    }

    /// Options present but never read, as `(section, option)`, sorted.
    pub fn unused(&self) -> Vec<(String, String)> {
        let used = self.used.borrow();
        let mut unused: Vec<(String, String)> = self
            .entries
            .keys()
            .filter(|k| !used.contains(*k))
            .cloned()
            .collect();
        unused.sort();
        unused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# glance-api.conf
[DEFAULT]
bind_port = 9393
bind_host: 0.0.0.0
enabled_backends = fast:rbd,
    cheap:file
debug = \"true\"

[database]
connection = postgresql+psycopg2://glance:secret@db/glance
[glance_store]
; comment
filesystem_store_datadirs = /a:100
filesystem_store_datadirs = /b:200
";

    #[test]
    fn reads_glance_api_conf_syntax() {
        let ini = Ini::parse(SAMPLE).expect("sample parses");
        assert_eq!(ini.get("DEFAULT", "bind_port"), Some("9393"));
        assert_eq!(ini.get("default", "bind_host"), Some("0.0.0.0"));
        assert_eq!(
            ini.get("DEFAULT", "enabled_backends"),
            Some("fast:rbd,\ncheap:file")
        );
        assert_eq!(ini.get("DEFAULT", "debug"), Some("true"));
        assert_eq!(
            ini.get_all("glance_store", "filesystem_store_datadirs")
                .map(<[String]>::to_vec),
            Some(vec!["/a:100".to_owned(), "/b:200".to_owned()])
        );
        assert_eq!(
            ini.unused(),
            [("database".to_owned(), "connection".to_owned())]
        );
    }

    #[test]
    fn environment_overrides_replace_file_values() {
        let mut ini = Ini::parse(SAMPLE).expect("sample parses");
        ini.apply_env([
            ("GLINT__DEFAULT__BIND_PORT".to_owned(), "1234".to_owned()),
            (
                "GLINT__DATABASE__CONNECTION".to_owned(),
                "sqlite:///x.db".to_owned(),
            ),
            ("UNRELATED".to_owned(), "1".to_owned()),
        ]);
        assert_eq!(ini.get("DEFAULT", "bind_port"), Some("1234"));
        assert_eq!(ini.get("database", "connection"), Some("sqlite:///x.db"));
    }

    #[test]
    fn reports_malformed_lines() {
        assert_eq!(Ini::parse("key = 1").unwrap_err().line, 1);
        assert!(Ini::parse("[DEFAULT]\njust words")
            .unwrap_err()
            .message
            .contains("expected"));
        assert!(Ini::parse("[DEFAULT\n").is_err());
        assert!(Ini::parse("[DEFAULT]\n  orphan").is_err());
    }
}
