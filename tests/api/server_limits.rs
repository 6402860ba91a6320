//! The serving loop's connection limits, on real sockets: header and idle timeouts, the
//! minimum body rate, the connection cap, and graceful shutdown. Server-level behaviour, so
//! SQLite only, except the upload that must put its image back to `queued`.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use glint::server::ConnectionLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::helpers::{Backend, TestApp};

/// Upper bound for anything expected to happen "soon": generous, the machine may be busy.
const SOON: Duration = Duration::from_secs(10);

struct Server {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl Server {
    async fn start(app: &TestApp, limits: ConnectionLimits) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let address = listener.local_addr().expect("address");
        let router = app.router.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            glint::server::serve(listener, router, &limits, async {
                let _ = stopped.await;
            })
            .await
        });
        Server {
            address,
            stop: Some(stop),
            task,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.address).await.expect("connects")
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Short timeouts, so that tests are quick; the body rate check is off unless a test sets it.
fn limits() -> ConnectionLimits {
    ConnectionLimits {
        header_timeout: Duration::from_secs(1),
        client_socket_timeout: Some(Duration::from_secs(30)),
        http_keepalive: true,
        max_connections: 4096,
        request_body_min_rate: 0,
        request_body_rate_grace: Duration::from_secs(1),
        graceful_shutdown_timeout: Some(Duration::from_secs(1)),
    }
}

struct RawResponse {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Reads one response (skipping `100 Continue`); None if the connection ends first.
async fn read_response(stream: &mut TcpStream) -> Option<RawResponse> {
    let mut buffer = Vec::new();
    loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            if head.starts_with("HTTP/1.1 100") {
                buffer.drain(..end + 4);
                continue;
            }
            let status = head.get(9..12)?.parse().ok()?;
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            let mut body = buffer[end + 4..].to_vec();
            while body.len() < length {
                let mut chunk = vec![0u8; 65536];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => body.extend_from_slice(&chunk[..n]),
                }
            }
            return Some(RawResponse { status, head, body });
        }
        let mut chunk = vec![0u8; 65536];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads until the server closes the connection; returns what it sent, or None if it is
/// still open after `within`.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    tokio::time::timeout(within, async {
        let mut chunk = vec![0u8; 65536];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .ok()?;
    Some(received)
}

