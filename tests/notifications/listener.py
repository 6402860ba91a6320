"""Glint's notifications as an oslo.messaging consumer (Ceilometer, billing, audit) gets them.

Listens with oslo.messaging's own notification listener on the exchange and topic Glint
notifies (the queue it reads is oslo's default `<topic>.<priority>` queue, as Ceilometer's
is), drives an image through its life over the API (create, patch, tag, upload, download,
share, delete), and checks that every event arrives, parsed by oslo.messaging itself, with
Glance's event types, publisher id, priorities and payloads.

Environment: GLINT_URL, GLINT_NOTIFY_URL (transport URL), GLINT_NOTIFY_EXCHANGE,
GLINT_NOTIFY_TOPIC, GLINT_NOTIFY_PUBLISHER (default image.localhost).
Exits 0 when everything matched, 1 with the differences otherwise.
"""

import hashlib
import json
import os
import sys
import threading
import time
import urllib.request

from oslo_config import cfg
import oslo_messaging

URL = os.environ["GLINT_URL"]
PUBLISHER = os.environ.get("GLINT_NOTIFY_PUBLISHER", "image.localhost")

IMAGE_KEYS = {
    "id", "name", "status", "created_at", "updated_at", "min_disk", "min_ram", "protected",
    "checksum", "owner", "disk_format", "container_format", "size", "virtual_size",
    "is_public", "visibility", "properties", "tags", "deleted", "deleted_at",
}
IMPORT_KEYS = {"os_glance_importing_to_stores", "os_glance_failed_import"}
MEMBER_KEYS = {"image_id", "member_id", "status", "created_at", "updated_at", "deleted",
               "deleted_at"}


class Collector:
    """oslo.messaging's endpoint: one method per priority."""

    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def _record(self, priority, ctxt, publisher_id, event_type, payload, metadata):
        with self.lock:
            self.events.append({"priority": priority, "ctxt": ctxt,
                                "publisher_id": publisher_id, "event_type": event_type,
                                "payload": payload, "metadata": metadata})

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self._record("INFO", ctxt, publisher_id, event_type, payload, metadata)

    def warn(self, ctxt, publisher_id, event_type, payload, metadata):
        self._record("WARN", ctxt, publisher_id, event_type, payload, metadata)

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        self._record("ERROR", ctxt, publisher_id, event_type, payload, metadata)


def call(method, path, body=None, headers=None, data=None):
    headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(URL + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as answer:
        raw = answer.read()
        return json.loads(raw) if raw and answer.headers.get_content_type() == "application/json" else raw


def drive():
    """An image's life over the API; returns its id and data."""
    image = call("POST", "/v2/images", {"name": "oslo-check", "disk_format": "raw",
                                         "container_format": "bare", "visibility": "shared"})
    image_id = image["id"]
    call("PATCH", f"/v2/images/{image_id}",
         data=json.dumps([{"op": "add", "path": "/hw_disk_bus", "value": "scsi"}]).encode(),
         headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
    call("PUT", f"/v2/images/{image_id}/tags/checked")
    data = os.urandom(300_000)
    call("PUT", f"/v2/images/{image_id}/file", data=data,
         headers={"Content-Type": "application/octet-stream"})
    assert call("GET", f"/v2/images/{image_id}/file") == data
    call("POST", f"/v2/images/{image_id}/members", {"member": "project-b"})
    call("DELETE", f"/v2/images/{image_id}/members/project-b")
    call("DELETE", f"/v2/images/{image_id}")
    return image_id, data


EXPECTED = [
    ("image.create", "queued"), ("image.update", "queued"), ("image.update", "queued"),
    ("image.update", "saving"), ("image.prepare", "saving"), ("image.upload", "active"),
    ("image.activate", "active"), ("image.update", "active"), ("image.send", None),
    ("image.member.create", None), ("image.member.delete", None), ("image.delete", "deleted"),
]


def check(events, image_id, data):
    problems = []
    got = [(e["event_type"], e["payload"].get("status") if e["event_type"].startswith("image.")
            and "member" not in e["event_type"] and e["event_type"] != "image.send" else None)
           for e in events]
    if got != EXPECTED:
        problems.append(f"events {got}\n  expected {EXPECTED}")
    for event in events:
        kind, payload = event["event_type"], event["payload"]
        if event["publisher_id"] != PUBLISHER:
            problems.append(f"{kind}: publisher_id {event['publisher_id']!r}")
        if event["priority"] != "INFO":
            problems.append(f"{kind}: priority {event['priority']}")
        # Glance sends an empty context: no `_context_*` keys, so oslo's unpacking finds
        # only what it adds itself.
        if event["ctxt"] != {"client_timeout": None}:
            problems.append(f"{kind}: context {event['ctxt']!r} (Glance sends none)")
        if set(event["metadata"]) != {"message_id", "timestamp"}:
            problems.append(f"{kind}: metadata {event['metadata']!r}")
        if kind.startswith("image.member."):
            want = MEMBER_KEYS
        elif kind == "image.send":
            want = {"bytes_sent", "image_id", "owner_id", "receiver_tenant_id", "receiver_user_id"}
            if payload.get("bytes_sent") != len(data):
                problems.append(f"image.send: bytes_sent {payload.get('bytes_sent')}")
        elif kind in ("image.prepare", "image.upload"):
            want = IMAGE_KEYS | IMPORT_KEYS
        else:
            want = IMAGE_KEYS
        if set(payload) != want:
            problems.append(f"{kind}: payload keys {sorted(payload)}")
        if payload.get("id", payload.get("image_id")) != image_id:
            problems.append(f"{kind}: not about {image_id}: {payload}")
        if "locations" in json.dumps(payload) or "file://" in json.dumps(payload):
            problems.append(f"{kind}: a location in the payload")
    upload = next((e for e in events if e["event_type"] == "image.upload"), None)
    if upload and upload["payload"].get("checksum") != hashlib.md5(data).hexdigest():
        problems.append(f"image.upload: checksum {upload['payload'].get('checksum')}")
    return problems


def main():
    conf = cfg.ConfigOpts()
    conf([], project="glint-notifications-check")
    oslo_messaging.set_transport_defaults(os.environ["GLINT_NOTIFY_EXCHANGE"])
    transport = oslo_messaging.get_notification_transport(conf, url=os.environ["GLINT_NOTIFY_URL"])
    targets = [oslo_messaging.Target(topic=os.environ["GLINT_NOTIFY_TOPIC"])]
    collector = Collector()
    listener = oslo_messaging.get_notification_listener(
        transport, targets, [collector], executor="threading")
    listener.start()
    try:
        image_id, data = drive()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with collector.lock:
                if any(e["event_type"] == "image.delete" for e in collector.events):
                    break
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        listener.stop()
        listener.wait()
        transport.cleanup()
    problems = check(collector.events, image_id, data)
    for problem in problems:
        print("listener.py:", problem, file=sys.stderr)
    print(f"listener.py: {len(collector.events)} notifications received through oslo.messaging's "
          f"listener, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
