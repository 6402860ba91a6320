//! The built `glint` binary serving on loopback, as an operator runs it: started on a fresh
//! SQLite database with extra configuration text, one raw HTTP/1.1 request at a time, stopped
//! with SIGTERM and its log returned.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Writes `glint.conf` in `dir` for a free port, with `extra` (`[DEFAULT]` options, then
/// perhaps whole sections) after its own `[DEFAULT]` options.
pub fn configure(dir: &Path, extra: &str) -> (PathBuf, u16) {
    let port = free_port();
    let config = dir.join("glint.conf");
    std::fs::write(
        &config,
        format!(
            "[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\n{extra}\n\
             [database]\nconnection = sqlite:///{}\n[glance_store]\nfilesystem_store_datadir = {}\n",
            dir.join("glint.db").display(),
            dir.join("images").display()
        ),
    )
    .expect("write config");
    (config, port)
}

/// Runs `glint --config CONFIG ARGS…` to its end.
pub fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glint"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run glint")
}

/// Starts the server on a fresh database, configured as `configure` does.
pub fn serve(dir: &Path, extra: &str) -> (Child, u16) {
    let (config, port) = configure(dir, extra);
    let sync = run(&config, &["db", "sync"]);
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

/// Sends one GET with `headers` (`Name: value` lines) and returns the whole answer, waiting
/// for the server to listen.
pub fn get(port: u16, path: &str, headers: &str) -> String {
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
        "GET {path} HTTP/1.1\r\nHost: glint\r\nConnection: close\r\n{headers}\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

/// Stops the server (SIGTERM: a graceful stop flushes its log) and returns what it wrote.
pub fn stop(mut child: Child) -> String {
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
