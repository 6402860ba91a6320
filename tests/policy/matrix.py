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
images; each write runs on a fresh image of its kind. Prints the matrix and the mismatches;
exits 1 when there are any.
"""
import http.client
import json
import sys
import urllib.parse

PERSONAS = {  # replaced by the signed-in identities when a Keystone is given
    "admin": {"X-Project-Id": "p-admin", "X-Roles": "admin,member,reader"},
    "alice": {"X-Project-Id": "p-alpha", "X-Roles": "member,reader"},
    "rita": {"X-Project-Id": "p-alpha", "X-Roles": "reader"},
    "bob": {"X-Project-Id": "p-beta", "X-Roles": "member,reader"},
    "sys": {"OpenStack-System-Scope": "all", "X-Roles": "admin,member,reader"},
}
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
             "sys": ("admin", "ADMIN_PASSWORD", {"system": {"all": True}})}
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

    def call(self, persona, method, path, body=None, content_type="application/json"):
        if self.tokens:
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
        for persona in PERSONAS:
            for op, read in READS.items():
                cells[(kind, persona, op)] = read(server, persona, image)
    for kind in KINDS:
        for persona in PERSONAS:
            for op, write in WRITES.items():
                cells[(kind, persona, op)] = write(server, persona, server.make(kind))
            if not KINDS[kind][3]:
                queued = server.make(kind, with_data=False)
                cells[(kind, persona, "upload")] = server.call(
                    persona, "PUT", f"/v2/images/{queued}/file", DATA,
                    "application/octet-stream")[0]
    return cells


def main():
    global MEMBER
    keystone = sys.argv[3] if len(sys.argv) > 3 else None
    if keystone:
        for persona in PERSONAS:
            TOKENS[persona], PERSONAS[persona] = sign_in(keystone, persona)
        MEMBER = PERSONAS["alice"]["X-Project-Id"]
    glance = Server("glance", sys.argv[1])
    glint = Server("glint", sys.argv[2], tokens=bool(keystone))
    reference, ours = run(glance), run(glint)
    ops = list(READS) + list(WRITES) + ["upload"]
    mismatches = [(k, reference[k], ours.get(k)) for k in reference if ours.get(k) != reference[k]]
    print("| image | persona | " + " | ".join(ops) + " |")
    print("|---|---|" + "---|" * len(ops))
    for kind in KINDS:
        for persona in PERSONAS:
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
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
