#!/usr/bin/env python3
"""Reading the past, timed: one agreement now and at a past revision, after
a run of writes (scripts/bench-revisions drives it).

    bench_revisions.py write URL KEY WRITES        # the history: WRITES edits
    bench_revisions.py read URL LABEL WRITES       # now vs ?revision=, one line
"""
import json
import statistics
import sys
import time
import urllib.request

TARGET = "ua-jp-2024"
REQUESTS = 300


def call(method, url, key=None, body=None):
    request = urllib.request.Request(url, method=method)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    data = None
    if body is not None:
        request.add_header("Content-Type", "application/merge-patch+json")
        data = json.dumps(body).encode()
    with urllib.request.urlopen(request, data) as response:
        return response.status, dict(response.headers), response.read()


def write(base, key, writes):
    """Alternately the target agreement's title and its first pledge's
    amount: the target ends with `writes` versions (its pledge's edits move
    its version too), the store with `writes` revisions more."""
    _, _, body = call("GET", f"{base}/v1/agreements/{TARGET}")
    pledge = json.loads(body)["pledges"][0]["id"]
    started = time.monotonic()
    for i in range(writes):
        if i % 2 == 0:
            call("PATCH", f"{base}/v1/agreements/{TARGET}", key, {"title": f"Accord, edit {i}"})
        else:
            call("PATCH", f"{base}/v1/pledges/{pledge}", key, {"amount": str(4_500_000_000 + i)})
    print(f"{writes} writes in {time.monotonic() - started:.1f} s", file=sys.stderr)


def timed(url):
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        status, _, _ = call("GET", url)
        times.append((time.perf_counter() - started) * 1000)
        assert status == 200, (url, status)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9)]


def read(base, label, writes):
    _, headers, _ = call("GET", f"{base}/v1/agreements/{TARGET}")
    latest = int(headers["accords-revision"])
    # Half-way back through the edits (at most 500): an old version of the target.
    past = latest - min(500, writes // 2)
    now_url = f"{base}/v1/agreements/{TARGET}"
    past_url = f"{now_url}?revision={past}"
    for url in (now_url, past_url):
        for _ in range(20):
            call("GET", url)
    now = timed(now_url)
    then = timed(past_url)
    print(
        f"| {label} | {now[0]:.2f} / {now[1]:.2f} | {then[0]:.2f} / {then[1]:.2f} | {then[0] / now[0]:.2f}x |"
    )


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        read(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 1000)
