//! Properties of a namespace: their definitions checked against Glance's property document
//! (types, enums, bounds, lengths, patterns, items), shown by prefixed name, protected.

use serde_json::json;

use super::*;
use crate::all_databases;

const PROPERTIES: &str = "/v2/metadefs/namespaces/ns/properties";

all_databases!(fn properties_are_created_shown_replaced_and_deleted(app, TRUSTED) {
    namespace(&app, json!({"namespace": "ns"})).await;
    let created = post(&app, ADMIN, PROPERTIES, json!({
        "name": "hw_disk_bus",
        "title": "Disk bus",
        "type": "string",
        "enum": ["scsi", "virtio"],
        "pattern": "^[a-z]+$",
        "minLength": 2,
        "maxLength": 10,
        "default": "virtio",
        "readonly": false
    })).await;
    created.assert_status(201);
    let body = created.json();
    assert_eq!(body["name"], "hw_disk_bus");
    assert_eq!(body["enum"], json!(["scsi", "virtio"]));
    assert_eq!(body["maxLength"], 10);

    let array = post(&app, ADMIN, PROPERTIES, json!({
        "name": "flags", "title": "Flags", "type": "array",
        "items": {"type": "string", "enum": ["a", "b"]}, "minItems": 1, "maxItems": 2, "uniqueItems": true
    })).await;
    array.assert_status(201);
    assert_eq!(array.json()["items"], json!({"type": "string", "enum": ["a", "b"]}));

    let listed = get(&app, READER, PROPERTIES).await;
    listed.assert_status(200);
    let listed = listed.json();
    assert_eq!(listed["properties"]["hw_disk_bus"]["title"], "Disk bus");
    assert_eq!(listed["properties"]["flags"]["maxItems"], 2);

    let shown = get(&app, MEMBER, &format!("{PROPERTIES}/hw_disk_bus")).await;
    shown.assert_status(200);
    assert_eq!(shown.json()["default"], "virtio");

    let replaced = put(&app, ADMIN, &format!("{PROPERTIES}/hw_disk_bus"), json!({
        "name": "hw_bus", "title": "Bus", "type": "integer", "minimum": 1, "maximum": 4
    })).await;
    replaced.assert_status(200);
    let replaced = replaced.json();
    assert_eq!(replaced["name"], "hw_bus");
    assert!(replaced.get("enum").is_none(), "{replaced}");
    get(&app, ADMIN, &format!("{PROPERTIES}/hw_disk_bus")).await.assert_status(404);

    delete(&app, ADMIN, &format!("{PROPERTIES}/hw_bus")).await.assert_status(204);
    let gone = get(&app, ADMIN, &format!("{PROPERTIES}/hw_bus")).await;
    gone.assert_status(404);
    assert_eq!(gone.error_message(), "Could not find property hw_bus");
});

all_databases!(fn property_definitions_are_checked(app, TRUSTED) {
    namespace(&app, json!({"namespace": "ns"})).await;
    let schema = "Provided object does not match schema 'property': ";
    for (body, status, message) in [
        (json!({"title": "T", "type": "string"}), 400, "'name' is a required property".to_owned()),
        (json!({"name": "p", "type": "string"}), 400, "'title' is a required property".to_owned()),
        (json!({"name": "p", "title": "T", "type": "text"}), 400, "'text' is not one of ['array', 'boolean', 'integer', 'number', 'object', 'string', None]".to_owned()),
        (json!({"name": "p", "title": "T", "type": "integer", "minimum": "1"}), 400, "'1' is not of type 'number'".to_owned()),
        (json!({"name": "p", "title": "T", "type": "string", "maxLength": -1}), 400, "-1 is less than the minimum of 0".to_owned()),
        (json!({"name": "p", "title": "T", "type": "string", "minLength": 1.5}), 400, "1.5 is not of type 'integer'".to_owned()),
        (json!({"name": "p", "title": "T", "type": "string", "enum": "a"}), 400, "'a' is not of type 'array'".to_owned()),
        (json!({"name": "p", "title": "T", "type": "string", "pattern": 5}), 400, "5 is not of type 'string'".to_owned()),
        (json!({"name": "p", "title": "T", "type": "array", "items": {"type": "list"}}), 400, "".to_owned()),
        (json!({"name": "p", "title": "T", "type": "array", "required": []}), 400, "[] is too short".to_owned()),
        (json!({"name": "p", "title": "T", "type": "string", "readonly": "no"}), 400, "'no' is not of type 'boolean'".to_owned()),
        (json!({"name": "p".repeat(81), "title": "T", "type": "string"}), 400, "".to_owned()),
        (json!({"name": "p", "title": "T", "type": "string", "colour": "red"}), 400, "Additional properties are not allowed ('colour' was unexpected)".to_owned()),
        (json!({"name": "p", "title": "T", "type": "string", "updated_at": "x"}), 403, "".to_owned()),
    ] {
        let refused = post(&app, ADMIN, PROPERTIES, body.clone()).await;
        refused.assert_status(status);
        if status == 400 && !message.is_empty() {
            assert_eq!(refused.error_message(), format!("{schema}{message}"), "{body}");
        }
    }
    assert_eq!(get(&app, ADMIN, PROPERTIES).await.json(), json!({"properties": {}}));
});

