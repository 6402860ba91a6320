"""What the glint migrate tests share: TAP-style checks, a Glint server's HTTP API on a free
port, and images of random bytes uploaded to it."""
import hashlib
import http.client
import json
import os
import socket
import time


class Tap:
    """TAP-style lines: `ok - ...` / `not ok - ...` checks and `# ...` notes, failures
    counted."""

    def __init__(self):
        self.failures = 0

    def check(self, ok, what):
        print(("ok - " if ok else "not ok - ") + what, flush=True)
        if not ok:
            self.failures += 1

    @staticmethod
    def note(what):
        print(f"# {what}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def wait_until_serving(port, seconds=30):
    """Polls /healthcheck until the server answers (its start-up recovery runs before)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            request(port, "GET", "/healthcheck")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"no server answered on port {port} within {seconds} s")
            time.sleep(0.1)


def upload_random_image(port, name, size):
    """Creates a raw image and uploads `size` random bytes to it; returns its id, md5 and
    sha512 (hex)."""
    status, body = request(port, "POST", "/v2/images", json.dumps(
        {"name": name, "disk_format": "raw", "container_format": "bare"}),
        {"Content-Type": "application/json"})
    if status != 201:
        raise SystemExit(f"image create failed: {status} {body[:200]!r}")
    image_id = json.loads(body)["id"]
    data = os.urandom(size)
    status, _ = request(port, "PUT", f"/v2/images/{image_id}/file", data,
                        {"Content-Type": "application/octet-stream"})
    if status != 204:
        raise SystemExit(f"upload failed: {status}")
    return image_id, hashlib.md5(data).hexdigest(), hashlib.sha512(data).hexdigest()
