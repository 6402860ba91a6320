#!/usr/bin/env python3
"""Reads a Glint node's /metrics with Prometheus's own Python parser:

    python3 tests/clients/metrics_parse.py http://127.0.0.1:9292/metrics

Fails (exit 1, with the reason) when the document does not parse, is not served as text
format 0.0.4, or lacks one of Glint's metric families (docs/LOGGING.md, "Metrics"). Needs
`prometheus_client` (pinned in scripts/client-venv); scripts/test-clients runs it after each
scenario, against the server the clients have just used.
"""
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

# Family name (as the parser names it: counters lose `_total`) → type.
EXPECTED = {
    "glint_http_requests": "counter",
    "glint_http_request_duration_seconds": "histogram",
    "glint_store_bytes_written": "counter",
    "glint_store_bytes_read": "counter",
    "glint_uploads_in_flight": "gauge",
    "glint_imports_running": "gauge",
    "glint_db_pool_connections": "gauge",
    "glint_build_info": "gauge",
}


def main(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        content_type = resp.headers.get("Content-Type", "")
        text = resp.read().decode("utf-8")
    assert content_type.startswith("text/plain; version=0.0.4"), content_type
    families = {}
    for family in text_string_to_metric_families(text):
        # Older parsers keep `_total` on counter names; newer ones strip it.
        name = family.name
        if family.type == "counter" and name.endswith("_total"):
            name = name[: -len("_total")]
        families[name] = family
    missing = [name for name in EXPECTED if name not in families]
    assert not missing, f"missing families: {missing}"
    for name, kind in EXPECTED.items():
        assert families[name].type == kind, f"{name} is {families[name].type}, not {kind}"
    for sample in families["glint_http_requests"].samples:
        assert set(sample.labels) == {"route", "method", "status"}, sample
    for sample in families["glint_http_request_duration_seconds"].samples:
        assert {"route", "method"} <= set(sample.labels), sample
    build = families["glint_build_info"].samples
    assert len(build) == 1 and build[0].value == 1 and "version" in build[0].labels, build
    total = sum(len(f.samples) for f in families.values())
    print(f"{url}: {len(families)} families, {total} samples parsed")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        main(sys.argv[1])
    except AssertionError as e:
        sys.exit(f"metrics_parse: {e}")
