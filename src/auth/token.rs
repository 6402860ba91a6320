//! What Keystone says of a token (`GET /v3/auth/tokens`), reduced to what Glint uses.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use glint_store::CatalogEndpoint;
use serde::Deserialize;

use super::{normalized_roles, Scope};

/// A valid token's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TokenInfo {
    pub(super) user_id: String,
    pub(super) scope: Option<Scope>,
    /// Lower-cased role names.
    pub(super) roles: Vec<String>,
    pub(super) expires_at: DateTime<Utc>,
    /// An application credential's access rules, when it has some: the requests it may make.
    pub(super) access_rules: Option<Vec<AccessRule>>,
    /// The token's service catalog.
    pub(super) catalog: Arc<[CatalogEndpoint]>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(super) struct AccessRule {
    #[serde(default)]
    pub(super) service: String,
    #[serde(default)]
    pub(super) method: String,
    #[serde(default)]
    pub(super) path: String,
}

#[derive(Deserialize)]
struct Body {
    token: Token,
}

#[derive(Deserialize)]
struct Token {
    user: Named,
    expires_at: String,
    #[serde(default)]
    project: Option<Named>,
    #[serde(default)]
    domain: Option<Named>,
    #[serde(default)]
    system: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    roles: Vec<Role>,
    #[serde(default)]
    catalog: serde_json::Value,
    #[serde(default)]
    application_credential: Option<ApplicationCredential>,
}

#[derive(Deserialize)]
struct Named {
    id: String,
}

#[derive(Deserialize)]
struct Role {
    name: String,
}

#[derive(Deserialize)]
struct ApplicationCredential {
    #[serde(default)]
    access_rules: Option<Vec<AccessRule>>,
}

