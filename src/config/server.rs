//! `[DEFAULT]` options of the HTTP server.

use std::time::Duration;

use super::ini::Ini;
use super::{parse_bool, parse_int, ConfigError};

/// Longest timeout any of the connection options accepts (one day).
const MAX_TIMEOUT_SECS: i64 = 86_400;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// `bind_host` (default 127.0.0.1; Glance's default is 0.0.0.0, but a service that is
    /// open to the network only when asked is the safer default).
    pub bind_host: String,
    /// `bind_port` (default 9292).
    pub bind_port: u16,
    /// `workers`: threads serving requests (default: the number of CPUs). Glance forks
    /// processes; one process with this many threads serves the same load.
    pub workers: Option<usize>,
    /// Timeouts and limits of client connections.
    pub connections: ConnectionLimits,
}

/// How long and how many client connections may stay open (see `crate::server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `header_timeout` (Glint, 30 s): a request's headers must be complete this long after
    /// the connection opened, or after the first byte of a later request on it.
    pub header_timeout: Duration,
    /// `client_socket_timeout` (60 s; Glance: 900 s; 0 = none): an idle keep-alive connection
    /// is closed after this long; also the longest a request body or a response write may
    /// stall with no progress.
    pub client_socket_timeout: Option<Duration>,
    /// `http_keepalive` (true): false closes each connection after its response.
    pub http_keepalive: bool,
    /// `max_connections` (Glint, 4096): connections open at once; more wait in the listen
    /// backlog.
    pub max_connections: usize,
    /// `request_body_min_rate` (Glint, 1024 B/s; 0 = none): slower request bodies are cut.
    pub request_body_min_rate: u64,
    /// `request_body_rate_grace` (Glint, 30 s): time a body has before its rate is checked.
    pub request_body_rate_grace: Duration,
    /// `graceful_shutdown_timeout` (60 s; 0 = wait for every connection): on SIGTERM,
    /// connections still open after this long are cut.
    pub graceful_shutdown_timeout: Option<Duration>,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(30),
            client_socket_timeout: Some(Duration::from_secs(60)),
            http_keepalive: true,
            max_connections: 4096,
            request_body_min_rate: 1024,
            request_body_rate_grace: Duration::from_secs(30),
            graceful_shutdown_timeout: Some(Duration::from_secs(60)),
        }
    }
}

impl ServerConfig {
    pub fn from_ini(ini: &Ini) -> Result<ServerConfig, ConfigError> {
        let workers = parse_int(ini, "DEFAULT", "workers", 0, 0, 1024)?;
        Ok(ServerConfig {
            bind_host: ini
                .get("DEFAULT", "bind_host")
                .filter(|h| !h.is_empty())
                .unwrap_or("127.0.0.1")
                .to_owned(),
            bind_port: parse_int(ini, "DEFAULT", "bind_port", 9292, 0, 65535)? as u16,
            workers: (workers > 0).then_some(workers as usize),
            connections: ConnectionLimits::from_ini(ini)?,
        })
    }
}

