#!/usr/bin/env python3
"""The metadefs API of Glance 33 and of Glint side by side (scripts/test-metadefs): both
serve the same database, filled by `glance-manage db load_metadefs`. Every namespace, its
objects, properties, tags and associations are read by four personas from both, then the
same writes and refusals are sent to both; any answer that differs (status, body, error
message's first paragraph) is printed and makes the run fail.
Usage: metadefs.py GLANCE_URL GLINT_URL"""
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

GLANCE, GLINT = sys.argv[1], sys.argv[2]


def call(base, path, roles="admin,member,reader", project="owner", method="GET", body=None, extra=None):
    headers = {"X-Identity-Status": "Confirmed", "X-Project-Id": project, "X-User-Id": "u",
               "X-Roles": roles, "Accept": "application/json", "Content-Type": "application/json"}
    headers.update(extra or {})
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request) as response:
            code, text = response.status, response.read()
    except urllib.error.HTTPError as e:
        code, text = e.code, e.read()
    try:
        answer = json.loads(text) if text else None
    except ValueError:
        answer = text.decode()
    if isinstance(answer, dict) and "message" in answer and "code" in answer:
        # Glance adds jsonschema's report after the first paragraph; Glint does not.
        answer = {"error": answer["message"].split("<br")[0].split("\n\n")[0]}
    return [code, answer]


