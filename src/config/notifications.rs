//! `[oslo_messaging_notifications]` and the options around it: where Glance's notifications go,
//! read as oslo.messaging and Glance read them, so that a glance-api.conf that notifies
//! Ceilometer keeps doing so unchanged.
//!
//! - `driver` (multi-valued, none by default = no notifications): `messagingv2` (the 2.0
//!   envelope), `messaging` (1.0, unwrapped), `log`, `noop`.
//! - `topics` (`notifications`): each event goes to `<topic>.<priority>` of every topic.
//! - `transport_url`, else `[DEFAULT] transport_url`, else oslo.messaging's default
//!   `rabbit://` (guest on localhost:5672, vhost `/`).
//! - `[DEFAULT] control_exchange` (`glance`, the default Glance gives oslo.messaging): the
//!   exchange.
//! - `[DEFAULT] default_publisher_id` (`image.localhost`), `disabled_notifications`.
//! - `[oslo_messaging_rabbit]`: `amqp_durable_queues`, `amqp_auto_delete`,
//!   `rabbit_ha_queues`, `rabbit_quorum_queue` (how the exchange and queues are declared),
//!   `heartbeat_timeout_threshold`, `rabbit_retry_interval`, `rabbit_interval_max`.
//! - Glint's own `buffer_size` (10,000): events waiting for the broker; past it they are
//!   dropped and counted.
//!
//! Anything Glint cannot honour (a driver it lacks, TLS, a non-RabbitMQ transport) stops the
//! start with the option named, rather than silently dropping every notification.

use std::fmt;
use std::time::Duration;

use super::ini::Ini;
use super::{parse_bool, parse_int, parse_list, ConfigError};

const SECTION: &str = "oslo_messaging_notifications";
const RABBIT: &str = "oslo_messaging_rabbit";

/// One `driver` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationDriver {
    /// `messagingv2`: the `oslo.version` 2.0 envelope.
    MessagingV2,
    /// `messaging`: the 1.0 format, the message itself.
    Messaging,
    /// `log`: each notification as a log line.
    Log,
}

/// One broker of a transport URL.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerHost {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for BrokerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.username, self.host, self.port)
    }
}

/// `rabbit://user:pass@host:port[,user:pass@host:port…]/vhost`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportUrl {
    /// Tried in turn (oslo.messaging shuffles them once; Glint starts at a random one).
    pub hosts: Vec<BrokerHost>,
    /// `/` when the URL names none, as kombu reads it.
    pub virtual_host: String,
}

/// How the exchange and oslo.messaging's default queues are declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Declarations {
    /// `amqp_durable_queues` or `rabbit_quorum_queue`: durable exchange and queues.
    pub durable: bool,
    /// `amqp_auto_delete`.
    pub auto_delete: bool,
    /// `rabbit_ha_queues`: `x-ha-policy: all` on the queues.
    pub ha_queues: bool,
    /// `rabbit_quorum_queue`: `x-queue-type: quorum` on the queues.
    pub quorum_queues: bool,
}

/// Where and how notifications are sent; `None` in `Config` when no driver sends any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationsConfig {
    pub drivers: Vec<NotificationDriver>,
    pub topics: Vec<String>,
    pub transport: TransportUrl,
    pub exchange: String,
    pub publisher_id: String,
    /// Event types (`image.create`) and groups (`image`, the part before the first dot).
    pub disabled: Vec<String>,
    pub declarations: Declarations,
    /// `heartbeat_timeout_threshold` (60 s; 0 = none).
    pub heartbeat: u16,
    /// `rabbit_retry_interval` (1 s): the first wait before reconnecting.
    pub retry_interval: Duration,
    /// `rabbit_interval_max` (30 s): the longest wait between reconnections.
    pub retry_max: Duration,
    /// Glint's `buffer_size` (10,000): events held while the broker is away.
    pub buffer_size: usize,
}