impl TokenInfo {
    /// Parses Keystone's answer; `Err` says what is missing or malformed.
    pub(super) fn parse(body: &[u8]) -> Result<TokenInfo, String> {
        let Body { token } =
            serde_json::from_slice(body).map_err(|e| format!("unreadable token data: {e}"))?;
        let expires_at = DateTime::parse_from_rfc3339(&token.expires_at)
            .map_err(|e| format!("expires_at {:?}: {e}", token.expires_at))?
            .with_timezone(&Utc);
        let system_all = token
            .system
            .as_ref()
            .and_then(|s| s.get("all"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let scope = match (token.project, token.domain) {
            (Some(project), _) => Some(Scope::Project(project.id)),
            (None, _) if system_all => Some(Scope::System("all".to_owned())),
            (None, Some(domain)) => Some(Scope::Domain(domain.id)),
            (None, None) => None,
        };
        Ok(TokenInfo {
            user_id: token.user.id,
            scope,
            roles: normalized_roles(token.roles.iter().map(|r| r.name.as_str())),
            expires_at,
            access_rules: token.application_credential.and_then(|a| a.access_rules),
            catalog: super::catalog::endpoints(&token.catalog).into(),
        })
    }

    pub(super) fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }

    /// keystonemiddleware's access-rule check: a token of an application credential with
    /// access rules may only make the requests they list (`*` one path segment, `**` any
    /// number, `{name}` one segment). Requests carrying a valid service token are part of a
    /// chain of services and pass.
    pub(super) fn allows_request(
        &self,
        service_type: Option<&str>,
        method: &str,
        path: &str,
        with_service_token: bool,
    ) -> bool {
        let Some(rules) = &self.access_rules else {
            return true;
        };
        let Some(service_type) = service_type else {
            return false;
        };
        if !self.catalog.iter().any(|e| e.service_type == service_type) {
            return false;
        }
        with_service_token
            || rules.iter().any(|rule| {
                rule.method == method
                    && rule.service == service_type
                    && path_matches(path, &rule.path)
            })
    }
}

/// Whether `path` matches an access rule's `pattern`.
fn path_matches(path: &str, pattern: &str) -> bool {
    fn matches(path: &[u8], pattern: &[u8]) -> bool {
        match pattern {
            [] => path.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=path.len()).any(|i| matches(&path[i..], rest)),
            [b'*', rest @ ..] => one_segment(path, rest),
            [b'{', rest @ ..] => match rest.iter().position(|c| *c == b'}') {
                Some(end) => one_segment(path, &rest[end + 1..]),
                None => false,
            },
            [c, rest @ ..] => path.first() == Some(c) && matches(&path[1..], rest),
        }
    }
    /// At least one character other than `/`, then the rest of the pattern.
    fn one_segment(path: &[u8], rest: &[u8]) -> bool {
        let segment = path.iter().take_while(|c| **c != b'/').count();
        (1..=segment).any(|i| matches(&path[i..], rest))
    }
    matches(path.as_bytes(), pattern.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT_TOKEN: &str = r#"{"token": {"methods": ["password"],
        "user": {"domain": {"id": "default", "name": "Default"}, "id": "u1", "name": "alice"},
        "audit_ids": ["x"], "expires_at": "2026-12-06T06:16:06.000000Z",
        "issued_at": "2026-12-06T05:16:06.000000Z",
        "project": {"domain": {"id": "default", "name": "Default"}, "id": "p1", "name": "demo"},
        "is_domain": false,
        "roles": [{"id": "r1", "name": "Member"}, {"id": "r2", "name": "reader"}],
        "catalog": [{"type": "image", "name": "glance", "id": "s1", "endpoints": [
            {"interface": "public", "region_id": "RegionOne", "url": "http://glint:9292"}]}]}}"#;

    #[test]
    fn project_tokens_give_project_roles_and_expiry() {
        let info = TokenInfo::parse(PROJECT_TOKEN.as_bytes()).expect("parses");
        assert_eq!(info.user_id, "u1");
        assert_eq!(info.scope, Some(Scope::Project("p1".into())));
        assert_eq!(info.roles, vec!["member", "reader"]);
        assert_eq!(info.expires_at.to_rfc3339(), "2026-12-06T06:16:06+00:00");
        assert!(info.access_rules.is_none());
    }

    #[test]
    fn system_and_domain_scopes_are_read() {
        let system = PROJECT_TOKEN.replace(
            r#""project": {"domain": {"id": "default", "name": "Default"}, "id": "p1", "name": "demo"},"#,
            r#""system": {"all": true},"#,
        );
        let info = TokenInfo::parse(system.as_bytes()).expect("parses");
        assert_eq!(info.scope, Some(Scope::System("all".into())));
        let domain = PROJECT_TOKEN.replace(
            r#""project": {"domain": {"id": "default", "name": "Default"}, "id": "p1", "name": "demo"},"#,
            r#""domain": {"id": "d1", "name": "D"},"#,
        );
        let info = TokenInfo::parse(domain.as_bytes()).expect("parses");
        assert_eq!(info.scope, Some(Scope::Domain("d1".into())));
    }

    #[test]
    fn malformed_answers_are_errors() {
        assert!(TokenInfo::parse(b"{}").is_err());
        assert!(TokenInfo::parse(b"not json").is_err());
        let bad_time = PROJECT_TOKEN.replace("2026-12-06T06:16:06.000000Z", "tomorrow");
        assert!(TokenInfo::parse(bad_time.as_bytes()).is_err());
    }

    #[test]
    fn access_rules_limit_application_credentials() {
        let mut info = TokenInfo::parse(PROJECT_TOKEN.as_bytes()).expect("parses");
        info.access_rules = Some(vec![AccessRule {
            service: "image".into(),
            method: "GET".into(),
            path: "/v2/images/*".into(),
        }]);
        let image = Some("image");
        assert!(info.allows_request(image, "GET", "/v2/images/abc", false));
        assert!(!info.allows_request(image, "GET", "/v2/images/abc/file", false));
        assert!(!info.allows_request(image, "DELETE", "/v2/images/abc", false));
        assert!(info.allows_request(image, "DELETE", "/v2/images/abc", true));
        assert!(!info.allows_request(None, "GET", "/v2/images/abc", false));
        assert!(!info.allows_request(Some("volume"), "GET", "/v2/images/abc", false));
    }

    #[test]
    fn access_rule_paths_match_as_keystonemiddleware_matches_them() {
        assert!(path_matches("/v2/images", "/v2/images"));
        assert!(path_matches("/v2/images/a/file", "/v2/images/*/file"));
        assert!(path_matches(
            "/v2/images/a/file",
            "/v2/images/{image_id}/file"
        ));
        assert!(path_matches("/v2/images/a/b/c", "/v2/**"));
        assert!(path_matches("/v2/", "/v2/**"));
        assert!(!path_matches("/v2/images//file", "/v2/images/*/file"));
        assert!(!path_matches("/v2/images/a/b", "/v2/images/*"));
        assert!(!path_matches("/v2/images", "/v2/images/*"));
    }
}
