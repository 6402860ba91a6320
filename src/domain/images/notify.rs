//! The image service's side of notifications: the events Glance's notifier proxies send for
//! images, members and tasks, handed to the configured `EventSink` (nothing is built when the
//! sink would not send it).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::ImageService;
use crate::domain::event_payloads::{
    deleted_now, image_payload, import_lists, info, member_payload, task_payload,
};
use crate::domain::events::{Event, EventSink, Priority};
use crate::domain::image::Image;
use crate::domain::repository::Member;
use crate::domain::tasks::Task;
use crate::domain::RequestContext;

impl ImageService {
    /// Sends the service's events to `events` (`NoEvents` by default).
    pub fn with_events(mut self, events: Arc<dyn EventSink>) -> ImageService {
        self.events = events;
        self
    }

    /// Where this service's events go; the data path and imports send theirs there too.
    pub fn events(&self) -> &dyn EventSink {
        self.events.as_ref()
    }

    /// An INFO image event with Glance's image payload (`image.create`, `image.update`, …).
    pub fn notify_image(&self, ctx: &RequestContext, event_type: &'static str, image: &Image) {
        info(self.events(), ctx, event_type, || image_payload(image));
    }

    /// `image.prepare` and `image.upload`: the image payload, the import lists, and on
    /// multi-store deployments the target store (`backend`).
    pub fn notify_image_data(
        &self,
        ctx: &RequestContext,
        event_type: &'static str,
        image: &Image,
        backend: Option<&str>,
    ) {
        info(self.events(), ctx, event_type, || {
            let mut payload = image_payload(image);
            payload.extend(import_lists(image));
            if let Some(backend) = backend {
                payload.insert("backend".into(), backend.into());
            }
            payload
        });
    }

    /// `image.delete`: the image as removed, `deleted: true` with the moment.
    pub fn notify_image_deleted(&self, ctx: &RequestContext, image: &Image) {
        info(self.events(), ctx, "image.delete", || {
            let mut payload = image_payload(image);
            deleted_now(&mut payload);
            payload
        });
    }

    /// An ERROR event whose payload is only a message (`image.upload` of a failed upload).
    pub fn notify_error(&self, ctx: &RequestContext, event_type: &'static str, message: String) {
        if self.events.enabled(event_type) {
            self.events.publish(Event {
                context: ctx,
                event_type,
                priority: Priority::Error,
                payload: Value::String(message),
            });
        }
    }

    /// An event with a payload of the caller's making (`image.send`), at `priority`.
    pub fn notify(
        &self,
        ctx: &RequestContext,
        event_type: &'static str,
        priority: Priority,
        payload: impl FnOnce() -> Map<String, Value>,
    ) {
        if self.events.enabled(event_type) {
            self.events.publish(Event {
                context: ctx,
                event_type,
                priority,
                payload: Value::Object(payload()),
            });
        }
    }

    /// `image.member.create`, `image.member.update`, `image.member.delete` (`deleted`).
    pub fn notify_member(
        &self,
        ctx: &RequestContext,
        event_type: &'static str,
        member: &Member,
        deleted: bool,
    ) {
        info(self.events(), ctx, event_type, || {
            let mut payload = member_payload(member);
            if deleted {
                deleted_now(&mut payload);
            }
            payload
        });
    }

    /// `task.create`, `task.processing`, `task.success`, `task.failure`, `task.run`.
    pub fn notify_task(&self, ctx: &RequestContext, event_type: &'static str, task: &Task) {
        info(self.events(), ctx, event_type, || task_payload(task));
    }
}