impl NotificationsConfig {
    /// The configured notifications, or `None` when no driver sends any (`noop` or none).
    pub fn from_ini(ini: &Ini) -> Result<Option<NotificationsConfig>, ConfigError> {
        let mut drivers = Vec::new();
        for name in ini.get_all(SECTION, "driver").unwrap_or_default() {
            let driver = match name.trim() {
                "messagingv2" => NotificationDriver::MessagingV2,
                "messaging" => NotificationDriver::Messaging,
                "log" => NotificationDriver::Log,
                "noop" | "" => continue,
                other => {
                    return Err(ConfigError::invalid(
                        SECTION,
                        "driver",
                        format!(
                            "unknown notification driver {other:?} (messagingv2, messaging, \
                             log, noop)"
                        ),
                    ))
                }
            };
            if !drivers.contains(&driver) {
                drivers.push(driver);
            }
        }
        // With notifications off, the broker options are not Glint's concern: a
        // glance-api.conf may carry them for other purposes, and they are left unread.
        if drivers.is_empty() {
            return Ok(None);
        }
        let topics =
            parse_list(ini, SECTION, "topics").unwrap_or_else(|| vec!["notifications".to_owned()]);
        if topics.is_empty() && drivers.iter().any(|d| *d != NotificationDriver::Log) {
            return Err(ConfigError::invalid(
                SECTION,
                "topics",
                "at least one topic is needed",
            ));
        }
        let (url_section, url) = match ini.get(SECTION, "transport_url").map(str::trim) {
            Some(url) if !url.is_empty() => (SECTION, url),
            _ => match ini.get("DEFAULT", "transport_url").map(str::trim) {
                Some(url) if !url.is_empty() => ("DEFAULT", url),
                _ => (SECTION, "rabbit://"),
            },
        };
        let broker = drivers.iter().any(|d| *d != NotificationDriver::Log);
        // Only the log driver: the URL may name a transport Glint does not speak.
        let url = if broker { url } else { "rabbit://" };
        let transport = parse_transport_url(url)
            .map_err(|message| ConfigError::invalid(url_section, "transport_url", message))?;
        let exchange = match ini.get("DEFAULT", "control_exchange").map(str::trim) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => "glance".to_owned(),
        };
        if exchange.len() > 255 || exchange.starts_with("amq.") {
            return Err(ConfigError::invalid(
                "DEFAULT",
                "control_exchange",
                "at most 255 bytes, not starting with \"amq.\" (reserved by the broker)",
            ));
        }
        if let Some(topic) = topics.iter().find(|t| t.len() > 240) {
            return Err(ConfigError::invalid(
                SECTION,
                "topics",
                format!("{topic:?} is longer than a routing key may be"),
            ));
        }
        let publisher_id = ini
            .get("DEFAULT", "default_publisher_id")
            .map(str::trim)
            .unwrap_or("image.localhost")
            .to_owned();
        let disabled = parse_list(ini, "DEFAULT", "disabled_notifications").unwrap_or_default();
        if broker && parse_bool(ini, RABBIT, "ssl", false)? {
            return Err(ConfigError::invalid(
                RABBIT,
                "ssl",
                "TLS to RabbitMQ is not supported by Glint; use a local TLS terminator",
            ));
        }
        let quorum_queues = parse_bool(ini, RABBIT, "rabbit_quorum_queue", false)?;
        let ha_queues = parse_bool(ini, RABBIT, "rabbit_ha_queues", false)?;
        if quorum_queues && ha_queues {
            return Err(ConfigError::invalid(
                RABBIT,
                "rabbit_quorum_queue",
                "rabbit_quorum_queue and rabbit_ha_queues cannot both be enabled",
            ));
        }
        let declarations = Declarations {
            durable: parse_bool(ini, RABBIT, "amqp_durable_queues", false)? || quorum_queues,
            auto_delete: parse_bool(ini, RABBIT, "amqp_auto_delete", false)?,
            ha_queues,
            quorum_queues,
        };
        let seconds = |option, default, min, max| {
            parse_int(ini, RABBIT, option, default, min, max).map(|s| s as u64)
        };
        let retry_interval = Duration::from_secs(seconds("rabbit_retry_interval", 1, 1, 3600)?);
        let retry_max = Duration::from_secs(seconds("rabbit_interval_max", 30, 1, 3600)?);
        let heartbeat = seconds("heartbeat_timeout_threshold", 60, 0, 65535)? as u16;
        let buffer_size = parse_int(ini, SECTION, "buffer_size", 10_000, 1, 10_000_000)? as usize;
        Ok(Some(NotificationsConfig {
            drivers,
            topics,
            transport,
            exchange,
            publisher_id,
            disabled,
            declarations,
            heartbeat,
            retry_interval: retry_interval.min(retry_max),
            retry_max,
            buffer_size,
        }))
    }

    /// Whether a broker is needed (a `messaging` driver is configured).
    pub fn uses_broker(&self) -> bool {
        self.drivers.iter().any(|d| *d != NotificationDriver::Log)
    }
}

