use crate::all_databases;
use axum::body::Body;
use axum::http::Method;
use serde_json::json;

all_databases!(fn create_answers_201_with_glance_defaults(app) {
    let response = app.post("/v2/images", &json!({})).await;
    response.assert_status(201);
    let image = response.json();
    let id = image["id"].as_str().unwrap_or_default();
    assert_eq!(response.header("location"), Some(format!("http://glint.test:9292/v2/images/{id}").as_str()));
    assert_eq!(image["status"], "queued");
    assert_eq!(image["visibility"], "shared");
    assert_eq!(image["protected"], false);
    assert_eq!(image["os_hidden"], false);
    assert_eq!(image["min_ram"], 0);
    for key in ["name", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value", "disk_format", "container_format"] {
        assert!(image[key].is_null(), "{key} should be null");
    }
    assert_eq!(image["tags"], json!([]));
    assert_eq!(image["self"], format!("/v2/images/{id}"));
    assert_eq!(image["file"], format!("/v2/images/{id}/file"));
    assert_eq!(image["schema"], "/v2/schemas/image");
    let created = image["created_at"].as_str().unwrap_or_default();
    assert_eq!(created.len(), 20, "YYYY-MM-DDTHH:MM:SSZ: {created}");
    assert!(created.ends_with('Z'));
    assert_eq!(app.get(&format!("/v2/images/{id}")).await.json(), image);
});

all_databases!(fn create_keeps_properties_tags_and_chosen_id(app) {
    let id = "0b9e5f5e-7c8a-4c4f-9e36-2b7d1c0c9a11";
    let image = app
        .create_image(json!({
            "id": id, "name": "debian", "disk_format": "qcow2", "container_format": "bare",
            "visibility": "private", "protected": true, "min_disk": 2, "min_ram": 512,
            "os_distro": "debian", "hw_disk_bus": "virtio", "tags": ["b", "a", "b"]
        }))
        .await;
    assert_eq!(image["id"], id);
    assert_eq!(image["os_distro"], "debian");
    assert_eq!(image["hw_disk_bus"], "virtio");
    assert_eq!(image["tags"], json!(["a", "b"]));
    assert_eq!(image["min_disk"], 2);
    assert_eq!(image["visibility"], "private");
    let shown = app.get(&format!("/v2/images/{id}")).await.json();
    assert_eq!(shown, image);
});

all_databases!(fn duplicate_ids_conflict_even_after_deletion(app) {
    let id = "1b9e5f5e-7c8a-4c4f-9e36-2b7d1c0c9a11";
    app.create_image(json!({"id": id})).await;
    let again = app.post("/v2/images", &json!({"id": id})).await;
    again.assert_status(409);
    assert_eq!(again.error_message(), format!("Image ID {id} already exists!"));
    app.delete(&format!("/v2/images/{id}")).await.assert_status(204);
    app.post("/v2/images", &json!({"id": id})).await.assert_status(409);
});

all_databases!(fn read_only_and_reserved_attributes_are_forbidden(app) {
    for (key, value) in [
        ("status", json!("active")), ("size", json!(5)), ("virtual_size", json!(5)), ("checksum", json!("abc")),
        ("created_at", json!("x")), ("updated_at", json!("x")), ("os_hash_value", json!("x")),
        ("self", json!("x")), ("file", json!("x")), ("schema", json!("x")), ("direct_url", json!("x")), ("stores", json!("x")),
    ] {
        let response = app.post("/v2/images", &json!({ key: value })).await;
        response.assert_status(403);
        assert_eq!(response.error_message(), format!("Attribute '{key}' is read-only."));
    }
    // Reserved names are refused with the detail after webob's default 403 explanation.
    for key in ["os_glance_import_task", "location", "deleted", "deleted_at"] {
        let response = app.post("/v2/images", &json!({ key: "x" })).await;
        response.assert_status(403);
        assert_eq!(response.error_message(), "Access was denied to this resource.");
        assert_eq!(response.error_detail(), format!("Attribute '{key}' is reserved."));
    }
    let locations = app.post("/v2/images", &json!({"locations": []})).await;
    locations.assert_status(403);
    assert_eq!(locations.error_message(), "Attribute 'locations' is reserved.");
    // Output-only attributes are refused before the body is validated.
    app.post("/v2/images", &json!({"self": 5, "disk_format": "floppy"})).await.assert_status(403);
    let long_key = app.post("/v2/images", &json!({ "k".repeat(256): "v" })).await;
    long_key.assert_status(400);
    assert_eq!(long_key.error_message(), "Custom property should not be greater than 255 characters.");
    assert_eq!(app.get("/v2/images").await.json()["images"], json!([]));
});

