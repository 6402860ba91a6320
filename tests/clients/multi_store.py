#!/usr/bin/env python3
"""Multi-store scenario: the real OpenStack clients against a Glint server
configured with two filesystem stores, as Glance's ``enabled_backends``:

    [DEFAULT]
    enabled_backends = fast:file, cheap:file
    [glance_store]
    default_backend = fast
    [fast]
    store_description = Fast disks
    weight = 100
    filesystem_store_datadir = $GLINT_STORE_DIR_FAST
    [cheap]
    filesystem_store_datadir = $GLINT_STORE_DIR_CHEAP

scripts/test-clients writes that configuration and runs this script when
GLINT_SCENARIO_STORES=multi. Environment:

    GLINT_URL              the server (default http://127.0.0.1:9292)
    GLINT_STORE_DIR_FAST   the fast store's directory (required)
    GLINT_STORE_DIR_CHEAP  the cheap store's directory (required)
    GLINT_SERVER_LOG       the server's log; when set, the requests a CLI command
                           sent are read from it (what `--store` makes OSC do)

What the pinned clients (scripts/client-venv) offer for multi-store, read from
their source:

* OSC ``image create --store`` is a hidden Image v1 option: the command exits
  with "--store was given, which is an Image v1 option that is no longer
  supported in Image v2" before sending any request (not even discovery).
  OSC chooses a store only through the import API (``image import --store``).
  ``image stores list [--detail]`` reads /v2/info/stores[/detail] and
  ``image delete --store`` sends DELETE /v2/stores/<store>/<image>.
* openstacksdk sends ``X-Image-Meta-Store`` only on POST .../import
  (``import_image(store=...)``); ``create_image(stores=[...])`` switches to
  the import API as well. ``Image.upload`` (PUT .../file) sends no store
  header, and ``create_image(store=...)`` just puts ``"store": ...`` in the
  create body, which Glance and Glint keep as a custom property.
  ``stores(details=True)`` reads /v2/info/stores/detail.

So an upload into a chosen store goes through the SDK's own HTTP adapter
(``conn.image.put``: the SDK's session, endpoint and token handling) with the
header, which is the request glanceclient's ``image-upload --store`` makes;
everything else (show, list, save, download, delete) uses the clients' own
commands and methods.

Output: ``ok - ...`` / ``FAIL - ...`` lines and ``N passed, M failed``, as
tests/clients/scenario.py (whose helpers this reuses); exit status 1 on any
failure.
"""

import hashlib
import json
import os
import re
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ next to the scenarios
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenario as base  # noqa: E402  (the shared helpers, no side effects on import)

R = base.R
RUN = base.RUN.replace("glint-scn-", "glint-ms-")
FAST_DIR = os.environ.get("GLINT_STORE_DIR_FAST", "")
CHEAP_DIR = os.environ.get("GLINT_STORE_DIR_CHEAP", "")
SERVER_LOG = os.environ.get("GLINT_SERVER_LOG", "")
DIRS = {"fast": FAST_DIR, "cheap": CHEAP_DIR}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def on_disk(image_id):
    """{store id: sha256 of the file} for every store directory holding the image."""
    found = {}
    for store, path in DIRS.items():
        p = os.path.join(path, image_id)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                found[store] = sha256(f.read())
    return found


def check_on_disk(image_id, want_store, data, desc):
    got = on_disk(image_id)
    return R.check(got == {want_store: sha256(data)}, desc,
                   f"files: {got} (want only {want_store} with sha256 {sha256(data)[:12]}...)")


def cli_stores(img):
    """OSC shows attributes the SDK does not know (such as ``stores``) in properties."""
    if img.get("stores") is not None:
        return img["stores"]
    return (img.get("properties") or {}).get("stores")


