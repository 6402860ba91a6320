//! `[paste_deploy] flavor`: how requests are authenticated.

use super::ini::Ini;
use super::keystone::KeystoneConfig;
use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFlavor {
    /// No flavor (Glance's default): every request is an administrator with no project.
    Unauthenticated,
    /// `trusted-auth`: identity headers set by an authenticating proxy in front of Glint are
    /// believed (`X-Identity-Status: Confirmed`, `X-Project-Id`, `X-User-Id`, `X-Roles`).
    TrustedHeaders,
    /// `keystone` (and `keystone+caching`, `keystone+cachemanagement`): every request's
    /// `X-Auth-Token` is validated by Keystone, as keystonemiddleware does for Glance.
    Keystone(Box<KeystoneConfig>),
}

impl AuthFlavor {
    pub fn from_ini(ini: &Ini) -> Result<AuthFlavor, ConfigError> {
        match ini.get("paste_deploy", "flavor").unwrap_or("").trim() {
            "" | "caching" | "cachemanagement" => Ok(AuthFlavor::Unauthenticated),
            "trusted-auth" => Ok(AuthFlavor::TrustedHeaders),
            "keystone" | "keystone+caching" | "keystone+cachemanagement" => Ok(
                AuthFlavor::Keystone(Box::new(KeystoneConfig::from_ini(ini)?)),
            ),
            other => Err(ConfigError::invalid(
                "paste_deploy",
                "flavor",
                format!("unknown flavor {other:?} (supported: empty, keystone, trusted-auth)"),
            )),
        }
    }
}
