//! The metadefs file format of Glance's `etc/metadefs/*.json`: one namespace per file, read
//! as `glance-manage db load_metadefs` reads it (absent fields and their defaults, schemas
//! stored as Python's `json.dumps` text) and written as `export_metadefs` writes it.
//!
//! Where Glance would crash half-way or store something its own API then fails on (a missing
//! name, a list where an object belongs, a value too long for its column), the file is
//! refused here, before anything is written, with the file and the field named.

use super::python_json::{self, Value};
use crate::domain::metadef_files::{AssociationDefinition, NamespaceDefinition, ObjectDefinition};

/// Column widths of Glance's schema (VARCHAR(n)): longer values fail on PostgreSQL and MySQL.
const NAME_WIDTH: usize = 80;
const VISIBILITY_WIDTH: usize = 32;
const OWNER_WIDTH: usize = 255;

/// The owner of a namespace whose file names none (Glance's default).
const DEFAULT_OWNER: &str = "admin";

/// Reads one definitions file (`file` is its path, for messages).
pub(super) fn read_definition(file: &str, text: &str) -> Result<NamespaceDefinition, String> {
    let document = python_json::parse(text).map_err(|e| format!("{file}: not valid JSON: {e}"))?;
    let fail = |message: String| format!("{file}: {message}");
    if !matches!(document, Value::Object(_)) {
        return Err(fail(format!(
            "the file must hold one JSON object (a namespace), not {}",
            document.kind()
        )));
    }
    let namespace = required_text(&document, "namespace", "", NAME_WIDTH).map_err(fail)?;
    let owner = match document.get("owner") {
        None => DEFAULT_OWNER.to_owned(),
        Some(_) => required_text(&document, "owner", "", OWNER_WIDTH).map_err(fail)?,
    };
    let protected = match document.get("protected") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            return Err(fail(format!(
                "\"protected\" must be true, false or null, not {}",
                other.kind()
            )))
        }
    };
    let associations = list(&document, "resource_type_associations")
        .map_err(fail)?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("resource_type_associations[{i}]");
            Ok(AssociationDefinition {
                name: required_text(item, "name", &at, NAME_WIDTH)?,
                prefix: optional_text(item, "prefix", &at, NAME_WIDTH)?,
                properties_target: optional_text(item, "properties_target", &at, NAME_WIDTH)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(fail)?;
    let properties = match document.get("properties") {
        None => Vec::new(),
        Some(Value::Object(members)) => members
            .iter()
            .map(|(name, schema)| {
                check_text(name, &format!("properties key \"{name}\""), NAME_WIDTH)?;
                Ok((name.clone(), python_json::dumps(schema)))
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(fail)?,
        Some(other) => {
            return Err(fail(format!(
                "\"properties\" must be an object (name: schema), not {}",
                other.kind()
            )))
        }
    };
    let objects = list(&document, "objects")
        .map_err(fail)?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("objects[{i}]");
            Ok(ObjectDefinition {
                name: required_text(item, "name", &at, NAME_WIDTH)?,
                description: optional_text(item, "description", &at, usize::MAX)?,
                json_schema: python_json::dumps(item.get("properties").unwrap_or(&Value::Null)),
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(fail)?;
    let tags = list(&document, "tags")
        .map_err(fail)?
        .iter()
        .enumerate()
        .map(|(i, item)| required_text(item, "name", &format!("tags[{i}]"), NAME_WIDTH))
        .collect::<Result<Vec<_>, String>>()
        .map_err(fail)?;
    Ok(NamespaceDefinition {
        file: file.to_owned(),
        namespace,
        display_name: optional_text(&document, "display_name", "", NAME_WIDTH).map_err(fail)?,
        description: optional_text(&document, "description", "", usize::MAX).map_err(fail)?,
        visibility: optional_text(&document, "visibility", "", VISIBILITY_WIDTH).map_err(fail)?,
        protected,
        owner,
        resource_type_associations: associations,
        properties,
        objects,
        tags,
    })
}

/// `where_` and `key` as a message names them: `"namespace"`, `objects[2] "name"`.
fn field(where_: &str, key: &str) -> String {
    if where_.is_empty() {
        format!("\"{key}\"")
    } else {
        format!("{where_} \"{key}\"")
    }
}

fn check_text(text: &str, name: &str, width: usize) -> Result<(), String> {
    if text.contains('\0') {
        return Err(format!("{name} contains a NUL character"));
    }
    let length = text.chars().count();
    if length > width {
        return Err(format!(
            "{name} is {length} characters long; the column holds {width}"
        ));
    }
    Ok(())
}

fn optional_text(
    item: &Value,
    key: &str,
    where_: &str,
    width: usize,
) -> Result<Option<String>, String> {
    if !matches!(item, Value::Object(_)) {
        return Err(format!("{where_} must be an object, not {}", item.kind()));
    }
    match item.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Str(text)) => {
            check_text(text, &field(where_, key), width)?;
            Ok(Some(text.clone()))
        }
        Some(other) => Err(format!(
            "{} must be a string or null, not {}",
            field(where_, key),
            other.kind()
        )),
    }
}

fn required_text(item: &Value, key: &str, where_: &str, width: usize) -> Result<String, String> {
    match (item.get(key), optional_text(item, key, where_, width)?) {
        (_, Some(text)) => Ok(text),
        (None, None) => Err(format!("missing field {}", field(where_, key))),
        (Some(_), None) => Err(format!("{} must be a string, not null", field(where_, key))),
    }
}

/// A list member (absent: empty), whose items must be objects.
fn list<'v>(document: &'v Value, key: &str) -> Result<&'v [Value], String> {
    match document.get(key) {
        None => Ok(&[]),
        Some(Value::Array(items)) => {
            if let Some((i, item)) = items
                .iter()
                .enumerate()
                .find(|(_, item)| !matches!(item, Value::Object(_)))
            {
                return Err(format!("{key}[{i}] must be an object, not {}", item.kind()));
            }
            Ok(items)
        }
        Some(other) => Err(format!("\"{key}\" must be a list, not {}", other.kind())),
    }
}

/// The file name an export gives a namespace: its display name without anything but letters
/// and digits (Glance's `[\W_]+` removed), `.json` added. Glance fails on a namespace without
/// a display name; Glint uses the namespace's name then.
pub(super) fn export_file_name(namespace: &NamespaceDefinition) -> String {
    let keep = |text: &str| -> String { text.chars().filter(|c| c.is_alphanumeric()).collect() };
    let name = namespace
        .display_name
        .as_deref()
        .map(keep)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| keep(&namespace.namespace));
    format!("{name}.json")
}

