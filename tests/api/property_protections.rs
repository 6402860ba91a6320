//! Property protections (`property_protection_file`): who may create, read, update and delete
//! which extra properties, with Glance's statuses (its `functional/v2/test_property_protection.py`
//! and `unit/v2/test_images_resource.py`), in both rule formats, on every database.

use std::path::PathBuf;

use crate::all_databases;
use crate::helpers::{TestApp, TestResponse};
use axum::body::Body;
use axum::http::Method;
use serde_json::{json, Value};

const TRUSTED: &str = "[paste_deploy]\nflavor = trusted-auth\n";
const PATCH: &str = "application/openstack-images-v2.1-json-patch";

/// Rules in the shape of Glance's `tests/etc/property-protections.conf`.
const ROLE_RULES: &str = "\
[^x_owner_]
create = admin,member
read = admin,member
update = admin,member
delete = admin,member

[spl_read_prop]
create = admin,spl_role
read = admin,spl_role
update = admin
delete = admin

[spl_update_prop]
create = admin,spl_role
read = admin,spl_role
update = admin,spl_role
delete = admin

[spl_delete_prop]
create = admin,spl_role
read = admin,spl_role
update = admin
delete = admin,spl_role

[^x_all_permitted]
create = @
read = @
update = @
delete = @

[^x_none_permitted]
create = !
read = !
update = !
delete = !

[x_none_read]
create = admin,member
read = !
update = !
delete = !

[.*]
create = admin
read = admin
update = admin
delete = admin
";

const POLICY_RULES: &str = "\
[^spl_creator_policy$]
create = glance_creator
read = glance_creator
update = !
delete = !

[^spl_undefined_policy$]
create = no_such_rule
read = @
update = @
delete = @

[.*]
create = @
read = @
update = @
delete = @
";

/// Writes `content` to a file named after it in the temporary directory and returns its path.
/// The configuration is read when the app starts, so the file must outlive the helper; one
/// file per content, replaced atomically, keeps concurrent tests from seeing a partial file.
fn persisted(stem: &str, content: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    content.hash(&mut hasher);
    let dir = std::env::temp_dir();
    let path = dir.join(format!("glint-test-{stem}-{:016x}", hasher.finish()));
    let file = tempfile::NamedTempFile::new_in(&dir).expect("temporary file");
    std::fs::write(file.path(), content).expect("writes");
    file.persist(&path).expect("persists");
    path
}

fn roles_config() -> String {
    format!(
        "{TRUSTED}[DEFAULT]\nproperty_protection_file = {}\n",
        persisted("protections-roles.conf", ROLE_RULES).display()
    )
}

fn policies_config() -> String {
    let policy = persisted(
        "protections-policy.yaml",
        "\"glance_creator\": \"role:admin or role:spl_role\"\n",
    );
    format!(
        "{TRUSTED}[DEFAULT]\nproperty_protection_file = {}\nproperty_protection_rule_format = policies\n\
         [oslo_policy]\npolicy_file = {}\n",
        persisted("protections-policies.conf", POLICY_RULES).display(),
        policy.display()
    )
}

