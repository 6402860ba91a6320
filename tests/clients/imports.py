#!/usr/bin/env python3
"""Interoperable import through the real clients, against a multi-store Glint server
(scripts/test-clients with GLINT_SCENARIO_STORES=multi runs it after multi_store.py).

Every import method a client offers, as users run them:
  * `openstack image create --import --file` (create, stage, glance-direct import),
  * `openstack image stage` + `openstack image import --method glance-direct --store`,
  * `openstack image import --method web-download --uri` from a local web server,
  * `openstack image import --method copy-image --store` into the second store,
  * `openstack image task list` / `task show`,
  * openstacksdk: create_image(use_import=True), import_image(method=web-download and
    copy-image), tasks(); and a web-download refused by the URL filter;
  * python-glanceclient: `glance image-create-via-import --file --stores`,
    `glance image-import --import-method web-download` and `copy-image --stores`.
The bytes are checked on disk in each store and by download.
"""

import functools
import hashlib
import http.server
import os
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True

import multi_store as ms  # noqa: E402  (on-disk helpers, the server's two stores)
import scenario as base  # noqa: E402

R = base.R
RUN = base.RUN


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class WebServer:
    """A plain HTTP server on loopback serving `directory` (web-download's remote)."""

    def __init__(self, directory):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
        handler.log_message = lambda *a: None
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()


def wait_for(image_id, want, timeout=60):
    """The image's JSON once its status is `want` (or the last one seen)."""
    deadline = time.time() + timeout
    body = {}
    while time.time() < deadline:
        status, body = ms.http_json("GET", f"/v2/images/{image_id}")
        if status == 200 and body.get("status") == want and not body.get("os_glance_import_task"):
            return body
        time.sleep(0.2)
    return body


def last_task(image_id):
    status, body = ms.http_json("GET", f"/v2/images/{image_id}/tasks")
    tasks = body.get("tasks", []) if status == 200 else []
    return tasks[-1] if tasks else {}