def without_times(value):
    """Rows each server wrote itself carry their own times."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if k not in ("created_at", "updated_at")}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def differences(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key not in a:
                out.append(f"{path}/{key}: only Glint has {json.dumps(b[key])[:120]}")
            elif key not in b:
                out.append(f"{path}/{key}: only Glance has {json.dumps(a[key])[:120]}")
            else:
                out += differences(a[key], b[key], f"{path}/{key}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: Glance {json.dumps(a)[:150]}, Glint {json.dumps(b)[:150]}"]


failures = 0


def compare(path, times=True, **kwargs):
    global failures
    a, b = call(GLANCE, path, **kwargs), call(GLINT, path, **kwargs)
    if not times:
        a, b = without_times(a), without_times(b)
    found = differences(a, b)
    if found:
        failures += 1
        print(f"DIFF {kwargs.get('method', 'GET')} {path} ({kwargs.get('roles', 'admin')} of {kwargs.get('project', 'owner')})")
        for line in found[:6]:
            print("   ", line)


PERSONAS = [("admin,member,reader", "owner"), ("reader", "owner"), ("member,reader", "other"), ("foo", "owner")]
listed = call(GLANCE, "/v2/metadefs/namespaces?limit=1000")[1]["namespaces"]
print(f"{len(listed)} namespaces")
for roles, project in PERSONAS:
    for path in ["/v2/metadefs/namespaces?limit=1000", "/v2/metadefs/namespaces?limit=5&sort_key=namespace&sort_dir=asc",
                 "/v2/metadefs/namespaces?resource_types=OS::Glance::Image&sort_key=namespace",
                 "/v2/metadefs/resource_types"]:
        compare(path, roles=roles, project=project)
for namespace in listed:
    base = "/v2/metadefs/namespaces/" + urllib.parse.quote(namespace["namespace"])
    for tail in ["", "/objects", "/properties", "/tags", "/resource_types",
                 "?resource_type=OS::Glance::Image", "?resource_type=OS::Nova::Flavor"]:
        compare(base + tail)
    compare(base, roles="member,reader", project="other")
print(f"reads compared, {failures} different")

A=dict(roles="admin,member,reader", project="owner"); M=dict(roles="member,reader", project="owner")
R=dict(roles="reader", project="owner"); OM=dict(roles="member,reader", project="other"); OR=dict(roles="reader", project="other")
N="/v2/metadefs/namespaces"; X=N+"/W::X"
steps=[
 ("POST", N, A, {"namespace":"W::X","description":"d","properties":{"p":{"title":"P","type":"string","default":5,"maxLength":3.7}},"objects":[{"name":"o","properties":{"q":{"title":"Q","type":"boolean"}}}],"tags":[{"name":"t1"}],"resource_type_associations":[{"name":"OS::Glance::Image","prefix":"x_"}]}),
 ("POST", N, A, {"namespace":"W::X"}),
 ("POST", N, M, {"namespace":"W::Y"}),
 ("POST", N, A, {"namespace":"W::Y","created_at":"x"}),
 ("POST", N, A, {"description":"no name"}),
 ("POST", N, A, {"namespace":"W::Y","visibility":"shared"}),
 ("PUT", X, M, {"namespace":"W::X"}),
 ("PUT", X, OM, {"namespace":"W::X"}),
 ("PUT", X, A, {"namespace":"W::X","visibility":"public","display_name":"Shown"}),
 ("GET", X, OR, None),
 ("PUT", X, OM, {"namespace":"W::X"}),
 ("POST", X+"/objects", A, {"name":"o2","required":["a"],"properties":{"a":{"title":"A","type":"integer","minimum":-1}}}),
 ("POST", X+"/objects", A, {"name":"o2"}),
 ("POST", X+"/objects", A, {"name":"bare"}),
 ("POST", X+"/objects", A, {"name":"empty","required":[],"properties":{}}),
 ("PUT", X+"/objects/empty", A, {"name":"empty","required":[]}),
 ("POST", X+"/objects", M, {"name":"o3"}),
 ("POST", X+"/objects", OM, {"name":"o3"}),
 ("POST", X+"/objects", A, {"name":"o3","properties":{"a":{"title":"A","type":"integer","extra":1}}}),
 ("PUT", X+"/objects/o2", A, {"name":"o","description":"clash"}),
 ("PUT", X+"/objects/o2", A, {"name":"o4","description":"renamed"}),
 ("GET", X+"/objects/nope", A, None),
 ("DELETE", X+"/objects/o4", OM, None),
 ("DELETE", X+"/objects/o4", A, None),
 ("POST", X+"/properties", A, {"name":"p2","title":"P2","type":"array","items":{"type":"string","enum":["a"]},"minItems":1}),
 ("POST", X+"/properties", A, {"name":"p2","title":"P2","type":"string"}),
 ("POST", X+"/properties", A, {"name":"p3","title":"P3"}),
 ("POST", X+"/properties", A, {"name":"p3","title":"P3","type":"number","minimum":"a"}),
 ("PUT", X+"/properties/p2", A, {"name":"p","title":"P","type":"string"}),
 ("PUT", X+"/properties/p2", A, {"name":"p4","title":"P4","type":"string","readonly":True}),
 ("GET", X+"/properties/x_p4?resource_type=OS::Glance::Image", OR, None),
 ("GET", X+"/properties/p4?resource_type=OS::Glance::Image", OR, None),
 ("GET", X+"/properties/p4?resource_type=OS::Nope", OR, None),
 ("DELETE", X+"/properties/p4", R, None),
 ("DELETE", X+"/properties/p4", A, None),
 ("POST", X+"/tags/t2", A, None),
 ("POST", X+"/tags/t2", A, None),
 ("POST", X+"/tags/"+"z"*81, A, None),
 ("POST", X+"/tags", A, {"tags":[{"name":"t3"},{"name":"t4"}]}),
 ("GET", X+"/tags", R, None),
 ("POST", X+"/tags", A, {"tags":[{"name":"t5"}]}, {"X-Openstack-Append":"yes"}),
 ("GET", X+"/tags?sort_key=name&sort_dir=asc&limit=2&marker=t3", R, None),
 ("PUT", X+"/tags/t5", A, {"name":"t3"}),
 ("PUT", X+"/tags/t5", A, {"name":"t6"}),
 ("DELETE", X+"/tags/t6", OM, None),
 ("DELETE", X+"/tags/t6", A, None),
 ("GET", X+"/tags/t6", A, None),
 ("POST", X+"/resource_types", A, {"name":"OS::Cinder::Volume","properties_target":"image"}),
 ("POST", X+"/resource_types", A, {"name":"OS::Cinder::Volume"}),
 ("GET", X+"/resource_types", OR, None),
 ("DELETE", X+"/resource_types/OS::Nope", A, None),
 ("DELETE", X+"/resource_types/OS::Cinder::Volume", A, None),
 ("GET", X, OR, None),
 ("GET", X+"?resource_type=OS::Glance::Image", OR, None),
 ("PUT", X, A, {"namespace":"W::X","visibility":"public","protected":True}),
 ("DELETE", X+"/tags", A, None),
 ("DELETE", X+"/objects/o", A, None),
 ("DELETE", X, A, None),
 ("PUT", X, A, {"namespace":"W::X","visibility":"public"}),
 ("DELETE", X+"/tags", M, None),
 ("DELETE", X+"/tags", A, None),
 ("DELETE", X+"/objects", A, None),
 ("DELETE", X+"/properties", A, None),
 ("GET", X, A, None),
 ("DELETE", X, A, None),
 ("DELETE", X, A, None),
 ("GET", N+"?limit=abc", A, None),
 ("GET", N+"?sort_dir=x", A, None),
 ("GET", N+"?marker=nope", A, None),
]
for step in steps:
    method, path, who, body = step[:4]
    extra = step[4] if len(step) > 4 else None
    compare(path, times=False, method=method, body=body, extra=extra, **who)
print(f"{len(steps)} writes and refusals compared")
# Glance answers a limit that is not a number with a 500; Glint with a 400.
EXPECTED = 1
if failures != EXPECTED:
    print(f"{failures} answers differ ({EXPECTED} expected: limit=abc)")
    sys.exit(1)
print("metadefs: Glint answers as Glance 33 does")
