//! `/healthcheck` as oslo.middleware answers it in Glance: no authentication; 200 with the
//! backends' reasons (`OK`), or 503 with the failing ones (`DISABLED BY FILE`); `HEAD` gets
//! 204 or 503 without a body; `Accept: application/json` gets `{"detailed": .., "reasons":
//! [..]}`. Beside the `[healthcheck]` backends, Glint reports a node whose metadata database
//! does not answer (down, or every pooled connection busy) as degraded, so that a load
//! balancer stops sending it requests it could only refuse.

use std::path::Path;

use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
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

/// Whether the client would rather have JSON than text (oslo's offers: text first).
fn wants_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let quality = |offer: &str| super::error_body::accept_quality(accept, offer);
    let json = quality("application/json");
    json > 0.0 && json > quality("text/plain")
}

pub async fn answer(State(state): State<AppState>, method: Method, headers: HeaderMap) -> Response {
    let mut findings = state.health.findings();
    if let Err(e) = state.images.health().await {
        tracing::warn!(error = ?e.to_string(), "health check: degraded");
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
    if wants_json(&headers) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_only_when_preferred_to_text() {
        let accept = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, value.parse().expect("header"));
            wants_json(&headers)
        };
        assert!(!wants_json(&HeaderMap::new()));
        assert!(accept("application/json"));
        assert!(!accept("*/*"));
        assert!(!accept("text/plain, application/json"));
        assert!(accept("text/plain;q=0.5, application/json"));
        assert!(!accept("text/html"));
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
                detailed: false,
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
