"""The machinery of the attack suite: the server under test, the /healthz
prober, the RSS sampler, a small HTTP client that can speak from any
loopback address, and the checks every attack request passes through.

Python 3.11 standard library only. Everything is bounded: every socket has a
timeout, every attack a time limit, and the server is killed at the end.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parents[2]

PROBLEM_JSON = "application/problem+json"
# The address of the /healthz prober; attackers never use it.
PROBER_ADDRESS = "127.0.0.1"
# The address the suite's own bookkeeping (fingerprints, setup) speaks from.
CONTROL_ADDRESS = "127.0.0.254"

# Which processes this suite started, so that an interrupted run can end
# them (by their id) and nothing else.
_STARTED: set[subprocess.Popen] = set()
_STARTED_LOCK = threading.Lock()


def register_process(process: subprocess.Popen) -> None:
    with _STARTED_LOCK:
        _STARTED.add(process)


def forget_process(process: subprocess.Popen) -> None:
    with _STARTED_LOCK:
        _STARTED.discard(process)


def kill_started_processes() -> None:
    """SIGKILL every process this suite started that is still running."""
    with _STARTED_LOCK:
        processes = list(_STARTED)
    for process in processes:
        if process.poll() is None:
            try:
                process.kill()
            except OSError:
                pass
        try:
            process.wait(timeout=5)
        except (subprocess.TimeoutExpired, OSError):
            pass
        forget_process(process)


def load_average() -> str:
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def listen_overflows() -> int | None:
    """The kernel's count of connections dropped because a listen queue was
    full (TcpExt ListenOverflows, all sockets of this network namespace)."""
    try:
        with open("/proc/net/netstat", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return int(table.get("ListenOverflows", 0))
    return None


def listen_backlog(port: int) -> int | None:
    """The backlog of the listening socket on `port` (ss's Send-Q), if ss is there."""
    try:
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, timeout=10).stdout
        fields = out.split()
        return int(fields[2]) if len(fields) > 2 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(message: str) -> None:
    print(f"hostile: {message}", file=sys.stderr, flush=True)


# --- HTTP ----------------------------------------------------------------------


class TransportError(Exception):
    """No HTTP answer: refused, reset, closed before an answer, timed out."""

    def __init__(self, kind: str, detail: str, elapsed: float = 0.0):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.elapsed = elapsed


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    elapsed: float  # seconds, connect to last byte

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self) -> Any:
        return json.loads(self.body)

    def text(self, limit: int = 300) -> str:
        text = self.body[:limit].decode("utf-8", "replace")
        return text + ("…" if len(self.body) > limit else "")


def _classify(error: BaseException) -> str:
    if isinstance(error, socket.timeout):
        return "timeout"
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, ConnectionResetError):
        return "reset"
    if isinstance(error, BrokenPipeError):
        return "broken-pipe"
    if isinstance(error, (http.client.RemoteDisconnected, http.client.IncompleteRead)):
        return "closed"
    if isinstance(error, http.client.HTTPException):
        return "bad-response"
    return type(error).__name__


def open_socket(port: int, source: str, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return sock


def build_request(
    method: str,
    target: str,
    port: int,
    headers: dict[str, str] | list[tuple[str, str]] | None,
    body: bytes | None,
    keep_alive: bool = False,
) -> bytes:
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in pairs}
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if "connection" not in names:
        lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    for key, value in pairs:
        lines.append(f"{key}: {value}")
    if body is not None and "content-length" not in names:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    return head + (body or b"")


def read_response(sock: socket.socket, method: str, max_body: int = 256 * 1024 * 1024):
    """Parses one answer from a socket (with http.client's parser)."""
    response = http.client.HTTPResponse(sock, method=method)
    response.begin()
    body = response.read(max_body) if method != "HEAD" else b""
    return response, body


def http_request(
    port: int,
    method: str,
    target: str,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes | None = None,
    source: str = CONTROL_ADDRESS,
    timeout: float = 15.0,
) -> Response:
    """One request on a fresh connection from `source`; the answer, or TransportError."""
    started = time.perf_counter()
    try:
        sock = open_socket(port, source, timeout)
    except OSError as error:
        raise TransportError(_classify(error), str(error), time.perf_counter() - started)
    try:
        data = build_request(method, target, port, headers, body)
        send_error: BaseException | None = None
        try:
            sock.sendall(data)
        except OSError as error:
            # The server may have answered early (413, say) and closed: read it.
            send_error = error
        try:
            response, payload = read_response(sock, method)
        except (OSError, http.client.HTTPException) as error:
            cause = send_error or error
            raise TransportError(_classify(cause), str(cause), time.perf_counter() - started)
        return Response(
            status=response.status,
            reason=response.reason,
            headers=list(response.getheaders()),
            body=payload,
            elapsed=time.perf_counter() - started,
        )
    finally:
        sock.close()


