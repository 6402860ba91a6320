//! Objects of a namespace: create, list, show, replace and delete, their property
//! definitions checked, with every persona.

use serde_json::json;

use super::*;
use crate::all_databases;

const OBJECTS: &str = "/v2/metadefs/namespaces/ns/objects";

all_databases!(fn objects_are_created_shown_replaced_and_deleted(app, TRUSTED) {
    namespace(&app, json!({"namespace": "ns"})).await;
    let created = post(&app, ADMIN, OBJECTS, json!({
        "name": "Memory",
        "description": "RAM",
        "required": ["size"],
        "properties": {"size": {"title": "Size", "type": "integer", "minimum": 0, "maximum": 64}}
    })).await;
    created.assert_status(201);
    let body = created.json();
    assert_eq!(body["self"], "/v2/metadefs/namespaces/ns/objects/Memory");
    assert_eq!(body["schema"], "/v2/schemas/metadefs/object");
    assert_eq!(body["properties"]["size"]["maximum"], 64);
    assert_eq!(body["required"], json!(["size"]));

    let listed = get(&app, READER, OBJECTS).await;
    listed.assert_status(200);
    let listed = listed.json();
    assert_eq!(listed["schema"], "v2/schemas/metadefs/objects");
    assert_eq!(names(&listed, "objects"), vec!["Memory"]);
    let shown = get(&app, MEMBER, "/v2/metadefs/namespaces/ns/objects/Memory").await;
    shown.assert_status(200);
    assert_eq!(shown.json()["description"], "RAM");

    let replaced = put(&app, ADMIN, "/v2/metadefs/namespaces/ns/objects/Memory", json!({"name": "RAM"})).await;
    replaced.assert_status(200);
    let replaced = replaced.json();
    assert_eq!(replaced["name"], "RAM");
    assert!(replaced.get("description").is_none(), "{replaced}");
    // Glance answers the write without what the body left out; a read shows it empty.
    assert!(replaced.get("required").is_none() && replaced.get("properties").is_none(), "{replaced}");
    let reread = get(&app, READER, "/v2/metadefs/namespaces/ns/objects/RAM").await.json();
    assert_eq!(reread["required"], json!([]));
    assert_eq!(reread["properties"], json!({}));
    get(&app, ADMIN, "/v2/metadefs/namespaces/ns/objects/Memory").await.assert_status(404);

    delete(&app, ADMIN, "/v2/metadefs/namespaces/ns/objects/RAM").await.assert_status(204);
    let gone = get(&app, ADMIN, "/v2/metadefs/namespaces/ns/objects/RAM").await;
    gone.assert_status(404);
    assert_eq!(gone.error_message(), "Could not find metadata object RAM");
});

all_databases!(fn object_rules_follow_glance_policy(app, TRUSTED) {
    namespace(&app, json!({"namespace": "ns"})).await;
    namespace(&app, json!({"namespace": "pub", "visibility": "public"})).await;
    post(&app, ADMIN, OBJECTS, json!({"name": "O"})).await.assert_status(201);
    post(&app, ADMIN, "/v2/metadefs/namespaces/pub/objects", json!({"name": "P"})).await.assert_status(201);
    for who in [MEMBER, READER] {
        let refused = post(&app, who, OBJECTS, json!({"name": "X"})).await;
        refused.assert_status(403);
        assert_eq!(refused.error_message(), super::refused("add_metadef_object"));
        put(&app, who, &format!("{OBJECTS}/O"), json!({"name": "O"})).await.assert_status(403);
        delete(&app, who, &format!("{OBJECTS}/O")).await.assert_status(403);
    }
    for who in [OTHER_MEMBER, OTHER_READER] {
        let hidden = get(&app, who, &format!("{OBJECTS}/O")).await;
        hidden.assert_status(404);
        assert_eq!(hidden.error_message(), "Namespace ns not found");
        get(&app, who, OBJECTS).await.assert_status(404);
        get(&app, who, "/v2/metadefs/namespaces/pub/objects/P").await.assert_status(200);
        delete(&app, who, "/v2/metadefs/namespaces/pub/objects/P").await.assert_status(403);
    }
    let missing_ns = get(&app, ADMIN, "/v2/metadefs/namespaces/none/objects").await;
    missing_ns.assert_status(404);
    assert_eq!(missing_ns.error_message(), "Metadata definition namespace=none was not found.");
});

all_databases!(fn object_bodies_and_names_are_checked(app, TRUSTED) {
    namespace(&app, json!({"namespace": "ns"})).await;
    post(&app, ADMIN, OBJECTS, json!({"name": "O"})).await.assert_status(201);
    post(&app, ADMIN, OBJECTS, json!({"name": "Q"})).await.assert_status(201);
    for (body, status, message) in [
        (json!({}), 400, "Provided object does not match schema 'object': 'name' is a required property"),
        (json!({"name": "X", "required": "a"}), 400, "Provided object does not match schema 'object': 'a' is not of type 'array'"),
        (json!({"name": "X", "required": ["a", "a"]}), 400, "Provided object does not match schema 'object': ['a', 'a'] has non-unique elements"),
        (json!({"name": "X", "properties": {"p": {"title": "P", "type": "string", "format": "uri"}}}), 400, "Provided object does not match schema 'property': Additional properties are not allowed ('format' was unexpected)"),
        (json!({"name": "X", "properties": {"p": {"title": "P", "type": "string", "maxLength": -2}}}), 400, ""),
        (json!({"name": "X", "schema": "s"}), 403, "Attribute 'schema' is read-only."),
    ] {
        let refused = post(&app, ADMIN, OBJECTS, body.clone()).await;
        refused.assert_status(status);
        if !message.is_empty() {
            assert_eq!(refused.error_message(), message, "{body}");
        }
    }
    let duplicate = post(&app, ADMIN, OBJECTS, json!({"name": "O"})).await;
    duplicate.assert_status(409);
    assert_eq!(duplicate.error_message(), "A metadata definition object with name=O already exists in namespace=ns.");
    let renamed = put(&app, ADMIN, &format!("{OBJECTS}/Q"), json!({"name": "O"})).await;
    renamed.assert_status(409);
    assert_eq!(
        renamed.error_message(),
        "Invalid update. It would result in a duplicate metadata definition object with the same name=O in namespace=ns."
    );
    put(&app, ADMIN, &format!("{OBJECTS}/none"), json!({"name": "none"})).await.assert_status(404);
    let bad_limit = get(&app, READER, &format!("{OBJECTS}?limit=0")).await;
    bad_limit.assert_status(400);
    assert_eq!(bad_limit.error_message(), "limit param must be positive");
    let names = names(&get(&app, READER, OBJECTS).await.json(), "objects");
    assert_eq!(names.len(), 2, "{names:?}");
});

all_databases!(fn objects_of_protected_namespaces_stay(app, TRUSTED) {
    namespace(&app, json!({"namespace": "ns", "protected": true})).await;
    post(&app, ADMIN, OBJECTS, json!({"name": "O"})).await.assert_status(201);
    let refused = delete(&app, ADMIN, &format!("{OBJECTS}/O")).await;
    refused.assert_status(403);
    assert_eq!(refused.error_message(), "Metadata definition object O is protected and cannot be deleted.");
    get(&app, ADMIN, &format!("{OBJECTS}/O")).await.assert_status(200);
});
