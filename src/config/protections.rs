//! `[DEFAULT] property_protection_file` and `property_protection_rule_format`: reads the
//! operator's protection file at start-up into `domain::protections::PropertyProtections`.
//! The file is Python `configparser` INI, read here by its own small reader because section
//! names are case-sensitive regular expressions whose order matters (`config::ini` sorts and
//! lower-cases sections). Any problem stops the start, naming the file, as Glance does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ini::Ini;
use super::ConfigError;
use crate::domain::protections::{PropertyProtections, RawSection, RuleFormat};

const SECTION: &str = "DEFAULT";

/// The property protection options; `rules` is `None` when no file is set (no protections).
#[derive(Debug, Clone, Default)]
pub struct ProtectionsConfig {
    /// `property_protection_file` (default unset). A relative path is taken from the
    /// working directory.
    pub file: Option<PathBuf>,
    /// `property_protection_rule_format`: `roles` (default) or `policies`.
    pub rule_format: RuleFormat,
    /// The rules read from `file`.
    pub rules: Option<Arc<PropertyProtections>>,
}

impl ProtectionsConfig {
    pub fn from_ini(ini: &Ini) -> Result<ProtectionsConfig, ConfigError> {
        let rule_format = match ini
            .get(SECTION, "property_protection_rule_format")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("roles") => RuleFormat::Roles,
            Some("policies") => RuleFormat::Policies,
            Some(other) => {
                return Err(ConfigError::invalid(
                    SECTION,
                    "property_protection_rule_format",
                    format!("{other:?} is not one of roles, policies"),
                ))
            }
        };
        let file = ini
            .get(SECTION, "property_protection_file")
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let rules = match &file {
            Some(path) => Some(Arc::new(load(path, rule_format).map_err(|message| {
                ConfigError::invalid(
                    SECTION,
                    "property_protection_file",
                    format!(
                        "invalid property protection file {}: {message}",
                        path.display()
                    ),
                )
            })?)),
            None => None,
        };
        Ok(ProtectionsConfig {
            file,
            rule_format,
            rules,
        })
    }
}

fn load(path: &Path, format: RuleFormat) -> Result<PropertyProtections, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    PropertyProtections::from_sections(&parse(&text)?, format)
}

