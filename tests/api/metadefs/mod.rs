//! The metadata definitions API (`/v2/metadefs/…`), as Glance 33 answers it, on every
//! database, for an administrator, a member and a reader of the owning project and a member
//! and a reader of another project.

mod glance_rows;
mod namespaces;
mod objects;
mod policy;
mod properties;
mod resource_types;
mod schemas;
mod tags;

use axum::body::Body;
use axum::http::Method;
use serde_json::{json, Value};

use crate::helpers::{TestApp, TestResponse};

pub const TRUSTED: &str = "[paste_deploy]\nflavor = trusted-auth\n";

/// Who asks: a role in a project (Keystone's implied roles follow from it).
#[derive(Debug, Clone, Copy)]
pub struct Persona {
    pub project: &'static str,
    pub role: &'static str,
}

pub const ADMIN: Persona = Persona {
    project: "owner",
    role: "admin",
};
pub const MEMBER: Persona = Persona {
    project: "owner",
    role: "member",
};
pub const READER: Persona = Persona {
    project: "owner",
    role: "reader",
};
pub const OTHER_MEMBER: Persona = Persona {
    project: "other",
    role: "member",
};
pub const OTHER_READER: Persona = Persona {
    project: "other",
    role: "reader",
};

pub async fn call(
    app: &TestApp,
    who: Persona,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> TestResponse {
    call_with(app, who, method, path, body, &[]).await
}

pub async fn call_with(
    app: &TestApp,
    who: Persona,
    method: Method,
    path: &str,
    body: Option<Value>,
    extra: &[(&str, &str)],
) -> TestResponse {
    let mut headers = vec![
        ("x-identity-status", "Confirmed"),
        ("x-project-id", who.project),
        ("x-user-id", "user"),
        ("x-roles", who.role),
        ("content-type", "application/json"),
        ("accept", "application/json"),
    ];
    headers.extend_from_slice(extra);
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    app.request(method, path, &headers, body).await
}

/// A raw body (malformed JSON and the like).
pub async fn call_raw(
    app: &TestApp,
    who: Persona,
    method: Method,
    path: &str,
    body: &'static str,
) -> TestResponse {
    let headers = [
        ("x-identity-status", "Confirmed"),
        ("x-project-id", who.project),
        ("x-user-id", "user"),
        ("x-roles", who.role),
        ("content-type", "application/json"),
        ("accept", "application/json"),
    ];
    app.request(method, path, &headers, Body::from(body)).await
}

pub async fn get(app: &TestApp, who: Persona, path: &str) -> TestResponse {
    call(app, who, Method::GET, path, None).await
}

pub async fn post(app: &TestApp, who: Persona, path: &str, body: Value) -> TestResponse {
    call(app, who, Method::POST, path, Some(body)).await
}

pub async fn put(app: &TestApp, who: Persona, path: &str, body: Value) -> TestResponse {
    call(app, who, Method::PUT, path, Some(body)).await
}

pub async fn delete(app: &TestApp, who: Persona, path: &str) -> TestResponse {
    call(app, who, Method::DELETE, path, None).await
}

/// Creates a namespace as the owning project's administrator.
pub async fn namespace(app: &TestApp, body: Value) -> Value {
    let created = post(app, ADMIN, "/v2/metadefs/namespaces", body).await;
    created.assert_status(201);
    created.json()
}

/// A private namespace of the owning project with one of everything.
pub async fn furnished(app: &TestApp, name: &str, visibility: &str) -> Value {
    namespace(
        app,
        json!({
            "namespace": name,
            "display_name": "Furnished",
            "description": "One of everything",
            "visibility": visibility,
            "resource_type_associations": [
                {"name": "OS::Glance::Image", "prefix": "hw_", "properties_target": "image"}
            ],
            "properties": {
                "cpu_policy": {"title": "CPU policy", "type": "string", "enum": ["shared", "dedicated"]}
            },
            "objects": [{
                "name": "Watchdog",
                "description": "A watchdog",
                "required": ["action"],
                "properties": {"action": {"title": "Action", "type": "string"}}
            }],
            "tags": [{"name": "alpha"}, {"name": "beta"}]
        }),
    )
    .await
}

/// The 403 body of a refused rule.
pub fn refused(rule: &str) -> String {
    format!("You are not authorized to complete {rule} action.")
}

pub fn names(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["name"].as_str().or(item["namespace"].as_str()))
        .map(str::to_owned)
        .collect()
}
