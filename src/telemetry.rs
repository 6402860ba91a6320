//! Logging setup: `tracing` to stderr, filtered by `RUST_LOG` (default `info`, or `debug`
//! with `[DEFAULT] debug`), as text or, with `[DEFAULT] use_json`, one JSON object per line
//! carrying the current span (a request's `request_id`, `method`, `route`).

use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

use crate::config::LoggingConfig;

/// Whether log lines are JSON objects (set once by `init`).
static JSON_LINES: AtomicBool = AtomicBool::new(false);

/// Text that may hold client input, for a log field (`field::debug(Untrusted(text))`): quoted
/// and escaped in text lines, so that no newline or control character in it can start a forged
/// line; as it is in JSON lines, whose own string escaping already does that.
pub struct Untrusted<'a>(pub &'a str);

impl fmt::Debug for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if JSON_LINES.load(Ordering::Relaxed) {
            f.write_str(self.0)
        } else {
            fmt::Debug::fmt(self.0, f)
        }
    }
}

pub fn init(config: LoggingConfig) {
    let default = if config.debug {
        "debug,sqlx=warn,hyper=info,h2=info"
    } else {
        "info,sqlx=warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests) keeps the first subscriber.
    let installed = if config.json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
    if installed.is_ok() {
        JSON_LINES.store(config.json, Ordering::Relaxed);
    }
}
