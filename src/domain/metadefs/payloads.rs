//! Glance's notification payloads for metadefs (`glance/notifier.py`'s `format_metadef_*`):
//! the same keys, `name_old`/`namespace_old` for renames, and `deleted`/`deleted_at` on
//! deletes.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::rules::isotime;
use super::{Association, MetadefObject, Namespace, Property, Tag};

fn time(at: Option<DateTime<Utc>>) -> Value {
    at.map_or(Value::Null, |t| Value::String(isotime(t)))
}

/// Marks a payload as the announcement of a delete.
pub(super) fn deleted(mut payload: Value) -> Value {
    payload["deleted"] = json!(true);
    payload["deleted_at"] = json!(isotime(Utc::now()));
    payload
}

pub(super) fn namespace(ns: &Namespace, old_name: &str) -> Value {
    json!({
        "namespace": ns.namespace,
        "namespace_old": old_name,
        "display_name": ns.display_name,
        "protected": ns.is_protected(),
        "visibility": ns.visibility.as_deref().unwrap_or("private"),
        "owner": ns.owner,
        "description": ns.description,
        "created_at": time(Some(ns.created_at)),
        "updated_at": time(ns.updated_at),
        "deleted": false,
        "deleted_at": null,
    })
}

/// A value Python reads as false (`x or None`) becomes null.
fn or_none(value: Option<&Value>) -> Value {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Value::Null,
        Some(Value::String(s)) if s.is_empty() => Value::Null,
        Some(Value::Array(a)) if a.is_empty() => Value::Null,
        Some(Value::Object(o)) if o.is_empty() => Value::Null,
        Some(Value::Number(n)) if n.as_f64() == Some(0.0) => Value::Null,
        Some(other) => other.clone(),
    }
}

const PROPERTY_KEYS: [&str; 16] = [
    "type",
    "title",
    "description",
    "default",
    "minimum",
    "maximum",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "confidential",
    "items",
    "uniqueItems",
    "minItems",
    "maxItems",
    "additionalItems",
];

pub(super) fn object(namespace: &str, object: &MetadefObject, old_name: &str) -> Value {
    let properties: Vec<Value> = object
        .properties
        .iter()
        .map(|(name, definition)| {
            let mut entry = Map::new();
            entry.insert("name".to_owned(), json!(name));
            for key in PROPERTY_KEYS {
                entry.insert(key.to_owned(), or_none(definition.get(key)));
            }
            Value::Object(entry)
        })
        .collect();
    json!({
        "namespace": namespace,
        "name": object.name,
        "name_old": old_name,
        "properties": properties,
        "required": object.required,
        "description": object.description,
        "created_at": time(Some(object.created_at)),
        "updated_at": time(object.updated_at),
        "deleted": false,
        "deleted_at": null,
    })
}

pub(super) fn property(namespace: &str, property: &Property, old_name: &str) -> Value {
    let mut payload = Map::new();
    payload.insert("namespace".to_owned(), json!(namespace));
    payload.insert("name".to_owned(), json!(property.name));
    payload.insert("name_old".to_owned(), json!(old_name));
    for key in PROPERTY_KEYS {
        let value = property.schema.get(key).cloned().unwrap_or(Value::Null);
        payload.insert(key.to_owned(), value);
    }
    payload.insert("deleted".to_owned(), json!(false));
    payload.insert("deleted_at".to_owned(), Value::Null);
    Value::Object(payload)
}

pub(super) fn association(namespace: &str, association: &Association) -> Value {
    json!({
        "namespace": namespace,
        "name": association.name,
        "name_old": association.name,
        "prefix": association.prefix,
        "properties_target": association.properties_target,
        "created_at": time(Some(association.created_at)),
        "updated_at": time(association.updated_at),
        "deleted": false,
        "deleted_at": null,
    })
}

pub(super) fn tag(namespace: &str, tag: &Tag, old_name: &str) -> Value {
    json!({
        "namespace": namespace,
        "name": tag.name,
        "name_old": old_name,
        "created_at": time(Some(tag.created_at)),
        "updated_at": time(tag.updated_at),
        "deleted": false,
        "deleted_at": null,
    })
}
