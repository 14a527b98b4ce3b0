"""``proofcheck serve``: the long-running intake — S3 events in, one validation run per package version out.

Two loops in one process:

- the bridge (a thread): receives S3 ObjectCreated events from the queue, starts a run per package
  version with its idempotency key, and acknowledges each message only after its runs were created;
  every ``reconcile_every`` seconds it lists the package areas and dispatches any version without a
  verdict (a lost, late or never-sent event — SeaweedFS sends none — never loses a package; in a
  versioned bucket that includes zip versions replaced within ``reconcile_horizon`` days), and marks
  ``Crashed`` the runs left ``Running`` past ``stale_after`` by a process killed after their verdict;
  it also re-runs, with backoff, the submissions whose latest verdict is not checked in full (a check
  did not run: clamd down, timeout), until one is;
- the executor: with ``PROOFCHECK_EXECUTOR=warm`` (the default) a pool of ``limit`` long-lived
  processes that keep the engine loaded (``flows.warm``) executes the validation runs the bridge
  creates, handed over at once (no polling); Prefect's runner (the main thread) still serves the other
  deployments (index rebuild...). With ``process``, the runner executes every run in a new process,
  at most ``limit`` at once. In production, workers of a work pool run them instead (``--no-runner``).

It needs a real Prefect server (``PREFECT_API_URL``): the per-process temporary server is refused.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from flows.retry import RetryState
from flows.settings import PipelineSettings
from flows.storage import ObjectEvent, PackageGoneError, PackageRef, Store, parse_s3_event

if TYPE_CHECKING:
    from flows.warm import WarmPool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeOptions:
    limit: int = 2  # concurrent validation runs of this process (warm pool size, or the runner's limit)
    runner: bool = True
    reconcile: bool = True
    queue_wait: int = 1  # long-poll seconds


class ServeConfigError(RuntimeError):
    """The environment cannot run the intake (no Prefect server URL, no bucket...)."""


def _check_environment() -> None:
    if not os.environ.get("PREFECT_API_URL"):
        raise ServeConfigError(
            "PREFECT_API_URL is not set: `proofcheck serve` needs a real Prefect server "
            "(`prefect server start`), not a temporary per-process one"
        )
    from flows.sealing import signing_problem

    problem = signing_problem()
    if problem is not None:
        raise ServeConfigError(f"PROOFCHECK_SIGNING_KEY is unusable: {problem}")


class Bridge:
    """Queue events and periodic reconcile -> idempotent dispatch."""

    def __init__(self, settings: PipelineSettings, options: ServeOptions) -> None:
        from flows.dispatch import Dispatcher
        from flows.queue import EventQueue

        self.settings = settings
        self.options = options
        self.store = Store.connect(settings)
        self.queue = EventQueue.connect(settings) if settings.queue_url else None
        self.dispatcher = Dispatcher(settings)
        self.pool: WarmPool | None = None
        if options.runner and settings.executor == "warm":
            from flows.warm import WarmPool

            self.pool = WarmPool(options.limit)
            self.dispatcher.on_run = self.pool.offer
        self.stopping = threading.Event()
        self.next_reconcile = 0.0 if options.reconcile else float("inf")
        self.settled: set[tuple[str, str]] = set()  # versions whose verdict the reconcile has read
        # Versions not checked in full, waiting for their next re-run (a cache of what S3 records).
        self.retries: dict[tuple[str, str], RetryState] = {}
        self.failed = False  # the bridge gave up (no deployment to dispatch to): serve exits non-zero

    def wait_for_deployment(self, timeout: float = 120.0) -> None:
        """The runner registers the deployment as it starts: dispatching before that would fail."""
        if self.pool is not None:
            from flows.deployments import VALIDATE, runner_deployments

            # No runner serves it: the warm pool executes its runs, so it is registered here.
            runner_deployments((VALIDATE,), schedules=False)[0].apply()
        deadline = time.monotonic() + timeout
        next_warning = time.monotonic() + 10
        while not self.stopping.is_set():
            try:
                _ = self.dispatcher.deployment_id
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise
                if time.monotonic() > next_warning:  # an operator who forgot `proofcheck deploy` is told
                    from flows.outages import missing_deployment

                    log.warning(missing_deployment(exc))
                    next_warning = time.monotonic() + 30
                time.sleep(0.5)

    def _ref_of(self, event: ObjectEvent) -> PackageRef:
        """The version an event names; resolved to its version id when the event has none (moto)."""
        ref = PackageRef(event.bucket, event.key, event.etag or "", event.version_id, event.size or -1)
        if ref.version_id is None and self.store.versioned:
            try:
                return self.store.resolve(event.key, None, event.etag)
            except PackageGoneError:
                pass  # the run stores an error verdict for it under its ETag
        return ref

    def handle_events(self) -> int:
        """One receive: dispatch each event's package version, ack what was dispatched. Returns count."""
        assert self.queue is not None
        handled = 0
        for message in self.queue.receive(wait_seconds=self.options.queue_wait):
            dispatched = True
            for event in parse_s3_event(message.body):
                layout = self.store.layout
                if event.bucket != self.store.bucket or layout.area_of(event.key) is None:
                    continue
                if layout.is_member(event.key):
                    continue  # a folder package starts with its marker (or the reconcile's grace)
                ref = self._ref_of(event)
                try:
                    self.dispatcher.submit(ref)
                    handled += 1
                except Exception as exc:  # the message stays in the queue and comes back
                    log.warning("dispatch failed, event kept for retry: %s", type(exc).__name__)
                    dispatched = False
            if dispatched:
                self.queue.ack(message)
        return handled

    def reconcile_once(self) -> dict[str, int]:
        from flows.dispatch import reconcile

        busy: set[UUID] = set()
        if self.pool is not None:
            self.pool.adopt(self.dispatcher.client, self.dispatcher.deployment_id)
            busy = self.pool.in_flight
        outcomes = reconcile(self.store, self.dispatcher, settled=self.settled, retries=self.retries)
        closed = self.dispatcher.close_orphans(self.store, busy)
        if closed:
            log.info("reconcile: %d run(s) left running after their verdict marked crashed", closed)
            outcomes["orphans-closed"] = closed
        if not self.options.runner:  # work-pool workers run them: say so when none is there
            self._warn_without_worker(outcomes.get("queued", 0))
        return outcomes

    def _warn_without_worker(self, waiting: int) -> None:
        from flows.workpool import missing_worker_message

        message = missing_worker_message(self.dispatcher.client, self.dispatcher.deployment_id, waiting)
        if message:
            log.warning(message)

    def watch_prefect(self, every: float, repeat: float = 30.0) -> None:
        """Say when the Prefect server stops answering, every ``repeat`` s while it is down, and when it is back.

        Apart from the loop: a reconcile blocked in the Prefect client's own silent retries (a refused
        connection is retried for up to a minute) said nothing while the server was down (topology test).
        """
        from flows.outages import probe_prefect

        down_since: float | None = None
        said = 0.0
        while not self.stopping.wait(every):
            problem = probe_prefect()
            now = time.monotonic()
            if problem is None:
                if down_since is not None:
                    log.warning("Prefect server answering again after %.0f s; dispatch resumes", now - down_since)
                down_since = None
            elif down_since is None or now - said >= repeat:
                log.warning("Prefect server check failed: %s", problem)
                down_since, said = down_since or now, now

    def loop(self) -> None:
        threading.Thread(
            target=self.watch_prefect, args=(min(5.0, self.settings.reconcile_every),), name="prefect-watch",
            daemon=True,
        ).start()
        try:
            self.wait_for_deployment()
        except Exception as exc:  # serve() exits non-zero: a supervisor restarts it, the log says why
            from flows.outages import missing_deployment

            log.error("bridge stopped: %s", missing_deployment(exc))
            self.failed = True
            return
        while not self.stopping.is_set():
            try:
                if self.pool is not None:
                    self.pool.reap(self.dispatcher.client)
                if time.monotonic() >= self.next_reconcile:
                    self.next_reconcile = time.monotonic() + self.settings.reconcile_every
                    self.reconcile_once()
                if self.queue is not None:
                    self.handle_events()
                else:
                    self.stopping.wait(1.0)
            except Exception as exc:  # storage or Prefect briefly down: keep serving
                from flows.outages import describe

                log.warning("bridge iteration failed: %s", describe(exc))
                self.stopping.wait(2.0)
        if self.pool is not None:
            self.pool.shutdown(self.dispatcher.client)
        self.dispatcher.close()


def serve(settings: PipelineSettings | None = None, options: ServeOptions | None = None) -> int:
    """Run the bridge and (unless ``options.runner`` is off) the runner until interrupted."""
    _check_environment()
    settings = settings or PipelineSettings.from_env()
    options = options or ServeOptions()
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    bridge = Bridge(settings, options)
    thread = threading.Thread(target=bridge.loop, name="proofcheck-bridge", daemon=True)
    thread.start()
    try:
        if options.runner:
            from prefect import serve as prefect_serve

            from flows.deployments import DEPLOYMENTS, VALIDATE, runner_deployments

            served = DEPLOYMENTS if bridge.pool is None else tuple(d for d in DEPLOYMENTS if d is not VALIDATE)
            prefect_serve(
                *runner_deployments(served, schedules=False),
                limit=options.limit,
                print_starting_message=False,
                pause_on_shutdown=False,
                query_seconds=1,
            )
        else:
            while thread.is_alive():
                thread.join(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        bridge.stopping.set()
        thread.join(10)
    return 1 if bridge.failed else 0
