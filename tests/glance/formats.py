"""Disk-format inspection next to the real Glance 33: the same images uploaded to both, with
the same disk_format (container_format bare), and every answer compared: the upload's status
and error message, the image's status and virtual_size after it.

    python3 tests/glance/formats.py GLANCE_URL GLINT_URL

The images: every format qemu-img writes (made here), the issue's two cases (a 1 GiB qcow2,
and one whose backing file is /etc/passwd), and the crafted files of testdata/formats/ whose
disk_format Glance accepts by default. Where Glint differs from Glance on purpose, the case
is listed in DIFFERENT with the reason, and its row is printed but not failed. Both servers
take identity from trusted headers. Exits 1 on any other difference.
"""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse

HEADERS = {"X-Identity-Status": "Confirmed", "X-User-Id": "formats", "X-Project-Id": "p-formats",
           "X-Tenant-Id": "p-formats", "X-Roles": "admin,member,reader",
           "Accept": "application/json"}
GLANCE_FORMATS = {"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"}
TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata",
                        "formats")

# Cases where Glint answers otherwise on purpose (docs/ARCHITECTURE.md, "Format inspection").
DIFFERENT = {
    "fixed.vhd": "Glint recognises a fixed VHD by its footer and records its virtual size",
    "vhd-differencing.vhd": "Glint refuses a differencing VHD: it reads a parent image",
    # Glance: "Incomplete file cannot be safety checked" (a structure it never captured);
    # Glint names the structure unsafe. A 415 and the image queued either way.
    "vmdk-descriptor-over-1mib.vmdk": "refused as unsafe rather than as incomplete",
    "vmdk-descriptor-size-overflow.vmdk": "refused as unsafe rather than as incomplete",
    "vhdx-metadata-backwards.vhdx": "refused as unsafe rather than as incomplete",
}


def request(base, method, path, body=None, headers=None):
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    try:
        conn.request(method, path, body=body, headers={**HEADERS, **(headers or {})})
        resp = conn.getresponse()
        data = resp.read()
    except (BrokenPipeError, ConnectionResetError) as e:
        return 0, f"{type(e).__name__}"
    finally:
        conn.close()
    return resp.status, data.decode("utf-8", "replace")


def upload(base, disk_format, data):
    status, text = request(base, "POST", "/v2/images",
                           json.dumps({"name": "formats", "disk_format": disk_format,
                                       "container_format": "bare"}),
                           {"Content-Type": "application/json"})
    if status != 201:
        return {"create": status, "text": text[:200]}
    image_id = json.loads(text)["id"]
    status, text = request(base, "PUT", f"/v2/images/{image_id}/file", data,
                           {"Content-Type": "application/octet-stream"})
    message = None
    if status >= 400:
        try:
            message = json.loads(text).get("message", text)
        except ValueError:
            message = text.strip()[:300]
        # Glance lists a polyglot's formats in its set's order, which varies between runs.
        head, sep, names = message.rpartition("Multiple formats detected: ")
        if sep:
            message = head + sep + ",".join(sorted(names.split(",")))
    _, shown = request(base, "GET", f"/v2/images/{image_id}")
    shown = json.loads(shown)
    request(base, "DELETE", f"/v2/images/{image_id}")
    return {"upload": status, "message": message, "status": shown.get("status"),
            "virtual_size": shown.get("virtual_size")}


def qemu_images(tmp):
    raw = os.path.join(tmp, "disk.raw")
    with open(raw, "wb") as f:
        f.write(os.urandom(1 << 20))
    made = [("disk.raw", "raw", raw)]
    converted = [("v2.qcow2", "qcow2", "qcow2", "compat=0.10"),
                 ("v3.qcow2", "qcow2", "qcow2", "compat=1.1"),
                 ("sparse.vmdk", "vmdk", "vmdk", "subformat=monolithicSparse"),
                 ("stream.vmdk", "vmdk", "vmdk", "subformat=streamOptimized"),
                 ("dynamic.vhd", "vhd", "vpc", "subformat=dynamic"),
                 ("fixed.vhd", "vhd", "vpc", "subformat=fixed"),
                 ("disk.vhdx", "vhdx", "vhdx", "subformat=dynamic"),
                 ("disk.vdi", "vdi", "vdi", "static=off")]
    for name, disk_format, qemu_format, options in converted:
        path = os.path.join(tmp, name)
        subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", qemu_format, "-o", options,
                        raw, path], check=True)
        made.append((name, disk_format, path))
    # The table.
    good = os.path.join(tmp, "1G.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", good, "1G"], check=True)
    evil = os.path.join(tmp, "evil.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", "/etc/passwd",
                    evil], check=True)
    made += [("1G.qcow2", "qcow2", good), ("evil.qcow2 (backing /etc/passwd)", "qcow2", evil)]
    # Data of no format under the formats no inspector reads, and declared raw.
    made += [("disk.raw as ami", "ami", raw), ("1G.qcow2 as raw", "raw", good)]
    return made


def crafted():
    with open(os.path.join(TESTDATA, "cases.tsv")) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            name, disk_format = line.rstrip("\n").split("\t")[:2]
            if disk_format in GLANCE_FORMATS:
                yield name, disk_format, os.path.join(TESTDATA, name)


def main():
    glance, glint = sys.argv[1], sys.argv[2]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="glint-formats-") as tmp:
        cases = qemu_images(tmp) + list(crafted())
        print(f"{'case':44} {'disk_format':11} {'Glance 33':48} Glint")
        for name, disk_format, path in cases:
            with open(path, "rb") as f:
                data = f.read()
            theirs, ours = upload(glance, disk_format, data), upload(glint, disk_format, data)

            def cell(r):
                if "create" in r:
                    return f"create {r['create']}"
                text = f"{r['upload']} {r['status']} vs={r['virtual_size']}"
                return text + (f" {r['message'][-60:]!r}" if r["message"] else "")

            same = theirs == ours
            mark = "" if same else ("  (differs: " + DIFFERENT[name] + ")" if name in DIFFERENT
                                    else "  *** DIFFERS")
            if not same and name not in DIFFERENT:
                failures += 1
            print(f"{name:44} {disk_format:11} {cell(theirs):48} {cell(ours)}{mark}")
    print(f"{len(cases)} cases, {failures} unexpected differences")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
