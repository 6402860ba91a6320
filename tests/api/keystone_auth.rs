//! `flavor = keystone` against the real Keystone of scripts/lab-keystone: tokens validated as
//! keystonemiddleware validates them for Glance, the scopes and roles they carry, service
//! tokens, application credentials' access rules, and Keystone down or silent.

use axum::body::Body;
use axum::http::Method;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp, TestResponse};

pub(crate) fn env(name: &str) -> String {
    std::env::var(format!("GLINT_TEST_KEYSTONE_{name}")).unwrap_or_else(|_| {
        panic!("GLINT_TEST_KEYSTONE_{name} is not set: start scripts/lab-keystone and eval its env")
    })
}

/// The `[keystone_authtoken]` of Glance's install guide, on the lab Keystone, plus `extra`.
pub(crate) fn config(auth_url: &str, extra: &str) -> String {
    format!(
        "[paste_deploy]\nflavor = keystone\n[keystone_authtoken]\n\
         www_authenticate_uri = http://keystone.example:5000\nauth_url = {auth_url}\n\
         auth_type = password\nproject_domain_name = Default\nuser_domain_name = Default\n\
         project_name = service\nusername = glance\npassword = {}\n\
         memcached_servers = 127.0.0.1:11211\n{extra}",
        env("GLANCE_PASSWORD")
    )
}

async fn app(extra: &str) -> TestApp {
    TestApp::start(Backend::Sqlite, &config(&env("URL"), extra)).await
}

