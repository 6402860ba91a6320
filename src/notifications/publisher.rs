//! The one task that talks to RabbitMQ, as oslo.messaging's rabbit driver does for a notifier:
//! a topic exchange named by `control_exchange` (durable and auto-delete per
//! `amqp_durable_queues` / `amqp_auto_delete`), and before the first message of each routing
//! key on a connection, the queue oslo declares so that nothing is lost before a consumer
//! comes (named like the routing key, `<topic>.<priority>`, bound to it). Messages are
//! `application/json`, UTF-8, persistent (delivery mode 2), priority 0, sent with publisher
//! confirms (kombu's `confirm_publish`): one is done when the broker has acknowledged it.
//!
//! Any failure closes the connection; the message in hand is kept and sent first on the next
//! one. Reconnections wait `rabbit_retry_interval`, growing by 2 s up to `rabbit_interval_max`
//! (oslo's stepping), and go round the URL's hosts.

use std::collections::HashSet;
use std::time::Duration;

use amqprs::callbacks::ChannelCallback;
use amqprs::channel::{
    BasicPublishArguments, Channel, ConfirmSelectArguments, ExchangeDeclareArguments,
    QueueBindArguments, QueueDeclareArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{Ack, BasicProperties, Cancel, CloseChannel, FieldTable, FieldValue, Nack, Return};
use tokio::sync::mpsc;

use super::envelope::Message;
use crate::config::notifications::{NotificationDriver, NotificationsConfig};

/// The longest a connection attempt, a declaration or a confirmation may take.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
/// oslo.messaging's `rabbit_retry_backoff`: what each failed attempt adds to the wait.
const RETRY_STEP: Duration = Duration::from_secs(2);
/// Sends of one message refused by the broker itself (a `nack`) before it is dropped.
const NACK_ATTEMPTS: u32 = 3;

/// Why a send did not happen; the connection is dropped either way.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("{0}")]
    Broker(#[from] amqprs::error::Error),
    #[error("no answer from the broker within {0:?}")]
    Timeout(Duration),
    #[error("the broker refused the message (nack)")]
    Nacked,
    #[error("the connection to the broker was lost")]
    Lost,
}

/// A message being sent: which of its (driver, topic) sends are done, so that a retry on a
/// new connection does not send the done ones twice.
struct InHand {
    message: Message,
    sends_done: usize,
    nacks: u32,
}

/// Runs until every sender is dropped and the queue is empty.
pub(super) async fn run(config: NotificationsConfig, mut queue: mpsc::Receiver<Message>) {
    let mut in_hand: Option<InHand> = None;
    let mut next_host = rand_index(config.transport.hosts.len());
    let mut wait = config.retry_interval;
    loop {
        // Nothing to do until the first event: a node that never notifies opens no connection.
        if in_hand.is_none() {
            match queue.recv().await {
                Some(message) => in_hand = Some(InHand::new(message)),
                None => return,
            }
        }
        let host = &config.transport.hosts[next_host % config.transport.hosts.len()];
        let mut link = match Link::open(&config, next_host).await {
            Ok(link) => {
                tracing::info!(broker.host = %host.host, broker.port = host.port, "connected to the notification broker");
                wait = config.retry_interval;
                link
            }
            Err(e) => {
                tracing::warn!(broker.host = %host.host, broker.port = host.port, error = %e,
                    retry_in = ?wait, "cannot connect to the notification broker; events wait in memory");
                next_host += 1;
                tokio::time::sleep(wait).await;
                wait = (wait + RETRY_STEP).min(config.retry_max);
                continue;
            }
        };
        loop {
            let mut current = match in_hand.take() {
                Some(current) => current,
                None => match queue.recv().await {
                    Some(message) => InHand::new(message),
                    None => {
                        link.close().await;
                        return;
                    }
                },
            };
            match link.send(&config, &mut current).await {
                Ok(()) => {
                    let metrics = crate::metrics::global();
                    metrics.notifications_sent.add(1);
                    metrics.notifications_queued.add(-1);
                }
                Err(SendError::Nacked) if current.nacks + 1 >= NACK_ATTEMPTS => {
                    tracing::error!(
                        event_type = current.message.event_type,
                        "the broker refused a notification {NACK_ATTEMPTS} times; dropped"
                    );
                    let metrics = crate::metrics::global();
                    metrics.notifications_dropped.add(1);
                    metrics.notifications_queued.add(-1);
                }
                Err(e) => {
                    if matches!(e, SendError::Nacked) {
                        current.nacks += 1;
                    }
                    tracing::warn!(event_type = current.message.event_type, error = %e,
                        "sending a notification failed; reconnecting");
                    in_hand = Some(current);
                    link.close().await;
                    next_host += 1;
                    tokio::time::sleep(wait).await;
                    wait = (wait + RETRY_STEP).min(config.retry_max);
                    break;
                }
            }
        }
    }
}

impl InHand {
    fn new(message: Message) -> InHand {
        InHand {
            message,
            sends_done: 0,
            nacks: 0,
        }
    }
}

/// oslo.messaging shuffles the hosts once; starting at a random one spreads nodes the same way.
fn rand_index(len: usize) -> usize {
    (uuid::Uuid::new_v4().as_u128() % len.max(1) as u128) as usize
}

/// An open connection and its confirming channel.
struct Link {
    connection: Connection,
    channel: Channel,
    confirms: mpsc::UnboundedReceiver<Confirm>,
    /// The delivery tag of the next message on this channel.
    next_tag: u64,
    /// Routing keys whose default queue has been declared on this connection.
    declared: HashSet<String>,
}

/// The broker's answer about published messages up to `tag` (or only `tag`).
#[derive(Debug)]
struct Confirm {
    tag: u64,
    multiple: bool,
    ack: bool,
}

async fn timed<T>(
    future: impl std::future::Future<Output = Result<T, amqprs::error::Error>>,
) -> Result<T, SendError> {
    match tokio::time::timeout(BROKER_TIMEOUT, future).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(SendError::Timeout(BROKER_TIMEOUT)),
    }
}