async fn get_versions(stream: &mut TcpStream) -> Option<RawResponse> {
    stream
        .write_all(b"GET /versions HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .ok()?;
    read_response(stream).await
}

/// Opens a connection that sends part of a request head and then nothing.
async fn stalled(server: &Server) -> TcpStream {
    let mut stream = server.connect().await;
    stream
        .write_all(b"GET /versions HTTP/1.1\r\nHost: test\r\n")
        .await
        .expect("writes a partial head");
    stream
}

/// Sends `data` in `chunk`-byte pieces every `pause`, until the server stops taking them.
fn dribble(
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    data: Vec<u8>,
    chunk: usize,
    pause: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        for piece in data.chunks(chunk) {
            if writer.write_all(piece).await.is_err() {
                return;
            }
            tokio::time::sleep(pause).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_new_connection_is_closed_after_header_timeout() {
    let app = TestApp::start(Backend::Sqlite, "").await;
    let server = Server::start(&app, limits()).await;
    let mut stream = server.connect().await;
    let started = Instant::now();
    let received = until_closed(&mut stream, SOON)
        .await
        .expect("closed after header_timeout");
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
    assert!(started.elapsed() >= Duration::from_millis(800));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keepalive_connection_is_closed_after_client_socket_timeout() {
    let app = TestApp::start(Backend::Sqlite, "").await;
    let server = Server::start(
        &app,
        ConnectionLimits {
            client_socket_timeout: Some(Duration::from_secs(3)),
            ..limits()
        },
    )
    .await;
    let mut stream = server.connect().await;
    let response = get_versions(&mut stream).await.expect("answered");
    assert_eq!(response.status, 200, "{}", response.head);
    // Idle for longer than header_timeout: the connection is still usable.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let response = get_versions(&mut stream).await.expect("still open");
    assert_eq!(response.status, 200, "{}", response.head);
    let idle_since = Instant::now();
    until_closed(&mut stream, SOON)
        .await
        .expect("closed after client_socket_timeout");
    assert!(idle_since.elapsed() >= Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_sent_a_byte_at_a_time_are_cut_after_header_timeout() {
    let app = TestApp::start(Backend::Sqlite, "").await;
    let server = Server::start(&app, limits()).await;
    let (mut reader, writer) = server.connect().await.into_split();
    let mut head = b"GET /versions HTTP/1.1\r\nHost: test\r\nX-Slow: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 200));
    let started = Instant::now();
    let writing = dribble(writer, head, 1, Duration::from_millis(300));
    let mut received = Vec::new();
    let closed = tokio::time::timeout(SOON, reader.read_to_end(&mut received)).await;
    assert!(closed.is_ok(), "the dribbling client is still connected");
    let received = String::from_utf8_lossy(&received);
    assert!(!received.contains(" 200 "), "{received}");
    assert!(started.elapsed() >= Duration::from_millis(800));
    writing.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_json_body_is_cut_after_the_grace_period() {
    let app = TestApp::start(Backend::Sqlite, "").await;
    let server = Server::start(
        &app,
        ConnectionLimits {
            request_body_min_rate: 1024,
            ..limits()
        },
    )
    .await;
    let mut stream = server.connect().await;
    stream
        .write_all(
            b"POST /v2/images HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"name\": ",
        )
        .await
        .expect("writes");
    let started = Instant::now();
    // Either an error answer that closes the connection, or just the close.
    let received = until_closed(&mut stream, SOON)
        .await
        .expect("the stalled body is cut");
    let received = String::from_utf8_lossy(&received);
    assert!(!received.contains(" 201 "), "{received}");
    if !received.is_empty() {
        assert!(
            received.to_ascii_lowercase().contains("connection: close"),
            "{received}"
        );
    }
    assert!(started.elapsed() >= Duration::from_millis(800));
    let images = app.get("/v2/images").await.json();
    assert_eq!(
        images["images"].as_array().map(Vec::len),
        Some(0),
        "{images}"
    );
}

async fn slow_upload_is_cut_and_the_image_is_queued_again(backend: Backend) {
    let app = TestApp::start(backend, "").await;
    let server = Server::start(
        &app,
        ConnectionLimits {
            request_body_min_rate: 1024,
            request_body_rate_grace: Duration::from_secs(2),
            ..limits()
        },
    )
    .await;
    let id = app.create_raw_image().await;
    let (mut reader, mut writer) = server.connect().await.into_split();
    let head = format!(
        "PUT /v2/images/{id}/file HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: 1000000\r\n\r\n"
    );
    writer.write_all(head.as_bytes()).await.expect("writes");
    writer.write_all(&[7u8; 512]).await.expect("writes");
    // The upload has begun before it is cut.
    let mut status = String::new();
    for _ in 0..80 {
        status = app.get(&format!("/v2/images/{id}")).await.json()["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if status == "saving" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status, "saving");
    // About 100 bytes a second: a tenth of the minimum.
    let writing = dribble(writer, vec![7u8; 999_488], 20, Duration::from_millis(200));
    let mut received = Vec::new();
    let closed = tokio::time::timeout(SOON, reader.read_to_end(&mut received)).await;
    assert!(closed.is_ok(), "the slow upload is still connected");
    let received = String::from_utf8_lossy(&received);
    assert!(!received.contains(" 204 "), "{received}");
    writing.abort();
    for _ in 0..200 {
        let image = app.get(&format!("/v2/images/{id}")).await.json();
        if image["status"] == "queued" && app.stored_files().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "a cut upload left the image {} with files {:?}",
        app.get(&format!("/v2/images/{id}")).await.json()["status"],
        app.stored_files()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_is_cut_and_the_image_is_queued_again_sqlite() {
    slow_upload_is_cut_and_the_image_is_queued_again(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_is_cut_and_the_image_is_queued_again_postgres() {
    slow_upload_is_cut_and_the_image_is_queued_again(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_is_cut_and_the_image_is_queued_again_mysql() {
    slow_upload_is_cut_and_the_image_is_queued_again(Backend::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_a_download_is_cut() {
    let app = TestApp::start(Backend::Sqlite, "").await;
    let id = app.create_raw_image().await;
    let size = 64 << 20;
    app.upload(&id, vec![3u8; size]).await.assert_status(204);
    let server = Server::start(
        &app,
        ConnectionLimits {
            client_socket_timeout: Some(Duration::from_secs(1)),
            ..limits()
        },
    )
    .await;
    let mut stream = server.connect().await;
    let request = format!("GET /v2/images/{id}/file HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("writes");
    // Read nothing for longer than client_socket_timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = until_closed(&mut stream, SOON).await.expect("closed");
    assert!(received.len() < size, "the whole image was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_of_1000_connections_does_not_keep_new_clients_out() {
    let app = TestApp::start(Backend::Sqlite, "").await;
    let server = Server::start(
        &app,
        ConnectionLimits {
            header_timeout: Duration::from_secs(60),
            ..limits()
        },
    )
    .await;
    let mut attackers = Vec::with_capacity(1000);
    for _ in 0..1000 {
        attackers.push(stalled(&server).await);
    }
    let mut stream = server.connect().await;
    let response = tokio::time::timeout(SOON, get_versions(&mut stream))
        .await
        .expect("a new client is answered while 1000 connections stall")
        .expect("answered");
    assert_eq!(response.status, 200, "{}", response.head);
    // The stalled connections were accepted and are still open.
    let mut probe = [0u8; 1];
    let still_open =
        tokio::time::timeout(Duration::from_millis(100), attackers[0].read(&mut probe)).await;
    assert!(still_open.is_err(), "a stalled connection was closed early");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_max_connections_new_clients_wait_until_header_timeout_frees_slots() {
    let app = TestApp::start(Backend::Sqlite, "").await;
    let server = Server::start(
        &app,
        ConnectionLimits {
            header_timeout: Duration::from_secs(2),
            max_connections: 50,
            ..limits()
        },
    )
    .await;
    let mut attackers = Vec::with_capacity(60);
    for _ in 0..60 {
        attackers.push(stalled(&server).await);
    }
    // The kernel completes the connection; the server does not accept it yet.
    let mut stream = server.connect().await;
    stream
        .write_all(b"GET /versions HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("writes");
    let mut probe = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), stream.peek(&mut probe)).await;
    assert!(early.is_err(), "served beyond max_connections");
    let response = tokio::time::timeout(SOON, read_response(&mut stream))
        .await
        .expect("served once header_timeout cut the stalled connections")
        .expect("answered");
    assert_eq!(response.status, 200, "{}", response.head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_for_a_half_sent_request() {
    let app = TestApp::start(Backend::Sqlite, "").await;
    let mut server = Server::start(
        &app,
        ConnectionLimits {
            header_timeout: Duration::from_secs(60),
            graceful_shutdown_timeout: Some(Duration::from_secs(1)),
            ..limits()
        },
    )
    .await;
    let mut half_sent = stalled(&server).await;
    // Make sure the server has accepted it.
    let mut other = server.connect().await;
    assert_eq!(
        get_versions(&mut other).await.expect("answered").status,
        200
    );
    drop(other);
    let signalled = Instant::now();
    server.shut_down();
    let result = tokio::time::timeout(SOON, &mut server.task)
        .await
        .expect("serve returns within graceful_shutdown_timeout")
        .expect("serve does not panic");
    result.expect("serve ends cleanly");
    assert!(signalled.elapsed() >= Duration::from_millis(800));
    until_closed(&mut half_sent, SOON)
        .await
        .expect("the half-sent request's connection is closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_request_in_flight_finish() {
    let app = TestApp::start(Backend::Sqlite, "").await;
    let mut server = Server::start(
        &app,
        ConnectionLimits {
            graceful_shutdown_timeout: Some(Duration::from_secs(20)),
            ..limits()
        },
    )
    .await;
    let id = app.create_raw_image().await;
    let mut stream = server.connect().await;
    let head = format!(
        "PUT /v2/images/{id}/file HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: 200000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("writes");
    stream
        .write_all(&[1u8; 100_000])
        .await
        .expect("writes half");
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.shut_down();
    // New connections are refused once the listener is closed.
    let deadline = Instant::now() + SOON;
    while TcpStream::connect(server.address).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after shutdown");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stream
        .write_all(&[1u8; 100_000])
        .await
        .expect("writes the rest");
    let response = tokio::time::timeout(SOON, read_response(&mut stream))
        .await
        .expect("answered")
        .expect("a response");
    assert_eq!(response.status, 204, "{}", response.head);
    tokio::time::timeout(SOON, &mut server.task)
        .await
        .expect("serve returns once the request is done")
        .expect("serve does not panic")
        .expect("serve ends cleanly");
    assert_eq!(
        app.get(&format!("/v2/images/{id}")).await.json()["status"],
        "active"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keepalive_each_connection_closes_after_its_response() {
    let app = TestApp::start(Backend::Sqlite, "").await;
    let server = Server::start(
        &app,
        ConnectionLimits {
            http_keepalive: false,
            ..limits()
        },
    )
    .await;
    let mut stream = server.connect().await;
    let response = get_versions(&mut stream).await.expect("answered");
    assert_eq!(response.status, 200, "{}", response.head);
    assert!(
        response
            .head
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{}",
        response.head
    );
    assert!(!response.body.is_empty());
    let rest = until_closed(&mut stream, Duration::from_millis(900))
        .await
        .expect("closed before header_timeout could");
    assert!(rest.is_empty());
}

/// `Expect: 100-continue` through the real loop: the body rate wrapper must not answer early.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_works_through_the_serving_loop() {
    let app = TestApp::start(Backend::Sqlite, "").await;
    let server = Server::start(
        &app,
        ConnectionLimits {
            request_body_min_rate: 1024,
            ..limits()
        },
    )
    .await;
    let id = app.create_raw_image().await;
    let mut stream = server.connect().await;
    let head = format!(
        "PUT /v2/images/{id}/file HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("writes");
    let mut buffer = vec![0u8; 4096];
    let n = tokio::time::timeout(SOON, stream.read(&mut buffer))
        .await
        .expect("the server answers without waiting for the body")
        .expect("reads");
    let answer = String::from_utf8_lossy(&buffer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 100 Continue"), "{answer}");
    stream.write_all(b"hello").await.expect("writes the body");
    let response = read_response(&mut stream).await.expect("answered");
    assert_eq!(response.status, 204, "{}", response.head);
    assert!(
        response.head.contains("x-openstack-request-id"),
        "{}",
        response.head
    );
}