class RequestLog:
    """Requests the server logged while a block ran (needs GLINT_SERVER_LOG)."""

    LINE = re.compile(r"method=(\w+).*?\}: \S+: request(?: refused)? path=(\S+) status=(\d+)")

    def __init__(self):
        self.requests = None

    def __enter__(self):
        self.start = os.path.getsize(SERVER_LOG) if SERVER_LOG else None
        return self

    def __exit__(self, *exc):
        if self.start is None:
            return False
        time.sleep(0.3)  # the request line is written once the response is complete
        with open(SERVER_LOG, "rb") as f:
            f.seek(self.start)
            text = f.read().decode("utf-8", "replace")
        self.requests = [f"{m[1]} {m[2]} -> {m[3]}" for m in self.LINE.finditer(text)]
        return False

    def show(self, what):
        if self.requests is not None:
            print(f"# {what} sent: {'; '.join(self.requests) or 'nothing'}", flush=True)


def http_json(method, path):
    status, body = base.http(method, path)
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, body


def image_named(name):
    status, body = http_json("GET", f"/v2/images?name={name}")
    return [i["id"] for i in body.get("images", [])] if status == 200 else None


# --------------------------------------------------------------------------
# Store discovery

def discovery_scenario():
    status, body = http_json("GET", "/v2/info/stores")
    R.check(status == 200 and [s.get("id") for s in body.get("stores", [])] == ["fast", "cheap"],
            "server: GET /v2/info/stores lists fast and cheap", f"HTTP {status} {body}")

    with RequestLog() as log:
        rows = base.osc_ok("cli: image stores list", "image", "stores", "list")
    log.show("`openstack image stores list`")
    if rows is not None:
        R.check([(r.get("ID"), bool(r.get("Default"))) for r in rows]
                == [("fast", True), ("cheap", False)]
                and rows[0].get("Description") == "Fast disks",
                "cli: image stores list shows fast (default, described) and cheap", f"rows={rows}")
    if log.requests is not None:
        R.check(any(r.startswith("GET /v2/info/stores -> 200") for r in log.requests),
                "cli: image stores list reads GET /v2/info/stores", f"{log.requests}")

    with RequestLog() as log:
        rows = base.osc_ok("cli: image stores list --detail", "image", "stores", "list", "--detail")
    log.show("`openstack image stores list --detail`")
    if rows is not None:
        dirs = {r.get("ID"): (r.get("Properties") or {}).get("data_dir") for r in rows}
        R.equal(dirs, {"fast": FAST_DIR, "cheap": CHEAP_DIR},
                "cli: image stores list --detail shows each store's data_dir")

    conn = base.sdk_connection()
    stores = list(conn.image.stores())
    R.check([(s.id, bool(s.is_default)) for s in stores] == [("fast", True), ("cheap", False)]
            and stores[0].description == "Fast disks" and stores[1].description is None,
            "sdk: stores() lists fast (default, described) and cheap",
            f"{[(s.id, s.is_default, s.description) for s in stores]}")
    detail = list(conn.image.stores(details=True))
    R.equal({s.id: (s.properties or {}).get("data_dir") for s in detail},
            {"fast": FAST_DIR, "cheap": CHEAP_DIR},
            "sdk: stores(details=True) has each store's properties (data_dir)")
    # The SDK's Store resource has no type/weight attributes; the adapter shows them.
    resp = conn.image.get("/info/stores/detail")
    body = resp.json() if resp.status_code == 200 else {}
    got = {s.get("id"): (s.get("type"), s.get("weight")) for s in body.get("stores", [])}
    R.equal(got, {"fast": ("file", 100), "cheap": ("file", 0)},
            "sdk: /info/stores/detail (adapter) has type and weight")

    resp = conn.image.post("/images", json={"name": f"{RUN}-hdr", "disk_format": "raw",
                                            "container_format": "bare"})
    if R.check(resp.status_code == 201, "sdk: POST /images (adapter)",
               f"HTTP {resp.status_code} {resp.text[:200]}"):
        base.CREATED.add(resp.json()["id"])
        ids = resp.headers.get("OpenStack-image-store-ids") or ""
        R.equal(sorted(s.strip() for s in ids.split(",")), ["cheap", "fast"],
                "sdk: POST /images answers OpenStack-image-store-ids with both stores")


