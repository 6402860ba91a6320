//! A notification's bytes as oslo.messaging's RabbitMQ driver writes them (recorded from
//! oslo.messaging 18.3 in `testdata/`):
//!
//! ```text
//! messagingv2: {"oslo.version": "2.0", "oslo.message": "<the message, as a JSON string>"}
//! messaging:   <the message>
//! message:     {"message_id", "publisher_id", "event_type", "priority", "payload",
//!               "timestamp", "_unique_id"}
//! ```
//!
//! Both levels are Python's `json.dumps`: `", "` and `": "` separators, everything outside
//! printable ASCII escaped as `\uXXXX`. `timestamp` is `str(datetime.utcnow())`, `_unique_id`
//! a fresh hex UUID per send (as oslo adds it per topic). Glance passes an empty context, so
//! there are no `_context_*` keys.

use chrono::{DateTime, Timelike, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::config::notifications::NotificationDriver;

/// One notification, ready for any driver.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub message_id: String,
    pub publisher_id: String,
    pub event_type: &'static str,
    pub priority: &'static str,
    pub payload: Value,
    pub timestamp: String,
}

/// The message as sent: the fields above, then `_unique_id`.
#[derive(Serialize)]
struct Sent<'a> {
    #[serde(flatten)]
    message: &'a Message,
    _unique_id: String,
}

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "oslo.version")]
    version: &'static str,
    #[serde(rename = "oslo.message")]
    message: &'a str,
}

impl Message {
    pub fn new(
        publisher_id: &str,
        event_type: &'static str,
        priority: &'static str,
        payload: Value,
        at: DateTime<Utc>,
    ) -> Message {
        Message {
            message_id: uuid::Uuid::new_v4().to_string(),
            publisher_id: publisher_id.to_owned(),
            event_type,
            priority,
            payload,
            timestamp: python_timestamp(at),
        }
    }

    /// The AMQP body for `driver`, with a new `_unique_id`.
    pub fn body(&self, driver: NotificationDriver) -> Vec<u8> {
        let sent = Sent {
            message: self,
            _unique_id: uuid::Uuid::new_v4().simple().to_string(),
        };
        let inner = python_json(&sent);
        match driver {
            NotificationDriver::MessagingV2 => python_json(&Envelope {
                version: "2.0",
                message: &inner,
            }),
            NotificationDriver::Messaging | NotificationDriver::Log => inner,
        }
        .into_bytes()
    }

    /// The message as oslo's log driver writes it (without `_unique_id`).
    pub fn log_line(&self) -> String {
        python_json(self)
    }
}

/// Python's `str(datetime)`: microseconds only when there are any.
pub fn python_timestamp(at: DateTime<Utc>) -> String {
    if at.nanosecond() / 1000 == 0 {
        at.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    }
}

/// `json.dumps(value)` with Python's defaults.
pub fn python_json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::with_capacity(512);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    if value.serialize(&mut serializer).is_err() {
        // Serializing plain JSON values into memory cannot fail; keep the output valid anyway.
        return "null".to_owned();
    }
    String::from_utf8(out).unwrap_or_else(|_| "null".to_owned())
}

/// Python's `json` module's layout: separators with a space, `ensure_ascii`.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // serde_json has escaped quotes, backslashes and control characters already; the rest
        // of what Python escapes is DEL and everything beyond ASCII (as UTF-16 units).
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if (' '..='~').contains(&c) {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    /// What oslo.messaging 18.3 published for `Notifier.info({}, 'image.create', payload)`
    /// (`testdata/oslo_messagingv2.json`), its ids and time put into this message.
    #[test]
    fn the_v2_envelope_is_byte_for_byte_oslo_messagings() {
        let recorded = include_str!("testdata/oslo_messagingv2.json").trim_end();
        let outer: Value = serde_json::from_str(recorded).expect("recorded JSON");
        let inner: Value =
            serde_json::from_str(outer["oslo.message"].as_str().expect("string")).expect("inner");
        let message = Message {
            message_id: inner["message_id"].as_str().expect("id").to_owned(),
            publisher_id: "image.localhost".to_owned(),
            event_type: "image.create",
            priority: "INFO",
            // Python keeps insertion order; this recorded payload's keys are in sorted order.
            payload: json!({"id": "abc", "min_disk": 0, "name": "caf\u{e9} \u{1F600}",
                "properties": {"a": "b"}, "protected": false, "size": null, "tags": []}),
            timestamp: inner["timestamp"].as_str().expect("time").to_owned(),
        };
        let sent = Sent {
            message: &message,
            _unique_id: inner["_unique_id"].as_str().expect("unique").to_owned(),
        };
        let body = python_json(&Envelope {
            version: "2.0",
            message: &python_json(&sent),
        });
        assert_eq!(body, recorded);
    }

    /// The same for the `messaging` driver (`testdata/oslo_messaging.json`): no envelope.
    #[test]
    fn the_v1_message_is_byte_for_byte_oslo_messagings() {
        let recorded = include_str!("testdata/oslo_messaging.json").trim_end();
        let fields: Value = serde_json::from_str(recorded).expect("recorded JSON");
        let text = |key: &str| fields[key].as_str().expect(key).to_owned();
        let message = Message {
            message_id: text("message_id"),
            publisher_id: text("publisher_id"),
            event_type: "image.create",
            priority: "INFO",
            payload: fields["payload"].clone(),
            timestamp: text("timestamp"),
        };
        let sent = Sent {
            message: &message,
            _unique_id: text("_unique_id"),
        };
        assert_eq!(python_json(&sent), recorded);
    }

    #[test]
    fn the_v1_message_is_the_message_itself() {
        let message = Message::new(
            "image.h",
            "image.update",
            "INFO",
            json!({"x": 1}),
            Utc::now(),
        );
        let body: Value =
            serde_json::from_slice(&message.body(NotificationDriver::Messaging)).expect("json");
        assert_eq!(body["event_type"], "image.update");
        assert_eq!(body["payload"]["x"], 1);
        assert_eq!(body["_unique_id"].as_str().map(str::len), Some(32));
        let v2: Value =
            serde_json::from_slice(&message.body(NotificationDriver::MessagingV2)).expect("json");
        assert_eq!(v2["oslo.version"], "2.0");
        assert!(v2["oslo.message"].is_string());
    }

    #[test]
    fn timestamps_are_pythons_str_of_a_datetime() {
        let at = Utc
            .with_ymd_and_hms(2026, 12, 7, 2, 37, 36)
            .single()
            .expect("time");
        assert_eq!(python_timestamp(at), "2026-12-07 02:37:36");
        let at = at + chrono::Duration::microseconds(388_214);
        assert_eq!(python_timestamp(at), "2026-12-07 02:37:36.388214");
    }

    #[test]
    fn strings_are_escaped_as_python_escapes_them() {
        assert_eq!(
            python_json(&json!(["a\"\\\n\u{7f}\u{1}", "\u{e9}\u{1F600}"])),
            r#"["a\"\\\n\u007f\u0001", "\u00e9\ud83d\ude00"]"#
        );
        assert_eq!(
            python_json(&json!({"a": [1, 2], "b": {}})),
            r#"{"a": [1, 2], "b": {}}"#
        );
    }
}
