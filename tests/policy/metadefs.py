"""Who may do what to which metadata definition: the same metadefs requests against two
Image API servers (the real Glance 33 and Glint, or two Glances to check this script), both
taking identity from trusted headers and running their default policies, compared cell by
cell: the status and the body (JSON with `created_at`/`updated_at` removed and the servers'
address taken out of links) must be the same.

    python3 tests/policy/metadefs.py REFERENCE_URL CANDIDATE_URL

Both servers must start with no metadefs at all (a fresh database: `db sync` loads none).
Personas: admin, member and reader of the owning project p-alpha; member and reader of
another project p-beta. Namespace kinds: p-alpha's private, public, and protected (public)
namespaces, and p-beta's private one; each has two resource type associations (one with a
prefix and properties target), two properties, an object and two tags. Reads run on one
namespace of each kind; each write runs on a fresh namespace of its kind, and is followed
by the namespace as the admin then sees it (`<op>+after`). Then the namespace list (filters,
sorting, paging, bad parameters), the resource types and the ten /v2/schemas/metadefs/*
documents for each persona. Prints the status matrix, the cell count and every difference;
exits 1 when there is any but the accepted ones:
- a 400 for a body that fails the schema carries the first line of jsonschema's report only
  (Glance appends the report's pretty-printed schema and instance, as the image API's 400s
  would; Glint's image API leaves it out too), so messages are compared up to that report;
- an unknown `sort_key` on the namespace list is a 400 naming it, where Glance fails with a
  500 (ACCEPTED below).
"""
import http.client
import json
import sys
import urllib.parse

PERSONAS = {
    "admin": {"X-Project-Id": "p-alpha", "X-Roles": "admin,member,reader"},
    "member": {"X-Project-Id": "p-alpha", "X-Roles": "member,reader"},
    "reader": {"X-Project-Id": "p-alpha", "X-Roles": "reader"},
    "other-member": {"X-Project-Id": "p-beta", "X-Roles": "member,reader"},
    "other-reader": {"X-Project-Id": "p-beta", "X-Roles": "reader"},
}
# kind: (owner, visibility, protected)
KINDS = {
    "private": ("p-alpha", "private", False),
    "public": ("p-alpha", "public", False),
    "protected": ("p-alpha", "public", True),
    "other-private": ("p-beta", "private", False),
}
NS = "/v2/metadefs/namespaces"
SCHEMAS = ["namespace", "namespaces", "resource_type", "resource_types", "property",
           "properties", "object", "objects", "tag", "tags"]
DROPPED = {"created_at", "updated_at"}
# Cells where the candidate deliberately answers otherwise: op -> (reference, candidate) status.
ACCEPTED = {"ns-list-bad-key": (500, 400)}
# Lists in no defined order: Glance reads objects and a namespace's associations with no
# ORDER BY (the database's order: on PostgreSQL the heap's, which an UPDATE changes; on MySQL
# the index's), so they are compared as sets. Glint sorts them (by name; associations by
# creation, then resource type).
UNORDERED = {"resource_type_associations", "objects"}
# Where jsonschema's report starts in a 400's message.
REPORT = "\n\nFailed validating "


def namespace_body(name, kind):
    owner, visibility, protected = KINDS[kind]
    return {
        "namespace": name, "display_name": f"Matrix {kind}", "description": "for the matrix",
        "visibility": visibility, "protected": protected, "owner": owner,
        "resource_type_associations": [
            {"name": "OS::Glance::Image", "prefix": "hw_"},
            {"name": "OS::Cinder::Volume", "prefix": "hw_", "properties_target": "image"},
        ],
        "properties": {
            "cpu_policy": {"title": "CPU policy", "type": "string",
                           "enum": ["shared", "dedicated"], "default": "shared"},
            "cores": {"title": "Cores", "type": "integer", "minimum": 1, "maximum": 64},
        },
        "objects": [{
            "name": "Topology", "description": "CPU topology", "required": ["sockets"],
            "properties": {"sockets": {"title": "Sockets", "type": "integer", "minimum": 1},
                           "threads": {"title": "Threads", "type": "integer"}},
        }],
        "tags": [{"name": "fast"}, {"name": "small"}],
    }