# --------------------------------------------------------------------------
# The openstack CLI

def cli_scenario(tmp):
    data = os.urandom(512 * 1024 + 11)
    src = os.path.join(tmp, "cli.raw")
    with open(src, "wb") as f:
        f.write(data)
    common = ["--disk-format", "raw", "--container-format", "bare", "--file", src]

    # --store: rejected by OSC itself (an Image v1 option), nothing is created.
    name = f"{RUN}-cli-store"
    with RequestLog() as log:
        rc, _, err = base.osc("image", "create", "--store", "cheap", *common, name)
    log.show("`openstack image create --store cheap --file ...`")
    R.check(rc != 0 and "--store" in err and "Image v1" in err,
            "cli: image create --store is refused by the client (an Image v1 option)",
            f"rc={rc} stderr={err}")
    if log.requests is not None:
        R.equal(log.requests, [], "cli: image create --store sends no request at all")
    R.equal(image_named(name), [], "cli: image create --store created no image")

    # Without --store the data lands in the default store.
    name = f"{RUN}-cli-fast"
    img = base.osc_ok("cli: image create --file (no store)", "image", "create", *common, name)
    if img is None:
        return
    fast_id = img["id"]
    base.CREATED.add(fast_id)
    R.check(img.get("status") == "active" and img.get("size") == len(data),
            "cli: image create --file -> active with its size",
            f"status={img.get('status')} size={img.get('size')}")
    R.equal(cli_stores(img), "fast", "cli: image create --file reports stores=fast (the default)")
    check_on_disk(fast_id, "fast", data, "cli: the uploaded bytes are a file in the fast store only")

    # An image in the cheap store, uploaded through the SDK's adapter (OSC cannot
    # choose a store on upload), then read with the CLI.
    cheap_data = os.urandom(256 * 1024 + 5)
    cheap_id = sdk_upload_to(base.sdk_connection(), f"{RUN}-cli-cheap", cheap_data, "cheap")
    if cheap_id is None:
        return
    s = base.osc_ok("cli: image show (cheap image)", "image", "show", f"{RUN}-cli-cheap")
    if s is not None:
        R.check(s.get("id") == cheap_id and cli_stores(s) == "cheap" and s.get("status") == "active",
                "cli: image show -f json has stores=cheap",
                f"id={s.get('id')} stores={cli_stores(s)!r} status={s.get('status')}")
    s = base.osc_ok("cli: image show (fast image)", "image", "show", name)
    if s is not None:
        R.equal(cli_stores(s), "fast", "cli: image show -f json has stores=fast")

    for label, image_id, want in (("fast", fast_id, data), ("cheap", cheap_id, cheap_data)):
        dst = os.path.join(tmp, f"save-{label}.raw")
        with RequestLog() as log:
            saved = base.osc_ok(f"cli: image save ({label})", "image", "save", "--file", dst,
                                image_id, json_out=False)
        log.show(f"`openstack image save` ({label})")
        if saved is not None:
            with open(dst, "rb") as f:
                got = f.read()
            R.equal(sha256(got), sha256(want), f"cli: image save from {label} returns the same bytes")

    rows = base.osc_ok("cli: image list", "image", "list")
    if rows is not None:
        got = set(base.ids(rows))
        R.check({fast_id, cheap_id} <= got, "cli: image list shows the images of both stores",
                f"missing {({fast_id, cheap_id} - got)}")
    rows = base.osc_ok("cli: image list --long", "image", "list", "--long")
    if rows is not None:
        by_id = {r["ID"]: r for r in rows}
        ok = all(i in by_id and by_id[i].get("Size") == len(d) and by_id[i].get("Status") == "active"
                 and by_id[i].get("Checksum") == hashlib.md5(d).hexdigest()
                 for i, d in ((fast_id, data), (cheap_id, cheap_data)))
        R.check(ok, "cli: image list --long shows both images with size and checksum",
                f"{[by_id.get(i) for i in (fast_id, cheap_id)]}")

    # `image delete --store` is DELETE /v2/stores/<store>/<image> (Image API 2.10).
    # Whatever the server answers, the only copy of an image must survive it.
    with RequestLog() as log:
        rc, _, err = base.osc("image", "delete", "--store", "cheap", cheap_id, json_out=False)
    log.show("`openstack image delete --store cheap`")
    status, body = http_json("GET", f"/v2/images/{cheap_id}")
    R.check(rc != 0 and status == 200 and body.get("status") == "active"
            and on_disk(cheap_id) == {"cheap": sha256(cheap_data)},
            "cli: image delete --store of the image's only store fails and keeps the data",
            f"rc={rc} stderr={err!r} image HTTP {status} files={on_disk(cheap_id)}")

    if base.osc_ok("cli: image delete (both stores' images)", "image", "delete", fast_id, cheap_id,
                   json_out=False) is not None:
        R.check(on_disk(fast_id) == {} and on_disk(cheap_id) == {},
                "cli: image delete removes the files from the fast and the cheap store",
                f"fast image: {on_disk(fast_id)}, cheap image: {on_disk(cheap_id)}")


