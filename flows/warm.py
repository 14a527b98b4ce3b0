"""Warm executor: long-lived processes that run validation flow runs with the engine already loaded.

Why: Prefect's runner starts a new (spawned) process for every flow run, which re-imports Prefect,
lxml, saxonche and the validators and rebuilds the engine: 2.5-3 s before the first byte is checked,
more under load (BENCHMARKS.md). Here ``size`` processes are started once, import everything and build
the engine at start, then execute one flow run after another.

What stays as with the runner: the bridge still creates each run on the Prefect server from the
deployment with its idempotency key (one run per package version, visible in the UI); a pool process
*claims* a run by proposing ``Pending`` (the server accepts one claim, so a run is executed once even if
two serving processes see it) and then runs Prefect's flow engine on it. At most ``size`` runs execute
at once; the rest wait in ``Scheduled``, where a restarted serving process adopts them.

Fail closed: a run whose process dies (killed, out of memory, a parser crash) is marked ``Crashed`` and
the pool is rebuilt; the reconcile then dispatches the next attempt, and after ``max_attempts`` stores an
``error`` verdict. Not supported here (use ``PROOFCHECK_EXECUTOR=process``): cancelling a run from the UI.

Claiming, running a claimed run, marking ``Crashed`` and sharing one Prefect client per process rely on
Prefect behaviours it does not document: they are in ``flows.prefect_compat``, each checked by a test.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import tempfile
import threading
import zipfile
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from flows import prefect_compat

log = logging.getLogger(__name__)

RECYCLE_AFTER = 200  # runs per process before it is replaced (bounds slow memory growth of parsers)


def _warm_up() -> None:
    """Pool process start: import the flow, build the engine and check a tiny package once.

    The first check of a process loads what the validators load lazily (libmagic, clamd's connection,
    the personal-data patterns...): done here, it is not paid by the first upload. A failure is only
    logged: the run's own check then fails and stores an ``error`` verdict.
    """
    try:
        from flows import pipeline
        from flows.settings import PipelineSettings
        from validators.package import open_package

        settings = PipelineSettings.from_env()
        engine = pipeline._engine(settings)
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=settings.work_dir, prefix="warm-") as tmp:
            path = Path(tmp) / "warm-up.zip"
            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr("INS.41.2.2/journal.txt", "warm-up\n")
            with open_package(path, settings=settings.engine_settings) as contents:
                engine.run(contents)
        prefect_compat.for_this_process()  # its Prefect clients: made (and the server's API version checked) once
    except Exception as exc:
        log.warning("warm-up failed: %s", type(exc).__name__)


def _ready() -> bool:
    return True


def execute(run_id: str, claim: str) -> str:
    """In a pool process: claim one scheduled run and run the validation flow on it; its final state.

    ``claim`` is written as the Pending state's message: it tells this pool's runs from runs that
    another serving process claimed, when the pool later settles the runs of a dead process.
    """
    from flows.pipeline import validate_package

    runs = prefect_compat.for_this_process()
    run = prefect_compat.claim(runs.client, UUID(run_id), claim)
    if run is None:
        return "not claimed"
    return runs.run(validate_package, run)


class WarmPool:
    """The bridge's side: hands run ids to the pool, keeps what is in flight, reports lost runs."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._lock = threading.RLock()  # cancelling futures calls ``_done`` under it
        self._in_flight: dict[UUID, Future[str]] = {}
        self._lost: list[UUID] = []  # runs whose process died: marked Crashed by ``reap``
        self._closed = False
        self.claim = f"claimed by proofcheck warm pool {uuid4().hex}"
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(
            max_workers=self.size,
            mp_context=multiprocessing.get_context("spawn"),  # the bridge has threads: no fork
            initializer=_warm_up,
            max_tasks_per_child=RECYCLE_AFTER,
        )
        for _ in range(self.size):  # processes start on demand: start (and warm) them all now
            executor.submit(_ready)
        return executor

    @property
    def in_flight(self) -> set[UUID]:
        with self._lock:
            return set(self._in_flight)

    def offer(self, run: Any) -> bool:
        """Queue a flow run (a Prefect ``FlowRun``) if it waits to be executed and is not ours already."""
        state = getattr(run, "state", None)
        if state is None or not state.is_scheduled():
            return False
        return self.submit(run.id)

    def submit(self, run_id: UUID) -> bool:
        with self._lock:
            if self._closed or run_id in self._in_flight:
                return False  # closed: the run stays Scheduled for the next serving process
            try:
                future = self._executor.submit(execute, str(run_id), self.claim)
            except BrokenProcessPool:  # a process died since the last ``reap``
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._start()
                future = self._executor.submit(execute, str(run_id), self.claim)
            self._in_flight[run_id] = future
        future.add_done_callback(functools.partial(self._done, run_id))
        return True

    def _done(self, run_id: UUID, future: Future[str]) -> None:
        with self._lock:
            self._in_flight.pop(run_id, None)
            error = None if future.cancelled() else future.exception()
            if error is not None:
                # Its process died (BrokenProcessPool) or the claim failed: let ``reap`` settle it.
                self._lost.append(run_id)
        if error is not None:
            log.warning("validation run ended abnormally: %s", type(error).__name__)

    def reap(self, client: Any) -> int:
        """Mark runs lost with a dead process ``Crashed`` (reconcile retries them); rebuild a broken pool.

        A lost run still ``Scheduled`` was never started: it is queued again instead.
        """
        with self._lock:
            lost, self._lost = self._lost, []
            if lost and not self._closed and getattr(self._executor, "_broken", False):
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._start()
        for run_id in lost:
            try:
                run = client.read_flow_run(run_id)
                if run.state is not None and run.state.is_scheduled():
                    self.submit(run_id)
                elif (run.state is None or not run.state.is_final()) and self._ours(client, run_id):
                    prefect_compat.mark_crashed(client, run_id, "its proofcheck warm process died")
            except Exception as exc:  # the server is down: the reconcile's staleness rule takes over
                log.warning("lost run not settled: %s", type(exc).__name__)
        return len(lost)

    def _ours(self, client: Any, run_id: UUID) -> bool:
        """This pool claimed the run (another serving process may have, if both saw it Scheduled)."""
        return prefect_compat.claimed_by(client, run_id, self.claim)

    def adopt(self, client: Any, deployment_id: UUID) -> int:
        """Queue the deployment's runs waiting in ``Scheduled`` (left by a stopped serving process)."""
        from prefect.client.schemas.filters import (
            DeploymentFilter,
            DeploymentFilterId,
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType

        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
            ),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            limit=200,
        )
        return sum(self.offer(run) for run in runs)

    def shutdown(self, client: Any | None = None) -> None:
        """Stop the pool; runs it had started are marked ``Crashed`` so the next start retries them.

        Runs still ``Scheduled`` are left as they are: the next serving process adopts them.
        """
        with self._lock:
            self._closed = True
            started = [*self._in_flight, *self._lost]
            self._lost = []
            self._executor.shutdown(wait=False, cancel_futures=True)
        if client is None:
            return
        for run_id in started:
            try:
                run = client.read_flow_run(run_id)
                state = run.state
                started_here = state is not None and not state.is_final() and not state.is_scheduled()
                if started_here and self._ours(client, run_id):
                    prefect_compat.mark_crashed(client, run_id, "the proofcheck serving process stopped")
            except Exception as exc:
                log.warning("run not marked crashed on shutdown: %s", type(exc).__name__)
