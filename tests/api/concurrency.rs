//! Many simultaneous writers: no request may fail because of database locking.

use crate::all_databases;
use crate::helpers::PATCH_V21;
use serde_json::json;

all_databases!(fn concurrent_writes_never_fail(app) {
    let app = std::sync::Arc::new(app);
    let shared = app.create_image(json!({"name": "shared"})).await["id"].as_str().unwrap_or_default().to_owned();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..48 {
        let app = app.clone();
        let shared = shared.clone();
        tasks.spawn(async move {
            let mut statuses = Vec::new();
            let created = app.post("/v2/images", &json!({"name": format!("c{n}"), "k": n.to_string(), "tags": ["a"]})).await;
            statuses.push(created.status.as_u16());
            let path = format!("/v2/images/{shared}");
            let patched = app
                .patch(&path, PATCH_V21, &json!([{"op": "add", "path": format!("/p{n}"), "value": "v"}]))
                .await;
            statuses.push(patched.status.as_u16());
            statuses.push(app.put(&format!("{path}/tags/t{}", n % 5)).await.status.as_u16());
            statuses.push(app.get("/v2/images?limit=5").await.status.as_u16());
            if let Some(id) = created.json()["id"].as_str() {
                statuses.push(app.delete(&format!("/v2/images/{id}")).await.status.as_u16());
            }
            statuses
        });
    }
    while let Some(result) = tasks.join_next().await {
        let statuses = result.expect("task completes");
        assert_eq!(statuses, [201, 200, 204, 200, 204]);
    }
    let image = app.get(&format!("/v2/images/{shared}")).await.json();
    // Every concurrent PATCH added its own property: none was lost to a concurrent write.
    let added = (0..48).filter(|n| image[format!("p{n}")] == "v").count();
    assert_eq!(added, 48);
    assert_eq!(image["tags"], json!(["t0", "t1", "t2", "t3", "t4"]));
    assert_eq!(app.get("/v2/images").await.json()["images"].as_array().map(Vec::len), Some(1));
});

all_databases!(fn creates_counted_against_a_limit_never_overshoot_it(app) {
    // The repository's own check, without the HTTP path in between: many transactions
    // counting one project's images at the same moment.
    let repo = app.database.image_repo(false);
    let attempts = (0..12).map(|_| {
        let repo = repo.clone();
        async move {
            let image = glint::domain::image::Image::new(
                glint::domain::image::ImageId::generate(),
                Some("counted".to_owned()),
                glint::domain::image::now(),
            );
            repo.create(&image, Some(("counted", 4))).await
        }
    });
    let outcomes = futures_util::future::join_all(attempts).await;
    let created = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(glint::domain::repository::Created::Created)))
        .count();
    assert_eq!(created, 4, "{outcomes:?}");
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
});

all_databases!(fn claims_counted_against_the_uploading_limit_never_overshoot_it(app) {
    // Twelve uploads of one project's queued images starting at once, two allowed at a time.
    let images = app.database.image_repo(false);
    let uploads = app.database.upload_repo();
    let mut ids = Vec::new();
    for _ in 0..12 {
        let image = glint::domain::image::Image::new(
            glint::domain::image::ImageId::generate(),
            Some("busy".to_owned()),
            glint::domain::image::now(),
        );
        images.create(&image, None).await.expect("created");
        ids.push(image.id);
    }
    let claims = ids.iter().map(|id| {
        let uploads = uploads.clone();
        async move {
            let claim = uuid::Uuid::new_v4().to_string();
            uploads
                .claim_upload(id, &claim, glint::domain::image::now(), Some(("busy", 2)), glint::domain::UploadTarget::Store)
                .await
        }
    });
    let outcomes = futures_util::future::join_all(claims).await;
    let claimed = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(glint::domain::repository::Claimed::Claimed)))
        .count();
    assert_eq!(claimed, 2, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| matches!(
            o,
            Ok(glint::domain::repository::Claimed::Claimed
                | glint::domain::repository::Claimed::OverLimit { .. })
        )),
        "{outcomes:?}"
    );
});