impl Link {
    async fn open(config: &NotificationsConfig, host_index: usize) -> Result<Link, SendError> {
        let hosts = &config.transport.hosts;
        let host = &hosts[host_index % hosts.len()];
        let args =
            OpenConnectionArguments::new(&host.host, host.port, &host.username, &host.password)
                .virtual_host(&config.transport.virtual_host)
                .heartbeat(config.heartbeat)
                .connection_name(&format!("glint:{}", std::process::id()))
                .finish();
        let connection = timed(Connection::open(&args)).await?;
        let channel = timed(connection.open_channel(None)).await?;
        let (tx, confirms) = mpsc::unbounded_channel();
        timed(channel.register_callback(Confirms(tx))).await?;
        timed(channel.confirm_select(ConfirmSelectArguments::default())).await?;
        let declarations = config.declarations;
        timed(
            channel.exchange_declare(
                ExchangeDeclareArguments::new(&config.exchange, "topic")
                    .durable(declarations.durable)
                    .auto_delete(declarations.auto_delete)
                    .finish(),
            ),
        )
        .await?;
        Ok(Link {
            connection,
            channel,
            confirms,
            next_tag: 1,
            declared: HashSet::new(),
        })
    }

    /// oslo's `_publish_and_creates_default_queue`, once per routing key and connection.
    async fn declare_queue(
        &mut self,
        config: &NotificationsConfig,
        routing_key: &str,
    ) -> Result<(), SendError> {
        if self.declared.contains(routing_key) {
            return Ok(());
        }
        let declarations = config.declarations;
        let mut arguments = FieldTable::new();
        if declarations.ha_queues {
            insert(&mut arguments, "x-ha-policy", "all".into());
        }
        if declarations.quorum_queues {
            insert(&mut arguments, "x-queue-type", "quorum".into());
        }
        timed(
            self.channel.queue_declare(
                QueueDeclareArguments::new(routing_key)
                    .durable(declarations.durable)
                    .auto_delete(declarations.auto_delete)
                    .arguments(arguments)
                    .finish(),
            ),
        )
        .await?;
        timed(self.channel.queue_bind(QueueBindArguments::new(
            routing_key,
            &config.exchange,
            routing_key,
        )))
        .await?;
        self.declared.insert(routing_key.to_owned());
        Ok(())
    }

