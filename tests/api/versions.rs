use crate::all_databases;
use axum::body::Body;
use axum::http::Method;

all_databases!(fn root_answers_300_with_the_versions_document(app) {
    let response = app.get("/").await;
    response.assert_status(300);
    let versions = response.json()["versions"].as_array().cloned().unwrap_or_default();
    let current: Vec<&str> = versions.iter().filter(|v| v["status"] == "CURRENT").filter_map(|v| v["id"].as_str()).collect();
    assert_eq!(current, ["v2.17"]);
    assert_eq!(versions[0]["links"][0]["href"], "http://glint.test:9292/v2/");
    assert!(versions.iter().any(|v| v["id"] == "v2.0"));
});

all_databases!(fn versions_path_answers_200_and_unknown_versions_300(app) {
    app.get("/versions").await.assert_status(200);
    app.get("/v1/images").await.assert_status(300);
    app.get("/v3").await.assert_status(300);
});

all_databases!(fn version_aliases_reach_the_v2_api(app) {
    app.get("/v2.1/images").await.assert_status(200);
    app.get("/v2.17/schemas/image").await.assert_status(200);
    app.get("/v2/nothing-here").await.assert_status(404);
});

all_databases!(fn healthcheck_answers_ok(app) {
    let response = app.request(Method::GET, "/healthcheck", &[], Body::empty()).await;
    response.assert_status(200);
    assert_eq!(response.text(), "OK");
});

all_databases!(fn every_response_carries_a_request_id(app) {
    let generated = app.get("/v2/images").await;
    let id = generated.header("x-openstack-request-id").unwrap_or_default().to_owned();
    assert!(id.starts_with("req-") && id.len() == 40, "{id}");
    let echoed = app.request(Method::GET, "/v2/images", &[("x-openstack-request-id", "abc-123")], Body::empty()).await;
    assert_eq!(echoed.header("x-openstack-request-id"), Some("req-abc-123"));
    let kept = app.request(Method::GET, "/nope", &[("x-openstack-request-id", "req-xyz")], Body::empty()).await;
    assert_eq!(kept.header("x-openstack-request-id"), Some("req-xyz"));
    let error = app.get("/v2/images/not-an-id").await;
    assert!(error.header("x-openstack-request-id").is_some());
});
