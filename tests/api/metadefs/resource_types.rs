//! Resource types: the catalog's list, and a namespace's associations (create, list,
//! delete) with their policy, duplicates and protection.

use serde_json::json;

use super::*;
use crate::all_databases;

const ASSOCIATIONS: &str = "/v2/metadefs/namespaces/ns/resource_types";

all_databases!(fn associations_are_created_listed_and_removed(app, TRUSTED) {
    namespace(&app, json!({"namespace": "ns"})).await;
    let created = post(&app, ADMIN, ASSOCIATIONS, json!({
        "name": "OS::Nova::Server", "prefix": "os_", "properties_target": "metadata"
    })).await;
    created.assert_status(201);
    let body = created.json();
    assert_eq!(body["name"], "OS::Nova::Server");
    assert_eq!(body["prefix"], "os_");
    assert_eq!(body["properties_target"], "metadata");
    assert!(body["created_at"].is_string(), "{body}");

    let listed = get(&app, READER, ASSOCIATIONS).await;
    listed.assert_status(200);
    assert_eq!(names(&listed.json(), "resource_type_associations"), vec!["OS::Nova::Server"]);
    let catalog = get(&app, OTHER_READER, "/v2/metadefs/resource_types").await;
    catalog.assert_status(200);
    let catalog = catalog.json();
    assert_eq!(names(&catalog, "resource_types"), vec!["OS::Nova::Server"]);
    assert!(catalog["resource_types"][0]["created_at"].is_string(), "{catalog}");

    delete(&app, ADMIN, &format!("{ASSOCIATIONS}/OS::Nova::Server")).await.assert_status(204);
    assert_eq!(get(&app, READER, ASSOCIATIONS).await.json(), json!({"resource_type_associations": []}));
    let again = delete(&app, ADMIN, &format!("{ASSOCIATIONS}/OS::Nova::Server")).await;
    again.assert_status(404);
    assert_eq!(again.error_message(), "Failed to find resource type OS::Nova::Server to delete");
    // The resource type itself stays.
    assert_eq!(names(&get(&app, READER, "/v2/metadefs/resource_types").await.json(), "resource_types"), vec!["OS::Nova::Server"]);
});

all_databases!(fn association_requests_are_checked(app, TRUSTED) {
    namespace(&app, json!({"namespace": "ns"})).await;
    post(&app, ADMIN, ASSOCIATIONS, json!({"name": "OS::Cinder::Volume"})).await.assert_status(201);
    let duplicate = post(&app, ADMIN, ASSOCIATIONS, json!({"name": "OS::Cinder::Volume"})).await;
    duplicate.assert_status(409);
    assert_eq!(
        duplicate.error_message(),
        "The metadata definition resource-type association of resource-type=OS::Cinder::Volume to namespace=ns already exists."
    );
    for (body, status, message) in [
        (json!({}), 400, "Provided object does not match schema 'resource_type_association': 'name' is a required property"),
        (json!({"name": "T", "prefix": 1}), 400, "Provided object does not match schema 'resource_type_association': 1 is not of type 'string'"),
        (json!({"name": "T", "other": 1}), 400, "Provided object does not match schema 'resource_type_association': Additional properties are not allowed ('other' was unexpected)"),
        (json!({"name": "T", "updated_at": "x"}), 403, "Attribute 'updated_at' is read-only."),
    ] {
        let refused = post(&app, ADMIN, ASSOCIATIONS, body.clone()).await;
        refused.assert_status(status);
        assert_eq!(refused.error_message(), message, "{body}");
    }
    let missing = post(&app, ADMIN, "/v2/metadefs/namespaces/none/resource_types", json!({"name": "T"})).await;
    missing.assert_status(404);
    assert_eq!(missing.error_message(), "Namespace none not found");
});

all_databases!(fn association_policy_and_protection(app, TRUSTED) {
    namespace(&app, json!({"namespace": "ns", "resource_type_associations": [{"name": "OS::Glance::Image"}]})).await;
    namespace(&app, json!({"namespace": "locked", "protected": true, "resource_type_associations": [{"name": "OS::Glance::Image"}]})).await;
    for who in [MEMBER, READER] {
        let refused = post(&app, who, ASSOCIATIONS, json!({"name": "OS::Nova::Server"})).await;
        refused.assert_status(403);
        assert_eq!(refused.error_message(), super::refused("add_metadef_resource_type_association"));
        let refused = delete(&app, who, &format!("{ASSOCIATIONS}/OS::Glance::Image")).await;
        refused.assert_status(403);
        assert_eq!(refused.error_message(), super::refused("remove_metadef_resource_type_association"));
        get(&app, who, ASSOCIATIONS).await.assert_status(200);
        get(&app, who, "/v2/metadefs/resource_types").await.assert_status(200);
    }
    for who in [OTHER_MEMBER, OTHER_READER] {
        let hidden = get(&app, who, ASSOCIATIONS).await;
        hidden.assert_status(404);
        assert_eq!(hidden.error_message(), "Namespace ns not found");
    }
    let protected = delete(&app, ADMIN, "/v2/metadefs/namespaces/locked/resource_types/OS::Glance::Image").await;
    protected.assert_status(403);
    assert_eq!(
        protected.error_message(),
        "Metadata definition resource-type-association OS::Glance::Image is protected and cannot be deleted."
    );
});
