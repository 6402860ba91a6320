"""The served OpenAPI document, checked by openapi-spec-validator, and the answers the server
gives right after the client scenarios checked against the response schemas it declares.

Usage: openapi_check.py BASE_URL   (the server the clients just used; extra request headers,
identity headers say, from GLINT_OPENAPI_HEADERS as JSON, default none)
"""

import json
import os
import sys
import urllib.request

from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate


def fetch(url, headers):
    request = urllib.request.Request(url, headers={"Accept": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def main():
    base = sys.argv[1].rstrip("/")
    headers = json.loads(os.environ.get("GLINT_OPENAPI_HEADERS", "{}"))
    status, body = fetch(base + "/openapi.json", {})
    assert status == 200, f"/openapi.json answered {status}"
    doc = json.loads(body)
    validate(doc)

    def schema_of(path, method, code):
        response = doc["paths"][path][method]["responses"][str(code)]
        if "$ref" in response:
            response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        return response["content"]["application/json"]["schema"]

    def check(url_path, path, method="get"):
        status, body = fetch(base + url_path, headers)
        # The schema's `#/components/...` references resolve against the copy of the
        # components placed beside it.
        schema = {"allOf": [schema_of(path, method, status)], "components": doc["components"]}
        errors = sorted(OAS31Validator(schema).iter_errors(json.loads(body)), key=str)
        assert not errors, f"GET {url_path} ({status}) does not match its schema: {errors[0].message}"
        print(f"openapi: GET {url_path} -> {status} matches the document")
        return status, json.loads(body)

    check("/versions", "/versions")
    # Behind Keystone these answer 401, whose error body is checked the same way.
    status, listing = check("/v2/images?limit=5", "/v2/images")
    for image in listing.get("images", []) if status == 200 else []:
        check(f"/v2/images/{image['id']}", "/v2/images/{image_id}")
    check("/v2/images/00000000-0000-0000-0000-000000000000", "/v2/images/{image_id}")
    check("/v2/tasks", "/v2/tasks")
    check("/v2/schemas/image", "/v2/schemas/image")
    check("/v2/metadefs/namespaces", "/v2/metadefs/namespaces")
    check("/v2/metadefs/resource_types", "/v2/metadefs/resource_types")
    check("/v2/metadefs/namespaces/OS::Glint::Absent", "/v2/metadefs/namespaces/{namespace_name}")
    print(f"openapi: the document is valid OpenAPI {doc['openapi']} with {len(doc['paths'])} paths")


if __name__ == "__main__":
    main()
