//! Keystone token validation, as keystonemiddleware's `auth_token` does it in front of Glance:
//! the service signs in with its own password, asks `GET /v3/auth/tokens` about each token
//! it has not seen within `token_cache_time`, and believes the answer.

use std::sync::Arc;

use axum::http::{Request, StatusCode};
use bytes::Bytes;
use chrono::Utc;
use futures_util::FutureExt;
use http_body_util::Full;

use super::cache::TokenCache;
use super::session::Session;
use super::token::TokenInfo;
use super::{context, AuthFailure, Identity, Presented};
use crate::config::keystone::KeystoneConfig;
use crate::domain::RequestContext;

/// What Keystone said of a token: its identity, or `None` for a token it does not know (bad,
/// expired or revoked).
type Verdict = Option<Arc<TokenInfo>>;

#[derive(Debug)]
pub struct KeystoneAuth {
    config: KeystoneConfig,
    /// The service's own sign-in.
    session: Session,
    cache: TokenCache<Verdict>,
}

impl KeystoneAuth {
    pub fn new(config: KeystoneConfig) -> Result<KeystoneAuth, String> {
        let connector =
            glint_store::net::https_connector(config.cafile.as_deref(), config.insecure)
                .map_err(|e| format!("[keystone_authtoken] cafile: {e}"))?;
        Ok(KeystoneAuth {
            cache: TokenCache::new(config.token_cache_time),
            session: Session::new(
                config.identity_url.clone(),
                config.service.clone(),
                "keystone_authtoken",
                config.http_connect_timeout,
                connector,
            ),
            config,
        })
    }

    /// Signs the service user in anew (`glint doctor`): `Err` says why Keystone refused it or
    /// could not be reached.
    pub async fn sign_in(&self) -> Result<(), String> {
        self.session.token(true).await.map(|_| ())
    }

    /// The context of a request whose `X-Auth-Token` Keystone vouches for. A valid
    /// `X-Service-Token` with one of `service_token_roles` lets an expired user token through
    /// (a service finishing a long job for a user); an invalid one makes the request
    /// unauthenticated.
    pub(super) async fn identify(
        self: &Arc<Self>,
        request: Presented<'_>,
        request_id: String,
    ) -> Result<RequestContext, AuthFailure> {
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let now = Utc::now();
        let service_token = header("x-service-token");
        let mut allow_expired = false;
        let mut service_roles = Vec::new();
        if let Some(token) = service_token {
            let info = match self.validated(token, false).await? {
                Some(info) if !info.expired(now) => info,
                _ => return Err(self.refused("invalid service token")),
            };
            let has_role = info
                .roles
                .iter()
                .any(|r| self.config.service_token_roles.contains(r));
            if self.config.service_token_roles_required && !has_role {
                return Err(self.refused("the service token has none of service_token_roles"));
            }
            allow_expired = has_role;
            service_roles = info.roles.clone();
        }
        let Some(token) = header("x-auth-token").or_else(|| header("x-storage-token")) else {
            return Err(self.refused("no X-Auth-Token"));
        };
        let Some(info) = self.validated(token, allow_expired).await? else {
            return Err(self.refused("Keystone does not know the token"));
        };
        if !allow_expired && info.expired(now) {
            return Err(self.refused("the token has expired"));
        }
        if !info.allows_request(
            self.config.service_type.as_deref(),
            request.method.as_str(),
            request.path,
            service_token.is_some(),
        ) {
            return Err(self.refused("the application credential's access rules refuse it"));
        }
        Ok(context(
            request_id,
            Identity {
                user_id: Some(info.user_id.clone()),
                scope: info.scope.clone(),
                roles: info.roles.clone(),
                service_roles,
                token: Some(token.to_owned()),
                catalog: info.catalog.clone(),
            },
        ))
    }

    fn refused(&self, why: &str) -> AuthFailure {
        tracing::info!(reason = why, "authentication refused");
        AuthFailure::Unauthenticated {
            why: why.to_owned(),
            www_authenticate: Some(format!(
                "Keystone uri=\"{}\"",
                self.config.www_authenticate_uri
            )),
        }
    }

    /// Keystone's verdict on `token`, from the cache or asked now.
    async fn validated(
        self: &Arc<Self>,
        token: &str,
        allow_expired: bool,
    ) -> Result<Verdict, AuthFailure> {
        // Keystone answers differently for an expired token with allow_expired.
        let key = format!("{}:{token}", u8::from(allow_expired));
        let this = self.clone();
        let token = token.to_owned();
        self.cache
            .get_or_validate(&key, move || {
                async move { this.fetch(&token, allow_expired).await }.boxed()
            })
            .await
            .map_err(|why| {
                tracing::error!(error = %why, "cannot validate a token with Keystone");
                AuthFailure::IdentityUnavailable(why)
            })
    }

    /// `GET /v3/auth/tokens` about `token`, signed with the service's token (renewed once if
    /// Keystone no longer accepts it).
    async fn fetch(&self, token: &str, allow_expired: bool) -> Result<Verdict, String> {
        let mut query = Vec::new();
        if allow_expired {
            query.push("allow_expired=1");
        }
        if !self.config.include_service_catalog {
            query.push("nocatalog");
        }
        let uri = match query.is_empty() {
            true => format!("{}/auth/tokens", self.session.identity_url()),
            false => format!(
                "{}/auth/tokens?{}",
                self.session.identity_url(),
                query.join("&")
            ),
        };
        for renewed in [false, true] {
            let service = self.session.token(renewed).await?;
            let request = Request::get(&uri)
                .header("x-auth-token", service)
                .header("x-subject-token", token)
                .header("openstack-identity-access-rules", "1.0")
                .header("accept", "application/json")
                .body(Full::new(Bytes::new()))
                .map_err(|e| format!("a token Keystone cannot be asked about: {e}"))?;
            let answer = self.session.send(request).await?;
            match answer.status {
                StatusCode::OK => {
                    return Ok(match TokenInfo::parse(&answer.body) {
                        Ok(info) => Some(Arc::new(info)),
                        Err(why) => {
                            tracing::warn!(error = %why, "Keystone's token data is unusable");
                            None
                        }
                    })
                }
                StatusCode::NOT_FOUND => return Ok(None),
                StatusCode::UNAUTHORIZED if !renewed => continue,
                status => {
                    return Err(format!(
                        "Keystone answered {status} to the validation of a token{}",
                        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                            " (are the [keystone_authtoken] credentials a service user's?)"
                        } else {
                            ""
                        }
                    ))
                }
            }
        }
        Err("Keystone refused the service's renewed token".to_owned())
    }
}
