//! `direct_url` and `locations` (`show_image_direct_url`, `show_multiple_locations`): shown as
//! Glance shows them — present only when configured, `direct_url` only once there is data,
//! `locations` as a list even when empty, heavier stores first — and never with credentials.

use serde_json::{json, Value};

use crate::all_databases;
use crate::helpers::TestApp;

const BOTH: &str = "[DEFAULT]\nshow_image_direct_url = true\nshow_multiple_locations = true\n";

async fn shown(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/v2/images/{id}")).await.json()
}

/// A second location row, as another store's copy would add it.
async fn add_location(app: &TestApp, id: &str, url: &str, metadata: &str) {
    app.execute(&format!(
        "INSERT INTO image_locations (image_id, value, meta_data, status, created_at, updated_at, deleted) \
         VALUES ('{id}', '{url}', '{metadata}', 'active', '2026-01-01 00:00:00', '2026-01-01 00:00:00', FALSE)"
    ))
    .await;
}

all_databases!(fn neither_is_shown_unless_configured(app) {
    let id = app.create_raw_image().await;
    app.upload(&id, b"data".to_vec()).await.assert_status(204);
    let image = shown(&app, &id).await;
    assert!(image.get("direct_url").is_none() && image.get("locations").is_none(), "{image}");
    let list = app.get("/v2/images").await.json();
    assert!(list["images"][0].get("locations").is_none());
});

all_databases!(fn direct_url_appears_with_the_data(app, BOTH) {
    let id = app.create_raw_image().await;
    let queued = shown(&app, &id).await;
    assert!(queued.get("direct_url").is_none(), "{queued}");
    assert_eq!(queued["locations"], json!([]));
    app.upload(&id, b"data".to_vec()).await.assert_status(204);
    let active = shown(&app, &id).await;
    let url = active["direct_url"].as_str().expect("direct_url").to_owned();
    assert!(url.starts_with("file:///") && url.ends_with(&id), "{url}");
    assert_eq!(active["locations"], json!([{"url": url, "metadata": {}}]));
    // Where Glance puts them: after updated_at, before tags.
    let text = String::from_utf8_lossy(&app.get(&format!("/v2/images/{id}")).await.body).into_owned();
    let at = |key: &str| text.find(&format!("\"{key}\"")).unwrap_or_else(|| panic!("{key} in {text}"));
    assert!(at("updated_at") < at("locations") && at("locations") < at("direct_url") && at("direct_url") < at("tags"));
    // Lists show them too.
    let list = app.get("/v2/images").await.json();
    assert_eq!(list["images"][0]["direct_url"], url);
    // Replace may not swap the locations of an image that has some (Glance's rule).
    let refused = app
        .patch(
            &format!("/v2/images/{id}"),
            "application/openstack-images-v2.1-json-patch",
            &json!([{"op": "replace", "path": "/locations", "value": [{"url": "file:///x", "metadata": {}}]}]),
        )
        .await;
    refused.assert_status(400);
    assert!(refused.error_message().starts_with("Original locations is not empty: "));
});

all_databases!(fn credentials_in_stored_locations_are_never_shown(app, BOTH) {
    let id = app.create_raw_image().await;
    app.upload(&id, b"data".to_vec()).await.assert_status(204);
    app.execute(&format!("DELETE FROM image_locations WHERE image_id = '{id}'")).await;
    add_location(&app, &id, "s3://AKIA:se/cr+et@s3.example.com/bucket/x", "{}").await;
    add_location(&app, &id, "swift+https://tenant%3Auser:hunter2@keystone/v3/glance/x", "{}").await;
    let image = shown(&app, &id).await;
    assert_eq!(image["direct_url"], "s3://s3.example.com/bucket/x");
    assert_eq!(image["locations"][1]["url"], "swift+https://keystone/v3/glance/x");
    for path in [format!("/v2/images/{id}"), "/v2/images".to_owned()] {
        let text = String::from_utf8_lossy(&app.get(&path).await.body).into_owned();
        assert!(!text.contains("se/cr+et") && !text.contains("hunter2") && !text.contains("AKIA"), "{text}");
    }
});

const WEIGHTED: &str = "[DEFAULT]\nenabled_backends = fast:file, cheap:file\n\
    show_image_direct_url = true\nshow_multiple_locations = true\n\
    [glance_store]\ndefault_backend = cheap\n[fast]\nweight = 100\n[cheap]\nweight = 10\n";

all_databases!(fn locations_of_heavier_stores_come_first(app, WEIGHTED) {
    let id = app.create_raw_image().await;
    app.upload(&id, b"data".to_vec()).await.assert_status(204);
    let cheap = shown(&app, &id).await["direct_url"].as_str().expect("direct_url").to_owned();
    add_location(&app, &id, "file:///elsewhere/fast-copy", r#"{"store": "fast"}"#).await;
    let image = shown(&app, &id).await;
    assert_eq!(image["direct_url"], "file:///elsewhere/fast-copy");
    assert_eq!(
        image["locations"],
        json!([
            {"url": "file:///elsewhere/fast-copy", "metadata": {"store": "fast"}},
            {"url": cheap, "metadata": {"store": "cheap"}},
        ])
    );
    assert_eq!(image["stores"], "cheap,fast");
});
