"""Starting validation runs: exactly one live run per package version, however often it is asked for.

The idempotency key (object key + version id or ETag, plus an attempt number) is stored by the Prefect
server with the run, so it survives a restart of the bridge: a duplicate or replayed event finds the
run that exists. A run that failed, crashed or went silent past ``stale_after`` is superseded by the
next attempt; after ``max_attempts`` the package gets an ``error`` verdict stored directly.

The reconcile also re-runs, with backoff (``flows.retry``), every submitted version whose latest verdict
is not checked in full (``flows.completeness``): a run with ``retry`` = the number of verdicts the
version has, under its own idempotency keys, storing a new verdict beside the old ones.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterIdempotencyKey,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType

from flows import prefect_compat
from flows import verdicts as vd
from flows.completeness import checked_in_full, gaps_of
from flows.deployments import VALIDATE
from flows.retry import Backoff, RetryState
from flows.sealing import seal_and_store
from flows.settings import PipelineSettings
from flows.storage import TAG_CHECKED, TAG_RULESET, TAG_STATUS, PackageRef, StorageError, Store, safe_segment

log = logging.getLogger(__name__)


def _age(run: FlowRun, now: datetime) -> float:
    """Seconds since the run started, or since it was claimed (Pending) when it has not started yet."""
    claimed = run.state.timestamp if run.state is not None and run.state.is_pending() else None
    started = run.start_time or claimed or run.expected_start_time or run.created
    if started is None:
        return 0.0
    return (now - started).total_seconds()


def store_gave_up(
    store: Store, ref: PackageRef, attempts: int, settings: PipelineSettings | None = None, retry: int = 0
) -> bool:
    """Store an ``error`` verdict for a version that no run could validate (never nothing), and index it.

    Not checked in full: the reconcile re-runs it later with backoff, like any incomplete verdict.
    """
    area = store.layout.area_of(ref.key) or "inbox"
    verdict = vd.error_verdict(ref, f"validation did not complete after {attempts} attempts")
    doc = vd.document(verdict, ref, area=area, publisher=store.layout.publisher_of(ref.key))
    backoff = Backoff.of(settings) if settings is not None else Backoff()
    vd.mark_checked(doc, retry, backoff.next_try_iso(datetime.now(UTC), retry))
    stored = seal_and_store(
        store, ref, verdict.provenance.ruleset_version, doc, vd.render_html(verdict).encode(), settings, retry
    )
    if stored is not None:
        tags = {TAG_STATUS: verdict.status.value, TAG_RULESET: "none", TAG_CHECKED: gaps_of(doc).tag}
        try:  # no tag already keeps it from instructors; the tag says why to whoever looks at the object
            store.tag(ref, tags)
        except StorageError as exc:
            log.warning("gave-up verdict not tagged: %s", type(exc).__name__)
    if stored is not None and area == "inbox" and settings is not None:
        from flows.pipeline import republish_index

        try:  # instructors must see it like any verdict (the soak found these missing from the index)
            republish_index(store, settings, record=(doc, stored))
        except Exception as exc:  # the verdict is stored; `proofcheck reindex` rebuilds the index from it
            log.warning("index not updated for a gave-up verdict: %s", type(exc).__name__)
    return stored is not None


class Dispatcher:
    """Creates flow runs of the validate deployment through a synchronous Prefect client."""

    def __init__(self, settings: PipelineSettings, client: SyncPrefectClient | None = None) -> None:
        self.settings = settings
        self.client = client or get_client(sync_client=True)
        self._entered = client is None
        if self._entered:
            self.client.__enter__()
        self._deployment_id: UUID | None = None
        # Called with every run created or found for a version (the warm pool queues those it executes).
        self.on_run: Callable[[FlowRun], object] | None = None

    def close(self) -> None:
        if self._entered:
            self.client.__exit__(None, None, None)
            self._entered = False

    @property
    def deployment_id(self) -> UUID:
        if self._deployment_id is None:
            self._deployment_id = self.client.read_deployment_by_name(VALIDATE.full_name).id
        return self._deployment_id

    def _create(self, ref: PackageRef, attempt: int, retry: int = 0) -> FlowRun:
        parameters: dict[str, Any] = {
            "bucket": ref.bucket,
            "key": ref.key,
            "version_id": ref.version_id,
            "etag": ref.etag,
        }
        if retry:
            parameters["retry"] = retry
        run = self.client.create_flow_run_from_deployment(
            self.deployment_id,
            parameters=parameters,
            idempotency_key=ref.idempotency_key(attempt, retry),
            tags=["proofcheck"],
        )
        if self.on_run is not None:
            self.on_run(run)
        return run

    def submit(self, ref: PackageRef) -> FlowRun:
        """For an event: the first attempt's run (an existing one is returned, never a second)."""
        return self._create(ref, 0)

    def runs_of(self, ref: PackageRef, retry: int = 0) -> dict[int, FlowRun]:
        keys = [ref.idempotency_key(n, retry) for n in range(self.settings.max_attempts)]
        runs = self.client.read_flow_runs(
            flow_run_filter=FlowRunFilter(idempotency_key=FlowRunFilterIdempotencyKey(any_=keys))
        )
        return {keys.index(r.idempotency_key): r for r in runs if r.idempotency_key in keys}

    def ensure(self, ref: PackageRef, store: Store, retry: int = 0) -> str:
        """For reconcile (the version has no verdict): make sure a live run exists or give up cleanly.

        ``retry`` > 0: the same for the re-run that stores the version's ``retry``-th verdict (its latest
        one is not checked in full); giving up stores that verdict as an ``error`` one.
        """
        runs = self.runs_of(ref, retry)
        if not runs:
            self._create(ref, 0, retry)
            return "dispatched"
        attempt = max(runs)
        run = runs[attempt]
        state = run.state
        final = state is not None and state.is_final()
        if state is not None and state.is_scheduled():
            # Waiting for a free slot, not lost: whichever runner or worker serves the deployment starts
            # it. Aging it from its creation turned the tail of a burst into error verdicts (soak).
            return "queued"
        if not final and _age(run, datetime.now(UTC)) < self.settings.stale_after:
            return "running"
        if not final:
            # The process running it is gone (bridge or worker restarted): mark it so and move on.
            prefect_compat.mark_crashed(self.client, run.id, "presumed lost by proofcheck reconcile")
        if attempt + 1 >= self.settings.max_attempts:
            store_gave_up(store, ref, attempt + 1, self.settings, retry)
            return "gave-up"
        self._create(ref, attempt + 1, retry)
        return "superseded"

    def close_orphans(self, store: Store, busy: Collection[UUID] = ()) -> int:
        """Mark ``Crashed`` the validation runs left started past ``stale_after`` whose version has a verdict.

        Their process was killed after storing the verdict (soak: 1-2 a run stayed ``Running`` for good;
        the reconcile skips versions with a verdict, so nothing else ever settled them). ``Crashed``, not
        ``Completed``: the run did not finish its steps after the verdict (tags, index, artifact); the
        reconcile completes the quarantine and the index entry, and the message says the verdict exists.
        ``busy``: runs known alive (the warm pool's in-flight runs). One query to Prefect per call.
        """
        runs = self.client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PENDING, StateType.RUNNING]))
            ),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[self.deployment_id])),
            limit=200,
        )
        now, closed = datetime.now(UTC), 0
        for run in runs:
            params = run.parameters or {}
            if run.id in busy or _age(run, now) < self.settings.stale_after or params.get("bucket") != store.bucket:
                continue
            key, version_id, etag = str(params.get("key") or ""), params.get("version_id"), params.get("etag")
            ref = PackageRef(store.bucket, key, str(etag or ""), version_id)
            retry = int(params.get("retry") or 0)
            try:
                stored = store.verdict_keys_of(ref)
                if not stored and not version_id and etag:
                    stored = store.verdict_keys_for_content(key, str(etag))
            except StorageError as exc:  # tried again at the next reconcile
                log.warning("orphan run not checked: %s", type(exc).__name__)
                continue
            if len(stored) > retry:  # a re-run's verdict is the version's (retry + 1)-th
                message = "its process died after the verdict was stored (closed by proofcheck reconcile)"
                prefect_compat.mark_crashed(self.client, run.id, message)
                closed += 1
        return closed


