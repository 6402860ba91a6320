use crate::all_databases;

all_databases!(fn image_schema_lists_configured_formats(app, "[image_format]\ndisk_formats = raw,qcow2\n") {
    let schema = app.get("/v2/schemas/image").await;
    schema.assert_status(200);
    let schema = schema.json();
    assert_eq!(schema["name"], "image");
    assert_eq!(schema["properties"]["disk_format"]["enum"], serde_json::json!([null, "raw", "qcow2"]));
    assert_eq!(schema["additionalProperties"]["type"], "string");
    assert_eq!(schema["properties"]["status"]["readOnly"], true);
    let bad = app.post("/v2/images", &serde_json::json!({"disk_format": "vmdk"})).await;
    bad.assert_status(400);
    assert!(bad.error_message().contains("'vmdk' is not one of [None, 'raw', 'qcow2']"), "{}", bad.error_message());
});

all_databases!(fn collection_and_member_schemas_are_served(app) {
    let images = app.get("/v2/schemas/images").await.json();
    assert_eq!(images["name"], "images");
    assert_eq!(images["properties"]["images"]["items"]["name"], "image");
    let member = app.get("/v2/schemas/member").await.json();
    assert_eq!(member["properties"]["status"]["enum"], serde_json::json!(["pending", "accepted", "rejected"]));
    let members = app.get("/v2/schemas/members").await.json();
    assert_eq!(members["properties"]["members"]["items"]["name"], "member");
});
