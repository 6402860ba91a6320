//! Request bodies, once their schema has passed, as the records a write takes: what Glance's
//! models keep of them and the defaults its factories fill in.

use serde_json::{Map, Value};

use super::schemas::property_type;
use super::{AssociationFields, NamespaceFields, ObjectFields, PropertyFields};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::RequestContext;

fn text(body: &Value, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A name the schema leaves optional but the table does not (Glance fails in the database).
fn required_name(body: &Value, schema: &str) -> DomainResult<String> {
    text(body, "name").ok_or_else(|| {
        DomainError::bad_request(format!(
            "Provided object does not match schema '{schema}': 'name' is a required property"
        ))
    })
}

/// The namespace's own columns: visibility `private`, not protected and owned by the
/// caller's project unless the body says otherwise.
pub(super) fn namespace_fields(ctx: &RequestContext, body: &Value) -> NamespaceFields {
    NamespaceFields {
        namespace: text(body, "namespace").unwrap_or_default(),
        display_name: text(body, "display_name"),
        description: text(body, "description"),
        visibility: text(body, "visibility").unwrap_or_else(|| "private".to_owned()),
        protected: body
            .get("protected")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        owner: text(body, "owner")
            .or_else(|| ctx.project_id.clone())
            .unwrap_or_default(),
    }
}

/// Property definitions by name, each as Glance's model keeps it.
pub(super) fn property_map(body: Option<&Value>) -> Map<String, Value> {
    body.and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(name, definition)| (name.clone(), property_type(definition)))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn object_fields(body: &Value, schema: &str) -> DomainResult<ObjectFields> {
    Ok(ObjectFields {
        name: required_name(body, schema)?,
        description: text(body, "description"),
        required: body
            .get("required")
            .and_then(Value::as_array)
            .map(|names| {
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        properties: property_map(body.get("properties")),
    })
}

pub(super) fn property_fields(name: &str, definition: &Value) -> PropertyFields {
    PropertyFields {
        name: name.to_owned(),
        schema: property_type(definition),
    }
}

pub(super) fn association_fields(body: &Value, schema: &str) -> DomainResult<AssociationFields> {
    Ok(AssociationFields {
        name: required_name(body, schema)?,
        prefix: text(body, "prefix"),
        properties_target: text(body, "properties_target"),
    })
}

pub(super) fn tag_names(items: Option<&Value>, schema: &str) -> DomainResult<Vec<String>> {
    items
        .and_then(Value::as_array)
        .map(|tags| tags.iter().map(|tag| required_name(tag, schema)).collect())
        .unwrap_or_else(|| Ok(Vec::new()))
}

/// Glance refuses a body that is not a JSON object only when its model cannot read it;
/// here every body must be one.
pub(super) fn require_object(body: &Value, schema: &str) -> DomainResult<()> {
    if body.is_object() {
        Ok(())
    } else {
        Err(DomainError::bad_request(format!(
            "Provided object does not match schema '{schema}': {} is not of type 'object'",
            crate::domain::jsonschema::py_repr(body)
        )))
    }
}
