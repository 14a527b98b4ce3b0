"""Whether a work pool has a worker to run the validation runs the bridge dispatches (``--no-runner``).

A worker started on a mistyped pool, or none started at all, leaves every run ``Scheduled``: nothing
fails, nothing is lost (the reconcile keeps them), but no verdict comes. The bridge says so in its log.
A worker counts as online while its heartbeats arrive (Prefect's own rule: at most three intervals
missed), read from the worker rows directly rather than waiting for the server to mark it offline.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

INACTIVITY_HEARTBEATS = 3  # Prefect marks a worker offline after this many missed heartbeats
DEFAULT_HEARTBEAT_SECONDS = 30


def online_workers(workers: Iterable[Any], now: datetime | None = None) -> list[str]:
    """Names of the workers whose last heartbeat is recent enough."""
    now = now or datetime.now(UTC)
    alive = []
    for worker in workers:
        seen = getattr(worker, "last_heartbeat_time", None)
        interval = getattr(worker, "heartbeat_interval_seconds", None) or DEFAULT_HEARTBEAT_SECONDS
        if seen is not None and (now - seen).total_seconds() <= INACTIVITY_HEARTBEATS * interval:
            alive.append(str(worker.name))
    return alive


def missing_worker_message(client: Any, deployment_id: Any, waiting: int) -> str | None:
    """The operator's line when ``waiting`` runs of the deployment have no online worker, else None."""
    if waiting <= 0:
        return None
    deployment = client.read_deployment(deployment_id)
    pool = getattr(deployment, "work_pool_name", None)
    if not pool:
        return None  # served by a runner (`proofcheck serve` without --no-runner), not a work pool
    if online_workers(client.read_workers_for_work_pool(pool)):
        return None
    return (
        f"{waiting} validation run(s) waiting: no worker online on work pool {pool!r} "
        f"(start `prefect worker start --pool {pool}`; check the --pool name of the workers)"
    )
