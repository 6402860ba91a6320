"""glint migrate, file -> RBD -> S3, cut by kill -9 and run again: every image ends with one
verified copy in each target, nothing is copied twice, and the data reads back whole.

Run by scripts/test-migrate, which provides (environment):
  GLINT_BIN           a glint built with --features rbd
  GLINT_TEST_CEPH_*   the lab's Ceph (scripts/lab-ceph env): conf, pool, user
  GLINT_TEST_RGW_*    the lab's RGW S3 endpoint and keys
  MIGRATE_IMAGES      how many images (20), MIGRATE_SIZE bytes each (16 MiB)
Prints TAP-style lines; exits 1 on any failure.
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from harness import Tap, free_port, request, upload_random_image, wait_until_serving

BIN = os.environ["GLINT_BIN"]
IMAGES = int(os.environ.get("MIGRATE_IMAGES", "20"))
SIZE = int(os.environ.get("MIGRATE_SIZE", str(16 << 20)))
tap = Tap()
check = tap.check


def run_on_terminal(command, env):
    """Runs `command` with its stderr on a pseudo-terminal; returns the exit status and what
    the terminal showed."""
    import pty
    import threading
    master, slave = pty.openpty()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []

    def drain():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    status = proc.wait()
    reader.join(timeout=10)
    os.close(master)
    return status, b"".join(chunks).decode("utf-8", "replace")


def main():
    work = tempfile.mkdtemp(prefix="glint-migrate-")
    port = free_port()
    bucket = "glint-migrate-" + uuid.uuid4().hex[:12]
    env = os.environ
    conf = os.path.join(work, "glint.conf")
    with open(conf, "w") as f:
        f.write(f"""[DEFAULT]
bind_host = 127.0.0.1
bind_port = {port}
enabled_backends = local:file, ceph:rbd, objects:s3
[database]
connection = {env.get("GLINT_TEST_DB_URL", f"sqlite:///{work}/glint.db")}
[glance_store]
default_backend = local
[local]
filesystem_store_datadir = {work}/images
[ceph]
rbd_store_pool = {env["GLINT_TEST_CEPH_POOL"]}
rbd_store_user = {env["GLINT_TEST_CEPH_USER"]}
rbd_store_ceph_conf = {env["GLINT_TEST_CEPH_CONF"]}
[objects]
weight = 100
s3_store_host = {env["GLINT_TEST_RGW_ENDPOINT"]}
s3_store_access_key = {env["GLINT_TEST_RGW_ACCESS_KEY"]}
s3_store_secret_key = {env["GLINT_TEST_RGW_SECRET_KEY"]}
s3_store_region_name = {env["GLINT_TEST_RGW_REGION"]}
s3_store_bucket = {bucket}
s3_store_create_bucket_on_put = true
""")
    run_env = {**os.environ, "GLINT_DATA": work, "RUST_LOG": "warn"}
    subprocess.run([BIN, "--config", conf, "db", "sync"], env=run_env, check=True,
                   capture_output=True)
    server = subprocess.Popen([BIN, "--config", conf, "serve"], env=run_env,
                              stdout=open(os.path.join(work, "serve.log"), "w"),
                              stderr=subprocess.STDOUT)
    ids, sums = [], {}
    try:
        wait_until_serving(port)
        for n in range(IMAGES):
            image_id, md5, _ = upload_random_image(port, f"migrate-{n}", SIZE)
            ids.append(image_id)
            sums[image_id] = md5
        check(True, f"{IMAGES} images of {SIZE} bytes uploaded to the file store")

        # file -> RBD, killed once a few images are done.
        first = subprocess.Popen([BIN, "--config", conf, "migrate", "--from", "local",
                                  "--to", "ceph", "--parallel", "2"], env=run_env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        done_before = []
        while len(done_before) < max(3, IMAGES // 4):
            line = first.stderr.readline()
            if not line:
                break
            if "copied to ceph" in line:
                done_before.append(line.split(":")[0])
        first.send_signal(signal.SIGKILL)
        first.wait()
        check(first.returncode == -signal.SIGKILL and len(done_before) < IMAGES,
              f"migrate killed (-9) after {len(done_before)} of {IMAGES} images")

        second = subprocess.run([BIN, "--config", conf, "migrate", "--from", "local", "--to",
                                 "ceph", "--parallel", "2"], env=run_env, capture_output=True,
                                text=True)
        check(second.returncode == 0, "the migration run again finishes")
        lines = [l for l in second.stderr.splitlines() if l.split(":")[0] in sums]
        again = [l.split(":")[0] for l in lines if "already in ceph" in l]
        check(set(done_before) <= set(again),
              f"images finished before the kill are not copied again ({len(again)} already there)")
        check(len(lines) == IMAGES, f"every image accounted for ({len(lines)} lines)")
        for image_id in ids:
            status, body = request(port, "GET", f"/v2/images/{image_id}")
            stores = json.loads(body).get("stores", "").split(",")
            if stores.count("ceph") != 1:
                check(False, f"{image_id} has one copy in ceph: {stores}")
                break
        else:
            check(True, "every image has exactly one copy in ceph")

        # RBD -> S3, the RBD copies removed once each S3 copy is verified and recorded; on a
        # terminal (a pseudo-terminal here), with the progress block drawn in place.
        started = time.monotonic()
        third, shown = run_on_terminal([BIN, "--config", conf, "migrate", "--from", "ceph",
                                        "--to", "objects", "--delete-source", "--parallel", "2"],
                                       run_env)
        took = time.monotonic() - started
        check(third == 0, "RBD -> S3 with --delete-source finishes")
        # Only the terminal display ends with a last drawing of the block.
        check(f"overall: {IMAGES}/{IMAGES} image(s)" in shown and "ETA" in shown,
              "on a terminal the progress block is drawn, with rates and ETA")
        if took > 2:
            check("\x1b[" in shown and "/s, ETA" in shown,
                  f"the block is redrawn in place during a {took:.1f} s run")
        good = 0
        for image_id in ids:
            status, body = request(port, "GET", f"/v2/images/{image_id}")
            stores = sorted(json.loads(body).get("stores", "").split(","))
            status, data = request(port, "GET", f"/v2/images/{image_id}/file")
            if stores == ["local", "objects"] and hashlib.md5(data).hexdigest() == sums[image_id]:
                good += 1
            else:
                tap.note(f"{image_id}: stores {stores}, download {status}")
        check(good == IMAGES, f"{good} of {IMAGES} images in local and objects, read back whole")
        listing = subprocess.run(["rbd", "-c", env["GLINT_TEST_CEPH_CONF"], "--id",
                                  env["GLINT_TEST_CEPH_USER"], "ls", env["GLINT_TEST_CEPH_POOL"]],
                                 capture_output=True, text=True).stdout.split()
        left = [name for name in listing if name.split(".")[0] in sums]
        # The kill may leave one unfinished temporary image per running copy: the sweep's.
        check(all(".glint-" in name for name in left),
              f"no RBD image left but temporaries of the killed run ({len(left)})")
        for name in left:
            subprocess.run(["rbd", "-c", env["GLINT_TEST_CEPH_CONF"], "rm",
                            f"{env['GLINT_TEST_CEPH_POOL']}/{name}"], capture_output=True)
    finally:
        for image_id in ids:
            try:
                request(port, "DELETE", f"/v2/images/{image_id}")
            except OSError:
                pass
        server.terminate()
        server.wait()
    print(f"# {IMAGES} images, {tap.failures} failure(s)")
    sys.exit(1 if tap.failures else 0)


main()
