//! A vSphere API session: SOAP calls over HTTPS with the session cookie, a login when there is
//! none, and a new login when the server says the session has ended (it expired while idle,
//! or the server restarted), retried as `vmware_api_retry_count` allows.

use std::time::Duration;

use bytes::Bytes;
use glint_store::net::body::UploadBody;
use glint_store::net::{error_chain, HttpsConnector};
use glint_store::StoreError;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use tokio::sync::Mutex;

use crate::config::VmwareConfig;
use crate::xml::{self, escape, Node};

pub(crate) type HttpClient = hyper_util::client::legacy::Client<HttpsConnector, UploadBody>;

/// The cookie vCenter and ESXi keep a session in.
pub(crate) const SESSION_COOKIE: &str = "vmware_soap_session";
/// The API version asked for: vSphere 6.5 and everything since answer it.
const SOAP_ACTION: &str = "\"urn:vim25/6.5\"";
/// The most of a SOAP answer read (datastore listings are the long ones).
const ANSWER_LIMIT: usize = 64 << 20;
/// How long one SOAP call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A managed object reference: its type and value (`Datastore`, `datastore-12`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MoRef {
    pub(crate) kind: String,
    pub(crate) value: String,
}

impl MoRef {
    pub(crate) fn new(kind: &str, value: &str) -> MoRef {
        MoRef {
            kind: kind.to_owned(),
            value: value.to_owned(),
        }
    }

    /// From an element such as `<returnval type="Task">task-1</returnval>`.
    pub(crate) fn from_node(node: &Node) -> Option<MoRef> {
        let kind = node.attribute("type")?;
        (!node.text.is_empty()).then(|| MoRef::new(kind, &node.text))
    }

    /// The reference as the element `name` of a request.
    pub(crate) fn xml(&self, name: &str) -> String {
        format!(
            "<{name} type=\"{}\">{}</{name}>",
            escape(&self.kind),
            escape(&self.value)
        )
    }
}

/// A fault the server answered with: its type (`NotAuthenticated`, `FileNotFound`, …) and
/// message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    pub(crate) kind: String,
    pub(crate) message: String,
}

impl Fault {
    /// From a SOAP `Fault` element or a task's `info.error` (a `LocalizedMethodFault`).
    pub(crate) fn from_node(node: &Node) -> Fault {
        let detail = node
            .path(&["detail"])
            .and_then(|d| d.children.first())
            .or_else(|| node.child("fault"));
        let kind = detail
            .and_then(|d| {
                d.xsi_type()
                    .map(str::to_owned)
                    .or_else(|| d.name.strip_suffix("Fault").map(str::to_owned))
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let message = node
            .text_at(&["faultstring"])
            .or_else(|| node.text_at(&["localizedMessage"]))
            .unwrap_or_default()
            .to_owned();
        Fault { kind, message }
    }

    pub(crate) fn is(&self, kind: &str) -> bool {
        self.kind == kind
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            write!(f, "vSphere fault {}", self.kind)
        } else {
            write!(f, "vSphere fault {}: {}", self.kind, self.message)
        }
    }
}

/// What a call can end in.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The server answered with a fault.
    Fault(Fault),
    /// Anything else, already shaped for the data path.
    Store(StoreError),
}

impl CallError {
    pub(crate) fn into_store(self, store: &str) -> StoreError {
        match self {
            CallError::Fault(fault) => fault_error(store, fault),
            CallError::Store(e) => e,
        }
    }
}

/// The store error for a fault nothing more specific handled.
pub(crate) fn fault_error(store: &str, fault: Fault) -> StoreError {
    match fault.kind.as_str() {
        "InvalidLogin" | "NoPermission" | "NotAuthenticated" => StoreError::Misconfigured {
            store: store.to_owned(),
            why: fault.to_string(),
        },
        "NoDiskSpace" | "InsufficientResourcesFault" => StoreError::StorageFull {
            store: store.to_owned(),
        },
        _ => StoreError::Backend {
            store: store.to_owned(),
            source: fault.to_string().into(),
        },
    }
}

/// The references the service content hands out.
#[derive(Debug, Clone)]
pub(crate) struct ServiceContent {
    pub(crate) session_manager: MoRef,
    pub(crate) property_collector: MoRef,
    pub(crate) search_index: MoRef,
    pub(crate) file_manager: MoRef,
}

#[derive(Debug, Default)]
struct SessionState {
    content: Option<ServiceContent>,
    cookie: Option<String>,
    /// Counts logins, so that callers that saw the same session end log in once between them.
    generation: u64,
}

/// The session with one server.
#[derive(Debug)]
pub(crate) struct Vim {
    store: String,
    /// `https://host[:port]`.
    pub(crate) base: String,
    username: String,
    password: String,
    retries: u32,
    client: HttpClient,
    state: Mutex<SessionState>,
}

