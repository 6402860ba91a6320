//! `[DEFAULT]` options of the HTTP server.

use super::ini::Ini;
use super::{parse_int, ConfigError};

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
        })
    }
}
