#!/usr/bin/env python3
"""glance-download between two regions through the real clients
(scripts/test-glance-download starts the two servers and points the lab Keystone's catalog at
them: RegionOne's image endpoint is GLINT_URL, RegionTwo's GLINT_REGION_TWO_URL).

alice (member of project alpha) signs in to Keystone as users do, and the image service of
each region is found in her catalog:
  * openstacksdk in RegionTwo: an image with data and properties, and one left queued;
  * in RegionOne, the remote image imported by each client that offers it:
    `openstack image import --method glance-download --remote-region --remote-image`,
    `glance image-create-via-import --import-method glance-download --remote-region
    --remote-image-id`, and openstacksdk's import_image(method="glance-download");
  * each copy: active with the remote image's size, checksum, sha512 and formats, the
    properties [glance_download_properties] names (and not the others), bytes identical;
  * unhappy paths: a remote image that is not active fails its task and leaves the image
    queued; a region the catalog does not have, and a remote id that is not a UUID, are
    refused with 400 and no task.
"""

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True

import scenario as base  # noqa: E402  (alice's sign-in, the CLI runner, results)

R = base.R
RUN = base.RUN
REGION_TWO_URL = os.environ["GLINT_REGION_TWO_URL"].rstrip("/")
# Properties the servers' [glance_download_properties] copies, and one it leaves behind.
COPIED = {"os_distro": "cirros", "hw_scsi_model": "virtio-scsi"}
LEFT = {"glint_origin": "region-two"}


