//! A broker stopped mid-run: a private RabbitMQ node (`scripts/lab-rabbitmq`), stopped and
//! started again while Glint serves.

use std::time::Duration;

use amqprs::channel::QueueDeclareArguments;

use super::broker::{next_from, open, Listener, BROKER_PORT};
use crate::helpers::{Backend, TestApp};

/// `scripts/lab-rabbitmq` with `command`, on its own port.
async fn lab_rabbitmq(command: &str, port: u16) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lab-rabbitmq");
    let status = tokio::process::Command::new(script)
        .arg(command)
        .env("GLINT_LAB_RABBITMQ_PORT", port.to_string())
        .status()
        .await
        .expect("scripts/lab-rabbitmq runs");
    assert!(status.success(), "scripts/lab-rabbitmq {command} failed");
}

/// A sample of `/metrics` without labels.
async fn metric(app: &TestApp, name: &str) -> i64 {
    let text = app.get("/metrics").await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_broker_delays_events_up_to_the_bound_and_never_an_api_call() {
    let port: u16 = std::env::var("GLINT_LAB_RABBITMQ_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(5673);
    lab_rabbitmq("start", port).await;
    let listener = Listener::new(port).await;
    let config = listener
        .config("messagingv2", "")
        .replace(&format!("127.0.0.1:{BROKER_PORT}"), &format!("127.0.0.1:{port}"))
        + "buffer_size = 4\n[oslo_messaging_rabbit]\nrabbit_retry_interval = 1\nrabbit_interval_max = 1\n";
    let app = TestApp::start(Backend::Sqlite, &config).await;
    app.create_raw_image().await;
    listener.expect("image.create").await;
    assert_eq!(metric(&app, "glint_notifications_sent_total").await, 1);
    let (topic, exchange) = (listener.topic.clone(), listener.exchange.clone());
    drop(listener);

    lab_rabbitmq("stop", port).await;
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "the broker is down"
    );
    // Every call answers while the broker is away; their events wait, up to the bound.
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(app.create_raw_image().await);
    }
    // The queue holds 4, the publisher 1 more in hand (taken before or after the rest came).
    let dropped = metric(&app, "glint_notifications_dropped_total").await;
    let queued = metric(&app, "glint_notifications_queued").await;
    assert!((3..=4).contains(&dropped), "dropped {dropped}");
    assert_eq!(queued + dropped, 8);
    assert!(app.get("/healthcheck").await.status.is_success());

    lab_rabbitmq("start", port).await;
    // The node starts empty: Glint declares the exchange and oslo's default queue again,
    // where the waiting events go, in their order (the newest were the ones dropped).
    let (connection, channel) = open(port).await;
    let default_queue = format!("{topic}.info");
    // Declared as Glint declares it, in case this comes first.
    channel
        .queue_declare(QueueDeclareArguments::new(&default_queue))
        .await
        .expect("default queue");
    let mut delivered = Vec::new();
    while delivered.len() < queued as usize {
        let Some(event) = next_from(&channel, &default_queue, Duration::from_secs(30)).await else {
            break;
        };
        assert_eq!(event.exchange, exchange);
        assert_eq!(event.event_type(), "image.create");
        delivered.push(
            event.payload()["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_eq!(delivered, ids[..queued as usize]);
    assert!(
        next_from(&channel, &default_queue, Duration::from_millis(300))
            .await
            .is_none()
    );
    assert_eq!(metric(&app, "glint_notifications_queued").await, 0);
    assert_eq!(
        metric(&app, "glint_notifications_sent_total").await,
        1 + queued
    );
    assert_eq!(
        metric(&app, "glint_notifications_dropped_total").await,
        dropped
    );
    let _ = connection.close().await;
    lab_rabbitmq("stop", port).await;
}
