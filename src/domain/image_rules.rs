//! The attribute rules of image requests, shared by create and PATCH: which names a client
//! may write, the checks on values beyond the schema, and how one JSON-patch change applies.

use serde_json::{Map, Value};

use super::context::RequestContext;
use super::error::{DomainError, DomainResult, Refusal};
use super::image::{Image, Visibility};
use super::patch::{Change, Op, PatchDialect};
use super::schema::{BASE_ATTRIBUTES, READ_ONLY, RESERVED, RESERVED_PREFIX};
use super::status::ImageStatus;

/// Attributes that only ever appear in responses; refused first on create.
pub(super) const OUTPUT_ONLY: [&str; 5] = ["direct_url", "self", "file", "schema", "stores"];

pub(super) fn read_only(key: &str) -> DomainError {
    DomainError::forbidden(format!("Attribute '{key}' is read-only."))
}

/// Names no client may use: Glance's reserved names and its `os_glance*` namespace.
pub(super) fn is_reserved(key: &str) -> bool {
    RESERVED.contains(&key) || key.starts_with(RESERVED_PREFIX)
}

/// Whether `key` is a core attribute (as opposed to an extra property).
pub(super) fn is_schema_property(key: &str) -> bool {
    BASE_ATTRIBUTES.contains(&key) || READ_ONLY.contains(&key) || key == "locations"
}

/// A count limit, Glance's wording, checked only when the count grows.
pub(super) fn check_count(
    quota: Option<usize>,
    count: usize,
    before: Option<usize>,
    what: &str,
) -> DomainResult<()> {
    match quota {
        Some(quota) if count > quota && before.is_none_or(|was| count > was) => {
            Err(DomainError::over_limit(format!(
                "The limit has been exceeded on the number of allowed {what}. Attempted: {count}, Maximum: {quota}"
            )))
        }
        _ => Ok(()),
    }
}

/// `min_ram` and `min_disk` must be non-negative and fit the database column. Integers beyond
/// 64 bits or written with an exponent are out of range too, never wrapped or zeroed.
pub(super) fn check_boot_minimums(values: &Map<String, Value>) -> DomainResult<()> {
    for key in ["min_ram", "min_disk"] {
        let Some(number) = values.get(key).and_then(Value::as_number) else {
            continue;
        };
        let Some(value) = number.as_i64() else {
            return Err(DomainError::bad_request(format!(
                "'{key}' value out of range, must not exceed 2147483647."
            )));
        };
        if value < 0 {
            return Err(DomainError::bad_request(format!(
                "Invalid value '{value}' for parameter '{key}': Cannot be a negative value"
            )));
        }
        if value > i64::from(i32::MAX) {
            return Err(DomainError::bad_request(format!(
                "'{key}' value out of range, must not exceed 2147483647."
            )));
        }
    }
    Ok(())
}

/// Text no database may store: PostgreSQL refuses NUL characters in text columns, so every
/// database refuses them, naming the field.
pub(super) fn check_storable(field: &str, text: &str) -> DomainResult<()> {
    if text.contains('\0') {
        return Err(DomainError::bad_request(format!(
            "Invalid value for '{}': NUL characters are not allowed.",
            field.replace('\0', "\\0")
        )));
    }
    Ok(())
}

/// `check_storable` for a JSON value and everything inside it; `field` names it.
pub(super) fn check_storable_json(field: &str, value: &Value) -> DomainResult<()> {
    match value {
        Value::String(text) => check_storable(field, text),
        Value::Array(items) => items.iter().try_for_each(|v| check_storable_json(field, v)),
        Value::Object(map) => map.iter().try_for_each(|(key, v)| {
            check_storable(field, key)?;
            check_storable_json(field, v)
        }),
        _ => Ok(()),
    }
}

pub(super) fn invalid_object(reason: String) -> DomainError {
    DomainError::bad_request(format!(
        "Provided object does not match schema 'image': {reason}"
    ))
}

/// Sets a base attribute or extra property from an already schema-validated value.
pub(super) fn set_attribute(image: &mut Image, key: &str, value: &Value) {
    let text = || value.as_str().map(str::to_owned);
    let int = || {
        value
            .as_i64()
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(0)
    };
    match key {
        "name" => image.name = text(),
        "visibility" => {
            if let Some(v) = value.as_str().and_then(Visibility::parse) {
                image.visibility = v;
            }
        }
        "protected" => image.protected = value.as_bool().unwrap_or(false),
        "os_hidden" => image.os_hidden = value.as_bool().unwrap_or(false),
        "owner" => image.owner = text(),
        "container_format" => image.container_format = text(),
        "disk_format" => image.disk_format = text(),
        "min_disk" => image.min_disk = int(),
        "min_ram" => image.min_ram = int(),
        "tags" => image.set_tags(
            value
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned),
        ),
        _ => {
            if let Some(v) = value.as_str() {
                image.properties.insert(key.to_owned(), v.to_owned());
            }
        }
    }
}

/// Applies one validated change to `image`, with Glance's PATCH semantics.
pub(super) fn apply_change(
    ctx: &RequestContext,
    image: &mut Image,
    dialect: PatchDialect,
    change: &Change,
) -> DomainResult<()> {
    let key = change.path[0].as_str();
    let is_base = BASE_ATTRIBUTES.contains(&key);
    let detail = |kind, text: String| Err(DomainError::with_detail(kind, text));
    let Some(value) = &change.value else {
        // Remove.
        if is_base {
            return detail(
                Refusal::Forbidden,
                format!("Property {key} may not be removed."),
            );
        }
        if image.properties.remove(key).is_none() {
            return detail(Refusal::Conflict, format!("Property {key} does not exist."));
        }
        return Ok(());
    };
    let exists = is_base || image.properties.contains_key(key);
    if change.op == Op::Replace && !exists {
        return detail(Refusal::Conflict, format!("Property {key} does not exist."));
    }
    // v2.1 `add` of an existing attribute replaces it; the deprecated v2.0 form refuses.
    if change.op == Op::Add && exists && dialect == PatchDialect::V2_0 {
        return detail(
            Refusal::Conflict,
            format!("Property {key} already present."),
        );
    }
    if (key == "disk_format" || key == "container_format")
        && !matches!(image.status, ImageStatus::Queued | ImageStatus::Importing)
    {
        return Err(DomainError::forbidden(format!(
            "Attribute {key} can be only replaced for a queued image."
        )));
    }
    if key == "owner" && !ctx.is_admin && value.as_str() != image.owner.as_deref() {
        return detail(
            Refusal::Forbidden,
            "Owner can't be updated by non admin.".to_owned(),
        );
    }
    set_attribute(image, key, value);
    Ok(())
}
