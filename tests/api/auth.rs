//! Identity from trusted headers, ownership and visibility.

use crate::all_databases;
use crate::helpers::{TestApp, TestResponse, PATCH_V21};
use axum::body::Body;
use axum::http::Method;
use serde_json::{json, Value};

const TRUSTED: &str = "[paste_deploy]\nflavor = trusted-auth\n";

/// A caller of project `project` with `roles`.
struct Caller<'a> {
    app: &'a TestApp,
    project: &'static str,
    roles: &'static str,
}

impl Caller<'_> {
    fn headers(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("x-identity-status", "Confirmed"),
            ("x-project-id", self.project),
            ("x-user-id", "user"),
            ("x-roles", self.roles),
            ("accept", "application/json"),
        ]
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        content_type: &str,
    ) -> TestResponse {
        let mut headers = self.headers();
        headers.push(("content-type", content_type));
        let body = body
            .map(|b| Body::from(b.to_string()))
            .unwrap_or_else(Body::empty);
        self.app.request(method, path, &headers, body).await
    }

    async fn get(&self, path: &str) -> TestResponse {
        self.send(Method::GET, path, None, "application/json").await
    }

    async fn create(&self, body: Value) -> TestResponse {
        self.send(Method::POST, "/v2/images", Some(body), "application/json")
            .await
    }

    async fn patch(&self, path: &str, body: Value) -> TestResponse {
        self.send(Method::PATCH, path, Some(body), PATCH_V21).await
    }

    async fn list_ids(&self, query: &str) -> Vec<String> {
        let mut ids: Vec<String> = self.get(&format!("/v2/images{query}")).await.json()["images"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    }
}

