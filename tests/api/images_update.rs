use crate::all_databases;
use crate::helpers::{PATCH_V20, PATCH_V21};
use serde_json::json;

all_databases!(fn patch_changes_core_attributes_and_properties(app) {
    let image = app.create_image(json!({"name": "old", "os_distro": "debian", "gone": "x"})).await;
    let path = format!("/v2/images/{}", image["id"].as_str().unwrap_or_default());
    let response = app
        .patch(&path, PATCH_V21, &json!([
            {"op": "replace", "path": "/name", "value": "new"},
            {"op": "add", "path": "/os_version", "value": "12"},
            {"op": "add", "path": "/os_distro", "value": "ubuntu"},
            {"op": "remove", "path": "/gone"},
            {"op": "replace", "path": "/min_ram", "value": 1024},
            {"op": "replace", "path": "/tags", "value": ["x", "y"]},
            {"op": "replace", "path": "/visibility", "value": "private"},
            {"op": "replace", "path": "/os_hidden", "value": true}
        ]))
        .await;
    response.assert_status(200);
    let patched = response.json();
    assert_eq!(patched["name"], "new");
    assert_eq!(patched["os_version"], "12");
    assert_eq!(patched["os_distro"], "ubuntu");
    assert!(patched.get("gone").is_none());
    assert_eq!(patched["min_ram"], 1024);
    assert_eq!(patched["tags"], json!(["x", "y"]));
    assert_eq!(patched["visibility"], "private");
    assert_eq!(patched["os_hidden"], true);
    assert_eq!(app.get(&path).await.json(), patched);
});

all_databases!(fn patch_v2_0_dialect(app) {
    let image = app.create_image(json!({"foo": "a"})).await;
    let path = format!("/v2/images/{}", image["id"].as_str().unwrap_or_default());
    let replaced = app.patch(&path, PATCH_V20, &json!([{"replace": "/foo", "value": "bar"}])).await;
    replaced.assert_status(200);
    assert_eq!(replaced.json()["foo"], "bar");
    let exists = app.patch(&path, PATCH_V20, &json!([{"add": "/foo", "value": "baz"}])).await;
    exists.assert_status(409);
});

all_databases!(fn patch_errors_match_glance(app) {
    let image = app.create_image(json!({"name": "e"})).await;
    let path = format!("/v2/images/{}", image["id"].as_str().unwrap_or_default());
    let patch = |body: serde_json::Value| {
        let (app, path) = (&app, path.clone());
        async move { app.patch(&path, PATCH_V21, &body).await }
    };

    let missing = patch(json!([{"op": "replace", "path": "/nope", "value": "x"}])).await;
    missing.assert_status(409);
    assert_eq!(missing.error_detail(), "Property nope does not exist.");
    patch(json!([{"op": "remove", "path": "/nope"}])).await.assert_status(409);
    let base = patch(json!([{"op": "remove", "path": "/name"}])).await;
    base.assert_status(403);
    assert_eq!(base.error_detail(), "Property name may not be removed.");
    let negative = patch(json!([{"op": "replace", "path": "/min_ram", "value": -5}])).await;
    negative.assert_status(400);
    assert_eq!(negative.error_message(), "Invalid value '-5' for parameter 'min_ram': Cannot be a negative value");
    // Glance's deserializer takes `/locations/-` for add; the controller refuses it.
    let locations = patch(json!([{"op": "add", "path": "/locations/-", "value": {"url": "http://x", "metadata": {}}}])).await;
    locations.assert_status(403);
    assert_eq!(locations.error_message(), "It's not allowed to add locations if locations are invisible.");
    let locations = patch(json!([{"op": "replace", "path": "/locations", "value": []}])).await;
    locations.assert_status(403);
    let read_only = patch(json!([{"op": "replace", "path": "/status", "value": "active"}])).await;
    read_only.assert_status(403);
    assert_eq!(read_only.error_message(), "Attribute 'status' is read-only.");
    patch(json!([{"op": "replace", "path": "/id", "value": "x"}])).await.assert_status(403);
    let reserved = patch(json!([{"op": "add", "path": "/os_glance_x", "value": "x"}])).await;
    reserved.assert_status(403);
    assert_eq!(reserved.error_message(), "Attribute 'os_glance_x' is reserved.");
    patch(json!([{"op": "move", "path": "/name", "from": "/x"}])).await.assert_status(400);
    patch(json!([{"op": "replace", "path": "/min_ram", "value": "5"}])).await.assert_status(400);
    patch(json!([{"op": "replace", "path": "/disk_format", "value": "floppy"}])).await.assert_status(400);
    patch(json!([{"op": "add", "path": "/prop", "value": 5}])).await.assert_status(400);
    patch(json!([{"op": "add", "path": "/a/b", "value": "x"}])).await.assert_status(400);
    patch(json!({"op": "add"})).await.assert_status(400);

    let wrong_type = app.patch(&path, "application/json", &json!([])).await;
    wrong_type.assert_status(415);
    assert_eq!(
        wrong_type.header("accept-patch"),
        Some("application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch")
    );
    assert_eq!(
        wrong_type.json()["message"],
        "The request media type application/json is not supported by this server.\n<br /><br />\n\
         Image PATCH expects Content-Type one of: application/openstack-images-v2.0-json-patch, \
         application/openstack-images-v2.1-json-patch"
    );
    // Nothing of the failed patches stuck.
    let shown = app.get(&path).await.json();
    assert_eq!(shown["name"], "e");
    assert_eq!(shown["min_ram"], 0);
    app.patch("/v2/images/00000000-0000-0000-0000-000000000000", PATCH_V21, &json!([])).await.assert_status(404);
});

all_databases!(fn formats_are_frozen_once_the_image_has_data(app) {
    let image = app.create_image(json!({"disk_format": "raw", "container_format": "bare"})).await;
    let id = image["id"].as_str().unwrap_or_default();
    let path = format!("/v2/images/{id}");
    app.patch(&path, PATCH_V21, &json!([{"op": "replace", "path": "/disk_format", "value": "qcow2"}]))
        .await
        .assert_status(200);
    app.force_status(id, "active").await;
    let frozen = app.patch(&path, PATCH_V21, &json!([{"op": "replace", "path": "/disk_format", "value": "raw"}])).await;
    frozen.assert_status(403);
    app.patch(&path, PATCH_V21, &json!([{"op": "replace", "path": "/name", "value": "still editable"}]))
        .await
        .assert_status(200);
});

all_databases!(fn patch_with_no_change_keeps_updated_at(app) {
    let image = app.create_image(json!({"name": "same"})).await;
    let path = format!("/v2/images/{}", image["id"].as_str().unwrap_or_default());
    let response = app.patch(&path, PATCH_V21, &json!([{"op": "replace", "path": "/name", "value": "same"}])).await;
    response.assert_status(200);
    assert_eq!(response.json()["updated_at"], image["updated_at"]);
});
