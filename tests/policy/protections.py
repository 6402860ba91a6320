"""Property protections next to the real Glance 33: both servers read the same roles-format
protection file (scripts/test-policy-matrix writes it: `x_secret` only for admins, everything
else for everyone) and take identity from trusted headers. A member of the owning project
creates and patches images with a protected and an open property; every status must match.

    python3 tests/policy/protections.py GLANCE_URL GLINT_URL

One difference is expected and checked the other way: after any PATCH by a caller who cannot
read `x_secret`, Glance 33 saves the image without it (the property is lost); Glint keeps it.
Exits 1 on any other difference.
"""
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

ADMIN = {"X-Identity-Status": "Confirmed", "X-User-Id": "adm", "X-Project-Id": "p-alpha",
         "X-Roles": "admin,member,reader"}
MEMBER = {"X-Identity-Status": "Confirmed", "X-User-Id": "alice", "X-Project-Id": "p-alpha",
          "X-Roles": "member,reader"}
PATCH = "application/openstack-images-v2.1-json-patch"
CHANGES = [("replace", "/x_secret", "9"), ("remove", "/x_secret", None),
           ("add", "/x_secret", "9"), ("add", "/x_open", "9"), ("replace", "/x_open", "8"),
           ("remove", "/x_open", None), ("add", "/x_new", "1"), ("replace", "/x_missing", "1")]


def call(base, headers, method, path, body=None, content_type="application/json"):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, method=method, data=data,
                                 headers={**headers, "Content-Type": content_type,
                                          "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, {}


def run(base):
    """Each case: (status, what the member sees of x_secret, what the admin finds after)."""
    cases = {}
    status, made = call(base, MEMBER, "POST", "/v2/images", {"name": "m", "x_secret": "1"})
    cases["member creates x_secret"] = (status,)
    status, made = call(base, MEMBER, "POST", "/v2/images", {"name": "m", "x_open": "1"})
    cases["member creates x_open"] = (status,)
    for op, path, value in CHANGES:
        _, image = call(base, ADMIN, "POST", "/v2/images",
                        {"name": "p", "x_secret": "1", "x_open": "2"})
        shown = call(base, MEMBER, "GET", f"/v2/images/{image['id']}")[1]
        change = {"op": op, "path": path, **({"value": value} if value is not None else {})}
        status, _ = call(base, MEMBER, "PATCH", f"/v2/images/{image['id']}", [change], PATCH)
        after = call(base, ADMIN, "GET", f"/v2/images/{image['id']}")[1]
        cases[f"member {op} {path}"] = (status, "x_secret" in shown, after.get("x_open"),
                                        after.get("x_secret"))
    return cases


def main():
    glance, glint = run(sys.argv[1].rstrip("/")), run(sys.argv[2].rstrip("/"))
    failures = 0
    for case, theirs in glance.items():
        mine = glint[case]
        same = mine == theirs
        note = ""
        if not same and len(theirs) == 4 and mine[:3] == theirs[:3] and theirs[0] == 200:
            # The expected difference: Glance lost the hidden property, Glint kept it.
            same = theirs[3] is None and mine[3] == "1"
            note = " (Glance 33 lost the hidden x_secret; Glint kept it)" if same else ""
        failures += not same
        print(f"{'ok' if same else 'FAIL'} - {case}: Glance {theirs}, Glint {mine}{note}")
    print(f"{len(glance)} cases, {failures} differ")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