# --- the server under test ---------------------------------------------------------


def read_rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class Server:
    """`accords serve` on one store, on a free loopback port, under `ulimit -n`."""

    def __init__(self, binary: str, database_url: str, workdir: Path, label: str, open_files: int = 1024):
        self.binary = binary
        self.database_url = database_url
        self.workdir = workdir
        self.label = label
        self.open_files = open_files
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.log_path = workdir / f"{label}-server.log"
        self.starts = 0
        self.env_overrides: dict[str, str] = {}

    # The environment every run gets: the caller's, minus any accords
    # setting it may carry, plus ours. Rate limits are off so that every
    # attack request reaches the code it attacks; caps and timeouts keep
    # their defaults unless an attack says otherwise.
    def environment(self, overrides: dict[str, str] | None = None) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("ACCORDS_") and k not in ("DATABASE_URL", "LOG_FORMAT")
        }
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "ACCORDS_READ_RATE": "0",
                "ACCORDS_WRITE_RATE": "0",
                "RUST_LOG": os.environ.get("HOSTILE_RUST_LOG", "info,sqlx=warn"),
                "RUST_BACKTRACE": "1",
            }
        )
        env.update(overrides or {})
        return env

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60.0,
            input: bytes | None = None) -> subprocess.CompletedProcess:
        """Runs `accords ARGS` on this store; bounded in time."""
        process = subprocess.Popen(
            [self.binary, *args],
            env=self.environment(env),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        register_process(process)
        try:
            out, err = process.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            return subprocess.CompletedProcess(process.args, -9, out, err + b"\n[killed: timed out]")
        finally:
            forget_process(process)
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    def start(self, overrides: dict[str, str] | None = None, ready_timeout: float = 180.0) -> None:
        if self.process is not None:
            raise RuntimeError("server already running")
        self.env_overrides = dict(overrides or {})
        self.port = free_port()
        env = self.environment(self.env_overrides)
        env["ACCORDS_BIND"] = f"127.0.0.1:{self.port}"
        self.starts += 1
        logfile = open(self.log_path, "ab")
        logfile.write(f"\n===== start {self.starts} {time.strftime('%H:%M:%S')} {self.env_overrides}\n".encode())
        logfile.flush()
        # `ulimit -n` in a shell that then becomes the server (exec): the
        # pid we hold is the server's.
        self.process = subprocess.Popen(
            ["sh", "-c", f'ulimit -n {self.open_files} && exec "$0" serve', self.binary],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=logfile,
            start_new_session=True,
        )
        logfile.close()
        register_process(self.process)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self._forget()
                raise RuntimeError(f"{self.label}: the server exited ({code}) before it was ready:\n{self.log_tail()}")
            try:
                r = http_request(self.port, "GET", "/readyz", timeout=2.0)
                if r.status == 200:
                    return
            except TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"{self.label}: /readyz did not answer 200 within {ready_timeout:.0f} s:\n{self.log_tail()}")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_code(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def rss_mib(self) -> float | None:
        return read_rss_mib(self.process.pid) if self.alive() else None

    def _forget(self) -> None:
        if self.process is not None:
            forget_process(self.process)
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGKILL)
            except OSError:
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._forget()

    def stop(self, grace: float = 8.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds; the exit code (None if killed)."""
        if self.process is None:
            return None
        process = self.process
        if process.poll() is None:
            try:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            except OSError:
                pass
        code = process.returncode
        self._forget()
        return code

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


# --- the prober and the RSS sampler -----------------------------------------------------


def _probe_once(port: int, timeout: float) -> tuple[int | None, str]:
    sock = open_socket(port, PROBER_ADDRESS, timeout)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if match and len(rest) >= int(match.group(1)):
                    break
        if not data:
            return None, "closed without an answer"
        match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
        if not match:
            return None, f"not HTTP: {data[:60]!r}"
        return int(match.group(1)), ""
    finally:
        sock.close()


def _prober_main(port, epoch, paused, stop, connection, interval, timeout, ready):
    # A process of its own: the attack's threads cannot delay it through the
    # GIL; and ahead of the attacker in the run queue where allowed (root), so
    # what it measures is the server's delay rather than its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.nice(-5)
    except OSError:
        pass
    worst = 0.0
    worst_at = 0.0
    count = 0
    latencies: list[float] = []
    failures: list[str] = []
    failure_count = 0
    # Warm-up probes, not counted: the first ones of a freshly forked process
    # pay for its page faults, not for the server's delay.
    for _ in range(3):
        try:
            _probe_once(port.value, timeout)
        except OSError:
            pass
    ready.set()
    started = time.monotonic()
    while not stop.is_set():
        if paused.value:
            time.sleep(0.01)
            continue
        begun_epoch = epoch.value
        t0 = time.perf_counter()
        try:
            status, problem = _probe_once(port.value, timeout)
        except OSError as error:
            status, problem = None, f"{_classify(error)}: {error}"
        ms = (time.perf_counter() - t0) * 1000.0
        if paused.value or epoch.value != begun_epoch:
            continue  # overlapped a deliberate restart: not counted
        count += 1
        latencies.append(ms)
        if ms > worst:
            worst = ms
            worst_at = time.monotonic() - started
        if status != 200:
            failure_count += 1
            if len(failures) < 5:
                failures.append(f"t+{time.monotonic() - started:.1f}s: {status or problem} after {ms:.0f} ms")
        time.sleep(interval)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0

    connection.send(
        {
            "count": count,
            "worst_ms": worst,
            "worst_at_s": worst_at,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "over_limit": 0,
            "failures": failures,
            "failure_count": failure_count,
            "latencies": latencies[-20:],
        }
    )
    connection.close()


class Prober:
    """GET /healthz from 127.0.0.1 on a new connection every `interval` s, in
    its own process; records the worst latency and every non-200."""

    def __init__(self, interval: float = 0.02, timeout: float = 2.0):
        self.ctx = multiprocessing.get_context("fork")
        self.port = self.ctx.Value("i", 0)
        self.epoch = self.ctx.Value("i", 0)
        self.paused = self.ctx.Value("b", 0)
        self.stop_event = self.ctx.Event()
        self.ready = self.ctx.Event()
        self.interval = interval
        self.timeout = timeout
        self.process = None
        self.receiver = None

    def start(self, port: int) -> None:
        self.port.value = port
        self.paused.value = 0
        self.stop_event.clear()
        self.ready.clear()
        self.receiver, sender = self.ctx.Pipe(duplex=False)
        self.process = self.ctx.Process(
            target=_prober_main,
            args=(self.port, self.epoch, self.paused, self.stop_event, sender, self.interval, self.timeout, self.ready),
            daemon=True,
        )
        self.process.start()
        sender.close()
        self.ready.wait(10)

    def pause(self) -> None:
        with self.epoch.get_lock():
            self.paused.value = 1
            self.epoch.value += 1

    def resume(self, port: int | None = None) -> None:
        if port is not None:
            self.port.value = port
        with self.epoch.get_lock():
            self.epoch.value += 1
            self.paused.value = 0

    def finish(self) -> dict:
        if self.process is None:
            return {"count": 0, "worst_ms": 0.0, "failures": [], "failure_count": 0}
        self.stop_event.set()
        result = None
        if self.receiver.poll(self.timeout + 10):
            try:
                result = self.receiver.recv()
            except EOFError:
                result = None
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.process = None
        return result or {"count": 0, "worst_ms": 0.0, "failures": ["the prober died"], "failure_count": 1}


class RssSampler(threading.Thread):
    """VmRSS of the server every `interval` s; follows the server across restarts."""

    def __init__(self, server: Server, interval: float = 0.05):
        super().__init__(daemon=True)
        self.server = server
        self.interval = interval
        self.peak = 0.0
        self.window_peak = 0.0
        self.samples = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(self.interval)

    def sample(self) -> float | None:
        pid = self.server.pid
        rss = read_rss_mib(pid) if pid else None
        if rss is not None:
            self.samples += 1
            self.peak = max(self.peak, rss)
            self.window_peak = max(self.window_peak, rss)
        return rss

    def mark(self) -> None:
        """Starts a new window for `since_mark`."""
        self.window_peak = 0.0
        self.sample()

    def since_mark(self) -> float:
        """The peak RSS since the last mark."""
        self.sample()
        return self.window_peak

    def finish(self) -> float:
        self.halt.set()
        self.join(timeout=2)
        self.sample()
        return self.peak


# --- one attack's bookkeeping ------------------------------------------------------------


class AttackAborted(Exception):
    pass


@dataclass
class Outcome:
    name: str
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    worst_ms: float = 0.0
    probes: int = 0
    peak_rss: float = 0.0
    baseline_rss: float = 0.0
    seconds: float = 0.0
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    skipped: str = ""
    rerun: bool = False

    @property
    def passed(self) -> bool:
        return not self.failures and not self.skipped


class Context:
    """What an attack works with: the server, its key, the request helper
    that checks every answer, and the failure list."""

    def __init__(self, suite, server: Server, outcome: Outcome, time_limit: float):
        self.suite = suite
        self.server = server
        self.outcome = outcome
        self.quick: bool = suite.quick
        self.backend: str = server.label
        self.key: str = suite.keys.get(server.label, "")
        self.started = time.monotonic()
        self.deadline = self.started + time_limit
        self.abort = threading.Event()
        self.prober: Prober | None = None
        self.sampler: RssSampler | None = None
        self._lock = threading.Lock()
        self._grouped: dict[str, list] = {}
        self._sockets: set[socket.socket] = set()
        self.observed: set[tuple[str, str, int]] = set()

    # -- settings: the attack's override, else the binary's default --
    def setting(self, name: str, fallback: int) -> int:
        value = self.server.env_overrides.get(name, self.suite.defaults.get(name))
        try:
            return int(value) if value is not None else fallback
        except ValueError:
            return fallback

    def mark_rss(self) -> None:
        if self.sampler is not None:
            self.sampler.mark()

    def peak_rss_since_mark(self) -> float:
        return self.sampler.since_mark() if self.sampler is not None else (self.server.rss_mib() or 0.0)

    # -- time --
    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check_time(self) -> None:
        if self.abort.is_set() or time.monotonic() > self.deadline:
            raise AttackAborted("time limit reached")

    # -- findings --
    def fail(self, message: str, group: str | None = None) -> None:
        """Records a failed check; messages of one group are counted, the first kept."""
        with self._lock:
            if group is None:
                if len(self.outcome.failures) < 200:
                    self.outcome.failures.append(message)
                return
            entry = self._grouped.get(group)
            if entry is None:
                self._grouped[group] = [1, message]
            else:
                entry[0] += 1

    def check(self, condition: bool, message: str, group: str | None = None) -> bool:
        if not condition:
            self.fail(message, group)
        return condition

    def note(self, message: str) -> None:
        with self._lock:
            self.outcome.notes.append(message)

    def collect_grouped(self) -> None:
        with self._lock:
            for group, (count, first) in self._grouped.items():
                suffix = f" (×{count}; first shown)" if count > 1 else ""
                self.outcome.failures.append(f"{first}{suffix}")
            self._grouped.clear()

    # -- sockets an attack holds open; closed on abort --
    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        try:
            sock.close()
        except OSError:
            pass

    def close_all(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for sock in sockets:
            try:
                sock.close()
            except OSError:
                pass

    # -- requests --
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def request(
        self,
        method: str,
        target: str,
        *,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        body: bytes | str | None = None,
        json_body: Any = None,
        key: bool = False,
        source: str = "127.0.0.2",
        timeout: float = 20.0,
        expect: int | Iterable[int] | None = None,
        allow_5xx: Iterable[int] = (),
        label: str | None = None,
        transport_ok: bool = False,
        record: bool = True,
    ) -> Response | None:
        """Sends one request and checks its answer: never a 5xx (unless
        allowed), every 4xx and 5xx a problem+json object whose status is the
        answer's, and the expected status when one is given. None when there
        was no answer (a failure unless `transport_ok`)."""
        self.check_time()
        pairs: list[tuple[str, str]] = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if key:
            pairs.append(("Authorization", f"Bearer {self.key}"))
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False)
            if not any(k.lower() == "content-type" for k, _ in pairs):
                pairs.append(("Content-Type", "application/json"))
        if isinstance(body, str):
            body = body.encode("utf-8")
        what = label or f"{method} {target[:120]}{'…' if len(target) > 120 else ''}"
        try:
            response = http_request(self.server.port, method, target, pairs, body, source=source, timeout=timeout)
        except TransportError as error:
            if not transport_ok:
                self.fail(f"{what}: no answer ({error.kind}: {error.detail[:120]}) after {error.elapsed:.2f} s",
                          group=f"transport {label or method} {error.kind}")
            return None
        self.observe(method, target, response, what, expect, allow_5xx, record)
        return response

    def observe(self, method: str, target: str, response: Response, what: str,
                expect: int | Iterable[int] | None = None, allow_5xx: Iterable[int] = (),
                record: bool = True) -> None:
        status = response.status
        with self._lock:
            self.outcome.requests += 1
            self.outcome.statuses[status] = self.outcome.statuses.get(status, 0) + 1
            if record:
                self.observed.add((method, target.split("?", 1)[0], status))
        if status >= 500 and status not in set(allow_5xx):
            self.fail(f"{what}: {status} — {response.text(200)}", group=f"5xx {what[:40]} {status}")
        if status >= 400:
            problem = problem_defect(response)
            if problem:
                self.fail(f"{what}: {status} is not problem+json: {problem}", group=f"problem {what[:40]} {status}")
        if expect is not None:
            wanted = {expect} if isinstance(expect, int) else set(expect)
            if status not in wanted:
                self.fail(
                    f"{what}: expected {'/'.join(map(str, sorted(wanted)))}, got {status} — {response.text(240)}",
                    group=f"expect {what[:60]} {status}",
                )

    # -- the store, as the outside sees it --
    def fingerprint(self) -> dict[str, Any]:
        return store_fingerprint(self.server.port)


def problem_defect(response: Response) -> str:
    """Why an error answer is not a proper problem+json document ('' if it is)."""
    content_type = (response.header("content-type") or "").lower()
    if not content_type.startswith(PROBLEM_JSON):
        return f"content-type {content_type or '(none)'!r}, body {response.text(120)!r}"
    try:
        body = response.json()
    except ValueError:
        return f"body is not JSON: {response.text(120)!r}"
    if not isinstance(body, dict):
        return "body is not a JSON object"
    missing = [k for k in ("type", "title", "status") if k not in body]
    if missing:
        return f"members missing: {', '.join(missing)}"
    if body.get("status") != response.status:
        return f'"status" is {body.get("status")!r}, the answer {response.status}'
    return ""


def store_fingerprint(port: int) -> dict[str, Any]:
    """The head of the change feed and a digest of every agreement, partner,
    area and rate, read over HTTP from the control address."""
    digest = hashlib.sha256()
    head = 0
    since = 0
    for _ in range(1000):
        r = http_request(port, "GET", f"/v1/changes?since={since}&limit=500", timeout=30)
        if r.status != 200:
            raise RuntimeError(f"GET /v1/changes answered {r.status}: {r.text()}")
        page = r.json()
        items = page.get("items", [])
        if not items:
            break
        head = max(head, max(item.get("seq", 0) for item in items))
        nxt = page.get("next_since")
        if nxt is None or nxt <= since:
            break
        since = nxt
    for target in ("/v1/agreements?format=ndjson", "/v1/partners", "/v1/areas", "/v1/rates"):
        cursor = None
        for _ in range(1000):
            url = target
            if not target.endswith("ndjson"):
                url = f"{target}?limit=500" + (f"&cursor={cursor}" if cursor else "")
            r = http_request(port, "GET", url, timeout=60)
            if r.status != 200:
                raise RuntimeError(f"GET {url} answered {r.status}: {r.text()}")
            digest.update(url.encode() + b"\0" + r.body)
            if target.endswith("ndjson"):
                break
            cursor = r.json().get("next_cursor")
            if not cursor:
                break
    return {"head": head, "digest": digest.hexdigest()[:16]}


def serve_defaults(binary: str) -> dict[str, str]:
    """Each setting's default, as `accords serve --help` prints it."""
    try:
        text = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return dict(re.findall(r"\[env: (\w+)=[^\]]*\]\s*\n\s*\[default: ([^\]]*)\]", text))


def run_bounded(fn: Callable[[], Any], limit: float) -> tuple[bool, Any, BaseException | None]:
    """Runs fn in a thread for at most `limit` s: (finished, result, error)."""
    box: dict[str, Any] = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as error:  # noqa: BLE001 - reported by the caller
            box["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit)
    return (not thread.is_alive(), box.get("result"), box.get("error"))