def index_if_missing(store: Store, settings: PipelineSettings, json_key: str, doc: Any = None) -> bool:
    """Index a stored submission verdict the index lacks; True if it was added.

    A run that dies between storing its verdict and indexing it, or that lost the answer to its own
    write and took the verdict for another run's, leaves it out of the index (soak: 1 of 210).
    ``doc``: the verdict document when the caller has already read it.
    """
    import sqlalchemy as sa

    from flows.index import VerdictIndex, verdicts
    from flows.pipeline import republish_index

    if not settings.index_url:  # no index configured (settings built in code, not from the environment)
        return False
    index = VerdictIndex(settings.index_url)
    try:
        index.ensure(store)  # a new index is rebuilt from the bucket: nothing left to add
        with index.engine.connect() as conn:
            present = conn.execute(sa.select(verdicts.c.id).where(verdicts.c.json_key == json_key)).first()
    finally:
        index.close()
    if present is not None:
        return False
    if doc is None:
        doc = json.loads(store.get_bytes(json_key))
    if not isinstance(doc, dict) or (doc.get("object") or {}).get("area") != "inbox":
        return False
    republish_index(store, settings, record=(doc, json_key))
    return True


def _count(outcomes: dict[str, int], outcome: str) -> None:
    outcomes[outcome] = outcomes.get(outcome, 0) + 1