def write(tmp, name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def cli_imports(tmp):
    common = ["--disk-format", "raw", "--container-format", "bare"]

    # create --import --file: create, stage, glance-direct import.
    data = os.urandom(700 * 1024 + 3)
    src = write(tmp, "direct.raw", data)
    img = base.osc_ok("cli: image create --import --file", "image", "create", "--import",
                      *common, "--file", src, f"{RUN}-import-direct")
    if img is None:
        return
    direct_id = img["id"]
    base.CREATED.add(direct_id)
    done = wait_for(direct_id, "active")
    R.check(done.get("status") == "active" and done.get("size") == len(data)
            and done.get("checksum") == hashlib.md5(data).hexdigest(),
            "cli: image create --import --file ends active with size and checksum",
            f"{done}")
    ms.check_on_disk(direct_id, "fast", data, "cli: glance-direct wrote the default store only")

    # stage, then import into a named store.
    data2 = os.urandom(300 * 1024 + 9)
    img = base.osc_ok("cli: image create (for stage)", "image", "create", *common,
                      f"{RUN}-import-staged")
    if img is None:
        return
    staged_id = img["id"]
    base.CREATED.add(staged_id)
    if base.osc_ok("cli: image stage --file", "image", "stage", "--file",
                   write(tmp, "staged.raw", data2), staged_id, json_out=False) is None:
        return
    status, body = ms.http_json("GET", f"/v2/images/{staged_id}")
    R.check(body.get("status") == "uploading" and body.get("size") == len(data2),
            "cli: image stage leaves the image uploading with its size", f"HTTP {status} {body}")
    base.osc_ok("cli: image import --method glance-direct --store cheap --wait", "image", "import",
                "--method", "glance-direct", "--store", "cheap", "--wait", staged_id)
    done = wait_for(staged_id, "active")
    R.equal(done.get("stores"), "cheap", "cli: glance-direct --store cheap lands in cheap")
    ms.check_on_disk(staged_id, "cheap", data2, "cli: the staged bytes are a file in cheap only")

    # web-download from a web server on loopback (the server's URL filter allows it).
    data3 = os.urandom(900 * 1024 + 1)
    write(tmp, "web.raw", data3)
    with WebServer(tmp) as web:
        img = base.osc_ok("cli: image create (for web-download)", "image", "create", *common,
                          f"{RUN}-import-web")
        if img is None:
            return
        web_id = img["id"]
        base.CREATED.add(web_id)
        base.osc_ok("cli: image import --method web-download --uri", "image", "import",
                    "--method", "web-download", "--uri", f"{web.url}/web.raw", web_id)
        done = wait_for(web_id, "active")
    R.check(done.get("status") == "active" and done.get("os_hash_value")
            == hashlib.sha512(data3).hexdigest(),
            "cli: web-download ends active with the remote bytes' sha512", f"{done}")
    ms.check_on_disk(web_id, "fast", data3, "cli: web-download wrote the default store")

    # copy-image into the second store.
    # --store takes several values: the image goes before it.
    base.osc_ok("cli: image import --method copy-image --store cheap", "image", "import",
                "--method", "copy-image", direct_id, "--store", "cheap")
    done = wait_for(direct_id, "active")
    deadline = time.time() + 60
    while "cheap" not in (done.get("stores") or "") and time.time() < deadline:
        time.sleep(0.2)
        _, done = ms.http_json("GET", f"/v2/images/{direct_id}")
    R.equal(sorted((done.get("stores") or "").split(",")), ["cheap", "fast"],
            "cli: copy-image adds the cheap store")
    R.equal(ms.on_disk(direct_id), {"fast": sha256(data), "cheap": sha256(data)},
            "cli: copy-image's copy has the same bytes")

    rows = base.osc_ok("cli: image task list", "image", "task", "list")
    if rows is not None:
        mine = {r.get("ID") for r in rows}
        want = {last_task(i).get("id") for i in (direct_id, staged_id, web_id)}
        R.check(want <= mine, "cli: image task list shows the imports' tasks",
                f"missing {want - mine}")
    task_id = last_task(web_id).get("id")
    task = base.osc_ok("cli: image task show", "image", "task", "show", task_id or "none")
    if task is not None:
        R.check(task.get("status") == "success" and task.get("type") == "api_image_import",
                "cli: image task show has the web-download's successful task", f"{task}")


def sdk_imports(tmp):
    conn = base.sdk_connection()
    data = os.urandom(400 * 1024 + 7)
    img = conn.image.create_image(name=f"{RUN}-sdk-import", filename=write(tmp, "sdk.raw", data),
                                  disk_format="raw", container_format="bare", use_import=True,
                                  allow_duplicates=True)
    base.CREATED.add(img.id)
    done = wait_for(img.id, "active")
    R.check(done.get("status") == "active" and done.get("size") == len(data),
            "sdk: create_image(use_import=True) ends active", f"{done}")

    data2 = os.urandom(200 * 1024)
    write(tmp, "sdk-web.raw", data2)
    with WebServer(tmp) as web:
        web_img = conn.image.create_image(name=f"{RUN}-sdk-web", disk_format="raw",
                                          container_format="bare", allow_duplicates=True)
        base.CREATED.add(web_img.id)
        conn.image.import_image(web_img, method="web-download", uri=f"{web.url}/sdk-web.raw")
        done = wait_for(web_img.id, "active")
    R.check(done.get("status") == "active" and done.get("size") == len(data2),
            "sdk: import_image(method=web-download) ends active", f"{done}")

    conn.image.import_image(web_img, method="copy-image", stores=["cheap"])
    deadline = time.time() + 60
    while time.time() < deadline:
        _, done = ms.http_json("GET", f"/v2/images/{web_img.id}")
        if "cheap" in (done.get("stores") or ""):
            break
        time.sleep(0.2)
    R.check("cheap" in (done.get("stores") or ""), "sdk: import_image(method=copy-image) adds cheap",
            f"{done}")

    tasks = [t.id for t in conn.image.tasks()]
    R.check(last_task(web_img.id).get("id") in tasks, "sdk: tasks() lists the import's task",
            f"{tasks}")

    # Refused by the URL filter: the cloud's own metadata service is never fetched.
    from openstack import exceptions
    refused = conn.image.create_image(name=f"{RUN}-sdk-refused", disk_format="raw",
                                      container_format="bare", allow_duplicates=True)
    base.CREATED.add(refused.id)
    # import_image hands back the response rather than raising.
    try:
        resp = conn.image.import_image(refused, method="web-download",
                                       uri="http://169.254.169.254/latest/meta-data/")
        exceptions.raise_from_response(resp)
        R.fail("sdk: web-download of the metadata service is refused", f"accepted: {resp}")
    except exceptions.HttpException as e:
        R.check(e.status_code == 400 and "does not pass filtering" in str(e),
                "sdk: web-download of the metadata service is refused (400)", str(e))
    _, body = ms.http_json("GET", f"/v2/images/{refused.id}")
    R.check(body.get("status") == "queued" and not last_task(refused.id),
            "sdk: the refused image stays queued, no task made", f"{body}")


def glance(*args):
    """Runs the `glance` CLI of the client venv (stdin a terminal, as for a user: the CLI
    reads image data from a stdin that is not one); answers (rc, stdout, stderr)."""
    import subprocess
    exe = os.path.join(os.path.dirname(base.OPENSTACK), "glance")
    master, slave = os.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    try:
        p = subprocess.run([exe, "--os-image-url", base.GLINT_URL, "--os-auth-token", "none",
                            *args], stdin=slave, capture_output=True, text=True, env=env,
                           timeout=120)
    finally:
        os.close(master)
        os.close(slave)
    return p.returncode, p.stdout, p.stderr.strip()


def glanceclient_imports(tmp):
    data = os.urandom(350 * 1024 + 1)
    name = f"{RUN}-glance-direct"
    rc, out, err = glance("image-create-via-import", "--disk-format", "raw", "--container-format",
                          "bare", "--name", name, "--file", write(tmp, "gc.raw", data),
                          "--stores", "cheap")
    if not R.check(rc == 0, "glance: image-create-via-import --file --stores cheap", f"rc={rc} {err}"):
        return
    found = ms.image_named(name)
    if not R.check(len(found) == 1, "glance: the image is there", f"{found}"):
        return
    image_id = found[0]
    base.CREATED.add(image_id)
    done = wait_for(image_id, "active")
    R.check(done.get("stores") == "cheap" and done.get("size") == len(data),
            "glance: glance-direct through glanceclient lands in cheap", f"{done}")
    ms.check_on_disk(image_id, "cheap", data, "glance: the bytes are a file in cheap only")

    rc, _, err = glance("image-import", image_id, "--import-method", "copy-image",
                        "--stores", "fast")
    R.check(rc == 0, "glance: image-import --import-method copy-image --stores fast", err)
    deadline = time.time() + 60
    while time.time() < deadline and "fast" not in (done.get("stores") or ""):
        time.sleep(0.2)
        _, done = ms.http_json("GET", f"/v2/images/{image_id}")
    R.equal(sorted((done.get("stores") or "").split(",")), ["cheap", "fast"],
            "glance: copy-image through glanceclient adds fast")

    data2 = os.urandom(120 * 1024)
    write(tmp, "gc-web.raw", data2)
    img = base.osc_ok("cli: image create (for glance web-download)", "image", "create",
                      "--disk-format", "raw", "--container-format", "bare", f"{RUN}-glance-web")
    if img is None:
        return
    base.CREATED.add(img["id"])
    with WebServer(tmp) as web:
        rc, _, err = glance("image-import", img["id"], "--import-method", "web-download",
                            "--uri", f"{web.url}/gc-web.raw")
        R.check(rc == 0, "glance: image-import --import-method web-download --uri", err)
        done = wait_for(img["id"], "active")
    R.check(done.get("status") == "active" and done.get("size") == len(data2),
            "glance: web-download through glanceclient ends active", f"{done}")


def main():
    print(f"# import scenario {RUN} against {base.GLINT_URL}")
    if base.preflight():
        base.OPENSTACK = base.find_openstack()
        with tempfile.TemporaryDirectory(prefix="glint-imports-") as tmp:
            try:
                base.section(cli_imports, tmp)
                base.section(sdk_imports, tmp)
                base.section(glanceclient_imports, tmp)
            finally:
                base.cleanup()
    print(f"{R.passed} passed, {R.failed} failed")
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
