"""Every Prefect behaviour of ``flows.prefect_compat.BEHAVIOURS``, checked against a real Prefect server.

A failure names the behaviour a Prefect upgrade changed: the warm executor and the reconcile must then
be adapted before the version range in pyproject.toml is widened. One server for the module.
"""

from __future__ import annotations

import contextvars
import json
import os
import queue
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

pytest.importorskip("prefect")

from prefect import flow, get_run_logger, task
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.context import SyncClientContext
from prefect.runtime import flow_run as current_run
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Pending, Running

from flows import prefect_compat
from flows.devharness import services
from flows.prefect_compat import BEHAVIOURS, InProcessRuns

pytestmark = pytest.mark.timeout(240)
ROOT = Path(__file__).resolve().parents[1]


def expect(behaviour: str, holds: bool, detail: str) -> None:
    """Fail with the behaviour's name and what the warm executor relies on."""
    assert behaviour in BEHAVIOURS
    if not holds:
        pytest.fail(f"PREFECT BEHAVIOUR CHANGED: {behaviour}: {detail}\nrelied on: {BEHAVIOURS[behaviour]}")


@task
def _double(n: int) -> int:
    return 2 * n


@flow(name="compat-probe", persist_result=False)
async def compat_probe(out: str, n: int = 1) -> int:
    """Like the validation flow: asynchronous, synchronous tasks, a log line to the API."""
    get_run_logger().warning("compat probe %d", n)
    result = _double(_double(n))
    Path(out).write_text(json.dumps({"run_id": str(current_run.id), "result": result}), "utf-8")
    return result


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("prefect-compat")
    prefect = services.start_prefect_server(root / "logs", root / "prefect")
    try:
        with temporary_settings(updates={PREFECT_API_URL: prefect.url}):
            yield prefect.url
    finally:
        prefect.stop()


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[SyncPrefectClient]:
    with get_client(sync_client=True) as prefect_client:
        yield prefect_client


@pytest.fixture(scope="module")
def deployment_id(client: SyncPrefectClient) -> UUID:
    deployment_id: UUID = compat_probe.to_deployment(name="compat").apply()
    return deployment_id


@pytest.fixture
def new_run(client: SyncPrefectClient, deployment_id: UUID, tmp_path: Path) -> Callable[..., FlowRun]:
    def create(n: int = 1) -> FlowRun:
        run: FlowRun = client.create_flow_run_from_deployment(
            deployment_id, parameters={"out": str(tmp_path / f"out-{n}.json"), "n": n}
        )
        assert run.state is not None and run.state.is_scheduled()
        return run

    return create


