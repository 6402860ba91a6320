use crate::all_databases;
use serde_json::json;

all_databases!(fn tags_are_an_idempotent_set(app) {
    let image = app.create_image(json!({})).await;
    let id = image["id"].as_str().unwrap_or_default();
    app.put(&format!("/v2/images/{id}/tags/blue")).await.assert_status(204);
    app.put(&format!("/v2/images/{id}/tags/blue")).await.assert_status(204);
    app.put(&format!("/v2/images/{id}/tags/a%20b")).await.assert_status(204);
    let shown = app.get(&format!("/v2/images/{id}")).await.json();
    assert_eq!(shown["tags"], json!(["a b", "blue"]));
    assert!(shown["updated_at"].as_str() >= image["updated_at"].as_str());
    app.delete(&format!("/v2/images/{id}/tags/blue")).await.assert_status(204);
    let missing = app.delete(&format!("/v2/images/{id}/tags/blue")).await;
    missing.assert_status(404);
    assert_eq!(missing.error_message(), "The resource could not be found.");
    assert_eq!(app.get(&format!("/v2/images/{id}")).await.json()["tags"], json!(["a b"]));
});

all_databases!(fn tag_limits(app, "[DEFAULT]\nimage_tag_quota = 2\n") {
    let image = app.create_image(json!({"tags": ["a", "b"]})).await;
    let id = image["id"].as_str().unwrap_or_default();
    app.put(&format!("/v2/images/{id}/tags/a")).await.assert_status(204);
    let over = app.put(&format!("/v2/images/{id}/tags/c")).await;
    over.assert_status(413);
    assert_eq!(
        over.error_message(),
        format!("Image tag limit exceeded for image {id}: The limit has been exceeded on the number of allowed image tags. Attempted: 3, Maximum: 2:")
    );
    app.put(&format!("/v2/images/{id}/tags/{}", "x".repeat(256))).await.assert_status(400);
    app.put("/v2/images/00000000-0000-0000-0000-000000000000/tags/a").await.assert_status(404);
});
