//! A service's own session with Keystone: it signs in with a password (scoped to a project or
//! to the system), keeps the token until shortly before it expires, and makes calls bounded
//! in time, each repeated once on a connection the server dropped. Token validation and the
//! unified limits both use one.

use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use glint_store::net::{error_chain, HttpsConnector};
use http_body_util::{BodyExt, Full, Limited};
use hyper::http::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use serde_json::{json, Value};

use crate::config::keystone::{Credentials, Domain, SessionScope};

/// The largest answer read from Keystone (a token with a big catalog is tens of KiB).
const MAX_ANSWER: usize = 8 << 20;
/// The service's own token is renewed when it has less than this left.
const TOKEN_MARGIN: Duration = Duration::from_secs(120);

/// An answer from Keystone.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

#[derive(Debug)]
struct Token {
    value: String,
    /// When it should be renewed (its expiry less a margin, on the process's clock).
    renew_at: Instant,
}

#[derive(Debug)]
pub(crate) struct Session {
    /// `…/v3`.
    identity_url: String,
    credentials: Credentials,
    /// The configuration section the credentials come from, for messages.
    section: &'static str,
    timeout: Duration,
    http: Client<HttpsConnector, Full<Bytes>>,
    token: tokio::sync::Mutex<Option<Token>>,
}

impl Session {
    pub(crate) fn new(
        identity_url: String,
        credentials: Credentials,
        section: &'static str,
        timeout: Duration,
        connector: HttpsConnector,
    ) -> Session {
        Session {
            identity_url,
            credentials,
            section,
            timeout,
            http: glint_store::net::client(connector),
            token: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) fn identity_url(&self) -> &str {
        &self.identity_url
    }

    /// The service's token, signed in anew when missing, close to expiry, or `renew`.
    pub(crate) async fn token(&self, renew: bool) -> Result<String, String> {
        let mut current = self.token.lock().await;
        if let Some(token) = current.as_ref() {
            if !renew && Instant::now() < token.renew_at {
                return Ok(token.value.clone());
            }
        }
        let c = &self.credentials;
        let domain = |d: &Domain| match d {
            Domain::Id(id) => json!({ "id": id }),
            Domain::Name(name) => json!({ "name": name }),
        };
        let scope = match &c.scope {
            SessionScope::Project { name, domain: d } => {
                json!({"project": {"name": name, "domain": domain(d)}})
            }
            SessionScope::System => json!({"system": {"all": true}}),
        };
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": c.username,
                "domain": domain(&c.user_domain),
                "password": c.password.0,
            }}},
            "scope": scope,
        }});
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/auth/tokens?nocatalog", self.identity_url))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| format!("[{}] auth_url: {e}", self.section))?;
        let answer = self.send(request).await?;
        if answer.status != StatusCode::CREATED {
            return Err(format!(
                "Keystone answered {} to the service's sign-in as {} (check [{}] username, \
                 password and scope)",
                answer.status, c.username, self.section
            ));
        }
        let value = answer
            .headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .ok_or("Keystone's sign-in answer has no X-Subject-Token")?
            .to_owned();
        let body: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| format!("Keystone's sign-in answer: {e}"))?;
        let expires = body["token"]["expires_at"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .ok_or("Keystone's sign-in answer has no expires_at")?;
        let left = (expires.with_timezone(&Utc) - Utc::now())
            .to_std()
            .unwrap_or_default()
            .saturating_sub(TOKEN_MARGIN);
        *current = Some(Token {
            value: value.clone(),
            renew_at: Instant::now() + left,
        });
        Ok(value)
    }

    /// `GET path` (under the identity URL) with the service's token, renewed once if Keystone
    /// no longer takes it; the status and the JSON body.
    pub(crate) async fn get_json(
        &self,
        path_and_query: &str,
    ) -> Result<(StatusCode, Value), String> {
        for renewed in [false, true] {
            let token = self.token(renewed).await?;
            let request = Request::get(format!("{}{path_and_query}", self.identity_url))
                .header("x-auth-token", token)
                .header("accept", "application/json")
                .body(Full::new(Bytes::new()))
                .map_err(|e| format!("{path_and_query}: {e}"))?;
            let answer = self.send(request).await?;
            if answer.status == StatusCode::UNAUTHORIZED && !renewed {
                continue;
            }
            let body = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            return Ok((answer.status, body));
        }
        Err("Keystone refused the service's renewed token".to_owned())
    }

    /// One call to Keystone, bounded by the timeout from start to last byte. A call that
    /// fails before any answer is made once more on a new connection: a pooled connection the
    /// server closed just as it was reused (uWSGI's http-socket does so) says nothing about
    /// Keystone, and every call made here (a validation, a sign-in, a read) may be repeated.
    pub(crate) async fn send(&self, request: Request<Full<Bytes>>) -> Result<Answer, String> {
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
                            self.identity_url,
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
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| {
                format!(
                    "Keystone at {} did not answer within {} s",
                    self.identity_url,
                    self.timeout.as_secs()
                )
            })?
    }
}
