//! `[DEFAULT] metrics_enabled` (Glint's own option): whether `/metrics` serves the Prometheus
//! exposition. Counting goes on either way (it costs a few atomics); the option only decides
//! whether this node shows it, since the endpoint is unauthenticated like `/healthcheck`.

use super::ini::Ini;
use super::{parse_bool, ConfigError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `metrics_enabled` (true): `/metrics` answers; when false it is 404.
    pub enabled: bool,
}

impl Default for MetricsConfig {
    fn default() -> MetricsConfig {
        MetricsConfig { enabled: true }
    }
}

impl MetricsConfig {
    pub fn from_ini(ini: &Ini) -> Result<MetricsConfig, ConfigError> {
        Ok(MetricsConfig {
            enabled: parse_bool(ini, "DEFAULT", "metrics_enabled", true)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MetricsConfig, ConfigError> {
        MetricsConfig::from_ini(&Ini::parse(text).expect("ini"))
    }

    #[test]
    fn metrics_are_on_unless_switched_off() {
        assert!(parse("").expect("config").enabled);
        assert!(
            !parse("[DEFAULT]\nmetrics_enabled = false\n")
                .expect("config")
                .enabled
        );
        assert!(parse("[DEFAULT]\nmetrics_enabled = perhaps\n").is_err());
    }
}
