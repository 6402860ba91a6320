//! Tags of a namespace: create one, create many (replacing or appending), list with sort and
//! markers, rename, delete; names checked, duplicates refused, protection kept.

use axum::http::Method;
use serde_json::json;

use super::*;
use crate::all_databases;

const TAGS: &str = "/v2/metadefs/namespaces/ns/tags";

all_databases!(fn tags_are_created_renamed_and_deleted(app, TRUSTED) {
    namespace(&app, json!({"namespace": "ns"})).await;
    let created = post(&app, ADMIN, &format!("{TAGS}/first"), json!(null)).await;
    created.assert_status(201);
    let body = created.json();
    assert_eq!(body["name"], "first");
    assert!(body["created_at"].is_string() && body["updated_at"].is_string(), "{body}");

    let shown = get(&app, READER, &format!("{TAGS}/first")).await;
    shown.assert_status(200);
    assert_eq!(shown.json()["name"], "first");

    let renamed = put(&app, ADMIN, &format!("{TAGS}/first"), json!({"name": "renamed"})).await;
    renamed.assert_status(200);
    assert_eq!(renamed.json()["name"], "renamed");
    let old = get(&app, ADMIN, &format!("{TAGS}/first")).await;
    old.assert_status(404);
    assert_eq!(old.error_message(), "Could not find metadata tag first");

    delete(&app, ADMIN, &format!("{TAGS}/renamed")).await.assert_status(204);
    assert_eq!(get(&app, READER, TAGS).await.json(), json!({"tags": []}));
});

all_databases!(fn many_tags_replace_or_append(app, TRUSTED) {
    namespace(&app, json!({"namespace": "ns", "tags": [{"name": "old"}]})).await;
    let replaced = post(&app, ADMIN, TAGS, json!({"tags": [{"name": "a"}, {"name": "b"}]})).await;
    replaced.assert_status(201);
    assert_eq!(replaced.json(), json!({"tags": [{"name": "a"}, {"name": "b"}]}));
    let listed = get(&app, READER, &format!("{TAGS}?sort_key=name&sort_dir=asc")).await.json();
    assert_eq!(names(&listed, "tags"), vec!["a", "b"]);

    let appended = call_with(&app, ADMIN, Method::POST, TAGS, Some(json!({"tags": [{"name": "c"}]})), &[("x-openstack-append", "True")]).await;
    appended.assert_status(201);
    assert_eq!(appended.json(), json!({"tags": [{"name": "c"}]}));
    let listed = get(&app, READER, &format!("{TAGS}?sort_key=name&sort_dir=asc")).await.json();
    assert_eq!(names(&listed, "tags"), vec!["a", "b", "c"]);
    let page = get(&app, READER, &format!("{TAGS}?sort_key=name&sort_dir=asc&marker=a&limit=1")).await.json();
    assert_eq!(names(&page, "tags"), vec!["b"]);
    let descending = get(&app, READER, &format!("{TAGS}?sort_key=name&sort_dir=desc")).await.json();
    assert_eq!(names(&descending, "tags"), vec!["c", "b", "a"]);

    // Appending a tag that exists is a conflict, and nothing of the request is kept.
    let clash = call_with(&app, ADMIN, Method::POST, TAGS, Some(json!({"tags": [{"name": "d"}, {"name": "a"}]})), &[("x-openstack-append", "true")]).await;
    clash.assert_status(409);
    assert_eq!(
        clash.error_message(),
        "A metadata tag with name=a already exists in namespace=ns. (Please note that metadata tag names are case insensitive)."
    );
    let repeated = post(&app, ADMIN, TAGS, json!({"tags": [{"name": "x"}, {"name": "x"}]})).await;
    repeated.assert_status(409);
    let listed = get(&app, READER, &format!("{TAGS}?sort_key=name&sort_dir=asc")).await.json();
    assert_eq!(names(&listed, "tags"), vec!["a", "b", "c"]);

    delete(&app, ADMIN, TAGS).await.assert_status(204);
    assert_eq!(get(&app, READER, TAGS).await.json(), json!({"tags": []}));
});

