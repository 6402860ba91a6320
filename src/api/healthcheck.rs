//! `/healthcheck` as oslo.middleware answers it in Glance: no authentication; 200 with the
//! backends' reasons (`OK`), or 503 with the failing ones (`DISABLED BY FILE`); `HEAD` gets
//! 204 or 503 without a body; `Accept: application/json` gets `{"detailed": .., "reasons":
//! [..]}` and `text/html` oslo's table. With `allowed_source_ranges` or
//! `ignore_proxied_requests`, a request the check does not take is answered as any path
//! outside the API is (the versions document), as oslo passes it on. Beside the
//! `[healthcheck]` backends, Glint reports a node whose metadata database does not answer
//! (down, or every pooled connection busy) as degraded, so that a load balancer stops sending
//! it requests it could only refuse.

use std::net::SocketAddr;
use std::path::Path;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Value};

use super::AppState;
use crate::config::{HealthBackend, HealthcheckConfig};

/// What one backend found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    available: bool,
    reason: &'static str,
    details: String,
    /// oslo.middleware's name for the backend (shown when `detailed`).
    class: &'static str,
}

/// The configured checks of this node.
#[derive(Debug)]
pub struct Health {
    config: HealthcheckConfig,
    /// The port this node serves on (`disable_by_files_ports` keys its files by it).
    port: u16,
}

impl Health {
    pub fn new(config: &HealthcheckConfig, port: u16) -> Health {
        Health {
            config: config.clone(),
            port,
        }
    }

    fn findings(&self) -> Vec<Finding> {
        self.config
            .backends
            .iter()
            .map(|backend| match backend {
                HealthBackend::DisableByFile(path) => {
                    disabled_by(path.as_deref(), "DisableByFileHealthcheck")
                }
                HealthBackend::DisableByFilesPorts(files) => {
                    let path = files.iter().find(|(p, _)| *p == self.port).map(|(_, f)| f);
                    disabled_by(path.map(|p| p.as_path()), "DisableByFilesPortsHealthcheck")
                }
                HealthBackend::EnableByFiles(paths) => match paths.iter().find(|p| !p.exists()) {
                    Some(missing) => Finding {
                        available: false,
                        reason: "FILE PATH MISSING",
                        details: format!("File path {} is missing", missing.display()),
                        class: "EnableByFilesHealthcheck",
                    },
                    None => Finding {
                        available: true,
                        reason: "OK",
                        details: "Specified file paths are available".to_owned(),
                        class: "EnableByFilesHealthcheck",
                    },
                },
            })
            .collect()
    }
}

/// `disable_by_file`: unavailable while `path` exists.
fn disabled_by(path: Option<&Path>, class: &'static str) -> Finding {
    match path {
        Some(path) if path.exists() => Finding {
            available: false,
            reason: "DISABLED BY FILE",
            details: format!("Path '{}' was found", path.display()),
            class,
        },
        Some(path) => Finding {
            available: true,
            reason: "OK",
            details: format!("Path '{}' was not found", path.display()),
            class,
        },
        None => Finding {
            available: true,
            reason: "OK",
            details: "No 'disable_by_file_path' configuration value specified".to_owned(),
            class,
        },
    }
}

/// The forms oslo offers, in its order of preference when qualities tie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Text,
    Html,
    Json,
}

/// The form the client's `Accept` prefers; text when it accepts none.
fn form(headers: &HeaderMap) -> Form {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Form::Text;
    };
    let offers = [
        (Form::Text, "text/plain"),
        (Form::Html, "text/html"),
        (Form::Json, "application/json"),
    ];
    let mut best = (Form::Text, 0.0);
    for (form, media_type) in offers {
        let quality = super::error_body::accept_quality(accept, media_type);
        if quality > best.1 {
            best = (form, quality);
        }
    }
    best.0
}

/// Headers a proxy adds (oslo's list, as `X-` headers).
const PROXY_HEADERS: [&str; 5] = [
    "x-forwarded",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-for",
    "x-forwarded-prefix",
];

impl Health {
    /// Whether the check answers this request, or passes it on.
    fn takes(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
        let ranges = &self.config.allowed_source_ranges;
        if !ranges.is_empty() {
            match peer {
                Some(peer) if ranges.iter().any(|r| r.contains(peer.ip())) => {}
                _ => return false,
            }
        }
        !(self.config.ignore_proxied_requests
            && PROXY_HEADERS
                .iter()
                .any(|name| headers.get(*name).is_some_and(|v| !v.is_empty())))
    }
}

