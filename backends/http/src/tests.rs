//! The http store against a real HTTP/1.1 server on loopback: whole and ranged reads (from a
//! server that honours `Range` and from one that ignores it), redirects within and beyond the
//! bound, credentials, sizes, a missing image, a failing server, one that stalls, and one that
//! is not there.

use std::time::Duration;

use glint_store::{ByteRange, Location, ReaderBody, Store, StoreError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{HttpConfig, HttpStore};

fn data() -> Vec<u8> {
    (0..300_000u32).map(|i| (i % 251) as u8).collect()
}

/// Serves `data()` at `/image` (with `Range`), `/plain` (ignoring `Range`), redirects,
/// `/secret` (Basic auth `glint:pw`), `/broken` (500) and `/stall`.
async fn server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let address = listener.local_addr().expect("address").to_string();
    let base = format!("http://{address}");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let base = base.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let mut words = head.split_whitespace();
                let method = words.next().unwrap_or("GET").to_owned();
                let path = words.next().unwrap_or("/").to_owned();
                let header = |name: &str| {
                    head.lines()
                        .find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
                        .map(|l| l[name.len() + 1..].trim().to_owned())
                };
                let body = data();
                let reply = |status: &str, extra: String, content: &[u8]| {
                    let mut out = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
                        content.len()
                    )
                    .into_bytes();
                    if method != "HEAD" {
                        out.extend_from_slice(content);
                    }
                    out
                };
                let out = match path.as_str() {
                    "/image" => match header("range").and_then(|r| {
                        let (a, b) = r.strip_prefix("bytes=")?.split_once('-')?;
                        Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?))
                    }) {
                        Some((a, b)) => reply(
                            "206 Partial Content",
                            format!("Content-Range: bytes {a}-{b}/{}\r\n", body.len()),
                            &body[a..=b.min(body.len() - 1)],
                        ),
                        None => reply("200 OK", String::new(), &body),
                    },
                    "/plain" => reply("200 OK", String::new(), &body),
                    "/hop1" => reply("302 Found", format!("Location: {base}/hop2\r\n"), b""),
                    "/hop2" => reply("301 Moved", format!("Location: {base}/image\r\n"), b""),
                    "/loop" => reply("302 Found", format!("Location: {base}/loop\r\n"), b""),
                    "/relative" => reply("302 Found", "Location: /image\r\n".to_owned(), b""),
                    "/secret" => match header("authorization").as_deref() {
                        // glint:pw
                        Some("Basic Z2xpbnQ6cHc=") => reply("200 OK", String::new(), &body),
                        _ => reply("401 Unauthorized", String::new(), b""),
                    },
                    "/broken" => reply("500 Internal Server Error", String::new(), b""),
                    "/stall" => {
                        let _ = socket
                            .write_all(
                                format!(
                                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                                    body.len()
                                )
                                .as_bytes(),
                            )
                            .await;
                        let _ = socket.write_all(&body[..1000]).await;
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    }
                    _ => reply("404 Not Found", String::new(), b""),
                };
                let _ = socket.write_all(&out).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{address}")
}

fn store() -> HttpStore {
    HttpStore::new(HttpConfig {
        name: "web".into(),
        insecure: false,
        ca_file: None,
        timeout: Duration::from_secs(2),
    })
    .expect("store")
}

async fn read(
    store: &HttpStore,
    url: &str,
    range: Option<ByteRange>,
) -> Result<(u64, Vec<u8>), StoreError> {
    let reader = store
        .reader(&Location::parse(url).expect("url"), range)
        .await?;
    let ReaderBody::Stream(mut body) = reader.body else {
        panic!("a stream");
    };
    let mut out = Vec::new();
    while let Some(piece) = futures_util::StreamExt::next(&mut body).await {
        out.extend_from_slice(&piece.map_err(|e| StoreError::Backend {
            store: "web".into(),
            source: e.into(),
        })?);
    }
    Ok((reader.stored_size, out))
}

#[tokio::test]
async fn reads_whole_and_ranged_whether_the_server_honours_ranges_or_not() {
    let base = server().await;
    let store = store();
    let whole = data();
    assert_eq!(
        read(&store, &format!("{base}/image"), None)
            .await
            .expect("reads"),
        (whole.len() as u64, whole.clone())
    );
    let range = ByteRange {
        start: 1000,
        end: 250_001,
    };
    for path in ["/image", "/plain"] {
        let (size, got) = read(&store, &format!("{base}{path}"), Some(range))
            .await
            .expect("reads");
        assert_eq!(size, whole.len() as u64, "{path}");
        assert!(got == whole[1000..250_001], "{path}");
    }
    assert_eq!(
        store
            .size(&Location::parse(&format!("{base}/image")).expect("url"))
            .await
            .expect("size"),
        whole.len() as u64
    );
}

#[tokio::test]
async fn redirects_are_followed_within_the_bound() {
    let base = server().await;
    let store = store();
    assert_eq!(
        read(&store, &format!("{base}/hop1"), None)
            .await
            .expect("reads")
            .1
            .len(),
        data().len()
    );
    let looping = read(&store, &format!("{base}/loop"), None)
        .await
        .expect_err("refused");
    assert!(
        looping.to_string().contains("redirected more than 4 times"),
        "{looping}"
    );
    let relative = read(&store, &format!("{base}/relative"), None)
        .await
        .expect_err("refused");
    assert!(
        relative.to_string().contains("not an absolute http(s) URL"),
        "{relative}"
    );
}

#[tokio::test]
async fn credentials_in_the_url_are_sent_as_basic_auth() {
    let base = server().await;
    let store = store();
    let with = base.replacen("http://", "http://glint:pw@", 1);
    assert_eq!(
        read(&store, &format!("{with}/secret"), None)
            .await
            .expect("reads")
            .1
            .len(),
        data().len()
    );
    assert!(matches!(
        read(&store, &format!("{base}/secret"), None).await,
        Err(StoreError::Backend { .. })
    ));
}

#[tokio::test]
async fn failures_are_told_apart_and_nothing_hangs() {
    let base = server().await;
    let store = store();
    assert!(matches!(
        read(&store, &format!("{base}/missing"), None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        read(&store, &format!("{base}/broken"), None).await,
        Err(StoreError::Unavailable { .. })
    ));
    let stalled = read(&store, &format!("{base}/stall"), None)
        .await
        .expect_err("times out");
    assert!(
        stalled.to_string().contains("sent nothing for 2 seconds"),
        "{stalled}"
    );
    // Nothing listens on port 9 of loopback.
    assert!(matches!(
        read(&store, "http://127.0.0.1:9/image", None).await,
        Err(StoreError::Unavailable { .. })
    ));
    let url = Location::parse(&format!("{base}/image")).expect("url");
    assert!(matches!(
        store
            .writer(
                "0e5b1d58-9d37-4a8b-8ef0-4f2b0d0f1a2b",
                &glint_store::WriteOptions {
                    size: None,
                    max_size: 1,
                    memory: 1
                }
            )
            .await,
        Err(StoreError::ReadOnly { .. })
    ));
    // Removing a location leaves the server's data alone, and is no error.
    store.delete(&url).await.expect("nothing to delete");
}
