"""Every Prefect behaviour proofcheck relies on beyond Prefect's documented API, in one module.

The warm executor (``flows.warm``) runs validation flow runs in long-lived processes instead of Prefect's
runner, and the reconcile (``flows.dispatch``) settles runs whose process died. Both need things Prefect
does for its own workers and runner but does not document as API. Each is a function here, named after
one entry of ``BEHAVIOURS``; ``tests/test_prefect_compat.py`` checks every entry against a real Prefect
server and fails naming the entry if an upgrade changes it. ``pyproject.toml`` allows the Prefect
versions that test passed on (``TESTED_WITH``), no more. Nothing here patches a module: Prefect's own
objects are used as they are, in this process's context.

No other module imports a private Prefect name or relies on these behaviours.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import sys
import threading
from contextlib import suppress
from typing import Any
from uuid import UUID

# Prefect versions tests/test_prefect_compat.py passed on; pyproject.toml allows from the lowest to the
# next minor version after the highest. Tried and failed (2026-12, fresh venvs): 3.4.0 (the former
# floor) and 3.8.8 resolve FastAPI 0.165, on which their server does not start (``Body(min_items=...)``).
TESTED_WITH = ("3.9.1",)

BEHAVIOURS: dict[str, str] = {
    "claim-by-pending": (
        "a Scheduled flow run accepts one proposed (not forced) Pending state and refuses a second one: "
        "the server's rule against duplicate submissions, which the warm pool uses to claim a run"
    ),
    "claim-message-kept": (
        "the message of that Pending state stays in the run's state history, so a pool tells the runs "
        "it claimed from runs another serving process claimed"
    ),
    "run-claimed-in-process": (
        "prefect.flow_engine.run_flow(flow, flow_run=claimed run) executes that existing deployment run "
        "in this process, with its stored parameters, and leaves it in a final state"
    ),
    "crash-by-force": (
        "a forced Crashed state is accepted from Pending and Running, and is final: the run is settled "
        "and the reconcile may start the next attempt"
    ),
    "shared-clients": (
        "flow and task runs of this process use the Prefect clients of the client contexts entered "
        "around them (prefect.context.SyncClientContext / AsyncClientContext), instead of making a client "
        "(and loading the CA bundle into a new TLS context, 45-65 ms here) per task"
    ),
    "events-delivered-on-demand": (
        "prefect.events.worker.EventsWorker.drain_all(timeout) (inherited from a private base class) sends "
        "the events this process emitted before it returns, so a short-lived command exits without losing them"
    ),
    "queue-services-abandon": (
        "(test harness) Prefect's log and event workers are instances of "
        "prefect._internal.concurrency.services._QueueServiceBase holding a queue.Queue in `_queue` and "
        "drained at interpreter exit by a callback in threading._threading_atexits"
    ),
}


# -- claiming and settling deployment runs ---------------------------------------------------------


def claim(client: Any, run_id: UUID, marker: str) -> Any | None:
    """Claim a Scheduled run for this process (``claim-by-pending``); the claimed ``FlowRun`` or None.

    None: the run is not Scheduled any more, or another process claimed it first. ``marker`` is kept
    as the Pending state's message (``claim-message-kept``; read back by ``claimed_by``).
    """
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Pending

    run = client.read_flow_run(run_id)
    if run.state is None or not run.state.is_scheduled():
        return None
    answer = client.set_flow_run_state(run_id, Pending(message=marker))
    if answer.status != SetStateStatus.ACCEPT:
        return None
    return client.read_flow_run(run_id)


def claimed_by(client: Any, run_id: UUID, marker: str) -> bool:
    """The run was claimed with ``marker`` (``claim-message-kept``)."""
    return any(s.type.value == "PENDING" and s.message == marker for s in client.read_flow_run_states(run_id))


def mark_crashed(client: Any, run_id: UUID, message: str) -> None:
    """Settle a run whose process is gone as ``Crashed`` (``crash-by-force``)."""
    from prefect.states import Crashed

    client.set_flow_run_state(run_id, Crashed(message=message), force=True)


# -- executing claimed runs in a long-lived process --------------------------------------------------


class InProcessRuns:
    """Executes claimed deployment runs one after another in this process (``run-claimed-in-process``).

    One event loop and one pair of Prefect clients for the life of the object (``shared-clients``):
    Prefect otherwise makes a new client for the flow run, for each task run and for its artifact and
    result-storage lookups, each loading the CA bundle into a new TLS context (11 a run, measured). The
    client contexts are entered in a copy of the creating thread's context, never in the caller's own: no
    module is patched, and code of this process outside ``run`` never sees these clients.
    Not thread-safe: one instance per process (``for_this_process``).
    """

    def __init__(self) -> None:
        from prefect.context import AsyncClientContext, SyncClientContext
        from prefect.settings import PREFECT_API_URL

        self.api_url = str(PREFECT_API_URL.value() or "")
        self._context = contextvars.copy_context()  # with the caller's Prefect settings
        self._sync_context = SyncClientContext()
        self._context.run(self._sync_context.__enter__)  # checks the server's API version once
        self._runner = asyncio.Runner()
        self._async_context = AsyncClientContext()
        try:
            self._runner.run(self._async_context.__aenter__(), context=self._context)
        except BaseException:
            self._runner.close()
            self._context.run(self._sync_context.__exit__, None, None, None)
            raise

    @property
    def client(self) -> Any:
        """The synchronous Prefect client the runs use (the flow engine's and tasks' client)."""
        return self._sync_context.client

    def run(self, flow: Any, flow_run: Any) -> str:
        """Run the flow on a claimed run; the name of its final state (``Completed``, ``Failed``...)."""
        from prefect.flow_engine import run_flow

        outcome = self._context.run(run_flow, flow, flow_run=flow_run, return_type="state")
        if asyncio.iscoroutine(outcome):
            outcome = self._runner.run(outcome, context=self._context)
        return str(getattr(outcome, "name", "unknown"))

    def close(self) -> None:
        try:
            self._runner.run(self._async_context.__aexit__(None, None, None), context=self._context)
        finally:
            self._runner.close()
            self._context.run(self._sync_context.__exit__, None, None, None)


_THIS_PROCESS: InProcessRuns | None = None


def for_this_process() -> InProcessRuns:
    """This process's ``InProcessRuns``, made at first use; made again if ``PREFECT_API_URL`` changed
    since (a test process that runs flows against several Prefect servers in turn)."""
    from prefect.settings import PREFECT_API_URL

    global _THIS_PROCESS
    if _THIS_PROCESS is not None and _THIS_PROCESS.api_url != str(PREFECT_API_URL.value() or ""):
        previous, _THIS_PROCESS = _THIS_PROCESS, None
        with suppress(Exception):  # its server is gone: nothing to close cleanly
            previous.close()
    if _THIS_PROCESS is None:
        _THIS_PROCESS = InProcessRuns()
    return _THIS_PROCESS


# -- events of short-lived commands -------------------------------------------------------------------


def deliver_events(timeout: float = 10.0) -> None:
    """Send the Prefect events this process emitted, waiting at most ``timeout`` s
    (``events-delivered-on-demand``): a command that exits right after emitting would drop them."""
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=timeout)


# -- test harness ------------------------------------------------------------------------------------


def _queue_services() -> list[Any]:
    """Every live instance of Prefect's in-process queue services (log and event workers)."""
    services = sys.modules.get("prefect._internal.concurrency.services")
    if services is None:
        return []
    found: dict[int, Any] = {}
    pending: list[type] = [services._QueueServiceBase]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        for instance in list(vars(cls).get("_instances", {}).values()):
            found[id(instance)] = instance
    return list(found.values())


