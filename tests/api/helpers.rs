//! `TestApp`: the real router over a real database (a temporary SQLite file, a fresh
//! PostgreSQL schema, or a fresh MariaDB/MySQL database), driven in-process.
//! `all_databases!` runs a test body on each.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use glint::config::ini::Ini;
use glint::config::Config;
use glint::db::Database;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const PATCH_V21: &str = "application/openstack-images-v2.1-json-patch";
pub const PATCH_V20: &str = "application/openstack-images-v2.0-json-patch";

/// Where the PostgreSQL tests connect (the CI and development machines run one here).
pub(crate) fn postgres_url() -> String {
    std::env::var("GLINT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Where the MySQL/MariaDB tests connect: a server where this user may create databases.
pub(crate) fn mysql_url() -> String {
    std::env::var("GLINT_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

pub struct TestApp {
    pub router: Router,
    pub backend: Backend,
    pub services: glint::Services,
    pub database: Database,
    /// The configuration the app was built from.
    pub config: Config,
    /// Headers added to every request (identity in trusted-auth tests).
    pub default_headers: HeaderMap,
    /// The filesystem store's directory.
    pub images_dir: std::path::PathBuf,
    _dir: tempfile::TempDir,
    /// The PostgreSQL schema or MySQL database made for this test, dropped with it.
    schema: Option<String>,
}

/// Names of the files in `dir`, sorted (none if it does not exist).
pub fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The explanation of a JSON error body (without webob's `<br />` tail).
    pub fn error_message(&self) -> String {
        let message = self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        message
            .split("<br />")
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// The detail of a JSON error body: what follows webob's `<br /><br />`.
    pub fn error_detail(&self) -> String {
        let message = self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        message
            .split("<br /><br />")
            .nth(1)
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &TestResponse {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }
}

fn shared_runtime_note() {
    // One line in the test log saying where PostgreSQL tests go.
    static NOTE: OnceLock<()> = OnceLock::new();
    NOTE.get_or_init(|| eprintln!("PostgreSQL tests use {}", postgres_url()));
}

impl TestApp {
    /// An app with extra config lines (INI text appended to the database settings).
    pub async fn start(backend: Backend, extra_config: &str) -> TestApp {
        let app = Self::start_idle(backend, extra_config).await;
        app.run_jobs();
        app
    }

    /// `start`, with no import runner (`run_jobs` starts it).
    pub async fn start_idle(backend: Backend, extra_config: &str) -> TestApp {
        Self::start_prepared(backend, extra_config, |_| Box::pin(async {})).await
    }

    /// Runs import jobs as a serving node does.
    pub fn run_jobs(&self) {
        tokio::spawn(self.services.imports.clone().run_jobs());
    }

    /// `start`, with `prepare` run on the new, empty database before `glint db sync` (to
    /// set up a database as an earlier Glint or Glance left it).
    pub async fn start_prepared(
        backend: Backend,
        extra_config: &str,
        prepare: for<'a> fn(&'a Database) -> futures_util::future::BoxFuture<'a, ()>,
    ) -> TestApp {
        glint::telemetry::init(glint::config::LoggingConfig::default());
        let dir = tempfile::tempdir().expect("temporary directory");
        let (connection, schema) = match backend {
            Backend::Sqlite => (
                format!("sqlite:///{}", dir.path().join("glint.db").display()),
                None,
            ),
            Backend::MySql => {
                let database = format!("glint_test_{}", uuid::Uuid::new_v4().simple());
                let admin = sqlx::MySqlPool::connect(&mysql_url()).await.expect(
                    "MariaDB at GLINT_TEST_MYSQL_URL (default 127.0.0.1:3306/test) must be running",
                );
                sqlx::query(&format!("CREATE DATABASE {database}"))
                    .execute(&admin)
                    .await
                    .expect("create database");
                admin.close().await;
                let url = mysql_url();
                let server = url
                    .rsplit_once('/')
                    .map_or(url.as_str(), |(server, _)| server);
                (
                    format!(
                        "mysql+pymysql://{}/{database}?charset=utf8",
                        server.trim_start_matches("mysql://")
                    ),
                    Some(database),
                )
            }
            Backend::Postgres => {
                shared_runtime_note();
                let schema = format!("glint_test_{}", uuid::Uuid::new_v4().simple());
                let admin = sqlx::PgPool::connect(&postgres_url())
                    .await
                    .expect("PostgreSQL at GLINT_TEST_POSTGRES_URL (default 127.0.0.1:5432/test) must be running");
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&admin)
                    .await
                    .expect("create schema");
                admin.close().await;
                let sep = if postgres_url().contains('?') {
                    '&'
                } else {
                    '?'
                };
                // The schema's name as application_name too, so that a test can find (and
                // kill) its own connections among those of tests running beside it.
                (
                    format!(
                        "{}{sep}options=-c%20search_path%3D{schema}&application_name={schema}",
                        postgres_url()
                    ),
                    Some(schema),
                )
            }
        };
        // The test's own store directory comes first; `extra_config` may add store options.
        let text = format!(
            "[database]\nconnection = {connection}\n[glance_store]\nfilesystem_store_datadir = {}\n{extra_config}\n",
            dir.path().join("images").display()
        );
        let ini = Ini::parse(&text).expect("test config parses");
        let config = Config::from_ini(&ini, dir.path()).expect("test config loads");
        let database = Database::connect(&config.database)
            .await
            .expect("database opens");
        prepare(&database).await;
        database.sync().await.expect("migrations apply");
        let services = glint::services(&config, &database).expect("services start");
        let router = glint::app(&config, &services);
        std::fs::create_dir_all(dir.path().join("images")).expect("store directory");
        let images_dir =
            std::fs::canonicalize(dir.path().join("images")).expect("store directory exists");
        TestApp {
            router,
            services,
            database,
            config,
            default_headers: HeaderMap::new(),
            images_dir,
            _dir: dir,
            schema,
            backend,
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> TestResponse {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "glint.test:9292");
        for (name, value) in self.default_headers.iter() {
            builder = builder.header(name, value);
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(builder.body(body).expect("request builds"))
            .await
            .expect("router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body reads")
            .to_bytes()
            .to_vec();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.request(
            Method::GET,
            path,
            &[("accept", "application/json")],
            Body::empty(),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> TestResponse {
        self.request(
            Method::DELETE,
            path,
            &[("accept", "application/json")],
            Body::empty(),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> TestResponse {
        self.request(
            Method::POST,
            path,
            &[
                ("content-type", "application/json"),
                ("accept", "application/json"),
            ],
            Body::from(body.to_string()),
        )
        .await
    }

    pub async fn put(&self, path: &str) -> TestResponse {
        self.request(
            Method::PUT,
            path,
            &[("accept", "application/json")],
            Body::empty(),
        )
        .await
    }

    pub async fn patch(&self, path: &str, media_type: &str, body: &Value) -> TestResponse {
        self.request(
            Method::PATCH,
            path,
            &[("content-type", media_type), ("accept", "application/json")],
            Body::from(body.to_string()),
        )
        .await
    }

    /// Creates an image and returns its JSON.
    pub async fn create_image(&self, body: Value) -> Value {
        let response = self.post("/v2/images", &body).await;
        response.assert_status(201);
        response.json()
    }

    /// Uploads `data` as the image's data, with Content-Length.
    pub async fn upload(&self, id: &str, data: Vec<u8>) -> TestResponse {
        let length = data.len().to_string();
        self.request(
            Method::PUT,
            &format!("/v2/images/{id}/file"),
            &[
                ("content-type", "application/octet-stream"),
                ("content-length", &length),
                ("accept", "application/json"),
            ],
            Body::from(data),
        )
        .await
    }

    /// Creates a raw/bare image and returns its id.
    pub async fn create_raw_image(&self) -> String {
        let image = self
            .create_image(serde_json::json!({"disk_format": "raw", "container_format": "bare"}))
            .await;
        image["id"].as_str().unwrap_or_default().to_owned()
    }

    /// Names of the files in the store directory (committed data and partial files).
    pub fn stored_files(&self) -> Vec<String> {
        files_in(&self.images_dir)
    }

    /// Sets an image's status directly in the database (the data path that moves images to
    /// `active` is exercised by its own tests).
    pub async fn force_status(&self, id: &str, status: &str) {
        self.execute(&format!(
            "UPDATE images SET status = '{status}' WHERE id = '{id}'"
        ))
        .await;
    }

    /// One text value from raw SQL (for state the API hides, such as deleted rows); write
    /// casts as `CAST(x AS TEXT)`, which runs as `AS CHAR` on MySQL.
    pub async fn scalar(&self, sql: &str) -> String {
        match &self.database {
            Database::Postgres(pool) => sqlx::query_scalar(sql)
                .fetch_one(pool)
                .await
                .expect("query runs"),
            // MySQL casts to CHAR, not TEXT.
            Database::MySql(pool) => sqlx::query_scalar(&sql.replace(" AS TEXT)", " AS CHAR)"))
                .fetch_one(pool)
                .await
                .expect("query runs"),
            Database::Sqlite { write, .. } => sqlx::query_scalar(sql)
                .fetch_one(write)
                .await
                .expect("query runs"),
        }
    }

    /// The same app with each store replaced by what `wrap` makes of it, for tests of how
    /// the data path answers what a store reports.
    pub fn wrap_stores(
        mut self,
        wrap: impl FnMut(
            std::sync::Arc<dyn glint_store::Store>,
        ) -> std::sync::Arc<dyn glint_store::Store>,
    ) -> TestApp {
        let stores = glint::stores::StoreRegistry::from_config(&self.config.stores)
            .expect("stores start")
            .wrap_stores(wrap);
        self.services =
            glint::services_over(&self.config, &self.database, stores).expect("services start");
        self.router = glint::app(&self.config, &self.services);
        self
    }

    /// The app's data directory: a multi-store configuration's file stores default to
    /// `<data dir>/<store id>`.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// The PostgreSQL schema (and application_name) or the MySQL database of this app; `None`
    /// on SQLite.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Runs raw SQL against the app's database, for test set-up the API cannot do yet.
    pub async fn execute(&self, sql: &str) {
        match &self.database {
            Database::Postgres(pool) => {
                sqlx::query(sql)
                    .execute(pool)
                    .await
                    .expect("set-up SQL runs");
            }
            Database::MySql(pool) => {
                sqlx::query(sql)
                    .execute(pool)
                    .await
                    .expect("set-up SQL runs");
            }
            Database::Sqlite { write, .. } => {
                sqlx::query(sql)
                    .execute(write)
                    .await
                    .expect("set-up SQL runs");
            }
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else {
            return;
        };
        if matches!(self.database, Database::MySql(_)) {
            drop_on_a_thread(async move {
                if let Ok(pool) = sqlx::MySqlPool::connect(&mysql_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {schema}"))
                        .execute(&pool)
                        .await;
                    pool.close().await;
                }
            });
            return;
        }
        let url = postgres_url();
        drop_on_a_thread(async move {
            if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&pool)
                    .await;
                pool.close().await;
            }
        });
    }
}

/// Runs `cleanup` to the end on a thread of its own: Drop cannot await, and the test's
/// runtime may be shutting down.
fn drop_on_a_thread(cleanup: impl std::future::Future<Output = ()> + Send + 'static) {
    let _ = std::thread::spawn(move || {
        if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            runtime.block_on(cleanup);
        }
    })
    .join();
}

/// Declares `async fn $name(app: TestApp)`-style tests run once on each database (SQLite,
/// PostgreSQL, MariaDB/MySQL): `all_databases!(fn name(app) { … });` or with extra config text.
#[macro_export]
macro_rules! all_databases {
    ($(#[$meta:meta])* fn $name:ident($app:ident) $body:block) => {
        $crate::all_databases!($(#[$meta])* fn $name($app, "") $body);
    };
    ($(#[$meta:meta])* fn $name:ident($app:ident, $config:expr) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = $crate::helpers::TestApp::start($crate::helpers::Backend::Sqlite, $config).await;
                $body
            }

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $app = $crate::helpers::TestApp::start($crate::helpers::Backend::Postgres, $config).await;
                $body
            }

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                let $app = $crate::helpers::TestApp::start($crate::helpers::Backend::MySql, $config).await;
                $body
            }
        }
    };
}

/// A TCP relay to the real server that can be cut and restored: the server "goes down" and
/// "comes back" on the same address.
pub(crate) struct Relay {
    pub(crate) address: String,
    task: Option<tokio::task::JoinHandle<()>>,
    upstream: String,
}

impl Relay {
    pub(crate) async fn start(upstream: &str) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let address = listener.local_addr().expect("address").to_string();
        let mut relay = Relay {
            address,
            task: None,
            upstream: upstream.to_owned(),
        };
        relay.serve(listener);
        relay
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let upstream = self.upstream.clone();
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }

    /// Drops the listener and every relayed connection.
    pub(crate) async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    pub(crate) async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(&self.address)
            .await
            .expect("rebinds");
        self.serve(listener);
    }
}

/// The head of one HTTP/1.1 request read from `socket` (up to the blank line), for the small
/// web servers the import tests run; `None` when the client closed first.
pub(crate) async fn read_request_head(socket: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await.unwrap_or(0) == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}
