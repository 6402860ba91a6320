//! Tokens and storage URLs: Swift's own auth (v1: tempauth, RGW) and Keystone v3, renewed
//! before they run out (`swift_store_expire_soon_interval`) or when Swift refuses them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use glint_store::StoreError;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};

use crate::client::{read_limited, transport_error, HttpClient};
use crate::config::{AuthVersion, SwiftReference};
use glint_store::net::body::UploadBody;

/// A token and where it may be used.
#[derive(Debug)]
pub(crate) struct Token {
    pub(crate) value: String,
    /// The account's URL, `https://swift/v1/AUTH_project` (no trailing slash).
    pub(crate) storage_url: String,
    expires: Option<Instant>,
    /// A request's token (multi-tenant mode): Swift refusing it refuses the caller, not the
    /// store's configuration.
    pub(crate) from_caller: bool,
}

impl Token {
    fn expires_within(&self, margin: Duration) -> bool {
        self.expires
            .is_some_and(|at| at.saturating_duration_since(Instant::now()) <= margin)
    }
}

/// Where the storage URL comes from when auth's answer is not enough (Keystone's catalog).
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    pub(crate) endpoint: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) endpoint_type: String,
    pub(crate) service_type: String,
}

/// One identity's token, shared by every request made with it: the store's own, fetched and
/// renewed with its credentials, or a request's, used as it came.
#[derive(Debug)]
pub(crate) struct Auth {
    /// Where new tokens come from; `None` for a caller's token, which Glint cannot renew.
    signer: Option<Signer>,
    expire_soon: Duration,
    current: tokio::sync::Mutex<Option<Arc<Token>>>,
}

/// The store's credentials, and how to turn them into a token.
#[derive(Debug)]
struct Signer {
    store: String,
    reference: SwiftReference,
    catalog: Catalog,
}

impl Auth {
    pub(crate) fn new(
        store: &str,
        reference: SwiftReference,
        catalog: Catalog,
        expire_soon: Duration,
    ) -> Auth {
        Auth {
            signer: Some(Signer {
                store: store.to_owned(),
                reference,
                catalog,
            }),
            expire_soon,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// A request's own token, for the account at `storage_url` (multi-tenant mode).
    pub(crate) fn caller(token: &str, storage_url: &str) -> Auth {
        Auth {
            signer: None,
            expire_soon: Duration::ZERO,
            current: tokio::sync::Mutex::new(Some(Arc::new(Token {
                value: token.to_owned(),
                storage_url: storage_url.trim_end_matches('/').to_owned(),
                expires: None,
                from_caller: true,
            }))),
        }
    }

    /// A token valid for at least `swift_store_expire_soon_interval`, fetched if needed (one
    /// request at a time: concurrent callers wait for the same answer).
    pub(crate) async fn token(&self, http: &HttpClient) -> Result<Arc<Token>, StoreError> {
        let mut current = self.current.lock().await;
        let Some(signer) = &self.signer else {
            // A caller's token is never forgotten.
            return current.clone().ok_or_else(|| StoreError::Backend {
                store: String::new(),
                source: "a caller's token went missing".into(),
            });
        };
        if let Some(token) = current.as_ref() {
            if !token.expires_within(self.expire_soon) {
                return Ok(token.clone());
            }
        }
        let token = Arc::new(match signer.reference.auth_version {
            AuthVersion::V1 => signer.v1(http).await?,
            AuthVersion::V3 => signer.v3(http).await?,
        });
        *current = Some(token.clone());
        Ok(token)
    }

    /// Whether this is a request's own token.
    pub(crate) fn is_caller(&self) -> bool {
        self.signer.is_none()
    }

    /// Forgets `refused` (Swift answered 401 to it), so that the next request authenticates;
    /// a caller's token stays (there is no other).
    pub(crate) async fn forget(&self, refused: &Arc<Token>) {
        if self.signer.is_none() {
            return;
        }
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|t| Arc::ptr_eq(t, refused)) {
            *current = None;
        }
    }
}

impl Signer {
    fn refused(&self, status: StatusCode) -> StoreError {
        StoreError::Misconfigured {
            store: self.store.clone(),
            why: format!(
                "auth at {} refused the store's credentials (reference {}): {status}",
                self.reference.auth_address, self.reference.name
            ),
        }
    }

