"""Who may do what to which image: the same matrix of requests against the real Glance 33 and
against Glint, both taking identity from trusted headers and running their default policies,
compared cell by cell. Every cell must give the same status (for listings: the same presence).

    python3 tests/policy/matrix.py GLANCE_URL GLINT_URL [KEYSTONE_URL]

With KEYSTONE_URL (the lab Keystone of scripts/lab-keystone, its passwords in the
GLINT_TEST_KEYSTONE_* variables), the personas sign in for real and Glint (flavor = keystone)
gets only their tokens, while Glance gets the identity those tokens carry as trusted headers:
the same decisions, reached through Keystone.

Personas (roles as Keystone expands them): admin (project-scoped admin), alice (member of
p-alpha), rita (reader of p-alpha), bob (member of p-beta), sys (system-scoped admin).
Image kinds: alice's own private, bob's private, bob's shared with p-alpha accepted and
pending, bob's community, admin's public, alice's own deactivated. Reads run on one set of
images; each write runs on a fresh image of its kind.

Then the 2.17 locations API, with two more personas: svc (the `service` role in its own
project, as Nova's and Cinder's accounts have it) and alice-via-nova (alice's identity with a
service's roles beside it: X-Service-Roles, or with Keystone alice's token and Nova's as
X-Service-Token). On each kind: POST /locations with an http URL (a web server this script
runs, and one of the cloud's metadata service that the URL filter refuses) and with an rbd
URL on a fresh queued image, and on an active one; GET /locations; and,
where the POST was accepted, the status the image ends in once the location's data is read.
Prints the matrices and the mismatches; exits 1 when there are any.
"""
import http.client
import http.server
import json
import sys
import threading
import time
import urllib.parse

PERSONAS = {  # replaced by the signed-in identities when a Keystone is given
    "admin": {"X-Project-Id": "p-admin", "X-Roles": "admin,member,reader"},
    "alice": {"X-Project-Id": "p-alpha", "X-Roles": "member,reader"},
    "rita": {"X-Project-Id": "p-alpha", "X-Roles": "reader"},
    "bob": {"X-Project-Id": "p-beta", "X-Roles": "member,reader"},
    "sys": {"OpenStack-System-Scope": "all", "X-Roles": "admin,member,reader"},
    "svc": {"X-Project-Id": "p-service", "X-Roles": "service"},
    "alice-via-nova": {"X-Project-Id": "p-alpha", "X-Roles": "member,reader",
                       "X-Service-Roles": "service"},
}
# The personas of the image matrix; the locations matrix has all of them.
IMAGE_PERSONAS = ["admin", "alice", "rita", "bob", "sys"]
# kind: (owner, visibility, member status of p-alpha or None, deactivated)
KINDS = {
    "own-private": ("alice", "private", None, False),
    "other-private": ("bob", "private", None, False),
    "shared-accepted": ("bob", "shared", "accepted", False),
    "shared-pending": ("bob", "shared", "pending", False),
    "community": ("bob", "community", None, False),
    "public": ("admin", "public", None, False),
    "deactivated": ("alice", "private", None, True),
}
DATA = bytes(range(256)) * 4
MEMBER = "p-alpha"  # the project images are shared with (alice's, rita's)
TOKENS = {}  # persona -> Keystone token, when signed in


