//! `[oslo_policy]`: the operator's policy file and the two switches Glance reads with it.

use std::path::{Path, PathBuf};

use super::ini::Ini;
use super::{parse_bool, ConfigError};

const SECTION: &str = "oslo_policy";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// `policy_file` (policy.yaml, looked for beside the configuration file): rules replacing
    /// the built-in ones by name. Unset and absent: the built-in rules alone.
    pub policy_file: Option<PathBuf>,
    /// `enforce_scope` (true): a rule refuses tokens of a scope it does not list (every
    /// image rule lists only `project`).
    pub enforce_scope: bool,
    /// `enforce_new_defaults` (true): false or-s each rule with the rule it replaced (mostly
    /// `rule:default`, which allows everyone: ownership and visibility alone then decide).
    pub enforce_new_defaults: bool,
    /// Whether `policy_file` was named (a named file must exist).
    pub named: bool,
}

impl Default for PolicyConfig {
    fn default() -> PolicyConfig {
        PolicyConfig {
            policy_file: None,
            enforce_scope: true,
            enforce_new_defaults: true,
            named: false,
        }
    }
}

impl PolicyConfig {
    pub fn from_ini(ini: &Ini) -> Result<PolicyConfig, ConfigError> {
        let file = ini
            .get(SECTION, "policy_file")
            .map(str::trim)
            .filter(|f| !f.is_empty());
        // Read so that they are not reported as unknown; directories of rule files are not
        // read (one file holds every override).
        let _ = ini.get(SECTION, "policy_dirs");
        let _ = ini.get(SECTION, "policy_default_rule");
        Ok(PolicyConfig {
            policy_file: file.map(PathBuf::from),
            enforce_scope: parse_bool(ini, SECTION, "enforce_scope", true)?,
            enforce_new_defaults: parse_bool(ini, SECTION, "enforce_new_defaults", true)?,
            named: file.is_some(),
        })
    }

    /// Places a relative `policy_file` beside the configuration file (in `config_dir`), as
    /// oslo.config does; unnamed, `policy.yaml` there is used if it exists. A file named in
    /// the configuration must exist.
    pub fn locate(&mut self, config_dir: Option<&Path>) -> Result<(), ConfigError> {
        let file = match (self.policy_file.take(), config_dir) {
            (Some(file), Some(dir)) if file.is_relative() => dir.join(file),
            (Some(file), _) => file,
            (None, Some(dir)) => dir.join("policy.yaml"),
            (None, None) => return Ok(()),
        };
        if file.is_file() {
            self.policy_file = Some(file);
        } else if self.named {
            return Err(ConfigError::invalid(
                SECTION,
                "policy_file",
                format!("{} does not exist", file.display()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_is_used_only_when_present() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = PolicyConfig::from_ini(&Ini::default()).expect("loads");
        config
            .locate(Some(dir.path()))
            .expect("absent default is fine");
        assert_eq!(config.policy_file, None);
        assert!(config.enforce_scope && config.enforce_new_defaults);

        std::fs::write(dir.path().join("policy.yaml"), "{}").expect("writes");
        let mut config = PolicyConfig::from_ini(&Ini::default()).expect("loads");
        config.locate(Some(dir.path())).expect("found");
        assert_eq!(config.policy_file, Some(dir.path().join("policy.yaml")));

        let named = Ini::parse("[oslo_policy]\npolicy_file = missing.yaml\n").expect("ini");
        let mut config = PolicyConfig::from_ini(&named).expect("loads");
        assert!(config.locate(Some(dir.path())).is_err());
    }
}