    fn misanswered(&self, what: &str) -> StoreError {
        StoreError::Unavailable {
            store: self.store.clone(),
            retryable: true,
            source: format!("auth at {}: {what}", self.reference.auth_address).into(),
        }
    }

    async fn v1(&self, http: &HttpClient) -> Result<Token, StoreError> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(&self.reference.auth_address)
            .header("x-auth-user", &self.reference.user)
            .header("x-auth-key", &self.reference.key.0)
            .body(UploadBody::empty())
            .map_err(|e| self.invalid_address(e))?;
        let response = self.ask(http, request).await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let value = header("x-auth-token")
            .or_else(|| header("x-storage-token"))
            .ok_or_else(|| self.misanswered("no X-Auth-Token in the answer"))?;
        let storage_url = match &self.catalog.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => header("x-storage-url")
                .ok_or_else(|| self.misanswered("no X-Storage-Url in the answer"))?,
        };
        let expires = header("x-auth-token-expires")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(|secs| Instant::now() + Duration::from_secs(secs));
        Ok(Token {
            value,
            storage_url: storage_url.trim_end_matches('/').to_owned(),
            expires,
            from_caller: false,
        })
    }

    /// Sends an auth request; anything but a success is an error (refused credentials are
    /// the operator's to fix).
    async fn ask(
        &self,
        http: &HttpClient,
        request: Request<UploadBody>,
    ) -> Result<http::Response<hyper::body::Incoming>, StoreError> {
        let response = http
            .request(request)
            .await
            .map_err(|e| transport_error(&self.store, &e))?;
        let status = response.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(self.refused(status));
        }
        if !status.is_success() {
            return Err(self.misanswered(&format!("answered {status}")));
        }
        Ok(response)
    }

    fn invalid_address(&self, e: http::Error) -> StoreError {
        StoreError::Misconfigured {
            store: self.store.clone(),
            why: format!(
                "auth address {:?} (reference {}): {e}",
                self.reference.auth_address, self.reference.name
            ),
        }
    }

    /// The v3 request body: password auth scoped to `project:user`'s project, or an
    /// application credential (which carries its own scope).
    fn v3_body(&self) -> Result<Value, StoreError> {
        let r = &self.reference;
        if let Some((id, secret)) = &r.application_credential {
            return Ok(json!({"auth": {"identity": {
                "methods": ["application_credential"],
                "application_credential": {"id": id, "secret": secret.0},
            }}}));
        }
        let Some((project, user)) = r
            .user
            .split_once(':')
            .filter(|(p, u)| !p.is_empty() && !u.is_empty() && !u.contains(':'))
        else {
            return Err(StoreError::Misconfigured {
                store: self.store.clone(),
                why: format!(
                    "the user of reference {} must be project:user for Keystone",
                    r.name
                ),
            });
        };
        let domain = |id: &Option<String>, name: &Option<String>| match (id, name) {
            (Some(id), _) => json!({"id": id}),
            (None, Some(name)) => json!({"name": name}),
            (None, None) => json!({"id": "default"}),
        };
        Ok(json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user,
                "domain": domain(&r.user_domain_id, &r.user_domain_name),
                "password": r.key.0,
            }}},
            "scope": {"project": {
                "name": project,
                "domain": domain(&r.project_domain_id, &r.project_domain_name),
            }},
        }}))
    }

    async fn v3(&self, http: &HttpClient) -> Result<Token, StoreError> {
        let base = self.reference.auth_address.trim_end_matches('/');
        let url = if base.ends_with("/v3") {
            format!("{base}/auth/tokens")
        } else {
            format!("{base}/v3/auth/tokens")
        };
        let body = Bytes::from(self.v3_body()?.to_string());
        let request = Request::builder()
            .method(Method::POST)
            .uri(&url)
            .header("content-type", "application/json")
            .body(UploadBody::bytes(body))
            .map_err(|e| self.invalid_address(e))?;
        let response = self.ask(http, request).await?;
        let value = response
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| self.misanswered("no X-Subject-Token in the answer"))?;
        let body = read_limited(response.into_body().boxed(), 4 << 20)
            .await
            .map_err(|e| self.misanswered(&e))?;
        let answer: Value =
            serde_json::from_slice(&body).map_err(|e| self.misanswered(&e.to_string()))?;
        let token = &answer["token"];
        let expires = token["expires_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .and_then(|at| {
                (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                    .to_std()
                    .ok()
            })
            .map(|left| Instant::now() + left);
        let storage_url = match &self.catalog.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => storage_url_in(&token["catalog"], &self.catalog).ok_or_else(|| {
                StoreError::Misconfigured {
                    store: self.store.clone(),
                    why: format!(
                        "Keystone's catalog has no {} endpoint ({}{}): set swift_store_endpoint \
                         or the region and endpoint type",
                        self.catalog.service_type,
                        self.catalog.endpoint_type,
                        self.catalog
                            .region
                            .as_deref()
                            .map(|r| format!(", region {r}"))
                            .unwrap_or_default()
                    ),
                }
            })?,
        };
        Ok(Token {
            value,
            storage_url: storage_url.trim_end_matches('/').to_owned(),
            expires,
            from_caller: false,
        })
    }
}

