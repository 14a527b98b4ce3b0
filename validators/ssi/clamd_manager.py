"""Find the clamd to use, or run a private one with the project's hardened configuration.

Order: the ``clamd`` setting (``$PROOFCHECK_CLAMD``: ``unix:/path`` or ``host:port``); else a private
clamd when ClamAV is installed (``clamd_binary``, else ``/usr/sbin/clamd``), in a private directory, on
a unix socket, with explicit limits and every alert on. Its signatures are a production database when
one is given (``clamd_database``: a freshclam directory), else the machine's freshclam database, else a
tiny test database written here (EICAR, a project marker), since signatures cannot be downloaded in CI.
It is stopped by its PID, never by name. Also a command for Makefile/CI::

    python -m validators.ssi.clamd_manager start|stop|status --dir DIR [--database DIR]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from validators.settings import EngineSettings
from validators.ssi.clamd_client import ClamdAddress, ClamdClient, ClamdError

ENV_ADDRESS = EngineSettings.variable_of("clamd")
ENV_BINARY = EngineSettings.variable_of("clamd_binary")
SYSTEM_DATABASE_DIR = Path("/var/lib/clamav")  # Debian's freshclam target
DEFAULT_BINARY = "/usr/sbin/clamd"
START_TIMEOUT = 60.0  # a full production database takes 10-30 s to load; the test one ~30 ms
# (a production-size synthetic set took 108 s on 2 cores at load ~10: benchmarks pass a longer timeout)
SIGNATURES_TEST = "test"
SIGNATURES_PRODUCTION = "production"

# The EICAR test string, in two halves so that no file of the repository holds it whole (scanners on
# developer machines would quarantine the source).
_EICAR_HEAD = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$"
_EICAR_TAIL = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
# A marker of our own, so tests can plant "malware" anywhere (inside PDFs, zips...) without EICAR's
# position rules getting in the way.
_MARKER_HEAD = "PROOFCHECK-TEST-MALWARE-"
_MARKER_TAIL = "MARKER-7f3c9a1e"


def eicar() -> bytes:
    return (_EICAR_HEAD + _EICAR_TAIL).encode("ascii")


def test_marker() -> bytes:
    return (_MARKER_HEAD + _MARKER_TAIL).encode("ascii")


TEST_SIGNATURES = {
    "Proofcheck.Test.EICAR": eicar,
    "Proofcheck.Test.Marker": test_marker,
}

# Explicit limits (never rely on a distribution's defaults) and every alert on: by default clamd answers
# a silent OK past a limit or on encrypted content (docs/domain.md §5).
HARDENED_OPTIONS: tuple[tuple[str, str], ...] = (
    ("Foreground", "yes"),
    ("LocalSocketMode", "600"),
    ("MaxThreads", "4"),
    ("MaxQueue", "32"),
    ("ReadTimeout", "120"),
    ("CommandReadTimeout", "10"),
    ("SendBufTimeout", "500"),
    ("StreamMaxLength", "512M"),
    ("MaxScanSize", "1024M"),
    ("MaxFileSize", "512M"),
    ("MaxRecursion", "16"),
    ("MaxFiles", "10000"),
    ("MaxScanTime", "120000"),
    ("MaxEmbeddedPE", "64M"),
    ("MaxHTMLNormalize", "40M"),
    ("MaxScriptNormalize", "20M"),
    ("MaxPartitions", "50"),
    ("AlertExceedsMax", "yes"),
    ("AlertEncrypted", "yes"),
    ("AlertEncryptedArchive", "yes"),
    ("AlertEncryptedDoc", "yes"),
    ("AlertBrokenExecutables", "yes"),
    ("AlertOLE2Macros", "yes"),
    ("AlertPartitionIntersection", "yes"),
    ("HeuristicAlerts", "yes"),
    ("ScanPE", "yes"),
    ("ScanELF", "yes"),
    ("ScanOLE2", "yes"),
    ("ScanPDF", "yes"),
    ("ScanHTML", "yes"),
    ("ScanMail", "yes"),
    ("ScanArchive", "yes"),
    ("Bytecode", "yes"),
    ("ExitOnOOM", "yes"),
    ("LogTime", "yes"),
    ("LogFileMaxSize", "10M"),
)


@dataclass(frozen=True)
class ClamdEndpoint:
    """A clamd to talk to, and what we know of its signatures."""

    address: ClamdAddress
    source: str  # "configured" or "private"
    signatures: str | None = None  # SIGNATURES_TEST / SIGNATURES_PRODUCTION when we wrote the config


# Popen objects of the clamds this process started, kept so they can be reaped when stopped.
_processes: dict[int, subprocess.Popen[bytes]] = {}


class ClamdStartError(RuntimeError):
    """The private clamd did not come up (its log is in the private directory)."""


def clamd_binary(settings: Mapping[str, Any] | None = None) -> str | None:
    """The clamd program: the ``clamd_binary`` setting when it is one, else Debian's, else on the PATH."""
    configured = EngineSettings.coerce(settings).clamd_binary
    candidate = str(configured) if configured else DEFAULT_BINARY
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    return shutil.which("clamd")


