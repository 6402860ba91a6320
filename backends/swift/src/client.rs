//! Requests to Swift over the process's one HTTP stack: URLs in the account a token names, a
//! token renewed once when Swift refuses it, answers read whole or streamed, and Swift's
//! statuses as `StoreError` outcomes.

use std::sync::Arc;

use bytes::Bytes;
use glint_store::net::HttpsConnector;
use glint_store::StoreError;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::auth::{Auth, Token};
use glint_store::net::body::{StreamBody, UploadBody};

pub(crate) type HttpClient = hyper_util::client::legacy::Client<HttpsConnector, UploadBody>;

/// Answers read whole (listings, manifests, errors) stop at this size.
const ANSWER_LIMIT: usize = 64 << 20;

/// An answer read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// Answered to a request's own token (multi-tenant mode).
    pub(crate) from_caller: bool,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A container, or an object in one, with an optional query string.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) container: &'a str,
    pub(crate) object: Option<&'a str>,
    pub(crate) query: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub(crate) fn container(container: &'a str) -> Target<'a> {
        Target {
            container,
            object: None,
            query: None,
        }
    }

    pub(crate) fn object(container: &'a str, object: &'a str) -> Target<'a> {
        Target {
            container,
            object: Some(object),
            query: None,
        }
    }

    pub(crate) fn with_query(self, query: &'a str) -> Target<'a> {
        Target {
            query: Some(query),
            ..self
        }
    }

    fn url(&self, token: &Token) -> String {
        // An empty container addresses the account itself.
        let mut url = token.storage_url.clone();
        if !self.container.is_empty() {
            url.push('/');
            url.push_str(&encode_path(self.container));
        }
        if let Some(object) = self.object {
            url.push('/');
            url.push_str(&encode_path(object));
        }
        if let Some(query) = self.query {
            url.push('?');
            url.push_str(query);
        }
        url
    }
}