def test_claim_by_pending_accepts_exactly_one_claim(client: SyncPrefectClient, new_run: Callable[..., FlowRun]) -> None:
    run = new_run()
    answers: list[Any] = []

    def propose() -> None:
        with get_client(sync_client=True) as own:
            answers.append(own.set_flow_run_state(run.id, Pending(message="racer")))

    # Each thread in a copy of this context: Prefect's settings (the server's URL) are a context variable.
    racers = [threading.Thread(target=contextvars.copy_context().run, args=(propose,)) for _ in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(60)
    accepted = [a for a in answers if a.status == SetStateStatus.ACCEPT]
    expect(
        "claim-by-pending", len(answers) == 4 and len(accepted) == 1, f"{len(accepted)} of 4 concurrent claims accepted"
    )

    second = new_run(2)
    claimed = prefect_compat.claim(client, second.id, "pool A")
    expect(
        "claim-by-pending",
        claimed is not None and claimed.state_type == StateType.PENDING,
        "a Scheduled run not claimed",
    )
    expect("claim-by-pending", prefect_compat.claim(client, second.id, "pool B") is None, "a Pending run claimed again")
    refused = client.set_flow_run_state(second.id, Pending(message="pool B"))
    expect("claim-by-pending", refused.status != SetStateStatus.ACCEPT, f"Pending -> Pending answered {refused.status}")
    client.set_flow_run_state(second.id, Running())
    refused = client.set_flow_run_state(second.id, Pending(message="pool B"))
    expect("claim-by-pending", refused.status != SetStateStatus.ACCEPT, f"Running -> Pending answered {refused.status}")


def test_claim_message_is_kept_in_the_state_history(client: SyncPrefectClient, new_run: Callable[..., FlowRun]) -> None:
    run = new_run()
    assert prefect_compat.claim(client, run.id, "claimed by pool 1234") is not None
    client.set_flow_run_state(run.id, Running())
    expect("claim-message-kept", prefect_compat.claimed_by(client, run.id, "claimed by pool 1234"), "claim not found")
    expect("claim-message-kept", not prefect_compat.claimed_by(client, run.id, "claimed by pool 5678"), "wrong claim")


def test_crash_by_force_settles_pending_and_running_runs(
    client: SyncPrefectClient, new_run: Callable[..., FlowRun]
) -> None:
    pending, running = new_run(1), new_run(2)
    for run in (pending, running):
        assert prefect_compat.claim(client, run.id, "pool") is not None
    client.set_flow_run_state(running.id, Running())
    for run, before in ((pending, "Pending"), (running, "Running")):
        prefect_compat.mark_crashed(client, run.id, "its process died")
        state = client.read_flow_run(run.id).state
        expect(
            "crash-by-force",
            state is not None and state.type == StateType.CRASHED and state.is_final(),
            f"{before} -> forced Crashed left {state.type if state else None}",
        )
        expect("crash-by-force", prefect_compat.claim(client, run.id, "pool") is None, "a Crashed run was claimed")


def test_a_claimed_run_is_executed_in_this_process(
    client: SyncPrefectClient, new_run: Callable[..., FlowRun], deployment_id: UUID, tmp_path: Path
) -> None:
    run = new_run(3)
    claimed = prefect_compat.claim(client, run.id, "pool")
    assert claimed is not None
    runs = InProcessRuns()
    try:
        outcome = runs.run(compat_probe, claimed)
    finally:
        runs.close()
    final = client.read_flow_run(run.id)
    out = tmp_path / "out-3.json"
    written = json.loads(out.read_text("utf-8")) if out.exists() else {}
    expect("run-claimed-in-process", outcome == "Completed", f"final state {outcome}")
    expect("run-claimed-in-process", final.state_type == StateType.COMPLETED, f"stored state {final.state_name}")
    expect("run-claimed-in-process", written.get("run_id") == str(run.id), "the flow did not run as the claimed run")
    expect("run-claimed-in-process", written.get("result") == 12, "the run's stored parameters were not used")


def test_runs_share_one_client_and_tls_context(
    client: SyncPrefectClient, new_run: Callable[..., FlowRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str | None] = []
    original = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:  # counts only (test-side, restored after)
        made.append(kwargs.get("cafile"))
        return original(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    runs = InProcessRuns()
    try:
        first = prefect_compat.claim(runs.client, new_run(4).id, "pool")
        assert first is not None and runs.run(compat_probe, first) == "Completed"
        made.clear()
        second = prefect_compat.claim(runs.client, new_run(5).id, "pool")
        assert second is not None and runs.run(compat_probe, second) == "Completed"
    finally:
        runs.close()
    # Prefect 3.9 makes one for the deployment run's suspension observer (its own thread and loop);
    # without shared clients a run made 11 (flow, 6 task runs, artifact, result storage...).
    expect("shared-clients", len(made) <= 1, f"{len(made)} TLS contexts made by one run with shared clients")
    expect("shared-clients", SyncClientContext.get() is None, "the client context leaked into the caller's")


def test_runs_follow_a_change_of_server(server: str) -> None:
    """A test process runs flows against several servers in turn: never with a client of an earlier one."""
    runs = prefect_compat.for_this_process()
    assert prefect_compat.for_this_process() is runs
    with temporary_settings(updates={PREFECT_API_URL: server + "/"}):  # the same server, named otherwise
        moved = prefect_compat.for_this_process()
        assert moved is not runs and moved.api_url == server + "/"
    assert prefect_compat.for_this_process().api_url == server


def test_emitted_events_are_delivered_on_demand(server: str, tmp_path: Path) -> None:
    """A command that emits, delivers and exits at once (no exit handlers: os._exit) loses no event."""
    resource = f"proofcheck.compat.{uuid4().hex}"
    code = (
        "import os\n"
        "from prefect.events import emit_event\n"
        "from flows.prefect_compat import deliver_events\n"
        f"emit_event(event='proofcheck.compat.probe', resource={{'prefect.resource.id': {resource!r}}})\n"
        "deliver_events(timeout=20)\n"
        "os._exit(0)\n"
    )
    env = {**os.environ, "PREFECT_API_URL": server, "PREFECT_HOME": str(tmp_path)}
    answer = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, timeout=120)
    assert answer.returncode == 0, answer.stderr[-2000:]
    query = {"filter": {"resource": {"id": [resource]}, "occurred": {"since": "2000-01-01T00:00:00Z"}}, "limit": 5}
    stored: list[Any] = []
    deadline = time.monotonic() + 30  # the server persists events in batches
    while not stored and time.monotonic() < deadline:
        answer_ = httpx.post(f"{server}/events/filter", json=query, timeout=10)
        answer_.raise_for_status()
        stored = answer_.json().get("events", [])
        time.sleep(0.5)
    expect("events-delivered-on-demand", len(stored) == 1, f"{len(stored)} of 1 event stored after delivery")


def test_queue_services_are_where_the_test_harness_finds_them(
    client: SyncPrefectClient, new_run: Callable[..., FlowRun]
) -> None:
    run = prefect_compat.claim(client, new_run(6).id, "pool")
    assert run is not None
    runs = InProcessRuns()
    try:
        runs.run(compat_probe, run)  # logs to the API: Prefect's log worker is running now
    finally:
        runs.close()
    found = prefect_compat._queue_services()
    expect("queue-services-abandon", bool(found), "no instance of _QueueServiceBase found after a flow run")
    expect(
        "queue-services-abandon",
        all(isinstance(getattr(s, "_queue", None), queue.Queue) for s in found),
        "a queue service without its `_queue`",
    )
    expect(
        "queue-services-abandon",
        bool(prefect_compat.queue_service_exit_callbacks()),
        "no exit callback of a queue service in threading._threading_atexits",
    )


def test_the_declared_prefect_range_is_the_tested_one() -> None:
    """pyproject.toml allows from the lowest version this module passed on to the next minor after the highest."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.version import Version

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    (prefect,) = [
        r for r in map(Requirement, pyproject["project"]["optional-dependencies"]["pipeline"]) if r.name == "prefect"
    ]
    tested = sorted(map(Version, prefect_compat.TESTED_WITH))
    highest = tested[-1]
    expected = {f">={tested[0]}", f"<{highest.major}.{highest.minor + 1}"}
    assert {str(s) for s in prefect.specifier} == expected
    import prefect as installed

    assert Version(installed.__version__) in prefect.specifier
