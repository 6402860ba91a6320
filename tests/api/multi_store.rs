//! Several stores at once (`enabled_backends`): discovery, `X-Image-Meta-Store`, the `stores`
//! attribute and location metadata; the single-store form keeps Glance's single-store answers.

use axum::body::Body;
use axum::http::Method;
use serde_json::Value;

use crate::all_databases;
use crate::helpers::TestApp;

const TWO_STORES: &str = "[DEFAULT]\nenabled_backends = fast:file, cheap:file\n\
    [glance_store]\ndefault_backend = fast\n\
    [fast]\nstore_description = Fast disks\nweight = 100\n\
    [cheap]\nweight = 10\nfilesystem_thin_provisioning = true\n";

async fn upload_to(
    app: &TestApp,
    id: &str,
    store: Option<&str>,
    data: &[u8],
) -> crate::helpers::TestResponse {
    let length = data.len().to_string();
    let mut headers = vec![
        ("content-type", "application/octet-stream"),
        ("content-length", length.as_str()),
        ("accept", "application/json"),
    ];
    if let Some(store) = store {
        headers.push(("x-image-meta-store", store));
    }
    app.request(
        Method::PUT,
        &format!("/v2/images/{id}/file"),
        &headers,
        Body::from(data.to_vec()),
    )
    .await
}

fn files(dir: &std::path::Path) -> Vec<String> {
    crate::helpers::files_in(dir)
}

/// Adds a copy of image `id`'s data in the `cheap` store, as a copy-image import leaves one;
/// returns the store's directory.
async fn add_cheap_copy(app: &TestApp, id: &str, data: &[u8]) -> std::path::PathBuf {
    std::fs::create_dir_all(app.data_dir().join("cheap")).expect("dir");
    let cheap_dir = std::fs::canonicalize(app.data_dir().join("cheap")).expect("dir");
    std::fs::write(cheap_dir.join(id), data).expect("writes");
    app.execute(&format!(
        "INSERT INTO image_locations (image_id, value, meta_data, status, created_at, updated_at, deleted) \
         VALUES ('{id}', 'file://{}/{id}', '{{\"store\": \"cheap\"}}', 'active', '2026-01-01 00:00:00', '2026-01-01 00:00:00', false)",
        cheap_dir.display()
    ))
    .await;
    cheap_dir
}

all_databases!(fn stores_are_listed_for_everyone_and_detailed_for_admins(app, TWO_STORES) {
    let stores = app.get("/v2/info/stores").await;
    stores.assert_status(200);
    assert_eq!(
        stores.json(),
        serde_json::json!({"stores": [
            {"id": "fast", "description": "Fast disks", "default": "true"},
            {"id": "cheap"}
        ]})
    );
    let detail = app.get("/v2/info/stores/detail").await;
    detail.assert_status(200);
    let detail = detail.json();
    assert_eq!(detail["stores"][0]["type"], "file");
    assert_eq!(detail["stores"][0]["weight"], 100);
    assert_eq!(detail["stores"][1]["properties"]["thin_provisioning"], true);
    assert!(detail["stores"][1]["properties"]["data_dir"].as_str().is_some_and(|d| d.ends_with("/cheap")));
});

all_databases!(fn store_details_are_refused_to_non_admins(app, "[DEFAULT]\nenabled_backends = fast:file\n[glance_store]\ndefault_backend = fast\n[paste_deploy]\nflavor = trusted-auth\n") {
    let member = [
        ("x-identity-status", "Confirmed"),
        ("x-project-id", "p1"),
        ("x-user-id", "u1"),
        ("x-roles", "member"),
        ("accept", "application/json"),
    ];
    let list = app.request(Method::GET, "/v2/info/stores", &member, Body::empty()).await;
    list.assert_status(200);
    let detail = app.request(Method::GET, "/v2/info/stores/detail", &member, Body::empty()).await;
    detail.assert_status(403);
    assert!(String::from_utf8_lossy(&detail.body).contains("stores_info_detail"));
});

