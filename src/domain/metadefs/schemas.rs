//! The metadefs schema documents (`/v2/schemas/metadefs/…`) as Glance 33 serves them, the
//! validators request bodies pass through, and the shape Glance gives a property definition
//! (its `PropertyType` model keeps known keys only).

use serde_json::{json, Map, Value};

use crate::domain::error::{DomainError, DomainResult};
use crate::domain::image_rules::check_storable_json;
use crate::domain::jsonschema::Validator;

/// The documents, by the last segment of their path, and the request validators.
#[derive(Debug)]
pub struct MetadefSchemas {
    pub namespace: Validator,
    pub namespaces: Value,
    pub resource_type: Validator,
    pub resource_types: Value,
    pub object: Validator,
    pub objects: Value,
    pub property: Validator,
    pub properties: Value,
    pub tag: Validator,
    pub tags: Value,
    /// An object's properties: the property document without a required `name`.
    pub(super) object_property: Validator,
    /// `POST …/tags`: `{"tags": [{"name": …}]}`.
    pub(super) tag_list: Validator,
}

impl MetadefSchemas {
    pub fn new() -> Result<MetadefSchemas, String> {
        let namespace = item("namespace", namespace_properties(), &["namespace"]);
        let object = item("object", object_properties(), &["name"]);
        let property = item(
            "property",
            property_properties(),
            &["type", "title", "name"],
        );
        let tag = item("tag", tag_properties(), &["name"]);
        let resource_type = item(
            "resource_type_association",
            resource_type_properties(),
            &["name"],
        );
        let with_definitions = |mut schema: Value, definitions: Value| {
            schema["definitions"] = definitions;
            schema
        };
        let mut object_property = item("property", property_properties(), &["type", "title"]);
        object_property["definitions"] = property_definitions();
        let tag_list = json!({
            "name": "tags",
            "properties": {
                "tags": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}},
                        "required": ["name"],
                        "additionalProperties": false
                    }
                }
            },
            "additionalProperties": false
        });
        Ok(MetadefSchemas {
            namespaces: collection("namespaces", &namespace, Some(namespace_definitions())),
            objects: collection("objects", &object, Some(namespace_definitions())),
            properties: property_collection(&property),
            tags: collection("tags", &tag, None),
            resource_types: collection("resource_type_associations", &resource_type, None),
            namespace: Validator::new(with_definitions(namespace, namespace_definitions()))?,
            object: Validator::new(with_definitions(object, namespace_definitions()))?,
            property: Validator::new(with_definitions(property, property_definitions()))?,
            tag: Validator::new(tag)?,
            resource_type: Validator::new(resource_type)?,
            object_property: Validator::new(object_property)?,
            tag_list: Validator::new(tag_list)?,
        })
    }
}

/// Checks `body` against `validator`, with Glance's 400 message; then that every text in
/// it can be stored (no NUL characters, which PostgreSQL refuses).
pub(super) fn validate(validator: &Validator, body: &Value) -> DomainResult<()> {
    let name = validator.schema()["name"].as_str().unwrap_or_default();
    validator.validate(body).map_err(|why| {
        DomainError::bad_request(format!(
            "Provided object does not match schema '{name}': {why}"
        ))
    })?;
    match body {
        Value::Object(fields) => fields
            .iter()
            .try_for_each(|(key, value)| check_storable_json(key, value)),
        other => check_storable_json(name, other),
    }
}

/// Glance refuses bodies that set what only the server sets (403).
pub(super) fn refuse_read_only(body: &Value, read_only: &[&str]) -> DomainResult<()> {
    match read_only.iter().find(|key| body.get(**key).is_some()) {
        Some(key) => Err(DomainError::forbidden(format!(
            "Attribute '{key}' is read-only."
        ))),
        None => Ok(()),
    }
}

/// A property definition as Glance's model keeps it: known keys only, bounds and lengths
/// as integers, array items reduced to their `type` and `enum`.
pub fn property_type(definition: &Value) -> Value {
    const INTEGERS: &[&str] = &[
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
    ];
    const KEPT: &[&str] = &[
        "name",
        "type",
        "title",
        "description",
        "operators",
        "readonly",
        "enum",
        "pattern",
        "confidential",
        "uniqueItems",
        "additionalItems",
    ];
    let mut out = Map::new();
    let Some(fields) = definition.as_object() else {
        return Value::Object(out);
    };
    for (key, value) in fields {
        if KEPT.contains(&key.as_str()) {
            out.insert(key.clone(), value.clone());
        } else if INTEGERS.contains(&key.as_str()) {
            out.insert(key.clone(), as_integer(value));
        } else if key == "default" {
            out.insert(key.clone(), as_text(value));
        } else if key == "items" {
            let mut items = Map::new();
            for kept in ["type", "enum"] {
                if let Some(v) = value.get(kept) {
                    items.insert(kept.to_owned(), v.clone());
                }
            }
            out.insert(key.clone(), Value::Object(items));
        }
    }
    Value::Object(out)
}

