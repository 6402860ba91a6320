//! `trusted-auth`: the headers keystonemiddleware sets once it has validated a token, set here
//! by an authenticating proxy in front of Glint and believed as they come.

use axum::http::HeaderMap;

use super::catalog::endpoints;
use super::{context, normalized_roles, Identity, Scope};
use crate::domain::RequestContext;

/// Keystone's default implied roles (admin implies member, member implies reader), which a
/// token's role list already carries but a proxy's headers may not.
fn implied_roles(mut roles: Vec<String>) -> Vec<String> {
    for (role, implied) in [("admin", "member"), ("member", "reader")] {
        if roles.iter().any(|r| r == role) && !roles.iter().any(|r| r == implied) {
            roles.push(implied.to_owned());
        }
    }
    roles
}

/// The context the headers describe; `None` when they confirm no identity or name no scope
/// (a project, a domain, or the system).
pub(super) fn context_from_headers(
    headers: &HeaderMap,
    request_id: String,
) -> Option<RequestContext> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if get("x-identity-status") != Some("Confirmed") {
        return None;
    }
    let scope = if let Some(project) = get("x-project-id").or_else(|| get("x-tenant-id")) {
        Scope::Project(project.to_owned())
    } else if let Some(system) = get("openstack-system-scope") {
        Scope::System(system.to_owned())
    } else {
        Scope::Domain(get("x-domain-id")?.to_owned())
    };
    // keystonemiddleware passes the token on, and its catalog in the v2 form.
    let catalog = get("x-service-catalog")
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .map(|c| endpoints(&c))
        .unwrap_or_default();
    Some(context(
        request_id,
        Identity {
            user_id: get("x-user-id").map(str::to_owned),
            scope: Some(scope),
            roles: implied_roles(normalized_roles(get("x-roles").unwrap_or("").split(','))),
            // keystonemiddleware's name for the roles of a valid X-Service-Token.
            service_roles: normalized_roles(get("x-service-roles").unwrap_or("").split(',')),
            token: get("x-auth-token").map(str::to_owned),
            catalog: catalog.into(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn a_confirmed_project_identity_is_believed() {
        let ctx = context_from_headers(
            &headers(&[
                ("x-identity-status", "Confirmed"),
                ("x-project-id", "p1"),
                ("x-user-id", "u1"),
                ("x-roles", "Member, Reader"),
            ]),
            "req-1".into(),
        )
        .expect("confirmed");
        assert_eq!(ctx.project_id.as_deref(), Some("p1"));
        assert_eq!(ctx.roles, vec!["member", "reader"]);
        assert!(!ctx.is_admin);
    }

    #[test]
    fn unconfirmed_or_unscoped_identities_are_refused() {
        let none = |pairs: &[(&'static str, &'static str)]| {
            context_from_headers(&headers(pairs), "req-1".into()).is_none()
        };
        assert!(none(&[("x-project-id", "p1"), ("x-roles", "admin")]));
        assert!(none(&[
            ("x-identity-status", "Invalid"),
            ("x-project-id", "p1")
        ]));
        assert!(none(&[
            ("x-identity-status", "Confirmed"),
            ("x-roles", "admin")
        ]));
    }

    #[test]
    fn the_token_and_its_catalog_are_passed_on_for_the_stores() {
        let ctx = context_from_headers(
            &headers(&[
                ("x-identity-status", "Confirmed"),
                ("x-project-id", "p1"),
                ("x-roles", "member"),
                ("x-auth-token", "gAAAA-token"),
                (
                    "x-service-catalog",
                    r#"[{"type": "object-store", "endpoints": [{"region": "RegionOne", "publicURL": "http://swift/v1/AUTH_p1"}]}]"#,
                ),
            ]),
            "req-1".into(),
        )
        .expect("confirmed");
        let caller = ctx.caller().expect("a token and a project");
        assert_eq!(caller.token.0, "gAAAA-token");
        assert_eq!(
            caller.endpoint("object-store", "public", Some("RegionOne")),
            Some("http://swift/v1/AUTH_p1")
        );
    }

    #[test]
    fn system_and_domain_scoped_admins_are_not_image_admins() {
        let system = context_from_headers(
            &headers(&[
                ("x-identity-status", "Confirmed"),
                ("openstack-system-scope", "all"),
                ("x-roles", "admin"),
            ]),
            "req-1".into(),
        )
        .expect("system scope");
        assert_eq!(system.system_scope.as_deref(), Some("all"));
        assert!(system.project_id.is_none() && !system.is_admin);
        let domain = context_from_headers(
            &headers(&[
                ("x-identity-status", "Confirmed"),
                ("x-domain-id", "default"),
                ("x-roles", "admin"),
            ]),
            "req-1".into(),
        )
        .expect("domain scope");
        assert_eq!(domain.domain_id.as_deref(), Some("default"));
        assert!(!domain.is_admin);
    }
}
