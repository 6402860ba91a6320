//! oslo.log's options Glint honours: `[DEFAULT] use_json` (one JSON object per line, the
//! request's span — its `request_id`, method and route — on every line logged while it
//! runs) and `debug` (debug level, unless `RUST_LOG` says otherwise).

use super::ini::Ini;
use super::{parse_bool, ConfigError};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoggingConfig {
    /// `[DEFAULT] use_json` (false).
    pub json: bool,
    /// `[DEFAULT] debug` (false).
    pub debug: bool,
}

impl LoggingConfig {
    pub fn from_ini(ini: &Ini) -> Result<LoggingConfig, ConfigError> {
        Ok(LoggingConfig {
            json: parse_bool(ini, "DEFAULT", "use_json", false)?,
            debug: parse_bool(ini, "DEFAULT", "debug", false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oslo_log_options_are_read() {
        let parse = |text: &str| LoggingConfig::from_ini(&Ini::parse(text).expect("ini"));
        assert_eq!(parse("").expect("config"), LoggingConfig::default());
        assert_eq!(
            parse("[DEFAULT]\nuse_json = true\ndebug = True\n").expect("config"),
            LoggingConfig {
                json: true,
                debug: true
            }
        );
        assert!(parse("[DEFAULT]\nuse_json = maybe\n").is_err());
    }
}
