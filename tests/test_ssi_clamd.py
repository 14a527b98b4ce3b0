"""The clamd client fails closed, the manager runs a private hardened clamd and stops it by PID."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fixtures import builders
from validators.ssi import antivirus, clamd_manager
from validators.ssi.clamd_client import (
    ClamdAddress,
    ClamdClient,
    ClamdConnectionLostError,
    ClamdLimitError,
    ClamdProtocolError,
    ClamdScanError,
    ClamdTimeoutError,
    ClamdUnavailableError,
    ClamdVersion,
    parse_scan_reply,
    parse_version,
)

ROOT = Path(__file__).resolve().parents[1]
needs_clamav = pytest.mark.skipif(
    clamd_manager.clamd_binary() is None, reason="ClamAV is not installed (apt-get install clamav-daemon)"
)


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[clamd_manager.ClamdEndpoint]:
    if clamd_manager.clamd_binary() is None:
        pytest.skip("ClamAV is not installed (apt-get install clamav-daemon)")
    directory = tmp_path_factory.mktemp("clamd")
    endpoint = clamd_manager.start(directory)
    yield endpoint
    clamd_manager.stop(directory)


# --- reply parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "signatures"),
    [
        (b"stream: OK\0", ()),
        (b"fd[12]: OK\0", ()),
        (b"stream: Win.Test.EICAR_HDB-1 FOUND\0", ("Win.Test.EICAR_HDB-1",)),
        (b"stream: A.B FOUND\0stream: C.D FOUND\0", ("A.B", "C.D")),
    ],
)
def test_verdict_replies_are_parsed(raw: bytes, signatures: tuple[str, ...]) -> None:
    assert parse_scan_reply(raw).signatures == signatures


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"stream: OK", ClamdProtocolError),  # not terminated: the connection closed early
        (b"stream: OKAY\0", ClamdProtocolError),
        (b"OK\0", ClamdProtocolError),
        (b"stream: OK\0stream: OK\0", ClamdProtocolError),
        (b"stream: OK\0stream: X FOUND\0", ClamdProtocolError),
        (b"stream: \xff FOUND\0", ClamdProtocolError),
        (b"INSTREAM size limit exceeded. ERROR\0", ClamdProtocolError),
        (b"stream: INSTREAM size limit exceeded ERROR\0", ClamdLimitError),
        (b"stream: Can't allocate memory ERROR\0", ClamdScanError),
    ],
)
def test_anything_but_a_verdict_is_an_error(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_scan_reply(raw)


def test_version_reply_gives_database_version_and_date() -> None:
    version = parse_version(b"ClamAV 1.4.6/27800/Tue Nov 25 07:24:01 2025\0")
    assert version == ClamdVersion("1.4.6", "27800", "Tue Nov 25 07:24:01 2025")
    assert parse_version(b"ClamAV 1.4.6\0").database_version is None
    with pytest.raises(ClamdProtocolError):
        parse_version(b"HELLO\0")


@pytest.mark.parametrize("text", ["unix:/run/clamd.sock", "/run/clamd.sock", "clamd:3310", "[::1]:3310"])
def test_addresses_parse(text: str) -> None:
    address = ClamdAddress.parse(text)
    assert address.is_local == ("/" in text)


@pytest.mark.parametrize("text", ["clamd", "host:port", "unix:", "host:70000"])
def test_bad_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        ClamdAddress.parse(text)


# --- a misbehaving server: every failure is an exception, never a clean verdict --------------------


def _fake_clamd(tmp_path: Path, behave: Callable[[socket.socket], None]) -> Iterator[ClamdAddress]:
    path = str(tmp_path / "fake.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                behave(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield ClamdAddress(unix_path=path)
    stop.set()
    thread.join(2)
    server.close()


def _silent(conn: socket.socket) -> None:
    conn.recv(65536)
    threading.Event().wait(2)


def _hang_up(conn: socket.socket) -> None:
    conn.recv(16)


def _garbage(conn: socket.socket) -> None:
    received = b""
    while not received.endswith(b"\0\0\0\0"):  # the whole stream, then a reply clamd never gives
        received += conn.recv(65536)
    conn.sendall(b"I am not clamd\0")


def _refuse_stream(conn: socket.socket) -> None:
    conn.recv(64)
    conn.sendall(b"INSTREAM size limit exceeded. ERROR\0")
    conn.shutdown(socket.SHUT_RDWR)


@pytest.mark.parametrize(
    ("behave", "error"),
    [
        (_silent, ClamdTimeoutError),
        (_hang_up, ClamdConnectionLostError),
        (_garbage, ClamdProtocolError),
        (_refuse_stream, (ClamdLimitError, ClamdProtocolError)),
    ],
)
def test_misbehaving_server_never_gives_a_clean_verdict(
    tmp_path: Path, behave: Callable[[socket.socket], None], error: type[Exception]
) -> None:
    for address in _fake_clamd(tmp_path, behave):
        client = ClamdClient(address, connect_timeout=1.0, read_timeout=0.5, chunk_size=64 * 1024)
        with pytest.raises(error):
            client.instream([b"x" * (4 * 1024 * 1024)])


def test_no_server_is_unavailable(tmp_path: Path) -> None:
    client = ClamdClient(ClamdAddress(unix_path=str(tmp_path / "none.sock")), connect_timeout=0.5)
    with pytest.raises(ClamdUnavailableError):
        client.ping()


def test_unreachable_tcp_clamd_is_unavailable_within_the_connect_timeout() -> None:
    client = ClamdClient(ClamdAddress(host="127.0.0.1", port=1), connect_timeout=0.5)
    with pytest.raises(ClamdUnavailableError):
        client.version()


# --- the real private clamd ------------------------------------------------------------------------


def test_private_clamd_config_is_hardened(private: clamd_manager.ClamdEndpoint) -> None:
    config = (Path(private.address.unix_path or "").parent / "clamd.conf").read_text()
    for option in (
        "AlertExceedsMax yes",
        "AlertEncrypted yes",
        "AlertBrokenExecutables yes",
        "AlertOLE2Macros yes",
        "Foreground yes",
        "MaxFiles 10000",
        "StreamMaxLength 512M",
    ):
        assert option in config
    assert "TCPSocket" not in config
    assert private.signatures == clamd_manager.SIGNATURES_TEST


@pytest.mark.parametrize("way", ["instream", "fildes", "memfd"])
def test_eicar_is_found_and_clean_data_is_clean(
    private: clamd_manager.ClamdEndpoint, way: str, tmp_path: Path
) -> None:
    client = ClamdClient(private.address)
    for data, infected in ((builders.eicar(), True), (os.urandom(100_000), False)):
        if way == "instream":
            reply = client.instream([data])
        elif way == "memfd":
            reply = client.scan_bytes(data)
        else:
            path = tmp_path / "sample.bin"
            path.write_bytes(data)
            fd = os.open(path, os.O_RDONLY)
            try:
                reply = client.fildes(fd)
            finally:
                os.close(fd)
        assert reply.clean is not infected
        if infected:
            assert reply.signatures[0].startswith("Proofcheck.Test.EICAR")


def test_private_clamd_can_also_listen_on_loopback_tcp(tmp_path: Path) -> None:
    """The benchmarks measure INSTREAM over TCP (production's transport) on the clamd that serves FILDES."""
    if clamd_manager.clamd_binary() is None:
        pytest.skip("ClamAV is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with clamd_manager.private_clamd(tmp_path / "clamd", tcp_port=port) as settings:
        config = (tmp_path / "clamd" / "clamd.conf").read_text()
        assert f"TCPSocket {port}\nTCPAddr 127.0.0.1\n" in config
        assert settings["clamd"].startswith("unix:")
        reply = ClamdClient(ClamdAddress.parse(f"127.0.0.1:{port}")).instream([builders.eicar()])
    assert reply.signatures[0].startswith("Proofcheck.Test.EICAR")


def test_project_marker_is_found_inside_a_pdf(private: clamd_manager.ClamdEndpoint) -> None:
    marker = clamd_manager.test_marker().decode()
    pdf = builders.make_pdf([f"texte {marker}"], compress=False)
    assert ClamdClient(private.address).scan_bytes(pdf).signatures[0].startswith("Proofcheck.Test.Marker")


def test_test_database_is_reported_as_test_only(private: clamd_manager.ClamdEndpoint) -> None:
    facts = antivirus.database_facts(ClamdClient(private.address).version(), private.signatures)
    assert facts["signatures"] == "test"
    assert facts["database_version"] == "none"


def test_an_old_production_database_raises_a_warning() -> None:
    validator = antivirus.AntivirusValidator({"antivirus_max_database_age_days": 7})
    validator._facts = antivirus.database_facts(
        ClamdVersion("1.4.6", "27000", "Mon Jan  6 08:00:00 2025"), None
    )
    [finding] = validator._database_findings()
    assert finding.rule == "ssi.antivirus-database-old" and "27000" in finding.message
    today = datetime.now(UTC).strftime("%a %b %d %H:%M:%S %Y")
    validator._facts = antivirus.database_facts(ClamdVersion("1.4.6", "27999", today), None)
    assert validator._database_findings() == []


@pytest.mark.parametrize(
    ("signature", "rule"),
    [
        ("Heuristics.Limits.Exceeded.MaxFileSize", "ssi.scan-limit"),
        ("Heuristics.Encrypted.Zip", "ssi.antivirus-heuristic"),
        ("Win.Trojan.Agent-1", "ssi.malware"),
    ],
)
def test_clamd_detections_are_told_apart(signature: str, rule: str) -> None:
    assert antivirus.classify_signature(signature).rule == rule


@needs_clamav
def test_manager_command_starts_reports_and_stops_by_pid(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "validators.ssi.clamd_manager", *args, "--dir", str(tmp_path)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )

    started = run("start")
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == f"PROOFCHECK_CLAMD=unix:{tmp_path.resolve() / 'clamd.sock'}"
    pid = int((tmp_path / "clamd.pid").read_text().split()[0])
    assert run("status").stdout.startswith("running")
    assert run("stop").stdout.strip() == "stopped"
    assert not Path(f"/proc/{pid}").exists() or b"clamd" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    status = run("status")
    assert status.returncode == 3 and status.stdout.strip() == "not running"


@needs_clamav
def test_configured_clamd_from_environment_is_used(
    private: clamd_manager.ClamdEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(clamd_manager.ENV_ADDRESS, str(private.address))
    endpoint = clamd_manager.resolve({})
    assert endpoint is not None and endpoint.source == "configured" and endpoint.address == private.address


def test_the_machine_database_is_used_only_when_it_holds_signatures(tmp_path: Path) -> None:
    assert clamd_manager.system_database(tmp_path) is None
    assert clamd_manager.system_database(tmp_path / "absent") is None
    (tmp_path / "daily.cld").write_bytes(b"")
    assert clamd_manager.system_database(tmp_path) == str(tmp_path)