def write_test_database(database_dir: Path) -> None:
    """The tiny hand-written database: one .ndb body signature per test string (hex, any offset)."""
    database_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"{name}:0:*:{make().hex()}" for name, make in TEST_SIGNATURES.items()]
    (database_dir / "proofcheck-test.ndb").write_text("\n".join(lines) + "\n", encoding="ascii")


def render_config(directory: Path, database_dir: Path, tcp_port: int | None = None) -> str:
    paths = (
        ("LocalSocket", directory / "clamd.sock"),
        ("PidFile", directory / "clamd.pid"),
        ("DatabaseDirectory", database_dir),
        ("TemporaryDirectory", directory / "tmp"),
        ("LogFile", directory / "clamd.log"),
    )
    lines = ["# Written by proofcheck (validators/ssi/clamd_manager.py): private, hardened clamd."]
    lines += [f"{key} {value}" for key, value in paths]
    if tcp_port is not None:
        # Loopback only: production reaches its clamd over TCP (INSTREAM), and the benchmarks compare
        # that transport with FILDES on the same clamd.
        lines += [f"TCPSocket {tcp_port}", "TCPAddr 127.0.0.1"]
    lines += [f"{key} {value}" for key, value in HARDENED_OPTIONS]
    return "\n".join(lines) + "\n"


def _state_file(directory: Path) -> Path:
    return directory / "proofcheck-clamd.json"