def sign_in(keystone, persona):
    """Signs a lab persona in; its token, and its identity as keystonemiddleware would pass it."""
    import os
    import urllib.request
    users = {"admin": ("admin", "ADMIN_PASSWORD", {"project": {"name": "admin"}}),
             "alice": ("alice", "USER_PASSWORD", {"project": {"name": "alpha"}}),
             "rita": ("rita", "USER_PASSWORD", {"project": {"name": "alpha"}}),
             "bob": ("bob", "USER_PASSWORD", {"project": {"name": "beta"}}),
             "sys": ("admin", "ADMIN_PASSWORD", {"system": {"all": True}}),
             "svc": ("nova", "NOVA_PASSWORD", {"project": {"name": "service"}})}
    name, secret, scope = users[persona]
    if "project" in scope:
        scope["project"]["domain"] = {"id": "default"}
    body = json.dumps({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": name, "domain": {"id": "default"},
        "password": os.environ["GLINT_TEST_KEYSTONE_" + secret]}}}, "scope": scope}}).encode()
    req = urllib.request.Request(keystone.rstrip("/") + "/auth/tokens", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        token = json.load(resp)["token"]
        value = resp.headers["X-Subject-Token"]
    headers = {"X-Roles": ",".join(r["name"] for r in token["roles"])}
    if "project" in token:
        headers["X-Project-Id"] = token["project"]["id"]
    else:
        headers["OpenStack-System-Scope"] = "all"
    return value, headers


class Server:
    def __init__(self, name, url, tokens=False):
        self.name = name
        self.tokens = tokens
        parsed = urllib.parse.urlparse(url)
        self.host, self.port = parsed.hostname, parsed.port
        self.notes = {}  # cell -> what the server said of it (its tasks' messages)

    def call(self, persona, method, path, body=None, content_type="application/json"):
        if self.tokens and persona == "alice-via-nova":
            headers = {"X-Auth-Token": TOKENS["alice"], "X-Service-Token": TOKENS["svc"],
                       "Accept": "application/json"}
        elif self.tokens:
            headers = {"X-Auth-Token": TOKENS[persona], "Accept": "application/json"}
        else:
            headers = {"X-Identity-Status": "Confirmed", "X-User-Id": f"user-{persona}",
                       "Accept": "application/json", **PERSONAS[persona]}
        if body is not None:
            headers["Content-Type"] = content_type
            if not isinstance(body, bytes):
                body = json.dumps(body).encode()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, data
        finally:
            conn.close()

    def must(self, expected, persona, method, path, body=None, content_type="application/json"):
        status, data = self.call(persona, method, path, body, content_type)
        if status != expected:
            raise RuntimeError(f"{self.name}: {persona} {method} {path}: {status} {data[:300]!r}")
        return data

    def make(self, kind, with_data=True):
        owner, visibility, member, deactivated = KINDS[kind]
        created = json.loads(self.must(201, owner, "POST", "/v2/images", {
            "name": kind, "disk_format": "raw", "container_format": "bare",
            "visibility": visibility}))
        image = created["id"]
        if with_data:
            self.must(204, owner, "PUT", f"/v2/images/{image}/file", DATA,
                      "application/octet-stream")
        if member:
            self.must(200, owner, "POST", f"/v2/images/{image}/members", {"member": MEMBER})
            if member == "accepted":
                self.must(200, "alice", "PUT", f"/v2/images/{image}/members/{MEMBER}",
                          {"status": "accepted"})
        if deactivated:
            self.must(204, owner, "POST", f"/v2/images/{image}/actions/deactivate")
        return image


def listed(server, persona, image, query=""):
    status, data = server.call(persona, "GET", f"/v2/images?limit=1000{query}")
    if status != 200:
        return status
    return "yes" if any(i["id"] == image for i in json.loads(data)["images"]) else "no"


READS = {
    "show": lambda s, p, i: s.call(p, "GET", f"/v2/images/{i}")[0],
    "listed": lambda s, p, i: listed(s, p, i),
    "listed-community": lambda s, p, i: listed(s, p, i, "&visibility=community"),
    "listed-pending": lambda s, p, i: listed(s, p, i, "&member_status=pending"),
    "download": lambda s, p, i: s.call(p, "GET", f"/v2/images/{i}/file")[0],
    "members": lambda s, p, i: s.call(p, "GET", f"/v2/images/{i}/members")[0],
    "member": lambda s, p, i: s.call(p, "GET", f"/v2/images/{i}/members/{MEMBER}")[0],
}
WRITES = {
    "patch": lambda s, p, i: s.call(
        p, "PATCH", f"/v2/images/{i}", [{"op": "replace", "path": "/name", "value": "x"}],
        "application/openstack-images-v2.1-json-patch")[0],
    "tag": lambda s, p, i: s.call(p, "PUT", f"/v2/images/{i}/tags/t")[0],
    "delete": lambda s, p, i: s.call(p, "DELETE", f"/v2/images/{i}")[0],
    "deactivate": lambda s, p, i: s.call(p, "POST", f"/v2/images/{i}/actions/deactivate")[0],
    "reactivate": lambda s, p, i: s.call(p, "POST", f"/v2/images/{i}/actions/reactivate")[0],
    "add-member": lambda s, p, i: s.call(p, "POST", f"/v2/images/{i}/members",
                                         {"member": "p-gamma"})[0],
    "accept": lambda s, p, i: s.call(p, "PUT", f"/v2/images/{i}/members/{MEMBER}",
                                     {"status": "accepted"})[0],
    "remove-member": lambda s, p, i: s.call(p, "DELETE", f"/v2/images/{i}/members/{MEMBER}")[0],
}


def run(server):
    cells = {}
    images = {kind: server.make(kind) for kind in KINDS}
    for kind, image in images.items():
        for persona in IMAGE_PERSONAS:
            for op, read in READS.items():
                cells[(kind, persona, op)] = read(server, persona, image)
    for kind in KINDS:
        for persona in IMAGE_PERSONAS:
            for op, write in WRITES.items():
                cells[(kind, persona, op)] = write(server, persona, server.make(kind))
            if not KINDS[kind][3]:
                queued = server.make(kind, with_data=False)
                cells[(kind, persona, "upload")] = server.call(
                    persona, "PUT", f"/v2/images/{queued}/file", DATA,
                    "application/octet-stream")[0]
    return cells


class DataServer:
    """A web server on loopback answering every path with DATA: the http locations' remote."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(DATA)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()

            def do_GET(self):
                self.do_HEAD()
                self.wfile.write(DATA)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


LOCATION_OPS = ["add-http", "http-ends", "add-metadata", "add-rbd", "rbd-ends", "add-active",
                "list"]
METADATA = "http://169.254.169.254/latest/meta-data/"  # refused by both servers' URL filter


def status_of(server, image):
    data = server.must(200, "admin", "GET", f"/v2/images/{image}")
    return json.loads(data)["status"]


def run_locations(server, remote):
    """The locations matrix of one server: every persona on every kind."""
    cells = {}
    active = {kind: server.make(kind) for kind in KINDS}
    pending = {}  # (kind, persona, op) -> image whose location is being read
    for kind in KINDS:
        for persona in PERSONAS:
            for op, url in (("add-http", f"{remote}/{kind}/{persona}.img"),
                            ("add-metadata", METADATA),
                            ("add-rbd", "rbd://fsid/images/" + "0" * 8 + "/snap")):
                if KINDS[kind][3]:
                    continue  # a deactivated image is never queued
                queued = server.make(kind, with_data=False)
                status, _ = server.call(persona, "POST", f"/v2/images/{queued}/locations",
                                        {"url": url})
                cells[(kind, persona, op)] = status
                if status == 202:
                    pending[(kind, persona, op.replace("add-", "") + "-ends")] = queued
            cells[(kind, persona, "add-active")] = server.call(
                persona, "POST", f"/v2/images/{active[kind]}/locations",
                {"url": f"{remote}/{kind}/active.img"})[0]
            cells[(kind, persona, "list")] = server.call(
                persona, "GET", f"/v2/images/{active[kind]}/locations")[0]
    # Where an accepted location leaves its image once its task has ended.
    for key, image in pending.items():
        deadline = time.time() + 30
        while time.time() < deadline:
            tasks = json.loads(server.must(200, "admin", "GET", f"/v2/images/{image}/tasks"))
            ended = [t["status"] in ("success", "failure") for t in tasks["tasks"]]
            if ended and all(ended):
                break
            time.sleep(0.3)
        cells[key] = status_of(server, image)
        server.notes[key] = "; ".join(t.get("message") or t["status"] for t in tasks["tasks"])
    return cells


def compare(title, kinds, personas, ops, reference, ours, servers=()):
    """Prints one matrix, the differing cells marked; returns the mismatches."""
    mismatches = [(k, reference[k], ours.get(k)) for k in reference if ours.get(k) != reference[k]]
    print(f"\n## {title}\n")
    print("| image | persona | " + " | ".join(ops) + " |")
    print("|---|---|" + "---|" * len(ops))
    for kind in kinds:
        for persona in personas:
            row = []
            for op in ops:
                key = (kind, persona, op)
                if key not in reference:
                    row.append("–")
                elif ours.get(key) == reference[key]:
                    row.append(str(reference[key]))
                else:
                    row.append(f"**{ours.get(key)}≠{reference[key]}**")
            print(f"| {kind} | {persona} | " + " | ".join(row) + " |")
    print(f"\n{len(reference)} cells, {len(mismatches)} differ (Glint≠Glance 33)")
    for (kind, persona, op), theirs, mine in mismatches:
        print(f"# {kind} / {persona} / {op}: Glance {theirs}, Glint {mine}")
        for server in servers:
            if (kind, persona, op) in server.notes:
                print(f"#   {server.name}: {server.notes[(kind, persona, op)]}")
    return mismatches


def main():
    global MEMBER
    keystone = sys.argv[3] if len(sys.argv) > 3 else None
    if keystone:
        for persona in PERSONAS:
            if persona != "alice-via-nova":
                TOKENS[persona], PERSONAS[persona] = sign_in(keystone, persona)
        PERSONAS["alice-via-nova"] = {**PERSONAS["alice"],
                                      "X-Service-Roles": PERSONAS["svc"]["X-Roles"]}
        MEMBER = PERSONAS["alice"]["X-Project-Id"]
    glance = Server("glance", sys.argv[1])
    glint = Server("glint", sys.argv[2], tokens=bool(keystone))
    mismatches = compare("images", KINDS, IMAGE_PERSONAS, list(READS) + list(WRITES) + ["upload"],
                         run(glance), run(glint))
    remote = DataServer().url
    mismatches += compare("locations API (2.17)", KINDS, PERSONAS, LOCATION_OPS,
                          run_locations(glance, remote), run_locations(glint, remote),
                          (glance, glint))
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
