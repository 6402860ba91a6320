//! JSON-patch bodies of `PATCH /v2/images/{id}`, in both media types Glance accepts, parsed into
//! a list of `Change`s. Applying them belongs to `images.rs`, which knows the image rules.

use serde_json::Value;

#[cfg(test)]
use super::error::Refusal;
use super::error::{DomainError, DomainResult};

/// The current media type (RFC 6902 subset).
pub const MEDIA_TYPE_V2_1: &str = "application/openstack-images-v2.1-json-patch";
/// The deprecated form `{"replace": "/name", "value": …}`.
pub const MEDIA_TYPE_V2_0: &str = "application/openstack-images-v2.0-json-patch";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchDialect {
    V2_1,
    V2_0,
}

impl PatchDialect {
    /// The dialect for a `Content-Type` value (parameters such as `charset` ignored).
    pub fn from_content_type(content_type: &str) -> Option<PatchDialect> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case(MEDIA_TYPE_V2_1) {
            Some(PatchDialect::V2_1)
        } else if media.eq_ignore_ascii_case(MEDIA_TYPE_V2_0) {
            Some(PatchDialect::V2_0)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Replace,
    Remove,
}

impl Op {
    fn parse(name: &str) -> Option<Op> {
        match name {
            "add" => Some(Op::Add),
            "replace" => Some(Op::Replace),
            "remove" => Some(Op::Remove),
            _ => None,
        }
    }
}

/// One operation: `path` is the decoded JSON pointer, one segment per level.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub op: Op,
    pub path: Vec<String>,
    pub value: Option<Value>,
}

/// The 403 a change of `/locations` gets when locations are not shown.
pub fn locations_invisible(op: Op) -> DomainError {
    let verb = match op {
        Op::Add => "add",
        Op::Remove => "remove",
        Op::Replace => "update",
    };
    DomainError::forbidden(format!(
        "It's not allowed to {verb} locations if locations are invisible."
    ))
}

fn bad(message: impl Into<String>) -> DomainError {
    DomainError::bad_request(message.into())
}

/// Parses a patch document.
pub fn parse_patch(body: &Value, dialect: PatchDialect) -> DomainResult<Vec<Change>> {
    let Value::Array(items) = body else {
        return Err(bad(
            "Request body must be a JSON array of operation objects.",
        ));
    };
    items
        .iter()
        .map(|item| {
            let Value::Object(item) = item else {
                return Err(bad("Operations must be JSON objects."));
            };
            let (op, pointer) = match dialect {
                PatchDialect::V2_1 => {
                    let op = match item.get("op") {
                        None => {
                            return Err(bad(
                                "Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.",
                            ))
                        }
                        Some(Value::String(name)) => Op::parse(name),
                        Some(_) => None,
                    };
                    let op = op.ok_or_else(|| {
                        bad(format!(
                            "Invalid operation: `{}`. It must be one of the following: add, remove, replace.",
                            display(item.get("op"))
                        ))
                    })?;
                    let pointer = match item.get("path") {
                        Some(Value::String(path)) => path.as_str(),
                        None => return Err(bad("Unable to find 'path' in JSON Schema change")),
                        Some(other) => return Err(bad(format!("Invalid JSON pointer: {other}"))),
                    };
                    (op, pointer)
                }
                PatchDialect::V2_0 => {
                    let present: Vec<(Op, &Value)> = ["add", "replace", "remove"]
                        .into_iter()
                        .filter_map(|name| item.get(name).map(|v| (Op::parse(name), v)))
                        .filter_map(|(op, v)| op.map(|op| (op, v)))
                        .collect();
                    if present.len() > 1 {
                        return Err(bad(
                            "Operation objects must contain only one member named \"add\", \"remove\", or \"replace\".",
                        ));
                    }
                    let [(op, Value::String(pointer))] = present.as_slice() else {
                        return Err(bad(
                            "Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".",
                        ));
                    };
                    (*op, pointer.as_str())
                }
            };
            let path = decode_pointer(pointer)?;
            let value = match op {
                Op::Remove => None,
                Op::Add | Op::Replace => Some(item.get("value").cloned().ok_or_else(|| {
                    bad(format!(
                        "Operation \"{}\" requires a member named \"value\".",
                        op_name(op)
                    ))
                })?),
            };
            Ok(Change { op, path, value })
        })
        .collect()
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Add => "add",
        Op::Replace => "replace",
        Op::Remove => "remove",
    }
}