all_databases!(fn a_single_store_site_has_no_store_discovery(app) {
    app.get("/v2/info/stores").await.assert_status(404);
    app.get("/v2/info/stores/detail").await.assert_status(404);
    // The header is ignored, as Glance ignores it without enabled_backends.
    let id = app.create_raw_image().await;
    upload_to(&app, &id, Some("nowhere"), b"data").await.assert_status(204);
    let image = app.get(&format!("/v2/images/{id}")).await.json();
    assert!(image.get("stores").is_none(), "{image}");
    let created = app.post("/v2/images", &serde_json::json!({})).await;
    assert!(created.headers.get("openstack-image-store-ids").is_none());
    let versions = app.get("/versions").await.json().to_string();
    assert!(!versions.contains("v2.8"), "{versions}");
});

all_databases!(fn uploads_go_to_the_store_the_request_names(app, TWO_STORES) {
    let created = app.post("/v2/images", &serde_json::json!({"disk_format": "raw", "container_format": "bare"})).await;
    created.assert_status(201);
    assert_eq!(created.headers["openstack-image-store-ids"], "fast,cheap");
    let chosen = created.json()["id"].as_str().unwrap_or_default().to_owned();
    let default = app.create_raw_image().await;
    upload_to(&app, &chosen, Some("cheap"), b"cheap bytes").await.assert_status(204);
    upload_to(&app, &default, None, b"fast bytes").await.assert_status(204);
    assert_eq!(files(&app.data_dir().join("cheap")), std::slice::from_ref(&chosen));
    assert_eq!(files(&app.data_dir().join("fast")), std::slice::from_ref(&default));

    let image = app.get(&format!("/v2/images/{chosen}")).await.json();
    assert_eq!(image["stores"], "cheap");
    assert_eq!(app.get(&format!("/v2/images/{default}")).await.json()["stores"], "fast");
    let listed = app.get("/v2/images").await.json();
    let stores: Vec<&Value> = listed["images"].as_array().into_iter().flatten().map(|i| &i["stores"]).collect();
    assert!(stores.contains(&&Value::from("cheap")) && stores.contains(&&Value::from("fast")), "{listed}");
    let metadata = app.scalar(&format!("SELECT meta_data FROM image_locations WHERE image_id = '{chosen}'")).await;
    assert_eq!(serde_json::from_str::<Value>(&metadata).expect("json"), serde_json::json!({"store": "cheap"}));

    let data = app.get(&format!("/v2/images/{chosen}/file")).await;
    data.assert_status(200);
    assert_eq!(data.body, b"cheap bytes");
    let ranged = app.request(Method::GET, &format!("/v2/images/{chosen}/file"), &[("range", "bytes=0-4")], Body::empty()).await;
    ranged.assert_status(206);
    assert_eq!(ranged.body, b"cheap");

    // Deleting removes the data from the store that holds it.
    app.delete(&format!("/v2/images/{chosen}")).await.assert_status(204);
    assert!(files(&app.data_dir().join("cheap")).is_empty());
});

all_databases!(fn an_unknown_store_is_refused_before_anything_is_written(app, TWO_STORES) {
    let id = app.create_raw_image().await;
    let refused = upload_to(&app, &id, Some("nowhere"), b"data").await;
    refused.assert_status(400);
    assert!(String::from_utf8_lossy(&refused.body).contains("Unknown scheme 'nowhere' found in URI"), "{:?}", String::from_utf8_lossy(&refused.body));
    assert_eq!(app.get(&format!("/v2/images/{id}")).await.json()["status"], "queued");
    assert!(files(&app.data_dir().join("fast")).is_empty() && files(&app.data_dir().join("cheap")).is_empty());
    // Even for an image that does not exist, as Glance checks the store first.
    let missing = upload_to(&app, "00000000-0000-4000-8000-000000000000", Some("nowhere"), b"x").await;
    missing.assert_status(400);
});

