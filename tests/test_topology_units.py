"""The topology harness's pure parts and the bridge's work-pool check, without any service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from flows.devharness.topology import (
    ComposeError,
    interpolate,
    load_compose,
    map_hosts,
    seaweedfs_options,
    service_command,
)
from flows.workpool import missing_worker_message, online_workers

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_interpolation_follows_compose() -> None:
    variables = {"SET": "value", "EMPTY": ""}
    assert interpolate("a ${SET} b", variables) == "a value b"
    assert interpolate("${UNSET:-fallback}/${EMPTY:-fallback}/${EMPTY-kept}", variables) == "fallback/fallback/"
    assert interpolate("$${SET}", variables) == "${SET}"
    with pytest.raises(ComposeError, match="set POSTGRES_PASSWORD"):
        interpolate("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}", variables)
    with pytest.raises(ComposeError):
        interpolate("${EMPTY:?required}", variables)


def test_service_addresses_are_mapped_to_local_ones_and_nothing_else() -> None:
    hosts = {"postgres:5432": "127.0.0.1:40001", "seaweedfs:8333": "127.0.0.1:40002"}
    url = "postgresql+psycopg://proofcheck:pw@postgres:5432/proofcheck"
    assert map_hosts(url, hosts) == "postgresql+psycopg://proofcheck:pw@127.0.0.1:40001/proofcheck"
    assert map_hosts("http://seaweedfs:8333", hosts) == "http://127.0.0.1:40002"
    assert map_hosts("http://my-postgres:5432", hosts) == "http://my-postgres:5432"
    assert map_hosts("postgres:54321", hosts) == "postgres:54321"


def test_the_stack_s_commands_are_what_the_harness_starts() -> None:
    compose = load_compose()
    assert service_command(compose, "bridge") == ["serve", "--no-runner"]
    worker = service_command(compose, "worker")
    assert worker[:2] == ["worker", "start"] and "--no-create-pool-if-not-found" in worker
    options = seaweedfs_options(compose)
    assert "-master.volumeSizeLimitMB=1024" in options
    assert not [o for o in options if o.startswith(("-dir=", "-s3.port=", "-s3.config="))]


def _worker(name: str, seconds_ago: float | None, interval: int | None = 5) -> Any:
    seen = None if seconds_ago is None else NOW - timedelta(seconds=seconds_ago)
    return SimpleNamespace(name=name, last_heartbeat_time=seen, heartbeat_interval_seconds=interval)


def test_a_worker_is_online_while_its_heartbeats_arrive() -> None:
    workers = [_worker("fresh", 4), _worker("late", 16), _worker("never", None), _worker("default", 80, None)]
    assert online_workers(workers, NOW) == ["fresh", "default"]  # 3 x 5 s; 3 x 30 s when unknown


class _Client:
    def __init__(self, pool: str | None, workers: list[Any]) -> None:
        self.pool, self.workers = pool, workers

    def read_deployment(self, deployment_id: Any) -> Any:
        return SimpleNamespace(work_pool_name=self.pool)

    def read_workers_for_work_pool(self, name: str) -> list[Any]:
        assert name == self.pool
        return self.workers


def test_the_bridge_says_when_runs_wait_for_a_pool_without_worker() -> None:
    gone = _worker("machine-1", 3600)
    message = missing_worker_message(_Client("proofcheck", [gone]), "id", 3)
    assert message is not None and "3 validation run(s) waiting" in message and "'proofcheck'" in message
    assert missing_worker_message(_Client("proofcheck", []), "id", 0) is None  # nothing waits
    online = _worker("machine-2", 1)
    online.last_heartbeat_time = datetime.now(UTC)
    assert missing_worker_message(_Client("proofcheck", [gone, online]), "id", 3) is None
    assert missing_worker_message(_Client(None, []), "id", 3) is None  # a runner serves it


def test_the_bridge_names_the_part_that_is_down() -> None:
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    from flows.outages import describe
    from flows.storage import TransientStorageError

    assert describe(TransientStorageError("list packages: EndpointConnectionError")).startswith(
        "S3 storage unreachable or failing (list packages: EndpointConnectionError)"
    )
    request = httpx.Request("POST", "http://127.0.0.1:4200/api/flow_runs/filter")
    failing = PrefectHTTPStatusError.from_httpx_error(
        httpx.HTTPStatusError("boom", request=request, response=httpx.Response(500, request=request))
    )
    assert describe(failing).startswith("Prefect API answered 500: the Prefect server or its database (Postgres)")
    assert describe(httpx.ConnectError("refused")).startswith("Prefect server unreachable at ")
    assert describe(KeyError("x")) == "KeyError"


def test_the_bridge_probe_says_the_prefect_server_is_down_without_waiting_for_retries() -> None:
    """A refused port and a server answering 503: named at once; a healthy server: nothing said."""
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.outages import probe_prefect

    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        free = closed.getsockname()[1]
    status = {"code": 503}

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status["code"] if self.path == "/api/health" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{free}/api"}):
            assert (probe_prefect() or "").startswith("Prefect server unreachable at ")
        with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{server.server_port}/api"}):
            assert (probe_prefect() or "").startswith("Prefect API answered 503: the Prefect server")
            status["code"] = 200
            assert probe_prefect() is None
            _watch_says_down_then_back(status)
    finally:
        server.shutdown()


def _watch_says_down_then_back(status: dict[str, int]) -> None:
    """The bridge's watch thread: one line when the server fails, one when it answers again."""
    import contextvars
    import logging
    import threading
    import time

    from flows.serve import Bridge

    bridge = SimpleNamespace(stopping=threading.Event())
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    keep = Keep()
    logging.getLogger("flows.serve").addHandler(keep)
    # Prefect's temporary settings live in a context variable: the thread runs in a copy of this context.
    watch = threading.Thread(target=contextvars.copy_context().run, args=(Bridge.watch_prefect, bridge, 0.05))
    try:
        status["code"] = 503
        watch.start()
        time.sleep(0.5)
        status["code"] = 200
        time.sleep(0.5)
    finally:
        bridge.stopping.set()
        watch.join(5)
        logging.getLogger("flows.serve").removeHandler(keep)
    assert len(lines) == 2, lines  # said once while down (not at every probe), once when back
    assert lines[0].startswith("Prefect server check failed: Prefect API answered 503")
    assert lines[1].startswith("Prefect server answering again after ")


def test_a_bridge_without_its_deployment_tells_the_operator_to_deploy() -> None:
    from prefect.exceptions import ObjectNotFound

    from flows.outages import missing_deployment

    message = missing_deployment(ObjectNotFound(http_exc=Exception("404")))
    assert "validate-package/validate-package is not registered" in message
    assert "proofcheck deploy --work-pool" in message
    assert missing_deployment(KeyError("x")).endswith("not readable: KeyError")