/// A path for a URL: every byte but unreserved characters and `/` percent-encoded.
pub(crate) fn encode_path(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` escapes decoded (as Swift reads `X-Object-Manifest`); anything else kept.
pub(crate) fn decode_path(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query value, `/` included.
pub(crate) fn encode_query(text: &str) -> String {
    encode_path(text).replace('/', "%2F")
}

/// A request that got no answer: an untrusted certificate is the operator's to fix, anything
/// else an outage.
pub(crate) fn transport_error(
    store: &str,
    error: &hyper_util::client::legacy::Error,
) -> StoreError {
    let text = glint_store::net::error_chain(error);
    if text.contains("certificate verify failed") {
        return StoreError::Misconfigured {
            store: store.to_owned(),
            why: "the Swift server's TLS certificate is not trusted (see swift_store_cacert)"
                .to_owned(),
        };
    }
    StoreError::Unavailable {
        store: store.to_owned(),
        retryable: true,
        source: text.into(),
    }
}

/// A body read whole, refused past `limit` bytes.
pub(crate) async fn read_limited(
    body: BoxBody<Bytes, hyper::Error>,
    limit: usize,
) -> Result<Bytes, String> {
    Limited::new(body, limit)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|e| e.to_string())
}

/// What Swift's answer to a request about `what` means, when it is not a success.
pub(crate) fn status_error(store: &str, what: &str, answer: &Answer) -> StoreError {
    let detail = || {
        let text = String::from_utf8_lossy(&answer.body);
        let text = text.trim();
        if text.is_empty() || text.len() > 300 {
            answer.status.to_string()
        } else {
            format!("{}: {text}", answer.status)
        }
    };
    match answer.status {
        StatusCode::NOT_FOUND => StoreError::NotFound(what.to_owned()),
        StatusCode::PRECONDITION_FAILED | StatusCode::CONFLICT => {
            StoreError::AlreadyExists(what.to_owned())
        }
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::INSUFFICIENT_STORAGE => {
            StoreError::StorageFull {
                store: store.to_owned(),
            }
        }
        // A request's own token: expired, or its project not let in by the container's ACL.
        StatusCode::UNAUTHORIZED if answer.from_caller => StoreError::Unauthenticated {
            store: store.to_owned(),
            source: format!("Swift answered {} for {what}", detail()).into(),
        },
        StatusCode::FORBIDDEN if answer.from_caller => StoreError::Forbidden {
            store: store.to_owned(),
            source: format!("Swift answered {} for {what}", detail()).into(),
        },
        // The store's token was refused even after a renewal, or its account may not do this.
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => StoreError::Misconfigured {
            store: store.to_owned(),
            why: format!(
                "Swift refused the store's credentials for {what}: {}",
                detail()
            ),
        },
        status if status.is_server_error() => StoreError::Unavailable {
            store: store.to_owned(),
            retryable: true,
            source: format!("Swift answered {} for {what}", detail()).into(),
        },
        _ => StoreError::Backend {
            store: store.to_owned(),
            source: format!("Swift answered {} for {what}", detail()).into(),
        },
    }
}

/// The HTTP side of the store.
#[derive(Debug)]
pub(crate) struct Swift {
    pub(crate) store: String,
    pub(crate) http: HttpClient,
    /// A connection per request, for streamed PUTs and auth requests: a pooled connection the
    /// server closes just as it is reused fails the request, a streamed body cannot be sent
    /// again, and auth servers often keep no connection alive (uWSGI's http-socket, seen
    /// here as resets on every other token request).
    pub(crate) unpooled: HttpClient,
}

impl Swift {
    fn request(
        &self,
        token: &Token,
        method: &Method,
        target: Target<'_>,
        headers: &[(&str, &str)],
        body: UploadBody,
    ) -> Result<Request<UploadBody>, StoreError> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(target.url(token))
            .header("x-auth-token", &token.value);
        // hyper sends no length for an empty body, and Swift wants one on every PUT.
        if let UploadBody::Full(bytes) = &body {
            if matches!(*method, Method::PUT | Method::POST) {
                request = request.header("content-length", bytes.as_ref().map_or(0, Bytes::len));
            }
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(body).map_err(|e| StoreError::Misconfigured {
            store: self.store.clone(),
            why: format!("cannot address Swift at {}: {e}", token.storage_url),
        })
    }

    /// Sends a request whose body can be sent again; on 401 the token is renewed and the
    /// request repeated once. Returns the answer's head and its body unread.
    async fn send(
        &self,
        auth: &Auth,
        method: Method,
        target: Target<'_>,
        headers: &[(&str, &str)],
        body: &Bytes,
    ) -> Result<(Response<Incoming>, bool), StoreError> {
        let mut renewed = false;
        loop {
            let token = auth.token(&self.unpooled).await?;
            let request = self.request(
                &token,
                &method,
                target,
                headers,
                UploadBody::bytes(body.clone()),
            )?;
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| transport_error(&self.store, &e))?;
            if response.status() == StatusCode::UNAUTHORIZED && !renewed && !token.from_caller {
                auth.forget(&token).await;
                renewed = true;
                continue;
            }
            return Ok((response, token.from_caller));
        }
    }

    /// A request answered whole.
    pub(crate) async fn call(
        &self,
        auth: &Auth,
        method: Method,
        target: Target<'_>,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Answer, StoreError> {
        let (response, from_caller) = self.send(auth, method, target, headers, &body).await?;
        answer(&self.store, response, from_caller).await
    }

    /// A GET whose body is streamed to the caller.
    pub(crate) async fn open(
        &self,
        auth: &Auth,
        target: Target<'_>,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>, StoreError> {
        self.send(auth, Method::GET, target, headers, &Bytes::new())
            .await
            .map(|(response, _)| response)
    }

    /// A PUT of streamed data, sent in the background; the answer comes once the body has
    /// ended (or failed). Never repeated: the data is not kept.
    pub(crate) fn put_stream(
        self: &Arc<Self>,
        token: &Token,
        target: Target<'_>,
        headers: &[(&str, &str)],
        body: StreamBody,
    ) -> Result<tokio::task::JoinHandle<Result<Answer, StoreError>>, StoreError> {
        let request = self.request(
            token,
            &Method::PUT,
            target,
            headers,
            UploadBody::Stream(body),
        )?;
        let swift = self.clone();
        let from_caller = token.from_caller;
        Ok(tokio::spawn(async move {
            let response = swift
                .unpooled
                .request(request)
                .await
                .map_err(|e| transport_error(&swift.store, &e))?;
            answer(&swift.store, response, from_caller).await
        }))
    }
}

async fn answer(
    store: &str,
    response: Response<Incoming>,
    from_caller: bool,
) -> Result<Answer, StoreError> {
    let (parts, body) = response.into_parts();
    let body = read_limited(body.boxed(), ANSWER_LIMIT)
        .await
        .map_err(|e| StoreError::Unavailable {
            store: store.to_owned(),
            retryable: true,
            source: format!("reading Swift's answer: {e}").into(),
        })?;
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
        from_caller,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries_are_encoded() {
        assert_eq!(
            encode_path("glint-segments/a b/0001"),
            "glint-segments/a%20b/0001"
        );
        assert_eq!(encode_path("ü?#%"), "%C3%BC%3F%23%25");
        assert_eq!(encode_query("glint-uploads/x"), "glint-uploads%2Fx");
        assert_eq!(decode_path("glance/a%20b-"), "glance/a b-");
        assert_eq!(decode_path("100%"), "100%");
    }
}