def verdict_tags(doc: Mapping[str, Any]) -> dict[str, str]:
    """The tags a package carries after its verdict (the bucket policy reads them)."""
    return {
        TAG_STATUS: str(doc.get("status", "error")),
        TAG_RULESET: str((doc.get("ruleset") or {}).get("version", "none")),
        TAG_CHECKED: gaps_of(doc).tag,
    }


def _retag(store: Store, ref: PackageRef, doc: Mapping[str, Any]) -> bool:
    """Give the package the tags of its latest verdict if it lacks them; True if it was tagged now.

    The run tags after storing the verdict and may die (or fail to tag) in between; a package tagged
    before ``proofcheck-checked`` existed has none. Either way the policy hides it: this shows it again
    once its verdict allows (and hides it, should an older tag say more than its verdict).
    A folder package's marker only: its proof objects keep what its last run gave them.
    """
    if doc.get("quarantine") is True:
        return False
    wanted = verdict_tags(doc)
    present = store.tags_of(ref)
    if present is None or all(present.get(k) == safe_segment(v)[:256] for k, v in wanted.items()):
        return False
    return store.tag(ref, wanted)


def _settle_latest(
    store: Store, settings: PipelineSettings, ref: PackageRef, area: str, json_key: str, outcomes: dict[str, int]
) -> dict[str, Any] | None:
    """Read a version's latest verdict; finish its quarantine move and its index entry if a run died
    before them. None when that failed (tried again at the next reconcile)."""
    try:
        doc = json.loads(store.get_bytes(json_key))
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        if store.complete_quarantine_of(ref, doc):
            _count(outcomes, "quarantined")
        elif area == "inbox" and _retag(store, ref, doc):
            _count(outcomes, "retagged")
        if area == "inbox" and index_if_missing(store, settings, json_key, doc):
            _count(outcomes, "indexed")
    except StorageError as exc:
        log.warning("quarantine not completed: %s", type(exc).__name__)
        return None
    except ValueError:
        log.warning("stored verdict is not a JSON object: its version is re-run")
        return {}
    except Exception as exc:  # the index database unavailable
        log.warning("verdict not indexed: %s", type(exc).__name__)
        return None
    return doc


def reconcile(
    store: Store,
    dispatcher: Dispatcher,
    areas: tuple[str, ...] = ("inbox", "dryrun"),
    settled: set[tuple[str, str]] | None = None,
    retries: MutableMapping[tuple[str, str], RetryState] | None = None,
    now: Callable[[], float] = time.time,
) -> dict[str, int]:
    """List both package areas; every version without a verdict gets a live run (or an error verdict).

    Every version: in a versioned bucket, replaced versions of zip packages written in the last
    ``reconcile_horizon`` days are listed too (same single listing per area), each run reading its own
    version id.

    A version with a verdict has its latest verdict read once (``settled`` remembers it across calls):
    if its verdict says quarantine and it is still listed here, the run that stored it died before the
    move, which is completed now; a submission verdict the index lacks is indexed. A submission whose
    latest verdict is not checked in full is not settled: it is re-run when its backoff is over
    (``flows.retry``; ``retries`` keeps the schedule between calls, recomputed from S3 when lost), and
    settled once a verdict checked in full (or a quarantine) is stored. Dry runs are not re-run: the
    publisher sees the error verdict and may upload again. ``now``: the clock (epoch s) the schedule is
    read against.
    """
    outcomes: dict[str, int] = {}
    settled = set() if settled is None else settled
    retries = {} if retries is None else retries
    settings = dispatcher.settings
    backoff = Backoff.of(settings)
    horizon = settings.reconcile_horizon
    since = time.time() - horizon * 86400 if horizon > 0 else None  # replaced versions listed too
    for area in areas:
        for ref in store.list_packages(area, member_grace=settings.folder_grace, versions_since=since):
            version = (ref.key, ref.token)
            if version in settled:
                continue
            waiting = retries.get(version)
            if waiting is not None and now() < waiting.next_try:
                _count(outcomes, "retry-waiting")
                continue
            listing = store.verdict_listing(ref)
            if not listing:
                _count(outcomes, dispatcher.ensure(ref, store))
                continue
            if waiting is None or waiting.verdicts != len(listing):  # first look, or a new verdict since
                doc = _settle_latest(store, settings, ref, area, listing[-1][0], outcomes)
                if doc is None:
                    continue
                if area != "inbox" or doc.get("quarantine") is True or (doc and checked_in_full(doc)):
                    settled.add(version)
                    retries.pop(version, None)
                    continue
                waiting = RetryState(len(listing), backoff.next_try(listing[-1][1], len(listing) - 1))
                retries[version] = waiting
                if now() < waiting.next_try:
                    _count(outcomes, "retry-waiting")
                    continue
            _count(outcomes, "retry-" + dispatcher.ensure(ref, store, retry=len(listing)))
    if outcomes:
        log.info("reconcile: %s", outcomes)
    return outcomes
