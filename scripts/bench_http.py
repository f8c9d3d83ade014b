#!/usr/bin/env python3
"""Sequential latency of a list of requests against a running accords.

Usage: bench_http.py BASE_URL REQUESTS LABEL NAME=PATH [NAME=PATH ...]
Prints one Markdown table row per request: | LABEL | NAME | median ms | p99 ms |
and fails unless every answer is a 200.
Standard library only; one keep-alive connection, like a polling dashboard.
"""
import http.client
import statistics
import sys
import time
import urllib.parse


def measure(connection, path, count):
    timings = []
    status = None
    for n in range(count + 10):
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        elapsed = (time.perf_counter() - started) * 1000
        status = response.status
        if n >= 10:  # the first requests warm caches
            timings.append(elapsed)
    timings.sort()
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    return statistics.median(timings), p99, status


def main():
    base, count, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    url = urllib.parse.urlparse(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    for spec in sys.argv[4:]:
        name, path = spec.split("=", 1)
        median, p99, status = measure(connection, path, count)
        if status != 200:
            sys.exit(f"{name}: {path} answered {status}")
        print(f"| {label} | {name} | {median:.2f} | {p99:.2f} |", flush=True)


if __name__ == "__main__":
    main()