/// A default as Glance's model keeps it: text (Python's `str()` of a number or a boolean).
fn as_text(value: &Value) -> Value {
    match value {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(true) => json!("True"),
        Value::Bool(false) => json!("False"),
        other => other.clone(),
    }
}

/// Python's `int()` of a JSON number: fractions are cut off.
fn as_integer(value: &Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => n
            .as_f64()
            .filter(|f| f.is_finite() && f.abs() < 9.0e18)
            .map_or_else(|| value.clone(), |f| json!(f.trunc() as i64)),
        other => other.clone(),
    }
}

/// `glance.schema.Schema.raw()` without its definitions.
fn item(name: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "name": name,
        "properties": properties,
        "additionalProperties": false,
        "required": required,
    })
}

/// `glance.schema.CollectionSchema.raw()`.
fn collection(name: &str, item: &Value, definitions: Option<Value>) -> Value {
    let mut raw = json!({
        "name": name,
        "properties": {
            name: {"type": "array", "items": item},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    });
    if let Some(definitions) = definitions {
        raw["definitions"] = definitions;
    }
    raw
}

/// `glance.schema.DictCollectionSchema.raw()` of properties: names map to definitions, and
/// the name is not required inside one.
fn property_collection(property: &Value) -> Value {
    let mut item = property.clone();
    item["required"] = json!(["type", "title"]);
    json!({
        "name": "properties",
        "properties": {
            "properties": {"type": "object", "additionalProperties": item},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
        "definitions": property_definitions(),
    })
}

const TYPES: [Option<&str>; 7] = [
    Some("array"),
    Some("boolean"),
    Some("integer"),
    Some("number"),
    Some("object"),
    Some("string"),
    None,
];

/// The keys of one property definition (Glance's `property` definition's items).
fn property_properties() -> Value {
    json!({
        "name": {"type": "string", "maxLength": 80},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "operators": {"type": "array", "items": {"type": "string"}},
        "type": {"type": "string", "enum": TYPES},
        "required": {"$ref": "#/definitions/stringArray"},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "maxLength": {"$ref": "#/definitions/positiveInteger"},
        "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "pattern": {"type": "string", "format": "regex"},
        "enum": {"type": "array"},
        "readonly": {"type": "boolean"},
        "default": {},
        "items": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": TYPES},
                "enum": {"type": "array"}
            }
        },
        "maxItems": {"$ref": "#/definitions/positiveInteger"},
        "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "uniqueItems": {"type": "boolean", "default": false},
        "additionalItems": {"type": "boolean"}
    })
}

fn base_definitions(string_array_min_items: bool) -> Value {
    let mut string_array = json!({
        "type": "array",
        "items": {"type": "string"},
        "uniqueItems": true
    });
    if string_array_min_items {
        string_array["minItems"] = json!(1);
    }
    json!({
        "positiveInteger": {"type": "integer", "minimum": 0},
        "positiveIntegerDefault0": {
            "allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]
        },
        "stringArray": string_array,
    })
}

/// The property document's definitions (its string arrays may not be empty).
fn property_definitions() -> Value {
    base_definitions(true)
}

/// The namespace and object documents' definitions, `property` among them.
fn namespace_definitions() -> Value {
    let mut definitions = base_definitions(false);
    definitions["property"] = json!({
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "required": ["title", "type"],
            "properties": property_properties(),
        }
    });
    definitions
}

fn timestamps(what: &str) -> (Value, Value) {
    (
        json!({
            "type": "string",
            "readOnly": true,
            "description": format!("Date and time of {what} creation"),
            "format": "date-time"
        }),
        json!({
            "type": "string",
            "readOnly": true,
            "description": format!("Date and time of the last {what} modification"),
            "format": "date-time"
        }),
    )
}