/// An HTTP call to a lab server: status, headers, body.
pub(crate) async fn http_call(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (u16, axum::http::HeaderMap, Bytes) {
    let connector = glint_store::net::https_connector(None, false).expect("connector");
    let client = glint_store::net::client::<Full<Bytes>>(connector);
    let build = || {
        let mut request = axum::http::Request::builder()
            .method(method.clone())
            .uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .body(Full::new(body.clone()))
            .expect("request builds")
    };
    // uWSGI's http-socket (the lab Keystone's) now and then drops a connection unanswered.
    let response = match client.request(build()).await {
        Ok(response) => response,
        Err(_) => client
            .request(build())
            .await
            .expect("the lab server answers"),
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, headers, bytes)
}

/// A call to the lab Keystone: status, `X-Subject-Token`, body.
pub(crate) async fn keystone(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Option<String>, Value) {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let (status, headers, bytes) =
        http_call(method, &format!("{}{path}", env("URL")), &all, body).await;
    let subject = headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        status,
        subject,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A signed-in user: the token and what Keystone says of it.
pub(crate) struct Token {
    pub(crate) value: String,
    body: Value,
}

impl Token {
    pub(crate) fn project_id(&self) -> &str {
        self.body["token"]["project"]["id"]
            .as_str()
            .expect("project-scoped")
    }

    fn user_id(&self) -> &str {
        self.body["token"]["user"]["id"].as_str().expect("user")
    }
}

pub(crate) async fn sign_in(identity: Value, scope: Option<Value>) -> Token {
    let mut auth = json!({ "identity": identity });
    if let Some(scope) = scope {
        auth["scope"] = scope;
    }
    let (status, value, body) = keystone(
        Method::POST,
        "/auth/tokens",
        &[],
        Some(json!({ "auth": auth })),
    )
    .await;
    assert_eq!(status, 201, "sign-in: {body}");
    Token {
        value: value.expect("X-Subject-Token"),
        body,
    }
}

pub(crate) fn password(user: &str, password: &str) -> Value {
    json!({"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}})
}

fn project(name: &str) -> Value {
    json!({"project": {"name": name, "domain": {"id": "default"}}})
}

/// A user of the lab signed in to `project_name`.
pub(crate) async fn user(name: &str, project_name: &str) -> Token {
    sign_in(
        password(name, &env("USER_PASSWORD")),
        Some(project(project_name)),
    )
    .await
}

pub(crate) async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> TestResponse {
    let mut all = vec![
        ("accept", "application/json"),
        ("content-type", "application/json"),
    ];
    all.extend_from_slice(headers);
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    app.request(method, path, &all, body).await
}

pub(crate) async fn as_user(
    app: &TestApp,
    token: &Token,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> TestResponse {
    call(app, method, path, &[("x-auth-token", &token.value)], body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_are_401_naming_keystone() {
    let app = app("").await;
    for headers in [vec![], vec![("x-auth-token", "not-a-token")]] {
        let response = call(&app, Method::GET, "/v2/images", &headers, None).await;
        response.assert_status(401);
        assert_eq!(
            response.header("www-authenticate"),
            Some("Keystone uri=\"http://keystone.example:5000\"")
        );
        assert!(
            response.text().contains("requires authentication"),
            "{}",
            response.text()
        );
    }
    // Identity headers a client sets itself are not believed.
    let forged = call(
        &app,
        Method::GET,
        "/v2/images",
        &[
            ("x-identity-status", "Confirmed"),
            ("x-project-id", "p1"),
            ("x-roles", "admin"),
        ],
        None,
    )
    .await;
    forged.assert_status(401);
    // Discovery stays open, as Glance's versions pipeline has no authtoken.
    call(&app, Method::GET, "/versions", &[], None)
        .await
        .assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_roles_decide_what_a_token_may_do() {
    let app = app("").await;
    let alice = user("alice", "alpha").await;
    let rita = user("rita", "alpha").await;
    let bob = user("bob", "beta").await;
    let admin = sign_in(
        password("admin", &env("ADMIN_PASSWORD")),
        Some(project("admin")),
    )
    .await;

    let created = as_user(
        &app,
        &alice,
        Method::POST,
        "/v2/images",
        Some(json!({"name": "alpha-private", "disk_format": "raw", "container_format": "bare"})),
    )
    .await;
    created.assert_status(201);
    let image = created.json();
    assert_eq!(image["owner"], alice.project_id());
    let id = image["id"].as_str().expect("id").to_owned();
    let path = format!("/v2/images/{id}");

    // A reader of the project sees it and cannot create.
    as_user(&app, &rita, Method::GET, &path, None)
        .await
        .assert_status(200);
    as_user(
        &app,
        &rita,
        Method::POST,
        "/v2/images",
        Some(json!({"name": "no"})),
    )
    .await
    .assert_status(403);
    // Another project does not learn that it exists.
    as_user(&app, &bob, Method::GET, &path, None)
        .await
        .assert_status(404);
    let listed = as_user(&app, &bob, Method::GET, "/v2/images", None).await;
    listed.assert_status(200);
    assert!(!listed.text().contains(&id));
    // A project-scoped admin sees and may change everything.
    as_user(&app, &admin, Method::GET, &path, None)
        .await
        .assert_status(200);
    as_user(&app, &admin, Method::DELETE, &path, None)
        .await
        .assert_status(204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_scoped_tokens_use_no_image() {
    let app = app("").await;
    let alice = user("alice", "alpha").await;
    let created = as_user(
        &app,
        &alice,
        Method::POST,
        "/v2/images",
        Some(json!({"name": "public-one", "visibility": "community"})),
    )
    .await;
    created.assert_status(201);
    let path = format!("/v2/images/{}", created.json()["id"].as_str().expect("id"));
    let system = sign_in(
        password("admin", &env("ADMIN_PASSWORD")),
        Some(json!({"system": {"all": true}})),
    )
    .await;
    as_user(&app, &system, Method::GET, "/v2/images", None)
        .await
        .assert_status(403);
    as_user(
        &app,
        &system,
        Method::POST,
        "/v2/images",
        Some(json!({"name": "sys"})),
    )
    .await
    .assert_status(403);
    as_user(&app, &system, Method::GET, &path, None)
        .await
        .assert_status(404);
    as_user(&app, &system, Method::DELETE, &path, None)
        .await
        .assert_status(404);
    as_user(
        &app,
        &system,
        Method::POST,
        &format!("{path}/actions/deactivate"),
        None,
    )
    .await
    .assert_status(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_are_refused() {
    let app = app("").await;
    let alice = user("alice", "alpha").await;
    let (status, _, _) = keystone(
        Method::DELETE,
        "/auth/tokens",
        &[
            ("x-auth-token", &alice.value),
            ("x-subject-token", &alice.value),
        ],
        None,
    )
    .await;
    assert_eq!(status, 204);
    as_user(&app, &alice, Method::GET, "/v2/images", None)
        .await
        .assert_status(401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_tokens_must_be_valid_and_may_need_the_service_role() {
    let app = app("service_token_roles_required = true\n").await;
    let alice = user("alice", "alpha").await;
    let nova = sign_in(
        password("nova", &env("NOVA_PASSWORD")),
        Some(project("service")),
    )
    .await;
    let with_service = |service: &str| {
        vec![
            ("x-auth-token", alice.value.clone()),
            ("x-service-token", service.to_owned()),
        ]
    };
    let send = |headers: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            call(app, Method::GET, "/v2/images", &headers, None).await
        }
    };
    send(with_service(&nova.value)).await.assert_status(200);
    send(with_service("not-a-token")).await.assert_status(401);
    // A valid token without the service role is no service token here.
    send(with_service(&alice.value)).await.assert_status(401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_credentials_keep_to_their_access_rules() {
    let app = app("").await;
    let alice = user("alice", "alpha").await;
    let name = format!("glint-{}", uuid::Uuid::new_v4().simple());
    let (status, _, made) = keystone(
        Method::POST,
        &format!("/users/{}/application_credentials", alice.user_id()),
        &[("x-auth-token", &alice.value)],
        Some(json!({"application_credential": {
            "name": name,
            "access_rules": [{"service": "image", "method": "GET", "path": "/v2/images"}],
        }})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let credential = &made["application_credential"];
    let token = sign_in(
        json!({"methods": ["application_credential"], "application_credential": {
            "id": credential["id"], "secret": credential["secret"]}}),
        None,
    )
    .await;
    as_user(&app, &token, Method::GET, "/v2/images", None)
        .await
        .assert_status(200);
    as_user(
        &app,
        &token,
        Method::POST,
        "/v2/images",
        Some(json!({"name": "not allowed"})),
    )
    .await
    .assert_status(401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystone_down_silent_or_refusing_the_service_is_503() {
    // Nothing listens.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let down = TestApp::start(
        Backend::Sqlite,
        &config(&format!("http://127.0.0.1:{closed}/v3"), ""),
    )
    .await;
    let alice = user("alice", "alpha").await;
    let response = as_user(&down, &alice, Method::GET, "/v2/images", None).await;
    response.assert_status(503);
    assert!(
        response
            .text()
            .contains("Keystone service is temporarily unavailable"),
        "{}",
        response.text()
    );

    // Something accepts connections and never answers: the timeout ends the wait.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = silent.local_addr().expect("address").port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let hung = TestApp::start(
        Backend::Sqlite,
        &config(
            &format!("http://127.0.0.1:{port}/v3"),
            "http_connect_timeout = 1\n",
        ),
    )
    .await;
    as_user(&hung, &alice, Method::GET, "/v2/images", None)
        .await
        .assert_status(503);
    held.abort();

    // The service's own password refused: an operator's error, never a token accepted.
    let wrong = TestApp::start(
        Backend::Sqlite,
        &config(&env("URL"), "").replace(&env("GLANCE_PASSWORD"), "wrong-password"),
    )
    .await;
    as_user(&wrong, &alice, Method::GET, "/v2/images", None)
        .await
        .assert_status(503);
}

/// A token that expires in a few seconds: one from an application credential that does
/// (Keystone caps the token at the credential's expiry).
async fn short_lived_token(alice: &Token, seconds: i64) -> Token {
    let expires = (chrono::Utc::now() + chrono::Duration::seconds(seconds))
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string();
    let (status, _, made) = keystone(
        Method::POST,
        &format!("/users/{}/application_credentials", alice.user_id()),
        &[("x-auth-token", &alice.value)],
        Some(json!({"application_credential": {
            "name": format!("short-{}", uuid::Uuid::new_v4().simple()),
            "expires_at": expires,
        }})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let credential = &made["application_credential"];
    sign_in(
        json!({"methods": ["application_credential"], "application_credential": {
            "id": credential["id"], "secret": credential["secret"]}}),
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_refused_unless_a_service_token_vouches_for_them() {
    let app = app("").await;
    let alice = user("alice", "alpha").await;
    let short = short_lived_token(&alice, 3).await;
    as_user(&app, &short, Method::GET, "/v2/images", None)
        .await
        .assert_status(200);
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    // Cached as valid a moment ago: its own expiry still ends it.
    as_user(&app, &short, Method::GET, "/v2/images", None)
        .await
        .assert_status(401);
    let fresh_app = self::app("").await;
    as_user(&fresh_app, &short, Method::GET, "/v2/images", None)
        .await
        .assert_status(401);
    // Nova finishing a long upload for the user: its service token lets the expired one in.
    let nova = sign_in(
        password("nova", &env("NOVA_PASSWORD")),
        Some(project("service")),
    )
    .await;
    let vouched = call(
        &fresh_app,
        Method::GET,
        "/v2/images",
        &[
            ("x-auth-token", &short.value),
            ("x-service-token", &nova.value),
        ],
        None,
    )
    .await;
    vouched.assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_scoped_tokens_act_in_the_trustors_project() {
    let app = app("").await;
    let alice = user("alice", "alpha").await;
    let bob = user("bob", "beta").await;
    let (status, _, trust) = keystone(
        Method::POST,
        "/OS-TRUST/trusts",
        &[("x-auth-token", &alice.value)],
        Some(json!({"trust": {
            "trustor_user_id": alice.user_id(),
            "trustee_user_id": bob.user_id(),
            "project_id": alice.project_id(),
            "impersonation": false,
            "roles": [{"name": "member"}],
        }})),
    )
    .await;
    assert_eq!(status, 201, "{trust}");
    let trusted = sign_in(
        password("bob", &env("USER_PASSWORD")),
        Some(json!({"OS-TRUST:trust": {"id": trust["trust"]["id"]}})),
    )
    .await;
    assert_eq!(trusted.project_id(), alice.project_id());
    let created = as_user(
        &app,
        &trusted,
        Method::POST,
        "/v2/images",
        Some(json!({"name": "by trust"})),
    )
    .await;
    created.assert_status(201);
    assert_eq!(created.json()["owner"], alice.project_id());
    let id = created.json()["id"].as_str().expect("id").to_owned();
    as_user(&app, &alice, Method::GET, &format!("/v2/images/{id}"), None)
        .await
        .assert_status(200);
    as_user(&app, &bob, Method::GET, &format!("/v2/images/{id}"), None)
        .await
        .assert_status(404);
}