all_databases!(fn invalid_values_are_400(app) {
    let cases = [
        json!({"disk_format": "floppy"}),
        json!({"container_format": "zip"}),
        json!({"name": "n".repeat(256)}),
        json!({"os_distro": 5}),
        json!({"min_ram": "5"}),
        json!({"protected": "yes"}),
        json!({"visibility": "everyone"}),
        json!({"tags": ["t".repeat(256)]}),
        json!({"id": "not-a-uuid"}),
    ];
    for body in cases {
        let response = app.post("/v2/images", &body).await;
        response.assert_status(400);
        assert!(response.error_message().starts_with("Provided object does not match schema 'image'"), "{body}: {}", response.error_message());
    }
    let negative = app.post("/v2/images", &json!({"min_disk": -1})).await;
    negative.assert_status(400);
    assert_eq!(negative.error_message(), "Invalid value '-1' for parameter 'min_disk': Cannot be a negative value");
    let huge = app.post("/v2/images", &json!({"min_ram": 1u64 << 31})).await;
    huge.assert_status(400);
    assert_eq!(huge.error_message(), "'min_ram' value out of range, must not exceed 2147483647.");
    assert_eq!(app.get("/v2/images").await.json()["images"], json!([]));
});

all_databases!(fn malformed_bodies_are_400(app) {
    let send = |body: &'static str| app.request(Method::POST, "/v2/images", &[("accept", "application/json")], Body::from(body));
    let response = send("{not json").await;
    response.assert_status(400);
    assert_eq!(response.error_message(), "Malformed JSON in request body.");
    send("[1, 2]").await.assert_status(400);
    send("").await.assert_status(400);
    let too_big = format!("{{\"name\": \"{}\"}}", "x".repeat(2 << 20));
    app.request(Method::POST, "/v2/images", &[], Body::from(too_big)).await.assert_status(413);
});

all_databases!(fn a_text_plain_body_is_still_json(app) {
    let response = app
        .request(Method::POST, "/v2/images", &[("content-type", "text/plain")], Body::from("{\"name\": \"plain\"}"))
        .await;
    response.assert_status(201);
    assert_eq!(response.json()["name"], "plain");
});

all_databases!(fn property_and_tag_quotas_are_413(app, "[DEFAULT]\nimage_property_quota = 2\nimage_tag_quota = 1\n") {
    app.create_image(json!({"a": "1", "b": "2"})).await;
    let properties = app.post("/v2/images", &json!({"a": "1", "b": "2", "c": "3"})).await;
    properties.assert_status(413);
    assert_eq!(
        properties.error_message(),
        "The limit has been exceeded on the number of allowed image properties. Attempted: 3, Maximum: 2"
    );
    let tags = app.post("/v2/images", &json!({"tags": ["x", "y"]})).await;
    tags.assert_status(413);
    assert_eq!(tags.error_message(), "The limit has been exceeded on the number of allowed image tags. Attempted: 2, Maximum: 1");
});

all_databases!(fn thousands_of_properties_are_stored_when_the_quota_allows(app, "[DEFAULT]\nimage_property_quota = -1\nimage_tag_quota = -1\n") {
    let mut body = serde_json::Map::new();
    for n in 0..2500 {
        body.insert(format!("p{n}"), json!(format!("v{n}")));
    }
    body.insert("tags".to_owned(), json!((0..1200).map(|n| format!("t{n}")).collect::<Vec<_>>()));
    let response = app.post("/v2/images", &serde_json::Value::Object(body)).await;
    response.assert_status(201);
    let shown = app.get(&format!("/v2/images/{}", response.json()["id"].as_str().unwrap_or_default())).await.json();
    assert_eq!(shown["p2499"], "v2499");
    assert_eq!(shown["tags"].as_array().map(Vec::len), Some(1200));
});