fn namespace_properties() -> Value {
    let (created, updated) = timestamps("namespace");
    json!({
        "namespace": {
            "type": "string",
            "description": "The unique namespace text.",
            "maxLength": 80
        },
        "display_name": {
            "type": "string",
            "description": "The user friendly name for the namespace. Used by UI if available.",
            "maxLength": 80
        },
        "description": {
            "type": "string",
            "description": "Provides a user friendly description of the namespace.",
            "maxLength": 500
        },
        "visibility": {
            "type": "string",
            "description": "Scope of namespace accessibility.",
            "enum": ["public", "private"]
        },
        "protected": {
            "type": "boolean",
            "description": "If true, namespace will not be deletable."
        },
        "owner": {
            "type": "string",
            "description": "Owner of the namespace.",
            "maxLength": 255
        },
        "created_at": created,
        "updated_at": updated,
        "schema": {"readOnly": true, "type": "string"},
        "self": {"readOnly": true, "type": "string"},
        "resource_type_associations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "prefix": {"type": "string"},
                    "properties_target": {"type": "string"}
                }
            }
        },
        "properties": {"$ref": "#/definitions/property"},
        "objects": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "required": {"$ref": "#/definitions/stringArray"},
                    "properties": {"$ref": "#/definitions/property"}
                }
            }
        },
        "tags": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}}
            }
        }
    })
}

fn object_properties() -> Value {
    let (created, updated) = timestamps("object");
    json!({
        "name": {"type": "string", "maxLength": 80},
        "description": {"type": "string"},
        "required": {"$ref": "#/definitions/stringArray"},
        "properties": {"$ref": "#/definitions/property"},
        "schema": {"readOnly": true, "type": "string"},
        "self": {"readOnly": true, "type": "string"},
        "created_at": created,
        "updated_at": updated
    })
}

fn tag_properties() -> Value {
    let (created, updated) = timestamps("tag");
    json!({
        "name": {"type": "string", "maxLength": 80},
        "created_at": created,
        "updated_at": updated
    })
}

fn resource_type_properties() -> Value {
    json!({
        "name": {
            "type": "string",
            "description": "Resource type names should be aligned with Heat resource types \
                whenever possible: https://docs.openstack.org/heat/latest/template_guide/\
                openstack.html",
            "maxLength": 80
        },
        "prefix": {
            "type": "string",
            "description": "Specifies the prefix to use for the given resource type. Any \
                properties in the namespace should be prefixed with this prefix when being \
                applied to the specified resource type. Must include prefix separator (e.g. a \
                colon :).",
            "maxLength": 80
        },
        "properties_target": {
            "type": "string",
            "description": "Some resource types allow more than one key / value pair per \
                instance.  For example, Cinder allows user and image metadata on volumes. \
                Only the image properties metadata is evaluated by Nova (scheduling or \
                drivers). This property allows a namespace target to remove the ambiguity.",
            "maxLength": 80
        },
        "created_at": {
            "type": "string",
            "readOnly": true,
            "description": "Date and time of resource type association",
            "format": "date-time"
        },
        "updated_at": {
            "type": "string",
            "readOnly": true,
            "description": "Date and time of the last resource type association modification",
            "format": "date-time"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_build_and_validate_their_examples() {
        let schemas = MetadefSchemas::new().expect("schemas build");
        let ok = json!({"namespace": "OS::Test", "properties": {"p": {"title": "P", "type": "string", "minLength": 1}}});
        assert!(schemas.namespace.validate(&ok).is_ok());
        let bad = json!({"namespace": "x", "properties": {"p": {"title": "P", "type": "string", "minLength": -1}}});
        assert_eq!(
            schemas.namespace.validate(&bad),
            Err("-1 is less than the minimum of 0".to_owned())
        );
        let missing = json!({"name": "p", "title": "P"});
        assert_eq!(
            schemas.property.validate(&missing),
            Err("'type' is a required property".to_owned())
        );
        let empty_required = json!({"name": "p", "title": "P", "type": "array", "required": []});
        assert_eq!(
            schemas.property.validate(&empty_required),
            Err("[] is too short".to_owned())
        );
    }

    #[test]
    fn property_types_keep_known_keys() {
        let kept = property_type(&json!({
            "title": "T", "type": "integer", "minimum": 1.7, "format": "x",
            "items": {"type": "string", "enum": ["a"], "other": 1}
        }));
        assert_eq!(
            kept,
            json!({"title": "T", "type": "integer", "minimum": 1, "items": {"type": "string", "enum": ["a"]}})
        );
    }
}
