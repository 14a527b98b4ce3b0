"""Fault injection for the soak test: a failing network in front of S3, a chaotic event path, dying processes.

Run-on-demand tooling, never imported by the pipeline. Three injectors, each counting what it did:

- ``S3FaultProxy``: a loopback HTTP proxy in front of moto. The pipeline's endpoint points at it; during a
  fault window it answers S3 requests (bucket paths) with 503 SlowDown, 500 InternalError, or resets the
  connection. SQS calls (JSON protocol on ``/``) pass through untouched: the event path has its own chaos.
- ``EventChaos``: S3 notifications land in a queue the bridge does not read; a thread moves them to the
  bridge's queue, dropping some (a lost event), duplicating some, holding some back (reordering) and
  re-sending old ones late (a replay), so reconcile and idempotency are what keep the intake whole.
- ``kill_clamd``/``restart_clamd`` and ``kill_group``: SIGKILL by the PID we recorded, never by name.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

S3_FAULT_KINDS = ("s3-503", "s3-500", "s3-reset")
_CHUNK = 256 * 1024
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}
_ERRORS = {
    "s3-503": (503, b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"),
    "s3-500": (500, b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>"),
}


class _ProxyState:
    """What the proxy does now; shared by its handler threads."""

    def __init__(self, upstream: str, bucket: str) -> None:
        target = urllib.parse.urlsplit(upstream)
        self.host = target.hostname or "127.0.0.1"
        self.port = target.port or 80
        self.bucket_path = f"/{bucket}"
        self.lock = threading.Lock()
        self.kind: str | None = None
        self.until = 0.0
        self.requests = 0
        self.faulted: Counter[str] = Counter()

    def fault_for(self, path: str) -> str | None:
        """The fault to answer this request with (S3 bucket requests only, inside a window)."""
        if not (path == self.bucket_path or path.startswith(self.bucket_path + "/") or
                path.startswith(self.bucket_path + "?")):
            return None
        with self.lock:
            self.requests += 1
            if self.kind is None or time.monotonic() >= self.until:
                return None
            self.faulted[self.kind] += 1
            return self.kind


class _ProxyHandler(BaseHTTPRequestHandler):
    state: ClassVar[_ProxyState]
    protocol_version = "HTTP/1.1"  # boto3 keeps connections alive; a reset must hit a live one

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the soak prints its own summary
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0): what a crashing load balancer looks like to the client."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _forward(self) -> None:
        body = self._read_body()
        fault = self.state.fault_for(urllib.parse.urlsplit(self.path).path)
        if fault == "s3-reset":
            self._reset()
            return
        if fault is not None:
            status, payload = _ERRORS[fault]
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        conn = http.client.HTTPConnection(self.state.host, self.state.port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            answer = conn.getresponse()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in _HOP_HEADERS:
                    self.send_header(name, value)
            length = answer.getheader("Content-Length")
            if self.command == "HEAD":  # the length of the object, with no body
                self.send_header("Content-Length", length or "0")
                self.end_headers()
                return
            if length is None:
                data = answer.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_header("Content-Length", length)
            self.end_headers()
            while chunk := answer.read(_CHUNK):  # streamed: MB-sized packages are not held whole
                self.wfile.write(chunk)
        except OSError:
            self._reset()  # moto itself failed: the client sees a broken connection, as it would
        finally:
            conn.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that died (a killed serving process) or a connection we reset: expected here."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class S3FaultProxy:
    """A loopback proxy in front of an S3 endpoint that fails S3 requests during fault windows."""

    def __init__(self, upstream: str, bucket: str) -> None:
        self.state = _ProxyState(upstream, bucket)
        handler = type("Handler", (_ProxyHandler,), {"state": self.state})
        self.server = _QuietServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="s3-fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> S3FaultProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_for(self, kind: str, seconds: float) -> None:
        """Answer every S3 request with ``kind`` for the next ``seconds``."""
        if kind not in S3_FAULT_KINDS:
            raise ValueError(f"unknown S3 fault {kind!r}")
        with self.state.lock:
            self.state.kind = kind
            self.state.until = time.monotonic() + seconds

    @property
    def faulted(self) -> dict[str, int]:
        with self.state.lock:
            return dict(self.state.faulted)

    @property
    def requests(self) -> int:
        return self.state.requests


@dataclass
class EventChaosOptions:
    drop: float = 0.10  # share of events deleted before the bridge can see them
    duplicate: float = 0.10  # share forwarded twice (the copy after a short delay)
    delay: float = 0.15  # share held back 5-30 s, so later uploads overtake them
    replay_every: float = 20.0  # seconds between re-sends of an old event (0: never)
    seed: int = 8


@dataclass
class EventChaos:
    """Moves S3 events from the notification queue to the bridge's queue, badly on purpose."""

    sqs: Any
    source_url: str
    target_url: str
    options: EventChaosOptions = field(default_factory=EventChaosOptions)
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.options.seed)  # noqa: S311 (reproducible chaos, not a secret)
        self.held: list[tuple[float, str]] = []
        self.history: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="event-chaos", daemon=True)
        self.next_replay = time.monotonic() + self.options.replay_every

    def start(self) -> EventChaos:
        self.thread.start()
        return self

    def stop(self, flush: bool = True) -> None:
        """Stop; with ``flush``, deliver what is still held back (a delayed event is late, not lost)."""
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(15)
        if flush:
            for _, body in self.held:
                self._send(body, "delivered")
            self.held.clear()

    def _send(self, body: str, counted_as: str) -> None:
        try:
            self.sqs.send_message(QueueUrl=self.target_url, MessageBody=body)
            self.counts[counted_as] += 1
        except Exception:
            self.counts["send-failed"] += 1

    def _route(self, body: str) -> None:
        roll = self.rng.random()
        self.history.append(body)
        if roll < self.options.drop:
            self.counts["event-dropped"] += 1
            return
        roll -= self.options.drop
        if roll < self.options.duplicate:
            self._send(body, "delivered")
            self.held.append((time.monotonic() + self.rng.uniform(0.5, 5.0), body))
            self.counts["event-duplicated"] += 1
            return
        roll -= self.options.duplicate
        if roll < self.options.delay:
            self.held.append((time.monotonic() + self.rng.uniform(5.0, 30.0), body))
            self.counts["event-delayed"] += 1
            return
        self._send(body, "delivered")

    def _release_due(self) -> None:
        now = time.monotonic()
        due = [item for item in self.held if item[0] <= now]
        self.held = [item for item in self.held if item[0] > now]
        for _, body in due:
            self._send(body, "delivered")
        if self.options.replay_every and self.history and now >= self.next_replay:
            self.next_replay = now + self.options.replay_every
            self._send(self.rng.choice(self.history), "event-replayed")

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                answer = self.sqs.receive_message(
                    QueueUrl=self.source_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=30
                )
                for message in answer.get("Messages", []):
                    body = message.get("Body", "")
                    if '"Records"' in body:  # skip s3:TestEvent and the like
                        self._route(body)
                    self.sqs.delete_message(QueueUrl=self.source_url, ReceiptHandle=message["ReceiptHandle"])
                self._release_due()
            except Exception:
                self.counts["chaos-error"] += 1
                self.stopping.wait(1.0)


