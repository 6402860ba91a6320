//! `[image_format]` options that govern how uploaded data is inspected.

use super::ini::Ini;
use super::{parse_bool, parse_list, ConfigError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectionConfig {
    /// `require_image_format_match` (true): data whose content is not its `disk_format` is
    /// refused. Glint refuses data that fails a safety check, or looks like two formats at
    /// once, either way.
    pub require_image_format_match: bool,
    /// `vmdk_allowed_types` (streamOptimized, monolithicSparse): the vmdk `createType`s
    /// accepted, compared without case. Only self-contained ones are ever accepted, whatever
    /// the list says: the others name files outside the image.
    pub vmdk_allowed_types: Vec<String>,
    /// `gpt_safety_checks_nonfatal` (empty): names of gpt safety checks (`mbr`) whose failure
    /// is only logged.
    pub gpt_safety_checks_nonfatal: Vec<String>,
}

impl Default for InspectionConfig {
    fn default() -> InspectionConfig {
        InspectionConfig {
            require_image_format_match: true,
            vmdk_allowed_types: vec!["streamOptimized".into(), "monolithicSparse".into()],
            gpt_safety_checks_nonfatal: Vec::new(),
        }
    }
}

impl InspectionConfig {
    pub fn from_ini(ini: &Ini) -> Result<InspectionConfig, ConfigError> {
        let defaults = InspectionConfig::default();
        Ok(InspectionConfig {
            require_image_format_match: parse_bool(
                ini,
                "image_format",
                "require_image_format_match",
                true,
            )?,
            vmdk_allowed_types: parse_list(ini, "image_format", "vmdk_allowed_types")
                .unwrap_or(defaults.vmdk_allowed_types),
            gpt_safety_checks_nonfatal: parse_list(
                ini,
                "image_format",
                "gpt_safety_checks_nonfatal",
            )
            .unwrap_or(defaults.gpt_safety_checks_nonfatal),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_glances() {
        let config = InspectionConfig::from_ini(&Ini::default()).expect("defaults");
        assert_eq!(config, InspectionConfig::default());
        assert!(config.require_image_format_match);
    }

    #[test]
    fn options_are_read_from_image_format() {
        let ini = Ini::parse(
            "[image_format]\nrequire_image_format_match = false\nvmdk_allowed_types =\ngpt_safety_checks_nonfatal = mbr, gptmbr\n",
        )
        .expect("parses");
        let config = InspectionConfig::from_ini(&ini).expect("loads");
        assert!(!config.require_image_format_match);
        assert!(config.vmdk_allowed_types.is_empty());
        assert_eq!(config.gpt_safety_checks_nonfatal, ["mbr", "gptmbr"]);
        let ini =
            Ini::parse("[image_format]\nrequire_image_format_match = sometimes\n").expect("parses");
        assert!(InspectionConfig::from_ini(&ini).is_err());
    }
}
