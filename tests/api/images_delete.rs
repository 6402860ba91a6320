use crate::all_databases;
use serde_json::json;

all_databases!(fn delete_soft_deletes_and_second_delete_is_404(app) {
    let image = app.create_image(json!({"name": "gone"})).await;
    let path = format!("/v2/images/{}", image["id"].as_str().unwrap_or_default());
    app.delete(&path).await.assert_status(204);
    app.get(&path).await.assert_status(404);
    let again = app.delete(&path).await;
    again.assert_status(404);
    assert!(again.error_message().contains("No image found") || again.error_message().contains("Failed to find image"));
    assert_eq!(app.get("/v2/images").await.json()["images"], json!([]));
});

all_databases!(fn protected_images_cannot_be_deleted(app) {
    let image = app.create_image(json!({"protected": true})).await;
    let id = image["id"].as_str().unwrap_or_default();
    let path = format!("/v2/images/{id}");
    let response = app.delete(&path).await;
    response.assert_status(403);
    assert_eq!(response.error_message(), format!("Image {id} is protected and cannot be deleted."));
    app.patch(&path, crate::helpers::PATCH_V21, &json!([{"op": "replace", "path": "/protected", "value": false}]))
        .await
        .assert_status(200);
    app.delete(&path).await.assert_status(204);
});

all_databases!(fn deactivate_and_reactivate_follow_the_status_machine(app) {
    let image = app.create_image(json!({"name": "d"})).await;
    let id = image["id"].as_str().unwrap_or_default().to_owned();
    let action = |name: &str| format!("/v2/images/{id}/actions/{name}");
    let queued = app.post(&action("deactivate"), &json!(null)).await;
    queued.assert_status(403);
    assert_eq!(queued.error_message(), "Not allowed to deactivate image in status 'queued'");
    app.post(&action("reactivate"), &json!(null)).await.assert_status(403);

    app.force_status(&id, "active").await;
    app.post(&action("deactivate"), &json!(null)).await.assert_status(204);
    assert_eq!(app.get(&format!("/v2/images/{id}")).await.json()["status"], "deactivated");
    app.post(&action("deactivate"), &json!(null)).await.assert_status(204);
    app.post(&action("reactivate"), &json!(null)).await.assert_status(204);
    assert_eq!(app.get(&format!("/v2/images/{id}")).await.json()["status"], "active");
    app.post(&action("reactivate"), &json!(null)).await.assert_status(204);
    app.post("/v2/images/00000000-0000-0000-0000-000000000000/actions/deactivate", &json!(null))
        .await
        .assert_status(404);
});