/// oslo.messaging's transport URL, for the RabbitMQ driver (`rabbit`, or its alias `kombu`).
pub fn parse_transport_url(url: &str) -> Result<TransportUrl, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "{url:?} is not a transport URL (rabbit://user:pass@host:port/vhost)"
        ));
    };
    if scheme != "rabbit" && scheme != "kombu" {
        return Err(format!(
            "transport {scheme:?} is not supported for notifications (only rabbit)"
        ));
    }
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if key == "ssl" && !matches!(value.as_ref(), "0" | "false" | "False") {
                return Err("TLS to RabbitMQ (ssl=…) is not supported by Glint".to_owned());
            }
        }
    }
    let (hosts, vhost) = match rest.split_once('/') {
        Some((hosts, vhost)) => (hosts, decode(vhost)?),
        None => (rest, String::new()),
    };
    let virtual_host = if vhost.is_empty() {
        "/".to_owned()
    } else {
        vhost
    };
    let mut parsed = Vec::new();
    for entry in hosts.split(',') {
        // An entry may omit its credentials: oslo.messaging then uses the previous entry's.
        let (credentials, address) = match entry.rsplit_once('@') {
            Some((credentials, address)) => (Some(credentials), address),
            None => (None, entry),
        };
        let (username, password) = match credentials {
            Some(c) => match c.split_once(':') {
                Some((user, pass)) => (decode(user)?, decode(pass)?),
                None => (decode(c)?, String::new()),
            },
            None => match parsed.last() {
                Some(BrokerHost {
                    username, password, ..
                }) => (username.clone(), password.clone()),
                None => ("guest".to_owned(), "guest".to_owned()),
            },
        };
        let (host, port) = split_host_port(address)?;
        if host.is_empty() && hosts.split(',').count() > 1 {
            return Err(format!("{url:?} names an empty host"));
        }
        parsed.push(BrokerHost {
            host: if host.is_empty() {
                "localhost".to_owned()
            } else {
                host
            },
            port,
            username,
            password,
        });
    }
    Ok(TransportUrl {
        hosts: parsed,
        virtual_host,
    })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`; the port defaults to AMQP's 5672.
fn split_host_port(address: &str) -> Result<(String, u16), String> {
    let bad_port = |p: &str| format!("{p:?} is not a port");
    if let Some(rest) = address.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(format!("{address:?} is not a host"));
        };
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad_port(p))?,
            None if after.is_empty() => 5672,
            None => return Err(format!("{address:?} is not a host")),
        };
        return Ok((host.to_owned(), port));
    }
    match address.rsplit_once(':') {
        Some((host, "")) => Ok((host.to_owned(), 5672)),
        Some((host, port)) => Ok((host.to_owned(), port.parse().map_err(|_| bad_port(port))?)),
        None => Ok((address.to_owned(), 5672)),
    }
}

/// Percent-decoding of a URL part (credentials and vhost may carry `%2F`, `%40` …).
fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("{text:?} has a bad percent-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<NotificationsConfig>, ConfigError> {
        NotificationsConfig::from_ini(&Ini::parse(text).expect("ini"))
    }

    #[test]
    fn no_driver_or_noop_means_no_notifications() {
        assert_eq!(parse("").expect("config"), None);
        // Broker options Glint would refuse do not matter then.
        assert_eq!(
            parse(
                "[DEFAULT]\ntransport_url = kafka://k:9092\n[oslo_messaging_rabbit]\nssl = true\n"
            )
            .expect("config"),
            None
        );
        assert_eq!(
            parse("[oslo_messaging_notifications]\ndriver = noop\n").expect("config"),
            None
        );
    }

    #[test]
    fn glance_defaults_apply_to_a_messaging_driver() {
        let config = parse("[oslo_messaging_notifications]\ndriver = messagingv2\n")
            .expect("config")
            .expect("on");
        assert_eq!(config.drivers, [NotificationDriver::MessagingV2]);
        assert_eq!(config.topics, ["notifications"]);
        assert_eq!(config.exchange, "glance");
        assert_eq!(config.publisher_id, "image.localhost");
        assert!(config.disabled.is_empty());
        assert_eq!(config.transport.virtual_host, "/");
        assert_eq!(
            config.transport.hosts,
            [BrokerHost {
                host: "localhost".into(),
                port: 5672,
                username: "guest".into(),
                password: "guest".into()
            }]
        );
        assert_eq!(config.declarations, Declarations::default());
        assert_eq!(config.buffer_size, 10_000);
    }

    #[test]
    fn several_drivers_topics_and_the_default_transport_url() {
        let config = parse(
            "[DEFAULT]\ntransport_url = rabbit://u:p%40ss@r1:5673,r2/openstack\n\
             control_exchange = images\ndefault_publisher_id = image.node1\n\
             disabled_notifications = image.send, task\n\
             [oslo_messaging_notifications]\ndriver = messaging\ndriver = log\n\
             topics = notifications, billing\n\
             [oslo_messaging_rabbit]\namqp_durable_queues = true\n",
        )
        .expect("config")
        .expect("on");
        assert_eq!(
            config.drivers,
            [NotificationDriver::Messaging, NotificationDriver::Log]
        );
        assert_eq!(config.topics, ["notifications", "billing"]);
        assert_eq!(config.exchange, "images");
        assert_eq!(config.publisher_id, "image.node1");
        assert_eq!(config.disabled, ["image.send", "task"]);
        assert!(config.declarations.durable);
        assert_eq!(config.transport.virtual_host, "openstack");
        let hosts: Vec<String> = config
            .transport
            .hosts
            .iter()
            .map(|h| format!("{}:{}@{}:{}", h.username, h.password, h.host, h.port))
            .collect();
        assert_eq!(hosts, ["u:p@ss@r1:5673", "u:p@ss@r2:5672"]);
    }

    #[test]
    fn the_notifications_transport_url_wins_over_the_default_one() {
        let config = parse(
            "[DEFAULT]\ntransport_url = rabbit://a:a@rpc:5672/\n\
             [oslo_messaging_notifications]\ndriver = messagingv2\n\
             transport_url = rabbit://b:b@notify:5672/%2F\n",
        )
        .expect("config")
        .expect("on");
        assert_eq!(config.transport.hosts[0].host, "notify");
        assert_eq!(config.transport.virtual_host, "/");
    }

    #[test]
    fn values_glint_cannot_honour_stop_the_start() {
        for (text, message) in [
            (
                "[oslo_messaging_notifications]\ndriver = routing\n",
                "[oslo_messaging_notifications] driver: unknown notification driver \"routing\"",
            ),
            (
                "[oslo_messaging_notifications]\ndriver = messagingv2\ntransport_url = kafka://k:9092\n",
                "[oslo_messaging_notifications] transport_url: transport \"kafka\" is not supported",
            ),
            (
                "[DEFAULT]\ntransport_url = rabbit://h:port/\n[oslo_messaging_notifications]\ndriver = messagingv2\n",
                "[DEFAULT] transport_url: \"port\" is not a port",
            ),
            (
                "[oslo_messaging_notifications]\ndriver = messagingv2\n[oslo_messaging_rabbit]\nssl = true\n",
                "[oslo_messaging_rabbit] ssl: TLS to RabbitMQ is not supported",
            ),
            (
                "[oslo_messaging_notifications]\ndriver = messagingv2\ntransport_url = rabbit://h/?ssl=1\n",
                "[oslo_messaging_notifications] transport_url: TLS",
            ),
            (
                "[DEFAULT]\ncontrol_exchange = amq.topic\n[oslo_messaging_notifications]\ndriver = messagingv2\n",
                "[DEFAULT] control_exchange: at most 255 bytes",
            ),
            (
                "[oslo_messaging_notifications]\ndriver = messagingv2\nbuffer_size = 0\n",
                "[oslo_messaging_notifications] buffer_size: 0 is outside",
            ),
            (
                "[oslo_messaging_notifications]\ndriver = messagingv2\n[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\nrabbit_ha_queues = true\n",
                "[oslo_messaging_rabbit] rabbit_quorum_queue: rabbit_quorum_queue and rabbit_ha_queues",
            ),
        ] {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.starts_with(message), "{err}");
        }
    }

    #[test]
    fn ipv6_hosts_and_bare_hosts_parse() {
        let url = parse_transport_url("rabbit://[::1]:5673,[fe80::2]/").expect("url");
        assert_eq!(url.hosts[0].host, "::1");
        assert_eq!(url.hosts[0].port, 5673);
        assert_eq!(url.hosts[1].host, "fe80::2");
        assert_eq!(url.hosts[1].port, 5672);
        let url = parse_transport_url("rabbit://broker").expect("url");
        assert_eq!(url.hosts[0].host, "broker");
        assert_eq!(url.virtual_host, "/");
    }
}