def call(base_url, method, path, body=None):
    """A raw JSON call as alice; (status, body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base_url + path, method=method, data=data)
    req.add_header("X-Auth-Token", base.keystone_token())
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, raw
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def image(base_url, image_id):
    status, raw = call(base_url, "GET", f"/v2/images/{image_id}")
    return json.loads(raw) if status == 200 else {}


def tasks_of(image_id):
    status, raw = call(base.GLINT_URL, "GET", f"/v2/images/{image_id}/tasks")
    return json.loads(raw).get("tasks", []) if status == 200 else []


def wait_ended(image_id, timeout=60):
    """The image once its import has ended (its lock released), with its last task."""
    deadline = time.time() + timeout
    while True:
        body = image(base.GLINT_URL, image_id)
        tasks = tasks_of(image_id)
        ended = tasks and all(t["status"] in ("success", "failure") for t in tasks)
        if (ended and not body.get("os_glance_import_task")) or time.time() > deadline:
            return body, (tasks[0] if tasks else {})
        time.sleep(0.3)


def connection(region):
    import openstack
    return openstack.connection.Connection(
        auth_type="password", region_name=region, interface="public",
        auth={"auth_url": base.KEYSTONE_URL, "username": base.KEYSTONE_USER,
              "password": base.KEYSTONE_PASSWORD, "project_name": base.KEYSTONE_PROJECT,
              "user_domain_id": "default", "project_domain_id": "default"})


def remote_images():
    """In RegionTwo: an active image with data and properties, and a queued one."""
    conn = connection("RegionTwo")
    data = os.urandom(1024 * 1024 + 517)
    made = conn.image.create_image(name=f"{RUN}-remote", data=data, disk_format="raw",
                                   container_format="bare", allow_duplicates=True, wait=True,
                                   **COPIED, **LEFT)
    remote = image(REGION_TWO_URL, made.id)
    R.check(remote.get("status") == "active" and remote.get("size") == len(data),
            "sdk (RegionTwo): the remote image is active with its data", f"{remote}")
    queued = conn.image.create_image(name=f"{RUN}-remote-queued", disk_format="raw",
                                     container_format="bare", allow_duplicates=True)
    return data, remote, queued.id


def check_copy(who, image_id, data, remote):
    body, task = wait_ended(image_id)
    R.check(body.get("status") == "active" and task.get("status") == "success",
            f"{who}: the glance-download ends active, its task successful",
            f"{body.get('status')} {task}")
    R.check(body.get("size") == len(data) and body.get("checksum") == remote.get("checksum")
            and body.get("os_hash_value") == hashlib.sha512(data).hexdigest()
            == remote.get("os_hash_value"),
            f"{who}: size, checksum and sha512 are the remote image's", f"{body}")
    R.check(body.get("disk_format") == remote.get("disk_format")
            and body.get("container_format") == remote.get("container_format"),
            f"{who}: the remote image's formats came along", f"{body}")
    R.check(all(body.get(k) == v for k, v in COPIED.items())
            and all(k not in body for k in LEFT),
            f"{who}: [glance_download_properties] properties copied, the others not",
            f"{body}")
    status, raw = call(base.GLINT_URL, "GET", f"/v2/images/{image_id}/file")
    R.check(status == 200 and raw == data, f"{who}: the copy's bytes are the remote's",
            f"HTTP {status}, {len(raw)} bytes")


def cli(data, remote):
    made = base.osc_ok("cli: image create (for glance-download)", "image", "create",
                       "--disk-format", "raw", "--container-format", "bare", f"{RUN}-cli")
    if made is None:
        return
    base.CREATED.add(made["id"])
    # The CLI sends all_stores_must_succeed=false unless told --disallow-failure, which a
    # single-store Glance refuses with 400 (and the CLI, not raising, exits 0 all the same).
    if base.osc_ok("cli: image import --method glance-download --remote-region "
                   "--remote-image", "image", "import", "--method", "glance-download",
                   "--remote-region", "RegionTwo", "--remote-image", remote["id"],
                   "--remote-service-interface", "public", "--disallow-failure", made["id"],
                   json_out=False) is None:
        return
    check_copy("cli", made["id"], data, remote)


def glanceclient(data, remote):
    exe = os.path.join(os.path.dirname(base.OPENSTACK), "glance")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    name = f"{RUN}-glanceclient"
    master, slave = os.openpty()
    try:
        p = subprocess.run(
            # glanceclient names the interface --os-endpoint-type.
            [exe, *[a if a != "--os-interface" else "--os-endpoint-type"
                    for a in base.auth_args()], "image-create-via-import", "--disk-format", "raw",
             "--container-format", "bare", "--name", name, "--import-method",
             "glance-download", "--remote-region", "RegionTwo", "--remote-image-id",
             remote["id"], "--remote-service-interface", "public"],
            stdin=slave, capture_output=True, text=True, env=env, timeout=base.CMD_TIMEOUT)
    finally:
        os.close(master)
        os.close(slave)
    if not R.check(p.returncode == 0, "glance: image-create-via-import --import-method "
                   "glance-download --remote-region --remote-image-id",
                   f"rc={p.returncode} {p.stderr.strip()}"):
        return
    status, raw = call(base.GLINT_URL, "GET", f"/v2/images?name={name}")
    found = json.loads(raw).get("images", []) if status == 200 else []
    if not R.check(len(found) == 1, "glance: the image is there", f"{found}"):
        return
    base.CREATED.add(found[0]["id"])
    check_copy("glance", found[0]["id"], data, remote)


def sdk(data, remote, queued_remote):
    """openstacksdk 4.22 sends the region and the remote id only with the interface."""
    from openstack import exceptions
    conn = connection("RegionOne")
    made = conn.image.create_image(name=f"{RUN}-sdk", disk_format="raw",
                                   container_format="bare", allow_duplicates=True)
    base.CREATED.add(made.id)
    conn.image.import_image(made, method="glance-download", remote_region="RegionTwo",
                            remote_image_id=remote["id"], remote_service_interface="public")
    check_copy("sdk", made.id, data, remote)

    # A remote image that is not active: accepted, then the task fails and the image waits.
    waiting = conn.image.create_image(name=f"{RUN}-sdk-queued", disk_format="raw",
                                      container_format="bare", allow_duplicates=True)
    base.CREATED.add(waiting.id)
    conn.image.import_image(waiting, method="glance-download", remote_region="RegionTwo",
                            remote_image_id=queued_remote, remote_service_interface="public")
    body, task = wait_ended(waiting.id)
    R.check(task.get("status") == "failure"
            and "status should be active instead of queued" in task.get("message", ""),
            "sdk: a queued remote image fails the task, saying why", f"{task}")
    R.check(body.get("status") == "queued",
            "sdk: the image goes back to queued after the failed download", f"{body}")

    # Refused before anything starts: no task is made.
    for desc, region, remote_id, words in (
            ("a region the catalog does not have", "RegionNine", remote["id"], "RegionNine"),
            ("a remote id that is not a UUID", "RegionTwo", "not-a-uuid", "UUID")):
        refused = conn.image.create_image(name=f"{RUN}-sdk-refused", disk_format="raw",
                                          container_format="bare", allow_duplicates=True)
        base.CREATED.add(refused.id)
        try:
            resp = conn.image.import_image(refused, method="glance-download",
                                           remote_region=region, remote_image_id=remote_id,
                                           remote_service_interface="public")
            exceptions.raise_from_response(resp)
            R.fail(f"sdk: {desc} is refused", f"accepted: {resp}")
        except exceptions.HttpException as e:
            R.check(e.status_code == 400 and words in str(e),
                    f"sdk: {desc} is refused with 400", str(e))
        R.check(not tasks_of(refused.id) and image(base.GLINT_URL, refused.id).get("status")
                == "queued", f"sdk: after {desc}, the image stays queued with no task")


def main():
    print(f"# glance-download {RUN}: RegionOne {base.GLINT_URL}, RegionTwo {REGION_TWO_URL}")
    base.OPENSTACK = base.find_openstack()
    remote_cleanup = []
    try:
        data, remote, queued_remote = remote_images()
        remote_cleanup = [remote.get("id"), queued_remote]
        base.section(cli, data, remote)
        base.section(glanceclient, data, remote)
        base.section(sdk, data, remote, queued_remote)
    except Exception as e:  # noqa: BLE001 - the remote images are the scenario's ground
        R.fail("the remote images (RegionTwo)", f"{type(e).__name__}: {e}")
    finally:
        for image_id in base.CREATED:
            call(base.GLINT_URL, "DELETE", f"/v2/images/{image_id}")
        for image_id in filter(None, remote_cleanup):
            call(REGION_TWO_URL, "DELETE", f"/v2/images/{image_id}")
    print(f"{R.passed} passed, {R.failed} failed")
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
