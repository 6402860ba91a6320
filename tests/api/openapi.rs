//! The OpenAPI document: served as committed, well-formed, and describing exactly the routes
//! the router has (no route undocumented, no documented route missing).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{Backend, TestApp};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn committed() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    std::fs::read_to_string(path).expect("docs/openapi.json")
}

/// `(method, path)` of every `.route("…", get(…).post(…))` in `src/api/router.rs`.
fn routed() -> BTreeSet<(String, String)> {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/router.rs"))
        .expect("router.rs");
    let mut routes = BTreeSet::new();
    for chunk in source.split(".route(").skip(1) {
        let chunk = chunk.trim_start();
        let Some(rest) = chunk.strip_prefix('"') else {
            continue;
        };
        let Some((path, rest)) = rest.split_once('"') else {
            continue;
        };
        // The handler expression runs to the parenthesis closing `.route(`.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map_or(rest.len(), |(i, _)| i);
        let handlers = &rest[..end];
        for method in METHODS {
            let called = handlers.match_indices(&format!("{method}(")).any(|(i, _)| {
                i == 0
                    || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric()
                        && handlers.as_bytes()[i - 1] != b'_'
                        && handlers.as_bytes()[i - 1] != b':'
            });
            if called {
                routes.insert((method.to_owned(), path.to_owned()));
            }
        }
    }
    routes
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                operations.insert((method.to_owned(), path.clone()));
            }
        }
    }
    operations
}

/// Every `$ref` names something under `components`.
fn dangling_refs(doc: &Value, node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                let pointer = target.trim_start_matches('#');
                if doc.pointer(pointer).is_none() {
                    out.push(target.clone());
                }
            }
            map.values().for_each(|v| dangling_refs(doc, v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| dangling_refs(doc, v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    let app = TestApp::start(Backend::Sqlite, "").await;
    let response = app.get("/openapi.json").await;
    response.assert_status(200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.text(), committed());
    // Like the versions document it needs no identity, even where the API does.
    let trusted = TestApp::start(Backend::Sqlite, "[paste_deploy]\nflavor = trusted-auth\n").await;
    trusted.get("/v2/images").await.assert_status(401);
    trusted.get("/openapi.json").await.assert_status(200);
}

#[test]
fn the_document_describes_exactly_the_routes_served() {
    let doc: Value = serde_json::from_str(&committed()).expect("docs/openapi.json is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let routed = routed();
    assert!(routed.len() > 30, "the router parse found only {routed:?}");
    let documented = documented(&doc);
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from docs/openapi.json: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );
}

#[test]
fn every_reference_resolves_and_every_operation_is_named() {
    let doc: Value = serde_json::from_str(&committed()).expect("docs/openapi.json is JSON");
    let mut dangling = Vec::new();
    dangling_refs(&doc, &doc, &mut dangling);
    assert!(dangling.is_empty(), "unresolved references: {dangling:?}");
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                let id = operation["operationId"].as_str().unwrap_or_default();
                assert!(!id.is_empty(), "{method} {path} has no operationId");
                assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
                assert!(
                    operation["responses"]
                        .as_object()
                        .is_some_and(|r| !r.is_empty()),
                    "{method} {path} has no responses"
                );
            }
        }
    }
}