all_databases!(fn multi_store_sites_advertise_the_multi_store_versions(app, TWO_STORES) {
    let versions = app.get("/versions").await.json();
    let ids: Vec<&str> = versions["versions"].as_array().into_iter().flatten().filter_map(|v| v["id"].as_str()).collect();
    assert_eq!(ids, ["v2.15", "v2.13", "v2.12", "v2.11", "v2.10", "v2.9", "v2.8", "v2.17", "v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0"]);
    app.get("/v2.8/images").await.assert_status(200);
    app.get("/v2.13/info/stores").await.assert_status(200);
});

all_databases!(fn the_sweeps_cover_every_store(app, TWO_STORES) {
    let deleted = app.create_raw_image().await;
    // Data an upload committed in the second store but never recorded, for an image since deleted.
    std::fs::create_dir_all(app.data_dir().join("cheap")).expect("dir");
    std::fs::write(app.data_dir().join("cheap").join(&deleted), b"orphan").expect("writes");
    app.delete(&format!("/v2/images/{deleted}")).await.assert_status(204);
    let report = app.services.data.scrub().await.expect("scrubs");
    assert_eq!(report.orphans, 1, "{report:?}");
    assert!(files(&app.data_dir().join("cheap")).is_empty());
});

all_databases!(fn one_store_s_copy_can_be_removed_but_never_the_last(app, TWO_STORES) {
    let id = app.create_raw_image().await;
    upload_to(&app, &id, None, b"two copies").await.assert_status(204);
    // A second copy in `cheap`, as a copy-image import leaves it.
    let cheap_dir = add_cheap_copy(&app, &id, b"two copies").await;
    assert_eq!(app.get(&format!("/v2/images/{id}")).await.json()["stores"], "fast,cheap");

    let unknown = app.delete(&format!("/v2/stores/nowhere/{id}")).await;
    unknown.assert_status(409);
    app.delete("/v2/stores/cheap/00000000-0000-4000-8000-000000000000").await.assert_status(404);
    app.delete(&format!("/v2/stores/cheap/{id}")).await.assert_status(204);
    assert!(files(&cheap_dir).is_empty());
    let image = app.get(&format!("/v2/images/{id}")).await.json();
    assert_eq!(image["stores"], "fast");
    assert_eq!(app.get(&format!("/v2/images/{id}/file")).await.body, b"two copies");
    // The last copy stays: deleting the image is the way to remove it.
    let last = app.delete(&format!("/v2/stores/fast/{id}")).await;
    last.assert_status(403);
    assert!(String::from_utf8_lossy(&last.body).contains("only store containing it"));
    // Only active images.
    let queued = app.create_raw_image().await;
    app.delete(&format!("/v2/stores/fast/{queued}")).await.assert_status(409);
});

all_databases!(fn removing_a_store_copy_needs_several_stores(app) {
    let id = app.create_raw_image().await;
    app.upload(&id, b"x".to_vec()).await.assert_status(204);
    app.delete(&format!("/v2/stores/file/{id}")).await.assert_status(404);
});

all_databases!(fn concurrent_removals_of_two_copies_keep_one(app, TWO_STORES) {
    let id = app.create_raw_image().await;
    upload_to(&app, &id, None, b"two copies").await.assert_status(204);
    add_cheap_copy(&app, &id, b"two copies").await;
    let (fast_path, cheap_path) = (format!("/v2/stores/fast/{id}"), format!("/v2/stores/cheap/{id}"));
    let (fast, cheap) = tokio::join!(app.delete(&fast_path), app.delete(&cheap_path));
    let mut statuses = [fast.status.as_u16(), cheap.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [204, 403]);
    let got = app.get(&format!("/v2/images/{id}/file")).await;
    got.assert_status(200);
    assert_eq!(got.body, b"two copies");
});
