//! The Swift store's options (`swift_store_*`, Glance's names, defaults and units) and the
//! credentials references of `swift_store_config_file`.

use std::path::PathBuf;
use std::time::Duration;

use glint_store_swift::{AuthVersion, Secret, SwiftConfig, SwiftReference, SWIFT_MB};

use super::ini::Ini;
use super::{parse_bool, parse_int, parse_text, ConfigError};

/// The store's options from `section` (`[glance_store]`, or a multi-store backend's own).
pub(super) fn swift_config(ini: &Ini, section: &str, id: &str) -> Result<SwiftConfig, ConfigError> {
    let text = |option: &str| parse_text(ini, section, option);
    let multi_tenant = parse_bool(ini, section, "swift_store_multi_tenant", false)?;
    if multi_tenant && text("swift_store_config_file").is_some() {
        return Err(ConfigError::invalid(
            section,
            "swift_store_multi_tenant",
            "swift_store_multi_tenant and swift_store_config_file are mutually exclusive (as \
             in Glance): images go in each project's account, with the project's token",
        ));
    }
    let default_reference = text("default_swift_reference").unwrap_or_else(|| "ref1".to_owned());
    let references = match text("swift_store_config_file") {
        Some(path) => references_in_file(section, &path)?,
        None => options_reference(ini, section, &default_reference)?,
    };
    if !multi_tenant && !references.iter().any(|r| r.name == default_reference) {
        return Err(ConfigError::invalid(
            section,
            "default_swift_reference",
            format!("no credentials for reference {default_reference}: set swift_store_auth_address, swift_store_user and swift_store_key, or add a [{default_reference}] section to swift_store_config_file"),
        ));
    }
    let container = text("swift_store_container").unwrap_or_else(|| "glance".to_owned());
    if container.contains('/') {
        return Err(ConfigError::invalid(
            section,
            "swift_store_container",
            format!("{container:?} is not a container name"),
        ));
    }
    let endpoint_type = text("swift_store_endpoint_type").unwrap_or_else(|| "publicURL".into());
    if !["publicURL", "adminURL", "internalURL"].contains(&endpoint_type.as_str()) {
        return Err(ConfigError::invalid(
            section,
            "swift_store_endpoint_type",
            format!("{endpoint_type:?} is not one of publicURL, adminURL, internalURL"),
        ));
    }
    let mb = |option: &'static str, default: i64| {
        parse_int(ini, section, option, default, 1, 5 << 20).map(|v| v as u64 * SWIFT_MB)
    };
    Ok(SwiftConfig {
        name: id.to_owned(),
        references,
        default_reference,
        container,
        create_container_on_put: parse_bool(
            ini,
            section,
            "swift_store_create_container_on_put",
            false,
        )?,
        multiple_containers_seed: parse_int(
            ini,
            section,
            "swift_store_multiple_containers_seed",
            0,
            0,
            32,
        )? as usize,
        large_object_size: mb("swift_store_large_object_size", 5120)?,
        large_object_chunk_size: mb("swift_store_large_object_chunk_size", 200)?,
        cacert: text("swift_store_cacert").map(PathBuf::from),
        insecure: parse_bool(ini, section, "swift_store_auth_insecure", false)?,
        region: text("swift_store_region"),
        endpoint_type,
        service_type: text("swift_store_service_type").unwrap_or_else(|| "object-store".into()),
        endpoint: text("swift_store_endpoint"),
        expire_soon_interval: Duration::from_secs(parse_int(
            ini,
            section,
            "swift_store_expire_soon_interval",
            60,
            0,
            i64::from(u32::MAX),
        )? as u64),
        retry_get_count: parse_int(ini, section, "swift_store_retry_get_count", 0, 0, 100)? as u32,
        multi_tenant,
        admin_tenants: text("swift_store_admin_tenants")
            .map(|list| {
                list.split(',')
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The version an `auth_version` value names; unset, Keystone v3 unless the address is
/// Swift's own auth endpoint (`…/auth/v1.0`, RGW's `…/auth/1.0`).
fn auth_version(
    section: &str,
    option: &'static str,
    value: Option<&str>,
    address: &str,
) -> Result<AuthVersion, ConfigError> {
    match value.map(str::trim) {
        Some("1" | "1.0") => Ok(AuthVersion::V1),
        Some("3" | "3.0") => Ok(AuthVersion::V3),
        Some("2" | "2.0") => Err(ConfigError::invalid(
            section,
            option,
            "Keystone v2 is gone: use 3 (Keystone v3) or 1 (Swift's own auth)",
        )),
        Some(other) if !other.is_empty() => Err(ConfigError::invalid(
            section,
            option,
            format!("{other:?} is not 1 or 3"),
        )),
        _ => {
            let path = address.trim_end_matches('/');
            Ok(
                if path.ends_with("/auth/v1.0") || path.ends_with("/auth/1.0") {
                    AuthVersion::V1
                } else {
                    AuthVersion::V3
                },
            )
        }
    }
}

/// The reference Glance makes from `swift_store_auth_address`, `_user` and `_key` when no
/// config file is given. Without an address there is none.
fn options_reference(
    ini: &Ini,
    section: &str,
    name: &str,
) -> Result<Vec<SwiftReference>, ConfigError> {
    let text = |option: &str| parse_text(ini, section, option);
    let Some(auth_address) = text("swift_store_auth_address") else {
        return Ok(Vec::new());
    };
    let application_credential = match (
        text("swift_store_application_credential_id"),
        text("swift_store_application_credential_secret"),
    ) {
        (Some(id), Some(secret)) => Some((id, Secret(secret))),
        _ => None,
    };
    let (user, key) =
        match (text("swift_store_user"), text("swift_store_key")) {
            (Some(user), Some(key)) => (user, key),
            _ if application_credential.is_some() => (String::new(), String::new()),
            _ => return Err(ConfigError::invalid(
                section,
                "swift_store_user",
                "swift_store_user and swift_store_key are required with swift_store_auth_address",
            )),
        };
    Ok(vec![SwiftReference {
        name: name.to_owned(),
        auth_version: auth_version(
            section,
            "swift_store_auth_version",
            text("swift_store_auth_version").as_deref(),
            &auth_address,
        )?,
        auth_address,
        user,
        key: Secret(key),
        user_domain_id: None,
        user_domain_name: None,
        project_domain_id: None,
        project_domain_name: None,
        application_credential,
    }])
}

/// Every section of `swift_store_config_file` as a reference: `auth_address` with `user` and
/// `key` (or `application_credential_id` and `_secret`), optional `auth_version` and the
/// Keystone domains. An incomplete section is an error here, where Glance logs and drops it.
fn references_in_file(section: &str, path: &str) -> Result<Vec<SwiftReference>, ConfigError> {
    let option = "swift_store_config_file";
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::invalid(section, option, format!("cannot read {path}: {e}")))?;
    let file = Ini::parse(&text)
        .map_err(|e| ConfigError::invalid(section, option, format!("{path}: {e}")))?;
    let mut references = Vec::new();
    for name in file.sections() {
        let get = |key: &str| {
            file.get(&name, key)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let missing = |what: &str| {
            ConfigError::invalid(
                section,
                option,
                format!("{path} [{name}]: {what} is required"),
            )
        };
        let auth_address = get("auth_address").ok_or_else(|| missing("auth_address"))?;
        let application_credential = match (
            get("application_credential_id"),
            get("application_credential_secret"),
        ) {
            (Some(id), Some(secret)) => Some((id, Secret(secret))),
            _ => None,
        };
        let (user, key) = match (get("user"), get("key")) {
            (Some(user), Some(key)) => (user, key),
            _ if application_credential.is_some() => (String::new(), String::new()),
            _ => return Err(missing("user and key (or an application credential)")),
        };
        references.push(SwiftReference {
            auth_version: auth_version(
                section,
                option,
                get("auth_version").as_deref(),
                &auth_address,
            )?,
            name: name.clone(),
            auth_address,
            user,
            key: Secret(key),
            user_domain_id: get("user_domain_id"),
            user_domain_name: get("user_domain_name"),
            project_domain_id: get("project_domain_id"),
            project_domain_name: get("project_domain_name"),
            application_credential,
        });
    }
    Ok(references)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<SwiftConfig, ConfigError> {
        let ini = Ini::parse(text).expect("parses");
        swift_config(&ini, "glance_store", "swift")
    }

    #[test]
    fn options_make_the_default_reference() {
        let config = load(
            "[glance_store]\nswift_store_auth_address = http://swift:8080/auth/v1.0\n\
             swift_store_user = test:tester\nswift_store_key = testing\n\
             swift_store_large_object_size = 10\nswift_store_multiple_containers_seed = 3\n",
        )
        .expect("loads");
        assert_eq!(config.default_reference, "ref1");
        let reference = config.writer_reference().expect("ref1");
        assert_eq!(reference.auth_version, AuthVersion::V1);
        assert_eq!(reference.user, "test:tester");
        assert_eq!(config.large_object_size, 10 * 1000 * 1024);
        assert_eq!(config.large_object_chunk_size, 200 * 1000 * 1024);
        assert_eq!(config.multiple_containers_seed, 3);
        assert!(
            !format!("{config:?}").contains("testing"),
            "no key in Debug"
        );

        let keystone = load(
            "[glance_store]\nswift_store_auth_address = https://keystone/v3\n\
             swift_store_user = service:glance\nswift_store_key = k\n",
        )
        .expect("loads");
        assert_eq!(
            keystone.writer_reference().map(|r| r.auth_version.clone()),
            Some(AuthVersion::V3)
        );
    }

    #[test]
    fn the_config_file_gives_references() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("glance-swift.conf");
        std::fs::write(
            &path,
            "[ref1]\nuser = service:glance\nkey = secret\nauth_address = https://keystone/v3\n\
             user_domain_name = Default\nproject_domain_id = default\n\
             [store2]\nuser = test:tester\nkey = testing\nauth_address = http://s/auth/v1.0\nauth_version = 1\n",
        )
        .expect("writes");
        let config = load(&format!(
            "[glance_store]\nswift_store_config_file = {}\n",
            path.display()
        ))
        .expect("loads");
        assert_eq!(config.references.len(), 2);
        let ref1 = config.reference("ref1").expect("ref1");
        assert_eq!(ref1.auth_version, AuthVersion::V3);
        assert_eq!(ref1.user_domain_name.as_deref(), Some("Default"));
        assert_eq!(
            config.reference("store2").map(|r| r.auth_version.clone()),
            Some(AuthVersion::V1)
        );

        std::fs::write(&path, "[ref1]\nuser = a:b\nauth_address = https://k/v3\n").expect("writes");
        let refused = load(&format!(
            "[glance_store]\nswift_store_config_file = {}\n",
            path.display()
        ));
        assert!(refused.is_err());
    }

    #[test]
    fn what_cannot_work_is_refused() {
        assert!(load("[glance_store]\n").is_err(), "no credentials");
        assert!(load(
            "[glance_store]\nswift_store_auth_address = http://s/auth/v1.0\nswift_store_user = u\n"
        )
        .is_err());
        let base = "[glance_store]\nswift_store_auth_address = http://s/auth/v1.0\nswift_store_user = u\nswift_store_key = k\n";
        assert!(load(&format!("{base}swift_store_auth_version = 2\n")).is_err());
        assert!(load(
            "[glance_store]\nswift_store_multi_tenant = true\nswift_store_config_file = /x\n"
        )
        .is_err());
        assert!(load(&format!("{base}swift_store_endpoint_type = otherURL\n")).is_err());
        assert!(load(&format!(
            "{base}swift_store_multiple_containers_seed = 33\n"
        ))
        .is_err());
        // The options' reference takes the name locations will carry.
        let named = load(&format!("{base}default_swift_reference = other\n")).expect("loads");
        assert_eq!(
            named.writer_reference().map(|r| r.name.as_str()),
            Some("other")
        );
        assert!(load(base).is_ok());
    }

    #[test]
    fn multi_tenant_mode_needs_no_credentials_of_its_own() {
        let config = load(
            "[glance_store]\nswift_store_multi_tenant = true\n\
             swift_store_admin_tenants = ops, audit\nswift_store_create_container_on_put = true\n",
        )
        .expect("loads");
        assert!(config.multi_tenant);
        assert!(config.references.is_empty());
        assert_eq!(
            config.admin_tenants,
            vec!["ops".to_owned(), "audit".to_owned()]
        );
    }
}
