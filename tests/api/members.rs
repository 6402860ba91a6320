//! Image members: the owner shares, the member accepts or rejects, with Glance's statuses,
//! messages and quota, on every database.

use crate::all_databases;
use crate::helpers::{TestApp, TestResponse};
use axum::body::Body;
use axum::http::Method;
use serde_json::{json, Value};

const TRUSTED: &str = "[paste_deploy]\nflavor = trusted-auth\n";
const QUOTA_OF_3: &str =
    "[paste_deploy]\nflavor = trusted-auth\n[DEFAULT]\nimage_member_quota = 3\n";

/// A member (and reader) of `project`.
async fn call(
    app: &TestApp,
    project: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> TestResponse {
    let headers = [
        ("x-identity-status", "Confirmed"),
        ("x-project-id", project),
        ("x-user-id", "user"),
        ("x-roles", "member"),
        ("content-type", "application/json"),
        ("accept", "application/json"),
    ];
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    app.request(method, path, &headers, body).await
}

async fn shared_image(app: &TestApp, owner: &str) -> String {
    let created = call(
        app,
        owner,
        Method::POST,
        "/v2/images",
        Some(json!({"name": "s"})),
    )
    .await;
    created.assert_status(201);
    assert_eq!(created.json()["visibility"], "shared");
    created.json()["id"].as_str().unwrap_or_default().to_owned()
}

fn member_ids(response: &TestResponse) -> Vec<String> {
    response.assert_status(200);
    response.json()["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["member_id"].as_str().map(str::to_owned))
        .collect()
}

fn listed(response: &TestResponse, id: &str) -> bool {
    response.assert_status(200);
    response.json()["images"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|i| i["id"] == id)
}

all_databases!(fn owners_share_and_members_accept(app, TRUSTED) {
    let id = shared_image(&app, "alice").await;
    let members = format!("/v2/images/{id}/members");
    let bob = format!("{members}/bob");

    let added = call(&app, "alice", Method::POST, &members, Some(json!({"member": "bob"}))).await;
    added.assert_status(200);
    let view = added.json();
    assert_eq!(view["status"], "pending");
    assert_eq!((view["image_id"].as_str(), view["member_id"].as_str()), (Some(id.as_str()), Some("bob")));
    assert_eq!(view["schema"], "/v2/schemas/member");
    assert!(view["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));

    // Pending: bob sees the image by id, not in his list until he accepts.
    call(&app, "bob", Method::GET, &format!("/v2/images/{id}"), None).await.assert_status(200);
    assert!(!listed(&call(&app, "bob", Method::GET, "/v2/images", None).await, &id));
    let pending = call(&app, "bob", Method::GET, "/v2/images?member_status=pending", None).await;
    assert!(listed(&pending, &id));

    // Only the member sets its status; the owner may not.
    let refused = call(&app, "alice", Method::PUT, &bob, Some(json!({"status": "accepted"}))).await;
    refused.assert_status(403);
    let accepted = call(&app, "bob", Method::PUT, &bob, Some(json!({"status": "accepted"}))).await;
    accepted.assert_status(200);
    assert_eq!(accepted.json()["status"], "accepted");
    assert!(listed(&call(&app, "bob", Method::GET, "/v2/images", None).await, &id));

    call(&app, "alice", Method::POST, &members, Some(json!({"member": "carol"}))).await.assert_status(200);
    assert_eq!(member_ids(&call(&app, "alice", Method::GET, &members, None).await), ["bob", "carol"]);
    // A member sees its own membership only; others learn nothing.
    assert_eq!(member_ids(&call(&app, "bob", Method::GET, &members, None).await), ["bob"]);
    call(&app, "bob", Method::GET, &format!("{members}/carol"), None).await.assert_status(404);
    call(&app, "dave", Method::GET, &members, None).await.assert_status(404);
    call(&app, "dave", Method::GET, &bob, None).await.assert_status(404);
    let shown = call(&app, "bob", Method::GET, &bob, None).await;
    shown.assert_status(200);
    assert_eq!(shown.json()["status"], "accepted");

    let twice = call(&app, "alice", Method::POST, &members, Some(json!({"member": "bob"}))).await;
    twice.assert_status(409);
    assert!(twice.text().contains(&format!("Member bob is duplicated for image {id}")), "{}", twice.text());

    // The member cannot remove itself; the owner can, and the image is gone from its view.
    call(&app, "bob", Method::DELETE, &bob, None).await.assert_status(403);
    call(&app, "alice", Method::DELETE, &bob, None).await.assert_status(204);
    call(&app, "alice", Method::DELETE, &bob, None).await.assert_status(404);
    call(&app, "bob", Method::GET, &format!("/v2/images/{id}"), None).await.assert_status(404);
    // Added again after removal: pending once more.
    let again = call(&app, "alice", Method::POST, &members, Some(json!({"member": "bob"}))).await;
    again.assert_status(200);
    assert_eq!(again.json()["status"], "pending");
});

all_databases!(fn only_shared_images_have_members(app, TRUSTED) {
    let created = call(&app, "alice", Method::POST, "/v2/images", Some(json!({"visibility": "private"}))).await;
    let id = created.json()["id"].as_str().unwrap_or_default().to_owned();
    let members = format!("/v2/images/{id}/members");
    let add = call(&app, "alice", Method::POST, &members, Some(json!({"member": "bob"}))).await;
    add.assert_status(403);
    assert!(add.text().contains(&format!("Not allowed to create members for image {id}.")), "{}", add.text());
    let list = call(&app, "alice", Method::GET, &members, None).await;
    list.assert_status(403);
    assert!(list.text().contains("Only shared images have members."), "{}", list.text());
    call(&app, "alice", Method::GET, &format!("{members}/bob"), None).await.assert_status(404);
    call(&app, "alice", Method::GET, "/v2/images/00000000-0000-0000-0000-000000000000/members", None)
        .await
        .assert_status(404);
});

all_databases!(fn member_bodies_are_checked(app, TRUSTED) {
    let id = shared_image(&app, "alice").await;
    let members = format!("/v2/images/{id}/members");
    for (body, message) in [
        (json!({}), "Member to be added not specified"),
        (json!({"member": ""}), "Member can't be empty"),
        (json!(["bob"]), "Expected a member in the form"),
        (json!({"member": 7}), "Expected a member in the form"),
    ] {
        let refused = call(&app, "alice", Method::POST, &members, Some(body)).await;
        refused.assert_status(400);
        assert!(refused.text().contains(message), "{}", refused.text());
    }
    call(&app, "alice", Method::POST, &members, Some(json!({"member": "bob"}))).await.assert_status(200);
    let bob = format!("{members}/bob");
    for (body, message) in [
        (json!({}), "Status not specified"),
        (json!({"status": "maybe"}), "Status must be"),
        (json!("accepted"), "Expected a status in the form"),
    ] {
        let refused = call(&app, "bob", Method::PUT, &bob, Some(body)).await;
        refused.assert_status(400);
        assert!(refused.text().contains(message), "{}", refused.text());
    }
});

all_databases!(fn concurrent_shares_stop_at_the_member_quota(app, QUOTA_OF_3) {
    let id = shared_image(&app, "alice").await;
    let members = format!("/v2/images/{id}/members");
    let attempts = (0..8).map(|n| {
        let app = &app;
        let members = members.clone();
        async move {
            call(app, "alice", Method::POST, &members, Some(json!({"member": format!("p{n}")})))
                .await
                .status
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 413), "{statuses:?}");
    assert_eq!(member_ids(&call(&app, "alice", Method::GET, &members, None).await).len(), 3);
    let over = call(&app, "alice", Method::POST, &members, Some(json!({"member": "late"}))).await;
    over.assert_status(413);
    assert!(over.text().contains("Image member limit exceeded"), "{}", over.text());
});
