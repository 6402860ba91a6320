"""Adopt-and-rollback: real Glance 33 writes a database, Glint serves it in place and writes to
it, then real Glance serves it again. Run by scripts/test-glance-adoption, one phase at a time:

  adoption.py glance-writes URL STATE   Glance makes images; STATE records what it showed
  adoption.py glint URL STATE           Glint serves them unchanged, then writes its own
  adoption.py glance-reads URL STATE    Glance serves everything, Glint's writes included
  adoption.py glint-fresh URL STATE     Glint writes images into a database it created
  adoption.py glance-fresh URL STATE    Glance serves them (its db_sync found nothing to do)

Only the standard library: the phases talk plain HTTP with trusted identity headers.
"""

import hashlib
import json
import sys
import urllib.error
import urllib.request

PROJECT = "p-adopt"
HEADERS = {
    "X-Identity-Status": "Confirmed",
    "X-User-Id": "u-adopt",
    "X-Project-Id": PROJECT,
    "X-Tenant-Id": PROJECT,
    "X-Roles": "admin,member,reader",
}
failures = 0
passed = 0


def check(ok, what):
    global failures, passed
    if ok:
        passed += 1
        print(f"ok - {what}")
    else:
        failures += 1
        print(f"not ok - {what}")


def call(base, method, path, body=None, content_type=None, raw=False, project=PROJECT):
    headers = dict(HEADERS)
    headers["X-Project-Id"] = headers["X-Tenant-Id"] = project
    if project != PROJECT:
        headers["X-Roles"] = "member,reader"
    data = None
    if body is not None:
        if isinstance(body, (bytes, bytearray)):
            data = bytes(body)
            headers["Content-Type"] = content_type or "application/octet-stream"
        else:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type or "application/json"
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        payload = error.read()
        status = error.code
    if raw:
        return status, payload
    try:
        return status, (json.loads(payload) if payload.strip() else None)
    except ValueError:
        return status, payload.decode(errors="replace")


def data_of(n):
    """Deterministic image bytes: n KiB of a repeating pattern with n in it."""
    return (f"image-{n}-".encode() * 200)[: 1024 * n]


def comparable(image):
    """An image as shown, tags as the set they are (Glance returns them in no fixed order)."""
    image = dict(image or {})
    if isinstance(image.get("tags"), list):
        image["tags"] = sorted(image["tags"])
    return image


def digests(data):
    return hashlib.md5(data).hexdigest(), hashlib.sha512(data).hexdigest()


def serves_as_shown(base, state, view, who, whose):
    """Every image of STATE shows as `view` recorded it, and its data downloads whole."""
    for name, entry in state["images"].items():
        status, shown = call(base, "GET", f"/v2/images/{entry['id']}")
        check(status == 200, f"{who}: show {name} ({status})")
        expected, shown = comparable(entry[view]), comparable(shown)
        differing = sorted(k for k in set(expected) | set(shown or {})
                           if (shown or {}).get(k) != expected.get(k))
        check(not differing, f"{who}: {name} shows what {whose} showed"
              + (f" (differs: {[(k, expected.get(k), (shown or {}).get(k)) for k in differing]})" if differing else ""))
        if entry["kib"]:
            status, body = call(base, "GET", f"/v2/images/{entry['id']}/file", raw=True)
            md5, sha512 = digests(body)
            check(status == 200 and body == data_of(entry["kib"]) and md5 == expected["checksum"]
                  and sha512 == expected["os_hash_value"], f"{who}: download {name} matches {whose}'s checksums")


def record_views(base, state, view):
    for entry in state["images"].values():
        entry[view] = call(base, "GET", f"/v2/images/{entry['id']}")[1]


