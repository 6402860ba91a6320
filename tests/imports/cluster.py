"""Imports on two Glint nodes sharing one PostgreSQL database, with Ceph RGW's S3 as the
staging store and as an image store, Ceph RBD and a directory as the others:

  * data staged through node A is imported through node B (any node reaches the staging
    bucket, so no request is proxied and none can land on the wrong node);
  * copy-image through node A into RBD and the directory, each copy read back;
  * a qcow2 staged through A, converted to raw (`image_conversion`) and written to RBD by B;
    the same qcow2 gzipped, unpacked from the bucket (`image_decompression`) and converted;
  * a web-download cut by kill -9 of the node running it finishes after that node restarts
    (its claim released at start, the job run again from the start, nothing left half-done);
  * the staging bucket holds nothing once the imports are over.

Run by scripts/test-imports, which provides (environment):
  GLINT_BIN           a glint built with --features rbd
  GLINT_TEST_DB_URL   a PostgreSQL URL (its own schema)
  GLINT_TEST_CEPH_*   the lab's Ceph (scripts/lab-ceph env): conf, pool, user
  GLINT_TEST_RGW_*    the lab's RGW S3 endpoint and keys
Prints TAP-style lines; exits 1 on any failure.
"""
import gzip
import hashlib
import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

BIN = os.environ["GLINT_BIN"]
failures = 0


def check(ok, what, details=""):
    global failures
    print(("ok - " if ok else "not ok - ") + what + ("" if ok or not details else f": {details}"),
          flush=True)
    if not ok:
        failures += 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def call(port, method, path, body=None):
    status, data = request(port, method, path,
                           json.dumps(body).encode() if body is not None else None,
                           {"Content-Type": "application/json", "Accept": "application/json"})
    try:
        return status, json.loads(data or b"{}")
    except ValueError:
        return status, {"raw": data.decode("utf-8", "replace")}


