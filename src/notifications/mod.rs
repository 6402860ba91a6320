//! The notifications adapter: the domain's events (`domain::events`) sent as Glance sends
//! them through oslo.messaging — the same envelope, exchange, routing keys and queues — so
//! that Ceilometer, billing and audit consumers receive Glint's events unchanged.
//!
//! ```text
//! publish() ── disabled? ─ drop
//!     │ (never waits)
//!     ├─ log driver: one log line
//!     └─ bounded queue (buffer_size) ── full: dropped, counted, logged (at most every 10 s)
//!            └─ one background task: connect (hosts in turn, backoff) → declare → publish,
//!               each message confirmed by the broker before the next; a failed send is
//!               kept and sent again on the next connection
//! ```
//!
//! A dead broker therefore costs an API call nothing: events wait in memory up to the bound
//! and are delivered when it comes back. At shutdown `drain` gives them a few seconds.

mod envelope;
mod publisher;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::config::notifications::{NotificationDriver, NotificationsConfig};
use crate::domain::events::{Event, EventSink, NoEvents};

pub use envelope::{python_json, python_timestamp, Message};

/// How often a dropped event may be logged.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The sink for a configuration: `NoEvents` when notifications are off. Starts the publishing
/// task, so it must be called within the Tokio runtime.
pub fn sink(config: Option<&NotificationsConfig>) -> Result<Arc<dyn EventSink>, String> {
    let Some(config) = config else {
        return Ok(Arc::new(NoEvents));
    };
    Ok(Arc::new(Notifier::start(config)?))
}

/// At shutdown, once requests are done: waits up to `within` for the events still queued to
/// reach the broker, and says how many are lost if they do not.
pub async fn drain(within: Duration) {
    let queued = || crate::metrics::global().notifications_queued.get();
    let deadline = tokio::time::Instant::now() + within;
    while queued() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if queued() > 0 {
        tracing::warn!(
            lost = queued(),
            "notifications not delivered before shutdown (the broker is unreachable or slow)"
        );
    }
}

/// The oslo.messaging notifier of a Glint process.
#[derive(Debug)]
pub struct Notifier {
    publisher_id: String,
    disabled: Vec<String>,
    log: bool,
    /// `None` with only the log driver.
    queue: Option<mpsc::Sender<Message>>,
    dropped_since_log: AtomicU64,
    last_drop_log: std::sync::Mutex<Option<Instant>>,
}

impl Notifier {
    /// Starts the publishing task (when a messaging driver is configured).
    pub fn start(config: &NotificationsConfig) -> Result<Notifier, String> {
        let queue = if config.uses_broker() {
            let runtime = tokio::runtime::Handle::try_current()
                .map_err(|_| "notifications need the async runtime to be running".to_owned())?;
            let (tx, rx) = mpsc::channel(config.buffer_size);
            runtime.spawn(publisher::run(config.clone(), rx));
            Some(tx)
        } else {
            None
        };
        Ok(Notifier {
            publisher_id: config.publisher_id.clone(),
            disabled: config.disabled.clone(),
            log: config.drivers.contains(&NotificationDriver::Log),
            queue,
            dropped_since_log: AtomicU64::new(0),
            last_drop_log: std::sync::Mutex::new(None),
        })
    }

    fn dropped(&self, event_type: &str, why: &str) {
        crate::metrics::global().notifications_dropped.add(1);
        let count = self.dropped_since_log.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_drop_log.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| at.elapsed() >= DROP_LOG_INTERVAL) {
            *last = Some(Instant::now());
            self.dropped_since_log.store(0, Ordering::Relaxed);
            tracing::warn!(
                event_type,
                dropped = count,
                "notification dropped: {why} (glint_notifications_dropped_total counts them all)"
            );
        }
    }
}

/// Glance's `_is_notification_enabled`: the type itself or its group (before the first dot).
fn is_disabled(disabled: &[String], event_type: &str) -> bool {
    let group = event_type.split('.').next().unwrap_or(event_type);
    disabled.iter().any(|d| d == event_type || d == group)
}

impl EventSink for Notifier {
    fn publish(&self, event: Event<'_>) {
        if is_disabled(&self.disabled, event.event_type) {
            return;
        }
        let message = Message::new(
            &self.publisher_id,
            event.event_type,
            event.priority.as_str(),
            event.payload,
            chrono::Utc::now(),
        );
        if self.log {
            tracing::info!(
                target: "oslo.messaging.notification",
                event_type = message.event_type,
                priority = message.priority,
                "{}",
                message.log_line()
            );
        }
        let Some(queue) = &self.queue else {
            return;
        };
        let event_type = message.event_type;
        match queue.try_send(message) {
            Ok(()) => crate::metrics::global().notifications_queued.add(1),
            Err(mpsc::error::TrySendError::Full(_)) => self.dropped(
                event_type,
                "the queue of events waiting for the broker is full",
            ),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.dropped(event_type, "the publishing task has stopped")
            }
        }
    }

    fn enabled(&self, event_type: &str) -> bool {
        !is_disabled(&self.disabled, event_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_notifications_match_types_and_groups_as_glance_does() {
        let disabled = vec!["image.send".to_owned(), "task".to_owned()];
        assert!(is_disabled(&disabled, "image.send"));
        assert!(is_disabled(&disabled, "task.success"));
        assert!(!is_disabled(&disabled, "image.update"));
        // A group is the part before the first dot: `image` does not disable
        // `image.member.create` by way of `image.member`, but `image` does.
        assert!(!is_disabled(
            &["image.member".to_owned()],
            "image.member.create"
        ));
        assert!(is_disabled(&["image".to_owned()], "image.member.create"));
    }
}