all_databases!(fn property_names_conflict_and_policy_applies(app, TRUSTED) {
    namespace(&app, json!({"namespace": "ns"})).await;
    let definition = |name: &str| json!({"name": name, "title": "T", "type": "string"});
    post(&app, ADMIN, PROPERTIES, definition("a")).await.assert_status(201);
    post(&app, ADMIN, PROPERTIES, definition("b")).await.assert_status(201);
    let duplicate = post(&app, ADMIN, PROPERTIES, definition("a")).await;
    duplicate.assert_status(409);
    assert_eq!(duplicate.error_message(), "A metadata definition property with name=a already exists in namespace=ns.");
    let renamed = put(&app, ADMIN, &format!("{PROPERTIES}/b"), definition("a")).await;
    renamed.assert_status(409);
    assert_eq!(
        renamed.error_message(),
        "Invalid update. It would result in a duplicate metadata definition property with the same name=a in namespace=ns."
    );
    for who in [MEMBER, READER] {
        let refused = post(&app, who, PROPERTIES, definition("c")).await;
        refused.assert_status(403);
        assert_eq!(refused.error_message(), super::refused("add_metadef_property"));
        put(&app, who, &format!("{PROPERTIES}/a"), definition("a")).await.assert_status(403);
        let refused = delete(&app, who, &format!("{PROPERTIES}/a")).await;
        refused.assert_status(403);
        assert_eq!(refused.error_message(), super::refused("remove_metadef_property"));
    }
    for who in [OTHER_MEMBER, OTHER_READER] {
        let hidden = get(&app, who, &format!("{PROPERTIES}/a")).await;
        hidden.assert_status(404);
        assert_eq!(hidden.error_message(), "Namespace ns not found");
        get(&app, who, PROPERTIES).await.assert_status(404);
    }
});

all_databases!(fn properties_are_found_by_prefixed_name(app, TRUSTED) {
    namespace(&app, json!({"namespace": "ns", "properties": {"cpu": {"title": "CPU", "type": "integer"}}})).await;
    post(&app, ADMIN, "/v2/metadefs/namespaces/ns/resource_types", json!({"name": "OS::Nova::Flavor", "prefix": "hw:"})).await.assert_status(201);
    post(&app, ADMIN, "/v2/metadefs/namespaces/ns/resource_types", json!({"name": "OS::Glance::Image"})).await.assert_status(201);
    let shown = get(&app, READER, &format!("{PROPERTIES}/hw:cpu?resource_type=OS::Nova::Flavor")).await;
    shown.assert_status(200);
    assert_eq!(shown.json()["name"], "cpu");
    let unprefixed = get(&app, READER, &format!("{PROPERTIES}/cpu?resource_type=OS::Nova::Flavor")).await;
    unprefixed.assert_status(404);
    assert_eq!(
        unprefixed.error_message(),
        "Property cpu does not start with the expected resource type association prefix of 'hw:'."
    );
    let no_prefix = get(&app, READER, &format!("{PROPERTIES}/cpu?resource_type=OS::Glance::Image")).await;
    no_prefix.assert_status(404);
    assert_eq!(
        no_prefix.error_message(),
        "Property cpu does not start with the expected resource type association prefix of 'None'."
    );
    let unknown = get(&app, READER, &format!("{PROPERTIES}/cpu?resource_type=OS::Nope")).await;
    unknown.assert_status(404);
    assert_eq!(unknown.error_message(), "The metadata definition resource-type with name=OS::Nope, was not found.");
});

all_databases!(fn properties_of_protected_namespaces_stay(app, TRUSTED) {
    namespace(&app, json!({"namespace": "ns", "protected": true, "properties": {"p": {"title": "P", "type": "string"}}})).await;
    let refused = delete(&app, ADMIN, &format!("{PROPERTIES}/p")).await;
    refused.assert_status(403);
    assert_eq!(refused.error_message(), "Metadata definition property p is protected and cannot be deleted.");
    get(&app, READER, &format!("{PROPERTIES}/p")).await.assert_status(200);
});