/// The URL of the first catalog endpoint of the configured service type, interface
/// (`publicURL` is v3's `public`) and region.
fn storage_url_in(catalog: &Value, wanted: &Catalog) -> Option<String> {
    let interface = wanted
        .endpoint_type
        .strip_suffix("URL")
        .unwrap_or(&wanted.endpoint_type);
    catalog
        .as_array()?
        .iter()
        .filter(|service| service["type"].as_str() == Some(wanted.service_type.as_str()))
        .flat_map(|service| service["endpoints"].as_array().into_iter().flatten())
        .find(|endpoint| {
            endpoint["interface"].as_str() == Some(interface)
                && wanted.region.as_deref().is_none_or(|region| {
                    endpoint["region_id"].as_str() == Some(region)
                        || endpoint["region"].as_str() == Some(region)
                })
        })
        .and_then(|endpoint| endpoint["url"].as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_gives_the_endpoint_of_the_wanted_interface_and_region() {
        let catalog = json!([
            {"type": "identity", "endpoints": [{"interface": "public", "region_id": "r1", "url": "http://k"}]},
            {"type": "object-store", "endpoints": [
                {"interface": "internal", "region_id": "r1", "url": "http://internal/v1/AUTH_p"},
                {"interface": "public", "region_id": "r2", "url": "http://r2/v1/AUTH_p"},
                {"interface": "public", "region_id": "r1", "region": "r1", "url": "http://r1/v1/AUTH_p"},
            ]},
        ]);
        let mut wanted = Catalog {
            endpoint: None,
            region: None,
            endpoint_type: "publicURL".into(),
            service_type: "object-store".into(),
        };
        assert_eq!(
            storage_url_in(&catalog, &wanted).as_deref(),
            Some("http://r2/v1/AUTH_p")
        );
        wanted.region = Some("r1".into());
        assert_eq!(
            storage_url_in(&catalog, &wanted).as_deref(),
            Some("http://r1/v1/AUTH_p")
        );
        wanted.endpoint_type = "internalURL".into();
        assert_eq!(
            storage_url_in(&catalog, &wanted).as_deref(),
            Some("http://internal/v1/AUTH_p")
        );
        wanted.service_type = "swift".into();
        assert_eq!(storage_url_in(&catalog, &wanted), None);
    }
}
