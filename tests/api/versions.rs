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
    assert_eq!(response.header("content-type"), Some("text/plain; charset=UTF-8"));
    // As oslo.middleware: HEAD is 204, JSON on request.
    app.request(Method::HEAD, "/healthcheck", &[], Body::empty()).await.assert_status(204);
    let json = app.request(Method::GET, "/healthcheck", &[("accept", "application/json")], Body::empty()).await;
    json.assert_status(200);
    assert_eq!(json.json(), serde_json::json!({"detailed": false, "reasons": ["OK"]}));
});

all_databases!(fn a_file_takes_a_node_out_of_its_load_balancer(app) {
    // Glance's paste file names /etc/glance/healthcheck_disable; this node names its own.
    let dir = tempfile::tempdir().expect("dir");
    let off = dir.path().join("healthcheck_disable");
    let mut config = app.config.clone();
    config.healthcheck = glint::config::HealthcheckConfig {
        backends: vec![glint::config::HealthBackend::DisableByFile(Some(off.clone()))],
        detailed: true,
        ..Default::default()
    };
    let router = glint::app(&config, &app.services);
    let ask = |method: Method, accept: &'static str| {
        let router = router.clone();
        async move {
            use tower::ServiceExt;
            let request = axum::http::Request::builder().method(method).uri("/healthcheck")
                .header("accept", accept).body(Body::empty()).expect("request");
            let response = router.oneshot(request).await.expect("answers");
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    assert_eq!(ask(Method::GET, "text/plain").await, (200, "OK".to_owned()));
    std::fs::write(&off, b"").expect("touch");
    assert_eq!(ask(Method::GET, "*/*").await, (503, "DISABLED BY FILE".to_owned()));
    // (A HEAD answer carries no body on the wire whatever the router fills in.)
    assert_eq!(ask(Method::HEAD, "*/*").await.0, 503);
    let (status, body) = ask(Method::GET, "application/json").await;
    assert_eq!(status, 503);
    let body: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["detailed"], true);
    assert_eq!(body["reasons"][0]["reason"], "DISABLED BY FILE");
    assert_eq!(body["reasons"][0]["class"], "DisableByFileHealthcheck");
    std::fs::remove_file(&off).expect("rm");
    assert_eq!(ask(Method::GET, "text/plain").await.0, 200);
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