/// The session a request was sent with: its cookie and login generation.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) cookie: String,
    generation: u64,
    pub(crate) content: ServiceContent,
}

impl Vim {
    pub(crate) fn new(config: &VmwareConfig, client: HttpClient) -> Vim {
        Vim {
            store: config.name.clone(),
            base: format!("https://{}", config.server_host),
            username: config.username.clone(),
            password: config.password.0.clone(),
            retries: config.api_retry_count.max(1),
            client,
            state: Mutex::new(SessionState::default()),
        }
    }

    /// How many times a call is tried.
    pub(crate) fn attempts(&self) -> u32 {
        self.retries
    }

    /// The current session, logging in if there is none.
    pub(crate) async fn session(&self) -> Result<Session, StoreError> {
        let mut state = self.state.lock().await;
        if let (Some(cookie), Some(content)) = (&state.cookie, &state.content) {
            return Ok(Session {
                cookie: cookie.clone(),
                generation: state.generation,
                content: content.clone(),
            });
        }
        self.login(&mut state).await
    }

    /// Drops `stale` (a session the server no longer knows) and logs in again, unless another
    /// caller already did.
    pub(crate) async fn renew(&self, stale: &Session) -> Result<Session, StoreError> {
        let mut state = self.state.lock().await;
        if state.generation == stale.generation {
            state.cookie = None;
        }
        drop(state);
        self.session().await
    }

    async fn login(&self, state: &mut SessionState) -> Result<Session, StoreError> {
        let content = match &state.content {
            Some(content) => content.clone(),
            None => {
                let body = "<RetrieveServiceContent xmlns=\"urn:vim25\">\
                     <_this type=\"ServiceInstance\">ServiceInstance</_this>\
                     </RetrieveServiceContent>";
                let (answer, _) = self
                    .post(body, None)
                    .await
                    .map_err(|e| self.call_error(e))?;
                let content = service_content(&answer).ok_or_else(|| StoreError::Backend {
                    store: self.store.clone(),
                    source: "the server's service content names no session manager".into(),
                })?;
                state.content = Some(content.clone());
                content
            }
        };
        let body = format!(
            "<Login xmlns=\"urn:vim25\">{}<userName>{}</userName><password>{}</password></Login>",
            content.session_manager.xml("_this"),
            escape(&self.username),
            escape(&self.password)
        );
        let (_, cookie) = self.post(&body, None).await.map_err(|e| match e {
            CallError::Fault(fault) if fault.is("InvalidLogin") => StoreError::Misconfigured {
                store: self.store.clone(),
                why: format!("the server refused the login of {}: {fault}", self.username),
            },
            e => self.call_error(e),
        })?;
        let cookie = cookie.ok_or_else(|| StoreError::Backend {
            store: self.store.clone(),
            source: format!("the login answer sets no {SESSION_COOKIE} cookie").into(),
        })?;
        state.cookie = Some(cookie.clone());
        state.generation += 1;
        tracing::debug!(store = %self.store, "logged in to vSphere");
        Ok(Session {
            cookie,
            generation: state.generation,
            content,
        })
    }

    /// Calls the operation whose body element is `body(content)`, logging in again when the
    /// session has ended and trying again on a dropped connection.
    pub(crate) async fn call(
        &self,
        body: impl Fn(&ServiceContent) -> String,
    ) -> Result<Node, CallError> {
        self.call_expecting(body, |_| true).await
    }

    /// `call`, for reads that the property collector answers without a fault when the session
    /// has ended (each property in a `missingSet`, or no object at all): an answer `complete`
    /// refuses is asked again once with a new session.
    pub(crate) async fn call_expecting(
        &self,
        body: impl Fn(&ServiceContent) -> String,
        complete: impl Fn(&Node) -> bool,
    ) -> Result<Node, CallError> {
        let mut session = self.session().await.map_err(CallError::Store)?;
        let mut attempt = 1;
        let mut asked_again = false;
        loop {
            let error = match self
                .post(&body(&session.content), Some(&session.cookie))
                .await
            {
                Ok((answer, _)) if complete(&answer) || asked_again => return Ok(answer),
                Ok(_) => {
                    asked_again = true;
                    session = self.renew(&session).await.map_err(CallError::Store)?;
                    continue;
                }
                Err(error) => error,
            };
            if attempt >= self.retries {
                return Err(error);
            }
            match &error {
                CallError::Fault(fault) if fault.is("NotAuthenticated") => {
                    session = self.renew(&session).await.map_err(CallError::Store)?;
                }
                CallError::Store(StoreError::Unavailable {
                    retryable: true, ..
                }) => {
                    // The same session again: a server that restarted meanwhile says it does
                    // not know it (`NotAuthenticated`), and the next attempt logs in.
                    tokio::time::sleep(backoff(attempt)).await;
                }
                _ => return Err(error),
            }
            attempt += 1;
        }
    }

