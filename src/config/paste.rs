//! `[paste_deploy] flavor`: how requests are authenticated.

use super::ini::Ini;
use super::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFlavor {
    /// No flavor (Glance's default): every request is an administrator with no project.
    Unauthenticated,
    /// `trusted-auth`: identity headers set by an authenticating proxy in front of Glint are
    /// believed (`X-Identity-Status: Confirmed`, `X-Project-Id`, `X-User-Id`, `X-Roles`).
    TrustedHeaders,
}

impl AuthFlavor {
    pub fn from_ini(ini: &Ini) -> Result<AuthFlavor, ConfigError> {
        match ini.get("paste_deploy", "flavor").unwrap_or("").trim() {
            "" | "caching" | "cachemanagement" => Ok(AuthFlavor::Unauthenticated),
            "trusted-auth" => Ok(AuthFlavor::TrustedHeaders),
            keystone if keystone.starts_with("keystone") => Err(ConfigError::invalid(
                "paste_deploy",
                "flavor",
                format!(
                    "{keystone:?}: Keystone token validation is not available in this version; \
                     use \"trusted-auth\" behind an authenticating proxy, or leave it empty"
                ),
            )),
            other => Err(ConfigError::invalid(
                "paste_deploy",
                "flavor",
                format!("unknown flavor {other:?} (supported: empty, trusted-auth)"),
            )),
        }
    }
}