/// The sections of a `configparser` file in file order, with `[DEFAULT]`'s options merged
/// into each (configparser's defaults). Duplicate sections or options and options outside a
/// section are errors, as with configparser's strict mode that Glance uses.
fn parse(text: &str) -> Result<Vec<RawSection>, String> {
    let mut defaults: Vec<(String, String)> = Vec::new();
    let mut sections: Vec<RawSection> = Vec::new();
    // Index into `sections`, or None for `[DEFAULT]`; outer None before any header.
    let mut current: Option<Option<usize>> = None;
    let mut last_option: Option<(Option<usize>, usize)> = None;
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // A continuation line extends the previous option's value.
            let Some((at, index)) = last_option else {
                return Err(format!("line {number}: unexpected indented line"));
            };
            let options = match at {
                Some(i) => sections.get_mut(i).map(|s| &mut s.1),
                None => Some(&mut defaults),
            };
            if let Some((_, value)) = options.and_then(|o| o.get_mut(index)) {
                value.push('\n');
                value.push_str(trimmed);
            }
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let name = rest
                .rfind(']')
                .map(|end| &rest[..end])
                .filter(|n| !n.is_empty())
                .ok_or_else(|| format!("line {number}: malformed section header {trimmed:?}"))?;
            if name == "DEFAULT" {
                current = Some(None);
            } else {
                if sections.iter().any(|(n, _)| n == name) {
                    return Err(format!("line {number}: section [{name}] appears twice"));
                }
                sections.push((name.to_owned(), Vec::new()));
                current = Some(Some(sections.len() - 1));
            }
            last_option = None;
            continue;
        }
        let Some(at) = current else {
            return Err(format!("line {number}: option outside any section"));
        };
        let split = trimmed
            .find(['=', ':'])
            .ok_or_else(|| format!("line {number}: expected 'option = value'"))?;
        let key = trimmed[..split].trim().to_lowercase();
        let value = trimmed[split + 1..].trim().to_owned();
        let options = match at {
            Some(i) => sections
                .get_mut(i)
                .map(|s| &mut s.1)
                .ok_or_else(|| format!("line {number}: no section"))?,
            None => &mut defaults,
        };
        if options.iter().any(|(k, _)| *k == key) {
            return Err(format!("line {number}: option '{key}' appears twice"));
        }
        options.push((key, value));
        last_option = Some((at, options.len() - 1));
    }
    for (_, options) in &mut sections {
        for (key, value) in &defaults {
            if !options.iter().any(|(k, _)| k == key) {
                options.push((key.clone(), value.clone()));
            }
        }
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::protections::Operation;

    #[test]
    fn sections_keep_file_order_case_and_defaults() {
        let sections = parse(
            "# comment\n[DEFAULT]\ndelete = !\n[^X_.*]\nCreate = admin\nread: @\nupdate = a,\n  b\n[.*]\ncreate=@\nread=@\nupdate=@\n",
        )
        .expect("parses");
        let names: Vec<&str> = sections.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["^X_.*", ".*"]);
        let first = &sections[0].1;
        assert!(first.contains(&("create".to_owned(), "admin".to_owned())));
        assert!(first.contains(&("update".to_owned(), "a,\nb".to_owned())));
        assert!(first.contains(&("delete".to_owned(), "!".to_owned())));
    }

    #[test]
    fn malformed_files_are_refused() {
        assert!(parse("create = @\n").is_err());
        assert!(parse("[a]\ncreate = @\n[a]\n").is_err());
        assert!(parse("[a]\ncreate = @\ncreate = !\n").is_err());
        assert!(parse("[a\n").is_err());
        assert!(parse("[a]\njust words\n").is_err());
    }

    fn config(text: &str) -> Result<ProtectionsConfig, String> {
        ProtectionsConfig::from_ini(&Ini::parse(text).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn no_file_means_no_protections() {
        let config = config("[DEFAULT]\n").expect("loads");
        assert!(config.rules.is_none());
        assert_eq!(config.rule_format, RuleFormat::Roles);
    }

    #[test]
    fn a_valid_file_is_loaded_in_the_configured_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("protections.conf");
        std::fs::write(
            &path,
            "[^spl_]\ncreate = creator\nread = @\nupdate = !\ndelete = !\n",
        )
        .expect("written");
        let config = config(&format!(
            "[DEFAULT]\nproperty_protection_file = {}\nproperty_protection_rule_format = policies\n",
            path.display()
        ))
        .expect("loads");
        let rules = config.rules.expect("rules");
        assert!(rules.allows("spl_x", Operation::Create, &[], &|r| r == "creator"));
    }

    #[test]
    fn an_invalid_or_missing_file_stops_the_start_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.conf");
        std::fs::write(
            &path,
            "[x]\ncreate = @,!\nread = @\nupdate = @\ndelete = @\n",
        )
        .expect("written");
        let err = config(&format!(
            "[DEFAULT]\nproperty_protection_file = {}\n",
            path.display()
        ))
        .expect_err("refused");
        assert!(err.contains("property_protection_file"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("mutually exclusive"), "{err}");

        let missing = dir.path().join("missing.conf");
        let err = config(&format!(
            "[DEFAULT]\nproperty_protection_file = {}\n",
            missing.display()
        ))
        .expect_err("refused");
        assert!(err.contains(&missing.display().to_string()), "{err}");

        let err =
            config("[DEFAULT]\nproperty_protection_rule_format = acl\n").expect_err("refused");
        assert!(err.contains("property_protection_rule_format"), "{err}");
    }
}