    fn call_error(&self, error: CallError) -> StoreError {
        error.into_store(&self.store)
    }

    /// One SOAP request: the answer's body element, and the session cookie it set.
    async fn post(
        &self,
        operation: &str,
        cookie: Option<&str>,
    ) -> Result<(Node, Option<String>), CallError> {
        let envelope = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
             xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
             <soapenv:Body>{operation}</soapenv:Body></soapenv:Envelope>"
        );
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/sdk", self.base))
            .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("SOAPAction", SOAP_ACTION);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("{SESSION_COOKIE}={cookie}"));
        }
        let request = request
            .body(UploadBody::bytes(Bytes::from(envelope)))
            .map_err(|e| self.backend(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| self.unavailable(error_chain(&e)))?;
            let (parts, body) = response.into_parts();
            let bytes = Limited::new(body, ANSWER_LIMIT)
                .collect()
                .await
                .map_err(|e| self.unavailable(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, CallError>((parts, bytes))
        };
        let (parts, bytes) = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| self.unavailable(format!("no answer in {CALL_TIMEOUT:?}")))??;
        let set_cookie = parts
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(session_cookie);
        let root = xml::parse(&bytes).map_err(|e| {
            if parts.status.is_success() || parts.status == StatusCode::INTERNAL_SERVER_ERROR {
                self.backend(format!("unreadable SOAP answer ({}): {e}", parts.status))
            } else {
                self.unavailable(format!("the SDK answered {}", parts.status))
            }
        })?;
        let body = root
            .child("Body")
            .and_then(|b| b.children.first())
            .ok_or_else(|| {
                self.backend(format!("a SOAP answer without a body ({})", parts.status))
            })?;
        if body.name == "Fault" {
            return Err(CallError::Fault(Fault::from_node(body)));
        }
        Ok((body.clone(), set_cookie))
    }

    fn backend(&self, why: String) -> CallError {
        CallError::Store(StoreError::Backend {
            store: self.store.clone(),
            source: why.into(),
        })
    }

    fn unavailable(&self, why: String) -> CallError {
        CallError::Store(StoreError::Unavailable {
            store: self.store.clone(),
            retryable: true,
            source: why.into(),
        })
    }
}

/// Waits growing from 200 ms to 5 s between attempts.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.min(5)).min(5_000))
}

/// `vmware_soap_session=<value>` out of a `Set-Cookie` header.
fn session_cookie(header: &str) -> Option<String> {
    let pair = header.split(';').next()?.trim();
    let (name, value) = pair.split_once('=')?;
    (name.trim() == SESSION_COOKIE).then(|| value.trim().trim_matches('"').to_owned())
}

fn service_content(answer: &Node) -> Option<ServiceContent> {
    let content = answer.child("returnval")?;
    let reference = |name: &str| content.child(name).and_then(MoRef::from_node);
    Some(ServiceContent {
        session_manager: reference("sessionManager")?,
        property_collector: reference("propertyCollector")?,
        search_index: reference("searchIndex")?,
        file_manager: reference("fileManager")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_read_from_soap_and_tasks() {
        let soap = xml::parse(
            br#"<Fault><faultcode>ServerFaultCode</faultcode><faultstring>gone</faultstring>
            <detail><NotAuthenticatedFault xmlns:xsi="x" xsi:type="NotAuthenticated"/></detail></Fault>"#,
        )
        .expect("xml");
        let fault = Fault::from_node(&soap);
        assert_eq!(
            (fault.kind.as_str(), fault.message.as_str()),
            ("NotAuthenticated", "gone")
        );
        let task = xml::parse(
            br#"<error><fault xmlns:xsi="x" xsi:type="FileAlreadyExists"><file>f</file></fault>
            <localizedMessage>exists</localizedMessage></error>"#,
        )
        .expect("xml");
        let fault = Fault::from_node(&task);
        assert_eq!(
            (fault.kind.as_str(), fault.message.as_str()),
            ("FileAlreadyExists", "exists")
        );
        let bare =
            xml::parse(b"<Fault><detail><FileNotFoundFault/></detail></Fault>").expect("xml");
        assert!(Fault::from_node(&bare).is("FileNotFound"));
    }

    #[test]
    fn the_session_cookie_is_found() {
        assert_eq!(
            session_cookie("vmware_soap_session=\"52a1\"; Path=/; HttpOnly; Secure"),
            Some("52a1".to_owned())
        );
        assert_eq!(session_cookie("other=1; Path=/"), None);
    }
}
