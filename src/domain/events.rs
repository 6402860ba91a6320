//! The notifications port: what the domain tells the outside world has happened (Glance's
//! `image.create`, `image.member.update`, `task.success`, `metadef_namespace.delete`, …).
//! The domain names the event and builds its payload; an adapter outside the domain (the
//! oslo.messaging envelope on RabbitMQ) delivers it. Publishing never blocks and never
//! fails the caller: a sink that cannot deliver drops and counts, it does not push back.

use std::fmt::Debug;

use super::RequestContext;

/// oslo.messaging's notification priorities that Glance uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Info,
    Warn,
    Error,
}

impl Priority {
    /// The priority as oslo.messaging writes it in the envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Info => "INFO",
            Priority::Warn => "WARN",
            Priority::Error => "ERROR",
        }
    }
}

/// One notification: who caused it, what it is, and Glance's payload for it.
#[derive(Debug)]
pub struct Event<'a> {
    pub context: &'a RequestContext,
    /// Glance's event type, e.g. `image.update`.
    pub event_type: &'static str,
    pub priority: Priority,
    pub payload: serde_json::Value,
}

/// Where events go. Implementations must return at once.
pub trait EventSink: Send + Sync + Debug {
    fn publish(&self, event: Event<'_>);

    /// Whether an event of this type would be sent (`disabled_notifications`, a sink that
    /// sends nothing): callers skip building payloads that would be thrown away.
    fn enabled(&self, _event_type: &str) -> bool {
        true
    }
}

/// A deployment with notifications off (`driver = noop`, or none configured).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn publish(&self, _event: Event<'_>) {}

    fn enabled(&self, _event_type: &str) -> bool {
        false
    }
}