fn display(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Decodes an RFC 6901 pointer with Glance's stricter rules (no `//`, no trailing `/`).
pub fn decode_pointer(pointer: &str) -> DomainResult<Vec<String>> {
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(bad(format!(
            "Pointer `{pointer}` does not start with \"/\"."
        )));
    };
    if rest.ends_with('/') {
        return Err(bad(format!("Pointer `{pointer}` end with \"/\".")));
    }
    if rest.contains("//") || rest.is_empty() {
        return Err(bad(format!("Pointer `{pointer}` contains adjacent \"/\".")));
    }
    rest.split('/')
        .map(|segment| {
            let mut out = String::with_capacity(segment.len());
            let mut chars = segment.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => out.push('~'),
                    Some('1') => out.push('/'),
                    _ => {
                        return Err(bad(format!(
                            "Pointer `{pointer}` contains \"~\" not part of a recognized escape sequence."
                        )))
                    }
                }
            }
            // Glance strips each token, and refuses one that is empty.
            let token = out.trim();
            if token.is_empty() {
                return Err(bad(format!("Pointer `{pointer}` does not contains valid token.")));
            }
            Ok(token.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_v2_1_operations() {
        let changes = parse_patch(
            &json!([
                {"op": "replace", "path": "/name", "value": "n"},
                {"op": "add", "path": "/a~1b~0c", "value": "v"},
                {"op": "remove", "path": "/x"}
            ]),
            PatchDialect::V2_1,
        )
        .expect("valid patch");
        assert_eq!(
            changes[0],
            Change {
                op: Op::Replace,
                path: vec!["name".into()],
                value: Some(json!("n"))
            }
        );
        assert_eq!(changes[1].path, ["a/b~c"]);
        assert_eq!(
            changes[2],
            Change {
                op: Op::Remove,
                path: vec!["x".into()],
                value: None
            }
        );
    }

    #[test]
    fn parses_v2_0_operations() {
        let changes = parse_patch(
            &json!([{"replace": "/foo", "value": "bar"}]),
            PatchDialect::V2_0,
        )
        .expect("valid patch");
        assert_eq!(
            changes[0],
            Change {
                op: Op::Replace,
                path: vec!["foo".into()],
                value: Some(json!("bar"))
            }
        );
        assert!(parse_patch(
            &json!([{"replace": "/foo", "add": "/bar", "value": 1}]),
            PatchDialect::V2_0
        )
        .is_err());
    }

    #[test]
    fn rejects_malformed_patches() {
        let err = |body: Value| match parse_patch(&body, PatchDialect::V2_1) {
            Err(e) if e.kind() == Some(Refusal::BadRequest) => e.to_string(),
            other => panic!("expected 400, got {other:?}"),
        };
        assert!(err(json!({"op": "add"})).contains("JSON array"));
        assert!(err(json!(["add"])).contains("JSON objects"));
        assert!(err(json!([{"op": "move", "path": "/a", "from": "/b"}]))
            .contains("Invalid operation: `move`"));
        assert!(
            err(json!([{"op": "add", "path": "/a"}])).contains("requires a member named \"value\"")
        );
        assert!(
            err(json!([{"op": "add", "path": "a", "value": 1}])).contains("does not start with")
        );
        assert!(err(json!([{"op": "add", "path": "/a//b", "value": 1}])).contains("adjacent"));
        assert!(err(json!([{"op": "add", "path": "/a/", "value": 1}])).contains("end with"));
        assert!(err(json!([{"op": "add", "path": "/a~2", "value": 1}])).contains("escape"));
    }

    #[test]
    fn media_types_are_recognised_with_parameters() {
        assert_eq!(
            PatchDialect::from_content_type(
                "application/openstack-images-v2.1-json-patch; charset=UTF-8"
            ),
            Some(PatchDialect::V2_1)
        );
        assert_eq!(
            PatchDialect::from_content_type(MEDIA_TYPE_V2_0),
            Some(PatchDialect::V2_0)
        );
        assert_eq!(PatchDialect::from_content_type("application/json"), None);
    }
}
