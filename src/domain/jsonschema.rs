//! A small JSON-schema (draft 4 subset) validator for the schemas this service publishes.
//! It covers the keywords those schemas use (type, enum, lengths, bounds, pattern, items,
//! item counts and uniqueness, properties, additionalProperties, required, allOf, local
//! `$ref`) and words its failures the way Python's `jsonschema` does, since Glance's 400
//! messages embed that text.

use std::collections::HashMap;

use regex_lite::Regex;
use serde_json::Value;

/// A schema with its `pattern`s compiled once.
#[derive(Debug, Clone)]
pub struct Validator {
    schema: Value,
    patterns: HashMap<String, Regex>,
}

impl Validator {
    /// Compiles every `pattern` in `schema`; an invalid pattern is a programming or operator
    /// error reported here rather than at request time.
    pub fn new(schema: Value) -> Result<Validator, String> {
        let mut patterns = HashMap::new();
        collect_patterns(&schema, &mut patterns)?;
        Ok(Validator { schema, patterns })
    }

    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Validates a whole instance against the schema.
    pub fn validate(&self, instance: &Value) -> Result<(), String> {
        self.check(&self.schema, instance)
    }

    /// Validates one member of an object instance: `properties[name]`, or the
    /// `additionalProperties` schema when the name is not a declared property.
    pub fn validate_property(&self, name: &str, value: &Value) -> Result<(), String> {
        match self.property_schema(name) {
            Some(schema) => self.check(schema, value),
            None => Err(format!(
                "Additional properties are not allowed ({} was unexpected)",
                py_repr(&Value::String(name.to_owned()))
            )),
        }
    }

    fn property_schema(&self, name: &str) -> Option<&Value> {
        if let Some(schema) = self.schema.get("properties").and_then(|p| p.get(name)) {
            return Some(schema);
        }
        match self.schema.get("additionalProperties") {
            Some(Value::Bool(false)) => None,
            Some(schema @ Value::Object(_)) => Some(schema),
            _ => Some(&Value::Bool(true)),
        }
    }

    fn check(&self, schema: &Value, instance: &Value) -> Result<(), String> {
        let Value::Object(schema) = schema else {
            return Ok(());
        };
        // Draft 4: a `$ref` replaces the schema it sits in; only local references are used.
        if let Some(Value::String(reference)) = schema.get("$ref") {
            return match reference
                .strip_prefix('#')
                .and_then(|pointer| self.schema.pointer(pointer))
            {
                Some(target) => self.check(target, instance),
                None => Ok(()),
            };
        }
        if let Some(Value::Array(all)) = schema.get("allOf") {
            for part in all {
                self.check(part, instance)?;
            }
        }
        if let Some(types) = schema.get("type") {
            let allowed: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !allowed.iter().any(|t| has_type(instance, t)) {
                let names: Vec<String> = allowed.iter().map(|t| format!("'{t}'")).collect();
                return Err(format!(
                    "{} is not of type {}",
                    py_repr(instance),
                    names.join(", ")
                ));
            }
        }
        if let Some(Value::Array(options)) = schema.get("enum") {
            if !options.contains(instance) {
                return Err(format!(
                    "{} is not one of {}",
                    py_repr(instance),
                    py_repr(&Value::Array(options.clone()))
                ));
            }
        }
        if let Value::String(text) = instance {
            let length = text.chars().count() as u64;
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
                if length > max {
                    return Err(format!("{} is too long", py_repr(instance)));
                }
            }
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
                if length < min {
                    return Err(format!("{} is too short", py_repr(instance)));
                }
            }
            if let Some(Value::String(pattern)) = schema.get("pattern") {
                if let Some(regex) = self.patterns.get(pattern) {
                    if !regex.is_match(text) {
                        return Err(format!("{} does not match '{pattern}'", py_repr(instance)));
                    }
                }
            }
        }
        if let Some(number) = instance.as_f64().filter(|_| instance.is_number()) {
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                if number < min {
                    return Err(format!(
                        "{} is less than the minimum of {}",
                        py_repr(instance),
                        py_repr(&schema["minimum"])
                    ));
                }
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                if number > max {
                    return Err(format!(
                        "{} is greater than the maximum of {}",
                        py_repr(instance),
                        py_repr(&schema["maximum"])
                    ));
                }
            }
        }
        if let Value::Array(items) = instance {
            let count = items.len() as u64;
            if schema
                .get("minItems")
                .and_then(Value::as_u64)
                .is_some_and(|min| count < min)
            {
                return Err(format!("{} is too short", py_repr(instance)));
            }
            if schema
                .get("maxItems")
                .and_then(Value::as_u64)
                .is_some_and(|max| count > max)
            {
                return Err(format!("{} is too long", py_repr(instance)));
            }
            if schema.get("uniqueItems") == Some(&Value::Bool(true))
                && items
                    .iter()
                    .enumerate()
                    .any(|(i, a)| items[..i].contains(a))
            {
                return Err(format!("{} has non-unique elements", py_repr(instance)));
            }
        }
        if let (Value::Array(items), Some(item_schema)) = (instance, schema.get("items")) {
            for item in items {
                self.check(item_schema, item)?;
            }
        }
        if let Value::Object(members) = instance {
            if let Some(Value::Array(required)) = schema.get("required") {
                for name in required.iter().filter_map(Value::as_str) {
                    if !members.contains_key(name) {
                        return Err(format!("'{name}' is a required property"));
                    }
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            for (name, value) in members {
                match properties.and_then(|p| p.get(name)) {
                    Some(property) => self.check(property, value)?,
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            return Err(format!(
                                "Additional properties are not allowed ({} was unexpected)",
                                py_repr(&Value::String(name.clone()))
                            ))
                        }
                        Some(additional @ Value::Object(_)) => self.check(additional, value)?,
                        _ => {}
                    },
                }
            }
        }
        Ok(())
    }
}

