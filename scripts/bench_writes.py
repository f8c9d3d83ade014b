#!/usr/bin/env python3
"""Sequential latency of the writes an editor makes, against a running
accords, on the largest partner (whose rollups are the largest):

  bench_writes.py BASE_URL KEY LABEL OUT

create an agreement with areas, pledges and a source; change its status
(PATCH); add a pledge; change the pledge's amount; delete the pledge;
delete the agreement. COUNT rounds; appends one JSON line per write kind to
OUT in the shape bench_queries.py reports. Standard library only.
"""
import http.client
import json
import os
import statistics
import sys
import time
import urllib.parse

COUNT = int(os.environ.get("WRITE_ROUNDS", 30))


def main(base, key, label, out):
    url = urllib.parse.urlparse(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=120)

    def send(method, path, body=None, content_type="application/json"):
        headers = {"Authorization": f"Bearer {key}"}
        if body is not None:
            headers["Content-Type"] = content_type
        started = time.perf_counter()
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        data = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status >= 300:
            sys.exit(f"{method} {path} answered {response.status}: {data[:300]!r}")
        return elapsed, json.loads(data) if data else None

    timings = {}
    for n in range(COUNT):
        agreement = {
            "partner": "US",
            "title": f"Benchmark agreement {n}",
            "kind": "bilateral_security",
            "status": "signed",
            "signed_on": "2024-06-01",
            "areas": ["demining", "training", "air-defence", "energy"],
            "pledges": [
                {"amount": "1000000.50", "currency": "USD", "year_from": 2024, "year_to": 2024, "kind": "military"},
                {"amount": "250000", "currency": "EUR", "year_from": 2025, "year_to": 2026, "kind": "humanitarian"},
            ],
            "sources": [{"url": f"https://example.org/bench/{n}", "title": "Announcement", "pledges": [], "fields": []}],
        }
        steps = []
        elapsed, created = send("POST", "/v1/agreements", agreement)
        steps.append(("write: create an agreement", elapsed))
        path = f"/v1/agreements/{urllib.parse.quote(created['id'])}"
        elapsed, _ = send("PATCH", path, {"status": "in_force"}, "application/merge-patch+json")
        steps.append(("write: change an agreement's status", elapsed))
        elapsed, pledge = send("POST", f"{path}/pledges", {"amount": "5000", "currency": "USD", "year_from": 2024, "kind": "military"})
        steps.append(("write: add a pledge", elapsed))
        pledge_path = f"/v1/pledges/{urllib.parse.quote(pledge['id'])}"
        elapsed, _ = send("PATCH", pledge_path, {"amount": "7500"}, "application/merge-patch+json")
        steps.append(("write: change a pledge's amount", elapsed))
        elapsed, _ = send("DELETE", pledge_path)
        steps.append(("write: delete a pledge", elapsed))
        elapsed, _ = send("DELETE", path)
        steps.append(("write: delete an agreement", elapsed))
        for name, elapsed in steps:
            timings.setdefault(name, []).append(elapsed)
    with open(out, "a") as sink:
        for name, values in timings.items():
            values.sort()
            median = statistics.median(values)
            p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
            sink.write(json.dumps({"run": label, "query": name, "median": round(median, 3), "p99": round(p99, 3), "status": 200, "n": len(values)}) + "\n")
            print(f"{label} {median:9.2f} ms  {name}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
