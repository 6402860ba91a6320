//! The payloads of Glance's image, member and task notifications, field for field as
//! glance/notifier.py formats them. An image's locations are never sent (they may hold store
//! credentials), nor a task's input.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::events::{Event, EventSink, Priority};
use super::image::Image;
use super::repository::Member;
use super::tasks::Task;
use super::RequestContext;

/// Glance's `timeutils.isotime`: whole seconds and `Z`. Given nothing it is the current time,
/// as in Glance (so a task without an expiry reports the moment of the event).
pub fn isotime(at: Option<DateTime<Utc>>) -> String {
    at.unwrap_or_else(Utc::now)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `format_image_notification`.
pub fn image_payload(image: &Image) -> Map<String, Value> {
    let payload = json!({
        "id": image.id.as_str(),
        "name": image.name,
        "status": image.status.as_str(),
        "created_at": isotime(Some(image.created_at)),
        "updated_at": isotime(Some(image.updated_at)),
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "protected": image.protected,
        "checksum": image.checksum,
        "owner": image.owner,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "size": image.size,
        "virtual_size": image.virtual_size,
        "is_public": image.visibility == super::Visibility::Public,
        "visibility": image.visibility.as_str(),
        "properties": image.properties,
        "tags": image.tags,
        "deleted": false,
        "deleted_at": null,
    });
    match payload {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `_format_import_properties`: the import lists, split on commas (empty lists when unset).
pub fn import_lists(image: &Image) -> Map<String, Value> {
    let list = |name: &str| -> Value {
        image
            .properties
            .get(name)
            .filter(|v| !v.is_empty())
            .map(|v| v.split(',').map(|s| Value::from(s.to_owned())).collect())
            .unwrap_or_else(|| Value::Array(Vec::new()))
    };
    let mut map = Map::new();
    map.insert(
        "os_glance_importing_to_stores".into(),
        list("os_glance_importing_to_stores"),
    );
    map.insert(
        "os_glance_failed_import".into(),
        list("os_glance_failed_import"),
    );
    map
}

/// `format_image_member_notification`.
pub fn member_payload(member: &Member) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("image_id".into(), member.image_id.clone().into());
    map.insert("member_id".into(), member.member_id.clone().into());
    map.insert("status".into(), member.status.as_str().into());
    map.insert("created_at".into(), isotime(Some(member.created_at)).into());
    map.insert("updated_at".into(), isotime(Some(member.updated_at)).into());
    map.insert("deleted".into(), false.into());
    map.insert("deleted_at".into(), Value::Null);
    map
}

/// `format_task_notification`: `result` and `message` are always null, `input` absent.
pub fn task_payload(task: &Task) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("id".into(), task.id.clone().into());
    map.insert("type".into(), task.task_type.clone().into());
    map.insert("status".into(), task.status.as_str().into());
    map.insert("result".into(), Value::Null);
    map.insert("owner".into(), task.owner.clone().into());
    map.insert("message".into(), Value::Null);
    map.insert("expires_at".into(), isotime(task.expires_at).into());
    map.insert("created_at".into(), isotime(Some(task.created_at)).into());
    map.insert("updated_at".into(), isotime(Some(task.updated_at)).into());
    map.insert("deleted".into(), false.into());
    map.insert("deleted_at".into(), Value::Null);
    map
}

/// What a removal adds to its payload: `deleted: true` and the moment.
pub fn deleted_now(payload: &mut Map<String, Value>) {
    payload.insert("deleted".into(), true.into());
    payload.insert("deleted_at".into(), isotime(None).into());
}

/// Publishes an INFO event built only when `sink` wants it.
pub fn info(
    sink: &dyn EventSink,
    context: &RequestContext,
    event_type: &'static str,
    payload: impl FnOnce() -> Map<String, Value>,
) {
    if sink.enabled(event_type) {
        sink.publish(Event {
            context,
            event_type,
            priority: Priority::Info,
            payload: Value::Object(payload()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::image::ImageId;
    use chrono::TimeZone;

    #[test]
    fn image_payload_has_glance_fields_and_no_locations() {
        let at = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("time");
        let mut image = Image::new(ImageId::generate(), Some("p1".into()), at);
        image
            .properties
            .insert("os_glance_importing_to_stores".into(), "a,b".into());
        image.visibility = crate::domain::Visibility::Public;
        let payload = image_payload(&image);
        let mut keys: Vec<&str> = payload.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
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
                "visibility"
            ]
        );
        assert_eq!(payload["created_at"], "2026-01-02T03:04:05Z");
        assert_eq!(payload["is_public"], true);
        let lists = import_lists(&image);
        assert_eq!(lists["os_glance_importing_to_stores"], json!(["a", "b"]));
        assert_eq!(lists["os_glance_failed_import"], json!([]));
    }
}