# -- processes ---------------------------------------------------------------------------------------------


def clamd_pid(directory: Path) -> int | None:
    """The PID clamd_manager recorded for the private clamd of ``directory``."""
    try:
        state = json.loads((directory / "proofcheck-clamd.json").read_text(encoding="utf-8"))
        return int(state["pid"])
    except (OSError, ValueError, KeyError):
        return None


def kill_clamd(directory: Path) -> bool:
    """SIGKILL the private clamd of ``directory`` (no clean shutdown, as in a crash or OOM kill)."""
    pid = clamd_pid(directory)
    if pid is None:
        return False
    return kill_pid(pid)


def restart_clamd(directory: Path) -> bool:
    """Start the private clamd of ``directory`` again: same socket, so clients reconnect on their own."""
    answer = subprocess.run(
        [sys.executable, "-m", "validators.ssi.clamd_manager", "start", "--dir", str(directory)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    return answer.returncode == 0


def kill_group(pid: int) -> bool:
    """SIGKILL a process group we started (the serving process and the flow runs it spawned)."""
    return _sigkill(os.killpg, pid)


def kill_pid(pid: int) -> bool:
    """SIGKILL one process we identified by PID."""
    return _sigkill(os.kill, pid)


def _sigkill(send: Any, pid: int) -> bool:
    try:
        send(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def processes_with_env(name: str, value: str) -> list[int]:
    """PIDs of this user's processes whose environment holds ``name=value`` (a marker unique to one run).

    Flow runs started by a killed runner can outlive it; this finds exactly ours for the final cleanup.
    """
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


__all__ = [
    "S3_FAULT_KINDS",
    "EventChaos",
    "EventChaosOptions",
    "S3FaultProxy",
    "clamd_pid",
    "kill_clamd",
    "kill_group",
    "kill_pid",
    "processes_with_env",
    "restart_clamd",
]