class SlowWeb:
    """Serves `data` at /image.raw, `rate` bytes a second, counting what it has sent."""

    def __init__(self, data, rate):
        outer = self
        self.sent = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                step = 256 * 1024
                try:
                    for at in range(0, len(data), step):
                        self.wfile.write(data[at:at + step])
                        outer.sent += min(step, len(data) - at)
                        time.sleep(step / rate)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/image.raw"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Node:
    def __init__(self, work, name, config):
        self.port = free_port()
        self.name = name
        self.conf = os.path.join(work, f"{name}.conf")
        with open(self.conf, "w") as f:
            f.write(config.replace("@PORT@", str(self.port)).replace("@NODE@", name))
        self.log = os.path.join(work, f"{name}.log")
        self.env = {**os.environ, "GLINT_DATA": os.path.join(work, name), "RUST_LOG": "info"}
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([BIN, "--config", self.conf, "serve"], env=self.env,
                                     stdout=open(self.log, "a"), stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                if request(self.port, "GET", "/healthcheck")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start; see {self.log}")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_task(port, image_id, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, body = call(port, "GET", f"/v2/images/{image_id}/tasks")
        tasks = body.get("tasks", []) if status == 200 else []
        if tasks and tasks[-1]["status"] in ("success", "failure"):
            return tasks[-1]
        time.sleep(0.3)
    return {}


def create(port, name):
    status, body = call(port, "POST", "/v2/images",
                        {"name": name, "disk_format": "raw", "container_format": "bare"})
    assert status == 201, body
    return body["id"]


def sha(data):
    return hashlib.sha256(data).hexdigest()


def download(port, image_id, prefer=None):
    path = f"/v2/images/{image_id}/file" + (f"?prefer={prefer}" if prefer else "")
    status, data = request(port, "GET", path)
    return sha(data) if status == 200 else f"HTTP {status}"


def s3_keys(bucket):
    """Objects in an RGW bucket, listed with a signed request (no SDK needed)."""
    import datetime
    import hmac
    endpoint = os.environ["GLINT_TEST_RGW_ENDPOINT"].rstrip("/")
    host = endpoint.split("://", 1)[1]
    region = os.environ["GLINT_TEST_RGW_REGION"]
    access, secret = os.environ["GLINT_TEST_RGW_ACCESS_KEY"], os.environ["GLINT_TEST_RGW_SECRET_KEY"]
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    empty = hashlib.sha256(b"").hexdigest()
    canonical = f"GET\n/{bucket}\nlist-type=2\nhost:{host}\nx-amz-content-sha256:{empty}\nx-amz-date:{amz_date}\n\nhost;x-amz-content-sha256;x-amz-date\n{empty}"
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = ("AWS4" + secret).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    conn = http.client.HTTPConnection(host, timeout=30)
    conn.request("GET", f"/{bucket}?list-type=2", headers={
        "x-amz-date": amz_date, "x-amz-content-sha256": empty,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
                         f"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}"})
    resp = conn.getresponse()
    text = resp.read().decode()
    if resp.status == 404:
        return []
    return [part.split("</Key>")[0] for part in text.split("<Key>")[1:]]


def main():
    work = tempfile.mkdtemp(prefix="glint-imports-")
    env = os.environ
    suffix = uuid.uuid4().hex[:10]
    staging_bucket, images_bucket = f"glint-staging-{suffix}", f"glint-images-{suffix}"
    s3 = lambda bucket: f"""s3_store_host = {env["GLINT_TEST_RGW_ENDPOINT"]}
s3_store_access_key = {env["GLINT_TEST_RGW_ACCESS_KEY"]}
s3_store_secret_key = {env["GLINT_TEST_RGW_SECRET_KEY"]}
s3_store_region_name = {env["GLINT_TEST_RGW_REGION"]}
s3_store_bucket = {bucket}
s3_store_create_bucket_on_put = true"""
    config = f"""[DEFAULT]
bind_host = 127.0.0.1
bind_port = @PORT@
node_id = @NODE@
enabled_backends = objects:s3, ceph:rbd, local:file
web_download_timeout = 30
[database]
connection = {env["GLINT_TEST_DB_URL"]}
[glance_store]
default_backend = objects
[objects]
{s3(images_bucket)}
[ceph]
rbd_store_pool = {env["GLINT_TEST_CEPH_POOL"]}
rbd_store_user = {env["GLINT_TEST_CEPH_USER"]}
rbd_store_ceph_conf = {env["GLINT_TEST_CEPH_CONF"]}
[local]
filesystem_store_datadir = {work}/images
[os_glance_staging_store]
type = s3
{s3(staging_bucket)}
[import_filtering_opts]
allowed_hosts = 127.0.0.1
allowed_ports =
[image_import_opts]
image_import_plugins = [image_decompression, image_conversion]
"""
    a, b = Node(work, "node-a", config), Node(work, "node-b", config)
    subprocess.run([BIN, "--config", a.conf, "db", "sync"], env=a.env, check=True,
                   capture_output=True)
    a.start()
    b.start()
    try:
        # Staged through A, imported through B.
        data = os.urandom(24 << 20)
        image = create(a.port, "staged-on-a")
        status, _ = request(a.port, "PUT", f"/v2/images/{image}/stage", data,
                            {"Content-Type": "application/octet-stream"})
        check(status == 204, "stage through node A")
        check(staging_bucket and image in s3_keys(staging_bucket),
              "the staged data is in the staging bucket, where every node reaches it")
        status, body = call(b.port, "POST", f"/v2/images/{image}/import",
                            {"method": {"name": "glance-direct"}})
        check(status == 202, "glance-direct import through node B", f"{status} {body}")
        task = wait_task(b.port, image)
        check(task.get("status") == "success", "the import staged on A finishes", f"{task}")
        check(download(b.port, image) == sha(data), "node B serves the imported bytes")
        check(image not in s3_keys(staging_bucket), "the staged data is gone once imported")

        # copy-image into RBD and the directory, through A.
        status, body = call(a.port, "POST", f"/v2/images/{image}/import",
                            {"method": {"name": "copy-image"}, "stores": ["ceph", "local"]})
        check(status == 202, "copy-image into ceph and local", f"{status} {body}")
        task = wait_task(a.port, image)
        _, shown = call(a.port, "GET", f"/v2/images/{image}")
        check(task.get("status") == "success"
              and sorted(shown.get("stores", "").split(",")) == ["ceph", "local", "objects"],
              "copy-image leaves the image in S3, RBD and the directory", f"{task} {shown}")
        for store in ("ceph", "local", "objects"):
            check(download(b.port, image, store) == sha(data), f"the {store} copy reads back whole")

        # A qcow2 staged (in the bucket) through A, converted to raw and written to RBD by B.
        raw = bytes(range(256)) * (4096 * 4) + bytes(12 << 20)
        raw_path, qcow2_path = os.path.join(work, "disk.raw"), os.path.join(work, "disk.qcow2")
        with open(raw_path, "wb") as f:
            f.write(raw)
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw_path, qcow2_path],
                       check=True)
        with open(qcow2_path, "rb") as f:
            qcow2 = f.read()
        status, body = call(a.port, "POST", "/v2/images",
                            {"name": "qcow2", "disk_format": "qcow2", "container_format": "bare"})
        image3 = body["id"]
        status, _ = request(a.port, "PUT", f"/v2/images/{image3}/stage", qcow2,
                            {"Content-Type": "application/octet-stream"})
        check(status == 204, "a qcow2 staged through node A")
        status, body = call(b.port, "POST", f"/v2/images/{image3}/import",
                            {"method": {"name": "glance-direct"}, "stores": ["ceph"]})
        task = wait_task(b.port, image3)
        _, shown = call(b.port, "GET", f"/v2/images/{image3}")
        check(task.get("status") == "success" and shown.get("disk_format") == "raw"
              and shown.get("stores") == "ceph" and shown.get("size") == len(raw)
              and shown.get("virtual_size") == len(raw),
              "image_conversion: the qcow2 is raw in RBD", f"{task} {shown}")
        check(download(b.port, image3) == sha(raw), "the converted image reads back as the raw disk")

        # The same qcow2 gzipped: staged uninspected, read back from the bucket by B, unpacked,
        # converted, written to RBD.
        status, body = call(a.port, "POST", "/v2/images",
                            {"name": "qcow2.gz", "disk_format": "qcow2", "container_format": "bare"})
        image4 = body["id"]
        status, _ = request(a.port, "PUT", f"/v2/images/{image4}/stage", gzip.compress(qcow2),
                            {"Content-Type": "application/octet-stream"})
        check(status == 204, "a gzipped qcow2 staged through node A")
        status, body = call(b.port, "POST", f"/v2/images/{image4}/import",
                            {"method": {"name": "glance-direct"}, "stores": ["ceph"]})
        task = wait_task(b.port, image4)
        _, shown = call(b.port, "GET", f"/v2/images/{image4}")
        check(task.get("status") == "success" and shown.get("disk_format") == "raw"
              and shown.get("size") == len(raw),
              "image_decompression then image_conversion: the gzipped qcow2 is raw in RBD",
              f"{task} {shown}")
        check(download(b.port, image4) == sha(raw), "the unpacked, converted image reads back")
        check(image4 not in s3_keys(staging_bucket), "its staged data is gone once imported")

        # A web-download cut by kill -9 of its node; the node restarts and finishes it.
        big = os.urandom(64 << 20)
        web = SlowWeb(big, 8 << 20)
        image2 = create(a.port, "web-cut")
        b.stop()  # only A may run the job
        status, body = call(a.port, "POST", f"/v2/images/{image2}/import",
                            {"method": {"name": "web-download", "uri": web.url},
                             "stores": ["ceph"]})
        check(status == 202, "web-download into RBD through node A", f"{status} {body}")
        deadline = time.time() + 60
        while web.sent < (20 << 20) and time.time() < deadline:
            time.sleep(0.1)
        a.kill()
        check(web.sent < len(big), "node A killed half-way through the download",
              f"sent {web.sent} of {len(big)}")
        a.start()
        task = wait_task(a.port, image2)
        check(task.get("status") == "success", "after the restart the import finishes", f"{task}")
        _, shown = call(a.port, "GET", f"/v2/images/{image2}")
        check(shown.get("status") == "active" and shown.get("stores") == "ceph"
              and shown.get("os_hash_value") == hashlib.sha512(big).hexdigest(),
              "the image is active in RBD with the remote bytes' sha512", f"{shown}")
        check(download(a.port, image2) == sha(big), "the RBD copy reads back whole")
        # The killed node's unfinished multipart upload keeps its marker until the staging
        # store's sweep of uploads idle for 15 minutes; no staged data is left.
        left = [k for k in s3_keys(staging_bucket) if not k.startswith("glint-uploads/")]
        check(left == [], "the staging bucket holds no staged data", f"{left}")
    finally:
        a.stop()
        b.stop()
    if failures:
        for node in (a, b):
            print(f"# ---- {node.name} log (last 60 lines)")
            with open(node.log) as f:
                for line in f.readlines()[-60:]:
                    print("# " + line.rstrip())
    print(f"# {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