def _is_our_clamd(pid: int, config: Path) -> bool:
    """The PID still belongs to the clamd we started with this config (PIDs get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(part.endswith(b"clamd") for part in cmdline[:1]) and str(config).encode() in cmdline


def start(
    directory: Path, database: Path | None = None, timeout: float = START_TIMEOUT, tcp_port: int | None = None
) -> ClamdEndpoint:
    """Start a private clamd in ``directory`` (created, private) and wait until it answers PING.

    ``tcp_port``: also listen on 127.0.0.1 at that port (the endpoint stays the unix socket).
    """
    binary = clamd_binary()
    if binary is None:
        raise ClamdStartError("ClamAV is not installed (no clamd binary)")
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    (directory / "tmp").mkdir(exist_ok=True, mode=0o700)
    running = status(directory)
    if running is not None:
        return running
    if database is None:
        database_dir = directory / "db"
        write_test_database(database_dir)
        signatures = SIGNATURES_TEST
    else:
        database_dir = database.resolve()
        signatures = SIGNATURES_PRODUCTION
    config = directory / "clamd.conf"
    config.write_text(render_config(directory, database_dir, tcp_port), encoding="ascii")
    socket_path = directory / "clamd.sock"
    socket_path.unlink(missing_ok=True)
    with open(directory / "clamd.stderr", "ab") as errors:
        process = subprocess.Popen(
            [binary, "--config-file", str(config), "--foreground"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,  # outlives `start` when run from the command line; stopped by PID
            close_fds=True,
        )
    _processes[process.pid] = process
    endpoint = ClamdEndpoint(ClamdAddress(unix_path=str(socket_path)), "private", signatures)
    _state_file(directory).write_text(
        json.dumps(
            {"pid": process.pid, "config": str(config), "socket": str(socket_path), "signatures": signatures}
        ),
        encoding="utf-8",
    )
    client = ClamdClient(endpoint.address, connect_timeout=1.0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClamdStartError(
                f"clamd exited with status {process.returncode}; see {directory / 'clamd.log'}"
            )
        try:
            client.ping()
            return endpoint
        except ClamdError:
            time.sleep(0.02)
    stop(directory)
    raise ClamdStartError(f"clamd did not answer within {timeout:.0f} s; see {directory / 'clamd.log'}")


def _read_state(directory: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(_state_file(directory).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state


def status(directory: Path) -> ClamdEndpoint | None:
    """The private clamd of ``directory`` if it is running and answers, else None."""
    state = _read_state(directory.resolve())
    if state is None or not _is_our_clamd(int(state["pid"]), Path(state["config"])):
        return None
    endpoint = ClamdEndpoint(ClamdAddress(unix_path=state["socket"]), "private", state.get("signatures"))
    try:
        ClamdClient(endpoint.address, connect_timeout=1.0).ping()
    except ClamdError:
        return None
    return endpoint


def stop(directory: Path, timeout: float = 10.0) -> bool:
    """Stop the private clamd of ``directory`` by its PID (TERM, then KILL). True if one was stopped."""
    directory = directory.resolve()
    state = _read_state(directory)
    if state is None:
        return False
    pid = int(state["pid"])
    if not _is_our_clamd(pid, Path(state["config"])):
        _state_file(directory).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    process = _processes.pop(pid, None)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _is_our_clamd(pid, Path(state["config"])):
        if process is not None:
            process.poll()  # reaps our own child, so it does not linger as a zombie
        time.sleep(0.02)
    if _is_our_clamd(pid, Path(state["config"])):
        os.kill(pid, signal.SIGKILL)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    _state_file(directory).unlink(missing_ok=True)
    return True


@contextlib.contextmanager
def private_clamd(
    directory: Path, database: Path | None = None, *, timeout: float = START_TIMEOUT, tcp_port: int | None = None
) -> Iterator[dict[str, str]]:
    """Run a private clamd for the duration of a block; yields the engine settings that use it.

    Yields ``{}`` when ClamAV is not installed, so the antivirus check then reports "not run".
    """
    if clamd_binary() is None:
        yield {}
        return
    endpoint = start(directory, database, timeout, tcp_port)
    try:
        yield {"clamd": str(endpoint.address), "clamd_signatures": endpoint.signatures or ""}
    finally:
        stop(directory)


# --- the process-wide endpoint used by the antivirus check -------------------------------------------

_lock = threading.Lock()
_private: dict[str, ClamdEndpoint] = {}


def _stop_private_dirs(directories: list[Path]) -> None:
    for directory in directories:
        with contextlib.suppress(OSError):
            stop(directory)
        shutil.rmtree(directory, ignore_errors=True)


_started_dirs: list[Path] = []
atexit.register(_stop_private_dirs, _started_dirs)


def system_database(folder: Path = SYSTEM_DATABASE_DIR) -> str | None:
    """The machine's freshclam-updated database, when it holds signatures (a publisher's own ClamAV)."""
    try:
        found = any(p.suffix in (".cvd", ".cld") for p in folder.iterdir())
    except OSError:
        return None
    return str(folder) if found else None


def resolve(settings: Mapping[str, Any] | None) -> ClamdEndpoint | None:
    """The clamd this run uses: configured, else a private one (started once per process), else None."""
    typed = EngineSettings.coerce(settings)
    if typed.clamd:
        return ClamdEndpoint(ClamdAddress.parse(typed.clamd), "configured", typed.clamd_signatures)
    if clamd_binary(typed) is None:
        return None
    database = str(typed.clamd_database) if typed.clamd_database else system_database()
    key = str(database or "")
    with _lock:
        if key in _private:
            return _private[key]
        directory = Path(tempfile.mkdtemp(prefix="proofcheck-clamd-"))
        _started_dirs.append(directory)
        endpoint = start(directory, Path(database) if database else None)
        _private[key] = endpoint
        return endpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m validators.ssi.clamd_manager", description=__doc__.split("\n")[0]
    )
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--dir", required=True, type=Path, help="private directory (socket, config, log)")
    parser.add_argument(
        "--database", type=Path, help="a freshclam database directory (default: test signatures)"
    )
    args = parser.parse_args(argv)
    if args.action == "start":
        try:
            endpoint = start(args.dir, args.database)
        except ClamdStartError as exc:
            print(f"clamd not started: {exc}", file=sys.stderr)
            return 1
        print(f"{ENV_ADDRESS}={endpoint.address}")
        return 0
    if args.action == "stop":
        print("stopped" if stop(args.dir) else "not running")
        return 0
    running = status(args.dir)
    print(f"running {ENV_ADDRESS}={running.address}" if running else "not running")
    return 0 if running else 3


if __name__ == "__main__":
    sys.exit(main())