/// A caller of project `alice` with `roles`.
async fn call(
    app: &TestApp,
    roles: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> TestResponse {
    let content_type = if method == Method::PATCH {
        PATCH
    } else {
        "application/json"
    };
    let headers = [
        ("x-identity-status", "Confirmed"),
        ("x-project-id", "alice"),
        ("x-user-id", "user"),
        ("x-roles", roles),
        ("content-type", content_type),
        ("accept", "application/json"),
    ];
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    app.request(method, path, &headers, body).await
}

async fn create(app: &TestApp, roles: &str, body: Value) -> TestResponse {
    call(app, roles, Method::POST, "/v2/images", Some(body)).await
}

/// An image created by an admin with `properties`; its path.
async fn image_with(app: &TestApp, properties: Value) -> String {
    let created = create(app, "admin", properties).await;
    created.assert_status(201);
    format!(
        "/v2/images/{}",
        created.json()["id"].as_str().unwrap_or_default()
    )
}

async fn patch(app: &TestApp, roles: &str, path: &str, changes: Value) -> TestResponse {
    call(app, roles, Method::PATCH, path, Some(changes)).await
}

async fn show(app: &TestApp, roles: &str, path: &str) -> Value {
    let shown = call(app, roles, Method::GET, path, None).await;
    shown.assert_status(200);
    shown.json()
}

all_databases!(fn properties_are_created_only_by_the_roles_allowed_to(app, &roles_config()) {
    let created = create(&app, "reader,member", json!({"name": "a", "x_owner_foo": "bar"})).await;
    created.assert_status(201);
    assert_eq!(created.json()["x_owner_foo"], "bar");

    let refused = create(&app, "reader,member", json!({"name": "a", "spl_read_prop": "v"})).await;
    refused.assert_status(403);
    assert!(refused.text().contains("Attribute 'spl_read_prop' is reserved."), "{}", refused.text());

    create(&app, "member,spl_role", json!({"spl_read_prop": "v"})).await.assert_status(201);
    // A property that only the catch-all matches is the admin's.
    create(&app, "member", json!({"os_distro": "debian"})).await.assert_status(403);
    create(&app, "admin", json!({"os_distro": "debian"})).await.assert_status(201);
});

all_databases!(fn at_lets_everyone_and_bang_lets_no_one_not_even_an_admin(app, &roles_config()) {
    let created = create(&app, "member", json!({"x_all_permitted_test": "v"})).await;
    created.assert_status(201);
    assert_eq!(created.json()["x_all_permitted_test"], "v");
    create(&app, "admin", json!({"x_none_permitted_test": "v"})).await.assert_status(403);
});

all_databases!(fn properties_the_caller_may_not_read_are_omitted_from_show_and_list(app, &roles_config()) {
    let path = image_with(&app, json!({"name": "r", "spl_read_prop": "secret", "x_owner_foo": "bar"})).await;
    let special = show(&app, "member,spl_role", &path).await;
    assert_eq!(special["spl_read_prop"], "secret");
    let member = show(&app, "member", &path).await;
    assert!(member.get("spl_read_prop").is_none(), "{member}");
    assert_eq!(member["x_owner_foo"], "bar");

    let listed = call(&app, "member", Method::GET, "/v2/images", None).await;
    listed.assert_status(200);
    let images = listed.json()["images"].as_array().cloned().unwrap_or_default();
    assert_eq!(images.len(), 1);
    assert!(images[0].get("spl_read_prop").is_none(), "{}", images[0]);
    assert_eq!(images[0]["x_owner_foo"], "bar");

    // Created but unreadable: not even its creator sees it in the answer.
    let created = create(&app, "member", json!({"x_none_read": "v"})).await;
    created.assert_status(201);
    assert!(created.json().get("x_none_read").is_none());
});

all_databases!(fn replace_needs_update_permission_and_a_property_the_caller_can_read(app, &roles_config()) {
    let path = image_with(&app, json!({"spl_update_prop": "initial", "spl_read_prop": "read"})).await;
    let updated = patch(&app, "member,spl_role", &path,
        json!([{"op": "replace", "path": "/spl_update_prop", "value": "updated"}])).await;
    updated.assert_status(200);
    assert_eq!(updated.json()["spl_update_prop"], "updated");

    // Readable but not updatable: 403.
    patch(&app, "member,spl_role", &path,
        json!([{"op": "replace", "path": "/spl_read_prop", "value": "x"}])).await.assert_status(403);
    // `add` of an existing property is a replace, and needs update permission too.
    patch(&app, "member,spl_role", &path,
        json!([{"op": "add", "path": "/spl_read_prop", "value": "x"}])).await.assert_status(403);
    // Not readable: it does not exist for this caller (Glance's 409).
    patch(&app, "member", &path,
        json!([{"op": "replace", "path": "/spl_read_prop", "value": "x"}])).await.assert_status(409);

    // A change by a caller who cannot see a property leaves that property alone.
    patch(&app, "member", &path,
        json!([{"op": "add", "path": "/x_owner_new", "value": "n"}])).await.assert_status(200);
    let full = show(&app, "admin", &path).await;
    assert_eq!(full["spl_read_prop"], "read");
    assert_eq!(full["spl_update_prop"], "updated");
    assert_eq!(full["x_owner_new"], "n");
});

all_databases!(fn add_needs_create_permission(app, &roles_config()) {
    let path = image_with(&app, json!({"name": "c"})).await;
    patch(&app, "member", &path,
        json!([{"op": "add", "path": "/spl_read_prop", "value": "v"}])).await.assert_status(403);
    patch(&app, "admin", &path,
        json!([{"op": "add", "path": "/x_none_permitted_x", "value": "v"}])).await.assert_status(403);
    let added = patch(&app, "member,spl_role", &path,
        json!([{"op": "add", "path": "/spl_read_prop", "value": "v"}])).await;
    added.assert_status(200);
    assert_eq!(added.json()["spl_read_prop"], "v");
});

all_databases!(fn remove_needs_delete_permission(app, &roles_config()) {
    let path = image_with(&app, json!({"spl_delete_prop": "d", "spl_read_prop": "r"})).await;
    let removed = patch(&app, "member,spl_role", &path,
        json!([{"op": "remove", "path": "/spl_delete_prop"}])).await;
    removed.assert_status(200);
    assert!(removed.json().get("spl_delete_prop").is_none());
    patch(&app, "member,spl_role", &path,
        json!([{"op": "remove", "path": "/spl_read_prop"}])).await.assert_status(403);
    patch(&app, "member", &path,
        json!([{"op": "remove", "path": "/spl_read_prop"}])).await.assert_status(409);
    assert_eq!(show(&app, "admin", &path).await["spl_read_prop"], "r");
});

all_databases!(fn policies_format_asks_the_named_policy_rule(app, &policies_config()) {
    create(&app, "reader,member", json!({"spl_creator_policy": "v"})).await.assert_status(403);
    let created = create(&app, "member,spl_role", json!({"spl_creator_policy": "v"})).await;
    created.assert_status(201);
    assert_eq!(created.json()["spl_creator_policy"], "v");
    let path = format!("/v2/images/{}", created.json()["id"].as_str().unwrap_or_default());
    assert!(show(&app, "member", &path).await.get("spl_creator_policy").is_none());
    patch(&app, "admin", &path,
        json!([{"op": "replace", "path": "/spl_creator_policy", "value": "w"}])).await.assert_status(403);
    // Other properties fall to `[.*]`, open to all.
    create(&app, "member", json!({"os_distro": "debian"})).await.assert_status(201);
    // A rule the policy file does not define denies, as oslo.policy's `rule:` does.
    create(&app, "admin", json!({"spl_undefined_policy": "v"})).await.assert_status(403);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_protection_file_stops_the_start() {
    let rules = persisted(
        "protections-invalid.conf",
        "[x]\ncreate = @,admin,!\nread = @\nupdate = @\ndelete = @\n",
    );
    let ini = glint::config::ini::Ini::parse(&format!(
        "[DEFAULT]\nproperty_protection_file = {}\n",
        rules.display()
    ))
    .expect("parses");
    let dir = tempfile::tempdir().expect("tempdir");
    let err = glint::config::Config::from_ini(&ini, dir.path())
        .expect_err("refused")
        .to_string();
    assert!(err.contains(&rules.display().to_string()), "{err}");
    assert!(err.contains("mutually exclusive"), "{err}");
}