pub async fn answer(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(peer))| peer);
    if !state.health.takes(peer, &headers) {
        return super::versions::unknown_version(State(state), headers).await;
    }
    let mut findings = state.health.findings();
    if let Err(e) = state.images.health().await {
        tracing::warn!(error = %e, "health check: degraded");
        findings.push(Finding {
            available: false,
            reason: "degraded: the metadata database does not answer",
            details: e.to_string(),
            class: "DatabaseHealthcheck",
        });
    }
    let healthy = findings.iter().all(|f| f.available);
    if method == Method::HEAD {
        let status = if healthy {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        )
            .into_response();
    }
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let form = form(&headers);
    if form == Form::Html {
        return (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
            html(&findings, state.health.config.detailed),
        )
            .into_response();
    }
    if form == Form::Json {
        let reasons: Vec<Value> = if state.health.config.detailed {
            findings
                .iter()
                .map(|f| json!({"reason": f.reason, "details": f.details, "class": f.class}))
                .collect()
        } else {
            findings.iter().map(|f| json!(f.reason)).collect()
        };
        let mut body = json!({"detailed": state.health.config.detailed, "reasons": reasons});
        if state.health.config.detailed {
            body["now"] = json!(chrono::Utc::now().naive_utc().to_string());
            body["platform"] = json!(format!(
                "{}-{}",
                std::env::consts::OS,
                std::env::consts::ARCH
            ));
        }
        let text = serde_json::to_string_pretty(&body).unwrap_or_default();
        return (
            status,
            [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
            text,
        )
            .into_response();
    }
    let text = findings
        .iter()
        .map(|f| f.reason)
        .collect::<Vec<_>>()
        .join("\n");
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        text,
    )
        .into_response()
}

/// oslo's HTML table of the findings (with `detailed`, each backend's class and details).
fn html(findings: &[Finding], detailed: bool) -> String {
    let mut page = String::from("<HTML>\n<HEAD><TITLE>Healthcheck Status</TITLE></HEAD>\n<BODY>\n");
    if detailed {
        page.push_str(&format!(
            "<H1>Server status</H1>\n<B>Current time:</B><PRE>{}</PRE>\n<B>Platform:</B><PRE>{}-{}</PRE>\n<HR></HR>\n",
            chrono::Utc::now().naive_utc(),
            std::env::consts::OS,
            std::env::consts::ARCH
        ));
    }
    page.push_str(&format!(
        "<H2>Result of {} checks:</H2>\n<TABLE bgcolor=\"#ffffff\" border=\"1\">\n<TBODY>\n<TR>\n",
        findings.len()
    ));
    page.push_str(if detailed {
        "<TH>\nKind\n</TH>\n<TH>\nReason\n</TH>\n<TH>\nDetails\n</TH>\n</TR>\n"
    } else {
        "<TH>\nReason\n</TH>\n</TR>\n"
    });
    for finding in findings {
        page.push_str("<TR>\n");
        if detailed {
            page.push_str(&format!("    <TD>{}</TD>\n", escape(finding.class)));
        }
        page.push_str(&format!("    <TD>{}</TD>\n", escape(finding.reason)));
        if detailed {
            page.push_str(&format!("    <TD>{}</TD>\n", escape(&finding.details)));
        }
        page.push_str("</TR>\n");
    }
    page.push_str("</TBODY>\n</TABLE>\n<HR></HR>\n</BODY>\n</HTML>");
    page
}

/// Jinja's `e` filter: a path in the details may hold any character.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_follows_accept_with_text_first_on_ties() {
        let accept = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, value.parse().expect("header"));
            form(&headers)
        };
        assert_eq!(form(&HeaderMap::new()), Form::Text);
        assert_eq!(accept("application/json"), Form::Json);
        assert_eq!(accept("*/*"), Form::Text);
        assert_eq!(accept("text/plain, application/json"), Form::Text);
        assert_eq!(accept("text/plain;q=0.5, application/json"), Form::Json);
        assert_eq!(accept("text/html"), Form::Html);
        assert_eq!(
            accept("text/html;q=0.5, application/json;q=0.6"),
            Form::Json
        );
        assert_eq!(accept("image/png"), Form::Text);
    }

    #[test]
    fn html_escapes_what_a_backend_found() {
        let finding = Finding {
            available: false,
            reason: "DISABLED BY FILE",
            details: "Path '/run/<x>&y' was found".to_owned(),
            class: "DisableByFileHealthcheck",
        };
        let page = html(std::slice::from_ref(&finding), true);
        assert!(
            page.contains("<TD>Path &#39;/run/&lt;x&gt;&amp;y&#39; was found</TD>"),
            "{page}"
        );
        assert!(page.contains("<H2>Result of 1 checks:</H2>"));
        let brief = html(&[finding], false);
        assert!(
            brief.contains("    <TD>DISABLED BY FILE</TD>\n</TR>"),
            "{brief}"
        );
        assert!(!brief.contains("DisableByFileHealthcheck"));
    }

    #[test]
    fn files_disable_and_enable_a_node() {
        let dir = tempfile::tempdir().expect("dir");
        let off = dir.path().join("off");
        let ready = dir.path().join("ready");
        let health = Health::new(
            &HealthcheckConfig {
                backends: vec![
                    HealthBackend::DisableByFile(Some(off.clone())),
                    HealthBackend::DisableByFilesPorts(vec![(9292, off.clone())]),
                    HealthBackend::EnableByFiles(vec![ready.clone()]),
                ],
                ..HealthcheckConfig::default()
            },
            9393,
        );
        let reasons = |h: &Health| h.findings().iter().map(|f| f.reason).collect::<Vec<_>>();
        assert_eq!(reasons(&health), ["OK", "OK", "FILE PATH MISSING"]);
        std::fs::write(&ready, b"").expect("ready");
        std::fs::write(&off, b"").expect("off");
        // The port's file is another port's: only disable_by_file sees it.
        assert_eq!(reasons(&health), ["DISABLED BY FILE", "OK", "OK"]);
    }
}