    /// Every (driver, topic) send of the message not done yet, each confirmed.
    async fn send(
        &mut self,
        config: &NotificationsConfig,
        current: &mut InHand,
    ) -> Result<(), SendError> {
        let drivers: Vec<NotificationDriver> = config
            .drivers
            .iter()
            .copied()
            .filter(|d| *d != NotificationDriver::Log)
            .collect();
        let priority = current.message.priority.to_ascii_lowercase();
        let sends: Vec<(NotificationDriver, &String)> = drivers
            .iter()
            .flat_map(|d| config.topics.iter().map(move |t| (*d, t)))
            .collect();
        for (driver, topic) in sends.into_iter().skip(current.sends_done) {
            let routing_key = format!("{topic}.{priority}");
            self.declare_queue(config, &routing_key).await?;
            let properties = BasicProperties::default()
                .with_content_type("application/json")
                .with_content_encoding("utf-8")
                .with_headers(FieldTable::new())
                .with_delivery_mode(2)
                .with_priority(0)
                .finish();
            timed(self.channel.basic_publish(
                properties,
                current.message.body(driver),
                BasicPublishArguments::new(&config.exchange, &routing_key),
            ))
            .await?;
            let tag = self.next_tag;
            self.next_tag += 1;
            self.confirmed(tag).await?;
            current.sends_done += 1;
        }
        Ok(())
    }

    /// Waits for the broker's confirmation of `tag`.
    async fn confirmed(&mut self, tag: u64) -> Result<(), SendError> {
        let wait = async {
            loop {
                match self.confirms.recv().await {
                    Some(c) if c.tag == tag || (c.multiple && c.tag >= tag) => {
                        return if c.ack {
                            Ok(())
                        } else {
                            Err(SendError::Nacked)
                        };
                    }
                    Some(_) => continue,
                    None => return Err(SendError::Lost),
                }
            }
        };
        tokio::select! {
            result = wait => result,
            _ = self.connection.listen_network_io_failure() => Err(SendError::Lost),
            _ = tokio::time::sleep(BROKER_TIMEOUT) => Err(SendError::Timeout(BROKER_TIMEOUT)),
        }
    }

    async fn close(self) {
        if self.connection.is_open() {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.connection.close()).await;
        }
    }
}

fn insert(table: &mut FieldTable, name: &str, value: FieldValue) {
    if let Ok(name) = name.to_owned().try_into() {
        table.insert(name, value);
    }
}

/// Hands the broker's confirmations to the publishing task.
struct Confirms(mpsc::UnboundedSender<Confirm>);

#[async_trait::async_trait]
impl ChannelCallback for Confirms {
    async fn close(
        &mut self,
        _channel: &Channel,
        close: CloseChannel,
    ) -> Result<(), amqprs::error::Error> {
        tracing::warn!(reason = %close, "the broker closed the notification channel");
        Ok(())
    }

    async fn cancel(
        &mut self,
        _channel: &Channel,
        _cancel: Cancel,
    ) -> Result<(), amqprs::error::Error> {
        Ok(())
    }

    async fn flow(
        &mut self,
        _channel: &Channel,
        active: bool,
    ) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }

    async fn publish_ack(&mut self, _channel: &Channel, ack: Ack) {
        let _ = self.0.send(Confirm {
            tag: ack.delivery_tag(),
            multiple: ack.mutiple(),
            ack: true,
        });
    }

    async fn publish_nack(&mut self, _channel: &Channel, nack: Nack) {
        let _ = self.0.send(Confirm {
            tag: nack.delivery_tag(),
            multiple: nack.multiple(),
            ack: false,
        });
    }

    async fn publish_return(
        &mut self,
        _channel: &Channel,
        _ret: Return,
        _basic_properties: BasicProperties,
        _content: Vec<u8>,
    ) {
    }
}