/// The text an export writes for a namespace: Glance's fields in Glance's order (no owner,
/// no object `required`), as one line of `json.dumps`.
pub(super) fn export_text(namespace: &NamespaceDefinition) -> Result<String, String> {
    let text = |t: &Option<String>| t.clone().map_or(Value::Null, Value::Str);
    let schema = |what: &str, json: &str| {
        python_json::parse(json).map_err(|e| {
            format!(
                "namespace {}: {what}: the stored schema is not JSON ({e})",
                namespace.namespace
            )
        })
    };
    let associations = namespace
        .resource_type_associations
        .iter()
        .map(|a| {
            Value::Object(vec![
                ("name".into(), Value::Str(a.name.clone())),
                ("prefix".into(), text(&a.prefix)),
                ("properties_target".into(), text(&a.properties_target)),
            ])
        })
        .collect();
    let properties = namespace
        .properties
        .iter()
        .map(|(name, json)| Ok((name.clone(), schema(&format!("property {name}"), json)?)))
        .collect::<Result<Vec<_>, String>>()?;
    let objects = namespace
        .objects
        .iter()
        .map(|o| {
            Ok(Value::Object(vec![
                ("name".into(), Value::Str(o.name.clone())),
                ("description".into(), text(&o.description)),
                (
                    "properties".into(),
                    schema(&format!("object {}", o.name), &o.json_schema)?,
                ),
            ]))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let tags = namespace
        .tags
        .iter()
        .map(|t| Value::Object(vec![("name".into(), Value::Str(t.clone()))]))
        .collect();
    let document = Value::Object(vec![
        ("namespace".into(), Value::Str(namespace.namespace.clone())),
        ("display_name".into(), text(&namespace.display_name)),
        ("description".into(), text(&namespace.description)),
        ("visibility".into(), text(&namespace.visibility)),
        (
            "protected".into(),
            namespace.protected.map_or(Value::Null, Value::Bool),
        ),
        (
            "resource_type_associations".into(),
            Value::Array(associations),
        ),
        ("properties".into(), Value::Object(properties)),
        ("objects".into(), Value::Array(objects)),
        ("tags".into(), Value::Array(tags)),
    ]);
    Ok(python_json::dumps(&document))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_reads_with_glances_defaults() {
        let text = r#"{"namespace": "N::One", "properties": {"b": {"type": "string", "enum": ["x", "é"]}, "a": {}},
            "objects": [{"name": "o", "required": ["z"]}], "tags": [{"name": "t"}],
            "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "p_"}]}"#;
        let read = read_definition("one.json", text).expect("reads");
        assert_eq!(read.owner, "admin");
        assert_eq!(read.visibility, None);
        assert_eq!(read.protected, None);
        assert_eq!(
            read.properties,
            vec![
                (
                    "b".to_owned(),
                    r#"{"type": "string", "enum": ["x", "\u00e9"]}"#.to_owned()
                ),
                ("a".to_owned(), "{}".to_owned())
            ]
        );
        assert_eq!(read.objects[0].json_schema, "null");
        assert_eq!(read.tags, vec!["t".to_owned()]);
        assert_eq!(
            read.resource_type_associations[0].prefix.as_deref(),
            Some("p_")
        );
    }

    #[test]
    fn bad_files_are_refused_naming_the_file_and_field() {
        let cases = [
            ("{", "f.json: not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2"),
            ("[]", "f.json: the file must hold one JSON object (a namespace), not a list"),
            ("{}", "f.json: missing field \"namespace\""),
            (r#"{"namespace": null}"#, "f.json: \"namespace\" must be a string, not null"),
            (r#"{"namespace": "n", "owner": null}"#, "f.json: \"owner\" must be a string, not null"),
            (r#"{"namespace": "n", "protected": "yes"}"#, "f.json: \"protected\" must be true, false or null, not a string"),
            (r#"{"namespace": "n", "objects": [{"description": "d"}]}"#, "f.json: missing field objects[0] \"name\""),
            (r#"{"namespace": "n", "tags": [{"name": "a"}, "b"]}"#, "f.json: tags[1] must be an object, not a string"),
            (r#"{"namespace": "n", "tags": null}"#, "f.json: \"tags\" must be a list, not null"),
            (r#"{"namespace": "n", "properties": []}"#, "f.json: \"properties\" must be an object (name: schema), not a list"),
            (r#"{"namespace": "n", "resource_type_associations": [{"prefix": "x"}]}"#, "f.json: missing field resource_type_associations[0] \"name\""),
            (r#"{"namespace": "n", "visibility": 1}"#, "f.json: \"visibility\" must be a string or null, not a number"),
        ];
        for (text, message) in cases {
            assert_eq!(read_definition("f.json", text).expect_err(text), message);
        }
        let long = format!(r#"{{"namespace": "{}"}}"#, "n".repeat(81));
        assert_eq!(
            read_definition("f.json", &long).expect_err("too long"),
            "f.json: \"namespace\" is 81 characters long; the column holds 80"
        );
    }

    #[test]
    fn exports_are_named_and_written_as_glance_writes_them() {
        let text = r#"{"namespace": "N::One", "display_name": "Débit_Max (v2)", "protected": true,
            "properties": {"p": {"type": "integer", "minimum": 0}},
            "objects": [{"name": "o", "description": "d", "properties": {"q": {}}}],
            "tags": [{"name": "t"}], "resource_type_associations": [{"name": "R"}]}"#;
        let read = read_definition("one.json", text).expect("reads");
        assert_eq!(export_file_name(&read), "DébitMaxv2.json");
        assert_eq!(
            export_text(&read).expect("renders"),
            r#"{"namespace": "N::One", "display_name": "D\u00e9bit_Max (v2)", "description": null, "visibility": null, "protected": true, "resource_type_associations": [{"name": "R", "prefix": null, "properties_target": null}], "properties": {"p": {"type": "integer", "minimum": 0}}, "objects": [{"name": "o", "description": "d", "properties": {"q": {}}}], "tags": [{"name": "t"}]}"#
        );
        let unnamed = NamespaceDefinition {
            display_name: None,
            ..read
        };
        assert_eq!(export_file_name(&unnamed), "NOne.json");
    }
}
