//! Keystone token validation, as keystonemiddleware's `auth_token` does it in front of Glance:
//! the service signs in with its own password, asks `GET /v3/auth/tokens` about each token
//! it has not seen within `token_cache_time`, and believes the answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use chrono::Utc;
use futures_util::FutureExt;
use glint_store::net::{error_chain, HttpsConnector};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use serde_json::json;

use super::cache::TokenCache;
use super::token::TokenInfo;
use super::{context, AuthFailure, Identity, Presented};
use crate::config::keystone::{Domain, KeystoneConfig};
use crate::domain::RequestContext;

/// The largest answer read from Keystone (a token with a big catalog is tens of KiB).
const MAX_ANSWER: usize = 8 << 20;
/// The service's own token is renewed when it has less than this left.
const SERVICE_TOKEN_MARGIN: Duration = Duration::from_secs(120);

/// What Keystone said of a token: its identity, or `None` for a token it does not know (bad,
/// expired or revoked).
type Verdict = Option<Arc<TokenInfo>>;

#[derive(Debug)]
pub struct KeystoneAuth {
    config: KeystoneConfig,
    http: Client<HttpsConnector, Full<Bytes>>,
    service: tokio::sync::Mutex<Option<ServiceToken>>,
    cache: TokenCache<Verdict>,
}

#[derive(Debug)]
struct ServiceToken {
    value: String,
    /// When it should be renewed (its expiry less a margin, on the process's clock).
    renew_at: Instant,
}

/// An answer from Keystone.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl KeystoneAuth {
    pub fn new(config: KeystoneConfig) -> Result<KeystoneAuth, String> {
        let connector =
            glint_store::net::https_connector(config.cafile.as_deref(), config.insecure)
                .map_err(|e| format!("[keystone_authtoken] cafile: {e}"))?;
        Ok(KeystoneAuth {
            cache: TokenCache::new(config.token_cache_time),
            http: glint_store::net::client(connector),
            service: tokio::sync::Mutex::new(None),
            config,
        })
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
            true => format!("{}/auth/tokens", self.config.identity_url),
            false => format!(
                "{}/auth/tokens?{}",
                self.config.identity_url,
                query.join("&")
            ),
        };
        for renewed in [false, true] {
            let service = self.service_token(renewed).await?;
            let request = Request::get(&uri)
                .header("x-auth-token", service)
                .header("x-subject-token", token)
                .header("openstack-identity-access-rules", "1.0")
                .header("accept", "application/json")
                .body(Full::new(Bytes::new()))
                .map_err(|e| format!("a token Keystone cannot be asked about: {e}"))?;
            let answer = self.send(request).await?;
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

    /// The service's own token, signed in anew when missing, close to expiry, or `renew`.
    async fn service_token(&self, renew: bool) -> Result<String, String> {
        let mut current = self.service.lock().await;
        if let Some(token) = current.as_ref() {
            if !renew && Instant::now() < token.renew_at {
                return Ok(token.value.clone());
            }
        }
        let service = &self.config.service;
        let domain = |d: &Domain| match d {
            Domain::Id(id) => json!({ "id": id }),
            Domain::Name(name) => json!({ "name": name }),
        };
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": service.username,
                "domain": domain(&service.user_domain),
                "password": service.password.0,
            }}},
            "scope": {"project": {
                "name": service.project_name,
                "domain": domain(&service.project_domain),
            }},
        }});
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!(
                "{}/auth/tokens?nocatalog",
                self.config.identity_url
            ))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| format!("[keystone_authtoken] auth_url: {e}"))?;
        let answer = self.send(request).await?;
        if answer.status != StatusCode::CREATED {
            return Err(format!(
                "Keystone answered {} to the service's sign-in as {} (check [keystone_authtoken] \
                 username, password and project_name)",
                answer.status, service.username
            ));
        }
        let value = answer
            .headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .ok_or("Keystone's sign-in answer has no X-Subject-Token")?
            .to_owned();
        let info = TokenInfo::parse(&answer.body)?;
        let left = (info.expires_at - Utc::now())
            .to_std()
            .unwrap_or_default()
            .saturating_sub(SERVICE_TOKEN_MARGIN);
        *current = Some(ServiceToken {
            value: value.clone(),
            renew_at: Instant::now() + left,
        });
        Ok(value)
    }

    /// One call to Keystone, bounded by `http_connect_timeout` from start to last byte. A
    /// call that fails before any answer is made once more on a new connection: a pooled
    /// connection the server closed just as it was reused (uWSGI's http-socket does so) says
    /// nothing about Keystone, and both calls (a validation, a sign-in) may be repeated.
    async fn send(&self, request: Request<Full<Bytes>>) -> Result<Answer, String> {
        let limit = self.config.http_connect_timeout;
        let (parts, body) = request.into_parts();
        let call = async {
            let mut retried = false;
            let response = loop {
                let mut again = Request::new(body.clone());
                *again.method_mut() = parts.method.clone();
                *again.uri_mut() = parts.uri.clone();
                *again.headers_mut() = parts.headers.clone();
                match self.http.request(again).await {
                    Ok(response) => break response,
                    Err(e) if !retried && !e.is_connect() => retried = true,
                    Err(e) => {
                        return Err(format!(
                            "Keystone at {}: {}",
                            self.config.identity_url,
                            error_chain(&e)
                        ))
                    }
                }
            };
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| format!("Keystone's answer: {e}"))?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(limit, call).await.map_err(|_| {
            format!(
                "Keystone at {} did not answer within {} s",
                self.config.identity_url,
                limit.as_secs()
            )
        })?
    }
}
