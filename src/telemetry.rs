//! Logging setup: `tracing` to stderr, filtered by `RUST_LOG` (default `info`, or `debug`
//! with `[DEFAULT] debug`), as text or, with `[DEFAULT] use_json`, one JSON object per line
//! carrying the current span (a request's `request_id`, `method`, `route`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LoggingConfig;

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
    let _ = if config.json {
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
}
