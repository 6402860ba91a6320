//! Namespaces: create with content, show, list (filters, sort, pages), replace, delete and
//! the DELETEs of a namespace's content; visibility, policy and protection.

use axum::http::Method;
use serde_json::json;

use super::*;
use crate::all_databases;

const NAMESPACES: &str = "/v2/metadefs/namespaces";

all_databases!(fn namespace_created_with_content_is_shown_with_it(app, TRUSTED) {
    let created = post(&app, ADMIN, NAMESPACES, json!({
        "namespace": "OS::Test::Full",
        "display_name": "Full",
        "description": "All of it",
        "resource_type_associations": [{"name": "OS::Nova::Flavor", "prefix": "hw:"}],
        "properties": {"cores": {"title": "Cores", "type": "integer", "minimum": 1}},
        "objects": [{"name": "CPU", "required": ["sockets"], "properties": {"sockets": {"title": "Sockets", "type": "integer"}}}],
        "tags": [{"name": "compute"}]
    })).await;
    created.assert_status(201);
    assert_eq!(
        created.header("location"),
        Some("http://glint.test:9292/v2/metadefs/namespaces/OS::Test::Full")
    );
    let body = created.json();
    assert_eq!(body["namespace"], "OS::Test::Full");
    assert_eq!(body["visibility"], "private");
    assert_eq!(body["protected"], false);
    assert_eq!(body["owner"], "owner");
    assert_eq!(body["self"], "/v2/metadefs/namespaces/OS::Test::Full");
    assert_eq!(body["schema"], "/v2/schemas/metadefs/namespace");
    assert_eq!(body["properties"]["cores"]["minimum"], 1);
    assert_eq!(body["objects"][0]["name"], "CPU");
    assert_eq!(body["tags"], json!([{"name": "compute"}]));
    assert_eq!(body["resource_type_associations"][0]["prefix"], "hw:");
    assert!(body["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{body}");

    let shown = get(&app, READER, "/v2/metadefs/namespaces/OS::Test::Full").await;
    shown.assert_status(200);
    let shown = shown.json();
    assert_eq!(shown["display_name"], "Full");
    assert_eq!(shown["objects"][0]["self"], "/v2/metadefs/namespaces/OS::Test::Full/objects/CPU");
    assert_eq!(shown["objects"][0]["schema"], "/v2/schemas/metadefs/object");
    assert_eq!(shown["objects"][0]["required"], json!(["sockets"]));
    assert_eq!(shown["properties"]["cores"], json!({"title": "Cores", "type": "integer", "minimum": 1}));
    assert_eq!(shown["tags"], json!([{"name": "compute"}]));
    let association = &shown["resource_type_associations"][0];
    assert_eq!(association["name"], "OS::Nova::Flavor");
    assert!(association["created_at"].is_string(), "{shown}");

    // Prefixed for a resource type; an unknown one changes nothing.
    let prefixed = get(&app, READER, "/v2/metadefs/namespaces/OS::Test::Full?resource_type=OS::Nova::Flavor").await.json();
    assert!(prefixed["properties"]["hw:cores"].is_object(), "{prefixed}");
    assert!(prefixed["objects"][0]["properties"]["hw:sockets"].is_object(), "{prefixed}");
    assert_eq!(prefixed["objects"][0]["required"], json!(["hw:sockets"]));
    let plain = get(&app, READER, "/v2/metadefs/namespaces/OS::Test::Full?resource_type=OS::Cinder::Volume").await.json();
    assert!(plain["properties"]["cores"].is_object(), "{plain}");
});

all_databases!(fn visibility_decides_who_sees_a_namespace(app, TRUSTED) {
    namespace(&app, json!({"namespace": "private-ns"})).await;
    namespace(&app, json!({"namespace": "public-ns", "visibility": "public"})).await;
    namespace(&app, json!({"namespace": "third-ns", "owner": "third"})).await;

    for who in [MEMBER, READER] {
        get(&app, who, "/v2/metadefs/namespaces/private-ns").await.assert_status(200);
        let listed = names(&get(&app, who, NAMESPACES).await.json(), "namespaces");
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(!listed.contains(&"third-ns".to_owned()));
    }
    for who in [OTHER_MEMBER, OTHER_READER] {
        let hidden = get(&app, who, "/v2/metadefs/namespaces/private-ns").await;
        hidden.assert_status(404);
        get(&app, who, "/v2/metadefs/namespaces/public-ns").await.assert_status(200);
        let listed = names(&get(&app, who, NAMESPACES).await.json(), "namespaces");
        assert_eq!(listed, vec!["public-ns".to_owned()]);
    }
    let all = names(&get(&app, ADMIN, NAMESPACES).await.json(), "namespaces");
    assert_eq!(all.len(), 3, "{all:?}");
    let missing = get(&app, ADMIN, "/v2/metadefs/namespaces/nothing").await;
    missing.assert_status(404);
    assert_eq!(missing.error_message(), "Metadata definition namespace=nothing was not found.");
});

all_databases!(fn only_administrators_change_namespaces(app, TRUSTED) {
    namespace(&app, json!({"namespace": "mine"})).await;
    namespace(&app, json!({"namespace": "open", "visibility": "public"})).await;
    for who in [MEMBER, READER, OTHER_MEMBER] {
        let refused = post(&app, who, NAMESPACES, json!({"namespace": "new"})).await;
        refused.assert_status(403);
        assert_eq!(refused.error_message(), refused_rule("add_metadef_namespace"));
    }
    // The owner's member may read it: 403. Another project cannot: 404.
    let update = put(&app, MEMBER, "/v2/metadefs/namespaces/mine", json!({"namespace": "mine"})).await;
    update.assert_status(403);
    assert_eq!(update.error_message(), refused_rule("modify_metadef_namespace"));
    let hidden = put(&app, OTHER_MEMBER, "/v2/metadefs/namespaces/mine", json!({"namespace": "mine"})).await;
    hidden.assert_status(404);
    assert_eq!(hidden.error_message(), "Namespace mine not found");
    let public = delete(&app, OTHER_MEMBER, "/v2/metadefs/namespaces/open").await;
    public.assert_status(403);
    assert_eq!(public.error_message(), refused_rule("delete_metadef_namespace"));
    for path in ["objects", "properties", "tags"] {
        let refused = delete(&app, READER, &format!("/v2/metadefs/namespaces/mine/{path}")).await;
        refused.assert_status(403);
    }
    get(&app, OTHER_READER, "/v2/metadefs/namespaces/open").await.assert_status(200);
});

fn refused_rule(rule: &str) -> String {
    refused(rule)
}

all_databases!(fn namespace_bodies_are_checked(app, TRUSTED) {
    let malformed = call_raw(&app, ADMIN, Method::POST, NAMESPACES, "{\"namespace\": ").await;
    malformed.assert_status(400);
    let empty = call_raw(&app, ADMIN, Method::POST, NAMESPACES, "").await;
    empty.assert_status(400);
    assert_eq!(empty.error_message(), "Body expected in request.");
    for (body, status, message) in [
        (json!({}), 400, "Provided object does not match schema 'namespace': 'namespace' is a required property"),
        (json!({"namespace": "x", "visibility": "shared"}), 400, "Provided object does not match schema 'namespace': 'shared' is not one of ['public', 'private']"),
        (json!({"namespace": "x", "colour": "red"}), 400, "Provided object does not match schema 'namespace': Additional properties are not allowed ('colour' was unexpected)"),
        (json!({"namespace": "x".repeat(81)}), 400, ""),
        (json!({"namespace": "x", "protected": "yes"}), 400, "Provided object does not match schema 'namespace': 'yes' is not of type 'boolean'"),
        (json!({"namespace": "x", "properties": {"p": {"type": "string"}}}), 400, "Provided object does not match schema 'namespace': 'title' is a required property"),
        (json!({"namespace": "x", "properties": {"p": {"title": "P", "type": "text"}}}), 400, ""),
        (json!({"namespace": "x", "created_at": "now"}), 403, "Attribute 'created_at' is read-only."),
        (json!({"namespace": "x", "self": "/x"}), 403, "Attribute 'self' is read-only."),
        (json!(["x"]), 400, ""),
    ] {
        let refused = post(&app, ADMIN, NAMESPACES, body.clone()).await;
        refused.assert_status(status);
        if !message.is_empty() {
            assert_eq!(refused.error_message(), message, "{body}");
        }
    }
    // Nothing was created.
    assert_eq!(names(&get(&app, ADMIN, NAMESPACES).await.json(), "namespaces"), Vec::<String>::new());
});

all_databases!(fn duplicate_names_conflict(app, TRUSTED) {
    namespace(&app, json!({"namespace": "one"})).await;
    namespace(&app, json!({"namespace": "two"})).await;
    let again = post(&app, ADMIN, NAMESPACES, json!({"namespace": "one"})).await;
    again.assert_status(409);
    assert_eq!(again.error_message(), "The metadata definition namespace=one already exists.");
    let renamed = put(&app, ADMIN, "/v2/metadefs/namespaces/two", json!({"namespace": "one"})).await;
    renamed.assert_status(409);
    assert_eq!(
        renamed.error_message(),
        "Invalid update. It would result in a duplicate metadata definition namespace with the same name of one"
    );
    // Content that repeats a name leaves nothing behind.
    let repeated = post(&app, ADMIN, NAMESPACES, json!({"namespace": "three", "tags": [{"name": "t"}, {"name": "t"}]})).await;
    repeated.assert_status(409);
    get(&app, ADMIN, "/v2/metadefs/namespaces/three").await.assert_status(404);
});

all_databases!(fn replace_sets_every_field(app, TRUSTED) {
    namespace(&app, json!({"namespace": "old", "display_name": "Old", "visibility": "public", "protected": true})).await;
    let replaced = put(&app, ADMIN, "/v2/metadefs/namespaces/old", json!({"namespace": "new", "description": "D"})).await;
    replaced.assert_status(200);
    let body = replaced.json();
    assert_eq!(body["namespace"], "new");
    assert_eq!(body["description"], "D");
    assert!(body.get("display_name").is_none(), "{body}");
    assert_eq!(body["visibility"], "private");
    assert_eq!(body["protected"], false);
    assert_eq!(body["owner"], "owner");
    get(&app, ADMIN, "/v2/metadefs/namespaces/old").await.assert_status(404);
    get(&app, READER, "/v2/metadefs/namespaces/new").await.assert_status(200);
    let missing = put(&app, ADMIN, "/v2/metadefs/namespaces/none", json!({"namespace": "none"})).await;
    missing.assert_status(404);
    assert_eq!(missing.error_message(), "Namespace none not found");
});

all_databases!(fn protected_namespaces_stay(app, TRUSTED) {
    furnished(&app, "guarded", "private").await;
    put(&app, ADMIN, "/v2/metadefs/namespaces/guarded", json!({"namespace": "guarded", "protected": true})).await.assert_status(200);
    let refused = delete(&app, ADMIN, "/v2/metadefs/namespaces/guarded").await;
    refused.assert_status(403);
    assert_eq!(refused.error_message(), "Metadata definition namespace guarded is protected and cannot be deleted.");
    for path in ["objects", "properties", "tags"] {
        let refused = delete(&app, ADMIN, &format!("/v2/metadefs/namespaces/guarded/{path}")).await;
        refused.assert_status(403);
        assert_eq!(refused.error_message(), "Metadata definition namespace guarded is protected and cannot be deleted.");
    }
    let shown = get(&app, ADMIN, "/v2/metadefs/namespaces/guarded").await.json();
    assert_eq!(shown["tags"].as_array().map(Vec::len), Some(2));
    assert_eq!(shown["objects"].as_array().map(Vec::len), Some(1));
});

all_databases!(fn namespace_content_is_deleted_by_kind_then_whole(app, TRUSTED) {
    furnished(&app, "roomy", "private").await;
    delete(&app, ADMIN, "/v2/metadefs/namespaces/roomy/objects").await.assert_status(204);
    let shown = get(&app, ADMIN, "/v2/metadefs/namespaces/roomy").await.json();
    assert!(shown.get("objects").is_none(), "{shown}");
    assert!(shown.get("tags").is_some(), "{shown}");
    delete(&app, ADMIN, "/v2/metadefs/namespaces/roomy/properties").await.assert_status(204);
    delete(&app, ADMIN, "/v2/metadefs/namespaces/roomy/tags").await.assert_status(204);
    let shown = get(&app, ADMIN, "/v2/metadefs/namespaces/roomy").await.json();
    assert!(shown.get("properties").is_none() && shown.get("tags").is_none(), "{shown}");
    assert!(shown.get("resource_type_associations").is_some(), "{shown}");

    delete(&app, ADMIN, "/v2/metadefs/namespaces/roomy").await.assert_status(204);
    let gone = get(&app, ADMIN, "/v2/metadefs/namespaces/roomy").await;
    gone.assert_status(404);
    let again = delete(&app, ADMIN, "/v2/metadefs/namespaces/roomy").await;
    again.assert_status(404);
    assert_eq!(again.error_message(), "Namespace roomy not found");
    // A namespace deleted with its content leaves no row behind.
    furnished(&app, "full", "private").await;
    delete(&app, ADMIN, "/v2/metadefs/namespaces/full").await.assert_status(204);
    assert_eq!(app.scalar("SELECT CAST(COUNT(*) AS TEXT) FROM metadef_objects").await, "0");
    assert_eq!(app.scalar("SELECT CAST(COUNT(*) AS TEXT) FROM metadef_namespace_resource_types").await, "0");
    // The resource type stays in the catalog.
    let types = names(&get(&app, READER, "/v2/metadefs/resource_types").await.json(), "resource_types");
    assert!(types.contains(&"OS::Glance::Image".to_owned()), "{types:?}");
});

all_databases!(fn namespaces_are_paged_sorted_and_filtered(app, TRUSTED) {
    for (name, visibility) in [("a", "public"), ("b", "private"), ("c", "public"), ("d", "private")] {
        namespace(&app, json!({"namespace": name, "visibility": visibility})).await;
    }
    post(&app, ADMIN, "/v2/metadefs/namespaces/c/resource_types", json!({"name": "OS::Cinder::Volume"})).await.assert_status(201);

    let first = get(&app, READER, "/v2/metadefs/namespaces?limit=2&sort_key=namespace&sort_dir=asc").await;
    first.assert_status(200);
    let first = first.json();
    assert_eq!(names(&first, "namespaces"), vec!["a", "b"]);
    assert_eq!(first["first"], "/v2/metadefs/namespaces?limit=2&sort_key=namespace&sort_dir=asc");
    assert_eq!(first["schema"], "/v2/schemas/metadefs/namespaces");
    let next = first["next"].as_str().unwrap_or_default().to_owned();
    assert_eq!(next, "/v2/metadefs/namespaces?limit=2&sort_key=namespace&sort_dir=asc&marker=b");
    let second = get(&app, READER, &next).await.json();
    assert_eq!(names(&second, "namespaces"), vec!["c", "d"]);
    let last = get(&app, READER, "/v2/metadefs/namespaces?limit=2&sort_key=namespace&sort_dir=asc&marker=d").await.json();
    assert_eq!(names(&last, "namespaces"), Vec::<String>::new());
    assert!(last.get("next").is_none(), "{last}");

    let descending = get(&app, READER, "/v2/metadefs/namespaces?sort_key=namespace").await.json();
    assert_eq!(names(&descending, "namespaces"), vec!["d", "c", "b", "a"]);
    assert_eq!(descending["first"], "/v2/metadefs/namespaces?sort_key=namespace");
    let public = get(&app, READER, "/v2/metadefs/namespaces?visibility=public&sort_key=namespace&sort_dir=asc").await.json();
    assert_eq!(names(&public, "namespaces"), vec!["a", "c"]);
    let volumes = get(&app, OTHER_READER, "/v2/metadefs/namespaces?resource_types=OS::Cinder::Volume,OS::Nova::Server").await.json();
    assert_eq!(names(&volumes, "namespaces"), vec!["c"]);
    assert_eq!(volumes["namespaces"][0]["resource_type_associations"][0]["name"], "OS::Cinder::Volume");

    for (query, message) in [
        ("sort_dir=up", "Invalid sort direction: up"),
        ("visibility=shared", "Invalid visibility value: shared"),
        ("limit=-1", "limit param must be positive"),
        ("limit=many", "limit param must be an integer"),
    ] {
        let refused = get(&app, READER, &format!("/v2/metadefs/namespaces?{query}")).await;
        refused.assert_status(400);
        assert_eq!(refused.error_message(), message);
    }
    let unknown_marker = get(&app, READER, "/v2/metadefs/namespaces?marker=zz").await;
    unknown_marker.assert_status(404);
    let hidden_marker = get(&app, OTHER_READER, "/v2/metadefs/namespaces?marker=b").await;
    hidden_marker.assert_status(403);
});

all_databases!(fn text_no_database_stores_is_refused(app, TRUSTED) {
    namespace(&app, json!({"namespace": "ns"})).await;
    for (path, body) in [
        (NAMESPACES.to_owned(), json!({"namespace": "a\u{0}b"})),
        ("/v2/metadefs/namespaces/ns/objects".to_owned(), json!({"name": "o", "description": "x\u{0}"})),
        ("/v2/metadefs/namespaces/ns/properties".to_owned(), json!({"name": "p", "title": "\u{0}", "type": "string"})),
        ("/v2/metadefs/namespaces/ns/tags".to_owned(), json!({"tags": [{"name": "t\u{0}"}]})),
    ] {
        let refused = post(&app, ADMIN, &path, body).await;
        refused.assert_status(400);
        assert!(refused.error_message().contains("NUL characters are not allowed"), "{}", refused.error_message());
    }
    for path in [
        "/v2/metadefs/namespaces/a%00b",
        "/v2/metadefs/namespaces/ns/objects/a%00b",
        "/v2/metadefs/namespaces/ns/properties/a%00b",
        "/v2/metadefs/namespaces/ns/tags/a%00b",
        "/v2/metadefs/namespaces?marker=a%00b",
        "/v2/metadefs/namespaces?resource_types=a%00b",
    ] {
        get(&app, ADMIN, path).await.assert_status(400);
    }
    post(&app, ADMIN, "/v2/metadefs/namespaces/ns/tags/a%00b", json!(null)).await.assert_status(400);
    delete(&app, ADMIN, "/v2/metadefs/namespaces/ns/resource_types/a%00b").await.assert_status(400);
});
