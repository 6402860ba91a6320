//! `[keystone_authtoken]`: how Glint validates Keystone tokens, with keystonemiddleware's
//! option names so that an operator's `glance-api.conf` section works unchanged.

use std::path::PathBuf;
use std::time::Duration;

use glint_store::Secret;

use super::ini::Ini;
use super::{parse_bool, parse_int, ConfigError};

const SECTION: &str = "keystone_authtoken";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoneConfig {
    /// The identity API the service authenticates to and validates tokens at: `auth_url`
    /// with `/v3` appended unless it ends in it.
    pub identity_url: String,
    /// Where clients are told to authenticate (`WWW-Authenticate: Keystone uri="…"`):
    /// `www_authenticate_uri`, else the older `auth_uri`, else `auth_url`.
    pub www_authenticate_uri: String,
    /// The service's own identity (`auth_type = password`), scoped to its project.
    pub service: Credentials,
    /// `token_cache_time` (300 s; -1 turns caching off): how long a validation result is
    /// reused, never beyond the token's own expiry.
    pub token_cache_time: Option<Duration>,
    /// `service_token_roles` (service): a service token must carry one of these to let an
    /// expired user token through (Nova's long uploads).
    pub service_token_roles: Vec<String>,
    /// `service_token_roles_required` (false): a service token without those roles makes
    /// the request unauthenticated, rather than only not extending the user token.
    pub service_token_roles_required: bool,
    /// `service_type` (image): checked against application credentials' access rules.
    pub service_type: Option<String>,
    /// `include_service_catalog` (true): keep the token's catalog for the request.
    pub include_service_catalog: bool,
    /// `http_connect_timeout` (10 s here; keystonemiddleware waits forever by default): the
    /// most a call to Keystone may take before the request is answered 503.
    pub http_connect_timeout: Duration,
    /// `cafile`, `insecure`: TLS to Keystone.
    pub cafile: Option<PathBuf>,
    pub insecure: bool,
}

/// Who a service signs in to Keystone as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
    pub user_domain: Domain,
    pub scope: SessionScope,
}

/// What the service's token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionScope {
    Project {
        name: String,
        domain: Domain,
    },
    /// `system_scope = all`.
    System,
}

/// A domain named by id or by name (Keystone accepts either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Domain {
    Id(String),
    Name(String),
}

impl KeystoneConfig {
    pub fn from_ini(ini: &Ini) -> Result<KeystoneConfig, ConfigError> {
        let get = |option: &str| {
            ini.get(SECTION, option)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let required = |option: &'static str| {
            get(option).ok_or_else(|| {
                ConfigError::invalid(SECTION, option, "must be set for flavor = keystone")
            })
        };
        match get("auth_type").as_deref() {
            Some("password" | "v3password") => {}
            Some(other) => {
                return Err(ConfigError::invalid(
                    SECTION,
                    "auth_type",
                    format!("{other:?} is not supported; use password"),
                ))
            }
            None => {
                return Err(ConfigError::invalid(
                    SECTION,
                    "auth_type",
                    "must be password",
                ))
            }
        }
        let auth_url = required("auth_url")?;
        if !(auth_url.starts_with("http://") || auth_url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                SECTION,
                "auth_url",
                format!("{auth_url:?} is not an http(s) URL"),
            ));
        }
        let domain = |id: &str, name: &str| match (get(id), get(name)) {
            (Some(id), _) => Domain::Id(id),
            (None, Some(name)) => Domain::Name(name),
            (None, None) => Domain::Id("default".to_owned()),
        };
        let service = Credentials {
            username: required("username")?,
            password: Secret(required("password")?),
            user_domain: domain("user_domain_id", "user_domain_name"),
            scope: SessionScope::Project {
                name: required("project_name")?,
                domain: domain("project_domain_id", "project_domain_name"),
            },
        };
        let cache_secs = parse_int(ini, SECTION, "token_cache_time", 300, -1, 86_400)?;
        let roles = get("service_token_roles").unwrap_or_else(|| "service".to_owned());
        let timeout = parse_int(ini, SECTION, "http_connect_timeout", 10, 1, 600)?;
        // Read so that they are not reported as unknown: the in-process cache replaces
        // memcached (each node validates a token once per `token_cache_time`).
        for accepted in [
            "memcached_servers",
            "memcache_security_strategy",
            "memcache_secret_key",
            "region_name",
            "delay_auth_decision",
            "interface",
        ] {
            let _ = ini.get(SECTION, accepted);
        }
        Ok(KeystoneConfig {
            identity_url: identity_url(&auth_url),
            www_authenticate_uri: get("www_authenticate_uri")
                .or_else(|| get("auth_uri"))
                .unwrap_or_else(|| auth_url.clone()),
            service,
            token_cache_time: (cache_secs >= 0).then(|| Duration::from_secs(cache_secs as u64)),
            service_token_roles: roles
                .split(',')
                .map(|r| r.trim().to_lowercase())
                .filter(|r| !r.is_empty())
                .collect(),
            service_token_roles_required: parse_bool(
                ini,
                SECTION,
                "service_token_roles_required",
                false,
            )?,
            service_type: Some(get("service_type").unwrap_or_else(|| "image".to_owned())),
            include_service_catalog: parse_bool(ini, SECTION, "include_service_catalog", true)?,
            http_connect_timeout: Duration::from_secs(timeout as u64),
            cafile: get("cafile").map(PathBuf::from),
            insecure: parse_bool(ini, SECTION, "insecure", false)?,
        })
    }
}

