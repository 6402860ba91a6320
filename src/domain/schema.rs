//! The JSON schemas served under `/v2/schemas/…`, built once from configuration, and the
//! validator the service checks request bodies with — the same document clients download.

use serde_json::{json, Value};

use super::image::Visibility;
use super::jsonschema::Validator;
use super::status::ImageStatus;

const UUID_PATTERN: &str =
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$";

/// Image attributes a client may never set (403 "read-only").
pub const READ_ONLY: [&str; 14] = [
    "created_at",
    "updated_at",
    "status",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "direct_url",
    "self",
    "file",
    "schema",
    "stores",
    "id",
];

/// Attribute names Glance reserves for itself (403 "reserved").
pub const RESERVED: [&str; 4] = ["owner_id", "location", "deleted", "deleted_at"];

/// Properties starting with this are owned by the service (import locks, staging hosts).
pub const RESERVED_PREFIX: &str = "os_glance";

/// Attributes stored in the image row rather than as extra properties.
pub const BASE_ATTRIBUTES: [&str; 10] = [
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "owner",
    "container_format",
    "disk_format",
    "min_disk",
    "min_ram",
    "tags",
];

/// The formats an operator allows (`[image_format] disk_formats`, `container_formats`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formats {
    pub disk_formats: Vec<String>,
    pub container_formats: Vec<String>,
}

impl Default for Formats {
    fn default() -> Formats {
        let list = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        Formats {
            disk_formats: list(&[
                "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
            ]),
            container_formats: list(&[
                "ami",
                "ari",
                "aki",
                "bare",
                "ovf",
                "ova",
                "docker",
                "compressed",
            ]),
        }
    }
}

/// Every schema document, rendered once at start-up.
#[derive(Debug, Clone)]
pub struct Schemas {
    pub image: Validator,
    pub images: Value,
    pub member: Value,
    pub members: Value,
}

impl Schemas {
    pub fn new(formats: &Formats) -> Result<Schemas, String> {
        let image = image_schema(formats);
        let member = member_schema();
        Ok(Schemas {
            images: collection_schema("images", &image),
            members: json!({
                "name": "members",
                "properties": {
                    "members": {"type": "array", "items": member},
                    "schema": {"type": "string"}
                },
                "links": [{"rel": "describedby", "href": "{schema}"}]
            }),
            member,
            image: Validator::new(image)?,
        })
    }
}

fn enum_with_null(values: &[String]) -> Value {
    let mut items = vec![Value::Null];
    items.extend(values.iter().cloned().map(Value::String));
    Value::Array(items)
}

fn image_schema(formats: &Formats) -> Value {
    let statuses: Vec<&str> = ImageStatus::ALL.iter().map(|s| s.as_str()).collect();
    let visibilities: Vec<&str> = Visibility::ALL.iter().map(|v| v.as_str()).collect();
    json!({
        "name": "image",
        "properties": {
            "id": {"type": "string", "description": "Image identifier (a UUID).", "pattern": UUID_PATTERN},
            "name": {"type": ["null", "string"], "description": "Human-readable name; not unique.", "maxLength": 255},
            "status": {"type": "string", "readOnly": true, "description": "Lifecycle status of the image.", "enum": statuses},
            "visibility": {"type": "string", "description": "Who may see the image.", "enum": visibilities},
            "protected": {"type": "boolean", "description": "Protected images cannot be deleted."},
            "os_hidden": {"type": "boolean", "description": "Hidden images are left out of default lists."},
            "checksum": {"type": ["null", "string"], "readOnly": true, "description": "MD5 of the image data.", "maxLength": 32},
            "os_hash_algo": {"type": ["null", "string"], "readOnly": true, "description": "Algorithm of os_hash_value.", "maxLength": 64},
            "os_hash_value": {"type": ["null", "string"], "readOnly": true, "description": "Hex digest of the image data by os_hash_algo.", "maxLength": 128},
            "owner": {"type": ["null", "string"], "description": "Project that owns the image.", "maxLength": 255},
            "size": {"type": ["null", "integer"], "readOnly": true, "description": "Size of the image data in bytes."},
            "virtual_size": {"type": ["null", "integer"], "readOnly": true, "description": "Virtual disk size in bytes."},
            "container_format": {"type": ["null", "string"], "description": "Container format of the image data.", "enum": enum_with_null(&formats.container_formats)},
            "disk_format": {"type": ["null", "string"], "description": "Disk format of the image data.", "enum": enum_with_null(&formats.disk_formats)},
            "created_at": {"type": "string", "readOnly": true, "description": "When the image was created."},
            "updated_at": {"type": "string", "readOnly": true, "description": "When the image was last changed."},
            "tags": {"type": "array", "description": "Free-form tags.", "items": {"type": "string", "maxLength": 255}},
            "direct_url": {"type": "string", "readOnly": true, "description": "Location of the image data in its store."},
            "min_ram": {"type": "integer", "description": "RAM in MB needed to boot the image."},
            "min_disk": {"type": "integer", "description": "Disk in GB needed to boot the image."},
            "self": {"type": "string", "readOnly": true, "description": "Path of this image."},
            "file": {"type": "string", "readOnly": true, "description": "Path of the image data."},
            "stores": {"type": "string", "readOnly": true, "description": "Comma-separated ids of the stores holding the data."},
            "schema": {"type": "string", "readOnly": true, "description": "Path of this schema."},
            "locations": locations_schema()
        },
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"}
        ]
    })
}

/// Image locations (shown only with `show_multiple_locations`).
fn locations_schema() -> Value {
    json!({
        "type": "array",
        "description": "Where the image data is stored.",
        "items": {
            "type": "object",
            "properties": {
                "url": {"type": "string", "maxLength": 255},
                "metadata": {"type": "object"},
                "validation_data": {
                    "type": "object",
                    "description": "Checksums of the data at this location, accepted only while the image is queued.",
                    "properties": {
                        "checksum": {"type": "string", "minLength": 32, "maxLength": 32},
                        "os_hash_algo": {"type": "string", "maxLength": 64},
                        "os_hash_value": {"type": "string", "maxLength": 128}
                    },
                    "required": ["os_hash_algo", "os_hash_value"],
                    "additionalProperties": false
                }
            },
            "required": ["url", "metadata"]
        }
    })
}

fn collection_schema(name: &str, item: &Value) -> Value {
    json!({
        "name": name,
        "properties": {
            name: {"type": "array", "items": item},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"}
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"}
        ]
    })
}

fn member_schema() -> Value {
    json!({
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "When the member was added."},
            "image_id": {"type": "string", "description": "The shared image.", "pattern": UUID_PATTERN},
            "member_id": {"type": "string", "description": "The project the image is shared with."},
            "schema": {"type": "string", "readOnly": true},
            "status": {"type": "string", "description": "The member's answer to the share.", "enum": ["pending", "accepted", "rejected"]},
            "updated_at": {"type": "string", "description": "When the member was last changed."}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_schema_enforces_configured_formats() {
        let schemas = Schemas::new(&Formats::default()).expect("schemas build");
        assert!(schemas
            .image
            .validate(&json!({"disk_format": "qcow2", "container_format": "bare"}))
            .is_ok());
        assert!(schemas
            .image
            .validate(&json!({"disk_format": null}))
            .is_ok());
        assert!(schemas
            .image
            .validate(&json!({"disk_format": "floppy"}))
            .is_err());
        assert!(schemas.image.validate(&json!({"hw_disk_bus": 1})).is_err());
        assert!(schemas
            .image
            .validate(&json!({"id": "not-a-uuid"}))
            .is_err());
    }
}
