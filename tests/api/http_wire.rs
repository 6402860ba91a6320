//! Behaviour only visible on a real connection: `Expect: 100-continue` is answered only once
//! an upload is known to be acceptable, and a refused upload is answered without the body.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{Backend, TestApp};

async fn serve(app: &TestApp) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let address = listener.local_addr().expect("address");
    let router = app.router.clone();
    let limits = glint::server::ConnectionLimits::default();
    tokio::spawn(async move {
        glint::server::serve(listener, router, &limits, std::future::pending()).await
    });
    address
}

/// Sends upload headers with `Expect: 100-continue` and returns what the server says first.
async fn first_answer(
    address: std::net::SocketAddr,
    id: &str,
    length: usize,
) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(address).await.expect("connects");
    let head = format!(
        "PUT /v2/images/{id}/file HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("writes");
    let mut buffer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
        .await
        .expect("the server answers without waiting for the body")
        .expect("reads");
    (stream, String::from_utf8_lossy(&buffer[..n]).into_owned())
}

async fn expect_continue(backend: Backend) {
    let app = TestApp::start(backend, "").await;
    let address = serve(&app).await;

    let id = app.create_raw_image().await;
    let (mut stream, answer) = first_answer(address, &id, 5).await;
    assert!(answer.starts_with("HTTP/1.1 100 Continue"), "{answer}");
    stream.write_all(b"hello").await.expect("writes the body");
    let mut rest = vec![0u8; 4096];
    let n = stream.read(&mut rest).await.expect("reads");
    let rest = String::from_utf8_lossy(&rest[..n]).into_owned();
    assert!(
        rest.contains("204 No Content") || answer.contains("204 No Content"),
        "{answer}{rest}"
    );

    // The image is active now: a second upload is refused before any body is sent.
    let (_stream, answer) = first_answer(address, &id, 5).await;
    assert!(answer.starts_with("HTTP/1.1 409"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
}

/// A client that announces more bytes than it sends, then hangs up.
async fn short_body(backend: Backend) {
    let app = TestApp::start(backend, "").await;
    let address = serve(&app).await;
    let id = app.create_raw_image().await;
    let mut stream = TcpStream::connect(address).await.expect("connects");
    let head = format!(
        "PUT /v2/images/{id}/file HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: 3000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("writes");
    stream
        .write_all(&vec![5u8; 1_500_000])
        .await
        .expect("writes half the body");
    stream.shutdown().await.expect("closes its side");
    drop(stream);
    for _ in 0..200 {
        let image = app.get(&format!("/v2/images/{id}")).await.json();
        if image["status"] == "queued" && app.stored_files().is_empty() {
            assert!(image["size"].is_null());
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "a short body left the image {} with files {:?}",
        app.get(&format!("/v2/images/{id}")).await.json()["status"],
        app.stored_files()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_body_sqlite() {
    short_body(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_body_postgres() {
    short_body(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_body_mysql() {
    short_body(Backend::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_sqlite() {
    expect_continue(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_postgres() {
    expect_continue(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_mysql() {
    expect_continue(Backend::MySql).await;
}