/// `[DEFAULT] use_keystone_limits` with `[oslo_limit]`: quotas from Keystone's unified limits,
/// read with the service's own credentials (oslo.limit's option names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedLimitsConfig {
    pub identity_url: String,
    /// Usually `system_scope = all` (reading any project's limits takes a system reader).
    pub credentials: Credentials,
    pub endpoint: LimitsEndpoint,
    /// `http_connect_timeout` of `[keystone_authtoken]`'s kind (10 s).
    pub timeout: Duration,
    pub cafile: Option<PathBuf>,
    pub insecure: bool,
}

/// Which catalog endpoint is the image service's: its service and region key the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitsEndpoint {
    /// `endpoint_id`.
    Id(String),
    /// `endpoint_service_type` (image), `endpoint_service_name`, `endpoint_region_name`,
    /// `endpoint_interface` (public).
    Lookup {
        service_type: String,
        service_name: Option<String>,
        region: Option<String>,
        interface: String,
    },
}

const LIMIT_SECTION: &str = "oslo_limit";

impl UnifiedLimitsConfig {
    /// `None` unless `[DEFAULT] use_keystone_limits` is true.
    pub fn from_ini(ini: &Ini) -> Result<Option<UnifiedLimitsConfig>, ConfigError> {
        if !parse_bool(ini, "DEFAULT", "use_keystone_limits", false)? {
            return Ok(None);
        }
        let get = |option: &str| {
            ini.get(LIMIT_SECTION, option)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let required = |option: &'static str| {
            get(option).ok_or_else(|| {
                ConfigError::invalid(
                    LIMIT_SECTION,
                    option,
                    "must be set with use_keystone_limits = true",
                )
            })
        };
        match get("auth_type").as_deref() {
            None | Some("password" | "v3password") => {}
            Some(other) => {
                return Err(ConfigError::invalid(
                    LIMIT_SECTION,
                    "auth_type",
                    format!("{other:?} is not supported; use password"),
                ))
            }
        }
        let domain = |id: &str, name: &str| match (get(id), get(name)) {
            (Some(id), _) => Domain::Id(id),
            (None, Some(name)) => Domain::Name(name),
            (None, None) => Domain::Id("default".to_owned()),
        };
        let scope = match (get("system_scope"), get("project_name")) {
            (Some(system), _) if system == "all" => SessionScope::System,
            (Some(other), _) => {
                return Err(ConfigError::invalid(
                    LIMIT_SECTION,
                    "system_scope",
                    format!("{other:?}: only \"all\" is a system scope"),
                ))
            }
            (None, Some(name)) => SessionScope::Project {
                name,
                domain: domain("project_domain_id", "project_domain_name"),
            },
            (None, None) => {
                return Err(ConfigError::invalid(
                    LIMIT_SECTION,
                    "system_scope",
                    "set system_scope = all (or project_name)",
                ))
            }
        };
        let endpoint = match get("endpoint_id") {
            Some(id) => LimitsEndpoint::Id(id),
            None => LimitsEndpoint::Lookup {
                service_type: get("endpoint_service_type").unwrap_or_else(|| "image".to_owned()),
                service_name: get("endpoint_service_name"),
                region: get("endpoint_region_name"),
                interface: get("endpoint_interface")
                    .map(|i| i.trim_end_matches("URL").to_owned())
                    .unwrap_or_else(|| "public".to_owned()),
            },
        };
        let auth_url = required("auth_url")?;
        Ok(Some(UnifiedLimitsConfig {
            identity_url: identity_url(&auth_url),
            credentials: Credentials {
                username: required("username")?,
                password: Secret(required("password")?),
                user_domain: domain("user_domain_id", "user_domain_name"),
                scope,
            },
            endpoint,
            timeout: Duration::from_secs(
                parse_int(ini, LIMIT_SECTION, "timeout", 10, 1, 600)? as u64
            ),
            cafile: get("cafile").map(PathBuf::from),
            insecure: parse_bool(ini, LIMIT_SECTION, "insecure", false)?,
        }))
    }
}

