//! Who is asking: the identity behind a request, as `[paste_deploy] flavor` says to find it —
//! nobody (every request an administrator, Glance's default), the headers of an
//! authenticating proxy (`trusted-auth`), or a Keystone token validated here as
//! keystonemiddleware validates it for Glance (`keystone`). The HTTP layer turns the answer
//! into a `RequestContext` or a refusal; nothing below it knows which flavor is in use.

mod cache;
mod catalog;
mod keystone;
pub(crate) mod session;
mod token;
mod trusted;

use std::sync::Arc;

use axum::http::{HeaderMap, Method};

use glint_store::{CatalogEndpoint, Secret};

use crate::config::AuthFlavor;
use crate::domain::RequestContext;

pub use keystone::KeystoneAuth;

/// How requests are authenticated, built once per process.
#[derive(Debug, Clone)]
pub enum Authenticator {
    Unauthenticated,
    TrustedHeaders,
    Keystone(Arc<KeystoneAuth>),
}

/// What a request presents.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub headers: &'a HeaderMap,
    pub method: &'a Method,
    pub path: &'a str,
}

/// Why a request is not served.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    /// No identity, or one that was refused: 401, with `WWW-Authenticate` naming Keystone when
    /// there is one to go to.
    #[error("authentication required: {why}")]
    Unauthenticated {
        why: String,
        www_authenticate: Option<String>,
    },
    /// The identity could not be checked now (Keystone down, slow or failing): 503.
    #[error("cannot validate the token: {0}")]
    IdentityUnavailable(String),
}

impl Authenticator {
    pub fn new(flavor: &AuthFlavor) -> Result<Authenticator, String> {
        Ok(match flavor {
            AuthFlavor::Unauthenticated => Authenticator::Unauthenticated,
            AuthFlavor::TrustedHeaders => Authenticator::TrustedHeaders,
            AuthFlavor::Keystone(config) => {
                Authenticator::Keystone(Arc::new(KeystoneAuth::new((**config).clone())?))
            }
        })
    }

    /// The context of a request, or why it is refused.
    pub async fn identify(
        &self,
        request: Presented<'_>,
        request_id: String,
    ) -> Result<RequestContext, AuthFailure> {
        match self {
            Authenticator::Unauthenticated => Ok(RequestContext::unauthenticated_admin(request_id)),
            Authenticator::TrustedHeaders => {
                trusted::context_from_headers(request.headers, request_id).ok_or_else(|| {
                    AuthFailure::Unauthenticated {
                        why: "no confirmed identity with a project, domain or system scope in the \
                          trusted headers"
                            .to_owned(),
                        www_authenticate: None,
                    }
                })
            }
            Authenticator::Keystone(keystone) => keystone.identify(request, request_id).await,
        }
    }
}

/// Role names as policies compare them: lower-cased, blanks dropped.
fn normalized_roles<'a>(roles: impl Iterator<Item = &'a str>) -> Vec<String> {
    roles
        .map(|r| r.trim().to_lowercase())
        .filter(|r| !r.is_empty())
        .collect()
}

/// The context of an identity: only a project-scoped `admin` is an administrator, since
/// Glance's image rules are all project-scoped.
fn context(request_id: String, identity: Identity) -> RequestContext {
    let Identity {
        user_id,
        scope,
        roles,
        service_roles,
        token,
        catalog,
    } = identity;
    let (project_id, domain_id, system_scope) = match scope {
        Some(Scope::Project(project)) => (Some(project), None, None),
        Some(Scope::Domain(domain)) => (None, Some(domain), None),
        Some(Scope::System(system)) => (None, None, Some(system)),
        None => (None, None, None),
    };
    RequestContext {
        request_id,
        user_id,
        is_admin: project_id.is_some() && roles.iter().any(|r| r == "admin"),
        project_id,
        system_scope,
        domain_id,
        roles,
        service_roles,
        auth_token: token.map(Secret),
        service_catalog: catalog,
    }
}

/// Who a token or a proxy's headers say the caller is.
struct Identity {
    user_id: Option<String>,
    scope: Option<Scope>,
    roles: Vec<String>,
    /// The roles of the service token that came with it, if any.
    service_roles: Vec<String>,
    /// The token itself, passed on to stores acting as the caller.
    token: Option<String>,
    catalog: Arc<[CatalogEndpoint]>,
}

/// What a token or a proxy's headers are scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Project(String),
    Domain(String),
    System(String),
}
