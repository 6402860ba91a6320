//! The server's log lines as an operator's collector reads them: the built binary serving on
//! loopback, stderr captured. Client input in an error never forges a line, in either format.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A request whose error message carries a newline and a forged JSON-looking line.
const FORGING_PATH: &str = "/v2/images/x%0A%7B%22forged%22%3Atrue%7D";

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn serve(dir: &Path, use_json: bool) -> (Child, u16) {
    let port = free_port();
    let config = dir.join("glint.conf");
    std::fs::write(
        &config,
        format!(
            "[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\nuse_json = {use_json}\n\
             [database]\nconnection = sqlite:///{}\n[glance_store]\nfilesystem_store_datadir = {}\n",
            dir.join("glint.db").display(),
            dir.join("images").display()
        ),
    )
    .expect("write config");
    let sync = Command::new(env!("CARGO_BIN_EXE_glint"))
        .args([
            "--config".as_ref(),
            config.as_os_str(),
            "db".as_ref(),
            "sync".as_ref(),
        ])
        .output()
        .expect("db sync");
    assert!(sync.status.success(), "{sync:?}");
    let child = Command::new(env!("CARGO_BIN_EXE_glint"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start glint");
    (child, port)
}

/// Sends one GET and returns the status line, waiting for the server to listen.
fn get(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("glint did not listen on {port}: {e}"),
        }
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: glint\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer.lines().next().unwrap_or_default().to_owned()
}

/// Stops the server (SIGTERM: a graceful stop flushes its log) and returns what it wrote.
fn stop(mut child: Child) -> String {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let mut log = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        stderr.read_to_string(&mut log).expect("read log");
    }
    let _ = child.wait();
    log
}

#[test]
fn json_lines_hold_the_error_as_plain_text_and_nothing_forges_a_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, port) = serve(dir.path(), true);
    assert!(get(port, FORGING_PATH).contains(" 404 "));
    let log = stop(child);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let request = lines
        .iter()
        .find(|line| line["fields"]["status"] == 404)
        .unwrap_or_else(|| panic!("no request line in {log}"));
    // The message itself, once: JSON's escaping keeps the newline inside the string.
    assert_eq!(
        request["fields"]["error"],
        "No image found with ID x\n{\"forged\":true}"
    );
    assert!(request["span"]["request_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("req-")));
    assert!(!lines.iter().any(|line| line.get("forged").is_some()));
}

#[test]
fn text_lines_quote_and_escape_the_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, port) = serve(dir.path(), false);
    assert!(get(port, FORGING_PATH).contains(" 404 "));
    let log = stop(child);
    let request = log
        .lines()
        .find(|line| line.contains("status=404"))
        .unwrap_or_else(|| panic!("no request line in {log}"));
    assert!(
        request.contains(r#"error="No image found with ID x\n{\"forged\":true}""#),
        "{request}"
    );
    assert!(
        !log.lines().any(|line| line.starts_with("{\"forged\"")),
        "{log}"
    );
}