/// `http://keystone:5000` and `http://keystone:5000/v3/` both mean `http://keystone:5000/v3`.
fn identity_url(auth_url: &str) -> String {
    let trimmed = auth_url.trim_end_matches('/');
    if trimmed.ends_with("/v3") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/v3")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[keystone_authtoken]\nauth_type = password\n\
        auth_url = http://keystone:5000\nusername = glance\npassword = pw\n\
        project_name = service\n";

    fn load(text: &str) -> Result<KeystoneConfig, ConfigError> {
        KeystoneConfig::from_ini(&Ini::parse(text).expect("ini parses"))
    }

    #[test]
    fn glance_install_guide_section_loads() {
        let text = format!(
            "{BASE}www_authenticate_uri = http://controller:5000\nuser_domain_name = Default\n\
             project_domain_name = Default\nmemcached_servers = controller:11211\n"
        );
        let config = load(&text).expect("loads");
        assert_eq!(config.identity_url, "http://keystone:5000/v3");
        assert_eq!(config.www_authenticate_uri, "http://controller:5000");
        assert_eq!(
            config.service.user_domain,
            Domain::Name("Default".to_owned())
        );
        assert_eq!(config.token_cache_time, Some(Duration::from_secs(300)));
        assert_eq!(config.service_token_roles, vec!["service".to_owned()]);
        assert!(!config.service_token_roles_required);
    }

    #[test]
    fn older_spellings_and_defaults() {
        let config = load(&format!(
            "{BASE}auth_uri = http://old:5000/v3\ntoken_cache_time = -1\n"
        ))
        .expect("loads");
        assert_eq!(config.www_authenticate_uri, "http://old:5000/v3");
        assert_eq!(config.token_cache_time, None);
        assert!(matches!(
            &config.service.scope,
            SessionScope::Project { domain: Domain::Id(id), .. } if id == "default"
        ));
        assert_eq!(identity_url("http://k/v3/"), "http://k/v3");
    }

    #[test]
    fn incomplete_sections_are_refused_by_name() {
        let err = load("[keystone_authtoken]\nauth_type = password\n").expect_err("no url");
        assert!(err.to_string().contains("auth_url"), "{err}");
        let err = load(&BASE.replace("password\n", "token\n")).expect_err("bad type");
        assert!(err.to_string().contains("auth_type"), "{err}");
        let err = load(&BASE.replace("username = glance\n", "")).expect_err("no user");
        assert!(err.to_string().contains("username"), "{err}");
    }
}