fn id_of(response: &TestResponse) -> String {
    response.assert_status(201);
    response.json()["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

all_databases!(fn requests_without_confirmed_identity_are_401(app, TRUSTED) {
    let response = app.request(Method::GET, "/v2/images", &[("accept", "application/json")], Body::empty()).await;
    response.assert_status(401);
    assert!(response.header("x-openstack-request-id").is_some());
    let unconfirmed = app
        .request(Method::GET, "/v2/images", &[("x-identity-status", "Invalid"), ("x-project-id", "p")], Body::empty())
        .await;
    unconfirmed.assert_status(401);
    // Versions and the health check need no identity.
    app.request(Method::GET, "/versions", &[], Body::empty()).await.assert_status(200);
    app.request(Method::GET, "/healthcheck", &[], Body::empty()).await.assert_status(200);
    // An admin with no scope at all is no admin: nobody is.
    for method in [Method::GET, Method::POST] {
        let unscoped = app
            .request(method, "/v2/images", &[("x-identity-status", "Confirmed"), ("x-roles", "admin")], Body::from("{}"))
            .await;
        unscoped.assert_status(401);
    }
});

all_databases!(fn system_and_domain_scoped_admins_use_no_image(app, TRUSTED) {
    let alice = Caller { app: &app, project: "alice", roles: "member" };
    let public = id_of(&alice.create(json!({"visibility": "community"})).await);
    for scope in [("openstack-system-scope", "all"), ("x-domain-id", "default")] {
        let send = |method: Method, path: String| {
            let app = &app;
            async move {
                let headers = [("x-identity-status", "Confirmed"), ("x-roles", "admin,member,reader"), scope, ("content-type", "application/json")];
                let body = if method == Method::POST { Body::from("{}") } else { Body::empty() };
                app.request(method, &path, &headers, body).await
            }
        };
        send(Method::GET, "/v2/images".into()).await.assert_status(403);
        send(Method::POST, "/v2/images".into()).await.assert_status(403);
        send(Method::GET, format!("/v2/images/{public}")).await.assert_status(404);
        send(Method::DELETE, format!("/v2/images/{public}")).await.assert_status(404);
        send(Method::POST, format!("/v2/images/{public}/actions/deactivate")).await.assert_status(404);
        send(Method::GET, format!("/v2/images/{public}/file")).await.assert_status(404);
    }
    alice.get(&format!("/v2/images/{public}")).await.assert_status(200);
});

all_databases!(fn images_belong_to_the_callers_project(app, TRUSTED) {
    let alice = Caller { app: &app, project: "alice", roles: "member,reader" };
    let image = alice.create(json!({"name": "mine"})).await;
    image.assert_status(201);
    assert_eq!(image.json()["owner"], "alice");
    let foreign = alice.create(json!({"owner": "bob"})).await;
    foreign.assert_status(403);
    let reader = Caller { app: &app, project: "alice", roles: "reader" };
    reader.create(json!({})).await.assert_status(403);
    let admin = Caller { app: &app, project: "ops", roles: "admin" };
    let for_bob = admin.create(json!({"owner": "bob"})).await;
    for_bob.assert_status(201);
    assert_eq!(for_bob.json()["owner"], "bob");
});

all_databases!(fn visibility_decides_who_sees_what(app, TRUSTED) {
    let alice = Caller { app: &app, project: "alice", roles: "member" };
    let bob = Caller { app: &app, project: "bob", roles: "member" };
    let admin = Caller { app: &app, project: "ops", roles: "admin" };

    let private = id_of(&alice.create(json!({"visibility": "private"})).await);
    let shared = id_of(&alice.create(json!({})).await);
    let community = id_of(&alice.create(json!({"visibility": "community"})).await);
    let public = id_of(&admin.create(json!({"visibility": "public"})).await);
    let shared_with_bob = id_of(&alice.create(json!({"name": "for bob"})).await);
    app.execute(&format!(
        "INSERT INTO image_members (image_id, member, can_share, status, created_at, updated_at, deleted) \
         VALUES ('{shared_with_bob}', 'bob', FALSE, 'pending', '2026-01-01 00:00:00', '2026-01-01 00:00:00', FALSE)"
    ))
    .await;

    for id in [&private, &shared, &community, &shared_with_bob] {
        alice.get(&format!("/v2/images/{id}")).await.assert_status(200);
    }
    bob.get(&format!("/v2/images/{private}")).await.assert_status(404);
    bob.get(&format!("/v2/images/{shared}")).await.assert_status(404);
    bob.get(&format!("/v2/images/{community}")).await.assert_status(200);
    bob.get(&format!("/v2/images/{public}")).await.assert_status(200);
    // A pending member may see the image by id, but lists show it only once accepted.
    bob.get(&format!("/v2/images/{shared_with_bob}")).await.assert_status(200);
    assert_eq!(bob.list_ids("").await, vec![public.clone()]);
    assert_eq!(bob.list_ids("?member_status=pending").await, {
        let mut v = vec![public.clone(), shared_with_bob.clone()];
        v.sort();
        v
    });
    app.execute(&format!("UPDATE image_members SET status = 'accepted' WHERE image_id = '{shared_with_bob}'")).await;
    assert!(bob.list_ids("").await.contains(&shared_with_bob));
    assert_eq!(bob.list_ids("?visibility=community").await, vec![community.clone()]);
    assert!(bob.list_ids("?visibility=all").await.contains(&community));
    assert_eq!(bob.list_ids("?visibility=private").await, Vec::<String>::new());

    let mut alice_sees = vec![private.clone(), shared.clone(), community.clone(), public.clone(), shared_with_bob.clone()];
    alice_sees.sort();
    assert_eq!(alice.list_ids("").await, alice_sees);

    // Admins list everything except other projects' community images.
    let admin_list = admin.list_ids("").await;
    assert!(!admin_list.contains(&community));
    assert!(admin_list.contains(&private));
    assert!(admin.list_ids("?visibility=all").await.contains(&community));
    let mut all_shared = vec![shared.clone(), shared_with_bob.clone()];
    all_shared.sort();
    assert_eq!(admin.list_ids("?visibility=shared").await, all_shared);
    assert_eq!(alice.list_ids("?visibility=shared").await, all_shared);
    assert_eq!(bob.list_ids("?visibility=shared").await, vec![shared_with_bob.clone()]);

    // A marker the caller cannot see is a 400.
    bob.get(&format!("/v2/images?marker={private}")).await.assert_status(400);
});

all_databases!(fn only_owners_and_admins_change_images(app, TRUSTED) {
    let alice = Caller { app: &app, project: "alice", roles: "member" };
    let bob = Caller { app: &app, project: "bob", roles: "member" };
    let admin = Caller { app: &app, project: "ops", roles: "admin" };
    let id = id_of(&alice.create(json!({"visibility": "community"})).await);
    let path = format!("/v2/images/{id}");
    let rename = json!([{"op": "replace", "path": "/name", "value": "x"}]);

    let refused = bob.patch(&path, rename.clone()).await;
    refused.assert_status(403);
    assert_eq!(refused.error_message(), "You are not authorized to complete modify_image action.");
    let refused = bob.send(Method::DELETE, &path, None, "application/json").await;
    refused.assert_status(403);
    assert_eq!(refused.error_message(), "You are not authorized to complete delete_image action.");
    bob.send(Method::PUT, &format!("{path}/tags/t"), None, "application/json").await.assert_status(403);
    let refused = bob.send(Method::POST, &format!("{path}/actions/deactivate"), None, "application/json").await;
    refused.assert_status(403);
    alice.patch(&path, rename.clone()).await.assert_status(200);
    admin.patch(&path, rename).await.assert_status(200);

    // Images the caller cannot see are 404 with each route's own wording.
    let private = id_of(&alice.create(json!({"visibility": "private"})).await);
    let hidden = format!("/v2/images/{private}");
    assert_eq!(bob.patch(&hidden, json!([])).await.error_message(), format!("No image found with ID {private}"));
    let deleted = bob.send(Method::DELETE, &hidden, None, "application/json").await;
    deleted.assert_status(404);
    assert_eq!(deleted.error_message(), format!("Failed to find image {private} to delete"));
    let tagged = bob.send(Method::PUT, &format!("{hidden}/tags/t"), None, "application/json").await;
    tagged.assert_status(404);
    assert_eq!(tagged.error_message(), format!("Image {private} not found."));

    let publicize = alice.patch(&path, json!([{"op": "replace", "path": "/visibility", "value": "public"}])).await;
    publicize.assert_status(403);
    assert_eq!(publicize.error_message(), "You are not authorized to complete publicize_image action.");
    alice.create(json!({"visibility": "public"})).await.assert_status(403);
    admin.patch(&path, json!([{"op": "replace", "path": "/visibility", "value": "public"}])).await.assert_status(200);
    let owner = alice.patch(&path, json!([{"op": "replace", "path": "/owner", "value": "bob"}])).await;
    owner.assert_status(403);
    alice.send(Method::DELETE, &path, None, "application/json").await.assert_status(204);
});

/// A policy file an operator wrote: a publisher role may publicize, listing is closed, and
/// members may no longer delete.
fn policy_config() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.yaml");
    std::fs::write(
        &path,
        "# operators' overrides\n\
         \"publicize_image\": \"role:admin or (role:publisher and project_id:%(project_id)s)\"\n\
         \"get_images\": \"!\"\n\
         \"delete_image\": \"rule:context_is_admin\"\n",
    )
    .expect("writes");
    (
        format!("{TRUSTED}[oslo_policy]\npolicy_file = {}\n", path.display()),
        dir,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_policy_file_changes_what_is_allowed() {
    let (config, _dir) = policy_config();
    let app = TestApp::start(crate::helpers::Backend::Sqlite, &config).await;
    let publisher = Caller {
        app: &app,
        project: "alice",
        roles: "member,publisher",
    };
    let member = Caller {
        app: &app,
        project: "alice",
        roles: "member",
    };
    let id = id_of(&member.create(json!({"name": "x"})).await);
    let path = format!("/v2/images/{id}");
    let public = json!([{"op": "replace", "path": "/visibility", "value": "public"}]);
    member.patch(&path, public.clone()).await.assert_status(403);
    publisher.patch(&path, public).await.assert_status(200);
    member.get("/v2/images").await.assert_status(403);
    // Still visible by id (get_image is the default), no longer deletable by its members.
    member.get(&path).await.assert_status(200);
    member
        .send(Method::DELETE, &path, None, "application/json")
        .await
        .assert_status(403);
    let admin = Caller {
        app: &app,
        project: "ops",
        roles: "admin",
    };
    admin
        .send(Method::DELETE, &path, None, "application/json")
        .await
        .assert_status(204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_policy_file_that_is_missing_or_wrong_stops_the_start() {
    let missing =
        glint::config::ini::Ini::parse("[oslo_policy]\npolicy_file = /nonexistent/policy.yaml\n")
            .expect("parses");
    let mut config =
        glint::config::Config::from_ini(&missing, std::path::Path::new("/d")).expect("loads");
    assert!(config.policy.locate(None).is_err());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, "add_image: \"role:member and (\"\n").expect("writes");
    config.policy.policy_file = Some(path);
    let err = glint::policy::Enforcer::new(&config.policy).expect_err("refused");
    assert!(err.contains("add_image"), "{err}");
}