def glance_writes(base, state_path):
    state = {"images": {}}
    specs = [
        ("with-data", {"disk_format": "raw", "container_format": "bare", "min_ram": 512,
                       "os_distro": "debian", "hw_qemu_guest_agent": "yes", "tags": ["a", "b"]}, 8),
        # raw: Glance 33 checks that qcow2 data really is qcow2.
        ("public", {"visibility": "public", "disk_format": "raw", "container_format": "bare"}, 3),
        ("queued", {"visibility": "private", "lab_prop": "x", "disk_format": "raw", "container_format": "bare"}, 0),
        ("tag-churn", {"disk_format": "raw", "container_format": "bare", "tags": ["gone", "stays"],
                       "prop_gone": "1"}, 2),
    ]
    for name, extra, kib in specs:
        status, image = call(base, "POST", "/v2/images", dict(name=name, **extra))
        check(status == 201, f"glance: create {name} ({status})")
        if kib:
            status, _ = call(base, "PUT", f"/v2/images/{image['id']}/file", data_of(kib))
            check(status == 204, f"glance: upload {name} ({status})")
        state["images"][name] = {"id": image["id"], "kib": kib}
    churn = state["images"]["tag-churn"]["id"]
    # Removed through Glance: soft-deleted rows Glint must not show.
    status, _ = call(base, "DELETE", f"/v2/images/{churn}/tags/gone")
    check(status == 204, "glance: remove a tag")
    status, _ = call(base, "PATCH", f"/v2/images/{churn}", [{"op": "remove", "path": "/prop_gone"}],
                     "application/openstack-images-v2.1-json-patch")
    check(status == 200, "glance: remove a property")
    # Shared with another project, which accepts it: a membership Glint must honour.
    status, image = call(base, "POST", "/v2/images", {"name": "shared", "visibility": "shared"})
    state["images"]["shared"] = {"id": image["id"], "kib": 0}
    status, _ = call(base, "POST", f"/v2/images/{image['id']}/members", {"member": "p-member"})
    check(status == 200, f"glance: add a member ({status})")
    status, _ = call(base, "PUT", f"/v2/images/{image['id']}/members/p-member", {"status": "accepted"},
                     project="p-member")
    check(status == 200, f"glance: the member accepts ({status})")
    status, image = call(base, "POST", "/v2/images", {"name": "deleted-by-glance"})
    call(base, "PUT", f"/v2/images/{image['id']}/file", data_of(1))
    status, _ = call(base, "DELETE", f"/v2/images/{image['id']}")
    check(status == 204, "glance: delete an image")
    state["deleted_by_glance"] = image["id"]
    record_views(base, state, "glance_view")
    with open(state_path, "w") as f:
        json.dump(state, f)


def glint(base, state_path):
    with open(state_path) as f:
        state = json.load(f)
    serves_as_shown(base, state, "glance_view", "glint", "Glance")
    status, _ = call(base, "GET", f"/v2/images/{state['deleted_by_glance']}")
    check(status == 404, "glint: the image Glance deleted is gone")
    status, listing = call(base, "GET", "/v2/images?sort=name:asc")
    names = [i["name"] for i in (listing or {}).get("images", [])]
    check(names == sorted(state["images"]), f"glint: list shows Glance's images ({names})")
    status, listing = call(base, "GET", "/v2/images?tag=gone")
    check(status == 200 and listing["images"] == [], "glint: a tag Glance removed matches nothing")
    shared = state["images"]["shared"]["id"]
    status, listing = call(base, "GET", "/v2/images", project="p-member")
    check(sorted(i["name"] for i in listing["images"]) == ["public", "shared"],
          f"glint: the accepted member sees the shared image ({[i['name'] for i in listing['images']]})")
    status, _ = call(base, "GET", f"/v2/images/{shared}", project="p-member")
    check(status == 200, "glint: the member shows it")
    status, _ = call(base, "GET", f"/v2/images/{shared}", project="p-stranger")
    check(status == 404, "glint: another project does not")
    status, listing = call(base, "GET", "/v2/images?os_distro=debian&tag=a")
    check([i["name"] for i in listing["images"]] == ["with-data"], "glint: property and tag filters")

    # Glint writes.
    with_data = state["images"]["with-data"]["id"]
    status, _ = call(base, "PATCH", f"/v2/images/{with_data}",
                     [{"op": "add", "path": "/glint_prop", "value": "from-glint"},
                      {"op": "remove", "path": "/hw_qemu_guest_agent"},
                      {"op": "replace", "path": "/min_ram", "value": 1024}],
                     "application/openstack-images-v2.1-json-patch")
    check(status == 200, "glint: PATCH an image Glance made")
    status, _ = call(base, "PUT", f"/v2/images/{with_data}/tags/from-glint")
    check(status == 204, "glint: add a tag")
    status, _ = call(base, "DELETE", f"/v2/images/{with_data}/tags/a")
    check(status == 204, "glint: remove a tag Glance added")
    queued = state["images"]["queued"]["id"]
    status, _ = call(base, "PUT", f"/v2/images/{queued}/file", data_of(5))
    check(status == 204, "glint: upload into an image Glance created")
    status, image = call(base, "POST", "/v2/images", {"name": "made-by-glint", "disk_format": "raw",
                                                      "container_format": "bare", "tags": ["g"], "glint_only": "y"})
    check(status == 201, "glint: create an image")
    status, _ = call(base, "PUT", f"/v2/images/{image['id']}/file", data_of(6))
    check(status == 204, "glint: upload its data")
    state["images"]["made-by-glint"] = {"id": image["id"], "kib": 6}
    state["images"]["queued"]["kib"] = 5
    public = state["images"]["public"]["id"]
    status, _ = call(base, "DELETE", f"/v2/images/{public}")
    check(status == 204, "glint: delete an image Glance made")
    state["deleted_by_glint"] = public
    del state["images"]["public"]
    record_views(base, state, "glint_view")
    with open(state_path, "w") as f:
        json.dump(state, f)