fn collect_patterns(schema: &Value, into: &mut HashMap<String, Regex>) -> Result<(), String> {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(pattern)) = map.get("pattern") {
                let regex =
                    Regex::new(pattern).map_err(|e| format!("invalid pattern {pattern}: {e}"))?;
                into.insert(pattern.clone(), regex);
            }
            map.values().try_for_each(|v| collect_patterns(v, into))
        }
        Value::Array(items) => items.iter().try_for_each(|v| collect_patterns(v, into)),
        _ => Ok(()),
    }
}

fn has_type(instance: &Value, name: &str) -> bool {
    match name {
        "null" => instance.is_null(),
        "string" => instance.is_string(),
        "boolean" => instance.is_boolean(),
        "object" => instance.is_object(),
        "array" => instance.is_array(),
        "number" => instance.is_number(),
        "integer" => instance.is_i64() || instance.is_u64(),
        _ => true,
    }
}

/// Renders a JSON value as Python's `repr` of the decoded value, as jsonschema messages do.
pub fn py_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let quote = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::with_capacity(s.len() + 2);
            out.push(quote);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
            out
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", py_repr(&Value::String(k.clone())), py_repr(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn validator() -> Validator {
        Validator::new(json!({
            "type": "object",
            "properties": {
                "name": {"type": ["null", "string"], "maxLength": 5},
                "fmt": {"type": ["null", "string"], "enum": [null, "raw", "qcow2"]},
                "id": {"type": "string", "pattern": "^[0-9a-f]{4}$"},
                "min": {"type": "integer", "minimum": 0},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}}
            },
            "additionalProperties": {"type": "string"},
            "required": ["id"]
        }))
        .expect("schema compiles")
    }

    #[test]
    fn accepts_valid_instances() {
        let v = validator();
        assert_eq!(v.validate(&json!({"id": "00af", "name": null, "fmt": "raw", "min": 3, "tags": ["a"], "x": "y"})), Ok(()));
    }

    #[test]
    fn words_failures_like_python_jsonschema() {
        let v = validator();
        assert_eq!(
            v.validate(&json!({"id": "00af", "fmt": "vhd"}))
                .unwrap_err(),
            "'vhd' is not one of [None, 'raw', 'qcow2']"
        );
        assert_eq!(
            v.validate(&json!({"id": "00af", "name": "toolong"}))
                .unwrap_err(),
            "'toolong' is too long"
        );
        assert_eq!(
            v.validate(&json!({"id": "00af", "min": -1})).unwrap_err(),
            "-1 is less than the minimum of 0"
        );
        assert_eq!(
            v.validate(&json!({"id": "zz"})).unwrap_err(),
            "'zz' does not match '^[0-9a-f]{4}$'"
        );
        assert_eq!(
            v.validate(&json!({"id": "00af", "x": 5})).unwrap_err(),
            "5 is not of type 'string'"
        );
        assert_eq!(
            v.validate(&json!({"id": "00af", "min": "5"})).unwrap_err(),
            "'5' is not of type 'integer'"
        );
        assert_eq!(
            v.validate(&json!({})).unwrap_err(),
            "'id' is a required property"
        );
        assert_eq!(
            v.validate(&json!({"id": "00af", "tags": ["long"]}))
                .unwrap_err(),
            "'long' is too long"
        );
    }

    #[test]
    fn validates_single_properties() {
        let v = validator();
        assert!(v.validate_property("min", &json!(1)).is_ok());
        assert!(v.validate_property("min", &json!(1.5)).is_err());
        assert!(v.validate_property("custom", &json!("s")).is_ok());
        assert!(v.validate_property("custom", &json!(true)).is_err());
    }

    #[test]
    fn python_repr_of_strings_with_quotes() {
        assert_eq!(py_repr(&json!("it's")), "\"it's\"");
        assert_eq!(py_repr(&json!({"a": [true, null]})), "{'a': [True, None]}");
    }
}