all_databases!(fn tag_requests_are_checked(app, TRUSTED) {
    namespace(&app, json!({"namespace": "ns", "tags": [{"name": "a"}, {"name": "b"}]})).await;
    for (body, status, message) in [
        (json!({"tags": "a"}), 400, "Provided object does not match schema 'tags': 'a' is not of type 'array'"),
        (json!({"tags": [{"title": "a"}]}), 400, "Provided object does not match schema 'tags': 'name' is a required property"),
        (json!({"tags": [{"name": 1}]}), 400, "Provided object does not match schema 'tags': 1 is not of type 'string'"),
        (json!({"tags": [], "more": 1}), 400, "Provided object does not match schema 'tags': Additional properties are not allowed ('more' was unexpected)"),
        (json!({"tags": [], "created_at": "x"}), 403, "Attribute 'created_at' is read-only."),
    ] {
        let refused = post(&app, ADMIN, TAGS, body.clone()).await;
        refused.assert_status(status);
        assert_eq!(refused.error_message(), message, "{body}");
    }
    let long = post(&app, ADMIN, &format!("{TAGS}/{}", "t".repeat(81)), json!(null)).await;
    long.assert_status(400);
    let duplicate = post(&app, ADMIN, &format!("{TAGS}/a"), json!(null)).await;
    duplicate.assert_status(409);
    let rename_clash = put(&app, ADMIN, &format!("{TAGS}/b"), json!({"name": "a"})).await;
    rename_clash.assert_status(409);
    let bad_rename = put(&app, ADMIN, &format!("{TAGS}/b"), json!({"title": "a"})).await;
    bad_rename.assert_status(400);
    assert_eq!(bad_rename.error_message(), "Provided object does not match schema 'tag': 'name' is a required property");
    let unknown_ns = post(&app, ADMIN, "/v2/metadefs/namespaces/none/tags/a", json!(null)).await;
    unknown_ns.assert_status(404);
    assert_eq!(unknown_ns.error_message(), "Namespace none not found");
    let bad_marker = get(&app, READER, &format!("{TAGS}?marker=zzz")).await;
    bad_marker.assert_status(404);
    let bad_dir = get(&app, READER, &format!("{TAGS}?sort_dir=sideways")).await;
    bad_dir.assert_status(400);
});

all_databases!(fn tag_policy_and_protection(app, TRUSTED) {
    namespace(&app, json!({"namespace": "ns", "tags": [{"name": "a"}]})).await;
    namespace(&app, json!({"namespace": "locked", "protected": true, "visibility": "public", "tags": [{"name": "a"}]})).await;
    for who in [MEMBER, READER] {
        let refused = post(&app, who, &format!("{TAGS}/b"), json!(null)).await;
        refused.assert_status(403);
        assert_eq!(refused.error_message(), super::refused("add_metadef_tag"));
        let refused = post(&app, who, TAGS, json!({"tags": [{"name": "b"}]})).await;
        refused.assert_status(403);
        assert_eq!(refused.error_message(), super::refused("add_metadef_tags"));
        put(&app, who, &format!("{TAGS}/a"), json!({"name": "b"})).await.assert_status(403);
        delete(&app, who, &format!("{TAGS}/a")).await.assert_status(403);
        get(&app, who, &format!("{TAGS}/a")).await.assert_status(200);
    }
    for who in [OTHER_MEMBER, OTHER_READER] {
        get(&app, who, &format!("{TAGS}/a")).await.assert_status(404);
        get(&app, who, "/v2/metadefs/namespaces/locked/tags/a").await.assert_status(200);
        delete(&app, who, "/v2/metadefs/namespaces/locked/tags/a").await.assert_status(403);
    }
    let protected = delete(&app, ADMIN, "/v2/metadefs/namespaces/locked/tags/a").await;
    protected.assert_status(403);
    assert_eq!(protected.error_message(), "Metadata definition tag a is protected and cannot be deleted.");
});