def glance_reads(base, state_path):
    with open(state_path) as f:
        state = json.load(f)
    serves_as_shown(base, state, "glint_view", "glance again", "Glint")
    status, _ = call(base, "GET", f"/v2/images/{state['deleted_by_glint']}")
    check(status == 404, "glance again: the image Glint deleted is gone")
    status, listing = call(base, "GET", "/v2/images?tag=a")
    check(status == 200 and listing["images"] == [], "glance again: the tag Glint removed is gone")
    # Glance still writes: tags, properties, and a new image with data.
    with_data = state["images"]["with-data"]["id"]
    status, _ = call(base, "PUT", f"/v2/images/{with_data}/tags/a")
    check(status == 204, "glance again: re-add a tag Glint removed")
    status, _ = call(base, "PATCH", f"/v2/images/{with_data}",
                     [{"op": "add", "path": "/hw_qemu_guest_agent", "value": "no"}],
                     "application/openstack-images-v2.1-json-patch")
    check(status == 200, "glance again: re-add a property Glint removed")
    status, shown = call(base, "GET", f"/v2/images/{with_data}")
    check(sorted(shown["tags"]) == ["a", "b", "from-glint"] and shown["hw_qemu_guest_agent"] == "no",
          "glance again: sees both writers' tags and properties")
    status, image = call(base, "POST", "/v2/images", {"name": "after-rollback", "disk_format": "raw",
                                                      "container_format": "bare"})
    status2, _ = call(base, "PUT", f"/v2/images/{image['id']}/file", data_of(1))
    check(status == 201 and status2 == 204, "glance again: create and upload")


def glint_fresh(base, state_path):
    state = {"images": {}}
    status, image = call(base, "POST", "/v2/images", {"name": "fresh", "disk_format": "raw",
                                                      "container_format": "bare", "tags": ["t1", "t2"],
                                                      "os_distro": "fedora", "min_disk": 2})
    check(status == 201, "glint: create in its own database")
    status, _ = call(base, "PUT", f"/v2/images/{image['id']}/file", data_of(4))
    check(status == 204, "glint: upload")
    call(base, "DELETE", f"/v2/images/{image['id']}/tags/t1")
    status, queued = call(base, "POST", "/v2/images", {"name": "fresh-queued", "visibility": "community"})
    state["images"] = {"fresh": {"id": image["id"], "kib": 4}, "fresh-queued": {"id": queued["id"], "kib": 0}}
    record_views(base, state, "glint_view")
    with open(state_path, "w") as f:
        json.dump(state, f)


def glance_fresh(base, state_path):
    with open(state_path) as f:
        state = json.load(f)
    serves_as_shown(base, state, "glint_view", "glance", "Glint")


def main():
    phase, base, state_path = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3]
    {"glance-writes": glance_writes, "glint": glint, "glance-reads": glance_reads,
     "glint-fresh": glint_fresh, "glance-fresh": glance_fresh}[phase](base, state_path)
    print(f"{passed} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