impl ConnectionLimits {
    pub fn from_ini(ini: &Ini) -> Result<ConnectionLimits, ConfigError> {
        let defaults = ConnectionLimits::default();
        let secs = |option: &'static str, default: Duration, min: i64| {
            parse_int(
                ini,
                "DEFAULT",
                option,
                default.as_secs() as i64,
                min,
                MAX_TIMEOUT_SECS,
            )
            .map(|s| Duration::from_secs(s as u64))
        };
        // Zero means "no limit" for these two, as in Glance.
        let optional = |option: &'static str, default: Option<Duration>| {
            secs(option, default.unwrap_or_default(), 0).map(|d| (!d.is_zero()).then_some(d))
        };
        Ok(ConnectionLimits {
            header_timeout: secs("header_timeout", defaults.header_timeout, 1)?,
            client_socket_timeout: optional(
                "client_socket_timeout",
                defaults.client_socket_timeout,
            )?,
            http_keepalive: parse_bool(ini, "DEFAULT", "http_keepalive", defaults.http_keepalive)?,
            max_connections: parse_int(
                ini,
                "DEFAULT",
                "max_connections",
                defaults.max_connections as i64,
                1,
                1_000_000,
            )? as usize,
            request_body_min_rate: parse_int(
                ini,
                "DEFAULT",
                "request_body_min_rate",
                defaults.request_body_min_rate as i64,
                0,
                1 << 40,
            )? as u64,
            request_body_rate_grace: secs(
                "request_body_rate_grace",
                defaults.request_body_rate_grace,
                1,
            )?,
            graceful_shutdown_timeout: optional(
                "graceful_shutdown_timeout",
                defaults.graceful_shutdown_timeout,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(text: &str) -> Result<ConnectionLimits, ConfigError> {
        ConnectionLimits::from_ini(&Ini::parse(text).expect("parses"))
    }

    #[test]
    fn connection_limits_default() {
        let parsed = limits("").expect("defaults load");
        assert_eq!(parsed, ConnectionLimits::default());
        assert_eq!(parsed.header_timeout, Duration::from_secs(30));
        assert_eq!(parsed.client_socket_timeout, Some(Duration::from_secs(60)));
        assert!(parsed.http_keepalive);
        assert_eq!(parsed.max_connections, 4096);
        assert_eq!(parsed.request_body_min_rate, 1024);
        assert_eq!(parsed.request_body_rate_grace, Duration::from_secs(30));
        assert_eq!(
            parsed.graceful_shutdown_timeout,
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn connection_limits_parse() {
        let parsed = limits(
            "[DEFAULT]\nheader_timeout = 5\nclient_socket_timeout = 900\nhttp_keepalive = false\n\
             max_connections = 50\nrequest_body_min_rate = 0\nrequest_body_rate_grace = 2\n\
             graceful_shutdown_timeout = 10\n",
        )
        .expect("loads");
        assert_eq!(
            parsed,
            ConnectionLimits {
                header_timeout: Duration::from_secs(5),
                client_socket_timeout: Some(Duration::from_secs(900)),
                http_keepalive: false,
                max_connections: 50,
                request_body_min_rate: 0,
                request_body_rate_grace: Duration::from_secs(2),
                graceful_shutdown_timeout: Some(Duration::from_secs(10)),
            }
        );
    }

    #[test]
    fn zero_disables_socket_and_shutdown_timeouts() {
        let parsed =
            limits("[DEFAULT]\nclient_socket_timeout = 0\ngraceful_shutdown_timeout = 0\n")
                .expect("loads");
        assert_eq!(parsed.client_socket_timeout, None);
        assert_eq!(parsed.graceful_shutdown_timeout, None);
    }

    #[test]
    fn connection_limits_reject_bad_values() {
        for text in [
            "[DEFAULT]\nheader_timeout = 0\n",
            "[DEFAULT]\nmax_connections = 0\n",
            "[DEFAULT]\nrequest_body_rate_grace = 0\n",
            "[DEFAULT]\nclient_socket_timeout = -1\n",
            "[DEFAULT]\nhttp_keepalive = sometimes\n",
            "[DEFAULT]\ngraceful_shutdown_timeout = soon\n",
        ] {
            assert!(limits(text).is_err(), "{text}");
        }
        let err = limits("[DEFAULT]\nmax_connections = 0\n")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "[DEFAULT] max_connections: 0 is outside 1..=1000000");
    }

    #[test]
    fn server_config_carries_connection_limits() {
        let ini = Ini::parse("[DEFAULT]\nheader_timeout = 7\n").expect("parses");
        let config = ServerConfig::from_ini(&ini).expect("loads");
        assert_eq!(config.connections.header_timeout, Duration::from_secs(7));
        assert_eq!(config.bind_port, 9292);
    }
}