# --------------------------------------------------------------------------
# openstacksdk

def sdk_upload_to(conn, name, data, store):
    """create_image without data, then PUT .../file with X-Image-Meta-Store."""
    from openstack import exceptions
    img = conn.image.create_image(name, disk_format="raw", container_format="bare",
                                  allow_duplicates=True)
    base.CREATED.add(img.id)
    resp = conn.image.put(f"/images/{img.id}/file", data=data,
                          headers={"Content-Type": "application/octet-stream",
                                   "X-Image-Meta-Store": store})
    try:
        exceptions.raise_from_response(resp)
    except exceptions.HttpException as e:
        R.fail(f"sdk: upload of {name} with X-Image-Meta-Store: {store}", e)
        return None
    R.equal(resp.status_code, 204, f"sdk: upload of {name.removeprefix(RUN + '-')} with "
                                   f"X-Image-Meta-Store: {store} is a 204")
    return img.id


def sdk_scenario():
    from openstack import exceptions
    conn = base.sdk_connection()
    img_api = conn.image

    data = os.urandom(300 * 1024 + 1)
    cheap_id = sdk_upload_to(conn, f"{RUN}-sdk-cheap", data, "cheap")
    if cheap_id is not None:
        got = img_api.get_image(cheap_id)
        R.check(got.status == "active" and got.size == len(data)
                and got.checksum == hashlib.md5(data).hexdigest()
                and got.properties.get("stores") == "cheap",
                "sdk: get_image -> active, size, checksum, stores=cheap",
                f"status={got.status} size={got.size} stores={got.properties.get('stores')!r}")
        check_on_disk(cheap_id, "cheap", data, "sdk: the data is a file in the cheap store only")
        R.equal(sha256(img_api.download_image(cheap_id).content), sha256(data),
                "sdk: download_image from cheap returns the same bytes")
        R.equal(sha256(img_api.download_image(cheap_id, store_preferences=["fast", "cheap"]).content),
                sha256(data), "sdk: download_image(store_preferences=[fast, cheap]) (?prefer=)")

    # The SDK's own data call (PUT .../file without a store header): the default store.
    data2 = os.urandom(64 * 1024 + 3)
    img = img_api.create_image(f"{RUN}-sdk-default", data=data2, disk_format="raw",
                               container_format="bare", allow_duplicates=True,
                               validate_checksum=True)
    base.CREATED.add(img.id)
    got = img_api.get_image(img.id)
    R.check(got.status == "active" and got.properties.get("stores") == "fast",
            "sdk: create_image(data=...) lands in the default store",
            f"status={got.status} stores={got.properties.get('stores')!r}")
    check_on_disk(img.id, "fast", data2, "sdk: create_image(data=...) wrote a file in fast only")

    # create_image(store=...) is not a store choice: "store" goes into the create
    # body, the server keeps it as a custom property, the data goes to the default.
    img = img_api.create_image(f"{RUN}-sdk-store-kw", data=data2, disk_format="raw",
                               container_format="bare", allow_duplicates=True, store="cheap")
    base.CREATED.add(img.id)
    got = img_api.get_image(img.id)
    R.check(got.properties.get("stores") == "fast" and got.store == "cheap",
            "sdk: create_image(store='cheap') keeps 'store' as a property, data in fast",
            f"stores={got.properties.get('stores')!r} store={got.store!r}")

    # create_image(stores=[...]) goes through the import API (advertised by
    # OpenStack-image-import-methods): staged, then imported into the named store.
    name = f"{RUN}-sdk-stores-kw"
    img = img_api.create_image(name, data=data2, disk_format="raw", container_format="bare",
                               allow_duplicates=True, stores=["cheap"])
    base.CREATED.add(img.id)
    deadline = time.time() + 60
    got = img_api.get_image(img.id)
    while got.status != "active" and time.time() < deadline:
        time.sleep(0.2)
        got = img_api.get_image(img.id)
    R.check(got.status == "active" and got.properties.get("stores") == "cheap",
            "sdk: create_image(stores=['cheap']) imports into cheap",
            f"status={got.status} stores={got.properties.get('stores')!r}")
    check_on_disk(img.id, "cheap", data2, "sdk: create_image(stores=['cheap']) wrote cheap only")

    # An unknown store: 400, the message names the store, the image stays queued.
    img = img_api.create_image(f"{RUN}-sdk-unknown", disk_format="raw", container_format="bare",
                               allow_duplicates=True)
    base.CREATED.add(img.id)
    resp = img_api.put(f"/images/{img.id}/file", data=data2,
                       headers={"Content-Type": "application/octet-stream",
                                "X-Image-Meta-Store": "nosuch"})
    try:
        exceptions.raise_from_response(resp)
        R.fail("sdk: upload to an unknown store fails", f"HTTP {resp.status_code}")
    except exceptions.HttpException as e:
        R.equal(e.status_code, 400, "sdk: upload to an unknown store is a 400")
        msg = str(e).replace("&#x27;", "'")
        R.check("Unknown scheme 'nosuch' found in URI" in msg,
                "sdk: the error the SDK raises names the unknown store", str(e))
    got = img_api.get_image(img.id)
    R.check(got.status == "queued" and got.size is None and on_disk(img.id) == {},
            "sdk: after the unknown-store upload the image is still queued, no data anywhere",
            f"status={got.status} size={got.size} files={on_disk(img.id)}")

    if cheap_id is not None:
        img_api.delete_image(cheap_id, ignore_missing=False)
        R.equal(on_disk(cheap_id), {}, "sdk: delete_image removes the file from the cheap store")


# --------------------------------------------------------------------------

def main():
    print(f"# multi-store scenario {RUN} against {base.GLINT_URL}")
    if not (FAST_DIR and CHEAP_DIR):
        sys.exit("multi_store: set GLINT_STORE_DIR_FAST and GLINT_STORE_DIR_CHEAP "
                 "(scripts/test-clients does, with GLINT_SCENARIO_STORES=multi)")
    if base.preflight():
        base.OPENSTACK = base.find_openstack()
        with tempfile.TemporaryDirectory(prefix="glint-multi-store-") as tmp:
            try:
                base.section(discovery_scenario)
                base.section(cli_scenario, tmp)
                base.section(sdk_scenario)
            finally:
                base.cleanup()
    print(f"{R.passed} passed, {R.failed} failed")
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
