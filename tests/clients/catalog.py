#!/usr/bin/env python3
"""Points the lab Keystone's catalog at a test server, as an operator registers Glance:

    python3 tests/clients/catalog.py set REGION URL     the region (made if absent) gets URL
                                                        as its public image endpoint
    python3 tests/clients/catalog.py remove REGION      its image endpoints are deleted

Keystone's URL and admin password come from GLINT_TEST_KEYSTONE_URL and
GLINT_TEST_KEYSTONE_ADMIN_PASSWORD (scripts/lab-keystone env).
"""
import json
import os
import sys
import urllib.error
import urllib.request

KEYSTONE = os.environ["GLINT_TEST_KEYSTONE_URL"].rstrip("/")


def call(method, path, body=None, token=None):
    req = urllib.request.Request(KEYSTONE + path, method=method,
                                 data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json",
                                          **({"X-Auth-Token": token} if token else {})})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.headers, json.loads(resp.read() or b"{}")


def admin_token():
    headers, _ = call("POST", "/auth/tokens", {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"},
            "password": os.environ["GLINT_TEST_KEYSTONE_ADMIN_PASSWORD"]}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    return headers["X-Subject-Token"]


def image_endpoints(token, region):
    _, services = call("GET", "/services?type=image", token=token)
    service = services["services"][0]["id"]
    _, found = call("GET", f"/endpoints?service_id={service}&interface=public", token=token)
    return service, [e for e in found["endpoints"] if e["region_id"] == region]


def main():
    action, region = sys.argv[1], sys.argv[2]
    token = admin_token()
    service, endpoints = image_endpoints(token, region)
    if action == "remove":
        for endpoint in endpoints:
            call("DELETE", f"/endpoints/{endpoint['id']}", token=token)
        return
    url = sys.argv[3]
    try:
        call("GET", f"/regions/{region}", token=token)
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise
        call("POST", "/regions", {"region": {"id": region}}, token=token)
    if not endpoints:
        call("POST", "/endpoints", {"endpoint": {"service_id": service, "interface": "public",
                                                 "region_id": region, "url": url}}, token=token)
    for endpoint in endpoints:
        call("PATCH", f"/endpoints/{endpoint['id']}", {"endpoint": {"url": url}}, token=token)


if __name__ == "__main__":
    main()
