//! The three error body forms and routing errors.

use crate::all_databases;
use axum::body::Body;
use axum::http::Method;

all_databases!(fn error_body_form_follows_accept(app) {
    let path = "/v2/images/00000000-0000-0000-0000-000000000000";
    let json = app.request(Method::GET, path, &[("accept", "application/json")], Body::empty()).await;
    json.assert_status(404);
    assert_eq!(json.header("content-type"), Some("application/json"));
    let body = json.json();
    assert_eq!(body["code"], "404 Not Found");
    assert_eq!(body["title"], "Not Found");
    assert_eq!(body["message"], "No image found with ID 00000000-0000-0000-0000-000000000000<br /><br />\n\n\n");

    let plain = app.request(Method::GET, path, &[], Body::empty()).await;
    assert!(plain.header("content-type").unwrap_or_default().starts_with("text/plain"));
    assert!(plain.text().starts_with("404 Not Found\n\nNo image found with ID"), "{}", plain.text());

    let html = app.request(Method::GET, path, &[("accept", "*/*")], Body::empty()).await;
    assert!(html.header("content-type").unwrap_or_default().starts_with("text/html"));
    assert!(html.text().contains("<h1>404 Not Found</h1>"));
});

all_databases!(fn unknown_or_malformed_ids_are_404(app) {
    let response = app.get("/v2/images/not-a-uuid").await;
    response.assert_status(404);
    assert_eq!(response.error_message(), "No image found with ID not-a-uuid");
    app.get("/v2/images/0b9e5f5e-7c8a-4c4f-9e36-2b7d1c0c9a11").await.assert_status(404);
});

all_databases!(fn wrong_methods_get_405_with_allow(app) {
    let image = app.create_image(serde_json::json!({"name": "m"})).await;
    let path = format!("/v2/images/{}", image["id"].as_str().unwrap_or_default());
    let head = app.request(Method::HEAD, &path, &[], Body::empty()).await;
    head.assert_status(405);
    assert_eq!(head.header("allow"), Some("GET, PATCH, DELETE"));
    let put = app.request(Method::PUT, "/v2/images", &[("accept", "application/json")], Body::empty()).await;
    put.assert_status(405);
    assert_eq!(put.header("allow"), Some("GET, POST"));
    assert_eq!(put.json()["code"], "405 Method Not Allowed");
    assert_eq!(put.json()["message"], "The method PUT is not allowed for this resource. <br /><br />\n");
    let tag = app.request(Method::GET, &format!("{path}/tags/x"), &[], Body::empty()).await;
    tag.assert_status(405);
    assert_eq!(tag.header("allow"), Some("PUT, DELETE"));
});

all_databases!(fn bodies_on_bodiless_requests_are_400(app) {
    let image = app.create_image(serde_json::json!({"name": "b"})).await;
    let path = format!("/v2/images/{}", image["id"].as_str().unwrap_or_default());
    for (method, uri) in [
        (Method::GET, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::GET, "/v2/schemas/image".to_owned()),
        (Method::POST, format!("{path}/actions/deactivate")),
    ] {
        let response = app
            .request(method, &uri, &[("accept", "application/json"), ("content-length", "2")], Body::from("{}"))
            .await;
        response.assert_status(400);
        assert_eq!(response.error_message(), "A body is not expected with this request.");
    }
    // The image is still there: nothing was deleted.
    app.get(&path).await.assert_status(200);
    // Listing tolerates a body, as Glance does.
    app.request(Method::GET, "/v2/images", &[("content-length", "2")], Body::from("{}")).await.assert_status(200);
});

/// A 5xx answer in Glance's body shape that tells nothing of what failed inside.
#[track_caller]
fn assert_says_nothing_internal(
    response: &crate::helpers::TestResponse,
    status: u16,
    internal: &[&str],
) {
    response.assert_status(status);
    let body = response.json();
    assert_eq!(
        body["code"],
        format!("{status} {}", body["title"].as_str().unwrap_or_default())
    );
    let text = response.text().to_lowercase();
    for word in internal {
        assert!(!text.contains(word), "{word:?} in the body: {text}");
    }
}

all_databases!(fn a_broken_schema_answers_500_without_the_databases_words(app) {
    let id = app.create_raw_image().await;
    app.execute("DROP TABLE image_tags").await;
    let response = app
        .request(Method::GET, &format!("/v2/images/{id}"), &[("accept", "application/json")], Body::empty())
        .await;
    assert_says_nothing_internal(&response, 500, &["image_tags", "relation", "no such table", "error returned from database"]);
    assert_eq!(response.error_message(), "The server failed to read or write image metadata.");
});

all_databases!(fn data_in_a_store_no_one_serves_answers_500_without_naming_it(app) {
    let id = app.create_raw_image().await;
    app.upload(&id, crate::image_data::sample(1000)).await.assert_status(204);
    app.execute(&format!(
        "UPDATE image_locations SET value = 'swift+https://glance:s3cr3t@keystone.internal/v3/' || image_id \
         WHERE image_id = '{id}'"
    ))
    .await;
    let response = app
        .request(Method::GET, &format!("/v2/images/{id}/file"), &[("accept", "application/json")], Body::empty())
        .await;
    assert_says_nothing_internal(&response, 500, &["swift", "s3cr3t", "keystone.internal", "no configured store"]);
    // Glance's own words for a failure it does not explain.
    assert_eq!(
        response.error_message(),
        "The server has either erred or is incapable of performing the requested operation."
    );
});

all_databases!(fn an_unreachable_database_answers_503_without_the_drivers_words(app) {
    let id = app.create_raw_image().await;
    app.database.close().await;
    let response = app
        .request(Method::GET, &format!("/v2/images/{id}"), &[("accept", "application/json")], Body::empty())
        .await;
    assert_says_nothing_internal(&response, 503, &["pool", "acquire", "connection"]);
    assert_eq!(response.error_message(), "The metadata database is unavailable; retry later.");
});
