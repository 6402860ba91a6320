//! Operators override the metadef rules in their policy file, as in Glance: here a
//! `catalog` role may change definitions, and private namespaces are for administrators.

use serde_json::json;

use super::*;
use crate::helpers::{Backend, TestApp};

fn policy_config() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.yaml");
    std::fs::write(
        &path,
        "\"metadef_admin\": \"role:admin or role:catalog\"\n\
         \"get_metadef_namespace\": \"rule:context_is_admin or 'public':%(visibility)s\"\n",
    )
    .expect("writes");
    (
        format!("{TRUSTED}[oslo_policy]\npolicy_file = {}\n", path.display()),
        dir,
    )
}

const CATALOG: Persona = Persona {
    project: "owner",
    role: "catalog,reader",
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_policy_file_changes_metadef_rules() {
    let (config, _dir) = policy_config();
    let app = TestApp::start(Backend::Sqlite, &config).await;
    let created = post(
        &app,
        CATALOG,
        "/v2/metadefs/namespaces",
        json!({"namespace": "mine"}),
    )
    .await;
    created.assert_status(201);
    post(
        &app,
        CATALOG,
        "/v2/metadefs/namespaces/mine/tags/t",
        json!(null),
    )
    .await
    .assert_status(201);
    // The owner's reader no longer sees its private namespace: 404, as Glance answers a
    // namespace the caller may not read.
    let hidden = get(&app, READER, "/v2/metadefs/namespaces/mine").await;
    hidden.assert_status(404);
    // A refused create is 404 too once the caller may not read a namespace of its own
    // project (Glance checks get_metadef_namespace against the caller's project).
    let refused = post(
        &app,
        MEMBER,
        "/v2/metadefs/namespaces",
        json!({"namespace": "x"}),
    )
    .await;
    refused.assert_status(404);
    get(&app, ADMIN, "/v2/metadefs/namespaces/mine")
        .await
        .assert_status(200);
    delete(&app, CATALOG, "/v2/metadefs/namespaces/mine")
        .await
        .assert_status(204);
}