def unordered(key, value):
    """`value` in a canonical order when `key` names a list in no defined order."""
    if key in UNORDERED and isinstance(value, list):
        return sorted(value, key=lambda item: json.dumps(item, sort_keys=True))
    return value


class Server:
    def __init__(self, name, url, strict):
        self.name = name
        # The reference must take every set-up request; the candidate's refusals show as cells.
        self.strict = strict
        parsed = urllib.parse.urlparse(url)
        self.host, self.port = parsed.hostname, parsed.port
        self.origin = f"{parsed.scheme}://{parsed.netloc}"

    def call(self, persona, method, path, body=None, headers=None):
        sent = {"X-Identity-Status": "Confirmed", "X-User-Id": f"user-{persona}",
                "Accept": "application/json", **PERSONAS[persona], **(headers or {})}
        data = None
        if body is not None:
            sent["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            return response.status, self.normal(response.read())
        finally:
            conn.close()

    def normal(self, raw):
        """The body as compared: JSON without timestamps, links without this server's address."""
        text = raw.decode("utf-8", "replace").replace(self.origin, "")
        try:
            value = json.loads(text)
        except ValueError:
            return text.strip()

        def strip(v):
            if isinstance(v, str) and REPORT in v:
                # The report runs to webob's `<br /><br />` ending, which stays.
                cut = v.index(REPORT)
                ending = v.find("<br /><br />", cut)
                return v[:cut] + (v[ending:] if ending >= 0 else "")
            if isinstance(v, dict):
                return {k: unordered(k, strip(x)) for k, x in v.items() if k not in DROPPED}
            if isinstance(v, list):
                return [strip(x) for x in v]
            return v
        return strip(value)

    def must(self, expected, persona, method, path, body=None):
        status, data = self.call(persona, method, path, body)
        if status != expected and self.strict:
            raise RuntimeError(f"{self.name}: {persona} {method} {path}: {status} {data!r:.300}")
        return data

    def make(self, name, kind):
        self.must(201, "admin", "POST", NS, namespace_body(name, kind))
        return f"{NS}/{urllib.parse.quote(name)}"


def reads(ns):
    return {
        "ns-show": ("GET", ns, None),
        "ns-show-rt": ("GET", f"{ns}?resource_type=OS::Glance::Image", None),
        "objects": ("GET", f"{ns}/objects", None),
        "object": ("GET", f"{ns}/objects/Topology", None),
        "object-missing": ("GET", f"{ns}/objects/Nothing", None),
        "properties": ("GET", f"{ns}/properties", None),
        "property": ("GET", f"{ns}/properties/cores", None),
        "property-rt": ("GET", f"{ns}/properties/hw_cores?resource_type=OS::Glance::Image", None),
        "tags": ("GET", f"{ns}/tags", None),
        "tag": ("GET", f"{ns}/tags/fast", None),
        "associations": ("GET", f"{ns}/resource_types", None),
    }


def writes(ns, name, kind):
    _, visibility, protected = KINDS[kind]
    return {
        "ns-update": ("PUT", ns, {"namespace": name, "display_name": "changed",
                                  "description": "new words", "visibility": visibility,
                                  "protected": protected}),
        "ns-rename": ("PUT", ns, {"namespace": name + "-renamed", "visibility": visibility,
                                  "protected": protected}),
        "ns-update-invalid": ("PUT", ns, {"namespace": name, "visibility": "everyone"}),
        "ns-delete": ("DELETE", ns, None),
        "objects-delete": ("DELETE", f"{ns}/objects", None),
        "properties-delete": ("DELETE", f"{ns}/properties", None),
        "tags-delete": ("DELETE", f"{ns}/tags", None),
        "object-create": ("POST", f"{ns}/objects", {
            "name": "Memory", "description": "RAM", "required": ["size"],
            "properties": {"size": {"title": "Size", "type": "integer"}}}),
        "object-create-dup": ("POST", f"{ns}/objects", {"name": "Topology"}),
        "object-update": ("PUT", f"{ns}/objects/Topology", {
            "name": "Topology", "description": "changed",
            "properties": {"cores": {"title": "Cores", "type": "integer"}}}),
        "object-delete": ("DELETE", f"{ns}/objects/Topology", None),
        "property-create": ("POST", f"{ns}/properties", {
            "name": "vif", "title": "VIF model", "type": "string", "enum": ["virtio", "e1000"]}),
        "property-create-invalid": ("POST", f"{ns}/properties", {"name": "bad", "type": "strange"}),
        "property-update": ("PUT", f"{ns}/properties/cores", {
            "name": "cores", "title": "Cores", "type": "integer", "minimum": 2}),
        "property-update-invalid": ("PUT", f"{ns}/properties/cores", {
            "name": "cores", "title": "Cores", "type": "integer", "minimum": "two"}),
        "property-delete": ("DELETE", f"{ns}/properties/cores", None),
        "tag-create": ("POST", f"{ns}/tags/quiet", None),
        "tags-create": ("POST", f"{ns}/tags", {"tags": [{"name": "x1"}, {"name": "x2"}]}),
        "tags-append": ("POST", f"{ns}/tags", {"tags": [{"name": "x1"}]},
                        {"X-Openstack-Append": "True"}),
        "tags-duplicate": ("POST", f"{ns}/tags", {"tags": [{"name": "d"}, {"name": "d"}]}),
        "tag-rename": ("PUT", f"{ns}/tags/fast", {"name": "rapid"}),
        "tag-delete": ("DELETE", f"{ns}/tags/fast", None),
        "association-add": ("POST", f"{ns}/resource_types", {
            "name": "OS::Nova::Flavor", "prefix": "hw:"}),
        "association-remove": ("DELETE", f"{ns}/resource_types/OS::Glance::Image", None),
    }


def global_reads():
    listing = [
        ("ns-list", ""), ("ns-list-public", "?visibility=public"),
        ("ns-list-private", "?visibility=private"),
        ("ns-list-rt", "?resource_types=OS::Cinder::Volume"),
        ("ns-list-sorted", "?sort_key=namespace&sort_dir=asc"),
        ("ns-list-bad-dir", "?sort_dir=sideways"), ("ns-list-bad-key", "?sort_key=colour"),
        ("ns-list-bad-limit", "?limit=-1"),
        ("ns-list-bad-marker", "?marker=NoSuchNamespace"),
    ]
    ops = {op: ("GET", NS + query, None) for op, query in listing}
    ops["resource-types"] = ("GET", "/v2/metadefs/resource_types", None)
    for schema in SCHEMAS:
        ops[f"schema-{schema}"] = ("GET", f"/v2/schemas/metadefs/{schema}", None)
    return ops


def paged(server, persona):
    """Every page of the namespace list, two at a time, following `next`."""
    pages, path = [], f"{NS}?limit=2&sort_key=namespace&sort_dir=asc"
    while path and len(pages) < 20:
        status, body = server.call(persona, "GET", path)
        pages.append([status, body])
        path = body.get("next") if status == 200 and isinstance(body, dict) else None
    return 200, pages


def run(server):
    cells = {}
    fixtures = {kind: server.make(f"Matrix::{kind}", kind) for kind in KINDS}
    for kind, ns in fixtures.items():
        for persona in PERSONAS:
            for op, (method, path, body) in reads(ns).items():
                cells[(kind, persona, op)] = server.call(persona, method, path, body)
    for persona in PERSONAS:
        for op, (method, path, body) in global_reads().items():
            cells[("-", persona, op)] = server.call(persona, method, path, body)
        cells[("-", persona, "ns-list-pages")] = paged(server, persona)
    for kind in KINDS:
        for persona in PERSONAS:
            for op in writes("", "", kind):
                name = f"W::{kind}::{persona}::{op}"
                ns = server.make(name, kind)
                method, path, body, *headers = writes(ns, name, kind)[op]
                cells[(kind, persona, op)] = server.call(persona, method, path, body,
                                                         *headers)
                cells[(kind, persona, op + "+after")] = server.call("admin", "GET", ns)
            name = f"C::{kind}::{persona}"
            cells[(kind, persona, "ns-create")] = server.call(
                persona, "POST", NS, namespace_body(name, kind))
            cells[(kind, persona, "ns-create-dup")] = server.call(
                persona, "POST", NS, namespace_body(f"Matrix::{kind}", kind))
            cells[(kind, persona, "ns-create-invalid")] = server.call(
                persona, "POST", NS, {"namespace": name + "::bad", "visibility": "everyone"})
    return cells


def compare(reference, candidate, names):
    ref, cand = run(reference), run(candidate)
    accepted = [k for k in ref if cand.get(k) != ref[k] and k[2] in ACCEPTED
                and (ref[k][0], cand.get(k, (None,))[0]) == ACCEPTED[k[2]]]
    mismatches = [k for k in ref if cand.get(k) != ref[k] and k not in accepted]
    ops = list(dict.fromkeys(k[2] for k in ref if not k[2].endswith("+after")))
    print("| kind | persona | " + " | ".join(ops) + " |")
    print("|---|---|" + "---|" * len(ops))
    for kind in ["-", *KINDS]:
        for persona in PERSONAS:
            row = []
            for op in ops:
                key = (kind, persona, op)
                if key not in ref:
                    row.append("–")
                    continue
                bad = key in mismatches or (kind, persona, op + "+after") in mismatches
                theirs, mine = ref[key][0], cand.get(key, (None,))[0]
                row.append(f"**{mine}≠{theirs}**" if theirs != mine else
                           (f"**{theirs}~**" if bad else str(theirs)))
            print(f"| {kind} | {persona} | " + " | ".join(row) + " |")
    print(f"\n{len(ref)} cells, {len(mismatches)} differ ({names[1]} vs {names[0]}; "
          f"~: same status, different body); {len(accepted)} differ as accepted")
    for key in mismatches:
        print(f"# {' / '.join(key)}:")
        for line in differences(ref[key], cand.get(key))[:8]:
            print(f"#   {line}")
    return mismatches


def differences(reference, candidate, path=""):
    """Where two answers differ, one line per differing leaf: path, then both values."""
    if isinstance(reference, (list, tuple)) and isinstance(candidate, (list, tuple)) \
            and len(reference) == len(candidate):
        return [line for i, (r, c) in enumerate(zip(reference, candidate))
                for line in differences(r, c, f"{path}[{i}]")]
    if isinstance(reference, dict) and isinstance(candidate, dict):
        lines = []
        for k in sorted(set(reference) | set(candidate)):
            if k not in candidate:
                lines.append(f"{path}/{k}: only reference: {json.dumps(reference[k])[:300]}")
            elif k not in reference:
                lines.append(f"{path}/{k}: only candidate: {json.dumps(candidate[k])[:300]}")
            else:
                lines += differences(reference[k], candidate[k], f"{path}/{k}")
        return lines
    if reference == candidate:
        return []
    return [f"{path or '/'}: reference {json.dumps(reference)[:300]} candidate {json.dumps(candidate)[:300]}"]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    reference = Server("reference", sys.argv[1], strict=True)
    candidate = Server("candidate", sys.argv[2], strict=False)
    mismatches = compare(reference, candidate, ("reference", "candidate"))
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
