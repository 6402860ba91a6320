//! Who is asking: the request context every domain call receives. The HTTP layer builds it
//! (from trusted headers today, from Keystone token validation later); nothing below the HTTP
//! layer cares how.

use std::sync::Arc;

use glint_store::{Caller, CatalogEndpoint, Secret};

/// The identity and request facts a domain decision may depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// `req-<uuid>`, echoed in `x-openstack-request-id` and in logs.
    pub request_id: String,
    pub user_id: Option<String>,
    /// The caller's project; images it creates are owned by it. None for system- and
    /// domain-scoped tokens, which no image rule accepts.
    pub project_id: Option<String>,
    /// `all` for a system-scoped token (`OpenStack-System-Scope`).
    pub system_scope: Option<String>,
    /// The domain of a domain-scoped token.
    pub domain_id: Option<String>,
    /// Lower-cased role names.
    pub roles: Vec<String>,
    /// The roles of a valid `X-Service-Token` (a service acting for the user, as Nova and
    /// Cinder do); only rules that Glance checks against service roles read them.
    pub service_roles: Vec<String>,
    /// The result of `context_is_admin`: admins bypass ownership and visibility checks. Only
    /// a project-scoped admin is one (Glance's image rules are project-scoped).
    pub is_admin: bool,
    /// The request's Keystone token and its service catalog, for stores that act with the
    /// caller's own identity (Swift's multi-tenant mode).
    pub auth_token: Option<Secret>,
    /// Shared with the cached validation: a request clones no endpoint.
    pub service_catalog: Arc<[CatalogEndpoint]>,
}

impl RequestContext {
    /// The context of a deployment without authentication: Glance with no paste flavor treats
    /// every request as an administrator with no project.
    pub fn unauthenticated_admin(request_id: String) -> RequestContext {
        RequestContext {
            request_id,
            user_id: None,
            project_id: None,
            system_scope: None,
            domain_id: None,
            roles: vec!["admin".to_owned()],
            service_roles: Vec::new(),
            is_admin: true,
            auth_token: None,
            service_catalog: Arc::from([]),
        }
    }

    /// The caller as stores see it: a project-scoped token and its catalog.
    pub fn caller(&self) -> Option<Caller> {
        Some(Caller {
            token: self.auth_token.clone()?,
            project_id: self.project_id.clone()?,
            catalog: self.service_catalog.to_vec(),
        })
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the caller, or the service acting for it, holds `role`.
    pub fn has_role_or_service_role(&self, role: &str) -> bool {
        self.has_role(role) || self.service_roles.iter().any(|r| r == role)
    }

    /// Whether the caller's project is `owner`.
    pub fn is_owner(&self, owner: Option<&str>) -> bool {
        matches!((self.project_id.as_deref(), owner), (Some(p), Some(o)) if p == o)
    }
}
