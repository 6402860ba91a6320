//! The test side of the broker: a consumer of one test's notifications, read with amqprs,
//! and the checks of oslo.messaging's envelope and Glance's image payload.

use std::time::Duration;

use amqprs::channel::{
    BasicGetArguments, Channel, ExchangeDeclareArguments, ExchangeDeleteArguments,
    QueueBindArguments, QueueDeclareArguments, QueueDeleteArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::BasicProperties;
use serde_json::Value;

pub(super) const BROKER_PORT: u16 = 5672;

/// A consumer of one test's notifications.
pub(super) struct Listener {
    pub(super) connection: Connection,
    pub(super) channel: Channel,
    pub(super) queue: String,
    pub(super) exchange: String,
    pub(super) topic: String,
}

/// One message as the broker delivered it.
#[derive(Debug)]
pub(super) struct Received {
    pub(super) routing_key: String,
    pub(super) exchange: String,
    pub(super) properties: BasicProperties,
    /// The message (inside the envelope for messagingv2).
    pub(super) message: Value,
    /// The raw body.
    pub(super) body: Value,
}

impl Received {
    pub(super) fn event_type(&self) -> &str {
        self.message["event_type"].as_str().unwrap_or_default()
    }

    pub(super) fn payload(&self) -> &Value {
        &self.message["payload"]
    }
}

pub(super) async fn open(port: u16) -> (Connection, Channel) {
    let args = OpenConnectionArguments::new("127.0.0.1", port, "guest", "guest");
    let connection = Connection::open(&args)
        .await
        .expect("RabbitMQ at 127.0.0.1 (guest/guest) must be running");
    let channel = connection.open_channel(None).await.expect("channel");
    (connection, channel)
}

impl Listener {
    /// A fresh exchange and topic name, and a queue bound to every priority of the topic.
    pub(super) async fn new(port: u16) -> Listener {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let exchange = format!("glint-test-{unique}");
        let topic = format!("glint-test-{}", &unique[..12]);
        Listener::bind(port, exchange, topic).await
    }

    pub(super) async fn bind(port: u16, exchange: String, topic: String) -> Listener {
        let (connection, channel) = open(port).await;
        // Declared as Glint (and oslo.messaging by default) declares it: topic, transient.
        channel
            .exchange_declare(ExchangeDeclareArguments::new(&exchange, "topic"))
            .await
            .expect("exchange");
        let (queue, _, _) = channel
            .queue_declare(QueueDeclareArguments::exclusive_server_named())
            .await
            .expect("queue")
            .expect("queue name");
        channel
            .queue_bind(QueueBindArguments::new(
                &queue,
                &exchange,
                &format!("{topic}.*"),
            ))
            .await
            .expect("bind");
        Listener {
            connection,
            channel,
            queue,
            exchange,
            topic,
        }
    }

    /// The `[DEFAULT]` and `[oslo_messaging_notifications]` lines pointing Glint here.
    pub(super) fn config(&self, driver: &str, extra: &str) -> String {
        format!(
            "[DEFAULT]\ncontrol_exchange = {}\n{extra}\n[oslo_messaging_notifications]\n\
             driver = {driver}\ntopics = {}\ntransport_url = rabbit://guest:guest@127.0.0.1:{BROKER_PORT}/\n",
            self.exchange, self.topic
        )
    }

    pub(super) async fn next_within(&self, wait: Duration) -> Option<Received> {
        next_from(&self.channel, &self.queue, wait).await
    }

    /// The next message, which must be of `event_type`.
    pub(super) async fn expect(&self, event_type: &str) -> Received {
        let received = self
            .next_within(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no {event_type} notification arrived"));
        assert_eq!(received.event_type(), event_type, "{received:#?}");
        received
    }

    /// Removes what the test and Glint declared: the exchange and oslo's default queues.
    pub(super) async fn clean_up(self) {
        for priority in ["info", "warn", "error"] {
            let _ = self
                .channel
                .queue_delete(QueueDeleteArguments::new(&format!(
                    "{}.{priority}",
                    self.topic
                )))
                .await;
        }
        let _ = self
            .channel
            .exchange_delete(ExchangeDeleteArguments::new(&self.exchange))
            .await;
        let _ = self.connection.close().await;
    }
}

/// The next message of `queue`, polled until `wait` has passed.
pub(super) async fn next_from(channel: &Channel, queue: &str, wait: Duration) -> Option<Received> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let got = channel
            .basic_get(BasicGetArguments::new(queue).no_ack(true).finish())
            .await
            .expect("basic.get");
        if let Some((ok, properties, content)) = got {
            let body: Value = serde_json::from_slice(&content).expect("a JSON body");
            let message = match body.get("oslo.message").and_then(Value::as_str) {
                Some(inner) => serde_json::from_str(inner).expect("oslo.message is JSON"),
                None => body.clone(),
            };
            return Some(Received {
                routing_key: ok.routing_key().clone(),
                exchange: ok.exchange().clone(),
                properties,
                message,
                body,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(super) fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

pub(super) fn is_isotime(value: &Value) -> bool {
    let text = value.as_str().unwrap_or_default();
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%SZ").is_ok()
}

/// What every message of a messagingv2 notifier has, as oslo.messaging's rabbit driver sends it.
pub(super) fn assert_oslo_envelope(received: &Received, listener: &Listener, priority: &str) {
    assert_eq!(received.exchange, listener.exchange);
    assert_eq!(
        received.routing_key,
        format!("{}.{}", listener.topic, priority.to_ascii_lowercase())
    );
    let properties = &received.properties;
    assert_eq!(
        properties.content_type().map(String::as_str),
        Some("application/json")
    );
    assert_eq!(
        properties.content_encoding().map(String::as_str),
        Some("utf-8")
    );
    assert_eq!(properties.delivery_mode(), Some(2));
    assert_eq!(properties.priority(), Some(0));
    assert_eq!(keys(&received.body), ["oslo.message", "oslo.version"]);
    assert_eq!(received.body["oslo.version"], "2.0");
    let message = &received.message;
    assert_eq!(
        keys(message),
        [
            "_unique_id",
            "event_type",
            "message_id",
            "payload",
            "priority",
            "publisher_id",
            "timestamp"
        ],
        "no _context_ keys: Glance sends an empty context"
    );
    assert_eq!(message["priority"], priority);
    assert_eq!(message["publisher_id"], "image.localhost");
    let unique = message["_unique_id"].as_str().unwrap_or_default();
    assert!(
        unique.len() == 32 && unique.bytes().all(|b| b.is_ascii_hexdigit()),
        "{unique}"
    );
    assert!(uuid::Uuid::parse_str(message["message_id"].as_str().unwrap_or_default()).is_ok());
    let timestamp = message["timestamp"].as_str().unwrap_or_default();
    assert!(
        chrono::NaiveDateTime::parse_from_str(timestamp, "%Y-%m-%d %H:%M:%S%.f").is_ok(),
        "{timestamp}"
    );
}

/// Glance's image payload: its fields, never a location.
pub(super) fn assert_image_payload(received: &Received, id: &str, status: &str) {
    let payload = received.payload();
    let mut expected = vec![
        "checksum",
        "container_format",
        "created_at",
        "deleted",
        "deleted_at",
        "disk_format",
        "id",
        "is_public",
        "min_disk",
        "min_ram",
        "name",
        "owner",
        "properties",
        "protected",
        "size",
        "status",
        "tags",
        "updated_at",
        "virtual_size",
        "visibility",
    ];
    if matches!(received.event_type(), "image.prepare" | "image.upload") {
        expected.extend(["os_glance_failed_import", "os_glance_importing_to_stores"]);
        expected.sort_unstable();
    }
    assert_eq!(keys(payload), expected, "{payload}");
    assert_eq!(payload["id"], id);
    assert_eq!(payload["status"], status, "{payload}");
    assert!(
        is_isotime(&payload["created_at"]) && is_isotime(&payload["updated_at"]),
        "{payload}"
    );
    let text = payload.to_string();
    assert!(
        !text.contains("file://") && !text.contains("locations"),
        "{text}"
    );
}