def queue_service_exit_callbacks() -> list[Any]:
    """The interpreter-exit callbacks that drain Prefect's queue services (``queue-services-abandon``)."""
    services = sys.modules.get("prefect._internal.concurrency.services")
    atexits = getattr(threading, "_threading_atexits", None)
    if services is None or not isinstance(atexits, list):
        return []
    base = services._QueueServiceBase
    return [c for c in atexits if isinstance(getattr(getattr(c, "func", c), "__self__", None), base)]


def abandon_undelivered() -> int:
    """Drop what Prefect's log and event workers of this process still hold (``queue-services-abandon``).

    For test sessions only: their flows logged to Prefect servers the fixtures have stopped, and at
    interpreter exit Prefect would try to deliver each item, waiting out each connection failure (seen:
    ~90 items, minutes after the last test). Returns the number of items dropped. Does nothing when
    Prefect was not imported.
    """
    callbacks = queue_service_exit_callbacks()
    atexits = getattr(threading, "_threading_atexits", None)
    if callbacks and isinstance(atexits, list):
        atexits[:] = [c for c in atexits if c not in callbacks]
    dropped = 0
    for instance in _queue_services():
        backlog = getattr(instance, "_queue", None)
        if isinstance(backlog, queue.Queue):
            dropped += _empty(backlog)
    return dropped


def _empty(backlog: queue.Queue[Any]) -> int:
    dropped = 0
    while True:
        try:
            backlog.get_nowait()
            backlog.task_done()
        except (queue.Empty, ValueError):
            return dropped
        dropped += 1
